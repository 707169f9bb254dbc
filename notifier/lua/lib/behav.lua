-- lib/behav.lua: a subscriber's behaviour record (docs/attribution.md, "Behaviour"),
-- inlined into the scripts that say "--#include behav". Hash behaviour (the caller's
-- KEYS), field <subscriber id>, value
--   "<last text>|<last click>|<last purchase>|<days>"
-- times in epoch seconds ("" = never), days "<day>:<texts>:<clicks>:<purchases>:
-- <revenue>" joined by ",", oldest first, day = floor(time / 86400) (UTC days). A
-- count older than its window (texts 7 days, clicks 30, purchases and revenue 90,
-- counted from the day of the event written) is dropped, and a day with nothing left
-- goes: at most 90 days, so the value stays small. notifier/subbehav.c reads it.
-- Its names start with bh_: the key checker (tests/unit/test_scripts_keys.c) takes
-- names per script, so they must not be the includer's.
local BEHAV_KEEP = { 7, 30, 90, 90 }

-- The revenue r (a number) as the record writes it: at most two decimals, no
-- trailing zeros ("25.5", "3", "0").
local function behav_money(bh_r)
  local bh_s = string.format('%.2f', bh_r)
  return (bh_s:gsub('0+$', ''):gsub('%.$', ''))
end

-- A day entry bh_e "<day>:<texts>:<clicks>:<purchases>:<revenue>" (bh_dd, bh_k..bh_r:
-- its parts as stored) as it stands bh_age days later: a count older than its window is 0; nil
-- when nothing is left. An entry still inside every window is returned as it was.
local function behav_age(bh_e, bh_dd, bh_k, bh_p, bh_r, bh_age)
  if bh_age < BEHAV_KEEP[1] then return bh_e end
  if bh_age >= BEHAV_KEEP[3] then return nil end
  if bh_age >= BEHAV_KEEP[2] then bh_k = '0' end
  if tonumber(bh_k) == 0 and tonumber(bh_p) == 0 and (tonumber(bh_r) or 0) == 0 then
    return nil
  end
  return bh_dd .. ':0:' .. bh_k .. ':' .. bh_p .. ':' .. bh_r
end

