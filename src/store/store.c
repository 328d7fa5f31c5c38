/* The store's domain functions (store.h) and its connection pool. Every
 * query is written once here, in the SQL subset both backends accept, with
 * `?` placeholders; the backend behind s->ops (sqlite.c, postgres.c) runs it.
 * The pool is a stack of connection slots under one mutex: a call pops a
 * slot, connects it lazily if needed, runs its statements on it and pushes
 * it back, so the hot path is two short critical sections around cached
 * prepared statements. Also here: applying the embedded migrations, and
 * the watcher (PostgreSQL): a thread on its own LISTEN connection whose
 * notifications move the generation, so that kept answers follow writes
 * made by every node (vtp_store_watch). */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "store/db_int.h"

#define POOL_MAX 256

struct vtp_store {
	const vtp__db_ops *ops;
	char *target; /* file path or libpq URL */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pool_size;
	void **conns;    /* NULL: slot not connected yet */
	int *free_slots; /* stack of idle slots */
	int nfree;
	/* PostgreSQL: each slot's server process as of its connection and its
	 * last release (under mu), so the watcher can tell this store's own
	 * notifications, whose commits moved the generation already, from
	 * other sessions'. */
	int *pids;
	/* Bumped after every committed change outside the access log; see
	 * vtp_store_generation(). On SQLite it lives in a small file mapped
	 * shared beside the database, so that every process writing to that
	 * file (compose children, a `worker`, the CLI) moves the same number;
	 * otherwise (or when that file cannot be mapped) in local_generation. */
	_Atomic uint64_t *generation;
	_Atomic uint64_t local_generation;
	bool generation_mapped;
	/* PostgreSQL: the generation promises something only while the
	 * watcher's LISTEN connection is up (watch_up). */
	pthread_t watcher;
	bool watching;
	atomic_bool watch_up, watch_stop;
	/* The last write's outcome (0 or the error) and when it failed, for
	 * /healthz: a full disk fails every write while reads still answer. */
	_Atomic int last_write_rc;
	_Atomic int64_t last_write_fail_ms;
};

/* ---- parameters and columns ------------------------------------------- */

static vtp__param p_null(void)
{
	return (vtp__param){.type = VTP__PARAM_NULL};
}

static vtp__param p_text(const char *s)
{
	return (vtp__param){.type = s ? VTP__PARAM_TEXT : VTP__PARAM_NULL,
			    .s = s};
}

static vtp__param p_int(int64_t v)
{
	return (vtp__param){.type = VTP__PARAM_INT64, .i = v};
}

static vtp__param p_double(double v)
{
	return (vtp__param){.type = VTP__PARAM_DOUBLE, .d = v};
}

/* 0 ms is NULL; anything else crosses the DB layer as vtp_time_format text. */
static vtp__param p_time(int64_t ms, char buf[VTP_TIME_BUFLEN])
{
	if (!ms)
		return p_null();
	vtp_time_format(ms, buf);
	return p_text(buf);
}

static const char *col_text(const vtp__row *r, int col)
{
	return r->ops->text(r, col);
}

static char *col_strdup(const vtp__row *r, int col)
{
	return vtp_strdup(col_text(r, col));
}

static int64_t col_int(const vtp__row *r, int col)
{
	return r->ops->is_null(r, col) ? 0 : r->ops->int64(r, col);
}

static int64_t col_time(const vtp__row *r, int col)
{
	const char *t = col_text(r, col);
	int64_t ms;

	if (!t)
		return 0;
	if (!vtp_time_parse(t, &ms)) {
		VTP_WARN("store: unparsable time in column %d: %.40s", col, t);
		return 0;
	}
	return ms;
}

static void col_id(const vtp__row *r, int col, char out[VTP_UUID_BUFLEN])
{
	const char *t = col_text(r, col);

	snprintf(out, VTP_UUID_BUFLEN, "%s", t ? t : "");
}

/* Canonical lowercase id, or false when s is not a UUID. */
static bool norm_id(const char *s, char out[VTP_UUID_BUFLEN])
{
	return s && vtp_uuid_parse(s, out);
}

/* Grows a row array by one zeroed element and returns it. */
static void *array_push(void **arr, size_t *n, size_t *cap, size_t size)
{
	char *elem;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*arr = vtp_realloc(*arr, *cap * size);
	}
	elem = (char *)*arr + *n * size;
	memset(elem, 0, size);
	(*n)++;
	return elem;
}

static int read_count(void *ctx, const vtp__row *row)
{
	*(int64_t *)ctx = col_int(row, 0);
	return 0;
}

static int read_time(void *ctx, const vtp__row *row)
{
	*(int64_t *)ctx = col_time(row, 0);
	return 0;
}

static int read_exists(void *ctx, const vtp__row *row)
{
	*(bool *)ctx = true;
	return 0;
}

/* ---- pool --------------------------------------------------------------- */

static int acquire(vtp_store *s, int *slot)
{
	char err[256];
	int i, rc;

	pthread_mutex_lock(&s->mu);
	while (s->nfree == 0)
		pthread_cond_wait(&s->cv, &s->mu);
	i = s->free_slots[--s->nfree];
	pthread_mutex_unlock(&s->mu);

	if (!s->conns[i]) {
		rc = s->ops->connect(s->target, &s->conns[i], err, sizeof(err));
		if (rc) {
			VTP_ERROR("store: %s", err);
			pthread_mutex_lock(&s->mu);
			s->free_slots[s->nfree++] = i;
			pthread_cond_signal(&s->cv);
			pthread_mutex_unlock(&s->mu);
			return rc == VTP_EINVAL ? rc : VTP_EUNAVAIL;
		}
		/* known before its first write notifies (see own_pid) */
		if (s->ops->backend_pid) {
			int pid = s->ops->backend_pid(s->conns[i]);

			pthread_mutex_lock(&s->mu);
			s->pids[i] = pid;
			pthread_mutex_unlock(&s->mu);
		}
	}
	*slot = i;
	return 0;
}

static void release(vtp_store *s, int slot)
{
	/* read while the slot is still this thread's (a reconnect inside a
	 * query may have changed it) */
	int pid = s->ops->backend_pid ? s->ops->backend_pid(s->conns[slot]) : 0;

	pthread_mutex_lock(&s->mu);
	s->pids[slot] = pid;
	s->free_slots[s->nfree++] = slot;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Does a statement change data that readers may keep results of? Every
 * write is an INSERT, UPDATE or DELETE written in this file. The access log
 * (append-only), the job queue, the room event journal, room presence,
 * the webhook outbox and the WHIP session owners are read by no kept result. */
static bool changes_data(const char *sql)
{
	const char *table;

	if (strncasecmp(sql, "INSERT INTO ", 12) == 0)
		table = sql + 12;
	else if (strncasecmp(sql, "UPDATE ", 7) == 0)
		table = sql + 7;
	else if (strncasecmp(sql, "DELETE FROM ", 12) == 0)
		table = sql + 12;
	else
		return false;
	return strncmp(table, "recording_access_log ", 21) != 0 && strncmp(table, "jobs ", 5) != 0 &&
	       strncmp(table, "room_events ", 12) != 0 && strncmp(table, "webhook_outbox ", 15) != 0 &&
	       strncmp(table, "whip_sessions ", 14) != 0 && strncmp(table, "room_presence ", 14) != 0 &&
	       /* what capture commits and nodes' heartbeats: no response shows them */
	       strncmp(table, "recording_tracks ", 17) != 0 && strncmp(table, "nodes ", 6) != 0;
}

#define LAST_WRITE_FRESH_MS 30000 /* how long a failed write speaks for the store */

static bool is_write(const char *sql)
{
	return strncasecmp(sql, "INSERT ", 7) == 0 || strncasecmp(sql, "UPDATE ", 7) == 0 ||
	       strncasecmp(sql, "DELETE ", 7) == 0 || strncasecmp(sql, "COMMIT", 6) == 0;
}

/* Faults of the store itself (not conflicts or bad input) mark it unable
 * to write until a write goes through. */
static void note_write(vtp_store *s, int rc)
{
	if (rc != 0 && rc != VTP_EDB && rc != VTP_EUNAVAIL && rc != VTP_EIO)
		return;
	if (rc)
		atomic_store(&s->last_write_fail_ms, vtp_now_ms());
	atomic_store(&s->last_write_rc, rc);
}

/* Runs one statement. Outside an explicit transaction a write is committed
 * when this returns, so the generation moves after it: a reader that saw
 * the old number before its query can never keep a result tagged with the
 * new one. Transactions bump in commit() instead. */
static int run(vtp_store *s, int slot, const char *sql, const vtp__param *p,
	       int np, vtp__row_fn fn, void *ctx, int64_t *changes)
{
	int rc = s->ops->query(s->conns[slot], sql, p, np, fn, ctx, changes);

	if (changes_data(sql))
		atomic_fetch_add(s->generation, 1);
	if (is_write(sql))
		note_write(s, rc);
	return rc;
}

/* COMMIT of an explicit transaction; data_changed: it wrote something
 * changes_data() covers. */
static int commit(vtp_store *s, int slot, bool data_changed)
{
	int rc = s->ops->exec(s->conns[slot], "COMMIT");

	if (data_changed)
		atomic_fetch_add(s->generation, 1);
	note_write(s, rc);
	return rc;
}

/* One statement on a pooled connection. */
static int query(vtp_store *s, const char *sql, const vtp__param *p, int np,
		 vtp__row_fn fn, void *ctx, int64_t *changes)
{
	int slot, rc;

	if ((rc = acquire(s, &slot)) != 0)
		return rc;
	rc = run(s, slot, sql, p, np, fn, ctx, changes);
	release(s, slot);
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* SQLite: the generation counter in DB-generation beside the database file
 * (0600), mapped shared, so that a write by any process on this database
 * moves the number every process reads. Without it (cannot create or map
 * the file) the counter is this process's own and the failure is logged. */
static void map_shared_generation(vtp_store *s)
{
	size_t len = strlen(s->target) + sizeof("-generation");
	char *path = vtp_malloc(len);
	struct stat st;
	void *map;
	int fd;

	snprintf(path, len, "%s-generation", s->target);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fstat(fd, &st) != 0 ||
	    (st.st_size < (off_t)sizeof(uint64_t) && ftruncate(fd, sizeof(uint64_t)) != 0)) {
		VTP_WARN("store: cannot use %s (%s): writes by other processes will not "
			 "refresh kept answers", path, strerror(errno));
		goto out;
	}
	map = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		VTP_WARN("store: cannot map %s (%s): writes by other processes will not "
			 "refresh kept answers", path, strerror(errno));
		goto out;
	}
	s->generation = map;
	s->generation_mapped = true;
out:
	if (fd >= 0)
		close(fd);
	vtp_free(path);
}

int vtp_store_open(const char *url, int pool_size, vtp_store **out, char *err,
		   size_t errlen)
{
	const vtp__db_ops *ops;
	const char *target;
	vtp_store *s;
	int rc;

	*out = NULL;
	if (!url) {
		snprintf(err, errlen, "store: no database URL");
		return VTP_EINVAL;
	}
	if (strncmp(url, "sqlite://", 9) == 0) {
		ops = &vtp__sqlite_ops;
		target = url + 9;
	} else if (strncmp(url, "postgres://", 11) == 0 ||
		   strncmp(url, "postgresql://", 13) == 0) {
		ops = &vtp__postgres_ops;
		target = url;
	} else {
		snprintf(err, errlen,
			 "store: unsupported database URL (want sqlite:// or "
			 "postgres://)");
		return VTP_EINVAL;
	}
	if (pool_size < 1 || pool_size > POOL_MAX) {
		snprintf(err, errlen, "store: pool size must be 1..%d",
			 POOL_MAX);
		return VTP_EINVAL;
	}

	s = vtp_calloc(1, sizeof(*s));
	s->ops = ops;
	s->target = vtp_strdup(target);
	s->pool_size = pool_size;
	s->conns = vtp_calloc((size_t)pool_size, sizeof(*s->conns));
	s->free_slots = vtp_calloc((size_t)pool_size, sizeof(*s->free_slots));
	s->pids = vtp_calloc((size_t)pool_size, sizeof(*s->pids));
	/* Slot 0 on top of the stack: the connection opened now is reused
	 * first, the others open only under concurrency. */
	for (int i = 0; i < pool_size; i++)
		s->free_slots[i] = pool_size - 1 - i;
	s->nfree = pool_size;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->generation = &s->local_generation;

	rc = ops->connect(s->target, &s->conns[0], err, errlen);
	if (rc) {
		vtp_store_free(s);
		return rc;
	}
	if (ops == &vtp__sqlite_ops)
		map_shared_generation(s);
	*out = s;
	return 0;
}

