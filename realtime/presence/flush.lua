-- Apply one worker's coalesced changes and announce them: touch the joins, remove the leavers,
-- then (when there is something to announce) number the event and publish it with the live count,
-- and with a page limit above 0 the first page of the list.
-- ARGV: ttl, channel (its name on the wire), publish command (PUBLISH, or SPUBLISH with Redis
-- Cluster), head, tail, page limit, number of touched ids n, then n id/info pairs, then removed ids.
-- The event is head .. seq .. count (.. page) .. tail, as realtime/presence/events.py's `assemble`
-- lays it out: the head and tail are built there.
local n = tonumber(ARGV[7])
touch(tonumber(ARGV[1]), ARGV, 8, 7 + 2 * n)
for i = 8 + 2 * n, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
end
if ARGV[4] == '' then return 0 end
-- Microseconds of Redis's clock, kept strictly increasing: after a Redis restart (the counter
-- lost) the numbers still go up, so no client takes a new diff for one it already has.
local t = redis.call('TIME')
local seq = string.format('%d', math.max(tonumber(t[1]) * 1e6 + tonumber(t[2]),
                                         tonumber(redis.call('GET', KEYS[4]) or '0') + 1))
redis.call('SET', KEYS[4], seq, 'PX', math.ceil(tonumber(ARGV[1]) * 1000))
local time = now()
local count = redis.call('ZCOUNT', KEYS[2], '(' .. time, '+inf')
local listed = ''
if tonumber(ARGV[6]) > 0 then
  local infos, cursor = page('-', tonumber(ARGV[6]), time)
  listed = ',"next":' .. (cursor == '' and 'null' or cjson.encode(cursor)) .. ',"members":['
           .. table.concat(infos, ',') .. ']'
end
redis.call(ARGV[3], ARGV[2], ARGV[4] .. seq .. ',"count":' .. count .. listed .. ARGV[5])
return seq
