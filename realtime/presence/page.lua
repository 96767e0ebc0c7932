-- Touch the members given (none, or joiners), then read one page of the live members in id order.
-- ARGV: ttl, after (an id; '' from the start), limit, then id, info, ...
-- Returns {last diff's seq, live count, next cursor ('' at the end), info, info, ...}.
touch(tonumber(ARGV[1]), ARGV, 4, #ARGV)
local time = now()
local infos, cursor = page(ARGV[2] == '' and '-' or '(' .. ARGV[2], tonumber(ARGV[3]), time)
return {redis.call('GET', KEYS[4]) or '0', redis.call('ZCOUNT', KEYS[2], '(' .. time, '+inf'), cursor,
        unpack(infos)}
