/*
 * phoneix.c: the phone index's keys, calls and fields (stage: http; phoneix.h).
 */
#include <string.h>

#include "phoneix.h"

int
phoneix_keys(enum phoneix_kind kind, const char *value, char ix[KEYS_SHARD_MAX],
    char sup[KEYS_SHARD_MAX])
{
	sup[0] = '\0';
	if (keys_phone(value, kind == PHONEIX_DM ? KEYS_PH_DMX : KEYS_PH_PHONES, ix,
	    KEYS_SHARD_MAX) < 0)
		return -1;
	if (kind == PHONEIX_PHONE && keys_phone(value, KEYS_PH_SUPPRESSED, sup,
	    KEYS_SHARD_MAX) < 0)
		return -1;
	return 0;
}

int
phoneix_call(struct rconn *rc, const struct durable_config *wait,
    enum phoneix_kind kind, const char *op, const char *value, const char *id,
    durable_fn *cb, void *arg)
{
	char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX];
	const char *args[6];

	if (phoneix_keys(kind, value, ix, sup) < 0)
		return -1;
	/* ORDER PHONE_INDEX_KEYS, then op and the triple (the bucket is KEYS[2]) */
	args[0] = sup;
	args[1] = ix;
	args[2] = op;
	args[3] = "2";
	args[4] = value;
	args[5] = id;
	return durable_script_call(rc, wait, "phone_index", 2, 6, args, NULL, cb, arg);
}

size_t
phoneix_split(const char *v, size_t len, char ids[][MODEL_ID_MAX + 1], size_t max)
{
	size_t n = 0, i = 0;

	while (i < len && n < max) {
		const char *nl = memchr(v + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - v) : len;

		if (end > i && end - i <= MODEL_ID_MAX) {
			memcpy(ids[n], v + i, end - i);
			ids[n][end - i] = '\0';
			n++;
		}
		i = end + 1;
	}
	return n;
}