void vtp_store_free(vtp_store *s)
{
	if (!s)
		return;
	if (s->watching) {
		atomic_store(&s->watch_stop, true);
		pthread_join(s->watcher, NULL);
	}
	for (int i = 0; i < s->pool_size; i++)
		s->ops->disconnect(s->conns[i]);
	if (s->generation_mapped)
		munmap((void *)s->generation, sizeof(*s->generation));
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	vtp_free(s->conns);
	vtp_free(s->free_slots);
	vtp_free(s->pids);
	vtp_free(s->target);
	vtp_free(s);
}

uint64_t vtp_store_generation(vtp_store *s)
{
	/* PostgreSQL may be shared by several nodes: their writes reach this
	 * counter through the watcher's notifications only, so while it is
	 * not listening nothing is promised. watch_up is read first: the
	 * watcher bumps the number before it sets watch_up again. */
	if (s->ops != &vtp__sqlite_ops && !atomic_load(&s->watch_up))
		return 0;
	return atomic_load(s->generation) + 1;
}

#define WATCH_CHANNEL "vtp_changes" /* the triggers of migration 11 notify it */
#define WATCH_WAIT_MS 250             /* how soon a stop is noticed */
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 5000

/* Sleeps ms in short steps; false when asked to stop meanwhile. */
static bool watch_sleep(vtp_store *s, int ms)
{
	while (ms > 0 && !atomic_load(&s->watch_stop)) {
		int step = ms < WATCH_WAIT_MS ? ms : WATCH_WAIT_MS;

		usleep((useconds_t)step * 1000);
		ms -= step;
	}
	return !atomic_load(&s->watch_stop);
}

/* Was the notification sent by one of this store's pooled sessions? Those
 * writes moved the generation at their commit already: counting them again
 * would drop answers kept since (a session re-established inside a query
 * is known from its release on: a notification before counts, harmless). A pid is the server
 * process of a live session, unique on that server; a session of ours that
 * died keeps its pid here until the slot is used again, and the kernel
 * hands that number to another process only after wrapping around. */
static bool own_pid(void *ctx, int pid)
{
	vtp_store *s = ctx;
	bool own = false;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->pool_size && !own; i++)
		own = pid != 0 && s->pids[i] == pid;
	pthread_mutex_unlock(&s->mu);
	return own;
}

/* Every write to users, recordings, participants or shares, by any node or
 * process, notifies WATCH_CHANNEL from its own transaction (a trigger), so
 * the notification arrives after the commit. Each one moves the generation.
 * A lost connection may have missed some: kept answers are off (watch_up
 * false) until LISTEN runs again, and everything kept before is dropped
 * (the number moves once more before watch_up comes back). */
