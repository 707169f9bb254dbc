-- lib/textdiff.lua: a text kept as its difference from a reference text (record.lua
-- writes, hook_status.lua reads; inlined where a script says "--#include textdiff").
--
-- The texts of one deal and rule differ per recipient only where a click link's
-- token or a code goes, so "<p>\t<s>\t<middle>" (the text is the reference's first
-- p bytes, middle, and the reference's last s bytes) keeps a few dozen bytes instead
-- of the whole text. Byte-exact for any two texts: a text with nothing in common
-- with the reference is "0\t0\t<text>". Pure: no redis.call.

-- The longest common prefix and suffix are found 16 bytes at a time, then byte by
-- byte: record.lua encodes every sent SMS, and a binary search over string.sub made
-- about 14 substrings of up to the whole text per push.
local TD_STEP = 16

-- The length of the longest common prefix of a and b, up to max bytes.
local function td_prefix(a, b, max)
  local p = 0
  while p + TD_STEP <= max and
      string.sub(a, p + 1, p + TD_STEP) == string.sub(b, p + 1, p + TD_STEP) do
    p = p + TD_STEP
  end
  while p < max and string.byte(a, p + 1) == string.byte(b, p + 1) do
    p = p + 1
  end
  return p
end

-- The length of the longest common suffix of a and b, up to max bytes.
local function td_suffix(a, b, max)
  local s, la, lb = 0, #a, #b
  while s + TD_STEP <= max and string.sub(a, la - s - TD_STEP + 1, la - s) ==
      string.sub(b, lb - s - TD_STEP + 1, lb - s) do
    s = s + TD_STEP
  end
  while s < max and string.byte(a, la - s) == string.byte(b, lb - s) do
    s = s + 1
  end
  return s
end

-- text as its difference from ref: "<p>\t<s>\t<middle>". A text equal to ref (a
-- deal without per-recipient links or codes: the common case) is "<#ref>\t0\t".
-- hint (may be nil): a table the caller keeps per ref, empty at first. The texts of
-- one deal and rule differ from ref at the same place, so the p and s found last are
-- checked first (two substrings compared, four bytes read) and their "<p>\t<s>\t" is
-- reused: the byte scans and the number-to-string conversions, the costly part in
-- Redis' Lua, are done once per ref and call.
local function td_encode(ref, text, hint)
  if text == ref then
    return #ref .. '\t0\t'
  end
  local n, lt = math.min(#ref, #text), #text
  local p, s = hint and hint.p, hint and hint.s
  if not (p and p + s <= n and string.sub(text, 1, p) == hint.pre and
      (p == n or string.byte(text, p + 1) ~= string.byte(ref, p + 1))) then
    p, s = td_prefix(ref, text, n), nil
  end
  if s and not (s + p <= n and (s == 0 or string.sub(text, lt - s + 1) == hint.suf) and
      (s == n - p or string.byte(text, lt - s) ~= string.byte(ref, #ref - s))) then
    s = nil
  end
  if not s then
    s = td_suffix(ref, text, n - p)
  end
  if hint and (hint.p ~= p or hint.s ~= s) then
    hint.p, hint.s, hint.head = p, s, p .. '\t' .. s .. '\t'
    hint.pre, hint.suf = string.sub(ref, 1, p), string.sub(ref, #ref - s + 1)
  end
  return (hint and hint.head or p .. '\t' .. s .. '\t') .. string.sub(text, p + 1, lt - s)
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
