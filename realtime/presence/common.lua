-- What every presence script starts with (realtime/presence/stores.py puts it before each).
-- KEYS of every script: info hash (id -> info JSON), expiry set (id -> expiry on Redis's clock),
-- id set (ids in id order, for paging), diff counter (the seq of the last diff).

-- Add or refresh the members args[first..last] (id, info, id, info, ...) for `ttl` seconds. The
-- group's keys expire too, so a group whose every worker died leaves nothing behind.
local function touch(ttl, args, first, last)
  local t = redis.call('TIME')
  local expires = tonumber(t[1]) + tonumber(t[2]) / 1e6 + ttl
  for i = first, last, 2 do
    redis.call('HSET', KEYS[1], args[i], args[i + 1])
    redis.call('ZADD', KEYS[2], expires, args[i])
    redis.call('ZADD', KEYS[3], 0, args[i])
  end
  local ms = math.ceil(ttl * 1000)
  for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ms) end
end

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end

-- The live members' infos after `from` ('-': from the start), at most `limit`, in id order, and the
-- next page's cursor ('' at the end). Two calls for the whole page, not two per member (ZMSCORE: 6.2).
local function page(from, limit, time)
  local ids = redis.call('ZRANGEBYLEX', KEYS[3], from, '+', 'LIMIT', 0, limit)
  local infos = {}
  if #ids == 0 then return infos, '' end
  local expiries = redis.call('ZMSCORE', KEYS[2], unpack(ids))
  local values = redis.call('HMGET', KEYS[1], unpack(ids))
  for i = 1, #ids do
    if expiries[i] and tonumber(expiries[i]) > time and values[i] then infos[#infos + 1] = values[i] end
  end
  return infos, #ids == limit and ids[#ids] or ''
end