static void *watch_main(void *arg)
{
	vtp_store *s = arg;
	int backoff = WATCH_BACKOFF_MIN_MS;
	char err[256];
	void *conn;
	int rc;

	pthread_setname_np(pthread_self(), "vtp-dbwatch");
	while (!atomic_load(&s->watch_stop)) {
		rc = s->ops->listen_open(s->target, WATCH_CHANNEL, &conn, err, sizeof(err));
		if (rc) {
			VTP_WARN("store: change feed not connected (%s); kept answers off, "
				 "retrying in %d ms", err, backoff);
			if (!watch_sleep(s, backoff))
				break;
			backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		backoff = WATCH_BACKOFF_MIN_MS;
		atomic_fetch_add(s->generation, 1);
		atomic_store(&s->watch_up, true);
		VTP_INFO("store: listening for changes by other nodes (%s)", WATCH_CHANNEL);
		while (!atomic_load(&s->watch_stop)) {
			rc = s->ops->listen_wait(conn, WATCH_WAIT_MS, own_pid, s);
			if (rc < 0)
				break;
			if (rc > 0)
				atomic_fetch_add(s->generation, 1);
		}
		atomic_store(&s->watch_up, false);
		atomic_fetch_add(s->generation, 1);
		s->ops->listen_close(conn);
		if (rc < 0) {
			VTP_WARN("store: change feed lost; kept answers off until it is back");
			if (!watch_sleep(s, WATCH_BACKOFF_MIN_MS))
				break;
		}
	}
	return NULL;
}

int vtp_store_watch(vtp_store *s)
{
	int rc = 0;

	if (s->ops->listen_open && !s->watching) {
		if (pthread_create(&s->watcher, NULL, watch_main, s) == 0)
			s->watching = true;
		else
			rc = VTP_EINTERNAL;
	}
	return rc;
}

bool vtp_store_watch_up(vtp_store *s)
{
	return s->ops->listen_open ? atomic_load(&s->watch_up) : true;
}

int vtp_store_clock(vtp_store *s, int64_t *ms)
{
	char sql[64];
	int64_t got = 0;
	int rc;

	if (!s->ops->now_expr) {
		*ms = vtp_now_ms();
		return 0;
	}
	snprintf(sql, sizeof(sql), "SELECT %s", s->ops->now_expr);
	rc = query(s, sql, NULL, 0, read_time, &got, NULL);
	if (rc == 0 && !got)
		rc = VTP_EDB;
	if (rc == 0)
		*ms = got;
	return rc;
}

const char *vtp_store_backend(const vtp_store *s)
{
	return s->ops->name;
}

/* Same text on both backends; applied_at holds vtp_time_format() text. */
static const char migrations_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" version INTEGER NOT NULL PRIMARY KEY,"
	" applied_at TEXT NOT NULL)";

int vtp_store_migrate(vtp_store *s, int *applied)
{
	char now[VTP_TIME_BUFLEN];
	bool in_tx = false;
	int slot, rc, count = 0;
	void *c;

	if (applied)
		*applied = 0;
	if ((rc = acquire(s, &slot)) != 0)
		return rc;
	c = s->conns[slot];
	/* One transaction per version, each holding the migration lock, so
	 * concurrent migrators apply every version exactly once. */
	for (int v = 1; s->ops->migrations[v - 1]; v++) {
		vtp__param p[2];
		bool done = false;

		if ((rc = s->ops->exec(c, s->ops->migrate_begin)) != 0)
			goto out;
		in_tx = true;
		if ((rc = s->ops->exec(c, migrations_table)) != 0)
			goto out;
		p[0] = p_int(v);
		rc = run(s, slot,
			 "SELECT version FROM schema_migrations WHERE version = ?",
			 p, 1, read_exists, &done, NULL);
		if (rc)
			goto out;
		if (!done) {
			if ((rc = s->ops->exec(c, s->ops->migrations[v - 1])) != 0)
				goto out;
			p[1] = p_time(vtp_now_ms(), now);
			rc = run(s, slot,
				 "INSERT INTO schema_migrations (version, "
				 "applied_at) VALUES (?, ?)",
				 p, 2, NULL, NULL, NULL);
			if (rc)
				goto out;
		}
		if ((rc = commit(s, slot, !done)) != 0)
			goto out;
		in_tx = false;
		if (!done) {
			count++;
			VTP_INFO("store: applied %s migration %d", s->ops->name,
				 v);
		}
	}
out:
	if (in_tx)
		s->ops->exec(c, "ROLLBACK");
	release(s, slot);
	if (applied)
		*applied = count;
	return rc;
}

int vtp_store_ping(vtp_store *s)
{
	int64_t one = 0;

	return query(s, "SELECT 1", NULL, 0, read_count, &one, NULL);
}

int vtp_store_write_probe(vtp_store *s)
{
	char at[VTP_TIME_BUFLEN];
	vtp__param p[1];

	int slot, rc;

	p[0] = p_time(vtp_now_ms(), at);
	if ((rc = acquire(s, &slot)) != 0)
		return rc;
	/* straight to the backend: the probe neither moves the generation
	 * nor clears what the last real write said */
	rc = s->ops->query(s->conns[slot],
			   "INSERT INTO health_probe (id, probed_at) VALUES (1, ?)"
			   " ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
			   p, 1, NULL, NULL, NULL);
	release(s, slot);
	return rc;
}

int vtp_store_last_write(vtp_store *s)
{
	int rc = atomic_load(&s->last_write_rc);

	/* an idle server has no fresh word: the probe alone decides then */
	if (rc && vtp_now_ms() - atomic_load(&s->last_write_fail_ms) > LAST_WRITE_FRESH_MS)
		rc = 0;
	return rc;
}

/* ---- users -------------------------------------------------------------- */

#define USER_COLS "id, email, full_name, role, password_hash, created_at"

void vtp_user_clear(vtp_user *u)
{
	if (!u)
		return;
	vtp_free(u->email);
	vtp_free(u->full_name);
	vtp_free(u->role);
	vtp_free(u->password_hash);
	memset(u, 0, sizeof(*u));
}

/* Emails are stored and looked up ASCII-lowercased. */
static char *lower_dup(const char *s)
{
	char *d = vtp_strdup(s);

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

typedef struct one_ctx {
	void *out;
	bool found;
} one_ctx;

static int read_user(void *ctx, const vtp__row *row)
{
	one_ctx *oc = ctx;
	vtp_user *u = oc->out;

	col_id(row, 0, u->id);
	u->email = col_strdup(row, 1);
	u->full_name = col_strdup(row, 2);
	u->role = col_strdup(row, 3);
	u->password_hash = col_strdup(row, 4);
	u->created_at = col_time(row, 5);
	oc->found = true;
	return 0;
}

int vtp_store_user_insert(vtp_store *s, const vtp_user *u)
{
	char id[VTP_UUID_BUFLEN], created[VTP_TIME_BUFLEN];
	char *email;
	vtp__param p[6];
	int rc;

	if (!norm_id(u->id, id) || !u->email || !u->role)
		return VTP_EINVAL;
	email = lower_dup(u->email);
	p[0] = p_text(id);
	p[1] = p_text(email);
	p[2] = p_text(u->full_name ? u->full_name : "");
	p[3] = p_text(u->role);
	p[4] = p_text(u->password_hash);
	p[5] = p_time(u->created_at ? u->created_at : vtp_now_ms(), created);
	rc = query(s,
		   "INSERT INTO users (" USER_COLS ") VALUES (?, ?, ?, ?, ?, ?)",
		   p, 6, NULL, NULL, NULL);
	vtp_free(email);
	return rc;
}

static int user_by(vtp_store *s, const char *sql, const char *arg,
		   vtp_user *out)
{
	one_ctx oc = {.out = out};
	vtp__param p[1] = {p_text(arg)};
	int rc;

	rc = query(s, sql, p, 1, read_user, &oc, NULL);
	if (rc == 0 && !oc.found)
		rc = VTP_ENOTFOUND;
	if (rc)
		vtp_user_clear(out);
	return rc;
}

int vtp_store_user_by_email(vtp_store *s, const char *email, vtp_user *out)
{
	char *lower;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!email)
		return VTP_ENOTFOUND;
	lower = lower_dup(email);
	rc = user_by(s, "SELECT " USER_COLS " FROM users WHERE email = ?",
		     lower, out);
	vtp_free(lower);
	return rc;
}

int vtp_store_user_by_id(vtp_store *s, const char *id, vtp_user *out)
{
	char uid[VTP_UUID_BUFLEN];

	memset(out, 0, sizeof(*out));
	if (!norm_id(id, uid))
		return VTP_ENOTFOUND;
	return user_by(s, "SELECT " USER_COLS " FROM users WHERE id = ?", uid,
		       out);
}

int vtp_store_user_count(vtp_store *s, int64_t *count)
{
	*count = 0;
	return query(s, "SELECT COUNT(*) FROM users", NULL, 0, read_count,
		     count, NULL);
}

/* ---- recordings --------------------------------------------------------- */

#define REC_COLS                                                              \
	"r.id, r.room_id, r.title, r.description, r.started_by, r.status,"   \
	" r.file_path, r.file_size, r.duration_seconds, r.format,"          \
	" r.video_codec, r.audio_codec, r.resolution_width,"                \
	" r.resolution_height, r.fps, r.bitrate, r.progress, r.error,"      \
	" r.node_id, r.metadata, r.created_at, r.stopped_at,"               \
	" r.completed_at, r.deleted_at,"                                      \
	" (SELECT COUNT(*) FROM recording_participants p"                     \
	" WHERE p.recording_id = r.id),"                                      \
	" r.tracks, r.warnings, r.layout"

#define ACTIVE_STATUSES "('pending','recording')"

void vtp_recording_clear(vtp_recording *r)
{
	if (!r)
		return;
	vtp_free(r->room_id);
	vtp_free(r->title);
	vtp_free(r->description);
	vtp_free(r->status);
	vtp_free(r->file_path);
	vtp_free(r->format);
	vtp_free(r->video_codec);
	vtp_free(r->audio_codec);
	vtp_free(r->error);
	vtp_free(r->node_id);
	vtp_free(r->metadata);
	vtp_free(r->tracks);
	vtp_free(r->warnings);
	vtp_free(r->layout);
	memset(r, 0, sizeof(*r));
}

void vtp_recording_free_array(vtp_recording *arr, size_t n)
{
	for (size_t i = 0; arr && i < n; i++)
		vtp_recording_clear(&arr[i]);
	vtp_free(arr);
}

static void fill_recording(const vtp__row *row, vtp_recording *r)
{
	col_id(row, 0, r->id);
	r->room_id = col_strdup(row, 1);
	r->title = col_strdup(row, 2);
	r->description = col_strdup(row, 3);
	col_id(row, 4, r->started_by);
	r->status = col_strdup(row, 5);
	r->file_path = col_strdup(row, 6);
	r->file_size = row->ops->is_null(row, 7) ? -1 : col_int(row, 7);
	r->duration_seconds =
		row->ops->is_null(row, 8) ? -1.0 : row->ops->dbl(row, 8);
	r->format = col_strdup(row, 9);
	r->video_codec = col_strdup(row, 10);
	r->audio_codec = col_strdup(row, 11);
	r->resolution_width = (int)col_int(row, 12);
	r->resolution_height = (int)col_int(row, 13);
	r->fps = (int)col_int(row, 14);
	r->bitrate = (int)col_int(row, 15);
	r->progress = (int)col_int(row, 16);
	r->error = col_strdup(row, 17);
	r->node_id = col_strdup(row, 18);
	r->metadata = col_strdup(row, 19);
	if (!r->metadata)
		r->metadata = vtp_strdup("{}");
	r->created_at = col_time(row, 20);
	r->stopped_at = col_time(row, 21);
	r->completed_at = col_time(row, 22);
	r->deleted_at = col_time(row, 23);
	r->participant_count = (int)col_int(row, 24);
	r->tracks = col_strdup(row, 25);
	r->warnings = col_strdup(row, 26);
	r->layout = col_strdup(row, 27);
	if (!r->layout)
		r->layout = vtp_strdup("auto");
}

static int read_recording(void *ctx, const vtp__row *row)
{
	one_ctx *oc = ctx;

	fill_recording(row, oc->out);
	oc->found = true;
	return 0;
}

typedef struct array_ctx {
	void *items;
	size_t n, cap;
} array_ctx;

static int read_recording_item(void *ctx, const vtp__row *row)
{
	array_ctx *ac = ctx;

	fill_recording(row, array_push(&ac->items, &ac->n, &ac->cap,
				       sizeof(vtp_recording)));
	return 0;
}

int vtp_store_recording_insert(vtp_store *s, const vtp_recording *r)
{
	char id[VTP_UUID_BUFLEN], by[VTP_UUID_BUFLEN];
	char t[4][VTP_TIME_BUFLEN];
	vtp__param p[25];

	if (!norm_id(r->id, id) || !norm_id(r->started_by, by) ||
	    !r->room_id || !r->title || !r->status)
		return VTP_EINVAL;
	p[0] = p_text(id);
	p[1] = p_text(r->room_id);
	p[2] = p_text(r->title);
	p[3] = p_text(r->description);
	p[4] = p_text(by);
	p[5] = p_text(r->status);
	p[6] = p_text(r->file_path);
	p[7] = r->file_size < 0 ? p_null() : p_int(r->file_size);
	p[8] = r->duration_seconds < 0 ? p_null() : p_double(r->duration_seconds);
	p[9] = p_text(r->format);
	p[10] = p_text(r->video_codec);
	p[11] = p_text(r->audio_codec);
	p[12] = p_int(r->resolution_width);
	p[13] = p_int(r->resolution_height);
	p[14] = p_int(r->fps);
	p[15] = p_int(r->bitrate);
	p[16] = p_int(r->progress);
	p[17] = p_text(r->error);
	p[18] = p_text(r->node_id);
	p[19] = p_text(r->metadata ? r->metadata : "{}");
	p[20] = p_time(r->created_at ? r->created_at : vtp_now_ms(), t[0]);
	p[21] = p_time(r->stopped_at, t[1]);
	p[22] = p_time(r->completed_at, t[2]);
	p[23] = p_time(r->deleted_at, t[3]);
	p[24] = p_text(r->layout ? r->layout : "auto");
	return query(s,
		     "INSERT INTO recordings (id, room_id, title, description,"
		     " started_by, status, file_path, file_size,"
		     " duration_seconds, format, video_codec, audio_codec,"
		     " resolution_width, resolution_height, fps, bitrate,"
		     " progress, error, node_id, metadata, created_at,"
		     " stopped_at, completed_at, deleted_at, layout) VALUES"
		     " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
		     " ?, ?, ?, ?, ?, ?, ?)",
		     p, 25, NULL, NULL, NULL);
}

static int read_id(void *ctx, const vtp__row *row)
{
	one_ctx *oc = ctx;

	col_id(row, 0, oc->out);
	oc->found = true;
	return 0;
}

int vtp_store_recording_active_in_room(vtp_store *s, const char *room_id,
				       char id[VTP_UUID_BUFLEN])
{
	one_ctx oc = {.out = id};
	vtp__param p[1] = {p_text(room_id)};
	int rc;

	id[0] = '\0';
	if (!room_id)
		return VTP_ENOTFOUND;
	rc = query(s,
		   "SELECT id FROM recordings WHERE room_id = ? AND status IN "
		   ACTIVE_STATUSES,
		   p, 1, read_id, &oc, NULL);
	if (rc == 0 && !oc.found)
		rc = VTP_ENOTFOUND;
	return rc;
}

int vtp_store_recording_get(vtp_store *s, const char *id, vtp_recording *out)
{
	char rid[VTP_UUID_BUFLEN];
	one_ctx oc = {.out = out};
	vtp__param p[1];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(rid);
	rc = query(s, "SELECT " REC_COLS " FROM recordings r WHERE r.id = ?",
		   p, 1, read_recording, &oc, NULL);
	if (rc == 0 && !oc.found)
		rc = VTP_ENOTFOUND;
	if (rc)
		vtp_recording_clear(out);
	return rc;
}

/* A list is the union of at most two disjoint "arms", each a WHERE clause
 * (fixed fragments, values only as parameters) over recordings r. */
typedef struct list_arm {
	vtp_buf where; /* " FROM recordings r WHERE ..." */
	vtp__param p[8];
	int np;
} list_arm;

static void arm_init(list_arm *a, const vtp_recording_filter *f)
{
	vtp_buf_init(&a->where, 4096);
	a->np = 0;
	vtp_buf_appends(&a->where, f->deleted
					   ? " FROM recordings r WHERE r.deleted_at IS NOT NULL"
					   : " FROM recordings r WHERE r.deleted_at IS NULL");
	if (f->room_id) {
		vtp_buf_appends(&a->where, " AND r.room_id = ?");
		a->p[a->np++] = p_text(f->room_id);
	}
	if (f->status) {
		vtp_buf_appends(&a->where, " AND r.status = ?");
		a->p[a->np++] = p_text(f->status);
	}
}

static int append_params(vtp__param *dst, int n, const list_arm *a)
{
	memcpy(dst + n, a->p, sizeof(*a->p) * (size_t)a->np);
	return n + a->np;
}

int vtp_store_recording_list(vtp_store *s, const vtp_recording_filter *f,
			     vtp_recording **out, size_t *n, int64_t *total)
{
	char viewer[VTP_UUID_BUFLEN];
	const char *viewer_id = NULL;
	array_ctx ac = {0};
	list_arm arm[2];
	int narms = 1, np = 0, slot, rc;
	vtp__param p[32];
	vtp_buf sql;

	*out = NULL;
	*n = 0;
	*total = 0;
	if (f->limit < 1 || f->limit > 100 || f->offset < 0)
		return VTP_EINVAL;
	if (norm_id(f->viewer_id, viewer))
		viewer_id = viewer;

	/* Arms: an admin sees everything (one arm). Anyone else sees what
	 * they started (read in order from the owner index), plus, for live
	 * recordings, what is shared with them or their role and started by
	 * someone else. The arms are disjoint, so each is counted and paged
	 * on its own: a page costs O(offset + limit) rows of each arm, not a
	 * sort of everything the user may see. */
	arm_init(&arm[0], f);
	if (!f->viewer_is_admin) {
		vtp_buf_appends(&arm[0].where, " AND r.started_by = ?");
		arm[0].p[arm[0].np++] = p_text(viewer_id);
		if (!f->deleted) {
			arm_init(&arm[1], f);
			vtp_buf_appends(&arm[1].where,
					" AND r.started_by <> ? AND r.id IN"
					" (SELECT recording_id FROM recording_sharing"
					" WHERE shared_with_user_id = ?"
					" OR shared_with_role = ?)");
			arm[1].p[arm[1].np++] = p_text(viewer_id);
			arm[1].p[arm[1].np++] = p_text(viewer_id);
			arm[1].p[arm[1].np++] = p_text(f->viewer_role);
			narms = 2;
		}
	}
	vtp_buf_init(&sql, 16384);
	if ((rc = acquire(s, &slot)) != 0)
		goto out;

	if (narms == 1) {
		vtp_buf_appendf(&sql, "SELECT COUNT(*)%s", arm[0].where.data);
	} else {
		vtp_buf_appendf(&sql, "SELECT (SELECT COUNT(*)%s) + (SELECT COUNT(*)%s)",
				arm[0].where.data, arm[1].where.data);
	}
	for (int i = 0; i < narms; i++)
		np = append_params(p, np, &arm[i]);
	rc = run(s, slot, sql.data, p, np, read_count, total, NULL);

	if (rc == 0 && *total > f->offset) {
		/* The page's ids in order (each arm cut to offset + limit
		 * first), then its full rows. */
		vtp_buf_reset(&sql);
		np = 0;
		vtp_buf_appends(&sql, "SELECT " REC_COLS " FROM (");
		if (narms == 1) {
			vtp_buf_appendf(&sql, "SELECT r.id, r.created_at%s", arm[0].where.data);
			np = append_params(p, np, &arm[0]);
		} else {
			for (int i = 0; i < 2; i++) {
				vtp_buf_appendf(&sql,
						"%sSELECT id, created_at FROM (SELECT r.id, r.created_at%s"
						" ORDER BY r.created_at DESC, r.id DESC LIMIT ?) a%d",
						i ? " UNION ALL " : "", arm[i].where.data, i);
				np = append_params(p, np, &arm[i]);
				p[np++] = p_int((int64_t)f->offset + f->limit);
			}
		}
		vtp_buf_appends(&sql, " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?)"
				      " t JOIN recordings r ON r.id = t.id"
				      " ORDER BY t.created_at DESC, t.id DESC");
		p[np++] = p_int(f->limit);
		p[np++] = p_int(f->offset);
		rc = run(s, slot, sql.data, p, np, read_recording_item, &ac, NULL);
	}
	release(s, slot);
	if (rc) {
		vtp_recording_free_array(ac.items, ac.n);
		*total = 0;
		goto out;
	}
	*out = ac.n ? ac.items : NULL;
	*n = ac.n;
	if (!ac.n)
		vtp_free(ac.items);
out:
	for (int i = 0; i < narms; i++)
		vtp_buf_free(&arm[i].where);
	vtp_buf_free(&sql);
	return rc;
}

/* For an UPDATE that matched nothing: ENOTFOUND if the id does not exist,
 * else ECONFLICT (it exists in the wrong state). */
static int conflict_or_missing(vtp_store *s, int slot, const char *id)
{
	vtp__param p[1] = {p_text(id)};
	bool exists = false;
	int rc;

	rc = run(s, slot, "SELECT 1 FROM recordings WHERE id = ?", p, 1,
		 read_exists, &exists, NULL);
	if (rc)
		return rc;
	return exists ? VTP_ECONFLICT : VTP_ENOTFOUND;
}

/* Runs a state-guarded UPDATE on one recording (p[idpos] is its id). */
static int guarded_update(vtp_store *s, const char *sql, vtp__param *p,
			  int np, const char *id)
{
	int64_t changes = 0;
	int slot, rc;

	if ((rc = acquire(s, &slot)) != 0)
		return rc;
	rc = run(s, slot, sql, p, np, NULL, NULL, &changes);
	if (rc == 0 && changes == 0)
		rc = conflict_or_missing(s, slot, id);
	release(s, slot);
	return rc;
}

int vtp_store_recording_stop(vtp_store *s, const char *id, int64_t stopped_at,
			     double duration_seconds)
{
	char rid[VTP_UUID_BUFLEN], at[VTP_TIME_BUFLEN];
	vtp__param p[3];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_time(stopped_at ? stopped_at : vtp_now_ms(), at);
	p[1] = duration_seconds < 0 ? p_null() : p_double(duration_seconds);
	p[2] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET status = 'stopped',"
			      " stopped_at = ?, duration_seconds = ?"
			      " WHERE id = ? AND deleted_at IS NULL"
			      " AND status IN " ACTIVE_STATUSES,
			      p, 3, rid);
}

