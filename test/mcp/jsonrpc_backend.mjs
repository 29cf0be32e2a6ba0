#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Differential-test backend (test/integration/test_jsonrpc_differential.py):
// a stateless MCP SDK streamable-HTTP server, one McpServer + transport per
// request, JSON responses. The SDK decodes the body itself (JSON.parse, zod)
// and dispatches tools/call to the registered tool by exact name.
//
//   node test/mcp/jsonrpc_backend.mjs [--port N]
// One JSON ready line on stdout: {"port":N}. Plain endpoints:
//   GET  /_executions -> ["<X-Diff-Id of each delete_notes run>", ...]
//   POST /_reset      -> forgets them
import http from 'node:http';
import { parseArgs } from 'node:util';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const { values: args } = parseArgs({ options: { port: { type: 'string' } }, strict: true });
let executions = [];

function newServer() {
  const server = new McpServer({ name: 'jsonrpc-diff-backend', version: '1.0.0' });
  server.registerTool('delete_notes', { description: 'Protected: needs notes:delete.' }, async (extra) => {
    executions.push(String(extra.requestInfo?.headers?.['x-diff-id'] ?? '?'));
    return { content: [{ type: 'text', text: 'deleted' }] };
  });
  server.registerTool('read_notes', { description: 'Unprotected.' }, async () => ({
    content: [{ type: 'text', text: 'notes' }],
  }));
  return server;
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const httpServer = http.createServer(async (req, res) => {
  res.setHeader('x-backend', 'node'); // tells the test the module let it through
  try {
    if (req.url.endsWith('/_executions')) return sendJson(res, 200, executions);
    if (req.url.endsWith('/_reset')) {
      executions = [];
      return sendJson(res, 200, {});
    }
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch (e) {
    if (!res.headersSent) sendJson(res, 500, { error: String(e) });
  }
});
httpServer.keepAliveTimeout = 30000;
httpServer.listen(Number(args.port ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + '\n');
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => httpServer.close(() => process.exit(0)));
