-- retext.lua: write one chunk of a deal's texts rendered again after an update
-- (stage: ingest). One call per chunk, like plan.lua.
-- ORDER RETEXT_KEYS: KEYS[1] deal:<id>   KEYS[2] push:<id>   KEYS[3] retext:<id>
-- KEYS[4] deals   KEYS[5] deals:tries
-- ARGV: entry (the update's), group, chunk, nchunks, attempt, keep_s, then per
--       recipient: field ("<sub>:<ch>"), text (with the code's place, as planned)
-- A text is written into retext:<id> only for a push not yet final in push:<id>
-- (absent, admitted, retry, delayed, deferred): send.lua hands it to the sender in
-- place of the planned one. A push already sent, being sent or ended keeps what it
-- had; a recipient never planned is not added (nothing reads its field). An
-- attempt's chunks must arrive in order (retext_cursor of that attempt in the deal
-- hash); a chunk out of order answers {'retry'} and writes nothing. The last chunk
-- bumps the deal's "version" (send.lua reads retext:<id> only once it exists) and
-- XACKs the update. Returns {'ok', written}.
local deal, states, retext, stream, tries = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local entry, group = ARGV[1], ARGV[2]
local chunk, nchunks, attempt, keep_s = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5],
  ARGV[6]
local first = 7

if chunk > 0 then
  local a = redis.call('HMGET', deal, 'retext_attempt', 'retext_cursor')
  if a[1] ~= attempt or tonumber(a[2] or '-1') ~= chunk then
    return { 'retry', 'chunk ' .. chunk .. ' of an attempt that is not in progress' }
  end
end
local open = { admitted = true, retry = true, delayed = true, deferred = true }
local written = 0
for i = first, #ARGV - 1, 2 do
  local st = redis.call('HGET', states, ARGV[i])
  if not st or open[st] then
    redis.call('HSET', retext, ARGV[i], ARGV[i + 1])
    written = written + 1
  end
end
redis.call('HSET', deal, 'retext_attempt', attempt, 'retext_cursor', chunk + 1)
if chunk == nchunks - 1 then
  redis.call('HINCRBY', deal, 'version', 1)
  redis.call('HDEL', tries, entry)
  redis.call('XACK', stream, group, entry)
end
-- Relative TTL, as the deal hash's: the texts live as long as the deal.
if written > 0 then
  redis.call('EXPIRE', retext, keep_s)
end
return { 'ok', tostring(written) }
