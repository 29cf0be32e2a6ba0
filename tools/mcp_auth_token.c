/* SPDX-License-Identifier: Apache-2.0 */
/* mcp-auth-token: the module's engine on the command line. `verify` tells
 * an administrator why a token is (not) accepted, in the module's words;
 * `keygen` and `sign` make keys and tokens for local tests and the demo. */
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_tables.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "defaults.h"
#include "http_fetch.h"
#include "json_util.h"
#include "jws_sign.h"
#include "keyring.h"
#include "verifier.h"
#include "version.h"

static void usage(void)
{
    fputs("usage:\n"
          "  mcp-auth-token verify [--jwks FILE|URL] [--jwk FILE] [--hmac-secret S] [--issuer ISS]...\n"
          "                        [--audience AUD] [--alg ALG]... [--skew S] [--require CLAIM]...\n"
          "                        [--ca-file PEM] [--jws-only] TOKEN|-\n"
          "  mcp-auth-token keygen --alg ALG --kid KID --out DIR [--bits N]\n"
          "  mcp-auth-token sign --key PEM|SECRETFILE --kid KID --alg ALG [--claim k=v]... [--header k=v]...\n"
          "                      [--ttl S]\n"
          "  mcp-auth-token --version\n",
          stderr);
    exit(2);
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "%s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static const char *need_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage();
    return argv[++*i];
}

static char *read_all(apr_pool_t *p, const char *path, size_t max)
{
    mcp_http_resp_t r;
    const char *err;
    if (mcp_file_read(p, path, max, &r, &err))
        die(apr_psprintf(p, "cannot read %s", path), err);
    return r.body;
}

