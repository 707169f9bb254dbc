/*
 * ctl_convwait.c: after dealpushctl convert posted its conversions, wait (bounded)
 * for each one's final outcome and print it (stage: outside the pipeline, the
 * operator's CLI; it only reads). The outcome is what the attribution consumer
 * recorded: convert.lua's value of order:<order id> ("<entry>\t<outcome>"), or a
 * dead letter in conversions:dead naming the entry, or, for an entry the group has
 * acked while another entry holds the order, a duplicate. It must never print
 * "attributed" for a conversion that was dead-lettered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "convert.h"
#include "ctl_int.h"
#include "keys.h"
#include "redisutil.h"

#define CONV_STREAM "conversions"
#define CONV_DEAD keys_global(KEYS_G_CONVERSIONS_DEAD)
#define CONV_GROUP "attribution"
#define CONV_POLL_MS 100
#define CONV_DEAD_READ 10000              /* dead letters read per round */

/* -1, 0, 1 as stream id a is before, equal to, after b ("ms-seq"). */
static int
id_cmp(const char *a, const char *b)
{
	unsigned long long am = 0, as = 0, bm = 0, bs = 0;

	(void)sscanf(a, "%llu-%llu", &am, &as);
	(void)sscanf(b, "%llu-%llu", &bm, &bs);
	if (am != bm)
		return am < bm ? -1 : 1;
	return as < bs ? -1 : as > bs;
}

/* Marks each posted entry that a dead letter names. -1 on a Redis error (printed). */
static int
read_dead(struct ctl_conn *c, struct ctl_posted *p, size_t n, const char *from)
{
	redisReply *r = ctl_command(c, "XRANGE %s %s + COUNT %d", CONV_DEAD, from,
	    CONV_DEAD_READ);
	size_t i, k;
	int rc = -1;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "dealpushctl: redis: XRANGE %s: %s\n", CONV_DEAD,
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : ctl_errstr(c));
		goto out;
	}
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i], *f;
		const char *entry;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
			continue;
		f = e->element[1];
		if ((entry = ru_field(f, "entry", NULL)) == NULL)
			continue;
		for (k = 0; k < n; k++)
			if (!p[k].done && strcmp(p[k].entry, entry) == 0) {
				snprintf(p[k].outcome, sizeof(p[k].outcome), "dead-lettered %s "
				    "(%s)", ru_field(f, "reason", NULL) ? ru_field(f, "reason", NULL) : "?",
				    ru_field(f, "error", NULL) ? ru_field(f, "error", NULL) : "?");
				p[k].done = 1;
				p[k].dead = 1;
			}
	}
	rc = 0;
out:
	freeReplyObject(r);
	return rc;
}

/* 1 when the group has read entry and acked it, 0 when not yet, -1 on error. */
static int
acked(struct ctl_conn *c, const char *entry)
{
	redisReply *r = ctl_command(c, "XINFO GROUPS %s", CONV_STREAM), *q = NULL;
	const char *last = NULL;
	size_t i;
	int rc = -1;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		goto out;
	for (i = 0; i < r->elements; i++) {
		const char *name = ru_field(r->element[i], "name", NULL);

		if (name != NULL && strcmp(name, CONV_GROUP) == 0)
			last = ru_field(r->element[i], "last-delivered-id", NULL);
	}
	if (last == NULL || id_cmp(last, entry) < 0) {
		rc = 0;
		goto out;
	}
	q = ctl_command(c, "XPENDING %s %s %s %s 1", CONV_STREAM, CONV_GROUP, entry, entry);
	if (q == NULL || q->type != REDIS_REPLY_ARRAY)
		goto out;
	rc = q->elements == 0;
out:
	freeReplyObject(q);
	freeReplyObject(r);
	return rc;
}

/* The value of the order's record that names entry: order:<order> in the
 * single-instance layout; in the sharded one it is in the shard the conversion was
 * attributed in, which only the notifier knew, so every shard's is read (one GET
 * each: on a cluster the shards' keys are on several primaries). Returns a reply the
 * caller frees: the record naming entry, else the first one found (the order counted
 * by another entry), else nil; or NULL after printing a Redis error. */
