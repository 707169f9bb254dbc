/*
 * config.c: read and validate the notifier's configuration file (stage: start-up).
 *
 * Table-driven: each known key has a type, a range and a place in struct config, so
 * validation, defaults and the documentation stay in step. Reports every bad key, not
 * only the first. Must never print a secret, even one given in the wrong place.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "subscriber.h"
#include "uri.h"

#define CONFIG_LINE_MAX 4096

/* CK_URL: an http(s) URI (uri.h); CK_URLBASE: one that paths are appended to (no
 * query). Both are checked here, once, for --check-config and start-up alike. */
enum ckind { CK_STR, CK_LONG, CK_INT, CK_DBL, CK_LEVEL, CK_SECRET, CK_GWKIND, CK_CHANNEL,
	CK_URL, CK_URLBASE };

struct ckey {
	const char *key;
	enum ckind kind;
	size_t off;
	double min, max;
};

#define C(k, kind, field, lo, hi) { k, kind, offsetof(struct config, field), lo, hi }
static const struct ckey config_keys[] = {
	C("notifier.consumer", CK_STR, consumer, 1, 64),
	C("notifier.log_level", CK_LEVEL, log_level, 0, 0),
	C("notifier.shutdown_grace_ms", CK_LONG, shutdown_grace_ms, 0, 60000),
	C("notifier.clock_offset_s", CK_LONG, clock_offset_s, -1e9, 1e9),
	C("redis.host", CK_STR, redis_host, 1, 255),
	C("redis.port", CK_INT, redis_port, 1, 65535),
	C("redis.username", CK_STR, redis_username, 1, 128),
	C("redis.password", CK_SECRET, redis_password, 0, 0),
	C("redis.connect_timeout_ms", CK_LONG, redis_connect_timeout_ms, 10, 60000),
	C("redis.command_timeout_ms", CK_LONG, redis_command_timeout_ms, 10, 60000),
	C("redis.reconnect_max_ms", CK_LONG, redis_reconnect_max_ms, 10, 600000),
	C("redis.sentinels", CK_STR, redis_sentinels, 1, 4096),
	C("redis.master_name", CK_STR, redis_master_name, 1, 128),
	C("redis.cluster", CK_STR, redis_cluster, 1, 4096),
	C("redis.wait_replicas", CK_LONG, wait_replicas, 0, 16),
	C("redis.wait_timeout_ms", CK_LONG, wait_timeout_ms, 1, 60000),
	C("redis.shards", CK_LONG, redis_shards, 1, 1024),
	C("cluster.ownership", CK_STR, cluster_ownership, 1, 16),
	C("cluster.shards", CK_STR, cluster_shards, 1, CONFIG_LINE_MAX),
	C("cluster.lease_ms", CK_LONG, cluster_lease_ms, 3000, 600000),
	C("cluster.lease_margin_ms", CK_LONG, cluster_lease_margin_ms, 1, 300000),
	C("cluster.settle_ms", CK_LONG, cluster_settle_ms, 0, 600000),
	C("ingest.batch", CK_LONG, ingest_batch, 1, 10000),
	C("ingest.block_ms", CK_LONG, block_ms, 1, 60000),
	C("ingest.plan_chunk", CK_LONG, plan_chunk, 1, 20000),
	C("ingest.plan_stall_ms", CK_LONG, plan_stall_ms, 1000, 3600000),
	C("ingest.job_size", CK_LONG, job_size, 1, 1000),
	C("ingest.max_tries", CK_LONG, max_tries, 1, 1000),
	C("deliver.batch", CK_LONG, deliver_batch, 1, 10000),
	C("deliver.retry_base_ms", CK_LONG, retry_base_ms, 1, 600000),
	C("deliver.retry_max_ms", CK_LONG, retry_max_ms, 1, 3600000),
	C("deliver.max_in_flight", CK_LONG, max_in_flight, 1, 100000),
	C("deliver.campaign_cap", CK_LONG, campaign_cap, 0, 1000),
	C("deliver.breaker_failures", CK_LONG, breaker_failures, 1, 1000),
	C("deliver.claim_idle_ms", CK_LONG, claim_idle_ms, 300, 86400000),
	C("deliver.breaker_open_ms", CK_LONG, breaker_open_ms, 10, 600000),
	C("deliver.resolve_after_s", CK_LONG, resolve_after_s, 1, 86400),
	C("deliver.resolve_tries", CK_LONG, resolve_tries, 1, 100),
	C("http.port", CK_INT, http_port, 0, 65535),
	C("http.listen", CK_STR, http_listen, 1, 64),
	C("http.port_file", CK_STR, http_port_file, 1, 4096),
	C("http.admin_token", CK_SECRET, admin_token, 0, 0),
	C("http.timeout_ms", CK_LONG, http_timeout_ms, 100, 600000),
	C("http.idle_ms", CK_LONG, http_idle_ms, 100, 600000),
	C("http.session_ttl_s", CK_LONG, session_ttl_s, 60, 604800),
	C("http.max_connections", CK_LONG, http_max_connections, 16, 1000000),
	C("http.max_per_address", CK_LONG, http_max_per_address, 1, 1000000),
	C("http.public_url", CK_URLBASE, public_url, 1, 1024),
	C("http.click_secret", CK_SECRET, click_secret, 0, 0),
	C("http.link_base", CK_URLBASE, link_base, 1, 200),
	C("http.inbound_secret", CK_SECRET, inbound_secret, 0, 0),
	C("rules.dir", CK_STR, rules_dir, 1, 4096),
	C("rules.overbook", CK_DBL, overbook, 1, 100),
	C("report.sms_segment_price", CK_DBL, sms_segment_price, 0, 100),
	C("guards.max_audience", CK_LONG, guard_audience, 0, 1e9),
	C("guards.max_cost", CK_DBL, guard_cost, 0, 1e12),
	C("inbound.optout_words", CK_STR, optout_words, 1, CONFIG_LINE_MAX),
	C("inbound.finish_after_s", CK_LONG, inbound_finish_after_s, 1, 3600),
	C("inbound.optout_fillers", CK_STR, optout_fillers, 1, CONFIG_LINE_MAX),
	C("signup.keywords", CK_STR, signup_keywords, 1, CONFIG_LINE_MAX),
	C("signup.program", CK_STR, signup_program, 1, 64),
	C("signup.terms_url", CK_URL, signup_terms_url, 1, 200),
	C("signup.timezone", CK_STR, signup_timezone, 1, 64),
	C("signup.max_per_week", CK_LONG, signup_max_per_week, 1, 100),
	C("signup.max_requests_per_day", CK_LONG, signup_max_requests, 1, 100),
	C("signup.confirm_ttl_s", CK_LONG, signup_confirm_ttl_s, 60, 604800),
	C("privacy.proof_retention_days", CK_LONG, proof_retention_days, 1, 36500),
	/* at most 30 days: the click marks and pushinfo they are measured from live 30 */
	C("attribution.click_window_s", CK_LONG, click_window_s, 60, 2592000),
	C("attribution.delivery_window_s", CK_LONG, delivery_window_s, 60, 2592000),
};
#undef C

