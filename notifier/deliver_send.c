/*
 * deliver_send.c: the send queue, claims, leases, requests and their answers (stage:
 * send).
 *
 * Queued recipients go out earliest expiry first, through a gateway of their channel
 * that can take them now (gwpool). send.lua checks the law again (the windows of the
 * recipient's place, its caps, counted there) and marks them "sending" in Redis
 * before any request leaves; in the same loop turn that hands a request to libcurl the sender
 * checks its lease on the job (monotonic clock), and when too little is left renews
 * it through send.lua, which also checks the push again. Must never resend a request
 * that may have reached an SMS or DM provider (sendpolicy.c), never send a push whose
 * job another notifier took over, and never let a request outlive the lease.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "deliver_int.h"
#include "durable.h"
#include "fault.h"
#include "gw.h"
#include "gwpool.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "owner.h"
#include "pause.h"
#include "rconn.h"
#include "scripts.h"
#include "sendpolicy.h"
#include "strcopy.h"
#include "subscriber.h"
#include "substore.h"

#define DELIVER_ASIDE_MAX 64         /* recipients set aside per pump (gateway busy) */
#define DELIVER_LEASE_BATCH 64       /* jobs per lease.lua call */
#define DELIVER_TIMEOUT_DEFAULT_MS 10000   /* as gw.c's default */
#define DELIVER_SHARD_LEASE_MIN_MS 200     /* less of the shard's lease: not sent */
#define DELIVER_WINDOW_MARGIN_S 2     /* a push leaves only with this much window left */

/* One send.lua call: claims, or lease renewals, of n recipients. */
struct claim {
	struct deliver *dl;
	int renew;
	int64_t issued_ms;         /* monotonic, when the call was made */
	size_t n;
	struct rcpt *r[];
};

static void send_request(struct deliver *dl, struct rcpt *r, long timeout_ms);
static int send_call(struct deliver *dl, struct rcpt **rs, size_t n, int renew);
static size_t send_front_shard(struct rcpt **rs, size_t n);

void
dl_release(struct rcpt *r)
{
	if (r->reserved) {
		gwpool_cancelled(r->job->dl->pool, r->gw_index);
		r->reserved = 0;
	}
}

static void
retry_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt *r = arg;
	struct deliver *dl = r->job->dl;

	(void)fd;
	(void)what;
	if (dl->stopping)
		return; /* state "retry" in Redis: the redelivered job sends it */
	if (r->job->lost) {
		dl_rcpt_done(r);   /* its new owner settles it */
		return;
	}
	r->state = RS_ADMITTING;
	if (dl_admit(dl, r->job, r) < 0)
		dl_retry_or_expire(r, -1);
}

/* Backoff with full jitter (sendpolicy_backoff_ms), or the gateway's Retry-After. A
 * retry that could only happen after the deal expires is recorded expired instead. */
void
dl_retry_or_expire(struct rcpt *r, long retry_after_s)
{
	struct deliver *dl = r->job->dl;
	long long delay;
	struct timeval tv;

	delay = retry_after_s >= 0 ? retry_after_s * 1000LL : sendpolicy_backoff_ms(
	    r->attempts > 0 ? r->attempts : 1, dl->cfg->retry_base_ms, dl->cfg->retry_max_ms,
	    (uint64_t)random());
	if (clock_now_ms() + delay >= r->job->exp * 1000LL) {
		dl_record(r, "expired");
		return;
	}
	if (delay >= DELIVER_PARK_MS) {
		/* Waited out in Redis ("retry"), not in memory: dl_parked once recorded. */
		r->state = RS_WAITING;
		r->park_until = clock_mono_ms() + delay;
		dl_record(r, "retry");
		return;
	}
	if (r->timer != NULL)
		event_free(r->timer);
	if ((r->timer = evtimer_new(dl->base, retry_on_timer, r)) == NULL) {
		snprintf(r->detail, sizeof(r->detail), "out of memory for a retry timer");
		dl_record(r, "failed");
		return;
	}
	r->state = RS_WAITING;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	dl_record(r, "retry");
}

