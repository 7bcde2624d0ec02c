-- wrk script: POST /api/webchat/guest-token with the seed's example body (no Origin: a server-side caller).
-- Usage: wrk -t2 -c32 -d10s --latency -s xtask/bench/guest-token.lua http://127.0.0.1:3000
wrk.method = "POST"
wrk.path = "/api/webchat/guest-token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"queueId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","language":"en-us","customerId":"cust_99887766"}'
