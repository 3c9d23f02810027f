-- POST /api/payments/mpesa, each request a pending order of its own (a second initiation
-- of an order answers 409 while the first is in flight): the threads share the pool out
-- (thread n takes every n-th line). "forward" walks it from the first line, "backward"
-- from the last (the warm-up: the measured run's orders stay untouched).
-- wrk -s mpesa.lua <url> -- <pool file> <phone number> <forward|backward> <wrk threads>
-- The pool file: "<token> <order id>" a line.
local threads = 0
local pool = {}
local position = 0
local phone = ""

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
  local all = {}
  for line in io.lines(args[1]) do
    local token, order = line:match("^(%S+) (%S+)$")
    if token then all[#all + 1] = {token, order} end
  end
  if args[3] == "backward" then
    local reversed = {}
    for i = #all, 1, -1 do reversed[#reversed + 1] = all[i] end
    all = reversed
  end
  local step = tonumber(args[4])
  for i = id, #all, step do pool[#pool + 1] = all[i] end
  phone = args[2]
end

function request()
  position = position % #pool + 1
  local token, order = pool[position][1], pool[position][2]
  return wrk.format("POST", "/api/payments/mpesa", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, string.format('{"orderId":"%s","phoneNumber":"%s"}', order, phone))
end