static void
send_on_answer(void *arg, const struct gw_result *res, int cancelled)
{
	struct rcpt *r = arg;
	struct deliver *dl = r->job->dl;
	const struct gw_config *gc = gw_config_of(dl->gws[r->gw_index]);
	enum send_answer a;

	dl->in_flight--;
	a = sendpolicy_classify(res, gc->kind == GW_WEBHOOK);
	if (r->reserved) {
		/* The breaker learns from answers that prove the gateway did not take a
		 * request; an ambiguous one (a slow gateway's timeout) is not such proof:
		 * the gateway took it, as far as anyone can tell, and it is resolved. */
		if (cancelled)
			gwpool_cancelled(dl->pool, r->gw_index);
		else
			gwpool_finished(dl->pool, r->gw_index, a == SEND_UNKNOWN ? GW_SENT :
			    res->outcome, res->retry_after_s, clock_mono_ms());
		r->reserved = 0;
	}
	if (cancelled) {
		/* Shutting down with the request in flight: its state stays "sending",
		 * and a redelivery records it as unknown rather than risk a duplicate. */
		r->state = RS_DONE;
		return;
	}
	if (dl->metrics != NULL)
		metrics_observe(dl->metrics, METRIC_SEND_LATENCY, METRICS_L(gc->name),
		    (double)(clock_real_ms() - r->sent_ms) / 1000.0);
	if (dl->metrics != NULL && res->outcome == GW_RATE_LIMITED)
		metrics_inc(dl->metrics, METRIC_GATEWAY_RATE_LIMITED, METRICS_L(gc->name), 1);
	r->http_status = res->http_status;
	str_copy(r->provider_id, sizeof(r->provider_id), res->provider_id);
	str_copy(r->detail, sizeof(r->detail), res->detail);
	switch (a) {
	case SEND_SENT:
		dl_record(r, "sent");
		break;
	case SEND_OPTED_OUT:
		r->revoke = 1;
		dl_record(r, "opted_out");
		break;
	case SEND_FAILED:
		dl_record(r, "failed");
		break;
	case SEND_UNKNOWN:
		/* The request may have reached the provider: never sent again. */
		dl_record(r, "unknown");
		break;
	case SEND_RATE_LIMITED:
	case SEND_RETRY:
		log_info("event=push_retry push=%s gw=%s http=%d attempts=%d reason=%s "
		    "retry_after_s=%ld detail=\"%s\"", r->push_id, gc->name, res->http_status,
		    r->attempts, sendpolicy_answer_name(a), res->retry_after_s, res->detail);
		/* A 429 pauses that gateway in the pool: try again at once, on another
		 * gateway of the channel or when the pause ends. */
		dl_retry_or_expire(r, a == SEND_RATE_LIMITED ? 0 : -1);
		break;
	}
	dl_kick(dl);
}

/* Hands a claimed recipient (state "sending") to its gateway with deadline
 * timeout_ms: the lease was checked in this same loop turn. */
static void
send_request(struct deliver *dl, struct rcpt *r, long timeout_ms)
{
	struct gw_message msg;
	struct err err;
	char *text;

	err_clear(&err);
	if ((text = pushline_render(r->pl.text, r->token ? "" : r->code)) == NULL) {
		dl_release(r);
		dl_retry_or_expire(r, -1);   /* never sent: its own retry admits it */
		return;
	}
	memset(&msg, 0, sizeof(msg));
	msg.push_id = r->push_id;
	msg.to = r->pl.to;
	msg.text = text;
	msg.expires_at = r->job->exp;
	msg.now = clock_now();
	msg.timeout_cap_ms = timeout_ms;
	r->attempts++;
	r->sent_ms = clock_real_ms();
	r->started = msg.now;
	free(r->sent_text);
	r->sent_text = text;
	r->state = RS_SENDING;
	if (gw_send(dl->gws[r->gw_index], &msg, send_on_answer, r, &err) < 0) {
		dl_release(r);
		if (err.kind == ERR_TEMP) {   /* nothing sent (x-dm without a token) */
			dl_retry_or_expire(r, -1);
			return;
		}
		snprintf(r->detail, sizeof(r->detail), "%s", err.msg);
		dl_record(r, strcmp(err.code, "expired") == 0 ? "expired" : "failed");
		return;
	}
	dl->in_flight++;
}

/*
 * Sends r now if its leases allow (returns 1); 0: the job's lease needs a renewal;
 * -1: the shard's lease (owner.h) has too little left for any request, nothing is
 * sent (the caller retries it as its own; once the shard is lost its job is, and
 * the new owner settles it). A request never outlasts either lease.
 */
