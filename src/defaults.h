/* SPDX-License-Identifier: Apache-2.0 */
/* Every default of the module's directives, once: the directive handlers
 * and accessors (src/httpd/conf.c), the policy builder, the CLI and the
 * directive help strings read them from here, and test_docs.py checks that
 * README's directive tables say the same. Plain literals and no httpd or
 * APR types: the CLI includes this header, and a help string is built by
 * stringizing a value (MCP_STR), which needs the digits as written. */
#ifndef MCP_DEFAULTS_H
#define MCP_DEFAULTS_H

/* Per-directory directives. */
/* MCPAuthAlgorithms: the names of MCP_ALG_MASK_DEFAULT (jose_alg.h), in
 * the words an administrator writes (test/unit/test_defaults.c: the same set). */
#define MCP_DEFAULT_ALGORITHMS "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA" /* MCPAuthAlgorithms */
#define MCP_DEFAULT_CLOCK_SKEW 30               /* MCPAuthClockSkew, seconds */
#define MCP_DEFAULT_MAX_TOKEN_SIZE 16384        /* MCPAuthMaxTokenSize, bytes */
#define MCP_DEFAULT_REQUIRED_CLAIM "sub"        /* MCPAuthRequiredClaims (exp is always required) */
#define MCP_DEFAULT_REMOTE_USER_CLAIM "sub"     /* MCPAuthRemoteUserClaim */
#define MCP_DEFAULT_RESOURCE_METADATA 1         /* MCPAuthResourceMetadata On */
#define MCP_DEFAULT_PASS_TOKEN 0                /* MCPAuthPassToken Off */
#define MCP_DEFAULT_FORWARD_TOKEN 1             /* MCPAuthForwardToken On */
#define MCP_DEFAULT_INTROSPECTION_PARAM "token" /* MCPAuthIntrospection param= */
#define MCP_DEFAULT_INTROSPECTION_CACHE 300     /* MCPAuthIntrospection cache=, seconds */

/* Server-wide directives. */
#define MCP_DEFAULT_CACHE_ENTRIES 4096       /* MCPAuthCacheEntries */
#define MCP_DEFAULT_CACHE_ENTRY_SIZE 4096    /* MCPAuthCacheEntrySize, bytes */
#define MCP_DEFAULT_JWKS_MAX_SIZE 65536      /* MCPAuthJWKSMaxSize, bytes */
#define MCP_DEFAULT_JWKS_CACHE_TTL 86400     /* MCPAuthJWKSCacheTTL, seconds */
#define MCP_DEFAULT_JWKS_REFRESH_COOLDOWN 30 /* MCPAuthJWKSRefreshCooldown, seconds */
#define MCP_DEFAULT_JWKS_MAX_STALE 604800    /* MCPAuthJWKSMaxStale, seconds */
#define MCP_DEFAULT_TOKEN_CACHE_TTL 300      /* MCPAuthTokenCacheTTL, seconds; 0 disables */
#define MCP_DEFAULT_HTTP_TIMEOUT 5           /* MCPAuthHTTPTimeout, seconds */
#define MCP_DEFAULT_SSL_VERIFY 1             /* MCPAuthSSLVerify On */
#define MCP_DEFAULT_REFUSAL_LOG_INTERVAL 1   /* MCPAuthRefusalLogInterval, seconds; 0 logs every refusal */

/* "30" from MCP_DEFAULT_CLOCK_SKEW, for help strings. */
#define MCP_STR_(x) #x
#define MCP_STR(x) MCP_STR_(x)

#endif
