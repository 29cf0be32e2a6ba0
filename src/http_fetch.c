#include "http_fetch.h"

#include <apr_file_io.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include <string.h>

typedef struct {
    apr_pool_t *p;
    char *buf;
    size_t len, cap, max;
    int too_big;
} body_sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    body_sink *s = userdata;
    size_t n = size * nmemb;

    if (s->len + n > s->max) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 8192;
        char *grown;
        while (cap < s->len + n + 1)
            cap *= 2;
        grown = apr_palloc(s->p, cap);
        if (s->len)
            memcpy(grown, s->buf, s->len);
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

char *mcp_form_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

int mcp_http_get(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, mcp_http_resp_t *resp,
                 const char **err)
{
    return mcp_http_request(p, url, o, NULL, NULL, resp, err);
}

int mcp_http_request(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, const char *form,
                     const char *authorization, mcp_http_resp_t *resp, const char **err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    body_sink sink = {p, NULL, 0, 0, o->max_size, 0};
    CURL *c = curl_easy_init();
    CURLcode rc;
    int https = strncasecmp(url, "https://", 8) == 0;

    if (!c) {
        *err = "curl_easy_init failed";
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Never let a redirect downgrade an https IdP to plain http. */
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_size);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->ssl_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->ssl_verify ? 2L : 0L);
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mod_mcp_auth");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    {
        struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
        if (authorization)
            hdrs = curl_slist_append(hdrs, apr_pstrcat(p, "Authorization: ", authorization, NULL));
        if (form) {
            hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
            /* A POST is never replayed by a redirect into a GET elsewhere. */
            curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        rc = curl_easy_perform(c);
        curl_slist_free_all(hdrs);
    }
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    }
    curl_easy_cleanup(c);
    if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        *err = apr_psprintf(p, "response larger than %lu bytes", (unsigned long)o->max_size);
        return -1;
    }
    if (rc != CURLE_OK) {
        *err = apr_pstrdup(p, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return -1;
    }
    resp->body = sink.buf ? sink.buf : apr_pstrdup(p, "");
    resp->body[sink.len] = '\0';
    resp->len = sink.len;
    return 0;
}

int mcp_file_read(apr_pool_t *p, const char *path, size_t max_size, mcp_http_resp_t *resp, const char **err)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    apr_status_t st;
    char ebuf[120];

    st = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, p);
    if (st == APR_SUCCESS)
        st = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (st != APR_SUCCESS) {
        *err = apr_pstrdup(p, apr_strerror(st, ebuf, sizeof(ebuf)));
        return -1;
    }
    if ((apr_uint64_t)fi.size > max_size) {
        apr_file_close(f);
        *err = apr_psprintf(p, "file larger than %lu bytes", (unsigned long)max_size);
        return -1;
    }
    n = (apr_size_t)fi.size;
    resp->body = apr_palloc(p, n + 1);
    st = apr_file_read_full(f, resp->body, n, &n);
    apr_file_close(f);
    if (st != APR_SUCCESS && st != APR_EOF) {
        *err = apr_pstrdup(p, apr_strerror(st, ebuf, sizeof(ebuf)));
        return -1;
    }
    resp->body[n] = '\0';
    resp->len = n;
    resp->status = 200;
    return 0;
}
