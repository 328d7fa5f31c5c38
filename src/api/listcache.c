/* A cache of rendered list responses. A class's page of recordings is asked
 * for again and again (every student's page load, every refresh) while it
 * changes a few times an hour, so GET /api/v1/recordings keeps the exact
 * bytes of its last answers (pages without an active recording, whose live
 * track statistics change without a write), keyed by everything the answer
 * depends on:
 * the caller's id and role and the normalised query. An entry is served only
 * while the store's generation (vtp_store_generation) is the one read
 * before its query ran, so any committed start, stop, delete, restore,
 * share or participant change makes every entry stale at once; the next
 * request renders afresh. Backends that cannot promise a generation
 * (PostgreSQL, shared between nodes) report 0 and are never cached.
 *
 * Direct-mapped slots, each with its own lock; a body is kept only up to
 * LIST_BODY_MAX bytes, so the whole cache stays under slots × that. */
#include "api_int.h"

#include <pthread.h>
#include <string.h>

#include "core/mem.h"

#define LIST_SLOTS 256 /* power of two */
#define LIST_KEY_MAX 512
#define LIST_BODY_MAX (64 * 1024)

typedef struct list_slot {
	pthread_mutex_t mu;
	uint64_t generation; /* 0: empty */
	size_t key_len;
	char key[LIST_KEY_MAX];
	size_t body_len;
	char *body;
} list_slot;

struct vtp__listcache {
	list_slot slots[LIST_SLOTS];
};

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

vtp__listcache *vtp__listcache_new(void)
{
	vtp__listcache *c = vtp_calloc(1, sizeof(*c));

	for (int i = 0; i < LIST_SLOTS; i++)
		pthread_mutex_init(&c->slots[i].mu, NULL);
	return c;
}

void vtp__listcache_free(vtp__listcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < LIST_SLOTS; i++) {
		vtp_free(c->slots[i].body);
		pthread_mutex_destroy(&c->slots[i].mu);
	}
	vtp_free(c);
}

/* Appends a length-prefixed field so that no two different queries can
 * spell the same key ("a|b" + "c" vs "a" + "b|c"). */
static bool key_add(char *key, size_t *len, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	int w;

	w = snprintf(key + *len, LIST_KEY_MAX - *len, "%c%zu:", s ? 's' : 'n', n);
	if (w < 0 || (size_t)w >= LIST_KEY_MAX - *len)
		return false;
	*len += (size_t)w;
	if (n >= LIST_KEY_MAX - *len)
		return false;
	memcpy(key + *len, s ? s : "", n);
	*len += n;
	key[*len] = '\0';
	return true;
}

bool vtp__listcache_key(const vtp_actor *who, const vtp_list_query *q,
			char key[VTP__LISTCACHE_KEY_MAX], size_t *len)
{
	char nums[64];

	*len = 0;
	key[0] = '\0';
	snprintf(nums, sizeof(nums), "%d,%d,%d", q->limit, q->offset, q->deleted ? 1 : 0);
	return key_add(key, len, who->user_id) && key_add(key, len, who->role) &&
	       key_add(key, len, nums) && key_add(key, len, q->room_id) &&
	       key_add(key, len, q->status);
}

static list_slot *slot_for(vtp__listcache *c, const char *key, size_t len)
{
	return &c->slots[fnv1a(key, len) & (LIST_SLOTS - 1)];
}

bool vtp__listcache_get(vtp__listcache *c, const char *key, size_t len,
			uint64_t generation, vtp_buf *out)
{
	list_slot *s;
	bool hit = false;

	if (generation == 0)
		return false;
	s = slot_for(c, key, len);
	pthread_mutex_lock(&s->mu);
	if (s->generation == generation && s->key_len == len &&
	    memcmp(s->key, key, len) == 0)
		hit = vtp_buf_append(out, s->body, s->body_len) == 0;
	pthread_mutex_unlock(&s->mu);
	return hit;
}

void vtp__listcache_put(vtp__listcache *c, const char *key, size_t len,
			uint64_t generation, const char *body, size_t body_len)
{
	list_slot *s;
	char *copy;

	if (generation == 0 || body_len > LIST_BODY_MAX || len >= LIST_KEY_MAX)
		return;
	copy = vtp_malloc(body_len ? body_len : 1);
	memcpy(copy, body, body_len);
	s = slot_for(c, key, len);
	pthread_mutex_lock(&s->mu);
	vtp_free(s->body);
	s->body = copy;
	s->body_len = body_len;
	memcpy(s->key, key, len);
	s->key_len = len;
	s->generation = generation;
	pthread_mutex_unlock(&s->mu);
}
