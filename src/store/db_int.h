/* Private database layer of the store (never included outside src/store/).
 * Each backend (sqlite.c, postgres.c) fills one vtp__db_ops table: connect,
 * run one parameterised statement with a row callback, run a parameterless
 * script, and read columns of a row. store.c writes every query once in a
 * common SQL subset with `?` placeholders; times cross this layer as the text
 * of vtp_time_format() in both directions. Also here: the per-connection
 * prepared-statement cache both backends use, and the embedded migrations. */
#ifndef VTP_STORE_DB_INT_H
#define VTP_STORE_DB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VTP__DB_MAX_PARAMS 32

enum vtp__param_type {
	VTP__PARAM_NULL = 0,
	VTP__PARAM_INT64,
	VTP__PARAM_DOUBLE,
	VTP__PARAM_TEXT,
};

typedef struct vtp__param {
	enum vtp__param_type type;
	int64_t i;
	double d;
	const char *s; /* borrowed for the duration of the call */
} vtp__param;

struct vtp__db_ops;

/* One result row, valid only inside the row callback. */
typedef struct vtp__row {
	const struct vtp__db_ops *ops;
	void *handle; /* sqlite3_stmt * or PGresult * */
	int index;    /* row number (PostgreSQL) */
} vtp__row;

/* Returns 0 to continue, a negative VTP_E* code to stop the query with it. */
typedef int (*vtp__row_fn)(void *ctx, const vtp__row *row);

typedef struct vtp__db_ops {
	const char *name; /* "sqlite" | "postgres" */
	/* target: a file path (SQLite) or a libpq URL. err gets a one-line
	 * reason without secrets. VTP_EUNAVAIL when the DB cannot be reached. */
	int (*connect)(const char *target, void **conn, char *err, size_t errlen);
	void (*disconnect)(void *conn);
	/* Runs one statement (prepared once per connection and cached). fn may
	 * be NULL; changes (may be NULL) receives the rows affected. */
	int (*query)(void *conn, const char *sql, const vtp__param *params,
		     int nparams, vtp__row_fn fn, void *ctx, int64_t *changes);
	/* Runs a parameterless script of one or more statements (DDL,
	 * BEGIN/COMMIT). */
	int (*exec)(void *conn, const char *sql);
	bool (*is_null)(const vtp__row *row, int col);
	const char *(*text)(const vtp__row *row, int col); /* NULL if NULL */
	int64_t (*int64)(const vtp__row *row, int col);
	double (*dbl)(const vtp__row *row, int col);
	/* Script opening a migration transaction that excludes other
	 * migrators (other processes included) until COMMIT/ROLLBACK. */
	const char *migrate_begin;
	/* Appended to the sub-select that picks a job to claim: row locks that
	 * let concurrent claimers skip each other ("" where writes are
	 * serialised anyway, as on SQLite). */
	const char *claim_lock;
	/* NULL-terminated; migrations[i] is version i + 1. */
	const char *const *migrations;
	/* The database's clock as an SQL expression where times are stamped
	 * by the database rather than by this process (PostgreSQL, shared by
	 * nodes whose clocks differ); NULL: the process stamps them (SQLite,
	 * one machine). */
	const char *now_expr;
	/* The change feed (PostgreSQL; NULL elsewhere): a dedicated
	 * connection that LISTENs on channel. listen_wait waits up to
	 * timeout_ms and returns how many notifications arrived from
	 * sessions for which own(ctx, pid) is false (0 on a timeout), or
	 * VTP_EUNAVAIL once the connection is lost (close it and open
	 * another). backend_pid: the server process of a pooled connection
	 * (0 if unknown). */
	int (*listen_open)(const char *target, const char *channel, void **conn, char *err,
			   size_t errlen);
	int (*listen_wait)(void *conn, int timeout_ms, bool (*own)(void *ctx, int pid), void *ctx);
	void (*listen_close)(void *conn);
	int (*backend_pid)(void *conn);
} vtp__db_ops;

extern const vtp__db_ops vtp__sqlite_ops;
extern const vtp__db_ops vtp__postgres_ops;

extern const char *const vtp__sqlite_migrations[];
extern const char *const vtp__postgres_migrations[];

/* ---- prepared-statement cache (one per connection, not thread-safe) ---- */

typedef struct vtp__stmt_entry {
	struct vtp__stmt_entry *next;
	uint64_t hash;
	char *sql;
	void *stmt;
} vtp__stmt_entry;

typedef struct vtp__stmt_cache {
	vtp__stmt_entry **buckets;
	size_t nbuckets;
	size_t count;
} vtp__stmt_cache;

void vtp__stmt_cache_init(vtp__stmt_cache *c);
void *vtp__stmt_cache_get(const vtp__stmt_cache *c, const char *sql);
/* Takes ownership of stmt; copies sql. */
void vtp__stmt_cache_put(vtp__stmt_cache *c, const char *sql, void *stmt);
/* Drops every entry, calling free_stmt (may be NULL) on each stmt. */
void vtp__stmt_cache_clear(vtp__stmt_cache *c, void (*free_stmt)(void *));
/* clear, then release the table itself. */
void vtp__stmt_cache_free(vtp__stmt_cache *c, void (*free_stmt)(void *));

#endif