static int
send_under_lease(struct deliver *dl, struct rcpt *r)
{
	const struct gw_config *gc = gw_config_of(dl->gws[r->gw_index]);
	long t = gc->timeout_ms > 0 ? gc->timeout_ms : DELIVER_TIMEOUT_DEFAULT_MS, req;
	int64_t now = clock_mono_ms(), shard = owner_until(dl->owner, r->job->shard);

	if (shard - now < DELIVER_SHARD_LEASE_MIN_MS) {
		log_warnx("event=shard_lease_short push=%s shard=%u action=not_sent",
		    r->push_id, r->job->shard);
		return -1;
	}
	if (sendpolicy_lease_check(r->job->lease_until, now, t, r->renewed,
	    &req) != SEND_LEASE_OK)
		return 0;
	if (shard - now < req)
		req = (long)(shard - now);
	send_request(dl, r, req);
	return 1;
}

/* A verdict that ends the push here (cancelled, expired, no_consent, quiet_hours,
 * daily_cap, campaign_cap, legal_cap, ...: recorded by send.lua; skip and lost: not
 * ours to record). */
static void
claim_end(struct deliver *dl, struct rcpt *r, const struct redisReply *v)
{
	dl_release(r);
	if (v->type == REDIS_REPLY_STRING && strcmp(v->str, "lost") == 0) {
		log_warnx("event=lease_lost push=%s job=%s action=leave_to_new_owner",
		    r->push_id, r->job->entry);
		r->job->lost = 1;
		r->job->unrecorded = 1;   /* not ours to ack any more */
	} else if (v->type == REDIS_REPLY_STRING) {
		log_info("event=push outcome=%s push=%s deal=%s sub=%s ch=%s", v->str,
		    r->push_id, r->job->deal, r->pl.sub, channel_name(r->pl.ch));
		if (dl->metrics != NULL)
			metrics_inc(dl->metrics, METRIC_SKIPS, METRICS_L(v->str), 1);
	}
	dl_rcpt_done(r);
}

/*
 * Makes text (a deal update rendered it again; send.lua hands it over) r's text: its
 * recipient line is rebuilt around it, so the request, the resend spec and the
 * segment count all use the text actually sent. Returns 0 (the old line is freed), or
 * -1 on OOM (r unchanged).
 */
static int
send_retext(struct rcpt *r, const char *text)
{
	struct pushline pl = r->pl;
	char *line;

	if (*text == '\0' || strcmp(text, r->pl.text) == 0)
		return 0;
	pl.text = (char *)text;   /* only read by pushline_format */
	if ((line = pushline_format(&pl)) == NULL)
		return -1;
	if (pushline_parse(line, &pl) < 0) {
		free(line);
		return 0;   /* cannot happen: the fields parsed before; keep the planned */
	}
	free(r->line);
	r->line = line;
	r->pl = pl;
	return 0;
}

/*
 * send.lua's answer, once WAIT has said whether the claims reached a replica
 * (durable; always 1 without redis.wait_replicas). A claim that is not durable may
 * revert in a failover and be claimed again there: its request does not leave; it
 * is retried as our own, as after a failed call, and claims again.
 */
