-- wrk script for bench/ingest.py: sends pre-built HTTP requests, each at most once.
--
--   wrk -t2 -c50 -d20s --latency -s bench/wrk/deliveries.lua http://127.0.0.1:PORT -- PREFIX
--
-- Thread N (0-based) reads PREFIX.N.req, written by bench/ingest.py: records of
-- "<byte length>\n<raw HTTP/1.1 request>", each a complete request (request line, Host,
-- signature headers, Content-Length, body). The threads' files hold different deliveries, so
-- no delivery is sent by two threads.
--
-- Each request is sent once; a thread that runs out starts over from its first request and
-- counts every such resend in `replayed`. For the webhook that is a deliberate duplicate
-- delivery (answered 200 "duplicate", stored nothing); bench/ingest.py writes enough
-- deliveries that it should not happen. The bare endpoint stores nothing, so its list may cycle.
--
-- done() prints one line "WRK_RESULT key=value ..." with wrk's summary, its latency
-- percentiles (microseconds) and the per-thread counters summed: requests generated, replays,
-- responses by status and, from the webhook's JSON answer, by inbox status (processed, ignored,
-- failed, queued, duplicate).

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local prefix = args[1]
   local path = prefix .. "." .. id .. ".req"
   local file = assert(io.open(path, "rb"))
   local data = file:read("*a")
   file:close()
   requests = {}
   local pos, size = 1, #data
   while pos <= size do
      local newline = string.find(data, "\n", pos, true)
      local length = tonumber(string.sub(data, pos, newline - 1))
      requests[#requests + 1] = string.sub(data, newline + 1, newline + length)
      pos = newline + 1 + length
   end
   loaded = #requests
   -- wrk 4 calls request() once in thread 0's state right after init, to check the script
   -- (script_verify_request); that request is parsed, never sent, so it must not use a delivery.
   verifying = (id == 0)
   generated, replayed = 0, 0
   responses, ok, non2xx = 0, 0, 0
   statuses = {}   -- HTTP status -> count (non-2xx only)
   outcomes = {}   -- inbox status from the JSON answer -> count
end

function request()
   if verifying then
      verifying = false
      return requests[1]
   end
   local count = #requests
   generated = generated + 1
   if generated > count then
      replayed = replayed + 1
   end
   return requests[(generated - 1) % count + 1]
end

function response(status, headers, body)
   responses = responses + 1
   if status >= 200 and status < 300 then
      ok = ok + 1
      if body ~= nil and #body > 0 then
         local outcome = string.match(body, '"status"%s*:%s*"([%w_]+)"')
         if outcome ~= nil then
            outcomes[outcome] = (outcomes[outcome] or 0) + 1
         end
      end
   else
      non2xx = non2xx + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

local function encode(map)
   -- "k:v,k:v"
   local parts = {}
   for key, value in pairs(map) do
      parts[#parts + 1] = tostring(key) .. ":" .. tostring(value)
   end
   return table.concat(parts, ",")
end

local function merge(into, map)
   for key, value in pairs(map or {}) do
      into[key] = (into[key] or 0) + value
   end
end

function done(summary, latency, requests_seen)
   local totals = {generated = 0, replayed = 0, responses = 0, ok = 0, non2xx = 0, loaded = 0}
   local statuses_all, outcomes_all = {}, {}
   for _, thread in ipairs(threads) do
      for key, _ in pairs(totals) do
         if key ~= "loaded" then
            totals[key] = totals[key] + (thread:get(key) or 0)
         end
      end
      totals.loaded = totals.loaded + (thread:get("loaded") or 0)
      merge(statuses_all, thread:get("statuses"))  -- thread:get copies tables of strings and numbers
      merge(outcomes_all, thread:get("outcomes"))
   end
   local per_thread = {}
   for _, thread in ipairs(threads) do
      per_thread[#per_thread + 1] = tostring(thread:get("id")) .. ":" .. tostring(thread:get("generated") or 0)
   end
   local e = summary.errors
   local fields = {
      "duration_us=" .. summary.duration,
      "requests=" .. summary.requests,
      "bytes=" .. summary.bytes,
      "err_connect=" .. e.connect, "err_read=" .. e.read, "err_write=" .. e.write,
      "err_status=" .. e.status, "err_timeout=" .. e.timeout,
      "lat_min=" .. latency.min, "lat_max=" .. latency.max, "lat_mean=" .. latency.mean,
      "lat_stdev=" .. latency.stdev,
      "p50=" .. latency:percentile(50), "p75=" .. latency:percentile(75),
      "p90=" .. latency:percentile(90), "p99=" .. latency:percentile(99),
      "p999=" .. latency:percentile(99.9),
      "generated=" .. totals.generated, "replayed=" .. totals.replayed,
      "responses=" .. totals.responses, "ok=" .. totals.ok, "non2xx=" .. totals.non2xx,
      "loaded=" .. totals.loaded,
      "statuses=" .. encode(statuses_all), "outcomes=" .. encode(outcomes_all),
      "per_thread=" .. table.concat(per_thread, ","),
   }
   io.write("WRK_RESULT " .. table.concat(fields, " ") .. "\n")
end
