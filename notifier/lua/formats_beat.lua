-- formats_beat.lua: a notifier announces the highest stored format version it reads
-- and reads the deployment's version (stage: start-up, then every second; formats.h).
-- KEYS[1] dealpush:formats
-- ARGV: consumer, highest version read, release, lease in ms (0: the lease ends now)
-- Sets field "reader:<consumer>" to "<reads>\t<release>\t<lease end>", the lease end
-- in epoch ms of Redis' own clock (one clock for every host), and returns field
-- "format" (nil when absent: version 1, what release 1.0.0 writes).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[4]) or 0
redis.call('HSET', KEYS[1], 'reader:' .. ARGV[1],
  ARGV[2] .. '\t' .. ARGV[3] .. '\t' .. string.format('%.0f', now + lease))
return redis.call('HGET', KEYS[1], 'format')