static void
claim_on_reply(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	struct claim *c = arg;
	struct deliver *dl = c->dl;
	struct rcpt **renew = NULL;
	size_t i, nr = 0, held = 0, g, m;
	int sent;

	(void)rc;
	dl->claiming -= c->n;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != c->n) {
		log_warnx("event=claim_failed recipients=%zu renew=%d err=\"%s\"", c->n,
		    c->renew, reply && reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "no reply");
		/* The call may or may not have run; nothing was sent: each is retried as
		 * our own (admit lets our own "sending" mark through). */
		for (i = 0; i < c->n; i++) {
			dl_release(c->r[i]);
			dl_retry_or_expire(c->r[i], -1);
		}
		free(c);
		return;
	}
	for (i = 0; i < c->n; i++) {
		struct rcpt *r = c->r[i];
		const struct redisReply *v = reply->element[i];
		char *end;
		long long exp;

		if (v->type == REDIS_REPLY_STRING && strcmp(v->str, "readmit") == 0) {
			/* Its admit is gone (a failover): never claimed, never sent; its
			 * own retry admits it again. */
			log_warnx("event=claim_readmit push=%s job=%s reason=\"no state\"",
			    r->push_id, r->job->entry);
			dl_release(r);
			dl_retry_or_expire(r, -1);
			continue;
		}
		if (v->type != REDIS_REPLY_STRING || strncmp(v->str, "send\t", 5) != 0) {
			claim_end(dl, r, v);
			continue;
		}
		if (!durable) {
			held++;
			dl_release(r);
			dl_retry_or_expire(r, -1);
			continue;
		}
		exp = strtoll(v->str + 5, &end, 10);
		if ((*end == '\0' || *end == '\t') && end != v->str + 5)
			r->job->exp = exp;     /* a deal update moved it */
		if (*end == '\t' && send_retext(r, end + 1) < 0) {
			/* Never the old text once an update replaced it: its own retry
			 * claims it again. */
			log_errorx("event=retext_failed push=%s err=\"out of memory\"",
			    r->push_id);
			dl_release(r);
			dl_retry_or_expire(r, -1);
			continue;
		}
		if (c->renew) {
			/* send.lua reset the job's idle time: a fresh lease from the moment
			 * the call was made. */
			int64_t until = sendpolicy_lease_until(c->issued_ms,
			    dl->cfg->claim_idle_ms);

			if (until > r->job->lease_until)
				r->job->lease_until = until;
			r->renewed = 1;
		}
		if (r->job->lost && !c->renew) {
			/* Claimed after the job was lost: renewing tells whether it is
			 * still ours (it is not) and hands it back. */
			r->renewed = 0;
		} else if ((sent = send_under_lease(dl, r)) > 0) {
			continue;
		} else if (sent < 0) {
			dl_release(r);
			dl_retry_or_expire(r, -1);
			continue;
		}
		if (renew == NULL && (renew = calloc(c->n, sizeof(*renew))) == NULL) {
			dl_release(r);
			dl_retry_or_expire(r, -1);
			continue;
		}
		r->state = RS_RENEWING;
		renew[nr++] = r;
	}
	if (held > 0) {
		log_warnx("event=claim_not_durable recipients=%zu renew=%d replicas_wanted=%ld "
		    "action=retry_without_sending", held, c->renew, dl->durable.replicas);
		if (dl->metrics != NULL)
			metrics_inc(dl->metrics, METRIC_SKIPS, METRICS_L("claim_not_durable"),
			    (double)held);
	}
	for (g = 0; g < nr; g += m) {
		m = send_front_shard(renew + g, nr - g);
		if (send_call(dl, renew + g, m, 1) == 0)
			continue;
		for (i = g; i < g + m; i++) {
			dl_release(renew[i]);
			dl_retry_or_expire(renew[i], -1);
		}
	}
	free(renew);
	free(c);
	dl_kick(dl);
}

/*
 * send.lua's not_before for r at now into *nb (0: open now and for
 * DELIVER_WINDOW_MARGIN_S more; the window's end is a deadline, as the deal's expiry
 * is), and for a push that must wait its delayed member ("deal\tentry\texp\tcamp\t
 * line", new, into *member; NULL otherwise). -1 on OOM.
 */
static int
send_window(struct deliver *dl, struct rcpt *r, const struct subscriber *s, int64_t now,
    int64_t *nb, char **member)
{
	const struct job *j = r->job;
	/* Known from the reservation in this loop pass; a renewal comes later. */
	int64_t at = r->reserved_at == now ? r->window : dl_window_open_at(dl, r, s, now,
	    DELIVER_WINDOW_MARGIN_S);
	char *line;
	size_t len;

	*member = NULL;
	*nb = at == now ? 0 : at;
	if (at <= now)
		return 0;
	if ((line = pushline_format(&r->pl)) == NULL)
		return -1;
	len = strlen(j->deal) + strlen(j->deal_entry) + strlen(j->camp) + strlen(line) + 32;
	if ((*member = malloc(len)) != NULL)
		snprintf(*member, len, "%s\t%s\t%lld\t%s\t%s", j->deal, j->deal_entry,
		    (long long)j->exp, j->camp, line);
	free(line);
	return *member != NULL ? 0 : -1;
}

/* Adds the keys of one recipient for send.lua, ORDER SEND_RKEYS: its own first 8,
 * its caps' keys, then retext:<deal>. px: the prefixes of the recipient's shard. */
