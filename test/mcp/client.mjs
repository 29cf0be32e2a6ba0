#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// An MCP client for the mod_mcp_auth tests: @modelcontextprotocol/sdk Client +
// StreamableHTTPClientTransport with the SDK's own OAuth machinery, using the
// SDK's ClientCredentialsProvider (client_credentials grant). The flow is the
// real one: first request without a token -> 401 -> resource_metadata from the
// WWW-Authenticate challenge -> RFC 9728 metadata -> authorization server
// metadata (RFC 8414 / OIDC discovery) -> [dynamic registration] -> token
// request with `resource` -> initialize -> actions.
//
//   node test/mcp/client.mjs --url URL [--client-id ID --client-secret S] [--scope "a b"]
//        [--issuer ISS] [--token T | --no-auth] [--header "Name: value"]...
//        [--timeout MS] [--deadline MS] [--trace] ACTION...
//   ACTION: list | ping | call:<tool> | call:<tool>:<json arguments>
//
// --client-id omitted: the client registers itself dynamically (RFC 7591)
//   at the registration_endpoint the AS metadata names.
// --scope given: exactly these scopes are asked for, every time (no step-up),
//   so a 403 insufficient_scope is reported as such.
// --scope omitted: SEP-835 order: the challenge's scope, else the metadata's
//   scopes_supported; a 403 insufficient_scope makes the SDK ask for the
//   challenged scopes once (step-up) and retry.
// --issuer: the authorization server the credentials belong to (the SDK's
//   expectedIssuer); the flow fails if the resource metadata names another.
// --token T: no OAuth; send "Authorization: Bearer T" as is. --no-auth: no
//   Authorization at all.
// --header "Name: value" (repeatable): an extra request header on every MCP
//   request (e.g. a spoofed identity header that httpd must strip).
//
// Output: one JSON line per step on stdout: first {"action":"connect",...},
// then one per ACTION, each with "ok": true|false; failures carry "status"
// (HTTP status, when there was one), "error" and "www_authenticate". With
// --trace a last line {"action":"trace","http":[...]} lists every HTTP
// exchange (no secrets or tokens). Exit code 0 only when every step
// succeeded, 1 otherwise, 2 on bad usage, 3 when --deadline ran out.
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

function out(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      url: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      scope: { type: 'string' },
      issuer: { type: 'string' },
      token: { type: 'string' },
      'no-auth': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '10000' },
      deadline: { type: 'string', default: '30000' },
      trace: { type: 'boolean', default: false },
      header: { type: 'string', multiple: true, default: [] },
    },
    allowPositionals: true,
    strict: true,
  });
} catch (e) {
  process.stderr.write(`client: ${e.message}\n`);
  process.exit(2);
}
const { values: opt, positionals: actions } = parsed;
if (!opt.url) {
  process.stderr.write('client: --url is required\n');
  process.exit(2);
}
const mcpUrl = new URL(opt.url);
const timeoutMs = Number(opt.timeout);
const deadlineMs = Number(opt.deadline);

// Hard stop: this process never hangs, whatever the peers do.
setTimeout(() => {
  out({ action: 'deadline', ok: false, error: `deadline of ${deadlineMs} ms exceeded` });
  process.exit(3);
}, deadlineMs);

// --- HTTP observation -------------------------------------------------------
const httpLog = [];
const state = { challengeScope: undefined, discovery: undefined, lastMcp: undefined };

function sameResource(u) {
  try {
    const x = new URL(u);
    return x.origin === mcpUrl.origin && x.pathname === mcpUrl.pathname;
  } catch {
    return false;
  }
}

