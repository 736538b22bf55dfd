-- wrk script for benchmarks/serve_load.py --generator wrk: a native load generator that leaves the
-- server the cores the Python one took. Usage (serve_load.py runs it):
--   wrk -tT -cC -dDs --timeout 180s -s serve_load.lua http://HOST:PORT -- RATE MANIFEST T
-- RATE 0 is a closed loop (each connection sends again as soon as it is answered); RATE > 0 paces
-- the requests of each thread on one schedule, RATE/threads per second, whatever was answered.
-- MANIFEST: one line per image, "path<TAB>cli score<TAB>cli verdict". Each request is one image as a
-- form whose file name is its index, so the server's answer (it echoes the name) is checked against
-- the CLI's score for that image. Prints one JSON line of counts and latency percentiles.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clock, timespec *t);
]]
local ts = ffi.new("timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local requests, expected, verdicts, count = {}, {}, {}, 0
local rate, start, sent = 0, nil, 0
-- Globals: done() reads them from each thread's state.
answered, refused, other, lost, mismatched, exact, behind, issued = 0, 0, 0, 0, 0, 0, 0, 0

function init(args)
  rate = tonumber(args[1]) / tonumber(args[3] or "1")
  local boundary = "serve-load-boundary"
  local i = 0
  for line in io.lines(args[2]) do
    local path, score, verdict = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)")
    local f = assert(io.open(path, "rb"))
    local data = f:read("*a")
    f:close()
    local body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"media\"; filename=\"" .. i ..
        "\"\r\nContent-Type: image/jpeg\r\n\r\n" .. data .. "\r\n--" .. boundary .. "--\r\n"
    requests[i] = wrk.format("POST", "/v1/detect", {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
    expected[i], verdicts[i] = tonumber(score), verdict
    i = i + 1
  end
  count = i
end

function delay()
  if rate <= 0 then return 0 end
  local t = now()
  if not start then start = t end
  local due = start + sent / rate
  sent = sent + 1
  if due < t then
    behind = behind + 1
    return 0
  end
  return (due - t) * 1000
end

local next_image = 0
function request()
  local r = requests[next_image]
  next_image = (next_image + 1) % count
  issued = issued + 1
  return r
end

function response(status, headers, body)
  if status == 429 or status == 503 then
    refused = refused + 1
  elseif status ~= 200 then
    other = other + 1
  else
    local name = body:match('"name":"(%d+)"')
    local score = body:match('"score":(%-?[%d%.eE%+%-]+)')
    local verdict = body:match('"verdict":"(%a+)"')
    if not name or not score then
      lost = lost + 1
    else
      local want = expected[tonumber(name)]
      local got = tonumber(score)
      if verdict ~= verdicts[tonumber(name)] or math.abs(got - want) > 1e-5 then
        mismatched = mismatched + 1
      else
        answered = answered + 1
        if got == want then exact = exact + 1 end
      end
    end
  end
end

function done(summary, latency, requests)
  local totals = { answered = 0, refused = 0, other = 0, lost = 0, mismatched = 0, exact = 0, behind = 0, issued = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do totals[key] = totals[key] + thread:get(key) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"issued": %d, "requests": %d, "seconds": %.3f, "answered": %d, "refused": %d, "other_status": %d, "lost": %d, "mismatched": %d, ' ..
    '"exact": %d, "behind_schedule": %d, "socket_errors": %d, "timeouts": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    totals.issued, summary.requests, summary.duration / 1e6, totals.answered, totals.refused, totals.other, totals.lost, totals.mismatched,
    totals.exact, totals.behind, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
