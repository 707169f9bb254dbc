-- lib/subput.lua: storing subscribers, shared by admin_sub_put.lua (the admin API, one
-- subscriber) and admin_sub_bulk.lua (imports, many per call), so
-- that all of them store exactly the same thing. Needs lib/subjson.lua included
-- before it. Every key is an argument, from the calling script's KEYS.

-- The SMS opt-out of suppression list entry v ("<when>\t<how>\t<detail>", or false)
-- that keeps out an sms consent time t (a number, or nil) of a subscriber whose
-- consent record is rec (text or false): one at or after t, later than the record's
-- last sms event. Returns its when (a string), how and detail, or nil.
local function subput_stop(v, t, rec)
  if not v or not t then
    return nil
  end
  local when, how, detail = string.match(v, '^(%d+)\t([^\t]*)\t(.*)$')
  local w = tonumber(when)
  if not w or w < t then
    return nil
  end
  local _, last = subjson_record_last(rec, 'sms')
  if last and last >= w then
    return nil
  end
  return when, how, detail
end

-- The later of two entries "<when>\t<how>\t<detail>" (false or "" = none).
local function subput_later(a, b)
  if not a or a == '' then return b end
  if not b or b == '' then return a end
  local ta = tonumber(string.match(a, '^(%d+)\t')) or 0
  local tb = tonumber(string.match(b, '^(%d+)\t')) or 0
  return tb > ta and b or a
end

-- Stores the subscribers of list in order, as one admin_sub_put.lua call each would
-- (its header has the rules), preceded for each by the suppression check when sup
-- is given (the shard's stops key; nil: no check): each
-- entry's stop is then its number's entry on the suppression list as the caller read
-- it ("" = none; the list is on the numbers' slots, docs/sharding.md 4f), the later
-- of it and the number's entry in stops.
-- subs, changes, epoch, records: the keys subscribers, subscribers:changes,
-- consent:epoch, consent:records; ckeys the consent:<channel> keys in channel order;
-- list entries { id =, json = (canonical), phone = ("" = none), stop = (with sup),
-- times = { consent
-- time per channel, "" = none } }; create '1' refuses an id that exists; now and how
-- for the record. Reads and writes each key once for the whole list (HMGET, HSET of
-- many fields), the change stream once per subscriber: a list of 250 costs about
-- what 10 single puts do.
-- Returns results (per entry: false when create refused it, else { json as stored,
-- channels kept out joined by "," }), created, suppressed.
-- ORDER CHANNEL (enum channel, include/model.h): the channel of each of ckeys. The
-- names are never read out of the keys, whose form changes with sharding.
local SUBPUT_CHANNELS = {'sms', 'dm'}

local function subput_batch(subs, changes, epoch, records, sup, ckeys, list, create,
    now, how)
  local n, ids, chname, sms = #list, {}, SUBPUT_CHANNELS, 1
  if #ckeys ~= #SUBPUT_CHANNELS then
    error('subput: one consent key per channel expected')
  end
  for i = 1, n do ids[i] = list[i].id end
  local results = {}
  if n == 0 then
    return results, 0, 0
  end
  -- What is stored now, read once: later entries for the same id see the earlier.
  local recs, got = {}, redis.call('HMGET', records, unpack(ids))
  for i = 1, n do recs[ids[i]] = got[i] end
  local has = {}
  for c = 1, #ckeys do
    has[c] = {}
    got = redis.call('HMGET', ckeys[c], unpack(ids))
    for i = 1, n do has[c][ids[i]] = got[i] ~= false end
  end
  local stops = {}
  if sup and sms then
    local phones = {}
    for i = 1, n do
      if list[i].phone ~= '' and tonumber(list[i].times[sms]) then
        phones[#phones + 1] = list[i].phone
      end
    end
    if #phones > 0 then
      got = redis.call('HMGET', sup, unpack(phones))
      for i = 1, #phones do stops[phones[i]] = got[i] end
    end
  end
  local rec0, cset, sset, order = {}, {}, {}, {}
  for c = 1, #ckeys do cset[c] = {} end
  local revoked, suppressed = 0, 0
  for i = 1, n do
    local e = list[i]
    local id, json = e.id, e.json
    if create == '1' and redis.call('HEXISTS', subs, id) == 1 then
      results[i] = false
    else
      local rec = recs[id]
      if rec0[id] == nil then rec0[id] = rec end
      if sup and sms and e.phone ~= '' then
        local when, show, detail = subput_stop(subput_later(e.stop ~= '' and e.stop,
          stops[e.phone]), tonumber(e.times[sms]), rec)
        if when then
          rec = subjson_record_add(rec, 'sms', 'opted_out', when, show, detail)
          suppressed = suppressed + 1
        end
      end
      local kept = {}
      for c = 1, #ckeys do
        local ch, given = chname[c], e.times[c]
        local t = tonumber(given)
        if t then
          local st, w = subjson_record_last(rec, ch)
          if (st == 'opted_out' or st == 'revoked') and (w or 0) >= t then
            kept[#kept + 1] = ch
            json = subjson_set_consent(json, ch, 'null') or json
            if has[c][id] then
              has[c][id] = false
              cset[c][id] = false
              revoked = revoked + 1
            end
          else
            cset[c][id] = given
            if not has[c][id] then
              has[c][id] = true
              rec = subjson_record_add(rec, ch, 'granted', now, how, given)
            end
          end
        elseif has[c][id] then
          has[c][id] = false
          cset[c][id] = false
          revoked = revoked + 1
          rec = subjson_record_add(rec, ch, 'removed', now, how, '')
        end
      end
      recs[id] = rec
      if sset[id] == nil then order[#order + 1] = id end
      sset[id] = json
      results[i] = { json, table.concat(kept, ',') }
    end
  end
  -- The writes: each key once, then one change entry per subscriber stored.
  for c = 1, #ckeys do
    local set, del = {}, {}
    for id, v in pairs(cset[c]) do
      if v then
        set[#set + 1] = id
        set[#set + 1] = v
      else
        del[#del + 1] = id
      end
    end
    if #set > 0 then redis.call('HSET', ckeys[c], unpack(set)) end
    if #del > 0 then redis.call('HDEL', ckeys[c], unpack(del)) end
  end
  local rset = {}
  for id, old in pairs(rec0) do
    if recs[id] and recs[id] ~= old then
      rset[#rset + 1] = id
      rset[#rset + 1] = recs[id]
    end
  end
  if #rset > 0 then redis.call('HSET', records, unpack(rset)) end
  local created = 0
  if #order > 0 then
    local sv = {}
    for _, id in ipairs(order) do
      sv[#sv + 1] = id
      sv[#sv + 1] = sset[id]
    end
    created = redis.call('HSET', subs, unpack(sv))
  end
  for i = 1, n do
    if results[i] then
      redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', ids[i], 'op', 'put', unpack(FMT))
    end
  end
  if revoked > 0 then
    subjson_consent_revoked(epoch)
  end
  return results, created, suppressed
end
