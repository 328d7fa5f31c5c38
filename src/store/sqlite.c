/* SQLite backend of the store's DB layer (vtp__sqlite_ops). One sqlite3
 * handle per pool slot, opened NOMUTEX (the pool guarantees one thread at a
 * time) in WAL mode with synchronous=NORMAL, foreign keys on and a 10 s busy
 * timeout. Statements are prepared once per connection (PERSISTENT) and
 * cached by SQL text; after each use they are reset and their bindings
 * cleared. Constraint violations map to VTP_ECONFLICT (unique) or
 * VTP_EINVAL (check, foreign key, not null); anything else is logged once
 * and returned as VTP_EDB. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/db_int.h"

typedef struct sqlite_conn {
	sqlite3 *db;
	vtp__stmt_cache cache;
} sqlite_conn;

static int map_error(sqlite3 *db, int rc, const char *what)
{
	int ext = db ? sqlite3_extended_errcode(db) : rc;

	switch (ext) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return VTP_ECONFLICT;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_FOREIGNKEY:
	case SQLITE_CONSTRAINT_NOTNULL:
	case SQLITE_CONSTRAINT_DATATYPE:
		VTP_DEBUG("sqlite: %s: %s", what, db ? sqlite3_errmsg(db) : "");
		return VTP_EINVAL;
	default:
		break;
	}
	VTP_ERROR("sqlite: %s: %s", what,
		  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return VTP_EUNAVAIL;
	return VTP_EDB;
}

/* Creates the parent directories of path (mode 0700) when missing. */
static void make_parent_dirs(const char *path)
{
	char *dir = vtp_strdup(path);

	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			break;
		*p = '/';
	}
	vtp_free(dir);
}

/* Before the library initialises: no memory statistics. With them on, every
 * sqlite3_malloc takes one process-wide mutex, and that mutex was a fifth of
 * the CPU time of concurrent list requests. */
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void configure_library(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sqlite_connect(const char *path, void **out, char *err,
			  size_t errlen)
{
	static const char setup[] = "PRAGMA journal_mode=WAL;"
				    "PRAGMA synchronous=NORMAL;"
				    "PRAGMA foreign_keys=ON;"
				    "PRAGMA mmap_size=268435456;";
	sqlite_conn *c = NULL;
	char *msg = NULL;
	struct stat st;
	int fd, rc;

	if (!*path) {
		snprintf(err, errlen, "sqlite: empty database path");
		return VTP_EINVAL;
	}
	make_parent_dirs(path);
	/* Create the file ourselves so it is 0600 from the start (SQLite gives
	 * the -wal and -shm files the same mode), but only when it does not
	 * exist yet. Closing any descriptor of a file drops every POSIX lock
	 * this process holds on it, those of its open connections included;
	 * another process (a compose child, the CLI) closing its connection
	 * could then believe it was the last one, checkpoint and delete the
	 * WAL while this process goes on appending commits to it: lost at the
	 * next start. When the file does not exist, no connection of ours has
	 * it open. */
	if (stat(path, &st) != 0) {
		fd = errno == ENOENT ? open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
		if (fd < 0 && errno != EEXIST) {
			snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
				 strerror(errno));
			return VTP_EUNAVAIL;
		}
		if (fd >= 0)
			close(fd);
	}

	c = vtp_calloc(1, sizeof(*c));
	pthread_once(&config_once, configure_library);
	rc = sqlite3_open_v2(path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
			 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 10000);
	/* Switching a new file to WAL while other connections open it can
	 * fail with SQLITE_BUSY without consulting the busy handler: retry
	 * for up to ~10 s, like the busy timeout would. */
	for (int attempt = 0;; attempt++) {
		rc = sqlite3_exec(c->db, setup, NULL, NULL, &msg);
		if ((rc & 0xff) != SQLITE_BUSY || attempt >= 1000)
			break;
		sqlite3_free(msg);
		msg = NULL;
		sqlite3_sleep(10);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "sqlite: %s: %s", path,
			 msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		goto fail;
	}
	vtp__stmt_cache_init(&c->cache);
	*out = c;
	return 0;

fail:
	sqlite3_close(c->db);
	vtp_free(c);
	return VTP_EUNAVAIL;
}

