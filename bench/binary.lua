-- wrk script: POST one fixed V2 binary-extension body (the file named by the first script argument) with its
-- Inference-Header-Content-Length (the second argument). The body is read once; every request sends it.
function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = args[2]
end
