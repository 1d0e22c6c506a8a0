-- gateway.lua: wrk script for bench/gateway.sh.
--
-- BENCH_GW_MODE=proxy: POST /v1/proxy with a typical allowed call (X-AG-Key from
-- BENCH_GW_KEY, descriptor hash BENCH_GW_HASH); an answer counts as good only when it is a
-- 200 whose body says "allowed": true. BENCH_GW_MODE=deny: the same call with a path
-- traversal, good only when a 200 says "allowed": false (a rule_match: no token is signed).
-- BENCH_GW_MODE=health: GET /health, good when 200.
-- done() prints one line for the shell to read:
--   RESULT requests duration_us p50_us p90_us p99_us good bad socket_errors
local mode = os.getenv("BENCH_GW_MODE") or "health"
local want = nil
local threads = {}

if mode == "proxy" or mode == "deny" then
    local args = '{"path":"/srv/docs/notes/todo.md"}'
    want = '"allowed":%s*true'
    if mode == "deny" then
        args = '{"path":"../../../../etc/passwd"}'
        want = '"allowed":%s*false'
    end
    wrk.method = "POST"
    wrk.path = "/v1/proxy"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["X-AG-Key"] = os.getenv("BENCH_GW_KEY")
    wrk.body = '{"tool":"read_text_file","params":' .. args .. ','
        .. '"tool_descriptor_hash":"' .. os.getenv("BENCH_GW_HASH") .. '",'
        .. '"session_id":"bench","server":"secure-filesystem-server"}'
else
    wrk.method = "GET"
    wrk.path = "/health"
end

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    good = 0
    bad = 0
end

function response(status, headers, body)
    if status == 200 and (not want or body:find(want)) then
        good = good + 1
    else
        bad = bad + 1
        if bad == 1 then
            io.stderr:write("gateway.lua: first bad answer: ", status, " ", body or "", "\n")
        end
    end
end

function done(summary, latency, requests)
    local g, b = 0, 0
    for _, t in ipairs(threads) do
        g = g + t:get("good")
        b = b + t:get("bad")
    end
    local e = summary.errors
    io.write(string.format("RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), g, b, e.connect + e.read + e.write + e.timeout))
end