int vtp_store_recording_soft_delete(vtp_store *s, const char *id, int64_t at)
{
	char rid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[2];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_time(at ? at : vtp_now_ms(), t);
	p[1] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET deleted_at = ?"
			      " WHERE id = ? AND deleted_at IS NULL",
			      p, 2, rid);
}

int vtp_store_recording_restore(vtp_store *s, const char *id)
{
	char rid[VTP_UUID_BUFLEN];
	vtp__param p[1];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET deleted_at = NULL"
			      " WHERE id = ? AND deleted_at IS NOT NULL",
			      p, 1, rid);
}

int vtp_store_recording_set_tracks(vtp_store *s, const char *id, const char *tracks)
{
	char rid[VTP_UUID_BUFLEN];
	vtp__param p[2];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(tracks);
	p[1] = p_text(rid);
	return guarded_update(s, "UPDATE recordings SET tracks = ? WHERE id = ?",
			      p, 2, rid);
}

int vtp_store_recording_set_warnings(vtp_store *s, const char *id, const char *warnings)
{
	char rid[VTP_UUID_BUFLEN];
	vtp__param p[2];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(warnings);
	p[1] = p_text(rid);
	return guarded_update(s, "UPDATE recordings SET warnings = ? WHERE id = ?", p, 2, rid);
}

int vtp_store_recording_interrupt(vtp_store *s, const char *id, int64_t stopped_at,
				  double duration_seconds, const char *tracks,
				  const char *metadata)
{
	char rid[VTP_UUID_BUFLEN], at[VTP_TIME_BUFLEN];
	vtp__param p[5];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_time(stopped_at ? stopped_at : vtp_now_ms(), at);
	p[1] = duration_seconds < 0 ? p_null() : p_double(duration_seconds);
	p[2] = p_text(tracks);
	p[3] = p_text(metadata ? metadata : "{}");
	p[4] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET status = 'stopped',"
			      " stopped_at = ?, duration_seconds = ?, tracks = ?,"
			      " metadata = ? WHERE id = ? AND status IN "
			      ACTIVE_STATUSES,
			      p, 5, rid);
}

int vtp_store_recording_active_of_node(vtp_store *s, const char *node_id,
				       vtp_recording **out, size_t *n)
{
	array_ctx ac = {0};
	vtp__param p[1];
	int rc;

	*out = NULL;
	*n = 0;
	p[0] = p_text(node_id);
	rc = query(s,
		   "SELECT " REC_COLS " FROM recordings r WHERE r.status IN "
		   ACTIVE_STATUSES " AND (r.node_id = ? OR r.node_id IS NULL)"
		   " ORDER BY r.created_at, r.id",
		   p, 1, read_recording_item, &ac, NULL);
	if (rc || !ac.n) {
		vtp_recording_free_array(ac.items, ac.n);
		return rc;
	}
	*out = ac.items;
	*n = ac.n;
	return 0;
}

int vtp_store_recording_unqueued(vtp_store *s, vtp_recording **out, size_t *n)
{
	array_ctx ac = {0};
	int rc;

	*out = NULL;
	*n = 0;
	rc = query(s,
		   "SELECT " REC_COLS " FROM recordings r"
		   " WHERE r.status IN ('stopped','processing')"
		   " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.recording_id = r.id"
		   " AND j.state IN ('queued','running'))"
		   " ORDER BY r.stopped_at, r.id",
		   NULL, 0, read_recording_item, &ac, NULL);
	if (rc || !ac.n) {
		vtp_recording_free_array(ac.items, ac.n);
		return rc;
	}
	*out = ac.items;
	*n = ac.n;
	return 0;
}

int vtp_store_recording_deleted_before(vtp_store *s, int64_t before_ms, int limit,
				       vtp_recording **out, size_t *n)
{
	array_ctx ac = {0};
	char t[VTP_TIME_BUFLEN], sql[2048];
	vtp__param p[1];
	int rc;

	*out = NULL;
	*n = 0;
	p[0] = p_time(before_ms, t);
	snprintf(sql, sizeof(sql),
		 "SELECT " REC_COLS " FROM recordings r"
		 " WHERE r.deleted_at IS NOT NULL AND r.deleted_at < ?"
		 " ORDER BY r.deleted_at, r.id LIMIT %d", limit > 0 ? limit : 1);
	rc = query(s, sql, p, 1, read_recording_item, &ac, NULL);
	if (rc || !ac.n) {
		vtp_recording_free_array(ac.items, ac.n);
		return rc;
	}
	*out = ac.items;
	*n = ac.n;
	return 0;
}

int vtp_store_recording_purge(vtp_store *s, const char *id, int64_t deleted_at)
{
	char rid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[2];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(rid);
	p[1] = p_time(deleted_at, t);
	return guarded_update(s,
			      "DELETE FROM recordings WHERE id = ? AND deleted_at = ?",
			      p, 2, rid);
}

int vtp_store_recording_count_active(vtp_store *s, int64_t *count)
{
	*count = 0;
	return query(s,
		     "SELECT COUNT(*) FROM recordings WHERE status IN "
		     ACTIVE_STATUSES,
		     NULL, 0, read_count, count, NULL);
}

/* ---- participants ------------------------------------------------------- */

void vtp_participant_clear(vtp_participant *p)
{
	if (!p)
		return;
	vtp_free(p->peer_id);
	vtp_free(p->user_id);
	vtp_free(p->full_name);
	vtp_free(p->role);
	memset(p, 0, sizeof(*p));
}

void vtp_participant_free_array(vtp_participant *arr, size_t n)
{
	for (size_t i = 0; arr && i < n; i++)
		vtp_participant_clear(&arr[i]);
	vtp_free(arr);
}

/* Uses `given` when it is a UUID, generates one when it is empty. */
static bool id_or_new(const char *given, char out[VTP_UUID_BUFLEN])
{
	if (!given || !*given) {
		vtp_uuid_v4(out);
		return true;
	}
	return vtp_uuid_parse(given, out);
}

int vtp_store_participant_insert(vtp_store *s, const vtp_participant *pt)
{
	char id[VTP_UUID_BUFLEN], rid[VTP_UUID_BUFLEN], uid[VTP_UUID_BUFLEN];
	char joined[VTP_TIME_BUFLEN], left[VTP_TIME_BUFLEN];
	vtp__param p[8];

	if (!id_or_new(pt->id, id) || !norm_id(pt->recording_id, rid) ||
	    (pt->user_id && !norm_id(pt->user_id, uid)))
		return VTP_EINVAL;
	p[0] = p_text(id);
	p[1] = p_text(rid);
	p[2] = p_text(pt->peer_id);
	p[3] = p_text(pt->user_id ? uid : NULL);
	p[4] = p_text(pt->full_name);
	p[5] = p_text(pt->role);
	p[6] = p_time(pt->joined_at ? pt->joined_at : vtp_now_ms(), joined);
	p[7] = p_time(pt->left_at, left);
	return query(s,
		     "INSERT INTO recording_participants (id, recording_id,"
		     " peer_id, user_id, full_name, role, joined_at, left_at)"
		     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		     p, 8, NULL, NULL, NULL);
}

int vtp_store_participant_join(vtp_store *s, const vtp_participant *pt,
			       char id_out[VTP_UUID_BUFLEN])
{
	char rid[VTP_UUID_BUFLEN], found[VTP_UUID_BUFLEN];
	one_ctx oc = {0};
	vtp__param p[2];
	int rc;

	if (!norm_id(pt->recording_id, rid) || !pt->peer_id)
		return VTP_EINVAL;
	oc.out = found;
	p[0] = p_text(rid);
	p[1] = p_text(pt->peer_id);
	rc = query(s,
		   "SELECT id FROM recording_participants"
		   " WHERE recording_id = ? AND peer_id = ? ORDER BY joined_at, id LIMIT 1",
		   p, 2, read_id, &oc, NULL);
	if (rc)
		return rc;
	if (oc.found) {
		memcpy(id_out, found, VTP_UUID_BUFLEN);
		p[0] = p_text(found);
		return query(s, "UPDATE recording_participants SET left_at = NULL WHERE id = ?",
			     p, 1, NULL, NULL, NULL);
	}
	rc = vtp_store_participant_insert(s, pt);
	if (rc == 0)
		memcpy(id_out, pt->id, VTP_UUID_BUFLEN);
	return rc;
}

/* left_at = at on the still-present participant rows that sql selects by
 * one id (a participant's or a recording's). */
static int set_left(vtp_store *s, const char *sql, const char *id, int64_t at)
{
	char nid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[2];

	if (!norm_id(id, nid))
		return VTP_ENOTFOUND;
	p[0] = p_time(at ? at : vtp_now_ms(), t);
	p[1] = p_text(nid);
	return query(s, sql, p, 2, NULL, NULL, NULL);
}