static redisReply *
order_get(struct ctl_conn *c, const char *order, const char *entry)
{
	char key[KEYS_SHARD_MAX + 130];
	uint32_t k, n = keys_shards();
	redisReply *r, *hit = NULL, *other = NULL;
	size_t el = strlen(entry);

	for (k = 0; k < n; k++) {
		if (keys_per(k, KEYS_ORDER, order, key, sizeof(key)) < 0) {
			fprintf(stderr, "dealpushctl: order id too long: %s\n", order);
			goto fail;
		}
		if ((r = ctl_command(c, "GET %s", key)) == NULL ||
		    r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "dealpushctl: redis: GET order:%s: %s\n", order,
			    r != NULL ? r->str : ctl_errstr(c));
			freeReplyObject(r);
			goto fail;
		}
		if (hit == NULL && r->type == REDIS_REPLY_STRING &&
		    strncmp(r->str, entry, el) == 0 && r->str[el] == '\t')
			hit = r;
		else if (other == NULL && r->type == REDIS_REPLY_STRING)
			other = r;
		else
			freeReplyObject(r);
	}
	if (hit == NULL) {
		hit = other;
		other = NULL;
	}
	freeReplyObject(other);
	if (hit == NULL && (hit = calloc(1, sizeof(*hit))) != NULL)
		hit->type = REDIS_REPLY_NIL;   /* freeReplyObject frees it like any reply */
	return hit;
fail:
	freeReplyObject(hit);
	freeReplyObject(other);
	return NULL;
}

/* One look at every posted conversion not resolved yet. -1 on a Redis error. */
static int
look(struct ctl_conn *c, struct ctl_posted *p, size_t n, const char *from)
{
	size_t k;

	if (read_dead(c, p, n, from) < 0)
		return -1;
	for (k = 0; k < n; k++) {
		redisReply *r;
		size_t el = strlen(p[k].entry);

		if (p[k].done)
			continue;
		if ((r = order_get(c, p[k].order, p[k].entry)) == NULL)
			return -1;
		if (r->type == REDIS_REPLY_STRING && strncmp(r->str, p[k].entry, el) == 0 &&
		    r->str[el] == '\t') {
			const char *o = r->str + el + 1;

			/* cut to the buffer when too long */
			(void)convert_outcome_text(o, p[k].outcome, sizeof(p[k].outcome));
			p[k].done = 1;
		} else if (r->type == REDIS_REPLY_STRING && acked(c, p[k].entry) == 1) {
			snprintf(p[k].outcome, sizeof(p[k].outcome), "duplicate (the order was "
			    "counted by entry %.*s)", (int)strcspn(r->str, "\t"), r->str);
			p[k].done = 1;
		}
		freeReplyObject(r);
	}
	return 0;
}

int
ctl_convert_wait(struct ctl_conn *c, struct ctl_posted *p, size_t n, long wait_ms,
    unsigned long *refused)
{
	struct timespec pause = { 0, CONV_POLL_MS * 1000000L };
	const char *from = n > 0 ? p[0].entry : "-";
	long waited = 0;
	size_t k, left = n;

	*refused = 0;
	for (k = 0; k < n; k++)
		if (id_cmp(p[k].entry, from) < 0)
			from = p[k].entry;
	while (left > 0) {
		if (look(c, p, n, from) < 0)
			return CTL_FAIL;
		for (left = 0, k = 0; k < n; k++)
			left += !p[k].done;
		if (left == 0 || waited >= wait_ms)
			break;
		nanosleep(&pause, NULL);
		waited += CONV_POLL_MS;
	}
	for (k = 0; k < n; k++) {
		if (!p[k].done)
			printf("order %s entry=%s: no outcome after %ld s (is a notifier "
			    "running?); it stays posted\n", p[k].order, p[k].entry,
			    wait_ms / 1000);
		else
			printf("order %s entry=%s: %s\n", p[k].order, p[k].entry,
			    p[k].outcome);
		*refused += p[k].dead;
	}
	return CTL_OK;
}
