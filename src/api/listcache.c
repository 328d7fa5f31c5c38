/* Rendered list responses. A class's page of recordings is asked for again
 * and again (every student's page load, every refresh) while it changes a
 * few times an hour, so GET /api/v1/recordings keeps the exact bytes of its
 * last answers (pages without an active recording, whose live track
 * statistics change without a write), keyed by everything the answer
 * depends on: the caller's id and role and the normalised query. An entry
 * is served only while the store's generation (vtp_store_generation) is the
 * one read before its query ran, so any committed start, stop, delete,
 * restore, share or participant change makes every entry stale at once;
 * the next request renders afresh. On PostgreSQL, shared between nodes,
 * the generation also moves on every other node's write (LISTEN/NOTIFY,
 * vtp_store_watch) and is 0, so nothing is kept or served, while that
 * feed is down. The pages live in a vtp_gencache (src/core/gencache.h)
 * that server.c creates; this file spells their keys. */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

/* Appends a length-prefixed field so that no two different queries can
 * spell the same key ("a|b" + "c" vs "a" + "b|c"). */
static bool key_add(char *key, size_t *len, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	int w;

	w = snprintf(key + *len, VTP_GENCACHE_KEY_MAX - *len, "%c%zu:", s ? 's' : 'n', n);
	if (w < 0 || (size_t)w >= VTP_GENCACHE_KEY_MAX - *len)
		return false;
	*len += (size_t)w;
	if (n >= VTP_GENCACHE_KEY_MAX - *len)
		return false;
	memcpy(key + *len, s ? s : "", n);
	*len += n;
	key[*len] = '\0';
	return true;
}

bool vtp__list_key(const vtp_actor *who, const vtp_list_query *q,
		   char key[VTP_GENCACHE_KEY_MAX], size_t *len)
{
	char nums[64];

	*len = 0;
	key[0] = '\0';
	snprintf(nums, sizeof(nums), "%d,%d,%d", q->limit, q->offset, q->deleted ? 1 : 0);
	return key_add(key, len, who->user_id) && key_add(key, len, who->role) &&
	       key_add(key, len, nums) && key_add(key, len, q->room_id) &&
	       key_add(key, len, q->status);
}