int vtp_store_participant_left(vtp_store *s, const char *id, int64_t at)
{
	return set_left(s,
			"UPDATE recording_participants SET left_at = ?"
			" WHERE id = ? AND left_at IS NULL",
			id, at);
}

int vtp_store_participant_left_all(vtp_store *s, const char *recording_id, int64_t at)
{
	return set_left(s,
			"UPDATE recording_participants SET left_at = ?"
			" WHERE recording_id = ? AND left_at IS NULL",
			recording_id, at);
}

static int read_participant_item(void *ctx, const vtp__row *row)
{
	array_ctx *ac = ctx;
	vtp_participant *pt = array_push(&ac->items, &ac->n, &ac->cap,
					 sizeof(*pt));

	col_id(row, 0, pt->id);
	col_id(row, 1, pt->recording_id);
	pt->peer_id = col_strdup(row, 2);
	pt->user_id = col_strdup(row, 3);
	pt->full_name = col_strdup(row, 4);
	pt->role = col_strdup(row, 5);
	pt->joined_at = col_time(row, 6);
	pt->left_at = col_time(row, 7);
	return 0;
}

int vtp_store_participant_list(vtp_store *s, const char *recording_id,
			       vtp_participant **out, size_t *n)
{
	char rid[VTP_UUID_BUFLEN];
	array_ctx ac = {0};
	vtp__param p[1];
	int rc;

	*out = NULL;
	*n = 0;
	if (!norm_id(recording_id, rid))
		return 0;
	p[0] = p_text(rid);
	rc = query(s,
		   "SELECT id, recording_id, peer_id, user_id, full_name, role,"
		   " joined_at, left_at FROM recording_participants"
		   " WHERE recording_id = ? ORDER BY joined_at, id",
		   p, 1, read_participant_item, &ac, NULL);
	if (rc || !ac.n) {
		vtp_participant_free_array(ac.items, ac.n);
		return rc;
	}
	*out = ac.items;
	*n = ac.n;
	return 0;
}

/* ---- shares ------------------------------------------------------------- */

#define SHARE_COLS                                                            \
	"id, recording_id, shared_with_user_id, shared_with_role, permission," \
	" shared_by, shared_at"

#define SHARE_UPSERT_SET                                                      \
	" DO UPDATE SET permission = excluded.permission,"                    \
	" shared_by = excluded.shared_by, shared_at = excluded.shared_at"     \
	" RETURNING " SHARE_COLS
/* an existing share stays as it is, and no row comes back */
#define SHARE_INSERT_ONLY " DO NOTHING RETURNING " SHARE_COLS

#define SHARE_INSERT_USER                                                     \
	"INSERT INTO recording_sharing (id, recording_id,"                    \
	" shared_with_user_id, permission, shared_by, shared_at)"             \
	" VALUES (?, ?, ?, ?, ?, ?)"                                          \
	" ON CONFLICT (recording_id, shared_with_user_id)"                    \
	" WHERE shared_with_user_id IS NOT NULL"

#define SHARE_INSERT_ROLE                                                     \
	"INSERT INTO recording_sharing (id, recording_id,"                    \
	" shared_with_role, permission, shared_by, shared_at)"                \
	" VALUES (?, ?, ?, ?, ?, ?)"                                          \
	" ON CONFLICT (recording_id, shared_with_role)"                       \
	" WHERE shared_with_role IS NOT NULL"

void vtp_share_clear(vtp_share *sh)
{
	if (!sh)
		return;
	vtp_free(sh->user_id);
	vtp_free(sh->role);
	vtp_free(sh->permission);
	vtp_free(sh->shared_by);
	memset(sh, 0, sizeof(*sh));
}

void vtp_share_free_array(vtp_share *arr, size_t n)
{
	for (size_t i = 0; arr && i < n; i++)
		vtp_share_clear(&arr[i]);
	vtp_free(arr);
}

static void fill_share(const vtp__row *row, vtp_share *sh)
{
	col_id(row, 0, sh->id);
	col_id(row, 1, sh->recording_id);
	sh->user_id = col_strdup(row, 2);
	sh->role = col_strdup(row, 3);
	sh->permission = col_strdup(row, 4);
	sh->shared_by = col_strdup(row, 5);
	sh->shared_at = col_time(row, 6);
}

static int read_share(void *ctx, const vtp__row *row)
{
	one_ctx *oc = ctx;

	fill_share(row, oc->out);
	oc->found = true;
	return 0;
}

static int read_share_item(void *ctx, const vtp__row *row)
{
	array_ctx *ac = ctx;

	fill_share(row, array_push(&ac->items, &ac->n, &ac->cap,
				   sizeof(vtp_share)));
	return 0;
}

int vtp_store_share_put(vtp_store *s, const vtp_share *sh, bool replace,
			vtp_share *out, bool *created)
{
	char id[VTP_UUID_BUFLEN], rid[VTP_UUID_BUFLEN], uid[VTP_UUID_BUFLEN];
	char by[VTP_UUID_BUFLEN], at[VTP_TIME_BUFLEN];
	one_ctx oc = {.out = out};
	vtp__param p[6];
	const char *sql;
	int rc;

	memset(out, 0, sizeof(*out));
	*created = false;
	if (!id_or_new(sh->id, id) || !norm_id(sh->recording_id, rid) ||
	    !sh->permission || (sh->user_id != NULL) == (sh->role != NULL) ||
	    (sh->user_id && !norm_id(sh->user_id, uid)) ||
	    (sh->shared_by && !norm_id(sh->shared_by, by)))
		return VTP_EINVAL;
	p[0] = p_text(id);
	p[1] = p_text(rid);
	p[2] = p_text(sh->user_id ? uid : sh->role);
	p[3] = p_text(sh->permission);
	p[4] = p_text(sh->shared_by ? by : NULL);
	p[5] = p_time(sh->shared_at ? sh->shared_at : vtp_now_ms(), at);
	/* One statement either way, so concurrent puts cannot both insert. */
	if (sh->user_id)
		sql = replace ? SHARE_INSERT_USER SHARE_UPSERT_SET
			      : SHARE_INSERT_USER SHARE_INSERT_ONLY;
	else
		sql = replace ? SHARE_INSERT_ROLE SHARE_UPSERT_SET
			      : SHARE_INSERT_ROLE SHARE_INSERT_ONLY;
	rc = query(s, sql, p, 6, read_share, &oc, NULL);
	if (rc == 0 && !oc.found) {
		if (!replace)
			return VTP_ECONFLICT;
		VTP_ERROR("store: share upsert returned no row");
		rc = VTP_EDB;
	}
	if (rc) {
		vtp_share_clear(out);
		return rc;
	}
	*created = strcmp(out->id, id) == 0;
	return 0;
}

int vtp_store_share_list(vtp_store *s, const char *recording_id,
			 vtp_share **out, size_t *n)
{
	char rid[VTP_UUID_BUFLEN];
	array_ctx ac = {0};
	vtp__param p[1];
	int rc;

	*out = NULL;
	*n = 0;
	if (!norm_id(recording_id, rid))
		return 0;
	p[0] = p_text(rid);
	rc = query(s,
		   "SELECT " SHARE_COLS " FROM recording_sharing"
		   " WHERE recording_id = ? ORDER BY shared_at, id",
		   p, 1, read_share_item, &ac, NULL);
	if (rc || !ac.n) {
		vtp_share_free_array(ac.items, ac.n);
		return rc;
	}
	*out = ac.items;
	*n = ac.n;
	return 0;
}

int vtp_store_share_delete(vtp_store *s, const char *recording_id,
			   const char *share_id)
{
	char rid[VTP_UUID_BUFLEN], sid[VTP_UUID_BUFLEN];
	int64_t changes = 0;
	vtp__param p[2];
	int rc;

	if (!norm_id(recording_id, rid) || !norm_id(share_id, sid))
		return VTP_ENOTFOUND;
	p[0] = p_text(sid);
	p[1] = p_text(rid);
	rc = query(s,
		   "DELETE FROM recording_sharing WHERE id = ? AND"
		   " recording_id = ?",
		   p, 2, NULL, NULL, &changes);
	if (rc == 0 && changes == 0)
		rc = VTP_ENOTFOUND;
	return rc;
}

int vtp_store_share_level(vtp_store *s, const char *recording_id,
			  const char *user_id, const char *role, int *level)
{
	char rid[VTP_UUID_BUFLEN], uid[VTP_UUID_BUFLEN];
	const char *u = NULL;
	int64_t max = 0;
	vtp__param p[3];
	int rc;

	*level = 0;
	if (norm_id(user_id, uid))
		u = uid;
	if (!norm_id(recording_id, rid) || (!u && !role))
		return 0;
	p[0] = p_text(rid);
	p[1] = p_text(u);
	p[2] = p_text(role);
	rc = query(s,
		   "SELECT MAX(CASE permission WHEN 'view' THEN 1"
		   " WHEN 'download' THEN 2 WHEN 'share' THEN 3 ELSE 0 END)"
		   " FROM recording_sharing WHERE recording_id = ?"
		   " AND (shared_with_user_id = ? OR shared_with_role = ?)",
		   p, 3, read_count, &max, NULL);
	if (rc == 0)
		*level = (int)max;
	return rc;
}

/* ---- access log --------------------------------------------------------- */

void vtp_access_entry_clear(vtp_access_entry *e)
{
	if (!e)
		return;
	vtp_free(e->accessed_by);
	vtp_free(e->access_type);
	vtp_free(e->ip_address);
	vtp_free(e->user_agent);
	vtp_free(e->detail);
	memset(e, 0, sizeof(*e));
}

void vtp_access_entry_free_array(vtp_access_entry *arr, size_t n)
{
	for (size_t i = 0; arr && i < n; i++)
		vtp_access_entry_clear(&arr[i]);
	vtp_free(arr);
}

static const char access_insert_sql[] =
	"INSERT INTO recording_access_log (id, recording_id,"
	" accessed_by, access_type, ip_address, user_agent,"
	" detail, accessed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

typedef struct access_params {
	char id[VTP_UUID_BUFLEN], rid[VTP_UUID_BUFLEN], by[VTP_UUID_BUFLEN];
	char at[VTP_TIME_BUFLEN];
	vtp__param p[8];
} access_params;

static int bind_access(const vtp_access_entry *e, access_params *a)
{
	if (!id_or_new(e->id, a->id) || !norm_id(e->recording_id, a->rid) ||
	    (e->accessed_by && !norm_id(e->accessed_by, a->by)) ||
	    !e->access_type)
		return VTP_EINVAL;
	a->p[0] = p_text(a->id);
	a->p[1] = p_text(a->rid);
	a->p[2] = p_text(e->accessed_by ? a->by : NULL);
	a->p[3] = p_text(e->access_type);
	a->p[4] = p_text(e->ip_address);
	a->p[5] = p_text(e->user_agent);
	a->p[6] = p_text(e->detail);
	a->p[7] = p_time(e->accessed_at ? e->accessed_at : vtp_now_ms(), a->at);
	return 0;
}

int vtp_store_access_log_insert(vtp_store *s, const vtp_access_entry *e)
{
	access_params a;
	int rc = bind_access(e, &a);

	if (rc)
		return rc;
	return query(s, access_insert_sql, a.p, 8, NULL, NULL, NULL);
}

int vtp_store_access_log_insert_many(vtp_store *s, const vtp_access_entry *e,
				     size_t n)
{
	access_params a;
	int slot, rc;

	if (n == 0)
		return 0;
	if (n == 1)
		return vtp_store_access_log_insert(s, e);
	if ((rc = acquire(s, &slot)) != 0)
		return rc;
	if ((rc = s->ops->exec(s->conns[slot], "BEGIN")) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((rc = bind_access(&e[i], &a)) != 0 ||
		    (rc = run(s, slot, access_insert_sql, a.p, 8, NULL, NULL, NULL)) != 0) {
			s->ops->exec(s->conns[slot], "ROLLBACK");
			goto out;
		}
	}
	rc = commit(s, slot, false);
	if (rc)
		s->ops->exec(s->conns[slot], "ROLLBACK");
out:
	release(s, slot);
	return rc;
}