/* A secret file's bytes without a trailing newline. */
static char *read_secret(apr_pool_t *p, const char *path)
{
    char *s = read_all(p, path, 4096);
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static char *read_token(apr_pool_t *p, const char *arg)
{
    char buf[65536];
    size_t n;
    char *t;
    if (strcmp(arg, "-") != 0)
        return apr_pstrdup(p, arg);
    n = fread(buf, 1, sizeof(buf) - 1, stdin);
    buf[n] = '\0';
    t = apr_pstrdup(p, buf);
    t += strspn(t, " \t\r\n");
    t[strcspn(t, " \t\r\n")] = '\0';
    return t;
}

static int cmd_verify(apr_pool_t *p, int argc, char **argv)
{
    static mcp_fetch_settings_t settings;
    mcp_trusted_issuer_t ti = {0};
    mcp_verify_policy_t pol;
    mcp_verified_t v;
    mcp_fail_t fail;
    apr_array_header_t *req = apr_array_make(p, 2, sizeof(char *));
    apr_array_header_t *aud = apr_array_make(p, 2, sizeof(char *));
    apr_array_header_t *aliases = apr_array_make(p, 1, sizeof(char *));
    const char *token = NULL, *jwks = NULL, *jwk = NULL, *secret = NULL, *ca_file = NULL, *why;
    json_t *out;
    int i, jws_only = 0, any_alg = 0;
    long skew = MCP_DEFAULT_CLOCK_SKEW;
    unsigned mask = 0;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--jwks"))
            jwks = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--jwk"))
            jwk = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--hmac-secret"))
            secret = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--issuer")) {
            /* Repeated: the later ones are aliases of the first (MCPAuthIssuer
             * ... alias=), e.g. Google's accounts.google.com. */
            if (!ti.issuer)
                ti.issuer = need_arg(argc, argv, &i);
            else
                *(const char **)apr_array_push(aliases) = need_arg(argc, argv, &i);
        }
        else if (!strcmp(a, "--audience"))
            *(const char **)apr_array_push(aud) = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--require"))
            *(const char **)apr_array_push(req) = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--ca-file"))
            ca_file = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--skew"))
            skew = atol(need_arg(argc, argv, &i));
        else if (!strcmp(a, "--jws-only"))
            jws_only = 1;
        else if (!strcmp(a, "--alg")) {
            const char *name = need_arg(argc, argv, &i);
            mcp_alg alg = mcp_alg_from_name(name);
            if (alg == MCP_ALG_UNKNOWN)
                die("unknown algorithm", name);
            mask |= MCP_ALG_BIT(alg);
            any_alg = 1;
        }
        else if (a[0] == '-' && a[1] == '-')
            usage();
        else if (!token)
            token = read_token(p, a);
        else
            usage();
    }
    if (!token || (!jwks && !jwk && !secret))
        usage();

    memset(&pol, 0, sizeof(pol));
    if (jwk) {
        char *text = read_all(p, jwk, 1 << 20);
        json_t *obj = mcp_json_parse(p, text, strlen(text));
        mcp_jwks_t *set = apr_pcalloc(p, sizeof(*set));
        set->keys = apr_pcalloc(p, sizeof(mcp_jwk_t *));
        if (mcp_jwk_from_json(p, obj, 1, &set->keys[0], &why))
            die("unusable JWK", why);
        set->nkeys = 1;
        /* An oct JWK is an HMAC secret: the module takes it only from MCPAuthHMACSecret. */
        if (set->keys[0]->kty == MCP_KTY_OCT)
            pol.hmac_key = set->keys[0];
        else
            ti.keys = set;
    }
    else if (jwks && (!strncmp(jwks, "https://", 8) || !strncmp(jwks, "http://", 7))) {
        settings.ttl = apr_time_from_sec(3600);
        settings.cooldown = 0;
        settings.max_stale = 0;
        settings.http.timeout_s = MCP_DEFAULT_HTTP_TIMEOUT;
        settings.http.ssl_verify = MCP_DEFAULT_SSL_VERIFY;
        settings.http.ca_file = ca_file;
        settings.http.max_size = 1 << 20;
        ti.ring = mcp_keyring_create(p, NULL, jwks, NULL, &settings);
        mcp_keyring_attach(ti.ring, mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + settings.http.max_size), 0, 1);
    }
    else if (jwks) {
        char *text = read_all(p, jwks, 1 << 20);
        mcp_jwks_t *set;
        if (mcp_jwks_parse(p, text, strlen(text), &set, &why))
            die("unusable JWKS", why);
        ti.keys = set;
    }
    if (secret)
        pol.hmac_key = mcp_jwk_from_secret(p, (const unsigned char *)secret, strlen(secret));
    if (jws_only)
        ti.issuer = NULL;

    ti.aliases = (const char *const *)aliases->elts;
    ti.n_aliases = aliases->nelts;
    pol.issuers = &ti;
    pol.n_issuers = 1;
    pol.alg_mask = any_alg ? mask : MCP_ALG_MASK_DEFAULT | (pol.hmac_key ? MCP_ALG_MASK_HMAC : 0);
    pol.max_token_size = 1 << 20;
    pol.jws_only = jws_only;
    pol.claims.skew = skew;
    pol.claims.now = (long long)apr_time_sec(apr_time_now());
    pol.claims.audiences = (const char *const *)aud->elts;
    pol.claims.n_audiences = aud->nelts;
    if (req->nelts == 0)
        *(const char **)apr_array_push(req) = MCP_DEFAULT_REQUIRED_CLAIM;
    pol.claims.required = (const char *const *)req->elts;
    pol.claims.n_required = req->nelts;

    if (mcp_verify_jwt(p, token, strlen(token), &pol, NULL, &v, &fail))
        die(fail.reason, fail.detail);
    out = json_pack("{s:O}", "header", v.header);
    if (jws_only) {
        /* The payload need not be claims: show it as text when it is UTF-8,
         * as base64url otherwise, and as claims when it is a JSON object. */
        mcp_jws_t jws;
        json_t *text, *claims;
        mcp_jws_parse(p, token, strlen(token), &jws, &fail);
        text = json_stringn((const char *)jws.payload, jws.payload_len);
        if (text)
            json_object_set_new(out, "payload", text);
        else
            json_object_set_new(out, "payload_b64url", json_string(mcp_b64url_encode(p, jws.payload, jws.payload_len)));
        claims = mcp_json_parse(p, (const char *)jws.payload, jws.payload_len);
        if (json_is_object(claims))
            json_object_set(out, "claims", claims);
    }
    else {
        json_object_set(out, "claims", v.claims);
    }
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    fputc('\n', stdout);
    json_decref(out);
    return 0;
}

/* Creates path (never an existing file, never through a symlink: a file
 * planted in a shared directory must not receive a private key or make us
 * write through it) with mode 0600 for secrets, 0644 otherwise. */
