-- wrk script for BenchmarkServeWrk's pipelined rows: each write carries
-- 16 keep-alive requests for /health, so the server, not the loopback TCP
-- stack, is what a request costs.
init = function(args)
  local r = {}
  for i = 1, 16 do
    r[i] = wrk.format("GET", "/health")
  end
  req = table.concat(r)
end

request = function()
  return req
end
