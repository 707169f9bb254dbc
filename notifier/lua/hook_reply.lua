-- hook_reply.lua: an inbound message that is no keyword, kept for review (stage:
-- http; docs/inbound.md). On the slot of replies.
-- KEYS[1] replies   KEYS[2] inbound:seen:<MessageSid> (keys_reply_seen; "" = no sid)
-- ARGV: channel, reason, now (epoch s), from (the full number or handle: the stream
--   is internal, never logged), MessageSid ("" = none), text, the subscriber (the
--   number's first; "" = none), the deal of its last push on the channel (read by
--   the caller from the subscriber's shard's behaviour hash; "" = none): the deal
--   the reply answers
-- The message goes on the replies stream (MAXLEN ~ 10000) once: a sid seen in the
-- last 30 days (Twilio's retries) adds nothing. Returns { 0, 0, 0, duplicate }, as
-- hook_consent.lua answers.
local replies, seen = KEYS[1], KEYS[2]
local ch, reason, now, from, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if seen ~= '' and not redis.call('SET', seen, now, 'NX', 'EX', 30 * 86400) then
  return { 0, 0, 0, 1 }
end
redis.call('XADD', replies, 'MAXLEN', '~', '10000', '*', 'from', from, 'text', ARGV[6],
  'received_at', now, 'reason', reason, 'channel', ch, 'sid', sid, 'sub', ARGV[7],
  'deal', ARGV[8], unpack(FMT))
return { 0, 0, 0, 0 }
