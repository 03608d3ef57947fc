"""The Redis side of the counters: two Lua scripts, each one atomic round trip for a whole request.

Keys: a sliding window is a hash ``PREFIX:COUNTER`` of bucket number -> amount; a calendar period is
a string ``PREFIX:COUNTER:PERIOD``. Both expire on their own once nothing in them can count any more.
Arguments are computed by the client (``redis_store``), so the scripts know no calendars: the
semantics are those of ``store.MemoryStore``, which the tests hold both implementations to.
"""

RESERVE = """
-- ARGV[1] now_ms, ARGV[2] mode (1 reserve, 0 read only);
-- then per key: quota, amount, bucket_ms (0: calendar), ttl_ms (calendar: period left + 60 s)
local now = tonumber(ARGV[1])
local reserve = ARGV[2] == '1'
local n = #KEYS
local used, buckets = {}, {}
for i = 1, n do
  local base = 2 + (i - 1) * 4
  local bucket_ms = tonumber(ARGV[base + 3])
  local total = 0
  if bucket_ms == 0 then
    total = tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    local oldest = math.floor(now / bucket_ms) - 60
    local all = redis.call('HGETALL', KEYS[i])
    local kept = {}
    for j = 1, #all, 2 do
      local b = tonumber(all[j])
      if b < oldest then
        redis.call('HDEL', KEYS[i], all[j])
      else
        local v = tonumber(all[j + 1])
        total = total + v
        kept[#kept + 1] = {b, v}
      end
    end
    buckets[i] = kept
  end
  used[i] = total
end
local result = {1, -1, 0}
for i = 1, n do
  local base = 2 + (i - 1) * 4
  local quota, amount = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  if used[i] + amount > quota then
    local bucket_ms, ttl = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
    local retry = ttl - 60000
    if bucket_ms > 0 then
      local need = used[i] + amount - quota
      local kept = buckets[i]
      table.sort(kept, function(a, b) return a[1] < b[1] end)
      local freed = 0
      retry = 60 * bucket_ms
      for k = 1, #kept do
        freed = freed + kept[k][2]
        if freed >= need then
          retry = math.max(1, (kept[k][1] + 61) * bucket_ms - now)
          break
        end
      end
    end
    result = {0, i - 1, retry}
    break
  end
end
if reserve and result[1] == 1 then
  for i = 1, n do
    local base = 2 + (i - 1) * 4
    local amount, bucket_ms = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
    local ttl = tonumber(ARGV[base + 4])
    if amount ~= 0 then
      if bucket_ms == 0 then
        redis.call('INCRBY', KEYS[i], amount)
      else
        redis.call('HINCRBY', KEYS[i], tostring(math.floor(now / bucket_ms)), amount)
      end
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    used[i] = used[i] + amount
  end
end
for i = 1, n do result[#result + 1] = used[i] end
return result
"""

SETTLE = """
-- ARGV[1]: n, the number of corrections; KEYS[1..n] their counters, ARGV pairs (delta, field):
-- field '' for a calendar counter. A correction touches only a counter (and bucket) that still
-- exists: one that expired meanwhile is left alone, and none goes below 0.
-- KEYS[n+1..]: accounting hashes (a day's and a month's per scope, alternating), created with
-- ARGV ttl_day, ttl_month, then requests, tokens, micro-dollars to add.
local n = tonumber(ARGV[1])
for i = 1, n do
  local delta, field = tonumber(ARGV[2 * i]), ARGV[2 * i + 1]
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if field == '' then
      if redis.call('INCRBY', KEYS[i], delta) < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
    elseif redis.call('HEXISTS', KEYS[i], field) == 1 then
      if redis.call('HINCRBY', KEYS[i], field, delta) < 0 then redis.call('HSET', KEYS[i], field, 0) end
    end
  end
end
local base = 2 * n + 2
local ttls = {tonumber(ARGV[base]), tonumber(ARGV[base + 1])}
local requests, tokens, usd = ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
for i = n + 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'requests', requests)
  redis.call('HINCRBY', KEYS[i], 'tokens', tokens)
  redis.call('HINCRBY', KEYS[i], 'usd', usd)
  redis.call('PEXPIRE', KEYS[i], ttls[(i - n - 1) % 2 + 1])
end
return 1
"""