static void
send_keys(struct script_args *sa, const struct rcpt *r, const struct dl_caps *caps,
    const struct keys_prefixes *px)
{
	const struct job *j = r->job;
	char ck[KEYS_SHARD_MAX];          /* consent:<ch> of the subscriber's shard */
	char stash[KEYS_MAX];             /* the pool, or the shard's stash of it */

	(void)keys_codestash(px->shard, j->deal, j->pool, stash, sizeof(stash));
	script_key(sa, px->p[KEYS_PUSH], j->deal);
	script_key(sa, px->p[KEYS_DEAL], j->deal);
	(void)keys_consent(px->shard, r->pl.ch, ck, sizeof(ck));
	script_key(sa, ck, NULL);
	script_key(sa, px->p[KEYS_CODE], j->deal);
	script_key(sa, px->p[KEYS_REPORT_DEAL], j->deal);
	script_key(sa, px->p[KEYS_REPORT_RULE], r->pl.rule);
	script_key(sa, j->camp[0] != '\0' ? px->p[KEYS_REPORT_CAMPAIGN] : "", j->camp);
	script_key(sa, stash, NULL);
	script_key(sa, caps->daykey, NULL);
	script_key(sa, caps->campkey, NULL);
	script_key(sa, caps->lawkey, NULL);
	script_key(sa, px->p[KEYS_RETEXT], j->deal);
}

/*
 * Moves the recipients of rs[0]'s shard (keys.h) and job stream to the front of
 * rs[0..n), each part keeping its order, and returns how many they are: one send.lua
 * call holds one shard's recipients, and names one job stream (a job holds its
 * stream's shard's recipients, so the two agree unless a job was written by hand).
 * Cannot fail.
 */
static size_t
send_front_shard(struct rcpt **rs, size_t n)
{
	uint32_t shard = keys_shard_of(rs[0]->pl.sub), stream = rs[0]->job->shard;
	size_t i, j, m = 1;

	for (i = 1; i < n; i++) {
		struct rcpt *r = rs[i];

		if (keys_shard_of(r->pl.sub) != shard || r->job->shard != stream)
			continue;
		for (j = i; j > m; j--)
			rs[j] = rs[j - 1];
		rs[m++] = r;
	}
	return m;
}

/*
 * One send.lua call for rs[0..n) of one shard: claims (renew = 0) or lease renewals
 * (renew = 1).
 * The recipients keep their gateway reservations. Returns 0 (claim_on_reply runs), or
 * -1 when the call could not be made (nothing changed).
 */
/* Fault point deliver.admit_lost (tests): the first recipient's state is deleted
 * right before its claim, on the same connection, as a failover that lost its admit
 * would leave it: send.lua must answer "readmit", and the push is admitted again. */
static void
send_fault_admit_lost(struct deliver *dl, const struct rcpt *r)
{
	char key[KEYS_MAX], field[MODEL_ID_MAX + 16];

	if (keys_per(keys_shard_of(r->pl.sub), KEYS_PUSH, r->job->deal, key,
	    sizeof(key)) <= 0)
		return;
	snprintf(field, sizeof(field), "%s:%s", r->pl.sub, channel_name(r->pl.ch));
	(void)rconn_cmd(dl->cmd, NULL, NULL, 0, "HDEL %s %s", key, field);
}

