-- wrk script: POST a JSON body of 10 doubles whose first value changes on every request, so no answer can
-- come from clipper's prediction cache (every figure measures the model path). Values are offset by the
-- wall clock and the thread, so they differ across threads and across successive wrk runs too.
local counter = 0
local key = os.getenv("CLIPPER_BENCH_KEY")  -- bench/tenancy.py: the API key to send in X-API-Key
local headers = {["Content-Type"] = "application/json", ["X-API-Key"] = key}
local threads = {}

function setup(thread)
  thread:set("offset", (os.time() % 100000) * 10000000 + #threads * 1000000000000)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local body = string.format('{"input": [%d.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]}',
                             (tonumber(offset) or 0) + counter)
  return wrk.format("POST", nil, headers, body)
end
