/* SPDX-License-Identifier: Apache-2.0 */
#include "version.h"

#include <apr_strings.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

const char *mcp_version_line(apr_pool_t *p, const char *program)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    return apr_psprintf(p, "%s/%s (%s, libcurl/%s, jansson/%s)", program, MCP_AUTH_VERSION,
                        OpenSSL_version(OPENSSL_VERSION), curl ? curl->version : "unknown", jansson_version_str());
}
