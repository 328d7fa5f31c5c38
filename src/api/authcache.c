/* A cache of verified bearer tokens: most clients send the same token on
 * every request, so the signature check and the user lookup run once per
 * token every AUTH_RECHECK_MS instead of once per request. A hit needs the
 * exact token bytes (no hash-only match), an unexpired exp, and a user
 * snapshot younger than AUTH_RECHECK_MS: a deleted or changed user is
 * noticed within that time. Slots are locked individually. */
#include "api_int.h"

#include <pthread.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/mem.h"

#define AUTH_SLOTS 1024 /* power of two */
#define AUTH_TOKEN_MAX 1024
#define AUTH_RECHECK_MS 2000

typedef struct auth_slot {
	pthread_mutex_t mu;
	size_t len;            /* 0: empty */
	char token[AUTH_TOKEN_MAX];
	int64_t exp_s;
	int64_t checked_ms;
	vtp_user user;         /* without the password hash */
} auth_slot;

struct vtp__authcache {
	auth_slot slots[AUTH_SLOTS];
};

static void user_copy(vtp_user *dst, const vtp_user *src)
{
	memcpy(dst->id, src->id, sizeof(dst->id));
	dst->email = vtp_strdup(src->email);
	dst->full_name = vtp_strdup(src->full_name);
	dst->role = vtp_strdup(src->role);
	dst->password_hash = NULL;
	dst->created_at = src->created_at;
}

vtp__authcache *vtp__authcache_new(void)
{
	vtp__authcache *c = vtp_calloc(1, sizeof(*c));

	for (int i = 0; i < AUTH_SLOTS; i++)
		pthread_mutex_init(&c->slots[i].mu, NULL);
	return c;
}

void vtp__authcache_free(vtp__authcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < AUTH_SLOTS; i++) {
		vtp_user_clear(&c->slots[i].user);
		pthread_mutex_destroy(&c->slots[i].mu);
	}
	vtp_free(c);
}

int vtp__authcache_get(vtp__authcache *c, const char *token, int64_t now_ms, vtp_user *out)
{
	size_t len = strlen(token);
	auth_slot *s;
	int rc = VTP_ENOTFOUND;

	if (len == 0 || len >= AUTH_TOKEN_MAX)
		return rc;
	s = &c->slots[vtp_fnv1a(token, len) & (AUTH_SLOTS - 1)];
	pthread_mutex_lock(&s->mu);
	if (s->len == len && memcmp(s->token, token, len) == 0 &&
	    s->exp_s > now_ms / 1000 && now_ms - s->checked_ms < AUTH_RECHECK_MS &&
	    now_ms >= s->checked_ms) {
		user_copy(out, &s->user);
		rc = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void vtp__authcache_put(vtp__authcache *c, const char *token, int64_t exp_s,
			int64_t now_ms, const vtp_user *u)
{
	size_t len = strlen(token);
	auth_slot *s;

	if (len == 0 || len >= AUTH_TOKEN_MAX)
		return;
	s = &c->slots[vtp_fnv1a(token, len) & (AUTH_SLOTS - 1)];
	pthread_mutex_lock(&s->mu);
	vtp_user_clear(&s->user);
	memcpy(s->token, token, len);
	s->len = len;
	s->exp_s = exp_s;
	s->checked_ms = now_ms;
	user_copy(&s->user, u);
	pthread_mutex_unlock(&s->mu);
}
