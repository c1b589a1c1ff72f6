-- wrk script: realistic gateway traffic for POST /rssi_readings.
--
--   wrk -t1 -c16 -d15s --latency -s tools/ingest_mix.lua http://127.0.0.1:6543 \
--       -- houses=60 mode=mix gateways=0,1,2,3
--
-- The traffic model (tools/traffic.py holds the same model in Python; keep
-- the two in step):
--   * a house h has 4 gateways "h<h>-g<0..3>", 20 badges "h<h>-b<0..19>" and
--     10 beacons "h<h>-r<0..9>";
--   * a badge's payload (3 strongest beacons with their RSSI) changes every
--     5 s of wall-clock time; each badge has its own phase (0..4 s) so that
--     the updates of a house are spread over the 5 s;
--   * the badge advertises about once a second and every gateway of its
--     house posts every advertisement.
-- Requests walk round-robin over (gateway, badge, house). With houses =
-- offered req/s / 80 each (badge, 5-s update) payload is posted
-- 5 advertisements x 4 gateways = 20 times, i.e. 95 % duplicates, whatever
-- the rate. Only the number of houses is tied to the rate; the payloads are
-- tied to real time.
--
-- Arguments (after --):
--   houses=N         number of houses (default 60, ~4,800 req/s)
--   mode=mix         realistic mix (default)
--   mode=originals   every request a new payload (profiles the insert path)
--   gateways=0,1     post as these gateways only (to split the houses'
--                    gateways between two servers, as a balancer would)
--   tag=x            prefix of ids (keeps separate runs apart)
--   clock=count      advance the payloads by requests, not by seconds: one
--                    "second" is one round of every (gateway, badge, house),
--                    so each payload is posted exactly 5 x 4 times (95 %
--                    duplicates) whatever the rate; for one wrk process
--                    posting as all four gateways (default clock=time)
--   offset=N         start the request count at N (with clock=count: carry
--                    on from a run that made N requests, same tag)
--
-- done() prints one line "BENCH {json}" with counts, status mix and latency
-- percentiles (microseconds) for tools/bench_ingest.py to parse.

local houses = 60
local mode = "mix"
local gateways = { 0, 1, 2, 3 }
local tag = "h"
local clock = "time"
local offset = 0
-- Global, so that done() can read it with thread:get().
counter = 0
local thread_list = {}
-- Globals: setup() sets thread_index in each thread's Lua state and done()
-- reads each thread's counts with thread:get().
thread_index = 0
counts = {}
local path = "/rssi_readings"
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("thread_index", #thread_list)
  table.insert(thread_list, thread)
end

function init(args)
  for _, arg in ipairs(args) do
    local key, value = string.match(arg, "^([%w_]+)=(.*)$")
    if key == "houses" then
      houses = math.max(1, tonumber(value))
    elseif key == "mode" then
      mode = value
    elseif key == "tag" then
      tag = value
    elseif key == "gateways" then
      gateways = {}
      for g in string.gmatch(value, "%d+") do
        table.insert(gateways, tonumber(g))
      end
    elseif key == "path" then
      path = value
    elseif key == "clock" then
      clock = value
    elseif key == "offset" then
      offset = tonumber(value)
    end
  end
end

-- The same arithmetic as traffic.payload() in tools/traffic.py.
local function payload(h, b, g, now)
  local badge = h * 20 + b
  local epoch = math.floor((now + badge % 5) / 5)
  local first = (b + epoch) % 10
  local parts = {}
  for k = 0, 2 do
    local rssi = -40 - ((epoch * 7 + b * 13 + k * 11) % 50)
    parts[#parts + 1] =
      string.format('"%s%d-r%d":%d', tag, h, (first + k) % 10, rssi)
  end
  return string.format(
    '{"badge_id":"%s%d-b%d","pi_id":"%s%d-g%d","badge_strength":%d,"beacons":{%s}}',
    tag, h, b, tag, h, g, -55 - g * 5, table.concat(parts, ",")
  )
end

function request()
  counter = counter + 1
  local body
  if mode == "originals" then
    -- A new payload each time: a beacon id carrying this thread's counter.
    body = string.format(
      '{"badge_id":"%su%d-b%d","pi_id":"%su-g%d","beacons":{"u%d-%d":-50,"r1":-60}}',
      tag, thread_index, counter % 1000, tag, thread_index, thread_index, counter
    )
  else
    local i = counter + offset
    local n = #gateways
    local g = gateways[(i % n) + 1]
    local b = math.floor(i / n) % 20
    local h = math.floor(i / (n * 20)) % houses
    local now = os.time()
    if clock == "count" then
      now = math.floor(i / (n * 20 * houses))
    end
    body = payload(h, b, g, now)
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  local generated = 0
  for _, thread in ipairs(thread_list) do
    generated = generated + thread:get("counter")
    local c = thread:get("counts")
    for status, n in pairs(c) do
      total[status] = (total[status] or 0) + n
    end
  end
  local statuses = {}
  for status, n in pairs(total) do
    statuses[#statuses + 1] = string.format('"%d":%d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"generated":%d,"duration_us":%d,"bytes":%d,"statuses":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, generated, summary.duration, summary.bytes,
    table.concat(statuses, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