#define G(k, kind, field, lo, hi) { k, kind, offsetof(struct gw_config, field), lo, hi }
static const struct ckey gateway_keys[] = {
	G("kind", CK_GWKIND, kind, 0, 0),
	G("channel", CK_CHANNEL, channel, 0, 0),
	G("priority", CK_INT, priority, 0, 1000),
	G("base_url", CK_URLBASE, base_url, 1, 2048),
	G("url", CK_URL, url, 1, 2048),
	G("account_sid", CK_STR, account_sid, 1, 64),
	G("from", CK_STR, from, 1, 32),
	G("messaging_service_sid", CK_STR, messaging_service_sid, 1, 64),
	G("status_callback_base", CK_URLBASE, status_callback_base, 1, 2048),
	G("secret", CK_SECRET, secret, 0, 0),
	G("timeout_ms", CK_LONG, timeout_ms, 10, 600000),
	G("connect_timeout_ms", CK_LONG, connect_timeout_ms, 10, 600000),
	G("rate_per_s", CK_DBL, rate_per_s, 0, 1e6),
	G("burst", CK_DBL, burst, 0, 1e6),
	G("max_in_flight", CK_LONG, max_in_flight, 1, 100000),
	G("daily_budget", CK_LONG, daily_budget, 0, 1e9),
	G("recipient_daily_budget", CK_LONG, recipient_daily_budget, 0, 1e9),
	/* x-dm user-context auth (docs/gateways.md, include/xauth.h) */
	G("auth", CK_STR, auth, 1, 16),
	G("token_url", CK_URL, token_url, 1, 2048),
	G("client_id", CK_STR, client_id, 1, 256),
	G("client_secret", CK_SECRET, client_secret, 0, 0),
	G("refresh_token", CK_SECRET, refresh_token, 0, 0),
	G("refresh_margin_s", CK_LONG, refresh_margin_s, 10, 86400),
};
#undef G

