/*
 * shard.c: the shard function, the shards' hash tags and the stored layout (stage: all
 * Redis I/O; docs/sharding.md, section 1).
 *
 * Pure: no I/O, no globals. The shard of an id never depends on Redis' slot function,
 * so the shard count and the cluster's slot map stay independent; only the tags are
 * chosen by slot. Lua never computes a shard (it has no 64-bit integers): every key a
 * script touches is built here, by its C caller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rules.h"
#include "shard.h"
#include "slot.h"

struct shard_layout {
	uint32_t n;
	char (*tags)[SHARD_TAG_MAX];
};

uint32_t
shard_of(const char *id, uint32_t nshards)
{
	if (nshards <= 1)
		return 0;
	return (uint32_t)(rule_fmix64(rule_fnv1a(id)) % nshards);
}

int
shard_target_slot(uint32_t i, uint32_t nshards)
{
	return (int)((2ULL * i + 1) * SLOT_COUNT / (2ULL * nshards));
}

static int
tag_slot(const char *tag, size_t len)
{
	return slot_crc16(tag, len) % SLOT_COUNT;
}

int
shard_tag_find(uint32_t i, uint32_t nshards, char *buf, size_t size)
{
	int target, len;
	uint32_t n;

	if (size > 0)
		buf[0] = '\0';
	if (nshards < 1 || nshards > SHARD_MAX || i >= nshards)
		return -1;
	target = shard_target_slot(i, nshards);
	len = snprintf(buf, size, "s%u", i);
	if (len < 0 || (size_t)len >= size)
		goto small;
	if (tag_slot(buf, (size_t)len) == target)
		return len;
	/* About SLOT_COUNT tries on average; a 32-bit n is never exhausted in practice
	 * (each try hits with probability 1/SLOT_COUNT). */
	for (n = 1; n != 0; n++) {
		len = snprintf(buf, size, "s%u.%u", i, n);
		if (len < 0 || (size_t)len >= size)
			goto small;
		if (tag_slot(buf, (size_t)len) == target)
			return len;
	}
small:
	if (size > 0)
		buf[0] = '\0';
	return -1;
}

static struct shard_layout *
layout_alloc(uint32_t n, struct err *err)
{
	struct shard_layout *l = calloc(1, sizeof(*l));

	if (l == NULL || (l->tags = calloc(n, sizeof(*l->tags))) == NULL) {
		free(l);
		err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory for the layout");
		return NULL;
	}
	l->n = n;
	return l;
}

struct shard_layout *
shard_layout_new(uint32_t nshards, struct err *err)
{
	struct shard_layout *l;
	uint32_t i;

	if (nshards < 1 || nshards > SHARD_MAX) {
		err_set(err, ERR_INPUT, "bad_value", "shards", "shards must be 1..%d, not %u",
		    SHARD_MAX, nshards);
		return NULL;
	}
	if ((l = layout_alloc(nshards, err)) == NULL)
		return NULL;
	for (i = 0; i < nshards; i++)
		(void)shard_tag_find(i, nshards, l->tags[i], sizeof(l->tags[i]));
	return l;
}

/* 1 when tag is shard i's own form: "s<i>" or "s<i>.<n>", n a decimal >= 1 without a
 * leading zero. */
static int
tag_is_for(const char *tag, size_t len, uint32_t i)
{
	char own[16];
	int k = snprintf(own, sizeof(own), "s%u", i);
	size_t p;

	if (k < 0 || len < (size_t)k || memcmp(tag, own, (size_t)k) != 0)
		return 0;
	if (len == (size_t)k)
		return 1;
	if (tag[k] != '.' || len == (size_t)k + 1 || tag[k + 1] == '0' || len - k - 1 > 10)
		return 0;
	for (p = (size_t)k + 1; p < len; p++)
		if (tag[p] < '0' || tag[p] > '9')
			return 0;
	return 1;
}

struct shard_layout *
shard_layout_parse(const char *version, const char *shards, const char *hash,
    const char *tags, struct err *err)
{
	struct shard_layout *l;
	const char *p;
	char *end;
	unsigned long n;
	uint32_t i;

	if (version == NULL || strcmp(version, SHARD_LAYOUT_VERSION) != 0) {
		err_set(err, ERR_INPUT, "bad_layout", "version", "layout version %s%s%s is not "
		    "one this build reads (%s)", version ? "'" : "", version ? version : "absent",
		    version ? "'" : "", SHARD_LAYOUT_VERSION);
		return NULL;
	}
	if (hash == NULL || strcmp(hash, SHARD_HASH_NAME) != 0) {
		err_set(err, ERR_INPUT, "bad_layout", "hash", "shard function '%s' is not one "
		    "this build knows (%s)", hash ? hash : "", SHARD_HASH_NAME);
		return NULL;
	}
	errno = 0;
	n = shards != NULL && *shards >= '1' && *shards <= '9' ? strtoul(shards, &end, 10) : 0;
	if (n < 1 || n > SHARD_MAX || errno != 0 || *end != '\0') {
		err_set(err, ERR_INPUT, "bad_layout", "shards", "shards must be 1..%d, not "
		    "'%s'", SHARD_MAX, shards ? shards : "");
		return NULL;
	}
	if ((l = layout_alloc((uint32_t)n, err)) == NULL)
		return NULL;
	p = tags != NULL ? tags : "";
	for (i = 0; i < l->n; i++) {
		size_t len = strcspn(p, " ");

		if (len == 0 || len >= SHARD_TAG_MAX || !tag_is_for(p, len, i) ||
		    tag_slot(p, len) != shard_target_slot(i, l->n)) {
			err_set(err, ERR_INPUT, "bad_layout", "tags", "tag %u ('%.*s') is not "
			    "shard %u's tag: the layout was changed by hand or is corrupted", i,
			    (int)(len < 32 ? len : 32), p, i);
			goto bad;
		}
		memcpy(l->tags[i], p, len);
		l->tags[i][len] = '\0';
		p += len;
		if (i + 1 < l->n) {
			if (*p != ' ') {
				err_set(err, ERR_INPUT, "bad_layout", "tags", "%u tags for %u shards",
				    i + 1, l->n);
				goto bad;
			}
			p++;
		}
	}
	if (*p != '\0') {
		err_set(err, ERR_INPUT, "bad_layout", "tags", "more tags than the %u shards",
		    l->n);
		goto bad;
	}
	return l;
bad:
	shard_layout_free(l);
	return NULL;
}

void
shard_layout_free(struct shard_layout *l)
{
	if (l == NULL)
		return;
	free(l->tags);
	free(l);
}

uint32_t
shard_layout_count(const struct shard_layout *l)
{
	return l->n;
}

const char *
shard_layout_tag(const struct shard_layout *l, uint32_t i)
{
	return i < l->n ? l->tags[i] : NULL;
}

int
shard_layout_tags(const struct shard_layout *l, char *buf, size_t size)
{
	size_t pos = 0;
	uint32_t i;
	int k;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	for (i = 0; i < l->n; i++) {
		k = snprintf(buf + pos, size - pos, "%s%s", i > 0 ? " " : "", l->tags[i]);
		if (k < 0 || (size_t)k >= size - pos) {
			buf[0] = '\0';
			return -1;
		}
		pos += (size_t)k;
	}
	return (int)pos;
}

int
shard_key(const struct shard_layout *l, uint32_t i, const char *name, char *buf,
    size_t size)
{
	int k;

	if (size > 0)
		buf[0] = '\0';
	if (i >= l->n)
		return -1;
	k = snprintf(buf, size, "{%s}%s", l->tags[i], name);
	if (k < 0 || (size_t)k >= size) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return k;
}
