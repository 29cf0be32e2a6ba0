# SPDX-License-Identifier: Apache-2.0
"""The integration test harness of mod_mcp_auth (httpd's test/pyhttpd is the model).

Everything runs on 127.0.0.1 with dynamically chosen ports and stops by itself.

* env      the repository, apache2, the build outputs; ports, pids, permissions
* tokens   keys (one per JWS algorithm plus special ones), JWS by hand, the Minter;
           ISSUED records every token made or sent
* tls      a throw-away CA and a server certificate for IP:127.0.0.1
* servers  the threaded HTTPS IdP serving JWKS documents, counting requests per path
* httpd    configuration, start/stop, raw requests, the error log; STARTED lists
           every httpd started
* asserts  the shared assertions (Bearer challenge grammar, 200 from the CGI, 401)
* node     Node.js peers in test/mcp (npm ci when needed, ready line)
* checks   after every test: no child crash, no issued token in any error log

conftest.py wires these into fixtures; test files import from ``harness.*``.
"""