static int read_access_item(void *ctx, const vtp__row *row)
{
	array_ctx *ac = ctx;
	vtp_access_entry *e = array_push(&ac->items, &ac->n, &ac->cap,
					 sizeof(*e));

	col_id(row, 0, e->id);
	col_id(row, 1, e->recording_id);
	e->accessed_by = col_strdup(row, 2);
	e->access_type = col_strdup(row, 3);
	e->ip_address = col_strdup(row, 4);
	e->user_agent = col_strdup(row, 5);
	e->detail = col_strdup(row, 6);
	e->accessed_at = col_time(row, 7);
	return 0;
}

int vtp_store_access_log_list(vtp_store *s, const char *recording_id,
			      int limit, int offset, vtp_access_entry **out,
			      size_t *n, int64_t *total)
{
	char rid[VTP_UUID_BUFLEN];
	array_ctx ac = {0};
	vtp__param p[3];
	int slot, rc;

	*out = NULL;
	*n = 0;
	*total = 0;
	if (limit < 1 || limit > 1000 || offset < 0)
		return VTP_EINVAL;
	if (!norm_id(recording_id, rid))
		return 0;
	p[0] = p_text(rid);
	p[1] = p_int(limit);
	p[2] = p_int(offset);
	if ((rc = acquire(s, &slot)) != 0)
		return rc;
	rc = run(s, slot,
		 "SELECT COUNT(*) FROM recording_access_log"
		 " WHERE recording_id = ?",
		 p, 1, read_count, total, NULL);
	if (rc == 0 && *total > offset)
		rc = run(s, slot,
			 "SELECT id, recording_id, accessed_by, access_type,"
			 " ip_address, user_agent, detail, accessed_at"
			 " FROM recording_access_log WHERE recording_id = ?"
			 " ORDER BY accessed_at DESC, id DESC LIMIT ? OFFSET ?",
			 p, 3, read_access_item, &ac, NULL);
	release(s, slot);
	if (rc || !ac.n) {
		vtp_access_entry_free_array(ac.items, ac.n);
		if (rc)
			*total = 0;
		return rc;
	}
	*out = ac.items;
	*n = ac.n;
	return 0;
}

/* ---- recording processing ------------------------------------------------------ */

int vtp_store_recording_processing(vtp_store *s, const char *id)
{
	char rid[VTP_UUID_BUFLEN];
	vtp__param p[1];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET status = 'processing', progress = 0,"
			      " error = NULL WHERE id = ? AND status IN ('stopped','processing')",
			      p, 1, rid);
}

int vtp_store_recording_progress(vtp_store *s, const char *id, int progress)
{
	char rid[VTP_UUID_BUFLEN];
	vtp__param p[2];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	if (progress < 0 || progress > 100)
		return VTP_EINVAL;
	p[0] = p_int(progress);
	p[1] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET progress = ?"
			      " WHERE id = ? AND status = 'processing'",
			      p, 2, rid);
}

int vtp_store_recording_done(vtp_store *s, const char *id, const char *file_path,
			     int64_t file_size, double duration_seconds,
			     const char *metadata, int64_t completed_at)
{
	char rid[VTP_UUID_BUFLEN], at[VTP_TIME_BUFLEN];
	vtp__param p[6];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(file_path);
	p[1] = file_size < 0 ? p_null() : p_int(file_size);
	p[2] = duration_seconds < 0 ? p_null() : p_double(duration_seconds);
	p[3] = p_text(metadata ? metadata : "{}");
	p[4] = p_time(completed_at ? completed_at : vtp_now_ms(), at);
	p[5] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET status = 'done', progress = 100,"
			      " file_path = ?, file_size = ?, duration_seconds = ?,"
			      " metadata = ?, completed_at = ?, error = NULL"
			      " WHERE id = ? AND status = 'processing'",
			      p, 6, rid);
}

int vtp_store_recording_failed(vtp_store *s, const char *id, const char *error,
			       int64_t completed_at)
{
	char rid[VTP_UUID_BUFLEN], at[VTP_TIME_BUFLEN];
	vtp__param p[3];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(error ? error : "failed");
	p[1] = p_time(completed_at ? completed_at : vtp_now_ms(), at);
	p[2] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET status = 'failed', error = ?,"
			      " completed_at = ? WHERE id = ?"
			      " AND status IN ('stopped','processing')",
			      p, 3, rid);
}

int vtp_store_recording_requeue(vtp_store *s, const char *id)
{
	char rid[VTP_UUID_BUFLEN];
	vtp__param p[1];

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(rid);
	return guarded_update(s,
			      "UPDATE recordings SET status = 'stopped', progress = 0,"
			      " error = NULL, completed_at = NULL WHERE id = ?"
			      " AND status = 'failed' AND deleted_at IS NULL",
			      p, 1, rid);
}

/* ---- jobs ------------------------------------------------------------------------ */

/* A state-guarded UPDATE of one row (a job, an outbox event): VTP_ECONFLICT
 * when no row was in the expected state (or there is no such row). */
static int update_guarded_row(vtp_store *s, const char *sql, vtp__param *p, int np)
{
	int64_t changes = 0;
	int rc = query(s, sql, p, np, NULL, NULL, &changes);

	if (rc == 0 && changes == 0)
		rc = VTP_ECONFLICT;
	return rc;
}

static int read_job(void *ctx, const vtp__row *row)
{
	one_ctx *oc = ctx;
	vtp_job *j = oc->out;

	col_id(row, 0, j->id);
	col_id(row, 1, j->recording_id);
	j->attempts = (int)col_int(row, 2);
	oc->found = true;
	return 0;
}

int vtp_store_job_enqueue(vtp_store *s, const char *recording_id, int64_t run_after,
			  vtp_job *out)
{
	char rid[VTP_UUID_BUFLEN], t[2][VTP_TIME_BUFLEN];
	vtp_job job;
	vtp__param p[5];
	int rc;

	if (!norm_id(recording_id, rid))
		return VTP_ENOTFOUND;
	memset(&job, 0, sizeof(job));
	vtp_uuid_v7(job.id);
	memcpy(job.recording_id, rid, sizeof(rid));
	p[0] = p_text(job.id);
	p[1] = p_text(rid);
	p[2] = p_time(run_after ? run_after : vtp_now_ms(), t[0]);
	p[3] = p_time(vtp_now_ms(), t[1]);
	p[4] = p_text(t[1]);
	rc = query(s,
		   "INSERT INTO jobs (id, recording_id, state, attempts, run_after,"
		   " created_at, updated_at) VALUES (?, ?, 'queued', 0, ?, ?, ?)",
		   p, 5, NULL, NULL, NULL);
	if (rc == 0 && out)
		*out = job;
	return rc;
}

int vtp_store_job_claim(vtp_store *s, const char *node_id, int64_t now, vtp_job *out)
{
	char t[VTP_TIME_BUFLEN], sql[600];
	one_ctx oc = {0};
	vtp__param p[4];
	int rc;

	memset(out, 0, sizeof(*out));
	oc.out = out;
	p[0] = p_text(node_id);
	p[1] = p_time(now ? now : vtp_now_ms(), t);
	p[2] = p_text(t);
	p[3] = p_text(t);
	snprintf(sql, sizeof(sql),
		 "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
		 " claimed_by = ?, claimed_at = ?, updated_at = ?"
		 " WHERE id = (SELECT id FROM jobs WHERE state = 'queued'"
		 " AND run_after <= ? ORDER BY run_after, id LIMIT 1%s)"
		 " AND state = 'queued'"
		 " RETURNING id, recording_id, attempts",
		 s->ops->claim_lock);
	rc = query(s, sql, p, 4, read_job, &oc, NULL);
	if (rc)
		return rc;
	return oc.found ? 0 : VTP_ENOTFOUND;
}

typedef struct candidates_ctx {
	int (*fn)(void *ctx, const vtp_job_candidate *c);
	void *ctx;
} candidates_ctx;

static int read_candidate(void *ctx, const vtp__row *row)
{
	candidates_ctx *cc = ctx;
	vtp_job_candidate c;

	memset(&c, 0, sizeof(c));
	col_id(row, 0, c.id);
	col_id(row, 1, c.recording_id);
	c.run_after = col_time(row, 2);
	c.width = (int)col_int(row, 3);
	c.height = (int)col_int(row, 4);
	c.fps = (int)col_int(row, 5);
	c.layout = col_text(row, 6);
	c.tracks = col_text(row, 7);
	return cc->fn(cc->ctx, &c);
}

int vtp_store_job_candidates(vtp_store *s, int64_t now, int limit,
			     int (*fn)(void *ctx, const vtp_job_candidate *c), void *ctx)
{
	char t[VTP_TIME_BUFLEN];
	candidates_ctx cc = {fn, ctx};
	vtp__param p[2];

	p[0] = p_time(now ? now : vtp_now_ms(), t);
	p[1] = p_int(limit > 0 ? limit : 1);
	/* no lock: a read to weigh them; the claim itself is guarded */
	return query(s,
		     "SELECT j.id, j.recording_id, j.run_after, r.resolution_width,"
		     " r.resolution_height, r.fps, r.layout, r.tracks"
		     " FROM jobs j JOIN recordings r ON r.id = j.recording_id"
		     " WHERE j.state = 'queued' AND j.run_after <= ?"
		     " ORDER BY j.run_after, j.id LIMIT ?",
		     p, 2, read_candidate, &cc, NULL);
}

int vtp_store_job_claim_id(vtp_store *s, const char *job_id, const char *node_id, int64_t now,
			   vtp_job *out)
{
	char jid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	one_ctx oc = {0};
	vtp__param p[4];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!norm_id(job_id, jid))
		return VTP_ENOTFOUND;
	oc.out = out;
	p[0] = p_text(node_id);
	p[1] = p_time(now ? now : vtp_now_ms(), t);
	p[2] = p_text(t);
	p[3] = p_text(jid);
	/* the state guard makes it atomic: of two claimers, the second updates
	 * no row (PostgreSQL re-checks the WHERE after the first commits) */
	rc = query(s,
		   "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
		   " claimed_by = ?, claimed_at = ?, updated_at = ?"
		   " WHERE id = ? AND state = 'queued'"
		   " RETURNING id, recording_id, attempts",
		   p, 4, read_job, &oc, NULL);
	if (rc)
		return rc;
	return oc.found ? 0 : VTP_ECONFLICT;
}

/* A running job back to the queue; give_back: its attempt does not count
 * (a shutdown cut it). */
static int job_requeue(vtp_store *s, const char *job_id, int64_t run_after, const char *error,
		       bool give_back)
{
	char jid[VTP_UUID_BUFLEN], t[2][VTP_TIME_BUFLEN];
	vtp__param p[4];

	if (!norm_id(job_id, jid))
		return VTP_ENOTFOUND;
	p[0] = p_time(run_after ? run_after : vtp_now_ms(), t[0]);
	p[1] = p_text(error);
	p[2] = p_time(vtp_now_ms(), t[1]);
	p[3] = p_text(jid);
	return update_guarded_row(s,
			  give_back
				  ? "UPDATE jobs SET state = 'queued', run_after = ?,"
				    " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
				    " last_error = ?, claimed_by = NULL, updated_at = ?"
				    " WHERE id = ? AND state = 'running'"
				  : "UPDATE jobs SET state = 'queued', run_after = ?,"
				    " last_error = ?, claimed_by = NULL, updated_at = ?"
				    " WHERE id = ? AND state = 'running'",
			  p, 4);
}

