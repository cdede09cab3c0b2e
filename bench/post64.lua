-- wrk script: POST a JSON body of 64 doubles in [0, 1] (one 8x8 digits-sized input, what bench/frameworks.py's
-- models take) whose first value changes on every request, so no answer can come from clipper's prediction
-- cache. As in post.lua, the changing value is offset by the wall clock and the thread, so it differs across
-- threads and across successive wrk runs; the other 63 values are fixed.
local counter = 0
local threads = {}
local values = {}
for i = 1, 63 do
  values[i] = string.format("%.4f", (i * 37 % 17) / 16)
end
local rest = table.concat(values, ", ")

function setup(thread)
  thread:set("offset", (os.time() % 100000) * 10000000 + #threads * 1000000000000)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local body = string.format('{"input": [0.%014d, %s]}', (tonumber(offset) or 0) + counter, rest)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
