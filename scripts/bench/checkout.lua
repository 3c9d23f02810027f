-- POST /api/orders, one line, for several buyers in turn, each request with its own
-- Idempotency-Key. wrk -s checkout.lua <url> -- <tokens file> <product id> <product name> <run>
-- The tokens file: one buyer's token a line.
local counter = 0
local threads = 0
local tokens = {}
local body = ""
local run = ""

-- Answers counted by status, printed by done() as "statuses: 201=480 503=2", and the
-- first body of each status but 2xx as "example 503: {...}" (wrk.py reads both).
statuses = {}  -- globals: done() reads them with thread:get
examples = {}
local all_threads = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 300 and examples[status] == nil then
    examples[status] = string.sub(string.gsub(body or "", "%s+", " "), 1, 300)
  end
end

function done(summary, latency, requests)
  local total = {}
  local bodies = {}
  for _, thread in ipairs(all_threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
    for status, body in pairs(thread:get("examples")) do
      bodies[status] = bodies[status] or body
    end
  end
  local parts = {}
  for status, count in pairs(total) do parts[#parts + 1] = status .. "=" .. count end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  for status, body in pairs(bodies) do
    io.write("example " .. status .. ": " .. body .. "\n")
  end
end

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
  all_threads[#all_threads + 1] = thread
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
  body = string.format(
    '{"items":[{"productId":"%s","productName":"%s","quantity":1}],'
      .. '"shippingAddress":{"street":"1 Bench Road","city":"Nairobi",'
      .. '"country":"Kenya","postalCode":"00100"}}',
    args[2], args[3])
  run = args[4]
end

function request()
  counter = counter + 1
  local token = tokens[(counter + id) % #tokens + 1]
  return wrk.format("POST", "/api/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, id, counter),
  }, body)
end
