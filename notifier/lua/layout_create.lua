-- layout_create.lua: writes the sharded layout key once (stage: outside the pipeline;
-- dealpushctl layout create, docs/sharding.md section 1.1).
-- KEYS[1] dealpush:layout
-- ARGV (ORDER LAYOUT_FIELDS, include/layout.h): version, shards, hash, tags, created
-- Returns 'exists' (nothing written) when the key is there already, else 'ok'. The
-- fields go in together, so no reader ever sees half a layout.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'exists'
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'shards', ARGV[2], 'hash', ARGV[3],
  'tags', ARGV[4], 'created', ARGV[5])
return 'ok'
