/* PostgreSQL backend of the store's DB layer (vtp__postgres_ops), on libpq.
 * Every session runs in UTC with ISO dates, so times read back in a form
 * vtp_time_parse() accepts. Statements arrive with `?` placeholders; each is
 * rewritten to $1..$n once, prepared once per connection (PQprepare) and
 * cached by SQL text; parameters travel as text with server-inferred types.
 * A connection found broken is reset (PQreset) on its next use and a
 * statement that failed because the connection dropped outside a
 * transaction is retried once, so the server recovers when the database
 * comes back. SQLSTATE 23505 maps to VTP_ECONFLICT, bad input (22xxx, 23xxx)
 * to VTP_EINVAL, connection loss to VTP_EUNAVAIL, the rest to VTP_EDB.
 * Also here: the change feed's connection (LISTEN, application_name
 * vtp-recorder-listen), which store.c's watcher thread waits on. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/db_int.h"

typedef struct pg_stmt {
	char name[24];
	int nparams;
} pg_stmt;

typedef struct pg_conn {
	PGconn *pg;
	vtp__stmt_cache cache;
	unsigned next_stmt;
} pg_conn;

static const char session_setup[] = "SET TIME ZONE 'UTC';"
				    "SET datestyle = 'ISO';";

/* Copies a libpq message into out as one line (newlines become spaces). */
static void one_line(char *out, size_t outlen, const char *prefix,
		     const char *msg)
{
	size_t n;

	snprintf(out, outlen, "%s%s", prefix, msg ? msg : "unknown error");
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

static void notice_to_log(void *arg, const char *message)
{
	char line[512];

	one_line(line, sizeof(line), "postgres: ", message);
	VTP_DEBUG("%s", line);
}

static int setup_session(PGconn *pg)
{
	PGresult *res = PQexec(pg, session_setup);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok ? 0 : VTP_EUNAVAIL;
}

static int connect_as(const char *url, const char *app, void **out, char *err, size_t errlen)
{
	/* Ours first: values the URL sets itself override these. TCP
	 * keepalives (first probe after 5 s idle, then every 2 s, 3 lost:
	 * about 11 s) so that a connection that only waits, as the change
	 * feed's does, learns that the server is gone rather than waiting on
	 * a dead peer forever. */
	const char *keys[] = {"connect_timeout", "application_name", "keepalives",
			      "keepalives_idle", "keepalives_interval", "keepalives_count",
			      "dbname", NULL};
	const char *vals[] = {"10", app, "1", "5", "2", "3", url, NULL};
	PQconninfoOption *opts;
	char *perr = NULL;
	pg_conn *c;
	PGconn *pg;

	/* Parse first: libpq's parse errors may quote URL parts (password
	 * included), so they are never passed on. */
	opts = PQconninfoParse(url, &perr);
	if (!opts) {
		PQfreemem(perr);
		snprintf(err, errlen, "postgres: invalid database URL");
		return VTP_EINVAL;
	}
	PQconninfoFree(opts);

	pg = PQconnectdbParams(keys, vals, 1);
	if (!pg) {
		snprintf(err, errlen, "postgres: out of memory");
		return VTP_EUNAVAIL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		one_line(err, errlen, "postgres: ", PQerrorMessage(pg));
		PQfinish(pg);
		return VTP_EUNAVAIL;
	}
	PQsetNoticeProcessor(pg, notice_to_log, NULL);
	if (setup_session(pg) != 0) {
		one_line(err, errlen, "postgres: session setup: ",
			 PQerrorMessage(pg));
		PQfinish(pg);
		return VTP_EUNAVAIL;
	}
	c = vtp_calloc(1, sizeof(*c));
	c->pg = pg;
	vtp__stmt_cache_init(&c->cache);
	*out = c;
	return 0;
}

static int pg_connect(const char *url, void **out, char *err, size_t errlen)
{
	return connect_as(url, "vtp-recorder", out, err, errlen);
}

static void pg_disconnect(void *conn)
{
	pg_conn *c = conn;

	if (!c)
		return;
	vtp__stmt_cache_free(&c->cache, vtp_free);
	PQfinish(c->pg);
	vtp_free(c);
}

/* Re-establishes a broken connection; prepared statements died with the old
 * session, so the cache is emptied. */
static int reconnect(pg_conn *c)
{
	char msg[512];

	vtp__stmt_cache_clear(&c->cache, vtp_free);
	PQreset(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		one_line(msg, sizeof(msg), "postgres: reconnect failed: ",
			 PQerrorMessage(c->pg));
		VTP_ERROR("%s", msg);
		return VTP_EUNAVAIL;
	}
	if (setup_session(c->pg) != 0) {
		one_line(msg, sizeof(msg), "postgres: session setup failed: ",
			 PQerrorMessage(c->pg));
		VTP_ERROR("%s", msg);
		return VTP_EUNAVAIL;
	}
	VTP_INFO("postgres: reconnected");
	return 0;
}

static int map_error(pg_conn *c, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				: NULL;
	const char *primary =
		res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[512];

	if (!state)
		state = "";
	if (!primary)
		primary = PQerrorMessage(c->pg);
	if (strcmp(state, "23505") == 0)
		return VTP_ECONFLICT;
	if ((state[0] == '2' && state[1] == '2') ||
	    (state[0] == '2' && state[1] == '3')) {
		/* data exception / integrity violation: the caller's input */
		one_line(msg, sizeof(msg), "postgres: rejected: ", primary);
		VTP_DEBUG("%s (%s, %s)", msg, what, state);
		return VTP_EINVAL;
	}
	one_line(msg, sizeof(msg), "postgres: ", primary);
	VTP_ERROR("%s (%s%s%s)", msg, what, *state ? ", " : "", state);
	if (PQstatus(c->pg) != CONNECTION_OK ||
	    (state[0] == '0' && state[1] == '8') ||
	    strncmp(state, "57P", 3) == 0)
		return VTP_EUNAVAIL;
	return VTP_EDB;
}

/* Rewrites `?` placeholders to $1..$n, leaving quoted literals and
 * identifiers alone. Returns the new text (vtp_free) and the count. */
static char *rewrite_placeholders(const char *sql, int *count)
{
	vtp_buf b;
	char quote = 0;
	int n = 0;

	vtp_buf_init(&b, (size_t)1 << 24);
	for (const char *p = sql; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0; /* '' re-enters on the next char */
			vtp_buf_append(&b, p, 1);
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
			vtp_buf_append(&b, p, 1);
		} else if (*p == '?') {
			vtp_buf_appendf(&b, "$%d", ++n);
		} else {
			vtp_buf_append(&b, p, 1);
		}
	}
	*count = n;
	return vtp_buf_steal(&b, NULL);
}