static int
send_call(struct deliver *dl, struct rcpt **rs, size_t n, int renew)
{
	struct claim *c = malloc(sizeof(*c) + n * sizeof(c->r[0]));
	struct script_args *sa = &dl->sargs;
	struct dl_caps caps;
	int64_t t = clock_now(), nb;
	char *member, epoch[KEYS_SHARD_MAX], k_log[KEYS_SHARD_MAX], k_stats[KEYS_SHARD_MAX];
	char k_delayed[KEYS_SHARD_MAX];
	struct keys_prefixes px;
	uint32_t shard;
	size_t i;

	if (c == NULL)
		return -1;
	/* rs are of one shard (send_front_shard): its consent epoch and push keys. */
	shard = keys_shard_of(rs[0]->pl.sub);
	(void)keys_shard_key(shard, KEYS_CONSENT_EPOCH, epoch, sizeof(epoch));
	(void)keys_shard_key(shard, KEYS_PUSHES_LOG, k_log, sizeof(k_log));
	(void)keys_shard_key(shard, KEYS_STATS, k_stats, sizeof(k_stats));
	(void)keys_shard_key(shard, KEYS_DELAYED, k_delayed, sizeof(k_delayed));
	(void)keys_prefixes(shard, &px);
	c->dl = dl;
	c->renew = renew;
	c->n = n;
	c->issued_ms = clock_mono_ms();
	memcpy(c->r, rs, n * sizeof(c->r[0]));
	/* ORDER SEND_KEYS */
	script_key(sa, k_log, NULL);
	script_key(sa, k_stats, NULL);
	/* the jobs' stream: a job holds its stream's shard's recipients only */
	script_key(sa, dl->rd[rs[0]->job->shard].stream, NULL);
	script_key(sa, epoch, NULL);
	script_key(sa, k_delayed, NULL);
	/* the fence: "" when every notifier serves every shard */
	script_key(sa, owner_key(dl->owner, shard), NULL);
	/* ORDER SEND_ARGS */
	script_arg_ll(sa, t);
	script_arg(sa, dl->cfg->consumer, NULL);
	script_arg(sa, DELIVER_GROUP, NULL);
	script_arg_ll(sa, (long long)n);
	script_arg(sa, owner_epoch(dl->owner, shard), NULL);
	for (i = 0; i < n; i++) {
		struct rcpt *r = rs[i];
		/* Looked up once for the window and the caps: nothing runs in between. */
		const struct subscriber *s = substore_get(dl->ss, r->pl.sub);

		/* The law again, at the last step: a window that closed while the push
		 * waited for a gateway holds it back. */
		if (send_window(dl, r, s, t, &nb, &member) < 0) {
			script_args_release(sa);
			free(c);
			return -1;
		}
		/* The caps of the moment the text leaves: its local day now. */
		dl_caps_fill(dl, r, s, t, &caps);
		send_keys(sa, r, &caps, &px);
		/* ORDER SEND_RARGS */
		script_arg(sa, r->pl.sub, NULL);
		script_arg(sa, channel_name(r->pl.ch), NULL);
		script_arg(sa, r->push_id, NULL);
		script_arg(sa, r->job->deal, NULL);
		script_arg_ll(sa, r->job->exp);
		/* A webhook takes the push id as Idempotency-Key: resending is safe. */
		script_arg(sa, gw_config_of(dl->gws[r->gw_index])->kind == GW_WEBHOOK ?
		    "1" : "0", NULL);
		script_arg(sa, renew ? "renew" : "claim", NULL);
		script_arg(sa, r->job->entry, NULL);
		script_arg(sa, r->consent_epoch, NULL);
		script_arg_ll(sa, nb);
		script_arg(sa, member != NULL ? member : "", NULL);
		free(member);
		script_arg(sa, caps.day_cap, NULL);
		script_arg(sa, caps.day_start, NULL);
		script_arg(sa, caps.camp_cap, NULL);
		script_arg(sa, caps.law_cap, NULL);
		script_arg(sa, caps.law_window, NULL);
	}
	if (!renew && fault_hit("deliver.admit_lost"))
		send_fault_admit_lost(dl, rs[0]);
	if (durable_script_call_args(dl->cmd, &dl->durable, SCRIPT_SEND, sa, claim_on_reply,
	    c) < 0) {
		free(c);
		return -1;
	}
	for (i = 0; !renew && i < n; i++)
		rs[i]->state = RS_CLAIMING;
	dl->claiming += n;
	return 0;
}

void
dl_on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dl_pump(arg);
}

/* Runs the send queue once in the next loop pass, however many answers, admits and
 * claims arrive in this one: one claim round trip for all the slots they freed. */
void
dl_kick(struct deliver *dl)
{
	struct timeval zero = { 0, 0 };

	if (!evtimer_pending(dl->pump_ev, NULL))
		evtimer_add(dl->pump_ev, &zero);
}

/*
 * Takes up to max queued recipients, earliest expiry first, that a gateway of their
 * channel can take now, reserving that gateway (gwpool_started). Recipients whose
 * gateways are all busy stay queued and the wake timer is armed for the moment one
 * frees up; a channel without any gateway fails its recipient; a recipient of a job
 * another notifier took over is left to it. Returns how many.
 */
