/*
 * app.h: what the HTTP-facing modules (admin API, inbound hooks, click links,
 * conversions) are given by main.c: the running daemon's shared parts, all
 * borrowed and outliving every module. Modules register their routes on http and
 * keep no other global state.
 */
#ifndef DEALPUSH_APP_H
#define DEALPUSH_APP_H

struct event_base;
struct config;
struct rconn;
struct rconn_config;
struct substore;
struct matcher;
struct metrics;
struct http;
struct httpc;
struct hooks;
struct admin;

struct app {
	struct event_base *base;
	const struct config *cfg;
	const struct rconn_config *rcfg; /* to open a connection of a module's own
	                                  * (e.g. a blocking stream reader) */
	struct rconn *cmd;               /* shared command connection (scripts loaded) */
	struct substore *ss;             /* subscriber mirror (read-only) */
	struct matcher *matcher;         /* rules and index (read-only, except reload) */
	struct metrics *metrics;         /* may be NULL */
	struct http *http;               /* NULL when the HTTP surface is off */
	struct httpc *httpc;             /* outgoing HTTP (confirmation texts) */
	struct tzcache *zones;           /* every zone, loaded at start-up (SIGHUP reloads) */
	struct admin *admin;             /* the rules' sources (a draft is compiled there) */
	struct hooks *hooks;             /* the inbound hooks (their phone index); NULL
	                                  * without the HTTP surface */
};

#endif
