"""The wrk Lua scripts: one per scenario, generated with the users' ids and tokens written in.

Every script shares the same bookkeeping: `response()` counts each non-2xx
answer by status and the `error.code` of its body, and `done()` prints one line
`BENCH_JSON {...}` with the request count, the latency distribution (wrk's own
histogram, microseconds) and those error counts, summed over wrk's threads.
The distribution also goes out as `quantiles_us`, `[percentile, band width,
latency]` triples that cover it (half-percent bands up to the 95th, then
finer ones into the tail), so that the slices of one measured point can be
pooled into one distribution (`bench.run.pooled_latency`): wrk's Lua cannot
read its histogram's buckets.
"""

from __future__ import annotations

import json

COMMON = r"""
local thread_count = 0
local threads = {}

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  codes = {}
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    local code = "-"
    if body then
      code = string.match(body, '"code"%s*:%s*"([%w_]+)"') or "-"
    end
    local key = tostring(status) .. " " .. code
    codes[key] = (codes[key] or 0) + 1
  end
end

local function pick(list)
  return list[math.random(1, #list)]
end

local function post(path, token, body)
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Host"] = "127.0.0.1",
  }, body)
end

local function get(path, token)
  return wrk.format("GET", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Host"] = "127.0.0.1",
  })
end

local function transfer(src, dst, amount)
  return post("/api/v1/transactions/transfer/", src.token,
    '{"from_wallet_balance_id":"' .. src.id .. '","to_wallet_balance_id":"' .. dst.id ..
    '","amount":"' .. amount .. '"}')
end

local function random_pair(list)
  local src = pick(list)
  local dst = pick(list)
  while dst.id == src.id do dst = pick(list) end
  return src, dst
end

local function quantiles(latency)
  local out = {}
  local function band(from, to, width)
    for k = 0, math.floor((to - from) / width + 0.5) - 1 do
      local p = from + (k + 0.5) * width
      table.insert(out, string.format("[%.3f, %.3f, %d]", p, width, latency:percentile(p)))
    end
  end
  band(0, 95, 0.5)
  band(95, 99.9, 0.05)
  band(99.9, 100, 0.01)
  return table.concat(out, ", ")
end

function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    if c then
      for k, v in pairs(c) do agg[k] = (agg[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(agg) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "status_errors": %d, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "stdev": %.1f, ' ..
    '"p50": %d, "p90": %d, "p95": %d, "p99": %d, "p999": %d}, "quantiles_us": [%s], "codes": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9),
    quantiles(latency), table.concat(parts, ", ")))
end
"""

# The request() of each scenario; `data` holds what the generator wrote in.
REQUESTS = {
    "cold": r"""
function request()
  local src, dst = random_pair(data.balances)
  return transfer(src, dst, "0.01")
end
""",
    "hot": r"""
function request()
  local a, b = data.pair[1], data.pair[2]
  if math.random() < 0.5 then return transfer(a, b, "0.01") end
  return transfer(b, a, "0.01")
end
""",
    "deposit": r"""
function request()
  local b = pick(data.balances)
  return post("/api/v1/transactions/deposit/", b.token,
    '{"wallet_balance_id":"' .. b.id .. '","amount":"0.01"}')
end
""",
    "mixed": r"""
function request()
  local r = math.random()
  local b = pick(data.balances)
  if r < 0.4 then
    return get("/api/v1/balances/" .. b.id .. "/", b.token)
  elseif r < 0.8 then
    return get("/api/v1/transactions/?wallet_balance_id=" .. b.id, b.token)
  end
  local src, dst = random_pair(data.balances)
  return transfer(src, dst, "0.01")
end
""",
    "history": r"""
function request()
  return get(data.path, data.token)
end
""",
    # A batch of `data.size` transfers out of one payer's balances (the token's user must own every source)
    # to any of the batch balances, a new random body per request.
    "batch": r"""
function request()
  local payer = pick(data.payers)
  local movements = {}
  for i = 1, data.size do
    local src = pick(payer.balances)
    local dst = pick(data.balances)
    while dst == src do dst = pick(data.balances) end
    movements[i] = '{"type":"transfer","from_wallet_balance_id":"' .. src .. '","to_wallet_balance_id":"' ..
      dst .. '","amount":"0.01"}'
  end
  return post("/api/v1/transactions/batch/", payer.token, '{"movements":[' .. table.concat(movements, ",") .. ']}')
end
""",
    "payment": r"""
function request()
  local b = pick(data.balances)
  return post("/api/v1/transactions/payment/", b.token,
    '{"wallet_balance_id":"' .. b.id .. '","amount":"1.00","merchant":"Bench"}')
end
""",
}


def _lua_value(value: object) -> str:
    """A Lua literal for JSON-like data (strings, numbers, lists, dicts with identifier keys)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_lua_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua_value(item) for item in value) + "}"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of ASCII is a valid Lua string
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def render(kind: str, data: dict) -> str:
    return f"data = {_lua_value(data)}\n{COMMON}\n{REQUESTS[kind]}"