static void finalize_stmt(void *stmt)
{
	sqlite3_finalize(stmt);
}

static void sqlite_disconnect(void *conn)
{
	sqlite_conn *c = conn;

	if (!c)
		return;
	vtp__stmt_cache_free(&c->cache, finalize_stmt);
	sqlite3_close(c->db);
	vtp_free(c);
}

static int bind_params(sqlite_conn *c, sqlite3_stmt *st,
		       const vtp__param *params, int nparams)
{
	int rc = SQLITE_OK;

	if (sqlite3_bind_parameter_count(st) != nparams) {
		VTP_ERROR("sqlite: statement expects %d parameters, got %d",
			  sqlite3_bind_parameter_count(st), nparams);
		return VTP_EINTERNAL;
	}
	for (int i = 0; i < nparams && rc == SQLITE_OK; i++) {
		const vtp__param *p = &params[i];

		switch (p->type) {
		case VTP__PARAM_INT64:
			rc = sqlite3_bind_int64(st, i + 1, p->i);
			break;
		case VTP__PARAM_DOUBLE:
			rc = sqlite3_bind_double(st, i + 1, p->d);
			break;
		case VTP__PARAM_TEXT:
			rc = p->s ? sqlite3_bind_text(st, i + 1, p->s, -1,
						      SQLITE_STATIC)
				  : sqlite3_bind_null(st, i + 1);
			break;
		default:
			rc = sqlite3_bind_null(st, i + 1);
			break;
		}
	}
	return rc == SQLITE_OK ? 0 : map_error(c->db, rc, "bind");
}

static int sqlite_query(void *conn, const char *sql, const vtp__param *params,
			int nparams, vtp__row_fn fn, void *ctx,
			int64_t *changes)
{
	sqlite_conn *c = conn;
	sqlite3_stmt *st = vtp__stmt_cache_get(&c->cache, sql);
	vtp__row row = {.ops = &vtp__sqlite_ops};
	int rc, ret = 0;

	if (!st) {
		rc = sqlite3_prepare_v3(c->db, sql, -1,
					SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK)
			return map_error(c->db, rc, "prepare");
		vtp__stmt_cache_put(&c->cache, sql, st);
	}
	ret = bind_params(c, st, params, nparams);
	if (ret)
		goto out;
	row.handle = st;
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			if (fn && (ret = fn(ctx, &row)) != 0)
				goto out;
			row.index++;
			continue;
		}
		if (rc == SQLITE_DONE)
			break;
		ret = map_error(c->db, rc, "query");
		goto out;
	}
	if (changes)
		*changes = sqlite3_changes64(c->db);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static int sqlite_exec(void *conn, const char *sql)
{
	sqlite_conn *c = conn;
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);

	sqlite3_free(msg); /* the same text is in sqlite3_errmsg() */
	return rc == SQLITE_OK ? 0 : map_error(c->db, rc, "exec");
}

static bool sqlite_col_is_null(const vtp__row *row, int col)
{
	return sqlite3_column_type(row->handle, col) == SQLITE_NULL;
}

static const char *sqlite_col_text(const vtp__row *row, int col)
{
	return (const char *)sqlite3_column_text(row->handle, col);
}

static int64_t sqlite_col_int64(const vtp__row *row, int col)
{
	return sqlite3_column_int64(row->handle, col);
}

static double sqlite_col_dbl(const vtp__row *row, int col)
{
	return sqlite3_column_double(row->handle, col);
}

const vtp__db_ops vtp__sqlite_ops = {
	.name = "sqlite",
	.connect = sqlite_connect,
	.disconnect = sqlite_disconnect,
	.query = sqlite_query,
	.exec = sqlite_exec,
	.is_null = sqlite_col_is_null,
	.text = sqlite_col_text,
	.int64 = sqlite_col_int64,
	.dbl = sqlite_col_dbl,
	/* IMMEDIATE takes the write lock now, so a second migrator waits
	 * (busy timeout) instead of failing to upgrade a read lock. */
	.migrate_begin = "BEGIN IMMEDIATE",
	.claim_lock = "",
	.migrations = vtp__sqlite_migrations,
};
