-- wrk script for bench/bench_api.py (after ../shared/peers/wrk_json.lua): method, JSON body
-- and bearer token from the environment; counts answers that are not 2xx (and, with
-- WRK_GRAPHQL=1, 2xx answers whose JSON starts with "errors": GraphQL reports failures
-- inside a 200); prints one machine-readable summary line (latencies in microseconds).
--
--   WRK_METHOD=POST WRK_BODY='{"query":"..."}' WRK_TOKEN=ak_live_... WRK_GRAPHQL=1 \
--     wrk -t1 -c8 -d10s -s bench/wrk/json.lua http://127.0.0.1:8000/graphql
local method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
local token = os.getenv("WRK_TOKEN")
local graphql = os.getenv("WRK_GRAPHQL") == "1"

wrk.method = method
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  gql_errors = 0
  first_bad = ""
end

function response(status, headers, resp_body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == "" then
      first_bad = status .. " " .. string.sub(resp_body or "", 1, 300)
    end
  elseif graphql and string.sub(resp_body or "", 1, 10) == '{"errors":' then
    gql_errors = gql_errors + 1
    if first_bad == "" then
      first_bad = status .. " " .. string.sub(resp_body or "", 1, 300)
    end
  end
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local bad, gql, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    gql = gql + (t:get("gql_errors") or 0)
    local s = t:get("first_bad") or ""
    if sample == "" then sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"non2xx":%d,"graphql_errors":%d,' ..
    '"first_bad":%s}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    bad, gql, json_string(sample)))
end
