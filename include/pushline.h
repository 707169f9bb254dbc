/*
 * pushline.h: the formats the delivery stages share with their Lua scripts (stages:
 * plan, admit, send, record): the recipient line of a job, the text a recipient
 * gets, and how many keys and arguments each delivery script takes.
 *
 * Every number here has an ORDER marker of the same name at the top of its script in
 * notifier/lua/: change both together. Pure: no I/O, no allocation but what a
 * function says it returns.
 */
#ifndef DEALPUSH_PUSHLINE_H
#define DEALPUSH_PUSHLINE_H

#include <stddef.h>

#include "match.h"
#include "model.h"

/*
 * ORDER PUSHLINE: a job's recipient line (field "r" on stream "pushes", written by
 * ingest.c, kept in "delayed" and pushline:<deal>) is
 * "<channel>\t<subscriber>\t<to>\t<rule>\t<text>"; text is last and may hold a tab.
 * The rule of an A/B test member's line is "<rule>/<variant>" (a rule name never
 * holds '/'): pushline_parse splits it into rule and variant. The text holds a run of MATCH_CODE_WIDTH MATCH_CODE_MARK bytes where the
 * recipient's own pool code goes.
 */
struct pushline {
	enum channel ch;
	char *sub, *to, *rule, *text;  /* point into the parsed line */
	const char *variant;           /* the A/B variant sent, "" = none */
};

/* ORDER ADMIT_KEYS, ADMIT_RKEYS, ADMIT_ARGS, ADMIT_RARGS: notifier/lua/admit.lua. */
#define PUSHLINE_ADMIT_KEYS 16
#define PUSHLINE_ADMIT_RKEYS 5
#define PUSHLINE_ADMIT_ARGS 13
#define PUSHLINE_ADMIT_RARGS 12
/* ORDER SEND_KEYS, SEND_RKEYS, SEND_ARGS, SEND_RARGS: notifier/lua/send.lua. */
#define PUSHLINE_SEND_KEYS 6
#define PUSHLINE_SEND_RKEYS 12
#define PUSHLINE_SEND_ARGS 5
#define PUSHLINE_SEND_RARGS 16
/* ORDER RECORD_KEYS, RECORD_RKEYS, RECORD_GKEYS, RECORD_ARGS, RECORD_RARGS:
 * notifier/lua/record.lua. */
#define PUSHLINE_RECORD_KEYS 9
#define PUSHLINE_RECORD_RKEYS 4
#define PUSHLINE_RECORD_GKEYS 13
#define PUSHLINE_RECORD_ARGS 2
#define PUSHLINE_RECORD_RARGS 25

/* A pool code longer than this would not fit the place the plan kept for it. */
#define PUSHLINE_CODE_MAX MATCH_CODE_WIDTH

/*
 * Splits line in place (its tabs become NULs) into *pl. Returns 0, or -1 when a field
 * is missing or empty or the channel unknown (*pl is then unspecified).
 */
int pushline_parse(char *line, struct pushline *pl);

/* The line of pl's fields, as pushline_parse reads it: a new string, or NULL on OOM. */
char *pushline_format(const struct pushline *pl);

/*
 * The text a recipient gets: text with each run of MATCH_CODE_MARK replaced by code
 * ("" = none). Returns a new string, or NULL on OOM.
 */
char *pushline_render(const char *text, const char *code);

/* 1 when code may be put in a text: 1..PUSHLINE_CODE_MAX printable ASCII bytes, no
 * space; else 0. */
int pushline_code_ok(const char *code);

#endif
