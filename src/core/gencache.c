/* See gencache.h. The slot index is the FNV-1a hash of the key. */
#include "gencache.h"

#include <pthread.h>
#include <string.h>

#include "hash.h"
#include "mem.h"

typedef struct slot {
	pthread_mutex_t mu;
	uint64_t generation; /* 0: empty */
	size_t key_len;
	char key[VTP_GENCACHE_KEY_MAX];
	unsigned char tag[VTP_GENCACHE_TAG_MAX];
	size_t body_len;
	char *body;
} slot;

struct vtp_gencache {
	size_t mask;
	size_t body_max;
	slot *slots;
};

vtp_gencache *vtp_gencache_new(size_t slots, size_t body_max)
{
	vtp_gencache *c = vtp_calloc(1, sizeof(*c));
	size_t n = 1;

	while (n < slots)
		n <<= 1;
	c->mask = n - 1;
	c->body_max = body_max;
	c->slots = vtp_calloc(n, sizeof(*c->slots));
	for (size_t i = 0; i < n; i++)
		pthread_mutex_init(&c->slots[i].mu, NULL);
	return c;
}

void vtp_gencache_free(vtp_gencache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i <= c->mask; i++) {
		vtp_free(c->slots[i].body);
		pthread_mutex_destroy(&c->slots[i].mu);
	}
	vtp_free(c->slots);
	vtp_free(c);
}

bool vtp_gencache_get(vtp_gencache *c, const char *key, size_t key_len, uint64_t generation,
		      vtp_buf *out, void *tag, size_t tag_len)
{
	slot *s;
	bool hit = false;

	if (!c || generation == 0 || key_len >= VTP_GENCACHE_KEY_MAX || tag_len > VTP_GENCACHE_TAG_MAX)
		return false;
	s = &c->slots[vtp_fnv1a(key, key_len) & c->mask];
	pthread_mutex_lock(&s->mu);
	if (s->generation == generation && s->key_len == key_len &&
	    memcmp(s->key, key, key_len) == 0 && vtp_buf_append(out, s->body, s->body_len) == 0) {
		if (tag_len)
			memcpy(tag, s->tag, tag_len);
		hit = true;
	}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

void vtp_gencache_put(vtp_gencache *c, const char *key, size_t key_len, uint64_t generation,
		      const char *body, size_t body_len, const void *tag, size_t tag_len)
{
	slot *s;
	char *copy;

	if (!c || generation == 0 || body_len > c->body_max || key_len >= VTP_GENCACHE_KEY_MAX ||
	    tag_len > VTP_GENCACHE_TAG_MAX)
		return;
	copy = vtp_malloc(body_len ? body_len : 1);
	memcpy(copy, body, body_len);
	s = &c->slots[vtp_fnv1a(key, key_len) & c->mask];
	pthread_mutex_lock(&s->mu);
	vtp_free(s->body);
	s->body = copy;
	s->body_len = body_len;
	memcpy(s->key, key, key_len);
	s->key_len = key_len;
	memset(s->tag, 0, sizeof(s->tag));
	if (tag_len)
		memcpy(s->tag, tag, tag_len);
	s->generation = generation;
	pthread_mutex_unlock(&s->mu);
}