static size_t
send_reserve(struct deliver *dl, struct rcpt **out, size_t max)
{
	struct rcpt *aside[DELIVER_ASIDE_MAX], *r;
	size_t n = 0, k = 0, i, gi;
	int64_t mono = clock_mono_ms(), wall = clock_now(), retry_at, wake = GWPOOL_NEVER;
	int rc;

	while (n < max && k < DELIVER_ASIDE_MAX && (r = dl_heap_pop(dl)) != NULL) {
		if (r->job->lost) {
			dl_rcpt_done(r);   /* "admitted" in Redis: its new owner sends it */
			continue;
		}
		/* The law first: a push whose window has closed while it waited takes no
		 * gateway slot; send.lua defers it (or ends it) in the same call. */
		r->reserved_at = wall;
		r->window = dl_window_open_at(dl, r, substore_get(dl->ss, r->pl.sub), wall,
		    DELIVER_WINDOW_MARGIN_S);
		if (r->window != wall && dl->ngws > 0) {
			r->gw_index = 0;
			r->reserved = 0;
			r->renewed = 0;
			out[n++] = r;
			continue;
		}
		rc = gwpool_pick(dl->pool, r->pl.ch, mono, wall, r->pl.to, &gi, &retry_at);
		if (rc < 0) {
			snprintf(r->detail, sizeof(r->detail), "no gateway for channel %s",
			    channel_name(r->pl.ch));
			dl_record(r, "failed");
			continue;
		}
		if (rc == 0 && retry_at != GWPOOL_NEVER && retry_at - mono >= DELIVER_PARK_MS) {
			/* Every gateway of its channel is paused for a while (a refused token,
			 * a long Retry-After): it waits in Redis, and its job does not hold a
			 * place that other channels' pushes need. */
			r->state = RS_WAITING;
			r->park_until = retry_at;
			dl_record(r, "retry");
			continue;
		}
		if (rc == 0 || gwpool_started(dl->pool, gi, mono, wall, r->pl.to) < 0) {
			aside[k++] = r;
			if (rc == 0 && retry_at < wake)
				wake = retry_at;
			continue;
		}
		r->gw_index = gi;
		r->reserved = 1;
		r->renewed = 0;
		out[n++] = r;
	}
	for (i = 0; i < k; i++)
		dl_heap_push(dl, aside[i]);   /* cannot fail: the heap held them a moment ago */
	if (wake != GWPOOL_NEVER) {
		int64_t ms = wake > mono ? wake - mono : 0;
		struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

		evtimer_add(dl->wake, &tv);
	}
	return n;
}

/*
 * Claims up to the free send slots of queued recipients with one send.lua call and
 * sends them when it answers: the "sending" mark reaches Redis before any request
 * leaves, so a crash never leaves a sent text looking unsent.
 */
void
dl_pump(struct deliver *dl)
{
	struct rcpt **rs;
	size_t slots, n, i, g, m;

	dl_read(dl);
	/* Outcomes first: on the wire (and so in Redis) every finished request is
	 * recorded before a new one is claimed, so at most max_in_flight pushes are
	 * ever "sending" and a crash leaves at most that many unknown. */
	dl_flush(-1, 0, dl);
	/* Paused: queued pushes wait in the queue, unclaimed (pause.h). */
	if (dl->stopping || dl->heap_n == 0 || !rconn_is_ready(dl->cmd) ||
	    pause_is_on(dl->pause))
		return;
	slots = (size_t)dl->cfg->max_in_flight;
	if (dl->in_flight + dl->claiming >= slots)
		return;
	slots -= dl->in_flight + dl->claiming;
	if (slots > dl->heap_n)
		slots = dl->heap_n;
	if ((rs = calloc(slots, sizeof(*rs))) == NULL)
		return;
	n = send_reserve(dl, rs, slots);
	for (g = 0; g < n; g += m) {
		m = send_front_shard(rs + g, n - g);
		if (send_call(dl, rs + g, m, 0) == 0)
			continue;
		/* Not claimed: back to the queue for the next tick. */
		for (i = g; i < g + m; i++) {
			dl_release(rs[i]);
			rs[i]->state = RS_QUEUED;
			dl_heap_push(dl, rs[i]);
		}
	}
	free(rs);
}

/* ---- leases ---- */