// Wraps fetch for the transport and the SDK's OAuth calls: bounds each
// exchange in time (except the long-lived GET SSE stream) and records what
// happened, without credentials.
async function observedFetch(input, init = {}) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const method = (init.method ?? (typeof input === 'object' && input.method) ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers ?? {});
  const isSse = method === 'GET' && (headers.get('accept') ?? '').includes('text/event-stream');
  const signals = [init.signal].filter(Boolean);
  if (!isSse) signals.push(AbortSignal.timeout(timeoutMs));
  const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
  const entry = { method, url, bearer: (headers.get('authorization') ?? '').toLowerCase().startsWith('bearer ') };
  if (method === 'POST' && init.body instanceof URLSearchParams) {
    const p = init.body;
    entry.form = Object.fromEntries([...p.entries()].filter(([k]) => !/secret|assertion|code_verifier|refresh_token/.test(k)));
  }
  httpLog.push(entry);
  let res;
  try {
    res = await fetch(input, { ...init, signal });
  } catch (err) {
    entry.error = String(err?.name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : err?.message ?? err);
    throw err;
  }
  entry.status = res.status;
  const www = res.headers.get('www-authenticate');
  if (www) entry.www_authenticate = www;
  if (sameResource(url)) {
    state.lastMcp = { status: res.status, www_authenticate: www ?? undefined };
    if ((res.status === 401 || res.status === 403) && www) {
      const { scope } = extractWWWAuthenticateParams(res);
      if (scope) state.challengeScope = scope;
    }
  }
  return res;
}

// --- OAuth provider -----------------------------------------------------------
// The SDK's ClientCredentialsProvider, with three additions for the rig:
// the scope choice described above, dynamic registration when no client id is
// given (response_types: [] so a client_credentials-only client is valid), and
// remembering the discovery state for the report.
class RigClientCredentialsProvider extends ClientCredentialsProvider {
  constructor(o) {
    super({
      clientId: o.clientId ?? 'to-be-registered',
      clientSecret: o.clientSecret,
      scope: o.scope,
      clientName: 'mod-mcp-auth-test-client',
      ...(o.expectedIssuer ? { expectedIssuer: o.expectedIssuer } : {}),
    });
    this.fixedScope = o.scope;
    if (!o.clientId) this._clientInfo = undefined; // -> dynamic registration
  }

  get clientMetadata() {
    return { ...super.clientMetadata, response_types: [] };
  }

  saveDiscoveryState(s) {
    state.discovery = s;
  }

  prepareTokenRequest() {
    const scope = this.fixedScope
      ?? state.challengeScope
      ?? state.discovery?.resourceMetadata?.scopes_supported?.join(' ');
    state.requestedScope = scope;
    return super.prepareTokenRequest(scope);
  }
}

function decodeJwt(t) {
  const parts = String(t).split('.');
  if (parts.length !== 3) return { format: parts.length === 5 ? 'jwe' : 'opaque' };
  try {
    const d = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    return { format: 'jwt', header: d(parts[0]), claims: d(parts[1]) };
  } catch {
    return { format: 'unparseable' };
  }
}

function describeError(err) {
  const o = { ok: false, error: String(err?.message ?? err) };
  if (err?.cause?.code) o.error += ` (${err.cause.code})`;
  if (err instanceof StreamableHTTPError && typeof err.code === 'number' && err.code > 0) o.status = err.code;
  else if (err?.errorCode) o.oauth_error = err.errorCode; // OAuthError from the token/registration endpoint
  else if (typeof err?.code === 'number') o.rpc_code = err.code; // McpError (JSON-RPC error)
  if (err?.name === 'TimeoutError' || /timed out|timeout/i.test(o.error)) o.timeout = true;
  if (o.status === undefined && state.lastMcp && state.lastMcp.status >= 400) o.status = state.lastMcp.status;
  if (state.lastMcp?.www_authenticate && state.lastMcp.status >= 400) o.www_authenticate = state.lastMcp.www_authenticate;
  return o;
}

