-- POST /api/orders, one line, for several buyers in turn, each request with its own
-- Idempotency-Key. wrk -s checkout.lua <url> -- <tokens file> <product id> <product name> <run>
-- The tokens file: one buyer's token a line.
local counter = 0
local threads = 0
local tokens = {}
local body = ""
local run = ""

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
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
