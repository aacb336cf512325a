-- POSTs one pre-serialised MCP tools/call on the 2026-07-28 (stateless) wire: no session, the
-- method and tool name repeated in headers as the revision requires. Same bytes every request.
wrk.method = "POST"
wrk.path = os.getenv("MCP_PATH") or "/mcp"
wrk.headers["Host"] = "127.0.0.1"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "hello"
-- perf/auth.sh sets MCP_AUTH to "Bearer <token>" for the authenticated runs.
if os.getenv("MCP_AUTH") then
  wrk.headers["Authorization"] = os.getenv("MCP_AUTH")
end
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'

done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, errors, latency:percentile(50), latency:percentile(99)))
end