// --- main ---------------------------------------------------------------------
let provider;
const transportOpts = { fetch: observedFetch };
const extraHeaders = {};
for (const h of opt.header) {
  const i = h.indexOf(':');
  if (i <= 0) {
    process.stderr.write(`client: bad --header ${JSON.stringify(h)} (want "Name: value")\n`);
    process.exit(2);
  }
  extraHeaders[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
if (opt.token !== undefined) extraHeaders.Authorization = `Bearer ${opt.token}`;
if (Object.keys(extraHeaders).length) transportOpts.requestInit = { headers: extraHeaders };
if (opt.token !== undefined) {
  // static token: no OAuth provider
} else if (!opt['no-auth']) {
  if (opt['client-id'] && opt['client-secret'] === undefined) {
    process.stderr.write('client: --client-secret is required with --client-id\n');
    process.exit(2);
  }
  provider = new RigClientCredentialsProvider({
    clientId: opt['client-id'],
    clientSecret: opt['client-secret'],
    scope: opt.scope,
    expectedIssuer: opt.issuer,
  });
  transportOpts.authProvider = provider;
}

const transport = new StreamableHTTPClientTransport(mcpUrl, transportOpts);
transport.onerror = (err) => process.stderr.write(`client: transport: ${err?.message ?? err}\n`);
const client = new Client({ name: 'mod-mcp-auth-test-client', version: '1.0.0' }, { capabilities: {} });
let notifications = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
  notifications.push(n.params.data);
});

const reqOpts = { timeout: timeoutMs };
let allOk = true;

try {
  await client.connect(transport, reqOpts);
  const line = {
    action: 'connect',
    ok: true,
    session_id: transport.sessionId ?? null,
    protocol_version: transport.protocolVersion ?? null,
    server: client.getServerVersion() ?? null,
  };
  if (provider) {
    const tokens = await provider.tokens();
    line.oauth = {
      authorization_server: state.discovery?.authorizationServerUrl,
      resource: state.discovery?.resourceMetadata?.resource,
      resource_metadata: state.discovery?.resourceMetadata,
      registered_client_id: opt['client-id'] ? undefined : provider.clientInformation()?.client_id,
      scope_requested: state.requestedScope ?? null,
      scope_granted: tokens?.scope ?? null,
      token: tokens ? decodeJwt(tokens.access_token) : null,
    };
  }
  out(line);
} catch (err) {
  allOk = false;
  out({ action: 'connect', ...describeError(err) });
}

if (allOk) {
  for (const action of actions) {
    notifications = [];
    state.lastMcp = undefined;
    const line = { action };
    try {
      if (action === 'list') {
        const r = await client.listTools({}, reqOpts);
        Object.assign(line, { ok: true, tools: r.tools.map((t) => t.name) });
      } else if (action === 'ping') {
        await client.ping(reqOpts);
        line.ok = true;
      } else if (action.startsWith('call:')) {
        const rest = action.slice(5);
        const i = rest.indexOf(':');
        const name = i < 0 ? rest : rest.slice(0, i);
        const toolArgs = i < 0 ? {} : JSON.parse(rest.slice(i + 1));
        const r = await client.callTool({ name, arguments: toolArgs }, undefined, reqOpts);
        const text = (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        Object.assign(line, { ok: !r.isError, text, ...(json !== undefined ? { json } : {}), ...(r.isError ? { tool_error: true } : {}) });
        if (notifications.length) line.notifications = notifications;
      } else {
        Object.assign(line, { ok: false, error: `unknown action ${action}` });
      }
    } catch (err) {
      Object.assign(line, describeError(err));
    }
    if (!line.ok) allOk = false;
    out(line);
  }
} else {
  for (const action of actions) out({ action, ok: false, error: 'not connected', skipped: true });
}

// End the session (DELETE) and close, both bounded in time.
await Promise.race([
  transport.terminateSession().catch(() => undefined),
  new Promise((r) => setTimeout(r, Math.min(timeoutMs, 3000))),
]);
await Promise.race([client.close().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
if (opt.trace) out({ action: 'trace', http: httpLog });
process.exit(allOk ? 0 : 1);