-- The record bh_v (a stored value, "" or nil/false = none) after one event at bh_now
-- (epoch seconds, > 0): bh_what 1 a text, 2 a click, 3 a purchase of revenue
-- bh_amount. Reads and writes nothing. The days are kept in order, oldest first, so
-- one pass ages them and finds today's; an entry that does not parse or is out of
-- order is dropped, and a record that does not parse starts again. record.lua runs
-- this for every text sent: entries inside every window are kept as they are, and
-- only today's is rebuilt.
local function behav_apply(bh_v, bh_now, bh_what, bh_amount)
  local bh_f = { '', '', '' }
  local bh_a, bh_b, bh_c, bh_days = string.match(bh_v or '', '^(%d*)|(%d*)|(%d*)|(.*)$')
  if bh_a then bh_f = { bh_a, bh_b, bh_c } else bh_days = '' end
  if (tonumber(bh_f[bh_what]) or 0) < bh_now then
    bh_f[bh_what] = tostring(bh_now)
  end
  local bh_today = math.floor(bh_now / 86400)
  -- The common case, a text or a click to a record whose every day is still inside
  -- every window (its first day less than a week old) and whose last day is today
  -- or earlier: only the last day is read, the others are kept as they are.
  local bh_first = tonumber(string.match(bh_days, '^(%d+):'))
  local bh_sorted = bh_what ~= 3 and bh_first and bh_first > bh_today - BEHAV_KEEP[1] and
    not string.find(bh_days, '[^%d:,.]')
  if bh_sorted then
    local bh_prev = -1
    for bh_dd in string.gmatch(bh_days, '(%d+):[^,]*') do
      bh_dd = tonumber(bh_dd)
      if bh_dd <= bh_prev then bh_sorted = false break end
      bh_prev = bh_dd
    end
  end
  if bh_sorted then
    local bh_cut = string.find(bh_days, ',[^,]*$')     -- the last day's comma
    local bh_dd, bh_t, bh_k, bh_p, bh_r = string.match(
      bh_cut and string.sub(bh_days, bh_cut + 1) or bh_days,
      '^(%d+):(%d+):(%d+):(%d+):([%d.]+)$')
    local bh_d = tonumber(bh_dd)
    local bh_head = bh_f[1] .. '|' .. bh_f[2] .. '|' .. bh_f[3] .. '|'
    if bh_d == bh_today then
      if bh_what == 1 then bh_t = tonumber(bh_t) + 1 else bh_k = tonumber(bh_k) + 1 end
      return bh_head .. (bh_cut and string.sub(bh_days, 1, bh_cut) or '') .. bh_dd ..
        ':' .. bh_t .. ':' .. bh_k .. ':' .. bh_p .. ':' .. bh_r
    elseif bh_d and bh_d < bh_today then
      return bh_head .. bh_days .. ',' .. bh_today ..
        (bh_what == 1 and ':1:0:0:0' or ':0:1:0:0')
    end
  end
  local bh_y = { 0, 0, 0, 0 }     -- today's counts, before this event
  local bh_before, bh_after, bh_last = {}, {}, -1
  for bh_e in string.gmatch(bh_days, '[^,]+') do
    local bh_dd, bh_t, bh_k, bh_p, bh_r =
      string.match(bh_e, '^(%d+):(%d+):(%d+):(%d+):([%d.]+)$')
    local bh_d = tonumber(bh_dd)
    if bh_d and bh_d <= bh_last then
      bh_d = nil     -- out of order or a day twice (never written so): dropped
    elseif bh_d == bh_today then
      bh_y = { tonumber(bh_t), tonumber(bh_k), tonumber(bh_p), tonumber(bh_r) or 0 }
    elseif bh_d and bh_d < bh_today then
      local bh_x = behav_age(bh_e, bh_dd, bh_k, bh_p, bh_r, bh_today - bh_d)
      if bh_x then bh_before[#bh_before + 1] = bh_x end
    elseif bh_d then
      bh_after[#bh_after + 1] = bh_e     -- a later day (an older clock wrote today)
    end
    bh_last = bh_d or bh_last
  end
  bh_y[bh_what] = bh_y[bh_what] + 1
  if bh_what == 3 then bh_y[4] = bh_y[4] + math.max(tonumber(bh_amount) or 0, 0) end
  bh_before[#bh_before + 1] = bh_today .. ':' .. bh_y[1] .. ':' .. bh_y[2] .. ':' ..
    bh_y[3] .. ':' .. behav_money(bh_y[4])
  for _, bh_e in ipairs(bh_after) do
    bh_before[#bh_before + 1] = bh_e
  end
  return bh_f[1] .. '|' .. bh_f[2] .. '|' .. bh_f[3] .. '|' .. table.concat(bh_before, ',')
end

-- Notes one event (behav_apply) of subscriber bh_sub in hash bh_key: one HGET, one
-- HSET. The caller announces the change (behav_announce) so that every mirror
-- reloads the record. Returns the record written, or false when nothing was.
local function behav_note(bh_key, bh_sub, bh_now, bh_what, bh_amount)
  bh_now = math.floor(tonumber(bh_now) or 0)
  if bh_now <= 0 then return false end
  local bh_rec = behav_apply(redis.call('HGET', bh_key, bh_sub), bh_now, bh_what,
    bh_amount)
  redis.call('HSET', bh_key, bh_sub, bh_rec)
  return bh_rec
end

-- The texts of a whole call (record.lua), noted with one HMGET and one HSET per
-- BEHAV_CHUNK subscribers instead of a read and a write each: behav_text(batch, sub,
-- now, channel, deal, old, new) queues one, behav_text_flush(batch) writes them all.
-- new ("" = none) is the record the text makes of old (the notifier computed both
-- from its mirror, notifier/subbehav.c): taken as is when the record is still old
-- ("" = none stored), which spares the parsing, the costly part in Redis' Lua. A text
-- also sets field "<sub>\t<channel>" = the deal texted, for the replies on the
-- channel (docs/inbound.md); a subscriber id holds no tab, so no record's field is
-- one of those. Returns the subscribers and their records, in the order first
-- queued, for behav_announce.
local BEHAV_CHUNK = 256

local function behav_text(bh_batch, bh_sub, bh_now, bh_ch, bh_deal, bh_was, bh_is)
  bh_is = bh_is or ''
  if bh_is == '' then
    bh_now = math.floor(tonumber(bh_now) or 0)
    if bh_now <= 0 then return end
  end
  if not bh_batch.by[bh_sub] then
    bh_batch.by[bh_sub] = {}
    bh_batch.ids[#bh_batch.ids + 1] = bh_sub
  end
  local bh_q = bh_batch.by[bh_sub]
  bh_q[#bh_q + 1] = { bh_now, bh_ch, bh_deal, bh_was or '', bh_is }
end

local function behav_text_flush(bh_key, bh_batch)
  local bh_ids, bh_ids_out, bh_recs = bh_batch.ids, {}, {}
  for bh_i = 1, #bh_ids, BEHAV_CHUNK do
    local bh_j = math.min(bh_i + BEHAV_CHUNK - 1, #bh_ids)
    local bh_old = redis.call('HMGET', bh_key, unpack(bh_ids, bh_i, bh_j))
    local bh_fv = {}
    for bh_k = bh_i, bh_j do
      local bh_id = bh_ids[bh_k]
      local bh_rec = bh_old[bh_k - bh_i + 1]
      -- the record's field first, then its channels' (its place kept here)
      bh_fv[#bh_fv + 1] = bh_id
      bh_fv[#bh_fv + 1] = false
      local bh_at = #bh_fv
      for _, bh_e in ipairs(bh_batch.by[bh_id]) do
        if bh_e[5] ~= '' and (bh_rec or '') == bh_e[4] then
          bh_rec = bh_e[5]
        else
          local bh_now = math.floor(tonumber(bh_e[1]) or 0)
          if bh_now > 0 then bh_rec = behav_apply(bh_rec, bh_now, 1) end
        end
        bh_fv[#bh_fv + 1] = bh_id .. '\t' .. bh_e[2]
        bh_fv[#bh_fv + 1] = bh_e[3]
      end
      if bh_rec then
        bh_fv[bh_at] = bh_rec
        bh_ids_out[#bh_ids_out + 1] = bh_id
        bh_recs[#bh_recs + 1] = bh_rec
      else
        -- No record stored and no time that parses (the notifier always sends
        -- one): nothing to write or announce for it.
        table.remove(bh_fv, bh_at)
        table.remove(bh_fv, bh_at - 1)
      end
    end
    if #bh_fv > 0 then
      redis.call('HSET', bh_key, unpack(bh_fv))
    end
  end
  return bh_ids_out, bh_recs
end

-- Tells every mirror that the records of bh_ids (a list) changed to bh_recs (the
-- same order): one entry on subscribers:changes (bh_changes), op "behav", an "id"
-- field per subscriber followed by its "rec" (the record itself, so that a mirror
-- needs no read to follow it), with the format version (FMT).
local function behav_announce(bh_changes, bh_ids, bh_recs)
  if #bh_ids == 0 then return end
  local bh_fv = { 'op', 'behav' }
  for bh_i, bh_id in ipairs(bh_ids) do
    bh_fv[#bh_fv + 1] = 'id'
    bh_fv[#bh_fv + 1] = bh_id
    bh_fv[#bh_fv + 1] = 'rec'
    bh_fv[#bh_fv + 1] = bh_recs[bh_i]
  end
  for _, x in ipairs(FMT) do
    bh_fv[#bh_fv + 1] = x
  end
  redis.call('XADD', bh_changes, 'MAXLEN', '~', '100000', '*', unpack(bh_fv))
end
