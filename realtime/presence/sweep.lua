-- Remove the members whose time is up and return their infos: atomic, so each expired member
-- is returned to exactly one caller however many workers sweep at once.
local expired = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now())) do
  local info = redis.call('HGET', KEYS[1], id)
  if info then expired[#expired + 1] = info end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
return expired