struct lease_call {
	struct deliver *dl;
	int64_t issued_ms;
	uint32_t shard;            /* the jobs' stream's */
	size_t n;
	char entry[DELIVER_LEASE_BATCH][64];
};

static struct job *
lease_job(struct deliver *dl, uint32_t shard, const char *entry)
{
	struct job *j;

	for (j = dl->jobs; j != NULL; j = j->next)
		if (j->shard == shard && strcmp(j->entry, entry) == 0)
			return j;
	return NULL;
}

static void
lease_on_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct lease_call *lc = arg;
	struct deliver *dl = lc->dl;
	int64_t until = sendpolicy_lease_until(lc->issued_ms, dl->cfg->claim_idle_ms);
	size_t i;

	(void)rc;
	dl->leases_out--;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != lc->n) {
		/* The leases run down; a send past them renews first. */
		log_warnx("event=lease_failed jobs=%zu err=\"%s\"", lc->n,
		    reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
		free(lc);
		return;
	}
	for (i = 0; i < lc->n; i++) {
		struct job *j = lease_job(dl, lc->shard, lc->entry[i]);
		const struct redisReply *v = reply->element[i];

		if (j == NULL || j->lost)
			continue;
		if (v->type == REDIS_REPLY_INTEGER && v->integer == 1) {
			if (until > j->lease_until)
				j->lease_until = until;
		} else if (v->type == REDIS_REPLY_INTEGER) {
			log_warnx("event=lease_lost job=%s deal=%s action=leave_to_new_owner",
			    j->entry, j->deal);
			j->lost = 1;
			j->unrecorded = 1;
		}
	}
	free(lc);
	dl_kick(dl);
}

/*
 * Every claim_idle_ms / 3: renew the lease on every job we hold (lease.lua), which
 * also keeps the job from looking dead to the other notifiers: one waiting on a retry
 * backoff is still ours. A job found pending for another consumer is lost: what of it
 * has not left is left to the new owner.
 */
/* One lease.lua call for the jobs named in lc (takes ownership of lc). */
static void
lease_call(struct deliver *dl, struct lease_call *lc)
{
	const char *args[5 + DELIVER_LEASE_BATCH];
	size_t i;
	int na = 0, nk;

	lc->dl = dl;
	lc->issued_ms = clock_mono_ms();
	/* ORDER LEASE_KEYS: the job stream, then the fence with ownership only (no
	 * key "" that a cluster would route to slot 0) */
	args[na++] = dl->rd[lc->shard].stream;
	if (dl->owner != NULL)
		args[na++] = owner_key(dl->owner, lc->shard);
	nk = na;
	args[na++] = DELIVER_GROUP;
	args[na++] = dl->cfg->consumer;
	args[na++] = owner_epoch(dl->owner, lc->shard);
	for (i = 0; i < lc->n; i++)
		args[na++] = lc->entry[i];
	if (script_call_named(dl->cmd, "lease", nk, na, args, NULL, lease_on_reply,
	    lc) < 0) {
		free(lc);
		return;
	}
	dl->leases_out++;
}

void
dl_on_lease_timer(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;
	struct lease_call *lc;
	struct job *j, *k;

	(void)fd;
	(void)what;
	if (dl->stopping || !rconn_is_ready(dl->cmd))
		return;
	/* One call per stream (lease.lua touches one): the first job not yet leased
	 * this round names the shard, the rest of the list gives its other jobs. */
	for (j = dl->jobs; j != NULL; j = j->next)
		j->leasing = 0;
	for (j = dl->jobs; j != NULL; j = j->next) {
		if (j->lost || j->leasing)
			continue;
		if ((lc = calloc(1, sizeof(*lc))) == NULL)
			return;
		lc->shard = j->shard;
		for (k = j; k != NULL; k = k->next) {
			if (k->lost || k->leasing || k->shard != lc->shard)
				continue;
			k->leasing = 1;
			snprintf(lc->entry[lc->n++], sizeof(lc->entry[0]), "%s", k->entry);
			if (lc->n == DELIVER_LEASE_BATCH) {
				lease_call(dl, lc);
				if ((lc = calloc(1, sizeof(*lc))) == NULL)
					return;
				lc->shard = j->shard;
			}
		}
		if (lc->n > 0)
			lease_call(dl, lc);
		else
			free(lc);
	}
}
