#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// A real OAuth 2.x authorization server for the mod_mcp_auth tests, built on
// oidc-provider v9. Loopback only, plain http (the issuer is http://HOST:PORT).
//
//   node test/mcp/idp.mjs [--port N] [--host 127.0.0.1] [--config FILE] [--jwks FILE]
//                         [--issuer-path /tenant] [--quiet]
//   env: IDP_PORT, IDP_HOST, IDP_CONFIG, IDP_JWKS, IDP_ISSUER_PATH (arguments win)
//
// --jwks FILE: a private JWKS to sign with instead of fresh keys.
// --issuer-path /p: the issuer becomes http://HOST:PORT/p and every endpoint
//   lives under /p; metadata is then at /p/.well-known/openid-configuration
//   (OIDC, appended) and /.well-known/oauth-authorization-server/p (RFC 8414,
//   path-inserted). --quiet: no per-request log lines on stderr.
//
// --port 0 (the default) picks a free port; the ready line says which.
// When listening, exactly one JSON line is written to stdout:
//   {"issuer":..., "jwks_uri":..., "token_endpoint":..., "introspection_endpoint":...,
//    "revocation_endpoint":..., "registration_endpoint":..., "port":N, "pid":N}
// Everything else (oidc-provider notices, warnings, request log) goes to stderr.
// SIGTERM / SIGINT stop it (exit 0).
//
// Config file (JSON), all keys optional:
// {
//   "clients": [
//     {"client_id": "c1", "client_secret": "s1",
//      "scope": "mcp:tools notes:read",          // scopes this client may get (default: any)
//      "token_endpoint_auth_method": "client_secret_basic",  // or client_secret_post
//      "extra_claims": {"email": "c1@example.test", "groups": ["a"]}}  // added to its tokens
//   ],
//   "resources": {
//     "http://127.0.0.1:8080/mcp": {"scopes": "mcp:tools notes:read notes:delete",
//                                   "format": "jwt",   // jwt (default) | opaque | jwe
//                                   "alg": "RS256",    // RS256 (default) | RS384 | RS512 | PS256..PS512
//                                                      // | ES256 | ES384 | EdDSA | HS256 | HS384 | HS512
//                                   "secret": "...",   // HS* only: the shared key
//                                   "ttl": 600, "audience": "..."}   // audience default: the resource
//   },
//   "discovery": {"openid": true, "oauth": true} // serve /.well-known/openid-configuration
//                                                 // and/or /.well-known/oauth-authorization-server
// }
import { randomBytes, generateKeyPairSync, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints its NOTICEs with console.info (stdout). Keep stdout for
// the ready line only.
console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    config: { type: 'string' },
    jwks: { type: 'string' },
    'issuer-path': { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
  strict: true,
});

const host = args.host ?? process.env.IDP_HOST ?? '127.0.0.1';
const wantPort = Number(args.port ?? process.env.IDP_PORT ?? 0);
const configPath = args.config ?? process.env.IDP_CONFIG;
const jwksPath = args.jwks ?? process.env.IDP_JWKS;

const cfg = configPath ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
const cfgClients = cfg.clients ?? [];
const cfgResources = cfg.resources ?? {};
const discovery = { openid: true, oauth: true, ...(cfg.discovery ?? {}) };
let issuerPath = args['issuer-path'] ?? process.env.IDP_ISSUER_PATH ?? cfg.issuer_path ?? '';
if (issuerPath && !issuerPath.startsWith('/')) issuerPath = `/${issuerPath}`;
issuerPath = issuerPath.replace(/\/+$/, '');

// --- keys -------------------------------------------------------------------
// Fresh keys every start: RSA 2048 (RS*/PS*), P-256 (ES256), P-384 (ES384),
// Ed25519 (EdDSA). kid = a hash of the public key; use = sig. The private
// JWKS has no "alg"; the published one (jwks_uri) has "alg" on the EC keys
// only (oidc-provider adds it), none on the RSA and Ed25519 keys.
function makeJwks() {
  const gen = (type, o) => generateKeyPairSync(type, o).privateKey.export({ format: 'jwk' });
  const kid = (k) => createHash('sha256').update(JSON.stringify([k.kty, k.crv, k.n ?? k.x, k.e ?? k.y])).digest('base64url').slice(0, 16);
  const keys = [
    gen('rsa', { modulusLength: 2048 }),
    gen('ec', { namedCurve: 'P-256' }),
    gen('ec', { namedCurve: 'P-384' }),
    gen('ed25519'),
  ];
  return { keys: keys.map((k) => ({ ...k, kid: kid(k), use: 'sig' })) };
}
const jwks = jwksPath ? JSON.parse(readFileSync(jwksPath, 'utf8')) : makeJwks();

// --- resources --------------------------------------------------------------
// Resource indicators are matched exactly first, then after URL normalisation
// (lower-case scheme/host, default port dropped, a lone trailing "/" ignored).
function normUri(u) {
  try {
    const x = new URL(u);
    let s = x.href;
    if (s.endsWith('/') && !x.search && !x.hash) s = s.slice(0, -1);
    return s;
  } catch {
    return u;
  }
}
const resourceByNorm = new Map(Object.entries(cfgResources).map(([k, v]) => [normUri(k), { uri: k, ...v }]));
function findResource(indicator) {
  if (Object.hasOwn(cfgResources, indicator)) return { uri: indicator, ...cfgResources[indicator] };
  return resourceByNorm.get(normUri(indicator));
}

