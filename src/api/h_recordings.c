/* Handlers for /api/v1/recordings: they translate HTTP into calls of the
 * recording service (src/recording) and its results into JSON. Both the
 * RESTful paths and the seed's ?id= aliases land on the same code. */
#include "api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/timeutil.h"

static void reply_and_clear(vtp_req *r, vtp_fail *fail)
{
	vtp__reply_fail(r, fail);
	vtp_fail_clear(fail);
}

/* The ?id= of the seed's aliases; replies 400 and returns NULL if missing. */
static const char *alias_id(vtp_req *r)
{
	const char *id = vtp__query(r, "id");

	if (!id || !*id) {
		vtp__reply_error(r, 400, "invalid_input", "id", "the id query parameter is required");
		return NULL;
	}
	return id;
}

/* Parses an optional non-negative integer query parameter within bounds. */
static bool query_int(vtp_req *r, const char *name, int def, int min, int max, int *out)
{
	const char *v = vtp__query(r, name);
	char *end;
	long n;

	*out = def;
	if (!v)
		return true;
	errno = 0;
	n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max || (*v < '0' || *v > '9')) {
		vtp__reply_error(r, 400, "invalid_input", name,
				 "%s must be an integer between %d and %d", name, min, max);
		return false;
	}
	*out = (int)n;
	return true;
}

#define RESPONSE_MAX (64u << 20)

static void reply_recording(vtp_req *r, int status, vtp_recording *rec)
{
	vtp_buf b;
	vtp_jw w;

	vtp_buf_init(&b, RESPONSE_MAX);
	vtp_jw_init(&w, &b);
	vtp_recording_write(&w, rec);
	vtp_recording_clear(rec);
	vtp__reply_buf(r, status, &b);
}

