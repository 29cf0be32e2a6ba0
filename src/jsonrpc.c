/* SPDX-License-Identifier: Apache-2.0 */
#include "jsonrpc.h"

#include <stdarg.h>
#include <apr_strings.h>
#include <string.h>

/* A strict RFC 8259 reader that records only what tool scopes need, in one
 * pass and in bounded memory: an explicit stack of one byte per nesting
 * level, fixed at MCP_RPC_MAX_DEPTH (no C recursion, no growth per
 * element); member names of the open message and params object in fixed
 * tables; everything a message needs in a scratch pool cleared per message.
 * Nothing is kept per array element or per member of other objects, so an
 * adversarial body costs at most its own size again (one unescaped string)
 * whatever its shape. Number sizes are bounded by the body only. */

/* Frames on the stack: what the open container is to us. */
enum { F_ARRAY = 'a', F_OBJECT = 'o', F_BATCH = 'b', F_MESSAGE = 'm', F_PARAMS = 'p' };

/* What the value about to be read is. */
enum { T_NONE, T_TOP, T_MESSAGE, T_METHOD, T_ID, T_PARAMS, T_NAME, T_URI };

/* The member names a JSON-RPC / MCP reader looks up (SPEC 6). */
static const char *const MEMBERS[] = {"jsonrpc", "id", "method", "params", "name", "arguments", "uri"};
#define NMEMBERS (sizeof(MEMBERS) / sizeof(MEMBERS[0]))

typedef struct {
    const char *method, *name, *uri;      /* string values, NULL otherwise */
    size_t method_len, name_len, uri_len; /* their decoded lengths (an escaped NUL included) */
    const char *id;                       /* raw text of a string or number id */
    int ids;                              /* members that are or fold to "id" */
} message_t;

/* The member names of one message or params object seen so far (for the
 * duplicate check): a hash first, the bytes only when hashes match. */
typedef struct {
    struct {
        unsigned hash;
        const char *key;
        size_t len;
    } k[MCP_RPC_MAX_MEMBERS];
    int n;
} members_t;

typedef struct {
    apr_pool_t *p;       /* what outlives the parse: out's fields */
    apr_pool_t *scratch; /* one message's names and values, cleared per message */
    const unsigned char *s;
    size_t len, pos;
    char stack[MCP_RPC_MAX_DEPTH];
    size_t depth;
    int messages;      /* in the batch so far */
    members_t seen[2]; /* the open message / params object */
    message_t msg;
    mcp_rpc_body_t *out;
} parser_t;

/* ---- folding ------------------------------------------------------------ */

/* Next code point of a NUL-terminated string; a byte that does not start a
 * well-formed sequence stands for itself, above the Unicode range so it
 * never equals a character. */
static unsigned next_cp(const unsigned char **sp)
{
    const unsigned char *s = *sp;
    unsigned c = s[0], cp;
    int n, i;

    if (c < 0x80) {
        *sp = s + 1;
        return c;
    }
    n = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : 0;
    cp = c & (0x3F >> n);
    for (i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            break;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (n == 0 || i <= n) {
        *sp = s + 1;
        return 0x110000 + c;
    }
    *sp = s + n + 1;
    return cp;
}

/* Unicode simple case folding restricted to what can land on ASCII: the
 * ASCII letters and the two characters CaseFolding.txt folds onto them. */
static unsigned fold_cp(unsigned cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + ('a' - 'A');
    if (cp == 0x017F) /* LATIN SMALL LETTER LONG S */
        return 's';
    if (cp == 0x212A) /* KELVIN SIGN */
        return 'k';
    return cp;
}

int mcp_jsonrpc_name_equal(const char *a, const char *b)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    while (*x && *y)
        if (fold_cp(next_cp(&x)) != fold_cp(next_cp(&y)))
            return 0;
    return *x == '\0' && *y == '\0';
}

const char *mcp_jsonrpc_name_key(apr_pool_t *p, const char *s, apr_size_t *klen)
{
    const unsigned char *x = (const unsigned char *)s;
    unsigned char *key = apr_palloc(p, 4 * strlen(s) + 1), *o = key;

    while (*x) {
        unsigned cp = fold_cp(next_cp(&x));
        *o++ = (unsigned char)(cp >> 24);
        *o++ = (unsigned char)(cp >> 16);
        *o++ = (unsigned char)(cp >> 8);
        *o++ = (unsigned char)cp;
    }
    *klen = (apr_size_t)(o - key);
    return (const char *)key;
}

