-- retext.lua: write one chunk of one shard's texts of a deal rendered again after
-- an update (stage: ingest). One call per chunk, like plan.lua.
-- ORDER RETEXT_KEYS: KEYS[1] deal:<id> (the shard's copy), then push:<id>,
-- retext:<id> of the shard (every key in the shard's slot; the pair may repeat for
-- more groups of the same shard)
-- ARGV: entry (the update's), chunk, nchunks, attempt, keep_s, then per group of
--       KEYS (in their order): n, then n times field ("<sub>:<ch>"), text (with
--       the code's place, as planned)
-- A text is written into retext:<id> only for a push not yet final in push:<id>
-- (absent, admitted, retry, delayed, deferred): send.lua hands it to the sender in
-- place of the planned one. A push already sent, being sent or ended keeps what it
-- had; a recipient never planned is not added (nothing reads its field). An
-- attempt's chunks must arrive in order (retext_cursor of that attempt in the deal
-- hash); a chunk out of order answers {'retry'} and writes nothing. The last chunk
-- bumps the deal's "version" (send.lua reads retext:<id> only once it exists); the
-- caller acks the update once it answered (deals is in another slot). Returns
-- {'ok', written}.
local deal = KEYS[1]
local chunk, nchunks, attempt, keep_s = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],
  ARGV[5]
local first = 6

if chunk > 0 then
  local a = redis.call('HMGET', deal, 'retext_attempt', 'retext_cursor')
  if a[1] ~= attempt or tonumber(a[2] or '-1') ~= chunk then
    return { 'retry', 'chunk ' .. chunk .. ' of an attempt that is not in progress' }
  end
end
local open = { admitted = true, retry = true, delayed = true, deferred = true }
local written = 0
local i = first
for g = 2, #KEYS - 1, 2 do
  local states, retext = KEYS[g], KEYS[g + 1]
  local n, w = tonumber(ARGV[i]), 0
  for f = i + 1, i + 2 * n - 1, 2 do
    local st = redis.call('HGET', states, ARGV[f])
    if not st or open[st] then
      redis.call('HSET', retext, ARGV[f], ARGV[f + 1])
      w = w + 1
    end
  end
  -- Relative TTL, as the deal hash's: the texts live as long as the deal.
  if w > 0 then
    redis.call('EXPIRE', retext, keep_s)
  end
  written = written + w
  i = i + 1 + 2 * n
end
redis.call('HSET', deal, 'retext_attempt', attempt, 'retext_cursor', chunk + 1)
if chunk == nchunks - 1 then
  redis.call('HINCRBY', deal, 'version', 1)
end
return { 'ok', tostring(written) }