void vtp__h_start(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_start_request req;
	vtp_recording rec;
	char started[VTP_TIME_BUFLEN];

	if (vtp_start_request_parse(r->json, &req, &fail) ||
	    vtp_recordings_start(r->api->cfg.recordings, &r->actor, &req, &rec, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	vtp_time_format(rec.created_at, started);
	vtp__reply_json(r, 201, json_pack("{ss ss ss ss so}", "recordingId", rec.id,
					  "status", rec.status, "startedAt", started,
					  "title", rec.title, "recording", vtp_recording_json(&rec)));
	vtp_recording_clear(&rec);
}

static void stop(vtp_req *r, const char *id)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_recording rec;

	if (vtp_recordings_stop(r->api->cfg.recordings, &r->actor, id, &rec, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	/* 202: capture ended, the database has not taken the stop yet */
	reply_recording(r, vtp_recordings_stop_pending(r->api->cfg.recordings, rec.id) ? 202 : 200,
			&rec);
}

void vtp__h_stop(vtp_req *r) { stop(r, r->params[0]); }

void vtp__h_stop_alias(vtp_req *r)
{
	const char *id = alias_id(r);

	if (id)
		stop(r, id);
}

static void get(vtp_req *r, const char *id)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_buf b;

	vtp_buf_init(&b, RESPONSE_MAX);
	if (vtp_recordings_get_json(r->api->cfg.recordings, &r->actor, id, &b, &fail)) {
		vtp_buf_free(&b);
		reply_and_clear(r, &fail);
		return;
	}
	vtp__reply_buf(r, 200, &b);
}

void vtp__h_get(vtp_req *r) { get(r, r->params[0]); }

void vtp__h_get_alias(vtp_req *r)
{
	const char *id = alias_id(r);

	if (id)
		get(r, id);
}

/* A page holds signed media URLs: it is kept only while they are the ones
 * this moment would give (their expiry moves every 5 minutes). */
static bool add_expiry(vtp_req *r, char *key, size_t *len)
{
	int n = snprintf(key + *len, VTP_GENCACHE_KEY_MAX - *len, "|%lld",
			 (long long)vtp_recordings_media_expiry(r->api->cfg.recordings));

	if (n < 0 || (size_t)n >= VTP_GENCACHE_KEY_MAX - *len)
		return false;
	*len += (size_t)n;
	return true;
}

void vtp__h_list(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_list_query q;
	vtp_recording *arr = NULL;
	size_t n = 0;
	int64_t total = 0;
	const char *deleted;
	vtp_buf b;
	vtp_jw w;
	char key[VTP_GENCACHE_KEY_MAX];
	size_t key_len = 0;
	uint64_t gen = 0;
	vtp_gencache *cache = r->api->listcache;

	memset(&q, 0, sizeof(q));
	if (!query_int(r, "limit", 10, 1, 100, &q.limit) ||
	    !query_int(r, "offset", 0, 0, 1000000000, &q.offset))
		return;
	q.room_id = vtp__query(r, "room_id");
	q.status = vtp__query(r, "status");
	deleted = vtp__query(r, "deleted");
	if (deleted) {
		if (strcmp(deleted, "true") == 0 || strcmp(deleted, "1") == 0) {
			q.deleted = true;
		} else if (strcmp(deleted, "false") != 0 && strcmp(deleted, "0") != 0) {
			vtp__reply_error(r, 400, "invalid_input", "deleted", "deleted must be true or false");
			return;
		}
	}
	vtp_buf_init(&b, RESPONSE_MAX);
	/* The generation is read before the query: a change committed while
	 * it runs leaves this answer tagged as already stale. */
	if (cache && vtp__list_key(&r->actor, &q, key, &key_len) &&
	    add_expiry(r, key, &key_len)) {
		gen = vtp_store_generation(r->api->cfg.store);
		if (vtp_gencache_get(cache, key, key_len, gen, &b, NULL, 0)) {
			vtp__reply_buf(r, 200, &b);
			return;
		}
	}
	if (vtp_recordings_list(r->api->cfg.recordings, &r->actor, &q, &arr, &n, &total, &fail)) {
		vtp_buf_free(&b);
		reply_and_clear(r, &fail);
		return;
	}
	vtp_jw_init(&w, &b);
	vtp_jw_object_begin(&w);
	vtp_jw_key(&w, "recordings");
	vtp_jw_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		/* an active recording's live track statistics change without
		 * a write: such a page is never kept */
		if (vtp_recording_is_active(&arr[i]))
			gen = 0;
		vtp_recordings_write(r->api->cfg.recordings, &r->actor, &arr[i], &w);
	}
	vtp_jw_array_end(&w);
	vtp_jw_key(&w, "count");
	vtp_jw_int(&w, (long long)n);
	vtp_jw_key(&w, "total");
	vtp_jw_int(&w, total);
	vtp_jw_key(&w, "limit");
	vtp_jw_int(&w, q.limit);
	vtp_jw_key(&w, "offset");
	vtp_jw_int(&w, q.offset);
	vtp_jw_object_end(&w);
	vtp_recording_free_array(arr, n);
	if (gen)
		vtp_gencache_put(cache, key, key_len, gen, b.data, b.len, NULL, 0);
	vtp__reply_buf(r, 200, &b);
}

static void delete_recording(vtp_req *r, const char *id)
{
	vtp_fail fail = VTP_FAIL_INIT;
	char when[VTP_TIME_BUFLEN], canonical[VTP_UUID_BUFLEN];
	int64_t at = 0;

	if (vtp_recordings_delete(r->api->cfg.recordings, &r->actor, id, &at, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	/* the id as every other answer spells it, whatever case the path used */
	if (!vtp_uuid_parse(id, canonical))
		snprintf(canonical, sizeof(canonical), "%s", id);
	vtp_time_format(at, when);
	vtp__reply_json(r, 200, json_pack("{sb ss ss}", "success", 1, "recordingId", canonical,
					  "deletedAt", when));
}

void vtp__h_delete(vtp_req *r) { delete_recording(r, r->params[0]); }

void vtp__h_delete_alias(vtp_req *r)
{
	const char *id = alias_id(r);

	if (id)
		delete_recording(r, id);
}

void vtp__h_restore(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_recording rec;

	if (vtp_recordings_restore(r->api->cfg.recordings, &r->actor, r->params[0], &rec, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	reply_recording(r, 200, &rec);
}

/* 202: queued again; the Recording shows it stopped (or already
 * processing, when a worker was quick). */
void vtp__h_retry(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_recording rec;

	if (vtp_recordings_retry(r->api->cfg.recordings, &r->actor, r->params[0], &rec, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	reply_recording(r, 202, &rec);
}

void vtp__h_participants(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_participant *arr = NULL;
	vtp_recording rec;
	size_t n = 0;
	json_t *list;

	if (vtp_recordings_participants(r->api->cfg.recordings, &r->actor, r->params[0],
					&arr, &n, &rec, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = vtp_participant_json(&arr[i]);

		vtp_participant_add_media(o, arr[i].peer_id, &rec);
		json_array_append_new(list, o);
	}
	vtp_participant_free_array(arr, n);
	vtp_recording_clear(&rec);
	vtp__reply_json(r, 200, json_pack("{so sI}", "participants", list, "count", (json_int_t)n));
}

void vtp__h_shares_list(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_share *arr = NULL;
	size_t n = 0;
	json_t *list;

	if (vtp_recordings_shares(r->api->cfg.recordings, &r->actor, r->params[0], &arr, &n, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, vtp_share_json(&arr[i]));
	vtp_share_free_array(arr, n);
	vtp__reply_json(r, 200, json_pack("{so sI}", "shares", list, "count", (json_int_t)n));
}

void vtp__h_share_create(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_share sh;
	bool created = false;

	memset(&sh, 0, sizeof(sh));
	if (vtp_recordings_share(r->api->cfg.recordings, &r->actor, r->params[0], r->json,
				 &sh, &created, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	vtp__reply_json(r, created ? 201 : 200, vtp_share_json(&sh));
	vtp_share_clear(&sh);
}

void vtp__h_share_delete(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;

	if (vtp_recordings_unshare(r->api->cfg.recordings, &r->actor, r->params[0],
				   r->params[1], &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	vtp__reply_json(r, 200, json_pack("{sb ss}", "success", 1, "shareId", r->params[1]));
}

void vtp__h_access_log(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_access_entry *arr = NULL;
	size_t n = 0;
	int64_t total = 0;
	int limit, offset;
	json_t *list;

	if (!query_int(r, "limit", 100, 1, 1000, &limit) ||
	    !query_int(r, "offset", 0, 0, 1000000000, &offset))
		return;
	if (vtp_recordings_access_log(r->api->cfg.recordings, &r->actor, r->params[0], limit,
				      offset, &arr, &n, &total, &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, vtp_access_entry_json(&arr[i]));
	vtp_access_entry_free_array(arr, n);
	vtp__reply_json(r, 200, json_pack("{so sI sI si si}", "entries", list,
					  "count", (json_int_t)n, "total", (json_int_t)total,
					  "limit", limit, "offset", offset));
}

void vtp__h_track_add(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_buf b;

	if (!r->api->cfg.ingest) {
		vtp__reply_error(r, 503, "unavailable", NULL, "media ingest is not running");
		return;
	}
	vtp_buf_init(&b, 4096);
	if (vtp_ingest_add_track(r->api->cfg.ingest, &r->actor, r->params[0], r->json, &b, &fail)) {
		vtp_buf_free(&b);
		reply_and_clear(r, &fail);
		return;
	}
	vtp__reply_buf(r, 201, &b);
}

void vtp__h_track_end(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;

	if (!r->api->cfg.ingest) {
		vtp__reply_error(r, 503, "unavailable", NULL, "media ingest is not running");
		return;
	}
	if (vtp_ingest_end_track(r->api->cfg.ingest, &r->actor, r->params[0], r->params[1], &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	vtp__reply_json(r, 200, json_pack("{sb ss}", "success", 1, "trackId", r->params[1]));
}
