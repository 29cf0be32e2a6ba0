#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The MCP backend for the mod_mcp_auth tests: a streamable-HTTP MCP server
// (@modelcontextprotocol/sdk McpServer + StreamableHTTPServerTransport) with
// stateful sessions (Mcp-Session-Id) and SSE, meant to sit behind httpd's
// mod_proxy. It does no authentication of its own: it reports what it got.
//
//   node test/mcp/server.mjs [--port N] [--host 127.0.0.1] [--path /mcp] [--json] [--quiet]
//   env: MCP_SERVER_PORT, MCP_SERVER_HOST, MCP_SERVER_PATH (arguments win)
//
// --port 0 (the default) picks a free port. --json answers POSTs with plain
// JSON instead of an SSE stream. When listening, one JSON line goes to stdout:
//   {"url":"http://127.0.0.1:PORT/mcp","port":PORT,"path":"/mcp","pid":N}
// Request log lines go to stderr. SIGTERM / SIGINT stop it (exit 0).
//
// Tools: whoami, read_notes, delete_notes, stream_ticks.
// Plain endpoints (any path prefix is accepted before them, so they work
// behind a proxied sub-path too):
//   GET|POST|... <prefix>/_headers -> {"method","url","headers":{...},"raw_headers":[[name,value],...]}
//   POST <prefix>/_echo            -> {"sha256":hex,"length":N,"content_type":...}
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    path: { type: 'string' },
    json: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
  strict: true,
});
const host = args.host ?? process.env.MCP_SERVER_HOST ?? '127.0.0.1';
const wantPort = Number(args.port ?? process.env.MCP_SERVER_PORT ?? 0);
const mcpPath = args.path ?? process.env.MCP_SERVER_PATH ?? '/mcp';

const NOTES = [
  { id: 1, title: 'first note', body: 'hello from the MCP backend' },
  { id: 2, title: 'second note', body: 'identity comes from httpd' },
];

// Headers that carry identity set by httpd (MCPAuthClaimHeader etc.).
function identityHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const n = k.toLowerCase();
    if (n.startsWith('x-mcp-') || n.startsWith('x-user') || n.startsWith('x-remote')) out[n] = v;
  }
  const auth = Object.entries(headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization');
  out.authorization = Boolean(auth);
  return out;
}

function newMcpServer() {
  const server = new McpServer(
    { name: 'mod-mcp-auth-test-backend', version: '1.0.0' },
    { capabilities: { logging: {} } },
  );
  server.registerTool(
    'whoami',
    { description: 'Returns the identity headers this request reached the backend with.' },
    async (extra) => ({
      content: [{ type: 'text', text: JSON.stringify(identityHeaders(extra.requestInfo?.headers)) }],
    }),
  );
  server.registerTool(
    'read_notes',
    { description: 'Returns a fixed list of notes.', annotations: { readOnlyHint: true } },
    async () => ({ content: [{ type: 'text', text: JSON.stringify(NOTES) }] }),
  );
  server.registerTool(
    'delete_notes',
    { description: 'Pretends to delete all notes.', annotations: { destructiveHint: true } },
    async () => ({ content: [{ type: 'text', text: 'deleted' }] }),
  );
  server.registerTool(
    'stream_ticks',
    {
      description: 'Sends `count` log notifications `interval_ms` apart on the response stream, then returns.',
      inputSchema: { count: z.number().int().min(0).max(50).default(3), interval_ms: z.number().int().min(0).max(2000).default(100) },
    },
    async ({ count, interval_ms: interval }, extra) => {
      for (let i = 1; i <= count; i += 1) {
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: `tick ${i}` } });
        await new Promise((r) => setTimeout(r, interval));
      }
      return { content: [{ type: 'text', text: `ticks ${count}` }] };
    },
  );
  return server;
}

const transports = new Map(); // session id -> transport

function readBody(req, limit = 8 * 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj, headers = {}) {
  if (res.headersSent) return;
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const rpcError = (res, status, code, message) => sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null });

async function handleMcp(req, res) {
  const sid = req.headers['mcp-session-id'];
  if (req.method === 'POST') {
    const raw = await readBody(req);
    let body;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      rpcError(res, 400, -32700, 'Parse error');
      return;
    }
    let transport = sid ? transports.get(sid) : undefined;
    if (sid && !transport) {
      rpcError(res, 404, -32001, 'Session not found');
      return;
    }
    if (!transport) {
      const isInit = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
      if (!isInit) {
        rpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: args.json,
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) transports.delete(transport.sessionId);
      };
      await newMcpServer().connect(transport);
    }
    await transport.handleRequest(req, res, body);
    return;
  }
  if (req.method === 'GET' || req.method === 'DELETE') {
    const transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      rpcError(res, sid ? 404 : 400, sid ? -32001 : -32000, sid ? 'Session not found' : 'Bad Request: Mcp-Session-Id required');
      return;
    }
    await transport.handleRequest(req, res);
    return;
  }
  sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, POST, DELETE' });
}

const httpServer = http.createServer(async (req, res) => {
  const started = Date.now();
  const path = (req.url ?? '/').split('?')[0];
  if (!args.quiet) {
    res.on('close', () => {
      process.stderr.write(`mcp-server: ${req.method} ${path} -> ${res.statusCode} (${Date.now() - started} ms)\n`);
    });
  }
  try {
    if (path === '/_headers' || path.endsWith('/_headers')) {
      const raw = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
      await readBody(req).catch(() => undefined);
      sendJson(res, 200, { method: req.method, url: req.url, headers: req.headers, raw_headers: raw });
      return;
    }
    if (path === '/_echo' || path.endsWith('/_echo')) {
      if (req.method !== 'POST') {
        sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' });
        return;
      }
      const raw = await readBody(req);
      sendJson(res, 200, {
        sha256: createHash('sha256').update(raw).digest('hex'),
        length: raw.length,
        content_type: req.headers['content-type'] ?? null,
      });
      return;
    }
    if (path === mcpPath || path === `${mcpPath}/`) {
      await handleMcp(req, res);
      return;
    }
    sendJson(res, 404, { error: 'not_found', path });
  } catch (err) {
    process.stderr.write(`mcp-server: error: ${err?.stack ?? err}\n`);
    if (!res.headersSent) sendJson(res, err?.status ?? 500, { error: String(err?.message ?? err) });
    else res.end();
  }
});

httpServer.listen(wantPort, host, () => {
  const { port } = httpServer.address();
  process.stdout.write(`${JSON.stringify({ url: `http://${host}:${port}${mcpPath}`, port, path: mcpPath, pid: process.pid })}\n`);
});

async function stop() {
  for (const t of transports.values()) await t.close().catch(() => undefined);
  httpServer.close();
  httpServer.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