/* ---- refusals ----------------------------------------------------------- */

static int parse_error(parser_t *P, const char *what)
{
    P->out->code = MCP_RPC_PARSE_ERROR;
    P->out->cause = apr_psprintf(P->p, "not JSON (RFC 8259): %s at byte %" APR_SIZE_T_FMT, what, P->pos);
    return -1;
}

/* A limit (SPEC 6): reading stops here; no later error can replace it. */
static int too_much(parser_t *P, int code, const char *cause)
{
    P->out->code = code;
    P->out->cause = apr_psprintf(P->p, "%s at byte %" APR_SIZE_T_FMT, cause, P->pos);
    return -1;
}

/* The first ambiguity is kept; reading goes on, a later syntax error wins. */
static void invalid(parser_t *P, const char *cause)
{
    if (P->out->code == 0) {
        P->out->code = MCP_RPC_INVALID_REQUEST;
        P->out->cause = cause;
    }
}

/* The same for a member name; formatted only for the first one, so a body
 * of many bad members costs no memory per member. */
static void invalid_member(parser_t *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void invalid_member(parser_t *P, const char *fmt, ...)
{
    va_list ap;
    if (P->out->code != 0)
        return;
    va_start(ap, fmt);
    invalid(P, apr_pvsprintf(P->p, fmt, ap));
    va_end(ap);
}

/* ---- lexical ------------------------------------------------------------ */

static void skip_ws(parser_t *P)
{
    while (P->pos < P->len) {
        unsigned char c = P->s[P->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        P->pos++;
    }
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    }
    else
        return 0;
    if (n < need + 1 || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i <= need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return need + 1;
}

static int hex4(const unsigned char *s, unsigned *v)
{
    int i;
    *v = 0;
    for (i = 0; i < 4; i++) {
        unsigned char c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? c - 'a' + 10u
                     : c >= 'A' && c <= 'F' ? c - 'A' + 10u
                                            : 16u;
        if (d > 15)
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* The \uXXXX escape (or surrogate pair) at s[i] ('\\' at i): its code
 * point and the escape's length, 0 when malformed or a lone surrogate
 * (parsers disagree on those: refused). */
static size_t unicode_escape(const unsigned char *s, size_t n, size_t i, unsigned *cp)
{
    unsigned lo;
    if (i + 6 > n || hex4(s + i + 2, cp) != 0)
        return 0;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return 0;
    if (*cp < 0xD800 || *cp > 0xDBFF)
        return 6;
    if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s + i + 8, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescapes the string s[from..to) already checked by read_string; never
 * longer than its escaped form. NUL-terminated, *olen without the NUL. */
static char *unescape(apr_pool_t *p, const unsigned char *s, size_t from, size_t to, size_t *olen)
{
    static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    char *o = apr_palloc(p, to - from + 1);
    size_t n = 0, i = from;
    unsigned cp = 0; /* read_string checked every escape: unicode_escape sets it */

    while (i < to) {
        if (s[i] != '\\') {
            o[n++] = (char)s[i++];
        }
        else if (s[i + 1] == 'u') {
            i += unicode_escape(s, to, i, &cp);
            n += put_utf8(o + n, cp);
        }
        else {
            o[n++] = strchr(simple, s[i + 1])[1];
            i += 2;
        }
    }
    o[n] = '\0';
    *olen = n;
    return o;
}

/* The string at P->pos ('"'): checked, and unescaped into *val when val. */
static int read_string(parser_t *P, char **val, size_t *vlen)
{
    const unsigned char *s = P->s;
    size_t start = ++P->pos, n = P->len, k;
    unsigned cp;

    for (;;) {
        unsigned char c;
        if (P->pos >= n)
            return parse_error(P, "unterminated string");
        c = s[P->pos];
        if (c == '"')
            break;
        if (c < 0x20)
            return parse_error(P, "control character in a string");
        if (c == '\\') {
            if (P->pos + 1 >= n)
                return parse_error(P, "unterminated string");
            c = s[P->pos + 1];
            if (c == 'u') {
                if ((k = unicode_escape(s, n, P->pos, &cp)) == 0)
                    return parse_error(P, "bad \\u escape or lone UTF-16 surrogate");
                P->pos += k;
            }
            else if (c && strchr("\"\\/bfnrt", c)) {
                P->pos += 2;
            }
            else
                return parse_error(P, "bad escape");
            continue;
        }
        if ((k = utf8_seq(s + P->pos, n - P->pos)) == 0)
            return parse_error(P, "invalid UTF-8");
        P->pos += k;
    }
    if (val)
        *val = unescape(P->scratch, s, start, P->pos, vlen);
    P->pos++;
    return 0;
}

static size_t digits(parser_t *P)
{
    size_t from = P->pos;
    while (P->pos < P->len && P->s[P->pos] >= '0' && P->s[P->pos] <= '9')
        P->pos++;
    return P->pos - from;
}

/* RFC 8259 number, any length and precision. */
static int read_number(parser_t *P)
{
    const unsigned char *s = P->s;
    if (s[P->pos] == '-')
        P->pos++;
    if (P->pos < P->len && s[P->pos] == '0')
        P->pos++;
    else if (P->pos >= P->len || s[P->pos] < '1' || s[P->pos] > '9' || digits(P) == 0)
        return parse_error(P, "bad number");
    if (P->pos < P->len && s[P->pos] == '.') {
        P->pos++;
        if (digits(P) == 0)
            return parse_error(P, "bad number");
    }
    if (P->pos < P->len && (s[P->pos] == 'e' || s[P->pos] == 'E')) {
        P->pos++;
        if (P->pos < P->len && (s[P->pos] == '+' || s[P->pos] == '-'))
            P->pos++;
        if (digits(P) == 0)
            return parse_error(P, "bad number");
    }
    return 0;
}

static int read_literal(parser_t *P)
{
    static const char *const lits[] = {"true", "false", "null"};
    size_t i, n;
    for (i = 0; i < 3; i++) {
        n = strlen(lits[i]);
        if (P->len - P->pos >= n && memcmp(P->s + P->pos, lits[i], n) == 0) {
            P->pos += n;
            return 0;
        }
    }
    return parse_error(P, "unexpected byte");
}

/* ---- the stack and the messages ---------------------------------------- */

/* Deeper than any MCP message goes (serde_json, the Rust SDK's parser,
 * stops at 128 too): refused as -32600 rather than read. */
static int push(parser_t *P, char frame)
{
    if (P->depth == MCP_RPC_MAX_DEPTH) {
        P->out->code = MCP_RPC_INVALID_REQUEST;
        P->out->cause =
            apr_psprintf(P->p, "JSON nested deeper than %d at byte %" APR_SIZE_T_FMT, MCP_RPC_MAX_DEPTH, P->pos);
        return -1;
    }
    P->stack[P->depth++] = frame;
    return 0;
}

static int begin_message(parser_t *P)
{
    if (P->depth > 0 && ++P->messages > MCP_RPC_MAX_MESSAGES)
        return too_much(P, MCP_RPC_TOO_MANY,
                        apr_psprintf(P->p, "more than %d messages in a batch", MCP_RPC_MAX_MESSAGES));
    apr_pool_clear(P->scratch);
    memset(&P->msg, 0, sizeof(P->msg));
    P->seen[0].n = 0;
    return 0;
}

static const char *keep(parser_t *P, const char *s)
{
    return s ? apr_pstrdup(P->p, s) : NULL;
}

/* The whole value, an escaped NUL and what follows it included. */
static const char *keep_len(parser_t *P, const char *s, size_t len)
{
    return s ? apr_pstrmemdup(P->p, s, len) : NULL;
}

static void end_message(parser_t *P, int single)
{
    message_t *m = &P->msg;
    if (m->method && mcp_jsonrpc_name_equal(m->method, "tools/call")) {
        if (!m->name)
            invalid(P, "a tools/call without a string params.name");
        else
            APR_ARRAY_PUSH(P->out->tool_calls, const char *) = keep(P, m->name);
    }
    if (single) {
        P->out->method = keep_len(P, m->method, m->method_len);
        P->out->name = keep_len(P, m->name, m->name_len);
        P->out->uri = keep_len(P, m->uri, m->uri_len);
        P->out->method_len = m->method ? m->method_len : 0;
        P->out->name_len = m->name ? m->name_len : 0;
        P->out->uri_len = m->uri ? m->uri_len : 0;
        if (m->ids == 1 && m->id)
            P->out->id = keep(P, m->id);
    }
}

static void pop(parser_t *P)
{
    char frame = P->stack[--P->depth];
    if (frame == F_MESSAGE)
        end_message(P, P->depth == 0);
}

/* A member name of a message or params object: refused when duplicated or
 * when it equals a JSON-RPC/MCP member name only under case folding (the C
 * string view too: "name\u0000x" is "name" to a C reader). Returns what
 * its value is to us. */
static unsigned key_hash(const char *key, size_t klen)
{
    unsigned h = 2166136261u; /* FNV-1a */
    size_t i;
    for (i = 0; i < klen; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h;
}

/* Records key; 1 when it was there already. */
static int seen_before(members_t *seen, const char *key, size_t klen)
{
    unsigned h = key_hash(key, klen);
    int i;
    for (i = 0; i < seen->n; i++)
        if (seen->k[i].hash == h && seen->k[i].len == klen && memcmp(seen->k[i].key, key, klen) == 0)
            return 1;
    seen->k[seen->n].hash = h;
    seen->k[seen->n].key = key;
    seen->k[seen->n].len = klen;
    seen->n++;
    return 0;
}

static int check_member(parser_t *P, char frame, const char *key, size_t klen)
{
    members_t *seen = &P->seen[frame == F_MESSAGE ? 0 : 1];
    const char *exact = NULL;
    size_t i;

    if (seen->n == MCP_RPC_MAX_MEMBERS)
        return too_much(P, MCP_RPC_TOO_MANY,
                        apr_psprintf(P->p, "more than %d members in a message or its params", MCP_RPC_MAX_MEMBERS));

    for (i = 0; i < NMEMBERS; i++) {
        int same = klen == strlen(MEMBERS[i]) && memcmp(key, MEMBERS[i], klen) == 0;
        if (same)
            exact = MEMBERS[i];
        else if (mcp_jsonrpc_name_equal(key, MEMBERS[i]))
            invalid_member(P, "a member name that folds to \"%s\"", MEMBERS[i]);
        if (frame == F_MESSAGE && i == 1 && (same || mcp_jsonrpc_name_equal(key, "id")))
            P->msg.ids++;
    }
    if (seen_before(seen, key, klen))
        invalid_member(P, exact ? "duplicate member \"%s\"" : "a duplicate member name%s", exact ? exact : "");
    if (!exact)
        return T_NONE;
    if (frame == F_MESSAGE)
        return strcmp(exact, "method") == 0   ? T_METHOD
               : strcmp(exact, "id") == 0     ? T_ID
               : strcmp(exact, "params") == 0 ? T_PARAMS
                                              : T_NONE;
    return strcmp(exact, "name") == 0 ? T_NAME : strcmp(exact, "uri") == 0 ? T_URI : T_NONE;
}

/* A scalar value that is to be recorded. */
static int read_scalar(parser_t *P, int target)
{
    size_t from = P->pos, vlen = 0;
    char *val = NULL;
    int is_string = P->s[P->pos] == '"';
    int want = is_string && (target == T_METHOD || target == T_NAME || target == T_URI);
    int rc = is_string                                                       ? read_string(P, want ? &val : NULL, &vlen)
             : P->s[from] == '-' || (P->s[from] >= '0' && P->s[from] <= '9') ? read_number(P)
                                                                             : read_literal(P);
    if (rc != 0)
        return rc;
    if (target == T_METHOD) {
        P->msg.method = val;
        P->msg.method_len = vlen;
    }
    else if (target == T_NAME) {
        P->msg.name = val;
        P->msg.name_len = vlen;
    }
    else if (target == T_URI) {
        P->msg.uri = val;
        P->msg.uri_len = vlen;
    }
    else if (target == T_ID && (is_string || P->s[from] == '-' || (P->s[from] >= '0' && P->s[from] <= '9')))
        P->msg.id = apr_pstrmemdup(P->scratch, (const char *)P->s + from, P->pos - from);
    return 0;
}

/* ---- the grammar -------------------------------------------------------- */

enum { S_VALUE, S_FIRST_MEMBER, S_MEMBER, S_FIRST_ELEMENT, S_AFTER };

static int element_target(parser_t *P)
{
    return P->stack[P->depth - 1] == F_BATCH ? T_MESSAGE : T_NONE;
}

static int parse(parser_t *P)
{
    int state = S_VALUE, target = T_TOP;
    char *key;
    size_t klen;

    for (;;) {
        char top = P->depth ? P->stack[P->depth - 1] : 0;
        int is_object = top == F_OBJECT || top == F_MESSAGE || top == F_PARAMS;

        skip_ws(P);
        if (P->pos >= P->len && !(state == S_AFTER && P->depth == 0))
            return parse_error(P, state == S_VALUE && P->depth == 0 ? "empty body" : "the body ends inside a value");
        switch (state) {
        case S_VALUE:
            if (P->s[P->pos] == '{') {
                char frame = F_OBJECT;
                if (target == T_TOP || target == T_MESSAGE) {
                    frame = F_MESSAGE;
                    if (begin_message(P) != 0)
                        return -1;
                }
                else if (target == T_PARAMS) {
                    frame = F_PARAMS;
                    P->seen[1].n = 0;
                }
                if (push(P, frame) != 0)
                    return -1;
                P->pos++;
                state = S_FIRST_MEMBER;
            }
            else if (P->s[P->pos] == '[') {
                if (push(P, target == T_TOP ? F_BATCH : F_ARRAY) != 0)
                    return -1;
                P->out->is_batch |= target == T_TOP;
                P->pos++;
                state = S_FIRST_ELEMENT;
            }
            else {
                if (read_scalar(P, target) != 0)
                    return -1;
                state = S_AFTER;
            }
            break;
        case S_FIRST_MEMBER:
        case S_MEMBER:
            if (state == S_FIRST_MEMBER && P->s[P->pos] == '}') {
                P->pos++;
                pop(P);
                state = S_AFTER;
                break;
            }
            if (P->s[P->pos] != '"')
                return parse_error(P, "expected a member name");
            if (read_string(P, top == F_OBJECT ? NULL : &key, &klen) != 0)
                return -1;
            target = top == F_OBJECT ? T_NONE : check_member(P, top, key, klen);
            if (target < 0)
                return -1;
            skip_ws(P);
            if (P->pos >= P->len || P->s[P->pos] != ':')
                return parse_error(P, "expected ':'");
            P->pos++;
            state = S_VALUE;
            break;
        case S_FIRST_ELEMENT:
            if (P->s[P->pos] == ']') {
                P->pos++;
                pop(P);
                state = S_AFTER;
                break;
            }
            target = element_target(P);
            state = S_VALUE;
            break;
        case S_AFTER:
            if (P->depth == 0)
                return P->pos == P->len ? 0 : parse_error(P, "bytes after the JSON value");
            if (P->s[P->pos] == ',') {
                P->pos++;
                if (is_object)
                    state = S_MEMBER;
                else {
                    target = element_target(P);
                    state = S_VALUE;
                }
            }
            else if (P->s[P->pos] == (is_object ? '}' : ']')) {
                P->pos++;
                pop(P);
            }
            else
                return parse_error(P, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
            break;
        }
    }
}

int mcp_jsonrpc_parse(apr_pool_t *p, const char *body, size_t len, mcp_rpc_body_t *out)
{
    parser_t P;

    memset(out, 0, sizeof(*out));
    out->tool_calls = apr_array_make(p, 4, sizeof(const char *));
    out->id = "null";
    memset(&P, 0, sizeof(P));
    P.p = p;
    P.s = (const unsigned char *)(body ? body : "");
    P.len = body ? len : 0;
    P.out = out;
    if (apr_pool_create(&P.scratch, p) != APR_SUCCESS) {
        out->code = MCP_RPC_TOO_MANY;
        out->cause = "out of memory";
        return out->code;
    }
    if (P.len >= 3 && memcmp(P.s, "\xEF\xBB\xBF", 3) == 0)
        parse_error(&P, "a UTF-8 byte order mark");
    else if (parse(&P) != 0) {
        out->id = "null";
        apr_array_clear(out->tool_calls);
    }
    if (out->code != 0)
        apr_array_clear(out->tool_calls);
    apr_pool_destroy(P.scratch);
    return out->code;
}
