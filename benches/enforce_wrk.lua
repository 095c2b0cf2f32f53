-- wrk script for `riskstream enforce`: POST /v1/decide over the sessions
-- the load tool (benches/enforce_load.rs) published, load-0 .. load-9999,
-- rotating four actions (low, high, critical, medium).
--
--   wrk -t2 -c16 -d10s --latency -s benches/enforce_wrk.lua http://127.0.0.1:9465
wrk.method = "POST"
wrk.path = "/v1/decide"
wrk.headers["Content-Type"] = "application/json"

local actions = { "report.view", "data.export", "payment.approve", "profile.update" }
local n = 0

request = function()
  n = n + 1
  local body = string.format('{"session":"load-%d","action":"%s"}', n % 10000, actions[n % 4 + 1])
  return wrk.format(nil, nil, nil, body)
end
