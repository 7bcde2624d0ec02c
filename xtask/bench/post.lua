-- wrk script for `cargo xtask bench`: POSTs BENCH_BODY as JSON, with BENCH_AUTHORIZATION if set.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization then
  wrk.headers["Authorization"] = authorization
end
