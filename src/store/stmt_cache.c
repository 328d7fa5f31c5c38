/* The per-connection prepared-statement cache of the store backends: a small
 * chained hash table from SQL text to a backend statement handle. Statements
 * are prepared once per connection and reused for its lifetime, so the hot
 * path (get by id) costs one hash of the SQL text and no parse. */
#include "store/db_int.h"

#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

void vtp__stmt_cache_init(vtp__stmt_cache *c)
{
	c->nbuckets = 64;
	c->count = 0;
	c->buckets = vtp_calloc(c->nbuckets, sizeof(*c->buckets));
}

void *vtp__stmt_cache_get(const vtp__stmt_cache *c, const char *sql)
{
	uint64_t h = vtp_fnv1a(sql, strlen(sql));
	vtp__stmt_entry *e;

	for (e = c->buckets[h % c->nbuckets]; e; e = e->next)
		if (e->hash == h && strcmp(e->sql, sql) == 0)
			return e->stmt;
	return NULL;
}

static void grow(vtp__stmt_cache *c)
{
	size_t n = c->nbuckets * 2;
	vtp__stmt_entry **b = vtp_calloc(n, sizeof(*b));

	for (size_t i = 0; i < c->nbuckets; i++) {
		vtp__stmt_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash % n];
			b[e->hash % n] = e;
		}
	}
	vtp_free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

void vtp__stmt_cache_put(vtp__stmt_cache *c, const char *sql, void *stmt)
{
	vtp__stmt_entry *e = vtp_malloc(sizeof(*e));

	if (c->count + 1 > c->nbuckets)
		grow(c);
	e->hash = vtp_fnv1a(sql, strlen(sql));
	e->sql = vtp_strdup(sql);
	e->stmt = stmt;
	e->next = c->buckets[e->hash % c->nbuckets];
	c->buckets[e->hash % c->nbuckets] = e;
	c->count++;
}

void vtp__stmt_cache_clear(vtp__stmt_cache *c, void (*free_stmt)(void *))
{
	if (!c->buckets)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		vtp__stmt_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (free_stmt)
				free_stmt(e->stmt);
			vtp_free(e->sql);
			vtp_free(e);
		}
		c->buckets[i] = NULL;
	}
	c->count = 0;
}

void vtp__stmt_cache_free(vtp__stmt_cache *c, void (*free_stmt)(void *))
{
	vtp__stmt_cache_clear(c, free_stmt);
	VTP_FREE(&c->buckets);
	c->nbuckets = 0;
}