const allResourceScopes = new Set();
for (const r of Object.values(cfgResources)) {
  for (const s of String(r.scopes ?? '').split(' ').filter(Boolean)) allResourceScopes.add(s);
}

const jweKeys = new Map(); // resource uri -> symmetric key for format "jwe"

// --- clients ----------------------------------------------------------------
// A pre-registered client's allowed scopes are kept here, NOT as client
// metadata "scope": oidc-provider rejects (invalid_scope) a request for a scope
// outside client.scope, while this rig wants the AS to grant the allowed
// subset silently, so that the resource server's 403 insufficient_scope can be
// exercised. Dynamically registered clients are limited to their registered scope.
const allowedScopes = new Map();
const extraClaims = new Map();
const clients = cfgClients.map((c) => {
  if (!c.client_id) throw new Error('config: every client needs client_id');
  if (c.scope !== undefined) allowedScopes.set(c.client_id, new Set(String(c.scope).split(' ').filter(Boolean)));
  if (c.extra_claims) extraClaims.set(c.client_id, c.extra_claims);
  const method = c.token_endpoint_auth_method ?? 'client_secret_basic';
  return {
    client_id: c.client_id,
    ...(method === 'none' ? {} : { client_secret: c.client_secret }),
    token_endpoint_auth_method: method,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  };
});

const { default: Provider, errors } = await import('oidc-provider');

async function getResourceServerInfo(ctx, indicator, client) {
  const r = findResource(indicator);
  if (!r) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
  let scopes = String(r.scopes ?? '').split(' ').filter(Boolean);
  const allow = allowedScopes.get(client?.clientId) ?? (client?.scope ? new Set(client.scope.split(' ')) : undefined);
  if (allow) scopes = scopes.filter((s) => allow.has(s));
  const info = {
    scope: scopes.join(' '),
    accessTokenTTL: r.ttl ?? 600,
    accessTokenFormat: r.format === 'opaque' ? 'opaque' : 'jwt',
  };
  if (r.audience) info.audience = r.audience;
  if (info.accessTokenFormat === 'jwt') {
    const alg = r.alg ?? 'RS256';
    info.jwt = alg.startsWith('HS')
      ? { sign: { alg, key: Buffer.from(String(r.secret ?? '')) } }
      : { sign: { alg } };
    if (r.format === 'jwe') {
      if (!jweKeys.has(r.uri)) jweKeys.set(r.uri, randomBytes(32));
      info.jwt.encrypt = { alg: 'dir', enc: 'A256GCM', key: jweKeys.get(r.uri) };
    }
  }
  return info;
}

const provider = await (async () => {
  // The issuer needs the port, so bind first (port 0 = any free port).
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(wantPort, host, resolve);
  });
  const { port } = server.address();
  const issuer = `http://${host}:${port}${issuerPath}`;

  const p = new Provider(issuer, {
    clients,
    jwks,
    // Explicit so the ready line can name them without asking the server.
    routes: {
      jwks: '/jwks',
      token: '/token',
      introspection: '/token/introspection',
      revocation: '/token/revocation',
      registration: '/reg',
    },
    scopes: ['openid', 'offline_access', ...allResourceScopes],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      registration: { enabled: true, initialAccessToken: false },
      resourceIndicators: {
        enabled: true,
        // client_credentials without "resource": no default, the token then
        // carries no audience and is opaque.
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo,
      },
    },
    extraTokenClaims: async (ctx, token) => extraClaims.get(token.clientId),
    interactions: { url: () => '/interaction-unsupported' },
    ttl: {
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
    },
  });
  p.proxy = false;

  const cb = p.callback();
  server.on('request', (req, res) => {
    const started = Date.now();
    const logPath = req.url.split('?')[0];
    if (!args.quiet) {
      res.on('finish', () => {
        process.stderr.write(`idp: ${req.method} ${logPath} -> ${res.statusCode} (${Date.now() - started} ms)\n`);
      });
    }
    const notFound = () => res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
    const qpos = req.url.indexOf('?');
    const path = qpos < 0 ? req.url : req.url.slice(0, qpos);
    const query = qpos < 0 ? '' : req.url.slice(qpos);
    const OIDC = '/.well-known/openid-configuration';
    const OAUTH = '/.well-known/oauth-authorization-server';
    let inner; // the path oidc-provider sees (below the issuer path)
    if (path === `${OAUTH}${issuerPath}`) {
      // RFC 8414 (path-inserted for an issuer with a path): the same metadata
      // oidc-provider publishes for OIDC discovery.
      if (!discovery.oauth) return notFound();
      inner = OIDC;
    } else if (!issuerPath || path === issuerPath || path.startsWith(`${issuerPath}/`)) {
      inner = path.slice(issuerPath.length) || '/';
      if (inner === OIDC && !discovery.openid) return notFound();
      if (inner.startsWith(OAUTH)) return notFound();
    } else {
      return notFound();
    }
    if (issuerPath) req.originalUrl = `${issuerPath}${inner}${query}`;
    req.url = `${inner}${query}`;
    cb(req, res);
  });
  p.__server = server;
  p.__port = port;
  return p;
})();

const meta = {
  issuer: provider.issuer,
  jwks_uri: provider.urlFor('jwks'),
  token_endpoint: provider.urlFor('token'),
  introspection_endpoint: provider.urlFor('introspection'),
  revocation_endpoint: provider.urlFor('revocation'),
  registration_endpoint: provider.urlFor('registration'),
  port: provider.__port,
  pid: process.pid,
};
process.stdout.write(`${JSON.stringify(meta)}\n`);

function stop() {
  provider.__server.close();
  provider.__server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
