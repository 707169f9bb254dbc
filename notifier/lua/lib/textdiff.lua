-- lib/textdiff.lua: a text kept as its difference from a reference text (record.lua
-- writes, hook_status.lua reads; inlined where a script says "--#include textdiff").
--
-- The texts of one deal and rule differ per recipient only where a click link's
-- token or a code goes, so "<p>\t<s>\t<middle>" (the text is the reference's first
-- p bytes, middle, and the reference's last s bytes) keeps a few dozen bytes instead
-- of the whole text. Byte-exact for any two texts: a text with nothing in common
-- with the reference is "0\t0\t<text>". Pure: no redis.call.

-- The length of the longest common prefix of a and b, up to max bytes.
local function td_prefix(a, b, max)
  local lo, hi = 0, max
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if string.sub(a, 1, mid) == string.sub(b, 1, mid) then
      lo = mid
    else
      hi = mid - 1
    end
  end
  return lo
end

-- The length of the longest common suffix of a and b, up to max bytes.
local function td_suffix(a, b, max)
  local lo, hi = 0, max
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if string.sub(a, -mid) == string.sub(b, -mid) then
      lo = mid
    else
      hi = mid - 1
    end
  end
  return lo
end

-- text as its difference from ref: "<p>\t<s>\t<middle>".
local function td_encode(ref, text)
  local n = math.min(#ref, #text)
  local p = td_prefix(ref, text, n)
  local s = td_suffix(ref, text, n - p)
  return p .. '\t' .. s .. '\t' .. string.sub(text, p + 1, #text - s)
end

-- The text d (from td_encode) stands for against ref, or nil when d is not one.
local function td_decode(ref, d)
  local p, s, middle = string.match(d, '^(%d+)\t(%d+)\t(.*)$')
  p, s = tonumber(p), tonumber(s)
  if not p or p + s > #ref then
    return nil
  end
  local tail = ''
  if s > 0 then
    tail = string.sub(ref, -s)
  end
  return string.sub(ref, 1, p) .. middle .. tail
end
