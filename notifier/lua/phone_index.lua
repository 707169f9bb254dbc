-- phone_index.lua: the index from a phone number (or a DM sender's X id) to the ids
-- of the subscribers who have it (stage: http; docs/sharding.md 4f, "the phone
-- index"). On the slot of the numbers: one call holds numbers of one phone shard.
-- ORDER PHONE_INDEX_KEYS (notifier/phoneix.c):
-- KEYS[1] the index: phones (number -> ids) or dmx (X id -> ids)
-- KEYS[2] suppressed:sms ("" for dmx, or when no entry is wanted)
-- ARGV: op ("add" | "drop"), then pairs: number, subscriber id
-- Each field holds the ids separated by "\n", in the order they were added, at most
-- PHONE_INDEX_MAX (the oldest goes first past it: the likeliest stale). The index may
-- hold ids that no longer have the number (a subscriber changed it or was deleted:
-- a reader checks each id against the stored subscriber and drops the stale ones);
-- it never lacks one that has it, because every write adds before it stores.
-- "add": each id added to its number (nothing when there). Returns, per pair, the
--   number's entry on the suppression list ("" = none, or no KEYS[2]), which the
--   write then applies (lib/subput.lua): read after the add, so that a STOP either
--   came first (its entry is here) or finds this id in the index (its shard step
--   then opts it out, stored or not yet).
-- "drop": each id taken off its number (the field goes with its last id). Returns
--   the number of ids dropped.
local PHONE_INDEX_MAX = 64
local ix, sup, op = KEYS[1], KEYS[2], ARGV[1]

if op ~= 'add' and op ~= 'drop' then
  return redis.error_reply('phone_index.lua: op must be add or drop')
end
if #ARGV % 2 ~= 1 then
  return redis.error_reply('phone_index.lua: number and id come in pairs')
end

local function split(v)
  local ids = {}
  if v then
    for id in string.gmatch(v, '[^\n]+') do ids[#ids + 1] = id end
  end
  return ids
end

local out, dropped = {}, 0
for i = 2, #ARGV, 2 do
  local number, id = ARGV[i], ARGV[i + 1]
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
    out[#out + 1] = sup ~= '' and (redis.call('HGET', sup, number) or '') or ''
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
if op == 'drop' then
  return dropped
end
return out