static void write_new_file(const char *path, const char *data, int private_mode)
{
    size_t n = strlen(data), off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, private_mode ? 0600 : 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            die("refusing to overwrite an existing file (remove it or use another --out/--kid)", path);
        die("cannot create", path);
    }
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            die("cannot write", path);
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        die("cannot write", path);
}

/* The JWKS a new key is added to: only a regular file of ours that nobody
 * else can write (else someone else's key would be published with ours).
 * NULL when there is none yet. */
static json_t *read_own_jwks(apr_pool_t *p, const char *path)
{
    struct stat st;
    char *buf;
    ssize_t got;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    json_t *doc;

    if (fd < 0) {
        if (errno == ENOENT)
            return NULL;
        die(errno == ELOOP ? "refusing a symbolic link" : "cannot read", path);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        die("not a regular file", path);
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        die("refusing a JWKS owned or writable by someone else", path);
    if (st.st_size > (1 << 20))
        die("file too large", path);
    buf = apr_palloc(p, (apr_size_t)st.st_size + 1);
    while (len < (size_t)st.st_size && (got = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
        len += (size_t)got;
    close(fd);
    buf[len] = '\0';
    doc = mcp_json_parse(p, buf, len);
    return doc ? json_incref(doc) : NULL;
}

/* Replaces path atomically with a fresh file of ours (rename replaces a
 * planted symlink itself, it never writes through it). */
static void replace_file(apr_pool_t *p, const char *path, const char *data)
{
    char *tmp = apr_pstrcat(p, path, ".XXXXXX", NULL);
    size_t n = strlen(data), off = 0;
    int fd = mkstemp(tmp); /* O_CREAT|O_EXCL, 0600 */
    if (fd < 0)
        die("cannot create", tmp);
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    /* Public keys: readable by the web server's user. */
    if (off != n || fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        die("cannot write", path);
    }
}

static int cmd_keygen(apr_pool_t *p, int argc, char **argv)
{
    const char *alg_name = NULL, *kid = NULL, *dir = NULL, *jwks_path;
    int i, bits = 0;
    mcp_alg alg;
    EVP_PKEY *pkey;
    json_t *jwks = NULL, *keys, *member;
    size_t idx;

    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--alg"))
            alg_name = need_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--kid"))
            kid = need_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--out"))
            dir = need_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--bits"))
            bits = atoi(need_arg(argc, argv, &i));
        else
            usage();
    }
    if (!alg_name || !kid || !dir)
        usage();
    alg = mcp_alg_from_name(alg_name);
    if (alg == MCP_ALG_UNKNOWN)
        die("unknown algorithm", alg_name);
    apr_dir_make_recursive(dir, APR_OS_DEFAULT, p);

    if (mcp_alg_kty(alg) == MCP_KTY_OCT) {
        unsigned char raw[64];
        const char *path = apr_psprintf(p, "%s/%s.key", dir, kid);
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            die("no randomness", NULL);
        write_new_file(path, apr_pstrcat(p, mcp_b64url_encode(p, raw, sizeof(raw)), "\n", NULL), 1);
        printf("%s\n", path);
        return 0;
    }

    /* The JWKS is checked first: a refused one leaves no new key behind. */
    jwks_path = apr_psprintf(p, "%s/jwks.json", dir);
    jwks = read_own_jwks(p, jwks_path);
    pkey = mcp_keygen(alg, bits);
    if (!pkey)
        die("key generation failed", alg_name);
    {
        BIO *bio = BIO_new(BIO_s_mem());
        char *pem;
        long n;
        const char *path = apr_psprintf(p, "%s/%s.pem", dir, kid);
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
        n = BIO_get_mem_data(bio, &pem);
        write_new_file(path, apr_pstrmemdup(p, pem, (apr_size_t)n), 1);
        BIO_free(bio);
        printf("%s\n", path);
    }
    /* Add to (or start) DIR/jwks.json, replacing a key with the same kid. */
    if (!json_is_object(jwks) || !json_is_array(json_object_get(jwks, "keys"))) {
        json_decref(jwks);
        jwks = json_pack("{s:[]}", "keys");
    }
    keys = json_object_get(jwks, "keys");
    for (idx = json_array_size(keys); idx-- > 0;) {
        member = json_array_get(keys, idx);
        if (json_is_string(json_object_get(member, "kid")) && !strcmp(mcp_json_str(member, "kid"), kid))
            json_array_remove(keys, idx);
    }
    json_array_append_new(keys, mcp_jwk_public(pkey, kid, alg));
    {
        char *text = json_dumps(jwks, JSON_INDENT(2));
        if (!text)
            die("cannot write", jwks_path);
        replace_file(p, jwks_path, apr_pstrcat(p, text, "\n", NULL));
        free(text);
    }
    printf("%s\n", jwks_path);
    json_decref(jwks);
    EVP_PKEY_free(pkey);
    return 0;
}

/* k=v: v as JSON when it parses as a JSON value, else as a string. */
static void set_kv(apr_pool_t *p, json_t *obj, const char *kv)
{
    const char *eq = strchr(kv, '=');
    json_t *val;
    if (!eq || eq == kv)
        die("expected k=v", kv);
    val = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (!val)
        val = json_string(eq + 1);
    json_object_set_new(obj, apr_pstrmemdup(p, kv, (apr_size_t)(eq - kv)), val);
}

static int cmd_sign(apr_pool_t *p, int argc, char **argv)
{
    const char *key = NULL, *kid = NULL, *alg_name = NULL, *err;
    json_t *claims = json_object(), *header = json_object();
    long ttl = 3600;
    long long now = (long long)apr_time_sec(apr_time_now());
    mcp_alg alg;
    EVP_PKEY *pkey = NULL;
    char *payload, *jwt;
    const char *secret = NULL;
    int i;

    json_object_set_new(claims, "iat", json_integer(now));
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--key"))
            key = need_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--kid"))
            kid = need_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--alg"))
            alg_name = need_arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--ttl"))
            ttl = atol(need_arg(argc, argv, &i));
        else if (!strcmp(argv[i], "--claim"))
            set_kv(p, claims, need_arg(argc, argv, &i));
        else if (!strcmp(argv[i], "--header"))
            set_kv(p, header, need_arg(argc, argv, &i));
        else
            usage();
    }
    if (!key || !alg_name)
        usage();
    alg = mcp_alg_from_name(alg_name);
    if (alg == MCP_ALG_UNKNOWN)
        die("unknown algorithm", alg_name);
    if (!json_object_get(claims, "exp"))
        json_object_set_new(claims, "exp", json_integer(now + ttl));
    json_object_set_new(header, "alg", json_string(mcp_alg_name(alg)));
    if (kid)
        json_object_set_new(header, "kid", json_string(kid));
    if (!json_object_get(header, "typ"))
        json_object_set_new(header, "typ", json_string("JWT"));

    if (mcp_alg_kty(alg) == MCP_KTY_OCT) {
        secret = read_secret(p, key);
    }
    else {
        FILE *f = fopen(key, "r");
        if (!f)
            die("cannot read", key);
        pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!pkey)
            die("not a PEM private key", key);
    }
    payload = json_dumps(claims, JSON_COMPACT);
    jwt = mcp_jws_sign(p, alg, pkey, (const unsigned char *)secret, secret ? strlen(secret) : 0, header, payload,
                       strlen(payload), &err);
    free(payload);
    EVP_PKEY_free(pkey);
    json_decref(claims);
    json_decref(header);
    if (!jwt)
        die("signing failed", err);
    printf("%s\n", jwt);
    return 0;
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    int rc;

    if (argc < 2)
        usage();
    apr_app_initialize(&argc, (const char *const **)&argv, NULL);
    apr_pool_create(&p, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    mcp_jose_init();
    if (!strcmp(argv[1], "--version")) {
        /* The libraries are those loaded now, as in the module's startup line. */
        puts(mcp_version_line(p, "mcp-auth-token"));
        rc = 0;
    }
    else if (!strcmp(argv[1], "verify"))
        rc = cmd_verify(p, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "keygen"))
        rc = cmd_keygen(p, argc - 2, argv + 2);
    else if (!strcmp(argv[1], "sign"))
        rc = cmd_sign(p, argc - 2, argv + 2);
    else
        usage();
    apr_pool_destroy(p);
    curl_global_cleanup();
    apr_terminate();
    return rc;
}