struct cparse {
	const char *path;
	FILE *errout;
	int nerr;
	int line;
	struct config *cfg;
	struct gw_config *gw;       /* the [gateway NAME] being read, or NULL */
	char section[64];
	unsigned char seen_gw_kind[CONFIG_GATEWAYS_MAX];
	unsigned char seen_gw_channel[CONFIG_GATEWAYS_MAX];
	unsigned char bad_gw[CONFIG_GATEWAYS_MAX];  /* a key of it was already reported */
};

static void config_error(struct cparse *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
config_error(struct cparse *p, const char *key, const char *fmt, ...)
{
	va_list ap;

	p->nerr++;
	if (p->errout == NULL)
		return;
	if (p->line > 0)
		fprintf(p->errout, "%s:%d: ", p->path, p->line);
	else
		fprintf(p->errout, "%s: ", p->path);
	if (key != NULL)
		fprintf(p->errout, "%s: ", key);
	va_start(ap, fmt);
	vfprintf(p->errout, fmt, ap);
	va_end(ap);
	fputc('\n', p->errout);
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Reads the first line of path as a secret. Returns a new string or NULL. */
static char *
config_read_secret_file(struct cparse *p, const char *key, const char *path)
{
	FILE *f;
	char buf[1024];
	char *s = NULL;

	if ((f = fopen(path, "r")) == NULL) {
		config_error(p, key, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fgets(buf, sizeof(buf), f) == NULL) {
		config_error(p, key, "%s is empty", path);
		goto out;
	}
	s = strdup(trim(buf));
	if (s == NULL)
		config_error(p, key, "out of memory");
	else if (*s == '\0') {
		config_error(p, key, "%s is empty", path);
		free(s);
		s = NULL;
	}
out:
	explicit_bzero(buf, sizeof(buf));
	fclose(f);
	return s;
}

/*
 * "<key>_credential = NAME": the first line of $CREDENTIALS_DIRECTORY/NAME, the
 * folder where systemd puts what a unit's LoadCredential= names (readable by the
 * service alone, never on disk in the clear under /etc). NAME is one path
 * component. Returns a new string, or NULL with the error reported.
 */
static char *
config_read_credential(struct cparse *p, const char *key, const char *name)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];
	int n;

	if (*name == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		config_error(p, key, "'%s' is not a credential name (one file name, no '/')",
		    name);
		return NULL;
	}
	if (dir == NULL || *dir != '/') {
		config_error(p, key, "credential %s: CREDENTIALS_DIRECTORY is not set (the "
		    "unit needs LoadCredential=%s:PATH)", name, name);
		return NULL;
	}
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		config_error(p, key, "credential path too long");
		return NULL;
	}
	return config_read_secret_file(p, key, path);
}

