-- phone_index.lua: the index from a phone number (or a DM sender's X id) to the ids
-- of the subscribers who have it (stage: http; docs/sharding.md 4f, "the phone
-- index"). On the slot of the numbers: one call holds numbers of one phone shard.
-- ORDER PHONE_INDEX_KEYS (notifier/phoneix.c):
-- KEYS[1] suppressed:sms ("" for X ids, or when no entry is wanted)
-- KEYS[2..] the index's buckets: phones:<b> (number -> ids) or dmx:<b> (X id -> ids),
--   b a hash of the number (keys.h keys_phone): small hashes, each kept compact by
--   Redis (a listpack) where one hash of every number would not be
-- ARGV: op ("add" | "drop"), then triples: the bucket's position in KEYS (2 ...),
--   number, subscriber id
-- Each field holds the ids separated by "\n", in the order they were added, at most
-- PHONE_INDEX_MAX (the oldest goes first past it: the likeliest stale). The index may
-- hold ids that no longer have the number (a subscriber changed it or was deleted:
-- a reader checks each id against the stored subscriber); it lacks no id that has
-- the number, because every write adds before it stores, unless more than
-- PHONE_INDEX_MAX share it.
-- "add": each id added to its number (nothing when there). Returns, per triple, the
--   number's entry on the suppression list ("" = none, or no KEYS[1]), which the
--   write then applies (lib/subput.lua): read after the add, so that a STOP either
--   came first (its entry is here) or finds this id in the index (its shard step
--   then opts it out, stored or not yet).
-- "drop": each id taken off its number (the field goes with its last id). Returns
--   the number of ids dropped.
local PHONE_INDEX_MAX = 64
local sup, op = KEYS[1], ARGV[1]

if op ~= 'add' and op ~= 'drop' then
  return redis.error_reply('phone_index.lua: op must be add or drop')
end
if #ARGV % 3 ~= 1 then
  return redis.error_reply('phone_index.lua: bucket, number and id come in threes')
end

local function split(v)
  local ids = {}
  if v then
    for id in string.gmatch(v, '[^\n]+') do ids[#ids + 1] = id end
  end
  return ids
end

local dropped, numbers = 0, {}
for i = 2, #ARGV, 3 do
  local pos = tonumber(ARGV[i]) or 0
  if pos < 2 or pos > #KEYS then
    return redis.error_reply('phone_index.lua: no bucket key at ' .. ARGV[i])
  end
  local ix = KEYS[pos]
  local number, id = ARGV[i + 1], ARGV[i + 2]
  numbers[#numbers + 1] = number
  -- A number new to the index, the common case of an import: one call.
  if op ~= 'add' or redis.call('HSETNX', ix, number, id) == 0 then
    local ids = split(redis.call('HGET', ix, number))
    local at = nil
    for k = 1, #ids do
      if ids[k] == id then at = k end
    end
    if op == 'add' then
      if not at then
        ids[#ids + 1] = id
        while #ids > PHONE_INDEX_MAX do table.remove(ids, 1) end
        redis.call('HSET', ix, number, table.concat(ids, '\n'))
      end
    elseif at then
      table.remove(ids, at)
      dropped = dropped + 1
      if #ids == 0 then
        redis.call('HDEL', ix, number)
      else
        redis.call('HSET', ix, number, table.concat(ids, '\n'))
      end
    end
  end
end
if op == 'drop' then
  return dropped
end
-- The entries, read after every add of the call (one read for all).
local out = {}
if sup ~= '' and #numbers > 0 then
  local got = redis.call('HMGET', sup, unpack(numbers))
  for k = 1, #numbers do out[k] = got[k] or '' end
else
  for k = 1, #numbers do out[k] = '' end
end
return out
