/*
 * ctl_consent.c: dealpushctl consent migrate (stage: outside the pipeline, once after
 * an upgrade): moves every consent record of earlier versions, two keys per
 * subscriber (consent_history:<id>, consent_log:<id>), into hash consent:records,
 * one subscriber per consent_migrate.lua call. It must never lose an event: a key is
 * deleted only by the script that moved it, in the same step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deal.h"
#include "layout.h"
#include "scripts.h"

#include "ctl_int.h"

#define CTL_MIGRATE_SCAN "1000"       /* SCAN COUNT per round trip */

/* Moves the record of subscriber id (the keys are named here, in the CLI: the script
 * takes them in KEYS). Returns the events moved, or -1 after printing. */
static long long
migrate_one(redisContext *c, const char *sha, const char *id)
{
	char hist[MODEL_ID_MAX + 32], log[MODEL_ID_MAX + 32];
	const char *argv[] = { "EVALSHA", sha, "3", "consent:records", hist, log, id };
	redisReply *r;
	long long n = -1;

	snprintf(hist, sizeof(hist), "consent_history:%s", id);
	snprintf(log, sizeof(log), "consent_log:%s", id);
	redisAppendCommandArgv(c, 7, argv, NULL);
	if (ctl_expect_reply(c, REDIS_REPLY_INTEGER, NULL, "consent_migrate.lua", &r) < 0)
		return -1;
	n = r->integer;
	freeReplyObject(r);
	return n;
}

int
ctl_consent_migrate(redisContext *c)
{
	const char *patterns[2] = { "consent_history:*", "consent_log:*" };
	unsigned long subs = 0;
	long long events = 0, n;
	char sha[41], cursor[32];
	redisReply *r;
	size_t i;
	int p;

	/* The records of earlier versions are moved before the data goes to the sharded
	 * layout (docs/sharding.md 4g): there they would have nowhere to go. */
	if (layout_current() != NULL) {
		fprintf(stderr, "dealpushctl: consent migrate: refused: Redis holds the "
		    "sharded layout; consent records of earlier versions are moved before "
		    "dealpushctl migrate\n");
		return CTL_BAD_INPUT;
	}
	if (ctl_load_script(c, "consent_migrate", sha) < 0)
		return CTL_FAIL;
	/* History keys first; a log key left after that had no history. */
	for (p = 0; p < 2; p++) {
		size_t skip = strlen(patterns[p]) - 1;

		snprintf(cursor, sizeof(cursor), "0");
		do {
			const char *argv[] = { "SCAN", cursor, "MATCH", patterns[p], "COUNT",
			    CTL_MIGRATE_SCAN };

			redisAppendCommandArgv(c, 6, argv, NULL);
			if (ctl_expect_reply(c, REDIS_REPLY_ARRAY, NULL, "SCAN", &r) < 0)
				goto fail;
			if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
			    r->element[1]->type != REDIS_REPLY_ARRAY) {
				fprintf(stderr, "dealpushctl: redis: SCAN: unexpected reply\n");
				freeReplyObject(r);
				goto fail;
			}
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
			for (i = 0; i < r->element[1]->elements; i++) {
				const redisReply *k = r->element[1]->element[i];

				if (k->type != REDIS_REPLY_STRING || k->len <= skip)
					continue;
				if (!deal_id_is_valid(k->str + skip)) {
					fprintf(stderr, "dealpushctl: %s: not a subscriber id; left"
					    " as it is\n", k->str);
					continue;
				}
				if ((n = migrate_one(c, sha, k->str + skip)) < 0) {
					freeReplyObject(r);
					goto fail;
				}
				events += n;
				subs++;
			}
			freeReplyObject(r);
		} while (strcmp(cursor, "0") != 0);
	}
	printf("migrated %lu consent records, %lld events\n", subs, events);
	return CTL_OK;
fail:
	fprintf(stderr, "dealpushctl: stopped; %lu records were migrated before the error"
	    " (running it again goes on)\n", subs);
	return CTL_FAIL;
}
