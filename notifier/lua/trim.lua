-- trim.lua: drop the jobs of "pushes" that no consumer group needs any more (stage:
-- admit; each notifier, once a second, with delay.lua).
-- ORDER TRIM_KEYS (notifier/deliver_admit.c, the delay timer): KEYS[1] pushes
-- ARGV: none
-- A group needs every entry from its oldest pending one (delivered, not acked: its
-- consumer, or one that claims it after a crash, reads it again by id), and every
-- entry it has not been delivered yet (after its last-delivered-id). The stream is
-- trimmed (XTRIM MINID, exact) below the least of those over every group, so an
-- entry pending in any group, or not yet read by any, is never dropped. A stream
-- without groups is left alone: nobody has said which entries it needs.
-- Returns the number of entries dropped.
local jobs = KEYS[1]
if redis.call('EXISTS', jobs) == 0 then
  return 0
end
local min_ms, min_seq = nil, nil

-- Keeps (ms, seq) when it is below the least seen so far.
local function consider(ms, seq)
  if not min_ms or ms < min_ms or (ms == min_ms and seq < min_seq) then
    min_ms, min_seq = ms, seq
  end
end

local groups = redis.call('XINFO', 'GROUPS', jobs)
if #groups == 0 then
  return 0
end
for _, g in ipairs(groups) do
  local name, pending, last = nil, 0, nil
  for i = 1, #g - 1, 2 do
    if g[i] == 'name' then
      name = g[i + 1]
    elseif g[i] == 'pending' then
      pending = tonumber(g[i + 1]) or 0
    elseif g[i] == 'last-delivered-id' then
      last = g[i + 1]
    end
  end
  local ms, seq = string.match(last or '', '^(%d+)-(%d+)$')
  if not name or not ms then
    return 0    -- a reply this script cannot read: trim nothing
  end
  -- Entries after last-delivered-id are still to be read: keep from its successor.
  consider(tonumber(ms), tonumber(seq) + 1)
  if pending > 0 then
    local p = redis.call('XPENDING', jobs, name)
    local pms, pseq = string.match(p[2] or '', '^(%d+)-(%d+)$')
    if not pms then
      return 0
    end
    consider(tonumber(pms), tonumber(pseq))
  end
end
-- Exact ids: %d, not %g, whatever the size of the millisecond part.
return redis.call('XTRIM', jobs, 'MINID', string.format('%d-%d', min_ms, min_seq))
