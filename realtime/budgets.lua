-- Spend from one client's budget (realtime/budgets.py), GCRA: the key holds the time (ms, on
-- Redis's clock) at which the budget is whole again. Spending moves it `cost` intervals later; a
-- spend that would move it more than `burst` intervals past now is refused and changes nothing.
-- KEYS[1]: the budget's key. ARGV: interval (ms one unit takes to come back), burst (units), cost (units).
-- Returns 0 when spent, else the ms until `cost` units are there.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local whole_at = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now) + interval * cost
local wait = whole_at - now - interval * burst
if wait > 0 then
  return math.ceil(wait)
end
redis.call('SET', KEYS[1], string.format('%.3f', whole_at), 'PX', math.ceil(whole_at - now))
return 0