static int
config_parse_number(const char *v, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	return (errno != 0 || end == v || *end != '\0' || !isfinite(*out)) ? -1 : 0;
}

static void
config_set(struct cparse *p, const struct ckey *k, void *base, const char *fullkey,
    const char *suffix, const char *v)
{
	char **sp = (char **)((char *)base + k->off);
	char why[160];
	double d;
	int n;

	switch (k->kind) {
	case CK_URL:
	case CK_URLBASE:
		if (uri_check_http(v, k->kind == CK_URLBASE ? URI_BASE : 0, why,
		    sizeof(why)) < 0) {
			config_error(p, fullkey, "not an http(s) URI: %s", why);
			return;
		}
		/* FALLTHROUGH */
	case CK_STR:
		if (strlen(v) < (size_t)k->min || strlen(v) > (size_t)k->max) {
			config_error(p, fullkey, "length must be %.0f..%.0f", k->min, k->max);
			return;
		}
		free(*sp);
		if ((*sp = strdup(v)) == NULL)
			config_error(p, fullkey, "out of memory");
		return;
	case CK_SECRET:
		if (suffix == NULL) {
			config_error(p, fullkey, "secrets are not written in the config: use "
			    "%s_env = VARIABLE, %s_file = PATH or %s_credential = NAME", k->key,
			    k->key, k->key);
			return;
		}
		if (*sp != NULL) {
			explicit_bzero(*sp, strlen(*sp));
			free(*sp);
			*sp = NULL;
		}
		if (strcmp(suffix, "_env") == 0) {
			const char *e = getenv(v);
			if (e == NULL || *e == '\0')
				config_error(p, fullkey, "environment variable %s is not set", v);
			else if ((*sp = strdup(e)) == NULL)
				config_error(p, fullkey, "out of memory");
		} else if (strcmp(suffix, "_credential") == 0) {
			*sp = config_read_credential(p, fullkey, v);
		} else {
			*sp = config_read_secret_file(p, fullkey, v);
		}
		return;
	case CK_LONG:
	case CK_INT:
	case CK_DBL:
		if (config_parse_number(v, &d) < 0) {
			config_error(p, fullkey, "'%s' is not a number", v);
			return;
		}
		if (d < k->min || d > k->max) {
			config_error(p, fullkey, "%s is out of range %g..%g", v, k->min, k->max);
			return;
		}
		if (k->kind != CK_DBL && d != floor(d)) {
			config_error(p, fullkey, "'%s' is not a whole number", v);
			return;
		}
		if (k->kind == CK_LONG)
			*(long *)((char *)base + k->off) = (long)d;
		else if (k->kind == CK_INT)
			*(int *)((char *)base + k->off) = (int)d;
		else
			*(double *)((char *)base + k->off) = d;
		return;
	case CK_LEVEL:
		if ((n = log_level_from_name(v)) < 0)
			config_error(p, fullkey, "'%s' is not one of debug, info, warn, error", v);
		else
			*(int *)((char *)base + k->off) = n;
		return;
	case CK_GWKIND:
		if ((n = gw_kind_from_name(v)) < 0)
			config_error(p, fullkey, "'%s' is not one of twilio, x-dm, webhook", v);
		else {
			*(enum gw_kind *)((char *)base + k->off) = (enum gw_kind)n;
			p->seen_gw_kind[p->gw - p->cfg->gateways] = 1;
		}
		return;
	case CK_CHANNEL:
		if ((n = channel_from_name(v)) < 0)
			config_error(p, fullkey, "'%s' is not one of sms, dm", v);
		else {
			*(enum channel *)((char *)base + k->off) = (enum channel)n;
			p->seen_gw_channel[p->gw - p->cfg->gateways] = 1;
		}
		return;
	}
}

