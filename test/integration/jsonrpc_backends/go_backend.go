// SPDX-License-Identifier: Apache-2.0
// Differential-test backend: a JSON-RPC server the way a typical Go MCP
// server decodes a body (stdlib only): json.Unmarshal into structs with
// `json:"method"` tags. encoding/json matches member names
// case-insensitively and folds U+017F / U+212A onto s / k; of duplicate
// members the last wins. Executes delete_notes (protected) and read_notes.
//
//	go_backend        -> prints {"port":N}
//	GET /_executions, POST /_reset as in test/mcp/jsonrpc_backend.mjs
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
)

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type callParams struct {
	Name      string                 `json:"name"`
	Arguments map[string]interface{} `json:"arguments"`
}

var (
	mu         sync.Mutex
	executions = []string{}
)

func reply(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Backend", "go") // tells the test the module let it through
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func dispatch(q request, diffID string) map[string]interface{} {
	out := map[string]interface{}{"jsonrpc": "2.0", "id": q.ID}
	if q.Method != "tools/call" {
		out["result"] = map[string]interface{}{}
		return out
	}
	var p callParams
	if err := json.Unmarshal(q.Params, &p); err != nil {
		out["error"] = map[string]interface{}{"code": -32602, "message": "Invalid params"}
		return out
	}
	switch p.Name {
	case "delete_notes":
		mu.Lock()
		executions = append(executions, diffID)
		mu.Unlock()
		out["result"] = "deleted"
	case "read_notes":
		out["result"] = "notes"
	default:
		out["error"] = map[string]interface{}{"code": -32602, "message": "Unknown tool"}
	}
	return out
}

func handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		reply(w, 400, nil)
		return
	}
	switch {
	case bytes.HasSuffix([]byte(r.URL.Path), []byte("/_executions")):
		mu.Lock()
		defer mu.Unlock()
		reply(w, 200, executions)
		return
	case bytes.HasSuffix([]byte(r.URL.Path), []byte("/_reset")):
		mu.Lock()
		executions = []string{}
		mu.Unlock()
		reply(w, 200, map[string]string{})
		return
	}
	parseError := map[string]interface{}{"jsonrpc": "2.0", "id": nil,
		"error": map[string]interface{}{"code": -32700, "message": "Parse error"}}
	diffID := r.Header.Get("X-Diff-Id")
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []request
		if err := json.Unmarshal(body, &batch); err != nil {
			reply(w, 400, parseError)
			return
		}
		out := []interface{}{}
		for _, q := range batch {
			out = append(out, dispatch(q, diffID))
		}
		reply(w, 200, out)
		return
	}
	var q request
	if err := json.Unmarshal(body, &q); err != nil {
		reply(w, 400, parseError)
		return
	}
	reply(w, 200, dispatch(q, diffID))
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("{\"port\":%d}\n", ln.Addr().(*net.TCPAddr).Port)
	http.Serve(ln, http.HandlerFunc(handle))
}
