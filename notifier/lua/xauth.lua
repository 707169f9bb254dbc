-- xauth.lua: the X OAuth 2.0 token pair of one x-dm gateway, shared by every
-- notifier, refreshed by one of them at a time (stage: send).
-- KEYS[1] xauth:{NAME}       hash: access_token, refresh_token, expires_at (epoch s),
--                            gen (bumped by every stored refresh)
-- KEYS[2] xauth:{NAME}:lock  the notifier refreshing now (SET PX: a lease)
-- ARGV[1] the operation, then its arguments:
--   seed REFRESH_TOKEN            keeps the operator's first refresh token when no pair
--                                 is stored yet; returns {"pair", access, expires_at, gen}
--   claim OWNER LEASE_MS NOW MARGIN_S BAD_GEN
--                                 {"fresh", access, expires_at, gen} when the stored
--                                 access token is good for MARGIN_S more and is not
--                                 generation BAD_GEN (the one X refused); else
--                                 {"busy"} while another notifier holds the lock; else
--                                 takes the lock and returns {"claimed", refresh, gen};
--                                 {"missing"} when nothing was ever seeded
--   store OWNER GEN ACCESS REFRESH EXPIRES_AT
--                                 stores the new pair only over generation GEN (the one
--                                 claimed) and frees our lock: {"stored", gen + 1}, or
--                                 {"stale", gen} when another pair was stored meanwhile
--   release OWNER                 frees our lock after a failed refresh: {"released"}
-- The rotated refresh token is only ever replaced here, atomically with its access
-- token: a notifier uses a new access token only after "stored".
local pair, lock, op = KEYS[1], KEYS[2], ARGV[1]

local function state()
  local v = redis.call('HMGET', pair, 'access_token', 'expires_at', 'gen')
  return { 'pair', v[1] or '', tonumber(v[2] or '0') or 0, tonumber(v[3] or '0') or 0 }
end

if op == 'seed' then
  if redis.call('EXISTS', pair) == 0 then
    redis.call('HSET', pair, 'access_token', '', 'refresh_token', ARGV[2],
      'expires_at', 0, 'gen', 0)
  end
  return state()
end

if op == 'claim' then
  if redis.call('EXISTS', pair) == 0 then
    return { 'missing' }
  end
  local s = state()
  local now, margin, bad = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  if s[2] ~= '' and s[3] - now > margin and s[4] ~= bad then
    return { 'fresh', s[2], s[3], s[4] }
  end
  if redis.call('SET', lock, ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) == false then
    return { 'busy' }
  end
  return { 'claimed', redis.call('HGET', pair, 'refresh_token'), s[4] }
end

if op == 'store' then
  local gen = tonumber(redis.call('HGET', pair, 'gen') or '-1')
  if gen ~= tonumber(ARGV[3]) then
    if redis.call('GET', lock) == ARGV[2] then
      redis.call('DEL', lock)
    end
    return { 'stale', gen }
  end
  redis.call('HSET', pair, 'access_token', ARGV[4], 'refresh_token', ARGV[5],
    'expires_at', ARGV[6], 'gen', gen + 1)
  if redis.call('GET', lock) == ARGV[2] then
    redis.call('DEL', lock)
  end
  return { 'stored', gen + 1 }
end

if op == 'release' then
  if redis.call('GET', lock) == ARGV[2] then
    redis.call('DEL', lock)
  end
  return { 'released' }
end

return redis.error_reply('xauth: unknown operation')
