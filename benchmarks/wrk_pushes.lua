-- wrk script for benchmarks/fair_floor_bench.py: replays pre-signed AES pushes, one per request, in order.
-- The file (PUSHES_FILE) holds one push a line: "<path with query>\t<body>". Each wrk thread starts at its
-- own offset, so with several threads no push is sent twice before the list wraps around.
local pushes = {}
local index = 0

function init(args)
  for line in io.lines(os.getenv("PUSHES_FILE")) do
    local tab = line:find("\t", 1, true)
    pushes[#pushes + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
  end
  local threads = tonumber(os.getenv("WRK_THREADS") or "1")
  index = math.floor(#pushes * (thread_id or 0) / threads)
end

local started = 0

function setup(thread)
  thread:set("thread_id", started)
  started = started + 1
end

function request()
  index = index % #pushes + 1
  local push = pushes[index]
  return wrk.format("POST", push[1], { ["Content-Type"] = "text/xml" }, push[2])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