int vtp_store_job_retry(vtp_store *s, const char *job_id, int64_t run_after,
			const char *error)
{
	return job_requeue(s, job_id, run_after, error, false);
}

int vtp_store_job_release(vtp_store *s, const char *job_id, int64_t run_after,
			  const char *error)
{
	return job_requeue(s, job_id, run_after, error, true);
}

int vtp_store_job_finish(vtp_store *s, const char *job_id, bool ok, const char *error)
{
	char jid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[4];

	if (!norm_id(job_id, jid))
		return VTP_ENOTFOUND;
	p[0] = p_text(ok ? "done" : "failed");
	p[1] = p_text(error);
	p[2] = p_time(vtp_now_ms(), t);
	p[3] = p_text(jid);
	return update_guarded_row(s,
			  "UPDATE jobs SET state = ?, last_error = ?, updated_at = ?"
			  " WHERE id = ? AND state = 'running'",
			  p, 4);
}

int vtp_store_job_requeue_node(vtp_store *s, const char *node_id, int64_t now, int *count)
{
	char t[VTP_TIME_BUFLEN];
	int64_t changes = 0;
	vtp__param p[3];
	int rc;

	p[0] = p_time(now ? now : vtp_now_ms(), t);
	p[1] = p_text(t);
	p[2] = p_text(node_id);
	rc = query(s,
		   "UPDATE jobs SET state = 'queued', run_after = ?, updated_at = ?,"
		   " claimed_by = NULL WHERE state = 'running' AND claimed_by = ?",
		   p, 3, NULL, NULL, &changes);
	if (count)
		*count = (int)changes;
	return rc;
}

/* ---- room event journal ------------------------------------------------------- */

int vtp_store_room_event_add(vtp_store *s, const char *room_id, const char *event,
			     const char *payload)
{
	char id[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN], sql[160];
	vtp__param p[5];

	/* Where the database keeps the clock (PostgreSQL, shared by nodes),
	 * it stamps the event: every node reads the journal by the same
	 * clock, whatever its own says. */
	vtp_uuid_v7(id);
	p[0] = p_text(id);
	p[1] = p_text(room_id);
	p[2] = p_text(event);
	p[3] = p_text(payload);
	p[4] = p_time(vtp_now_ms(), t);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO room_events (id, room_id, event, payload, created_at)"
		 " VALUES (?, ?, ?, ?, %s)",
		 s->ops->now_expr ? s->ops->now_expr : "?");
	return query(s, sql, p, s->ops->now_expr ? 4 : 5, NULL, NULL, NULL);
}

typedef struct events_ctx {
	int (*fn)(void *ctx, const vtp_room_event *e);
	void *ctx;
} events_ctx;

static int read_room_event(void *ctx, const vtp__row *row)
{
	events_ctx *ec = ctx;
	vtp_room_event e;

	col_id(row, 0, e.id);
	e.room_id = col_text(row, 1);
	e.event = col_text(row, 2);
	e.payload = col_text(row, 3);
	e.created_at = col_time(row, 4);
	if (!e.room_id || !e.event || !e.payload)
		return 0;
	return ec->fn(ec->ctx, &e);
}

int vtp_store_room_events_since(vtp_store *s, int64_t since_ms,
				int (*fn)(void *ctx, const vtp_room_event *e), void *ctx)
{
	char t[VTP_TIME_BUFLEN];
	events_ctx ec = {fn, ctx};
	vtp__param p[1];

	p[0] = p_time(since_ms, t);
	return query(s,
		     "SELECT id, room_id, event, payload, created_at FROM room_events"
		     " WHERE created_at >= ? ORDER BY created_at, id",
		     p, 1, read_room_event, &ec, NULL);
}

int vtp_store_room_events_prune(vtp_store *s, int64_t before_ms)
{
	char t[VTP_TIME_BUFLEN];
	vtp__param p[1];

	p[0] = p_time(before_ms, t);
	return query(s, "DELETE FROM room_events WHERE created_at < ?", p, 1, NULL, NULL, NULL);
}

/* ---- room presence ------------------------------------------------------------- */

/* The time column's value: the database's clock where it keeps one (the
 * SQL gets now_expr), else this process's (a parameter). */
static const char *now_sql(vtp_store *s)
{
	return s->ops->now_expr ? s->ops->now_expr : "?";
}

int vtp_store_presence_put(vtp_store *s, const char *node_id, const char *sid,
			   const char *room_id, const char *user_id, const char *full_name,
			   const char *role)
{
	char t[VTP_TIME_BUFLEN], sql[512];
	vtp__param p[8];

	p[0] = p_text(node_id);
	p[1] = p_text(sid);
	p[2] = p_text(room_id);
	p[3] = p_text(user_id);
	p[4] = p_text(full_name ? full_name : "");
	p[5] = p_text(role ? role : "");
	p[6] = p[7] = p_time(vtp_now_ms(), t);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO room_presence (node_id, sid, room_id, user_id, full_name, role,"
		 " joined_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, %s, %s)"
		 " ON CONFLICT (room_id, node_id, sid) DO UPDATE SET user_id = excluded.user_id,"
		 " full_name = excluded.full_name, role = excluded.role, seen_at = excluded.seen_at",
		 now_sql(s), now_sql(s));
	return query(s, sql, p, s->ops->now_expr ? 6 : 8, NULL, NULL, NULL);
}

int vtp_store_presence_drop(vtp_store *s, const char *node_id, const char *sid,
			    const char *room_id)
{
	const char *sql = "DELETE FROM room_presence WHERE node_id = ? AND sid = ? AND room_id = ?";
	vtp__param p[3];
	int np = 3;

	p[0] = p_text(node_id);
	p[1] = p_text(sid);
	p[2] = p_text(room_id);
	if (!sid) {
		sql = "DELETE FROM room_presence WHERE node_id = ?";
		np = 1;
	} else if (!room_id) {
		sql = "DELETE FROM room_presence WHERE node_id = ? AND sid = ?";
		np = 2;
	}
	return query(s, sql, p, np, NULL, NULL, NULL);
}

typedef struct expired_ctx {
	int (*fn)(void *ctx, const char *room_id);
	void *ctx;
	int64_t n;
} expired_ctx;

static int read_expired(void *ctx, const vtp__row *row)
{
	expired_ctx *ec = ctx;
	const char *room = col_text(row, 0);

	ec->n++;
	return room ? ec->fn(ec->ctx, room) : 0;
}

int vtp_store_presence_heartbeat(vtp_store *s, const char *node_id, int64_t expire_ms,
				 int64_t *kept, int (*expired)(void *ctx, const char *room_id),
				 void *ctx)
{
	char t[VTP_TIME_BUFLEN], sql[160];
	expired_ctx ec = {expired, ctx, 0};
	int64_t now = 0;
	vtp__param p[2];
	int rc;

	*kept = 0;
	p[0] = p_time(vtp_now_ms(), t);
	p[1] = p_text(node_id);
	snprintf(sql, sizeof(sql), "UPDATE room_presence SET seen_at = %s WHERE node_id = ?",
		 now_sql(s));
	rc = s->ops->now_expr ? query(s, sql, p + 1, 1, NULL, NULL, kept)
			      : query(s, sql, p, 2, NULL, NULL, kept);
	if (rc == 0)
		rc = vtp_store_clock(s, &now);
	if (rc == 0) {
		p[0] = p_time(now - expire_ms, t);
		rc = query(s, "DELETE FROM room_presence WHERE seen_at < ? RETURNING room_id", p, 1,
			   read_expired, &ec, NULL);
	}
	return rc;
}

typedef struct presence_ctx {
	int (*fn)(void *ctx, const char *user_id, const char *full_name, const char *role);
	void *ctx;
} presence_ctx;

static int read_presence(void *ctx, const vtp__row *row)
{
	presence_ctx *pc = ctx;
	const char *id = col_text(row, 0);

	return id ? pc->fn(pc->ctx, id, col_text(row, 1), col_text(row, 2)) : 0;
}

int vtp_store_presence_members(vtp_store *s, const char *room_id, int limit, int64_t *count,
			       int (*fn)(void *ctx, const char *user_id, const char *full_name,
					 const char *role),
			       void *ctx)
{
	presence_ctx pc = {fn, ctx};
	vtp__param p[2];
	int rc;

	p[0] = p_text(room_id);
	p[1] = p_int(limit);
	*count = 0;
	rc = query(s, "SELECT COUNT(DISTINCT user_id) FROM room_presence WHERE room_id = ?", p, 1,
		   read_count, count, NULL);
	if (rc == 0)
		rc = query(s,
			   "SELECT user_id, MIN(full_name), MIN(role) FROM room_presence"
			   " WHERE room_id = ? GROUP BY user_id ORDER BY MIN(joined_at), user_id"
			   " LIMIT ?",
			   p, 2, read_presence, &pc, NULL);
	return rc;
}

/* ---- webhook outbox ------------------------------------------------------------ */

void vtp_outbox_item_clear(vtp_outbox_item *it)
{
	if (!it)
		return;
	vtp_free(it->event);
	vtp_free(it->body);
	memset(it, 0, sizeof(*it));
}

static int read_outbox(void *ctx, const vtp__row *row)
{
	one_ctx *oc = ctx;
	vtp_outbox_item *it = oc->out;

	col_id(row, 0, it->id);
	it->event = col_strdup(row, 1);
	it->body = col_strdup(row, 2);
	it->attempts = (int)col_int(row, 3);
	oc->found = true;
	return 0;
}

