/* Handlers for login, the caller's identity, health and metrics. */
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/jsonval.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "jobs/jobs.h"

/* Writes 4 KiB to an unnamed file in dir: a full disk fails it at write()
 * time (tmpfs, ext4 and xfs reserve blocks on write). 0 or an errno. */
static int disk_probe(const char *dir)
{
	static const char zeros[4096];
	char path[4200];
	bool named = false;
	int fd, e = 0;

	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		snprintf(path, sizeof(path), "%s/.healthz-%ld", dir, (long)getpid());
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		named = fd >= 0;
	}
	if (fd < 0)
		return errno;
	for (size_t done = 0; done < sizeof(zeros) && !e;) {
		ssize_t k = write(fd, zeros + done, sizeof(zeros) - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			e = k < 0 ? errno : ENOSPC;
		else
			done += (size_t)k;
	}
	if (named)
		unlink(path);
	close(fd);
	return e;
}

static const char *disk_reason(int e, char *buf, size_t len)
{
	if (e == ENOSPC || e == EDQUOT)
		snprintf(buf, len, "full (%s)", strerror(e));
	else
		snprintf(buf, len, "not writable (%s)", strerror(e));
	return buf;
}

/* The answer, kept for a second: every check writes (the database a row,
 * each disk 4 KiB), and the endpoint needs no login. */
static struct {
	pthread_mutex_t mu;
	int64_t at_ms;
	int status;
	char *body;
} health = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL};

static json_t *health_check(vtp_req *r, int *status)
{
	vtp_api_config *cfg = &r->api->cfg;
	const char *root = cfg->storage ? vtp_storage_local_root(cfg->storage) : NULL;
	int db = vtp_store_ping(cfg->store);
	int db_write = db ? db : vtp_store_last_write(cfg->store);
	int probe = db ? db : vtp_store_write_probe(cfg->store);
	int data = disk_probe(cfg->data_dir);
	int rec = root && strcmp(root, cfg->data_dir) != 0 ? disk_probe(root) : 0;
	int st = cfg->storage ? vtp_storage_ping(cfg->storage) : 0;
	char dbuf[160], dsk[160], rbuf[160], reason[480];
	const char *database = "ok", *disk = "ok", *storage = "ok";

	if (db)
		database = vtp_strerror(db);
	else if (db_write || probe) {
		snprintf(dbuf, sizeof(dbuf), "cannot be written (%s)",
			 vtp_strerror(db_write ? db_write : probe));
		database = dbuf;
	}
	if (data)
		disk = disk_reason(data, dsk, sizeof(dsk));
	if (rec)
		storage = disk_reason(rec, rbuf, sizeof(rbuf));
	else if (st)
		storage = "media storage does not answer";
	/* closed segments that cannot reach storage: a loss in the making */
	vtp_spool_state sp;
	char spbuf[420];
	const char *spool = "ok";

	vtp_ingest_spool_state(cfg->ingest, &sp);
	if (sp.stuck || (sp.failing && sp.pending > 0)) {
		snprintf(spbuf, sizeof(spbuf), "%d track segment(s) wait for storage, the oldest "
			 "for %lld s: %s", sp.pending, (long long)(sp.oldest_ms / 1000),
			 sp.last_error[0] ? sp.last_error : "not committed yet");
		spool = spbuf;
	}
	reason[0] = '\0';
	if (strcmp(database, "ok") != 0)
		snprintf(reason, sizeof(reason), "database %s", database);
	else if (data)
		snprintf(reason, sizeof(reason), "data disk %s", disk);
	else if (rec)
		snprintf(reason, sizeof(reason), "recordings disk %s", storage);
	else if (st)
		snprintf(reason, sizeof(reason), "%s", storage);
	else if (sp.stuck)
		snprintf(reason, sizeof(reason), "segment spool: %s", spool);
	*status = reason[0] ? 503 : 200;
	{
		json_t *o = json_object();

		json_object_set_new(o, "status", json_string(reason[0] ? "unavailable" : "ok"));
		json_object_set_new(o, "database", json_string(database));
		json_object_set_new(o, "dataDisk", json_string(disk));
		json_object_set_new(o, "storage", json_string(storage));
		json_object_set_new(o, "spool", json_string(spool));
		if (reason[0])
			json_object_set_new(o, "reason", json_string(reason));
		return o;
	}
}

void vtp__h_healthz(vtp_req *r)
{
	int64_t now = vtp_now_ms();
	json_t *o = NULL;
	int status = 200;

	pthread_mutex_lock(&health.mu);
	if (health.body && now - health.at_ms < 1000 && now >= health.at_ms) {
		o = json_loads(health.body, 0, NULL);
		status = health.status;
	}
	if (!o) {
		o = health_check(r, &status);
		free(health.body);
		health.body = json_dumps(o, JSON_COMPACT);
		health.status = status;
		health.at_ms = now;
	}
	pthread_mutex_unlock(&health.mu);
	if (vtp_jobs_draining()) {
		/* after the cache, on the copy: a balancer sees it at its next
		 * probe, and the dependencies are still reported */
		json_object_set_new(o, "status", json_string("draining"));
		json_object_set_new(o, "reason", json_string("the node is stopping: it takes no new "
							     "jobs and finishes or hands back those it "
							     "runs"));
		status = 503;
	}
	vtp__reply_json(r, status, o);
}

/* Whether the request carries "Authorization: Bearer <VTP_METRICS_TOKEN>"
 * (compared in constant time). */
static bool metrics_token_ok(vtp_req *r, const char *token)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	size_t tlen = strlen(token), hlen;
	unsigned char diff = 0;

	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	hlen = strlen(h);
	for (size_t i = 0; i < tlen; i++)
		diff |= (unsigned char)(token[i] ^ (i < hlen ? h[i] : 0));
	return diff == 0 && hlen == tlen;
}

/* The series that name a recording or a track (the per-track ingest
 * statistics) are left out of the public answer: ids of running classes
 * are not for whoever can reach the port. */
static void drop_id_series(vtp_buf *in, vtp_buf *out)
{
	const char *p = in->data, *end = in->data + in->len;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl + 1 : end;

		if (p[0] == '#' || !memmem(p, (size_t)(le - p), "recording=\"", 11))
			vtp_buf_append(out, p, (size_t)(le - p));
		p = le;
	}
}

void vtp__h_metrics(vtp_req *r)
{
	const char *token = r->api->cfg.metrics_token;
	int64_t active = -1;
	vtp_buf b;

	if (token && *token && !metrics_token_ok(r, token)) {
		vtp__reply_error(r, 401, "unauthorized", NULL,
				 "/metrics needs Authorization: Bearer <VTP_METRICS_TOKEN>");
		return;
	}

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
	if (!token || !*token) {
		vtp_buf pub;

		vtp_buf_init(&pub, 64u << 20);
		drop_id_series(&b, &pub);
		vtp_buf_free(&b);
		b = pub;
	}
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
