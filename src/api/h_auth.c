/* Handlers for login, the caller's identity, health and metrics. */
#include "api_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/jsonval.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"

void vtp__h_healthz(vtp_req *r)
{
	int db = vtp_store_ping(r->api->cfg.store);
	bool data = access(r->api->cfg.data_dir, W_OK) == 0;
	int st = r->api->cfg.storage ? vtp_storage_ping(r->api->cfg.storage) : 0;
	bool ok = db == 0 && data && st == 0;

	vtp__reply_json(r, ok ? 200 : 503,
			json_pack("{ss ss ss}", "status", ok ? "ok" : "unavailable",
				  "database", db == 0 ? "ok" : vtp_strerror(db),
				  "storage", !data ? "data folder not writable"
					     : st ? "media storage does not answer" : "ok"));
}

void vtp__h_metrics(vtp_req *r)
{
	int64_t active = -1;
	vtp_buf b;

	vtp_buf_init(&b, 64u << 20);
	if (vtp_store_recording_count_active(r->api->cfg.store, &active) != 0)
		active = -1;
	vtp__metrics_render(&b, active, vtp_recordings_audit_lost(r->api->cfg.recordings));
	if (r->api->cfg.ingest)
		vtp_ingest_metrics(r->api->cfg.ingest, &b);
	vtp_webhooks_metrics(r->api->cfg.webhooks, &b); /* nothing when NULL */
	vtp_events_metrics(r->api->cfg.events, &b);
	vtp_buf_appendf(&b,
			"# HELP vtp_http_head_timeouts_total Connections cut off for sending a request head too slowly (VTP_HTTP_HEADER_TIMEOUT).\n"
			"# TYPE vtp_http_head_timeouts_total counter\n"
			"vtp_http_head_timeouts_total %llu\n",
			(unsigned long long)vtp__headwatch_timeouts(r->api->headwatch));
	vtp__reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
	vtp_buf_free(&b);
}

static const vtp_json_param login_params[] = {
	{"email", VTP_JV_STRING, true, 1, 320, NULL, false},
	{"password", VTP_JV_STRING, true, 1, 1024, NULL, false},
};