/* Finds key in table, also as "<secret key>_env" / "_file" / "_credential". */
static const struct ckey *
config_find(const struct ckey *tab, size_t n, const char *key, const char **suffix)
{
	size_t i, kl;

	*suffix = NULL;
	for (i = 0; i < n; i++) {
		if (strcmp(tab[i].key, key) == 0)
			return &tab[i];
		kl = strlen(tab[i].key);
		if (tab[i].kind == CK_SECRET && strncmp(tab[i].key, key, kl) == 0 &&
		    (strcmp(key + kl, "_env") == 0 || strcmp(key + kl, "_file") == 0 ||
		    strcmp(key + kl, "_credential") == 0)) {
			*suffix = key + kl;
			return &tab[i];
		}
	}
	return NULL;
}

static void
config_section(struct cparse *p, char *hdr)
{
	char *name, *end = strchr(hdr, ']');
	struct gw_config *g;
	size_t i;

	p->gw = NULL;
	p->section[0] = '\0';
	if (end == NULL || trim(end + 1)[0] != '\0') {
		config_error(p, NULL, "malformed section header");
		return;
	}
	*end = '\0';
	hdr = trim(hdr + 1);
	if (strncmp(hdr, "gateway", 7) != 0 || !isspace((unsigned char)hdr[7])) {
		if (strcmp(hdr, "notifier") && strcmp(hdr, "redis") && strcmp(hdr, "ingest") &&
		    strcmp(hdr, "deliver") && strcmp(hdr, "rules") && strcmp(hdr, "http") &&
		    strcmp(hdr, "report") && strcmp(hdr, "compliance") &&
		    strcmp(hdr, "inbound") && strcmp(hdr, "guards") &&
		    strcmp(hdr, "signup") && strcmp(hdr, "privacy") &&
		    strcmp(hdr, "attribution") && strcmp(hdr, "cluster")) {
			config_error(p, NULL, "unknown section [%s]", hdr);
			snprintf(p->section, sizeof(p->section), "?");
			return;
		}
		snprintf(p->section, sizeof(p->section), "%s", hdr);
		return;
	}
	name = trim(hdr + 7);
	for (i = 0; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
			break;
	if (i == 0 || name[i] != '\0' || i > 32) {
		config_error(p, NULL, "gateway name '%s' must be 1..32 of [A-Za-z0-9_-]", name);
		snprintf(p->section, sizeof(p->section), "?");
		return;
	}
	for (i = 0; i < p->cfg->ngateways; i++)
		if (strcmp(p->cfg->gateways[i].name, name) == 0) {
			config_error(p, NULL, "gateway '%s' is defined twice", name);
			snprintf(p->section, sizeof(p->section), "?");
			return;
		}
	if (p->cfg->ngateways == CONFIG_GATEWAYS_MAX) {
		config_error(p, NULL, "more than %d gateways", CONFIG_GATEWAYS_MAX);
		snprintf(p->section, sizeof(p->section), "?");
		return;
	}
	g = &p->cfg->gateways[p->cfg->ngateways];
	memset(g, 0, sizeof(*g));
	if ((g->name = strdup(name)) == NULL) {
		config_error(p, NULL, "out of memory");
		return;
	}
	g->timeout_ms = CONFIG_GW_TIMEOUT_DEFAULT_MS;
	g->connect_timeout_ms = 2000;
	g->max_in_flight = 64;
	p->cfg->ngateways++;
	p->gw = g;
	snprintf(p->section, sizeof(p->section), "gateway.%s", name);
}

/* "HH:MM" (00:00..24:00) into minutes; -1 when malformed. */
static int
config_hhmm(const char *s, const char **end)
{
	int h, m;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	*end = s + 5;
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	return h * 60 + m;
}

/*
 * [compliance]: cap_scope = all | campaign; window.<PLACE>[.<day>] = HH:MM-HH:MM;
 * cap.<PLACE> = N/Hh. Rows are added to the built-in ones (quiet_rules_default) and
 * only ever tighten them: one that would loosen a statutory row is refused.
 */
static void
config_compliance(struct cparse *p, const char *full, const char *key, const char *val)
{
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	char place[QUIET_PLACE_MAX], why[200], *end;
	const char *rest, *dot, *e;
	int wday = QUIET_ANY_DAY, start, stop, rc;
	long n, h;
	size_t len, i;

	if (strcmp(key, "cap_scope") == 0) {
		if (strcmp(val, "all") == 0)
			p->cfg->quiet.cap_per_campaign = 0;
		else if (strcmp(val, "campaign") == 0)
			p->cfg->quiet.cap_per_campaign = 1;
		else
			config_error(p, full, "'%s' is not one of all, campaign", val);
		return;
	}
	if (strncmp(key, "window.", 7) == 0)
		rest = key + 7;
	else if (strncmp(key, "cap.", 4) == 0)
		rest = key + 4;
	else {
		config_error(p, full, "unknown key");
		return;
	}
	dot = strchr(rest, '.');
	len = dot != NULL ? (size_t)(dot - rest) : strlen(rest);
	if (len == 0 || len >= sizeof(place)) {
		config_error(p, full, "no place: window.US-XX or cap.US-XX");
		return;
	}
	memcpy(place, rest, len);
	place[len] = '\0';
	for (i = 0; i < len; i++)
		place[i] = (char)toupper((unsigned char)place[i]);
	if (dot != NULL) {
		for (i = 0; i < 7 && strcmp(dot + 1, days[i]) != 0; i++)
			;
		if (i == 7 || key[0] == 'c') {
			config_error(p, full, "'%s' is not a weekday (sun, mon, ... sat; windows "
			    "only)", dot + 1);
			return;
		}
		wday = (int)i;
	}
	if (key[0] == 'w') {
		if ((start = config_hhmm(val, &e)) < 0 || *e != '-' ||
		    (stop = config_hhmm(e + 1, &e)) < 0 || *e != '\0') {
			config_error(p, full, "'%s' is not HH:MM-HH:MM", val);
			return;
		}
		/* 24:00 as a start is midnight; 00:00 as an end, the end of the day. */
		rc = quiet_rules_add_window(&p->cfg->quiet, place, wday, start % 1440,
		    stop == 0 ? 1440 : stop, 0, why, sizeof(why));
	} else {
		errno = 0;
		n = strtol(val, &end, 10);
		if (errno != 0 || end == val || *end != '/') {
			config_error(p, full, "'%s' is not N/Hh (e.g. 3/24h)", val);
			return;
		}
		e = end + 1;
		h = strtol(e, &end, 10);
		if (errno != 0 || end == e || strcmp(end, "h") != 0 || n > 1000 || h > 168) {
			config_error(p, full, "'%s' is not N/Hh (e.g. 3/24h)", val);
			return;
		}
		rc = quiet_rules_add_cap(&p->cfg->quiet, place, (int)n, h * 3600, 0, why,
		    sizeof(why));
	}
	if (rc < 0)
		config_error(p, full, "%s", why);
}

static void
config_line(struct cparse *p, char *line)
{
	char *eq, *key, *val, full[160];
	const struct ckey *k;
	const char *suffix;
	int nerr;

	line = trim(line);
	if (*line == '\0' || *line == '#' || *line == ';')
		return;
	if (*line == '[') {
		config_section(p, line);
		return;
	}
	if ((eq = strchr(line, '=')) == NULL) {
		config_error(p, NULL, "expected 'key = value'");
		return;
	}
	*eq = '\0';
	key = trim(line);
	/* A '#' after whitespace starts a comment; values never need one there. */
	for (val = eq + 1; *val != '\0'; val++)
		if (*val == '#' && val > eq + 1 && isspace((unsigned char)val[-1])) {
			*val = '\0';
			break;
		}
	val = trim(eq + 1);
	if (p->section[0] == '\0') {
		config_error(p, key, "key outside of any section");
		return;
	}
	if (strcmp(p->section, "?") == 0)
		return; /* already reported at the header */
	snprintf(full, sizeof(full), "%s.%s", p->section, key);
	if (strcmp(p->section, "compliance") == 0) {
		config_compliance(p, full, key, val);
		return;
	}
	if (p->gw != NULL) {
		k = config_find(gateway_keys, sizeof(gateway_keys) / sizeof(gateway_keys[0]),
		    key, &suffix);
		nerr = p->nerr;
		if (k == NULL)
			config_error(p, full, "unknown key");
		else
			config_set(p, k, p->gw, full, suffix, val);
		if (p->nerr != nerr)
			p->bad_gw[p->gw - p->cfg->gateways] = 1;
		return;
	}
	k = config_find(config_keys, sizeof(config_keys) / sizeof(config_keys[0]), full,
	    &suffix);
	if (k == NULL)
		config_error(p, full, "unknown key");
	else
		config_set(p, k, p->cfg, full, suffix, val);
}

static int
config_defaults(struct config *c)
{
	char host[64];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "local");
	host[sizeof(host) - 1] = '\0';
	c->log_level = LOG_INFO;
	c->shutdown_grace_ms = 4000;
	if (config_redis_defaults(c) < 0)
		return -1;
	c->cluster_lease_ms = 10000;
	c->cluster_lease_margin_ms = 1000;
	c->cluster_settle_ms = -1;
	c->ingest_batch = 64;
	c->block_ms = 1000;
	c->plan_chunk = 500;
	c->plan_stall_ms = 30000;
	c->job_size = 50;
	c->max_tries = 5;
	c->deliver_batch = 16;
	c->retry_base_ms = 200;
	c->retry_max_ms = 30000;
	c->max_in_flight = 256;
	c->breaker_failures = 5;
	c->claim_idle_ms = 60000;
	c->breaker_open_ms = 5000;
	c->resolve_after_s = 30;
	c->inbound_finish_after_s = 60;
	c->resolve_tries = 4;
	c->overbook = 1.5;
	c->sms_segment_price = -1;
	c->http_port = -1;
	c->http_timeout_ms = 10000;
	c->signup_max_requests = 3;
	c->signup_confirm_ttl_s = 86400;
	c->proof_retention_days = 1825;      /* 5 years: the TCPA's limitation period */
	c->session_ttl_s = 8 * 3600;
	c->click_window_s = 5 * 86400;
	c->delivery_window_s = 86400;
	quiet_rules_default(&c->quiet);
	if ((c->consumer = malloc(80)) == NULL)
		return -1;
	snprintf(c->consumer, 80, "notifier-%s", host);
	return 0;
}

