-- formats_set.lua: raise the deployment's stored format version (stage: outside the
-- pipeline; `dealpushctl formats upgrade`, formats.h).
-- KEYS[1] dealpush:formats
-- ARGV: the version the caller read (absent = 1), the version to set
-- Refuses, writing nothing, when the version moved since the caller read it
-- ({'moved', <now>}) or when a notifier whose lease is still running announced that
-- it reads less than the new version ({'old', name, reads, release, ...}); else sets
-- field "format" and returns {'ok'}.
local cur = redis.call('HGET', KEYS[1], 'format') or '1'
if cur ~= ARGV[1] then
  return { 'moved', cur }
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want = tonumber(ARGV[2])
local old = { 'old' }
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local name = string.match(all[i], '^reader:(.+)$')
  if name then
    local reads, release, till = string.match(all[i + 1], '^(%d+)\t([^\t]+)\t(%d+)$')
    if reads and tonumber(till) > now and tonumber(reads) < want then
      old[#old + 1] = name
      old[#old + 1] = reads
      old[#old + 1] = release
    end
  end
end
if #old > 1 then
  return old
end
redis.call('HSET', KEYS[1], 'format', ARGV[2])
return { 'ok' }
