-- lib/codestate.lua: a shard's record of one deal's share of a code pool, in the
-- sharded layout (docs/sharding.md 4c). {sK}codestate, field "<deal>\t<pool>", value
-- "<resn> <gbn> <rn> <rc> <gb> <used> <exp>": the last reservation and give-back numbers
-- taken (each only grows, so the pool can refuse a replay), the open reservation
-- intent (rn = its number, rc = codes wanted; rn = 0: none), the give-back in flight
-- (gb = its number, its codes in {sK}codeback:<deal>:<pool>; 0: none) and when the
-- stash was last used (epoch s: an admit or a take; a give-back waits until it is
-- idle, whichever notifier used it), and when the deal ends (epoch s, from admit; 0 =
-- not known): an empty stash's line goes an hour after it (code_give.lua).

local function cs_get(key, field)
  local v = redis.call('HGET', key, field)
  local s = { resn = 0, gbn = 0, rn = 0, rc = 0, gb = 0, used = 0, exp = 0,
    found = v ~= false }
  if v then
    local a, b, c, d, e, f, g = string.match(v,
      '^(%d+) (%d+) (%d+) (%d+) (%d+) ?(%d*) ?(%d*)$')
    if a then
      s.resn, s.gbn, s.rn, s.rc, s.gb = tonumber(a), tonumber(b), tonumber(c),
        tonumber(d), tonumber(e)
      s.used, s.exp = tonumber(f) or 0, tonumber(g) or 0
    end
  end
  return s
end

local function cs_put(key, field, s)
  redis.call('HSET', key, field, string.format('%d %d %d %d %d %d %d', s.resn, s.gbn,
    s.rn, s.rc, s.gb, s.used, s.exp))
end