static void lowercase(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Login throttling keys. Failures are counted per client address (any
 * account, api->ip_throttle), per account and address (api->throttle), and
 * per account (api->account_throttle). The per-account count never refuses
 * an address that has not failed on that account itself: guesses from one
 * address, or many, must not lock the owner out from another address. */
typedef struct login_keys {
	char ip[80];
	char pair[420];  /* account at address */
	char account[340];
} login_keys;

static void throttle_keys(vtp_req *r, login_keys *k)
{
	char email[324]; /* validated: at most 320 */

	snprintf(email, sizeof(email), "%s", vtp_json_str(r->json, "email"));
	lowercase(email);
	snprintf(k->ip, sizeof(k->ip), "ip:%s", r->ip);
	snprintf(k->account, sizeof(k->account), "email:%s", email);
	snprintf(k->pair, sizeof(k->pair), "email:%s ip:%s", email, r->ip);
}

/* The slow half of a login, on a worker thread (vtp__defer): look the user
 * up, verify the password (argon2id), issue the token. */
static void login_verify(vtp_req *r)
{
	char expires[VTP_TIME_BUFLEN];
	const char *password = vtp_json_str(r->json, "password");
	int64_t now = vtp_now_ms();
	int ttl = r->api->cfg.token_ttl_seconds;
	char *token = NULL;
	bool ok = false;
	login_keys k;
	vtp_user u;
	int rc;

	throttle_keys(r, &k);
	memset(&u, 0, sizeof(u));
	rc = vtp_store_user_by_email(r->api->cfg.store, vtp_json_str(r->json, "email"), &u);
	if (rc && rc != VTP_ENOTFOUND) { /* not the caller's failure */
		vtp_throttle_refund(r->api->throttle, k.pair);
		vtp_throttle_refund(r->api->ip_throttle, k.ip);
		vtp__reply_error(r, rc == VTP_EUNAVAIL ? 503 : 500, NULL, NULL,
				 "could not check the credentials");
		return;
	}
	if (rc == 0 && u.password_hash)
		ok = vtp_password_verify(u.password_hash, password);
	else
		vtp_password_burn(password); /* same cost for unknown users */
	if (!ok) {
		VTP_INFO("failed login from %s", r->ip);
		vtp_throttle_attempt_failed(r->api->throttle, k.pair, now);
		vtp_throttle_attempt_failed(r->api->ip_throttle, k.ip, now);
		vtp_throttle_failure(r->api->account_throttle, k.account, now);
		vtp__reply_error(r, 401, "invalid_credentials", NULL, "invalid email or password");
		goto out;
	}
	/* A correct login is no failure anywhere. It clears its own address's
	 * failures on the account, but not the address's (a good account must
	 * not buy an address fresh guesses at other accounts) nor the
	 * account's (others may still be guessing from elsewhere). */
	vtp_throttle_success(r->api->throttle, k.pair);
	vtp_throttle_refund(r->api->ip_throttle, k.ip);
	rc = vtp_jwt_sign(r->api->cfg.jwt_key, r->api->cfg.jwt_key_len, u.id,
			  now / 1000, ttl, &token);
	if (rc) {
		vtp__reply_error(r, 500, NULL, NULL, "could not issue a token");
		goto out;
	}
	vtp_time_format((now / 1000 + ttl) * 1000, expires);
	vtp__reply_json(r, 200, json_pack("{ss ss so}", "token", token, "expiresAt", expires,
					  "user", vtp_user_json(&u)));
out:
	vtp_free(token);
	vtp_user_clear(&u);
}

static void too_many(vtp_req *r, int64_t wait_ms)
{
	long long s = (long long)((wait_ms + 999) / 1000);

	snprintf(r->retry_after, sizeof(r->retry_after), "%lld", s);
	vtp__reply_error(r, 429, "too_many_requests", NULL,
			 "too many failed logins; try again in %lld s", s);
}

void vtp__h_login(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	int64_t now = vtp_now_ms(), wait_ms = 0;
	login_keys k;

	if (vtp_json_validate(r->json, login_params, 2, &fail)) {
		vtp__reply_fail(r, &fail);
		vtp_fail_clear(&fail);
		return;
	}
	throttle_keys(r, &k);
	/* Each attempt is reserved before the password is checked (and counts
	 * as a failure only if it was one): a burst of parallel guesses cannot
	 * all pass the check while the first ones are still being verified. */
	if (vtp_throttle_attempt(r->api->ip_throttle, k.ip, now, &wait_ms)) {
		too_many(r, wait_ms);
		return;
	}
	if (vtp_throttle_attempt(r->api->throttle, k.pair, now, &wait_ms)) {
		vtp_throttle_refund(r->api->ip_throttle, k.ip);
		too_many(r, wait_ms);
		return;
	}
	/* An account under attack: each address that already failed on it waits
	 * with it; an address that has not gets its attempt. */
	if (vtp_throttle_check(r->api->account_throttle, k.account, now, &wait_ms) &&
	    vtp_throttle_failures(r->api->throttle, k.pair, now) > 0) {
		vtp_throttle_refund(r->api->throttle, k.pair);
		vtp_throttle_refund(r->api->ip_throttle, k.ip);
		too_many(r, wait_ms);
		return;
	}
	if (!vtp__defer(r, login_verify)) { /* busy: the attempt did not happen */
		vtp_throttle_refund(r->api->throttle, k.pair);
		vtp_throttle_refund(r->api->ip_throttle, k.ip);
	}
}

void vtp__h_me(vtp_req *r)
{
	vtp__reply_json(r, 200, vtp_user_json(&r->user));
}