/* Prepares sql on this connection. On failure returns NULL and the failed
 * result in *failed (for the caller to map and PQclear). */
static pg_stmt *prepare(pg_conn *c, const char *sql, PGresult **failed)
{
	pg_stmt *st = vtp_calloc(1, sizeof(*st));
	char *text = rewrite_placeholders(sql, &st->nparams);
	PGresult *res;

	snprintf(st->name, sizeof(st->name), "vtp_%u", c->next_stmt++);
	res = PQprepare(c->pg, st->name, text, st->nparams, NULL);
	vtp_free(text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*failed = res;
		vtp_free(st);
		return NULL;
	}
	PQclear(res);
	vtp__stmt_cache_put(&c->cache, sql, st);
	return st;
}

/* True when a statement failed only because the connection dropped (e.g.
 * the server restarted while this connection sat in the pool) and nothing
 * can be half-done: no transaction was open. Then reconnecting and running
 * it once more is safe. */
static bool can_retry(pg_conn *c, bool idle, bool retried,
		      const PGresult *res)
{
	const char *primary;
	char msg[512];

	if (!idle || retried || PQstatus(c->pg) == CONNECTION_OK)
		return false;
	primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	one_line(msg, sizeof(msg), "postgres: connection lost, reconnecting: ",
		 primary ? primary : PQerrorMessage(c->pg));
	VTP_WARN("%s", msg);
	return true;
}

static int pg_query(void *conn, const char *sql, const vtp__param *params,
		    int nparams, vtp__row_fn fn, void *ctx, int64_t *changes)
{
	char nums[VTP__DB_MAX_PARAMS][40];
	const char *values[VTP__DB_MAX_PARAMS];
	vtp__row row = {.ops = &vtp__postgres_ops};
	pg_conn *c = conn;
	PGresult *res = NULL;
	bool retried = false, idle;
	pg_stmt *st;
	int ret = 0;

	if (nparams > VTP__DB_MAX_PARAMS) {
		VTP_ERROR("postgres: too many parameters (%d)", nparams);
		return VTP_EINTERNAL;
	}
	for (int i = 0; i < nparams; i++) {
		switch (params[i].type) {
		case VTP__PARAM_INT64:
			snprintf(nums[i], sizeof(nums[i]), "%" PRId64,
				 params[i].i);
			values[i] = nums[i];
			break;
		case VTP__PARAM_DOUBLE:
			snprintf(nums[i], sizeof(nums[i]), "%.17g",
				 params[i].d);
			values[i] = nums[i];
			break;
		case VTP__PARAM_TEXT:
			values[i] = params[i].s;
			break;
		default:
			values[i] = NULL;
			break;
		}
	}

again:
	if (PQstatus(c->pg) != CONNECTION_OK && (ret = reconnect(c)) != 0)
		return ret;
	idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
	st = vtp__stmt_cache_get(&c->cache, sql);
	if (!st && !(st = prepare(c, sql, &res)))
		goto failed;
	if (st->nparams != nparams) {
		VTP_ERROR("postgres: statement expects %d parameters, got %d",
			  st->nparams, nparams);
		return VTP_EINTERNAL;
	}
	res = PQexecPrepared(c->pg, st->name, nparams, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK)
		goto failed;
	row.handle = res;
	for (int i = 0, n = PQntuples(res); i < n && fn; i++) {
		row.index = i;
		if ((ret = fn(ctx, &row)) != 0)
			goto out;
	}
	if (changes) {
		const char *t = PQcmdTuples(res);

		*changes = *t ? strtoll(t, NULL, 10) : 0;
	}
	goto out;

failed:
	if (can_retry(c, idle, retried, res)) {
		retried = true;
		PQclear(res);
		res = NULL;
		goto again;
	}
	ret = map_error(c, res, "query");
out:
	PQclear(res);
	return ret;
}