int vtp_store_outbox_add(vtp_store *s, const char *event, const char *body)
{
	char id[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[5];

	vtp_uuid_v7(id);
	p[0] = p_text(id);
	p[1] = p_text(event);
	p[2] = p_text(body);
	p[3] = p_time(vtp_now_ms(), t);
	p[4] = p_text(t);
	return query(s,
		     "INSERT INTO webhook_outbox (id, event, body, attempts, next_at, created_at)"
		     " VALUES (?, ?, ?, 0, ?, ?)",
		     p, 5, NULL, NULL, NULL);
}

int vtp_store_outbox_claim(vtp_store *s, int64_t now, int64_t lease_ms, vtp_outbox_item *out)
{
	char t[2][VTP_TIME_BUFLEN], sql[600];
	one_ctx oc = {0};
	vtp__param p[2];
	int rc;

	memset(out, 0, sizeof(*out));
	oc.out = out;
	if (!now)
		now = vtp_now_ms();
	p[0] = p_time(now + lease_ms, t[0]);
	p[1] = p_time(now, t[1]);
	snprintf(sql, sizeof(sql),
		 "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?"
		 " WHERE id = (SELECT id FROM webhook_outbox WHERE delivered_at IS NULL"
		 " AND next_at <= ? ORDER BY next_at, id LIMIT 1%s)"
		 " RETURNING id, event, body, attempts",
		 s->ops->claim_lock);
	rc = query(s, sql, p, 2, read_outbox, &oc, NULL);
	if (rc) {
		vtp_outbox_item_clear(out);
		return rc;
	}
	return oc.found ? 0 : VTP_ENOTFOUND;
}

int vtp_store_outbox_delivered(vtp_store *s, const char *id)
{
	char oid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[2];

	if (!norm_id(id, oid))
		return VTP_ENOTFOUND;
	p[0] = p_time(vtp_now_ms(), t);
	p[1] = p_text(oid);
	return update_guarded_row(s,
			  "UPDATE webhook_outbox SET delivered_at = ?, last_error = NULL"
			  " WHERE id = ? AND delivered_at IS NULL",
			  p, 2);
}

int vtp_store_outbox_retry(vtp_store *s, const char *id, int64_t next_at, const char *error)
{
	char oid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[3];

	if (!norm_id(id, oid))
		return VTP_ENOTFOUND;
	p[0] = p_time(next_at, t);
	p[1] = p_text(error);
	p[2] = p_text(oid);
	return update_guarded_row(s,
			  "UPDATE webhook_outbox SET next_at = ?, last_error = ?"
			  " WHERE id = ? AND delivered_at IS NULL",
			  p, 3);
}

int vtp_store_outbox_pending(vtp_store *s, int64_t *count)
{
	*count = 0;
	return query(s, "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL", NULL, 0,
		     read_count, count, NULL);
}

/* ---- tracks in segments, nodes (docs/ARCHITECTURE.md "Capture in segments") ---- */

int vtp_store_track_register(vtp_store *s, const char *recording_id, const char *track_id,
			     const char *node_id)
{
	char rid[VTP_UUID_BUFLEN], tid[VTP_UUID_BUFLEN];
	vtp__param p[3];

	if (!norm_id(recording_id, rid) || !norm_id(track_id, tid) || !node_id || !*node_id)
		return VTP_EINVAL;
	p[0] = p_text(rid);
	p[1] = p_text(tid);
	p[2] = p_text(node_id);
	return query(s,
		     "INSERT INTO recording_tracks (recording_id, track_id, node_id)"
		     " VALUES (?, ?, ?) ON CONFLICT (recording_id, track_id) DO NOTHING",
		     p, 3, NULL, NULL, NULL);
}

int vtp_store_track_commit(vtp_store *s, const char *recording_id, const char *track_id,
			   const char *node_id, int segment, bool last, int64_t now)
{
	char rid[VTP_UUID_BUFLEN], tid[VTP_UUID_BUFLEN], t[VTP_TIME_BUFLEN];
	vtp__param p[6];

	if (!norm_id(recording_id, rid) || !norm_id(track_id, tid) || !node_id || !*node_id ||
	    segment < 1)
		return VTP_EINVAL;
	p[0] = p_text(rid);
	p[1] = p_text(tid);
	p[2] = p_text(node_id);
	p[3] = p_int(segment);
	p[4] = last ? p_int(segment) : p_null();
	p[5] = p_time(now ? now : vtp_now_ms(), t);
	/* segments only grow: a late retry of an earlier one changes nothing */
	return query(s,
		     "INSERT INTO recording_tracks (recording_id, track_id, node_id, segments,"
		     " last_segment, committed_at) VALUES (?, ?, ?, ?, ?, ?)"
		     " ON CONFLICT (recording_id, track_id) DO UPDATE SET"
		     " segments = CASE WHEN excluded.segments > recording_tracks.segments"
		     "  THEN excluded.segments ELSE recording_tracks.segments END,"
		     " last_segment = COALESCE(excluded.last_segment, recording_tracks.last_segment),"
		     " committed_at = excluded.committed_at",
		     p, 6, NULL, NULL, NULL);
}

typedef struct track_state_ctx {
	int (*fn)(void *ctx, const vtp_track_state *t);
	void *ctx;
} track_state_ctx;

static int read_track_state(void *ctx, const vtp__row *row)
{
	track_state_ctx *c = ctx;
	vtp_track_state t;

	memset(&t, 0, sizeof(t));
	col_id(row, 0, t.track_id);
	snprintf(t.node_id, sizeof(t.node_id), "%s", col_text(row, 1) ? col_text(row, 1) : "");
	t.segments = (int)col_int(row, 2);
	t.last_segment = row->ops->is_null(row, 3) ? 0 : (int)col_int(row, 3);
	t.node_seen_ms = col_time(row, 4);
	return c->fn(c->ctx, &t);
}

int vtp_store_track_states(vtp_store *s, const char *recording_id,
			   int (*fn)(void *ctx, const vtp_track_state *t), void *ctx)
{
	char rid[VTP_UUID_BUFLEN];
	track_state_ctx c = {fn, ctx};
	vtp__param p[1];

	if (!norm_id(recording_id, rid))
		return VTP_ENOTFOUND;
	p[0] = p_text(rid);
	return query(s,
		     "SELECT t.track_id, t.node_id, t.segments, t.last_segment, n.seen_at"
		     " FROM recording_tracks t LEFT JOIN nodes n ON n.id = t.node_id"
		     " WHERE t.recording_id = ? ORDER BY t.track_id",
		     p, 1, read_track_state, &c, NULL);
}

int vtp_store_node_seen(vtp_store *s, const char *node_id, int64_t now)
{
	char t[VTP_TIME_BUFLEN];
	vtp__param p[2];

	if (!node_id || !*node_id)
		return VTP_EINVAL;
	p[0] = p_text(node_id);
	p[1] = p_time(now ? now : vtp_now_ms(), t);
	return query(s,
		     "INSERT INTO nodes (id, seen_at) VALUES (?, ?)"
		     " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
		     p, 2, NULL, NULL, NULL);
}

typedef struct text_ctx {
	char *text;
	bool found;
} text_ctx;

static int read_text(void *ctx, const vtp__row *row)
{
	text_ctx *c = ctx;

	c->found = true;
	c->text = col_text(row, 0) ? vtp_strdup(col_text(row, 0)) : NULL;
	return 0;
}

/* The tracks of both arrays, by trackId: those of add replace the same
 * track of have, the others are appended. */
static char *merge_tracks(const char *have, const char *add)
{
	json_t *h = have ? json_loads(have, 0, NULL) : NULL;
	json_t *a = json_loads(add, 0, NULL);
	json_t *out = json_array(), *e;
	size_t i, k;
	char *text;

	json_array_foreach(h, i, e) {
		const char *id = json_string_value(json_object_get(e, "trackId"));
		bool replaced = false;
		json_t *x;

		json_array_foreach(a, k, x) {
			const char *xid = json_string_value(json_object_get(x, "trackId"));

			if (id && xid && strcmp(id, xid) == 0)
				replaced = true;
		}
		if (!replaced)
			json_array_append(out, e);
	}
	json_array_foreach(a, k, e)
		json_array_append(out, e);
	text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	json_decref(h);
	json_decref(a);
	return text;
}

int vtp_store_recording_merge_tracks(vtp_store *s, const char *id, const char *tracks)
{
	char rid[VTP_UUID_BUFLEN];
	json_t *check;
	int rc = VTP_ECONFLICT;

	if (!norm_id(id, rid))
		return VTP_ENOTFOUND;
	check = json_loads(tracks, 0, NULL);
	if (!json_is_array(check)) {
		json_decref(check);
		return VTP_EINVAL;
	}
	json_decref(check);
	/* nodes ending their tracks of one recording at the same time: each
	 * writes only over what it read, else reads again */
	for (int attempt = 0; attempt < 20 && rc == VTP_ECONFLICT; attempt++) {
		text_ctx tc = {0};
		vtp__param p[3];
		int64_t changes = 0;
		char *merged;

		p[0] = p_text(rid);
		rc = query(s, "SELECT tracks FROM recordings WHERE id = ?", p, 1, read_text, &tc,
			   NULL);
		if (rc == 0 && !tc.found)
			rc = VTP_ENOTFOUND;
		if (rc) {
			vtp_free(tc.text);
			break;
		}
		merged = merge_tracks(tc.text, tracks);
		p[0] = p_text(merged);
		p[1] = p_text(rid);
		p[2] = p_text(tc.text);
		rc = query(s,
			   "UPDATE recordings SET tracks = ?"
			   " WHERE id = ? AND tracks IS NOT DISTINCT FROM ?",
			   p, 3, NULL, NULL, &changes);
		if (rc == 0 && changes == 0)
			rc = VTP_ECONFLICT;
		free(merged);
		vtp_free(tc.text);
	}
	return rc;
}

typedef struct pending_ctx {
	int (*fn)(void *ctx, const vtp_track_pending *t);
	void *ctx;
} pending_ctx;

static int read_track_pending(void *ctx, const vtp__row *row)
{
	pending_ctx *c = ctx;
	vtp_track_pending t;

	memset(&t, 0, sizeof(t));
	col_id(row, 0, t.recording_id);
	col_id(row, 1, t.track_id);
	t.room_id = col_text(row, 2);
	t.segments = (int)col_int(row, 3);
	t.last_segment = row->ops->is_null(row, 4) ? 0 : (int)col_int(row, 4);
	return t.room_id ? c->fn(c->ctx, &t) : 0;
}

int vtp_store_tracks_unfinished(vtp_store *s, const char *node_id,
				int (*fn)(void *ctx, const vtp_track_pending *t), void *ctx)
{
	pending_ctx c = {fn, ctx};
	vtp__param p[1];

	p[0] = p_text(node_id);
	return query(s,
		     "SELECT t.recording_id, t.track_id, r.room_id, t.segments, t.last_segment"
		     " FROM recording_tracks t JOIN recordings r ON r.id = t.recording_id"
		     " WHERE t.node_id = ? AND (t.last_segment IS NULL"
		     "  OR t.segments < t.last_segment)"
		     " ORDER BY t.recording_id, t.track_id",
		     p, 1, read_track_pending, &c, NULL);
}

/* ---- WHIP session owners ------------------------------------------------ */

int vtp_store_whip_owner_put(vtp_store *s, const char *session_id, const char *room_id,
			     const char *node_id, const char *node_url)
{
	char t[VTP_TIME_BUFLEN];
	vtp__param p[5];
	int rc;

	p[0] = p_text(session_id);
	rc = query(s, "DELETE FROM whip_sessions WHERE id = ?", p, 1, NULL, NULL, NULL);
	if (rc)
		return rc;
	p[1] = p_text(room_id);
	p[2] = p_text(node_id);
	p[3] = p_text(node_url);
	p[4] = p_time(vtp_now_ms(), t);
	return query(s,
		     "INSERT INTO whip_sessions (id, room_id, node_id, node_url, created_at)"
		     " VALUES (?, ?, ?, ?, ?)",
		     p, 5, NULL, NULL, NULL);
}

typedef struct owner_ctx {
	char *node_id;
	char *node_url;
} owner_ctx;

static int owner_row(void *ctx, const vtp__row *row)
{
	owner_ctx *o = ctx;

	vtp_free(o->node_id);
	vtp_free(o->node_url);
	o->node_id = col_strdup(row, 0);
	o->node_url = col_strdup(row, 1);
	return 0;
}

int vtp_store_whip_owner_get(vtp_store *s, const char *session_id, const char *room_id,
			     char node_id[VTP_UUID_BUFLEN], char **node_url)
{
	owner_ctx o = {NULL, NULL};
	vtp__param p[2];
	int rc;

	*node_url = NULL;
	node_id[0] = '\0';
	p[0] = p_text(session_id);
	p[1] = p_text(room_id);
	rc = query(s, "SELECT node_id, node_url FROM whip_sessions WHERE id = ? AND room_id = ?",
		   p, 2, owner_row, &o, NULL);
	if (rc)
		goto out;
	if (!o.node_id || !o.node_url || !vtp_uuid_parse(o.node_id, node_id)) {
		rc = VTP_ENOTFOUND;
		goto out;
	}
	*node_url = o.node_url;
	o.node_url = NULL;
out:
	vtp_free(o.node_id);
	vtp_free(o.node_url);
	return rc;
}

int vtp_store_whip_owner_remove(vtp_store *s, const char *session_id, const char *node_id)
{
	vtp__param p[2];

	p[0] = p_text(session_id);
	if (!node_id)
		return query(s, "DELETE FROM whip_sessions WHERE id = ?", p, 1, NULL, NULL, NULL);
	p[1] = p_text(node_id);
	return query(s, "DELETE FROM whip_sessions WHERE id = ? AND node_id = ?", p, 2, NULL,
		     NULL, NULL);
}

int vtp_store_whip_owner_remove_node(vtp_store *s, const char *node_id, int *count)
{
	int64_t changes = 0;
	vtp__param p[1];
	int rc;

	p[0] = p_text(node_id);
	rc = query(s, "DELETE FROM whip_sessions WHERE node_id = ?", p, 1, NULL, NULL, &changes);
	if (count)
		*count = (int)changes;
	return rc;
}