static void
config_report(void *p, const char *key, const char *msg)
{
	config_error(p, key, "%s", msg);
}

/* Cross-key checks once the whole file is read. */
static void
config_check(struct cparse *p)
{
	struct config *c = p->cfg;
	size_t i;
	char key[160];
	long gw_timeout_max = 0;
	struct err gerr;

	p->line = 0;
	for (i = 0; i < c->ngateways; i++) {
		struct gw_config *g = &c->gateways[i];
		int nerr0 = p->nerr;

		snprintf(key, sizeof(key), "gateway.%s.kind", g->name);
		if (!p->seen_gw_kind[i])
			config_error(p, key, "missing (twilio, x-dm or webhook)");
		snprintf(key, sizeof(key), "gateway.%s.channel", g->name);
		if (!p->seen_gw_channel[i])
			config_error(p, key, "missing (sms or dm)");
		snprintf(key, sizeof(key), "gateway.%s.auth", g->name);
		if (g->auth != NULL && (g->kind != GW_XDM || (strcmp(g->auth, "static") != 0 &&
		    strcmp(g->auth, "oauth2") != 0)))
			config_error(p, key, "static or oauth2, for an x-dm gateway only");
		if (g->kind == GW_XDM && g->auth != NULL && strcmp(g->auth, "oauth2") == 0) {
			snprintf(key, sizeof(key), "gateway.%s.client_id", g->name);
			if (g->client_id == NULL)
				config_error(p, key, "missing (auth = oauth2)");
			snprintf(key, sizeof(key), "gateway.%s.refresh_token", g->name);
			if (g->refresh_token == NULL)
				config_error(p, key, "missing (auth = oauth2): refresh_token_env or "
				    "refresh_token_file");
		}
		/* The gateway's own checks, the ones gw_new makes at start-up: what passes
		 * here starts. Skipped when one of its keys was reported already. */
		err_clear(&gerr);
		if (!p->bad_gw[i] && p->nerr == nerr0 && gw_config_check(g, &gerr) < 0)
			config_error(p, NULL, "%s", gerr.msg);
		if ((g->timeout_ms > 0 ? g->timeout_ms : CONFIG_GW_TIMEOUT_DEFAULT_MS) >
		    gw_timeout_max)
			gw_timeout_max = g->timeout_ms > 0 ? g->timeout_ms :
			    CONFIG_GW_TIMEOUT_DEFAULT_MS;
	}
	config_redis_check(c, config_report, p);
	config_cluster_check(c, config_report, p);
	config_signup_check(c, config_report, p);
	config_cross_check(c, gw_timeout_max, config_report, p);
	config_link_check(c, config_report, p);
}

