-- tests/e2e/wrk_check_body.lua — wrk -s: every response must be a 200 whose body is byte for byte
-- the file named by $WRK_BODY; done() prints "bodies checked N, wrong M" over all threads.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
  want = f:read("*a")
  f:close()
  checked, bad = 0, 0
end

function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or body ~= want then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local c, b = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("checked")
    b = b + t:get("bad")
  end
  io.write(string.format("bodies checked %d, wrong %d\n", c, b))
end