static int pg_exec(void *conn, const char *sql)
{
	pg_conn *c = conn;
	PGresult *res;
	int ret = 0;

	if (PQstatus(c->pg) != CONNECTION_OK && (ret = reconnect(c)) != 0)
		return ret;
	res = PQexec(c->pg, sql);
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		break;
	default:
		ret = map_error(c, res, "exec");
		break;
	}
	PQclear(res);
	return ret;
}

static bool pg_col_is_null(const vtp__row *row, int col)
{
	return PQgetisnull(row->handle, row->index, col);
}

static const char *pg_col_text(const vtp__row *row, int col)
{
	if (PQgetisnull(row->handle, row->index, col))
		return NULL;
	return PQgetvalue(row->handle, row->index, col);
}

static int64_t pg_col_int64(const vtp__row *row, int col)
{
	const char *t = pg_col_text(row, col);

	return t ? strtoll(t, NULL, 10) : 0;
}

static double pg_col_dbl(const vtp__row *row, int col)
{
	const char *t = pg_col_text(row, col);

	return t ? strtod(t, NULL) : 0.0;
}

/* ---- the change feed ----------------------------------------------------- */

/* channel is one of ours (an identifier, never user input). */
static int pg_listen_open(const char *url, const char *channel, void **out, char *err,
			  size_t errlen)
{
	char sql[96];
	PGresult *res = NULL;
	pg_conn *c = NULL;
	int rc;

	*out = NULL;
	rc = connect_as(url, "vtp-recorder-listen", (void **)&c, err, errlen);
	if (rc)
		goto out;
	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	res = PQexec(c->pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		one_line(err, errlen, "postgres: LISTEN: ", PQerrorMessage(c->pg));
		pg_disconnect(c);
		rc = VTP_EUNAVAIL;
		goto out;
	}
	*out = c;
out:
	PQclear(res);
	return rc;
}

static int pg_listen_wait(void *conn, int timeout_ms, bool (*own)(void *ctx, int pid), void *ctx)
{
	pg_conn *c = conn;
	struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
	PGnotify *n;
	int count = 0;

	if (pfd.fd < 0 || PQstatus(c->pg) != CONNECTION_OK) {
		count = VTP_EUNAVAIL;
		goto out;
	}
	/* nothing (a timeout, or EINTR: the caller loops) */
	if (poll(&pfd, 1, timeout_ms) <= 0 || pfd.revents == 0)
		goto out;
	/* readable with nothing to read, or an error: the server went away */
	if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) {
		count = VTP_EUNAVAIL;
		goto out;
	}
	while ((n = PQnotifies(c->pg)) != NULL) {
		count += !own(ctx, n->be_pid);
		PQfreemem(n);
	}
out:
	return count;
}

static int pg_backend_pid(void *conn)
{
	pg_conn *c = conn;

	return c ? PQbackendPID(c->pg) : 0;
}

const vtp__db_ops vtp__postgres_ops = {
	.name = "postgres",
	.connect = pg_connect,
	.disconnect = pg_disconnect,
	.query = pg_query,
	.exec = pg_exec,
	.is_null = pg_col_is_null,
	.text = pg_col_text,
	.int64 = pg_col_int64,
	.dbl = pg_col_dbl,
	/* A transaction-scoped advisory lock (key: "vtp-migr") serialises
	 * migrators across processes and is released by COMMIT/ROLLBACK. */
	.migrate_begin = "BEGIN; SELECT pg_advisory_xact_lock(7310520933613512306)",
	.claim_lock = " FOR UPDATE SKIP LOCKED",
	.migrations = vtp__postgres_migrations,
	.now_expr = "now()",
	.listen_open = pg_listen_open,
	.listen_wait = pg_listen_wait,
	.listen_close = pg_disconnect,
	.backend_pid = pg_backend_pid,
};
