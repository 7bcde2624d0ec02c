-- wrk script: POST /api/v2/webchat/instances/guests with a bearer token.
-- Usage: TOKEN=<access token> wrk -t2 -c64 -d10s -s mock-genesys/bench/create-guest.lua http://127.0.0.1:8081
-- Optional: QUEUE_ID (defaults to the built-in Support queue).

local token = os.getenv("TOKEN")
if token == nil or token == "" then
  error("set TOKEN to an access token of local-client (POST /oauth/token)")
end
local queue = os.getenv("QUEUE_ID") or "a1b2c3d4-e5f6-7890-abcd-ef1234567890"

wrk.method = "POST"
wrk.path = "/api/v2/webchat/instances/guests"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"routing":{"queueId":"' .. queue .. '","language":"en-us"},'
  .. '"attributes":{"customerId":"bench-customer","sourceSystem":"wrk"}}'

function done(summary, latency, requests)
  io.write(string.format("requests: %d, non-2xx/3xx: %d\n", summary.requests, summary.errors.status))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