struct config *
config_load(const char *path, FILE *errout)
{
	struct cparse p;
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.errout = errout;
	if ((p.cfg = calloc(1, sizeof(*p.cfg))) == NULL || config_defaults(p.cfg) < 0) {
		config_error(&p, NULL, "out of memory");
		goto err;
	}
	if ((f = fopen(path, "r")) == NULL) {
		config_error(&p, NULL, "cannot open: %s", strerror(errno));
		goto err;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		p.line++;
		if (n > CONFIG_LINE_MAX) {
			config_error(&p, NULL, "line longer than %d bytes", CONFIG_LINE_MAX);
			continue;
		}
		if (memchr(line, '\0', (size_t)n) != NULL) {
			config_error(&p, NULL, "NUL byte in line");
			continue;
		}
		config_line(&p, line);
	}
	if (ferror(f))
		config_error(&p, NULL, "read error: %s", strerror(errno));
	config_check(&p);
	if (p.nerr > 0)
		goto err;
	free(line);
	fclose(f);
	return p.cfg;
err:
	free(line);
	if (f != NULL)
		fclose(f);
	config_free(p.cfg);
	return NULL;
}

static void
free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->ngateways; i++) {
		struct gw_config *g = &c->gateways[i];

		free(g->name);
		free(g->base_url);
		free(g->url);
		free(g->account_sid);
		free(g->from);
		free(g->messaging_service_sid);
		free(g->status_callback_base);
		free_secret(g->secret);
		free(g->auth);
		free(g->token_url);
		free(g->client_id);
		free_secret(g->client_secret);
		free_secret(g->refresh_token);
	}
	free(c->consumer);
	free(c->cluster_ownership);
	free(c->cluster_shards);
	free(c->redis_host);
	free(c->redis_username);
	free(c->redis_sentinels);
	free(c->redis_cluster);
	free(c->redis_master_name);
	free_secret(c->redis_password);
	free(c->rules_dir);
	free(c->optout_words);
	free(c->optout_fillers);
	free(c->signup_keywords);
	free(c->signup_program);
	free(c->signup_terms_url);
	free(c->signup_timezone);
	free(c->http_listen);
	free(c->http_port_file);
	free_secret(c->admin_token);
	free(c->public_url);
	free(c->link_base);
	free_secret(c->click_secret);
	free_secret(c->inbound_secret);
	free(c);
}
