/* Recording service: validation, lifecycle transitions, the permission
 * checks (via the auth policy; per endpoint in docs/openapi.yaml) and the
 * audit trail. Invisible recordings are reported as not found, never as
 * forbidden. */
#include "recording.h"
#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/error.h"
#include "core/gencache.h"
#include "core/jsonval.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/path.h"
#include "core/timeutil.h"
#include "core/utf8.h"

struct vtp_recordings {
	vtp_store *store;
	vtp_audit *audit;
	char *dir;
	vtp_media_hooks media; /* all NULL without ingest */
	const char *node_id;
	vtp_gencache *rendered; /* finished recordings' JSON by id */
	void (*job_queued)(void *ctx); /* wakes local workers; may be NULL */
	void *job_ctx;
	void (*room_event)(void *ctx); /* wakes the local events thread; may be NULL */
	void *room_event_ctx;
	bool webhooks;             /* status changes go to the webhook outbox */
	const unsigned char *media_key; /* signs media URLs; NULL: no URLs */
	size_t media_key_len;
	int64_t media_ttl_s;
	/* Stops the database did not take (full disk): the captures ended,
	 * the transition is retried every STOP_RETRY_MS by stop_thread. */
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	struct pending_stop *pending; /* stop_mu */
	bool stop_quit;               /* stop_mu */
	bool stop_started;            /* stop_mu */
	pthread_t stop_thread;
};

typedef struct pending_stop {
	struct pending_stop *next;
	char id[VTP_UUID_BUFLEN];
	int64_t at;
	double duration;
	char *tracks;   /* final statistics, may be NULL */
	char *warnings; /* JSON array text, may be NULL */
	vtp_actor who;  /* ip and user_agent owned here */
	int last_rc;
} pending_stop;

#define STOP_RETRY_MS 1000

#define RENDERED_SLOTS 4096
#define RENDERED_BODY_MAX (64 * 1024)

static void stop_retry_shutdown(vtp_recordings *svc);

vtp_recordings *vtp_recordings_new(vtp_store *store, const char *recordings_dir)
{
	vtp_recordings *svc = vtp_calloc(1, sizeof(*svc));

	svc->store = store;
	svc->audit = vtp_audit_new(store);
	svc->dir = vtp_strdup(recordings_dir);
	svc->rendered = vtp_gencache_new(RENDERED_SLOTS, RENDERED_BODY_MAX);
	pthread_mutex_init(&svc->stop_mu, NULL);
	pthread_cond_init(&svc->stop_cv, NULL);
	return svc;
}

void vtp_recordings_free(vtp_recordings *svc)
{
	if (!svc)
		return;
	stop_retry_shutdown(svc);
	vtp_audit_free(svc->audit);
	vtp_gencache_free(svc->rendered);
	vtp_free(svc->dir);
	vtp_free(svc);
}

void vtp_recordings_set_media_urls(vtp_recordings *svc, const unsigned char *key, size_t keylen,
				   int64_t ttl_s)
{
	svc->media_key = key;
	svc->media_key_len = keylen;
	svc->media_ttl_s = ttl_s > 0 ? ttl_s : 3600;
}

int64_t vtp_recordings_media_expiry(vtp_recordings *svc)
{
	return vtp_media_token_expiry(vtp_now_ms() / 1000, svc->media_ttl_s);
}

void vtp_recordings_media_token(vtp_recordings *svc, vtp_media_scope scope, const char *id,
				const char *user_id, char out[VTP_MEDIA_TOKEN_BUFLEN])
{
	out[0] = '\0';
	if (svc->media_key)
		vtp_media_token_sign(svc->media_key, svc->media_key_len, scope, id, user_id,
				     vtp_recordings_media_expiry(svc), out);
}

/* The three media URLs of a done recording for `who` (level: the share
 * level when known, -1 to look it up; the file only to those who may
 * download it). Nulls for anything else. */
static void write_urls(vtp_recordings *svc, const vtp_actor *who, const vtp_recording *r,
		       int level, vtp_jw *w)
{
	char tok[VTP_MEDIA_TOKEN_BUFLEN], dl[256], hls[256], th[256];
	bool starter = strcmp(r->started_by, who->user_id) == 0;
	bool can_download;

	if (!svc->media_key || strcmp(r->status, "done") != 0 || r->deleted_at) {
		vtp_recording_write_urls(w, NULL, NULL, NULL);
		return;
	}
	if (level < 0) {
		level = VTP_PERM_NONE;
		if (!starter && !vtp_role_is(who->role, VTP_ROLE_ADMIN) &&
		    vtp_store_share_level(svc->store, r->id, who->user_id, who->role, &level) != 0)
			level = VTP_PERM_NONE;
	}
	can_download = vtp_policy_check(who->role, starter, level, VTP_ACT_DOWNLOAD) == 0;
	vtp_recordings_media_token(svc, VTP_MEDIA_VIEW, r->id, who->user_id, tok);
	snprintf(hls, sizeof(hls), "/api/v1/recordings/%s/hls/index.m3u8?token=%s", r->id, tok);
	snprintf(th, sizeof(th), "/api/v1/recordings/%s/thumbnail?token=%s", r->id, tok);
	if (can_download) {
		vtp_recordings_media_token(svc, VTP_MEDIA_DOWNLOAD, r->id, who->user_id, tok);
		snprintf(dl, sizeof(dl), "/api/v1/recordings/%s/download?token=%s", r->id, tok);
	}
	vtp_recording_write_urls(w, can_download ? dl : NULL, hls, th);
}

void vtp_recordings_write(vtp_recordings *svc, const vtp_actor *who, const vtp_recording *r,
			  vtp_jw *w)
{
	vtp_recording_write_fields(w, r);
	write_urls(svc, who, r, -1, w);
	vtp_jw_object_end(w);
}

vtp_store *vtp_recordings_store(vtp_recordings *svc)
{
	return svc->store;
}

uint64_t vtp_recordings_audit_lost(vtp_recordings *svc)
{
	return vtp_audit_lost(svc->audit);
}

bool vtp_recording_is_active(const vtp_recording *r)
{
	return strcmp(r->status, "recording") == 0 || strcmp(r->status, "pending") == 0;
}

/* ---- validation --------------------------------------------------------- */

static const char *const formats[] = {"webm", "mp4", NULL};
static const char *const video_codecs[] = {"vp8", "h264", NULL};
static const char *const audio_codecs[] = {"opus", "aac", NULL};
static const char *const layouts[] = {"auto", "grid", "speaker", "presentation", "screen",
					NULL};
static const char *const permissions[] = {"view", "download", "share", NULL};
static const char *const roles[] = {VTP_ROLE_ADMIN, VTP_ROLE_INSTRUCTOR, VTP_ROLE_STUDENT,
				      VTP_ROLE_SERVICE, NULL};

static const vtp_json_param start_params[] = {
	{"roomId", VTP_JV_STRING, true, 1, 255, NULL, true},
	{"title", VTP_JV_STRING, true, 1, 500, NULL, false},
	{"description", VTP_JV_STRING, false, 0, 10000, NULL, false},
	{"format", VTP_JV_STRING, false, 0, -1, formats, false},
	{"videoCodec", VTP_JV_STRING, false, 0, -1, video_codecs, false},
	{"audioCodec", VTP_JV_STRING, false, 0, -1, audio_codecs, false},
	{"bitrate", VTP_JV_INT, false, 100, 20000, NULL, false},
	{"layout", VTP_JV_STRING, false, 0, -1, layouts, false},
};

const char *vtp_output_check(const char **format, const char **video_codec,
			     const char **audio_codec, char *why, size_t whylen)
{
	bool webm;

	if (!*format)
		*format = "webm";
	webm = strcmp(*format, "webm") == 0;
	if (!webm && strcmp(*format, "mp4") != 0) {
		snprintf(why, whylen, "format %s is not supported (use webm or mp4)", *format);
		return "format";
	}
	if (!*video_codec)
		*video_codec = webm ? "vp8" : "h264";
	if (!*audio_codec)
		*audio_codec = webm ? "opus" : "aac";
	if (strcmp(*video_codec, "vp8") != 0 && strcmp(*video_codec, "h264") != 0) {
		snprintf(why, whylen, "videoCodec %s is not supported (use vp8 or h264)",
			 *video_codec);
		return "videoCodec";
	}
	if (strcmp(*audio_codec, "opus") != 0 && strcmp(*audio_codec, "aac") != 0) {
		snprintf(why, whylen, "audioCodec %s is not supported (use opus or aac)",
			 *audio_codec);
		return "audioCodec";
	}
	/* WebM carries VP8/VP9/AV1 and Opus/Vorbis only. MP4 takes either
	 * codec, but H.264+AAC is what every player opens. */
	if (webm && strcmp(*video_codec, "vp8") != 0) {
		snprintf(why, whylen, "videoCodec %s cannot be stored in webm (use vp8, or format mp4)",
			 *video_codec);
		return "videoCodec";
	}
	if (webm && strcmp(*audio_codec, "opus") != 0) {
		snprintf(why, whylen, "audioCodec %s cannot be stored in webm (use opus, or format mp4)",
			 *audio_codec);
		return "audioCodec";
	}
	if (!webm && strcmp(*video_codec, "h264") != 0) {
		snprintf(why, whylen, "videoCodec %s is not supported in mp4 (use h264, or format webm)",
			 *video_codec);
		return "videoCodec";
	}
	return NULL;
}

int vtp_start_request_parse(json_t *body, vtp_start_request *req, vtp_fail *fail)
{
	const char *field;
	char why[160];
	int rc;

	rc = vtp_json_validate(body, start_params,
			       sizeof(start_params) / sizeof(start_params[0]), fail);
	if (rc)
		return rc;
	memset(req, 0, sizeof(*req));
	req->room_id = vtp_json_str(body, "roomId");
	req->title = vtp_json_str(body, "title");
	req->description = vtp_json_str(body, "description");
	req->format = vtp_json_str(body, "format");
	req->video_codec = vtp_json_str(body, "videoCodec");
	req->audio_codec = vtp_json_str(body, "audioCodec");
	req->bitrate = (int)vtp_json_int(body, "bitrate", 2000);
	req->layout = vtp_json_str(body, "layout");
	if (!req->layout)
		req->layout = "auto";
	field = vtp_output_check(&req->format, &req->video_codec, &req->audio_codec, why,
				 sizeof(why));
	if (field)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", field, "%s", why);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static void audit(vtp_recordings *svc, const vtp_actor *who, const char *rec_id,
		  const char *type, json_t *detail)
{
	vtp_access_entry e;
	char *detail_text = NULL;
	int rc;

	memset(&e, 0, sizeof(e));
	vtp_uuid_v7(e.id);
	snprintf(e.recording_id, sizeof(e.recording_id), "%s", rec_id);
	e.accessed_by = who ? (char *)who->user_id : NULL;
	e.access_type = (char *)type;
	e.ip_address = who ? (char *)who->ip : NULL;
	e.user_agent = who ? (char *)who->user_agent : NULL;
	if (detail) {
		detail_text = json_dumps(detail, JSON_COMPACT);
		json_decref(detail);
	}
	e.detail = detail_text;
	e.accessed_at = vtp_now_ms();
	/* Views are the read path's only write: queued, not waited for. State
	 * changes are committed before the caller answers. */
	rc = vtp_audit_add(svc->audit, &e, strcmp(type, "view") != 0);
	if (rc)
		VTP_ERROR("audit entry %s for recording %s lost: %s", type, rec_id,
			  vtp_strerror(rc));
	free(detail_text);
}

/* A status change for the Socket.IO clients in the recording's room
 * (README "Real-time events"), into the room event journal that every server reads
 * (src/events/socketio.c). The payloads are the seed's. */
static void room_event(vtp_recordings *svc, const vtp_recording *r, const char *what,
		       int progress)
{
	char event[40];
	vtp_buf b;
	vtp_jw w;
	int rc;

	snprintf(event, sizeof(event), "recording-%s", what);
	vtp_buf_init(&b, 1 << 16);
	vtp_jw_init(&w, &b);
	vtp_jw_object_begin(&w);
	vtp_jw_key(&w, "recordingId");
	vtp_jw_string(&w, r->id);
	if (strcmp(what, "started") == 0) {
		vtp_jw_key(&w, "title");
		vtp_jw_string(&w, r->title);
		vtp_jw_key(&w, "startedBy");
		vtp_jw_string(&w, r->started_by);
		vtp_jw_key(&w, "timestamp");
		vtp_jw_time(&w, r->created_at);
	} else if (strcmp(what, "stopped") == 0) {
		vtp_jw_key(&w, "timestamp");
		vtp_jw_time(&w, r->stopped_at ? r->stopped_at : vtp_now_ms());
	} else if (strcmp(what, "progress") == 0) {
		vtp_jw_key(&w, "progress");
		vtp_jw_int(&w, progress);
	} else if (strcmp(what, "done") == 0) {
		vtp_jw_key(&w, "durationSeconds");
		vtp_jw_double(&w, r->duration_seconds);
		vtp_jw_key(&w, "fileSize");
		vtp_jw_int(&w, r->file_size);
	} else if (strcmp(what, "failed") == 0) {
		/* at most 1 KB, cut on a character boundary: the event stays JSON */
		char *error = vtp_utf8_sanitize(r->error ? r->error : "processing failed", 1024);

		vtp_jw_key(&w, "error");
		vtp_jw_string(&w, error);
		vtp_free(error);
	}
	vtp_jw_object_end(&w);
	rc = vtp_store_room_event_add(svc->store, r->room_id, event, b.data ? b.data : "{}");
	if (rc)
		VTP_WARN("recording %s: room event %s lost: %s", r->id, event, vtp_strerror(rc));
	else if (svc->room_event)
		svc->room_event(svc->room_event_ctx);
	vtp_buf_free(&b);
}

/* A status change as a webhook event (README "Webhooks"):
 * {"event":"recording.<what>","recording":{...as it is now},"timestamp"},
 * written to the outbox, from which src/events/webhook.c delivers it at
 * least once; and, except for deletions, as a room event. Written after
 * the change is committed: a crash in between loses the event, never
 * invents one. */
static void emit(vtp_recordings *svc, const char *id, const char *what)
{
	vtp_recording r;
	char event[40];
	vtp_buf b;
	vtp_jw w;
	int rc;

	rc = vtp_store_recording_get(svc->store, id, &r);
	if (rc) {
		VTP_ERROR("recording %s: event %s lost: %s", id, what, vtp_strerror(rc));
		return;
	}
	if (strcmp(what, "deleted") != 0)
		room_event(svc, &r, what, 0);
	if (!svc->webhooks) {
		vtp_recording_clear(&r);
		return;
	}
	snprintf(event, sizeof(event), "recording.%s", what);
	vtp_buf_init(&b, 1 << 22);
	vtp_jw_init(&w, &b);
	vtp_jw_object_begin(&w);
	vtp_jw_key(&w, "event");
	vtp_jw_string(&w, event);
	vtp_jw_key(&w, "recording");
	vtp_recording_write(&w, &r);
	vtp_jw_key(&w, "timestamp");
	vtp_jw_time(&w, vtp_now_ms());
	vtp_jw_object_end(&w);
	rc = vtp_store_outbox_add(svc->store, event, b.data ? b.data : "{}");
	if (rc)
		VTP_ERROR("recording %s: webhook event %s lost: %s", id, event, vtp_strerror(rc));
	vtp_buf_free(&b);
	vtp_recording_clear(&r);
}

/* A progress step, and its room event (recording-progress). */
static void progress_event(vtp_recordings *svc, const char *id, int percent)
{
	vtp_recording r;

	if (vtp_store_recording_get(svc->store, id, &r) != 0)
		return;
	room_event(svc, &r, "progress", percent);
	vtp_recording_clear(&r);
}

void vtp_recordings_set_webhooks(vtp_recordings *svc, bool on)
{
	svc->webhooks = on;
}

static int store_fail(vtp_fail *fail, int rc)
{
	if (rc == VTP_EUNAVAIL)
		return vtp_fail_set(fail, rc, "unavailable", NULL, "the database is unavailable");
	return vtp_fail_set(fail, rc == VTP_EDB ? rc : VTP_EINTERNAL, "internal", NULL,
			    "internal error (%s)", vtp_strerror(rc));
}

static int not_found(vtp_fail *fail)
{
	return vtp_fail_set(fail, VTP_ENOTFOUND, "not_found", NULL, "recording not found");
}

static const char *action_verb(vtp_action a)
{
	switch (a) {
	case VTP_ACT_VIEW: return "view";
	case VTP_ACT_DOWNLOAD: return "download";
	case VTP_ACT_STOP: return "stop";
	case VTP_ACT_DELETE: return "delete";
	case VTP_ACT_RESTORE: return "restore";
	case VTP_ACT_SHARE: return "share";
	case VTP_ACT_MANAGE_SHARES: return "manage the shares of";
	case VTP_ACT_ACCESS_LOG: return "read the access log of";
	case VTP_ACT_TRACKS: return "register tracks for";
	}
	return "access";
}

/* Loads a recording and checks that `who` may do `action` on it. A deleted
 * recording exists only for RESTORE (and only for its starter or an admin);
 * RESTORE of a live one is a conflict. */
/* As load_authorized, and *level_out receives the caller's share level
 * (VTP_PERM_SHARE for the starter and admins). */
static int load_authorized_level(vtp_recordings *svc, const vtp_actor *who,
				 const char *raw_id, vtp_action action,
				 vtp_recording *rec, int *level_out, vtp_fail *fail)
{
	char id[VTP_UUID_BUFLEN];
	int rc, level = VTP_PERM_NONE;
	bool starter, deleted;

	memset(rec, 0, sizeof(*rec));
	if (!raw_id || !vtp_uuid_parse(raw_id, id))
		return not_found(fail);
	rc = vtp_store_recording_get(svc->store, id, rec);
	if (rc == VTP_ENOTFOUND)
		return not_found(fail);
	if (rc)
		return store_fail(fail, rc);
	deleted = rec->deleted_at != 0;
	starter = strcmp(rec->started_by, who->user_id) == 0;
	/* a deleted recording still exists for its starter and admins: restore
	 * it, or be told (409) that deleting it again changes nothing */
	if (deleted && action != VTP_ACT_RESTORE && action != VTP_ACT_DELETE)
		goto invisible;
	if (!starter && !vtp_role_is(who->role, VTP_ROLE_ADMIN) && !deleted) {
		rc = vtp_store_share_level(svc->store, rec->id, who->user_id, who->role, &level);
		if (rc) {
			vtp_recording_clear(rec);
			return store_fail(fail, rc);
		}
	}
	rc = vtp_policy_check(who->role, starter, level, action);
	if (rc == VTP_ENOTFOUND)
		goto invisible;
	if (rc) {
		vtp_recording_clear(rec);
		return vtp_fail_set(fail, VTP_EFORBIDDEN, "forbidden", NULL,
				    "you may not %s this recording", action_verb(action));
	}
	if (action == VTP_ACT_RESTORE && !deleted) {
		vtp_recording_clear(rec);
		return vtp_fail_set(fail, VTP_ECONFLICT, "not_deleted", NULL,
				    "the recording is not deleted");
	}
	*level_out = starter || vtp_role_is(who->role, VTP_ROLE_ADMIN) ? VTP_PERM_SHARE : level;
	return 0;
invisible:
	vtp_recording_clear(rec);
	return not_found(fail);
}

static int load_authorized(vtp_recordings *svc, const vtp_actor *who,
			   const char *raw_id, vtp_action action,
			   vtp_recording *rec, vtp_fail *fail)
{
	int level;

	return load_authorized_level(svc, who, raw_id, action, rec, &level, fail);
}

int vtp_recordings_for_media(vtp_recordings *svc, const vtp_actor *who, const char *id,
			     vtp_action action, vtp_recording *out, vtp_fail *fail)
{
	int rc = load_authorized(svc, who, id, action, out, fail);

	if (rc)
		return rc;
	if (strcmp(out->status, "done") != 0 || !out->file_path) {
		char status[32];

		snprintf(status, sizeof(status), "%s", out->status);
		vtp_recording_clear(out);
		return vtp_fail_set(fail, VTP_ECONFLICT, "not_ready", NULL,
				    "the recording is %s; its media is available once it is done",
				    status);
	}
	return 0;
}

void vtp_recordings_audit_media(vtp_recordings *svc, const vtp_actor *who, const char *id,
				const char *type, json_t *detail)
{
	audit(svc, who, id, type, detail);
}

static int reload(vtp_recordings *svc, const char *id, vtp_recording *out, vtp_fail *fail)
{
	char copy[VTP_UUID_BUFLEN];
	int rc;

	snprintf(copy, sizeof(copy), "%s", id); /* id may point into *out */
	vtp_recording_clear(out);
	rc = vtp_store_recording_get(svc->store, copy, out);
	return rc ? store_fail(fail, rc) : 0;
}

/* mkdir -p with mode 0700 for the parts below the recordings dir. */
static int make_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return VTP_EIO;
}

/* A recording's folder, <recordings dir>/<encoded room>/<id>[/<sub>], each
 * level created 0700; out receives its path. The room id reaches the path
 * only through vtp_path_encode_component. */
static int recording_dir(vtp_recordings *svc, const char *room_id, const char *id,
			 const char *sub, char *out, size_t outlen)
{
	char room_dir[VTP_PATH_COMPONENT_MAX + 1];
	const char *parts[] = {room_dir, id, sub};
	size_t len;
	int n;

	vtp_path_encode_component(room_id, room_dir);
	n = snprintf(out, outlen, "%s", svc->dir);
	if (n < 0 || (size_t)n >= outlen)
		return VTP_ETOOBIG;
	if (make_dir(out))
		return VTP_EIO;
	len = (size_t)n;
	for (size_t i = 0; i < 3 && parts[i]; i++) {
		n = snprintf(out + len, outlen - len, "/%s", parts[i]);
		if (n < 0 || (size_t)n >= outlen - len)
			return VTP_ETOOBIG;
		len += (size_t)n;
		if (make_dir(out))
			return VTP_EIO;
	}
	return 0;
}

/* ---- operations --------------------------------------------------------- */

int vtp_recordings_start(vtp_recordings *svc, const vtp_actor *who,
			 const vtp_start_request *req, vtp_recording *out,
			 vtp_fail *fail)
{
	char active[VTP_UUID_BUFLEN];
	char path[4096];
	vtp_recording r;
	int rc;

	if (!vtp_policy_can_start(who->role))
		return vtp_fail_set(fail, VTP_EFORBIDDEN, "forbidden", NULL,
				    "only instructors and admins start recordings");
	memset(&r, 0, sizeof(r));
	vtp_uuid_v4(r.id);
	r.room_id = (char *)req->room_id;
	r.title = (char *)req->title;
	r.description = (char *)req->description;
	snprintf(r.started_by, sizeof(r.started_by), "%s", who->user_id);
	r.status = "recording";
	r.file_size = -1;
	r.duration_seconds = -1;
	r.format = (char *)req->format;
	r.video_codec = (char *)req->video_codec;
	r.audio_codec = (char *)req->audio_codec;
	r.resolution_width = 1280;
	r.resolution_height = 720;
	r.fps = 30;
	r.bitrate = req->bitrate;
	r.layout = (char *)req->layout;
	r.metadata = "{}";
	r.node_id = (char *)svc->node_id;
	r.created_at = vtp_now_ms();

	/* The capture folder: recordings/<encoded room>/<id>/, 0700. */
	if (recording_dir(svc, req->room_id, r.id, NULL, path, sizeof(path)) != 0) {
		VTP_ERROR("cannot create the recording folder under %s: %s", svc->dir, strerror(errno));
		return vtp_fail_set(fail, VTP_EIO, "storage_error", NULL,
				    "cannot create the recording's storage folder");
	}
	rc = vtp_store_recording_insert(svc->store, &r);
	if (rc == VTP_ECONFLICT) {
		rmdir(path);
		vtp_fail_set(fail, VTP_ECONFLICT, "room_busy", "roomId",
			     "the room already has an active recording");
		if (vtp_store_recording_active_in_room(svc->store, req->room_id, active) == 0)
			vtp_fail_extra(fail, "activeRecordingId", json_string(active));
		return VTP_ECONFLICT;
	}
	if (rc) {
		rmdir(path);
		return store_fail(fail, rc);
	}
	audit(svc, who, r.id, "start", json_pack("{ss}", "status", "recording"));
	emit(svc, r.id, "started");
	VTP_INFO("recording %s started in room of %zu chars by %s", r.id,
		 vtp_utf8_length(req->room_id), who->user_id);
	if (svc->media.recording_started)
		svc->media.recording_started(svc->media.ctx, r.id, req->room_id);
	memset(out, 0, sizeof(*out));
	return reload(svc, r.id, out, fail);
}

/* ---- warnings ------------------------------------------------------------ */

/* One warning per track that could not be written in full (notWritten*
 * in its statistics, see src/ingest): how much of which track is missing. */
static json_t *track_warning(json_t *t)
{
	json_int_t packets = json_integer_value(json_object_get(t, "notWrittenPackets"));
	double seconds = json_number_value(json_object_get(t, "notWrittenSeconds"));
	const char *reason = json_string_value(json_object_get(t, "notWrittenReason"));
	const char *name = json_string_value(json_object_get(t, "fullName"));
	const char *kind = json_string_value(json_object_get(t, "kind"));
	const char *track_id = json_string_value(json_object_get(t, "trackId"));
	const char *peer_id = json_string_value(json_object_get(t, "peerId"));
	bool full = reason && strcmp(reason, "disk_full") == 0;
	char msg[512];

	if (packets <= 0)
		return NULL;
	snprintf(msg, sizeof(msg),
		 "%s's %s track: %.1f s (%lld packets) not recorded because %s",
		 name ? name : "A participant", kind ? kind : "media", seconds,
		 (long long)packets,
		 full ? "the recordings disk was full" : "the recordings disk could not be written");
	return json_pack("{ss ss ss* ss* sf sI}", "code", full ? "disk_full" : "capture_write_failed",
			 "message", msg, "trackId", track_id, "peerId", peer_id,
			 "seconds", seconds, "packets", packets);
}

static bool same_warning(json_t *a, json_t *b)
{
	const char *ta = json_string_value(json_object_get(a, "trackId"));
	const char *tb = json_string_value(json_object_get(b, "trackId"));

	return json_equal(json_object_get(a, "code"), json_object_get(b, "code")) &&
	       ((!ta && !tb) || (ta && tb && strcmp(ta, tb) == 0));
}

/* Puts w into arr (stolen), replacing one with the same code and track. */
static void warnings_put(json_t *arr, json_t *w)
{
	size_t i;
	json_t *old;

	json_array_foreach(arr, i, old) {
		if (same_warning(old, w)) {
			json_array_set_new(arr, i, w);
			return;
		}
	}
	json_array_append_new(arr, w);
}

/* The warnings text with those of the tracks' statistics merged in (and
 * extra, stolen, when not NULL). NULL when there are none. */
static char *warnings_merge(const char *warnings, const char *tracks, json_t *extra)
{
	json_t *arr = warnings ? json_loads(warnings, 0, NULL) : NULL;
	json_t *ts = tracks ? json_loads(tracks, 0, NULL) : NULL;
	json_t *t;
	size_t i;
	char *out = NULL;

	if (!json_is_array(arr)) {
		json_decref(arr);
		arr = json_array();
	}
	json_array_foreach(ts, i, t) {
		json_t *w = track_warning(t);

		if (w)
			warnings_put(arr, w);
	}
	if (extra)
		warnings_put(arr, extra);
	if (json_array_size(arr)) {
		char *text = json_dumps(arr, JSON_COMPACT);

		out = vtp_strdup(text);
		free(text);
	}
	json_decref(ts);
	json_decref(arr);
	return out;
}

/* Saves rec's warnings with one for each track the disk did not take in
 * full (from tracks, the tracks' statistics). */
static void save_track_warnings(vtp_recordings *svc, const char *id, const char *old,
				const char *tracks)
{
	char *warnings = warnings_merge(old, tracks, NULL);
	int rc;

	if (!warnings)
		return;
	rc = vtp_store_recording_set_warnings(svc->store, id, warnings);
	if (rc)
		VTP_ERROR("recording %s: warnings not saved: %s", id, vtp_strerror(rc));
	VTP_WARN("recording %s: %s", id, warnings);
	vtp_free(warnings);
}

/* After a recording left pending/recording: its captures end (logs synced)
 * and their statistics are kept, with a warning for each track the disk
 * did not take in full; everyone still present leaves. The status changed
 * first, so no track can be added behind this. */
static void end_media(vtp_recordings *svc, const vtp_recording *rec, int64_t at,
		      const char *tracks_known)
{
	char *tracks = NULL;
	int rc;

	if (tracks_known)
		tracks = vtp_strdup(tracks_known);
	else if (svc->media.end_recording)
		tracks = svc->media.end_recording(svc->media.ctx, rec->id);
	if (tracks) {
		/* merged: other nodes add the tracks they captured as they end them */
		rc = vtp_store_recording_merge_tracks(svc->store, rec->id, tracks);
		if (rc)
			VTP_ERROR("recording %s: track statistics not saved: %s", rec->id,
				  vtp_strerror(rc));
		save_track_warnings(svc, rec->id, rec->warnings, tracks);
		vtp_free(tracks);
	}
	rc = vtp_store_participant_left_all(svc->store, rec->id, at);
	if (rc)
		VTP_ERROR("recording %s: participants not closed: %s", rec->id, vtp_strerror(rc));
}

static pending_stop *find_pending(vtp_recordings *svc, const char *id)
{
	for (pending_stop *p = svc->pending; p; p = p->next)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

/* A stop the database has not taken yet: shown as stopped, with what the
 * server knows and a warning that it is not saved yet. True if r was one. */
static bool overlay_pending(vtp_recordings *svc, vtp_recording *r)
{
	pending_stop *p;
	char why[256];
	bool found = false;

	pthread_mutex_lock(&svc->stop_mu);
	p = find_pending(svc, r->id);
	if (p) {
		found = true;
		vtp_free(r->status);
		r->status = vtp_strdup("stopped");
		r->stopped_at = p->at;
		r->duration_seconds = p->duration;
		vtp_free(r->tracks);
		r->tracks = p->tracks ? vtp_strdup(p->tracks) : NULL;
		snprintf(why, sizeof(why),
			 "The stop is not saved yet: the database cannot be written (%s). The "
			 "server retries every second; capture has ended.",
			 vtp_strerror(p->last_rc));
		vtp_free(r->warnings);
		r->warnings = warnings_merge(p->warnings, NULL,
					     json_pack("{ss ss}", "code", "stop_pending", "message", why));
	}
	pthread_mutex_unlock(&svc->stop_mu);
	return found;
}

bool vtp_recordings_stop_pending(vtp_recordings *svc, const char *id)
{
	bool found;

	pthread_mutex_lock(&svc->stop_mu);
	found = find_pending(svc, id) != NULL;
	pthread_mutex_unlock(&svc->stop_mu);
	return found;
}

/* Active recordings show their tracks' live statistics, and warnings for
 * what the disk does not take right now. */
static void overlay_live(vtp_recordings *svc, vtp_recording *r)
{
	char *live, *warnings;

	if (!vtp_recording_is_active(r) || overlay_pending(svc, r) || !svc->media.live_tracks)
		return;
	live = svc->media.live_tracks(svc->media.ctx, r->id);
	if (live) {
		vtp_free(r->tracks);
		r->tracks = live;
		warnings = warnings_merge(r->warnings, live, NULL);
		if (warnings) {
			vtp_free(r->warnings);
			r->warnings = warnings;
		}
	}
}

/* A stopped recording goes to the processing queue (after its captures are
 * synced), and local workers are woken. A job already queued is fine; a
 * failure leaves it to the sweep that queues what waits without a job. */
static void queue_processing(vtp_recordings *svc, const char *id)
{
	int rc = vtp_store_job_enqueue(svc->store, id, 0, NULL);

	if (rc == VTP_ECONFLICT)
		return;
	if (rc) {
		VTP_ERROR("recording %s: processing not queued (%s); the next sweep queues it",
			  id, vtp_strerror(rc));
		return;
	}
	if (svc->job_queued)
		svc->job_queued(svc->job_ctx);
}

/* ---- stop, also when the database does not take it --------------------- */

/* The rest of a stop once the database has it. */
static void stop_finish(vtp_recordings *svc, const vtp_actor *who, const vtp_recording *rec,
			int64_t at, double duration, const char *tracks, bool deferred)
{
	audit(svc, who, rec->id, "stop",
	      deferred ? json_pack("{ss sb}", "status", "stopped", "deferred", true)
		       : json_pack("{ss}", "status", "stopped"));
	VTP_INFO("recording %s stopped after %.3f s%s", rec->id, duration,
		 deferred ? " (saved late: the database did not take it at first)" : "");
	end_media(svc, rec, at, tracks);
	emit(svc, rec->id, "stopped"); /* with the tracks' final statistics */
	queue_processing(svc, rec->id);
}

static void pending_free(pending_stop *p)
{
	if (!p)
		return;
	vtp_free(p->tracks);
	vtp_free(p->warnings);
	vtp_free((char *)p->who.ip);
	vtp_free((char *)p->who.user_agent);
	vtp_free(p);
}

/* Retries the transitions the database refused, until it takes them or
 * someone else ended the recording (a restart's recovery, a delete). */
static void *stop_thread_main(void *arg)
{
	vtp_recordings *svc = arg;

	pthread_setname_np(pthread_self(), "vtp-stop-retry");
	pthread_mutex_lock(&svc->stop_mu);
	while (!svc->stop_quit) {
		struct timespec until;
		pending_stop *p;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += STOP_RETRY_MS / 1000;
		pthread_cond_timedwait(&svc->stop_cv, &svc->stop_mu, &until);
		if (svc->stop_quit)
			break;
		/* one at a time, without the lock while the database works */
		for (p = svc->pending; p; p = p->next) {
			char id[VTP_UUID_BUFLEN];
			int64_t at = p->at;
			double duration = p->duration;
			vtp_recording rec;
			int rc;

			memcpy(id, p->id, sizeof(id));
			pthread_mutex_unlock(&svc->stop_mu);
			rc = vtp_store_recording_stop(svc->store, id, at, duration);
			pthread_mutex_lock(&svc->stop_mu);
			p = find_pending(svc, id);
			if (!p)
				break;
			if (rc != 0 && rc != VTP_ECONFLICT && rc != VTP_ENOTFOUND) {
				p->last_rc = rc;
				continue;
			}
			/* taken (or moot): off the list, then the rest */
			for (pending_stop **pp = &svc->pending; *pp; pp = &(*pp)->next) {
				if (*pp == p) {
					*pp = p->next;
					break;
				}
			}
			pthread_mutex_unlock(&svc->stop_mu);
			if (rc == 0) {
				memset(&rec, 0, sizeof(rec));
				memcpy(rec.id, id, sizeof(rec.id));
				rec.warnings = p->warnings;
				stop_finish(svc, &p->who, &rec, at, duration,
					    p->tracks ? p->tracks : "[]", true);
			} else {
				VTP_WARN("recording %s: a deferred stop was moot (%s)", id,
					 vtp_strerror(rc));
			}
			pending_free(p);
			pthread_mutex_lock(&svc->stop_mu);
			break; /* the list changed: start over next round */
		}
	}
	pthread_mutex_unlock(&svc->stop_mu);
	return NULL;
}

static void stop_retry_shutdown(vtp_recordings *svc)
{
	bool started;

	pthread_mutex_lock(&svc->stop_mu);
	svc->stop_quit = true;
	started = svc->stop_started;
	pthread_cond_broadcast(&svc->stop_cv);
	pthread_mutex_unlock(&svc->stop_mu);
	if (started)
		pthread_join(svc->stop_thread, NULL);
	while (svc->pending) {
		pending_stop *p = svc->pending;

		/* the next start's recovery stops it from its packet logs */
		VTP_WARN("recording %s: stop not saved before shutdown", p->id);
		svc->pending = p->next;
		pending_free(p);
	}
	pthread_cond_destroy(&svc->stop_cv);
	pthread_mutex_destroy(&svc->stop_mu);
}

/* The database refused the stop (full disk): the captures end now, since
 * the user asked for it and they are what fills the disk, and the
 * transition is retried in the background. rec shows the stop as known. */
static int stop_deferred(vtp_recordings *svc, const vtp_actor *who, vtp_recording *rec,
			 int64_t at, double duration, int store_rc)
{
	pending_stop *p = vtp_calloc(1, sizeof(*p));
	char *tracks = NULL;
	bool start = false;

	if (svc->media.end_recording)
		tracks = svc->media.end_recording(svc->media.ctx, rec->id);
	memcpy(p->id, rec->id, sizeof(p->id));
	p->at = at;
	p->duration = duration;
	p->tracks = tracks;
	p->warnings = warnings_merge(rec->warnings, tracks, NULL);
	p->who = *who;
	p->who.ip = who->ip ? vtp_strdup(who->ip) : NULL;
	p->who.user_agent = who->user_agent ? vtp_strdup(who->user_agent) : NULL;
	p->last_rc = store_rc;
	pthread_mutex_lock(&svc->stop_mu);
	if (find_pending(svc, rec->id)) { /* a second Stop meanwhile */
		pthread_mutex_unlock(&svc->stop_mu);
		pending_free(p);
		return 0;
	}
	p->next = svc->pending;
	svc->pending = p;
	if (!svc->stop_started && !svc->stop_quit) {
		start = pthread_create(&svc->stop_thread, NULL, stop_thread_main, svc) == 0;
		svc->stop_started = start;
		if (!start)
			VTP_ERROR("recording %s: cannot start the stop retry thread", rec->id);
	}
	pthread_cond_signal(&svc->stop_cv);
	pthread_mutex_unlock(&svc->stop_mu);
	VTP_WARN("recording %s: stop not saved (%s); capture ended, the stop is retried every "
		 "second", rec->id, vtp_strerror(store_rc));
	return 0;
}

/* Moves a live recording to stopped, with the server-measured duration. */
static int stop_locked(vtp_recordings *svc, const vtp_actor *who, vtp_recording *rec,
		       vtp_fail *fail)
{
	int64_t now = vtp_now_ms();
	double duration = (double)(now - rec->created_at) / 1000.0;
	int rc;

	if (duration < 0)
		duration = 0;
	if (vtp_recordings_stop_pending(svc, rec->id))
		return 0; /* stopped already, not saved yet: the same answer */
	rc = vtp_store_recording_stop(svc->store, rec->id, now, duration);
	if (rc == VTP_ECONFLICT)
		return vtp_fail_set(fail, VTP_ECONFLICT, "not_active", NULL,
				    "the recording is not active (status %s)", rec->status);
	if (rc == VTP_EDB || rc == VTP_EUNAVAIL || rc == VTP_EIO)
		return stop_deferred(svc, who, rec, now, duration, rc);
	if (rc)
		return store_fail(fail, rc);
	stop_finish(svc, who, rec, now, duration, NULL, false);
	return 0;
}

int vtp_recordings_stop(vtp_recordings *svc, const vtp_actor *who,
			const char *id, vtp_recording *out, vtp_fail *fail)
{
	int rc = load_authorized(svc, who, id, VTP_ACT_STOP, out, fail);

	if (rc)
		return rc;
	rc = stop_locked(svc, who, out, fail);
	if (rc) {
		vtp_recording_clear(out);
		return rc;
	}
	rc = reload(svc, out->id, out, fail);
	if (rc == 0)
		overlay_pending(svc, out);
	return rc;
}

int vtp_recordings_get(vtp_recordings *svc, const vtp_actor *who,
		       const char *id, vtp_recording *out, vtp_fail *fail)
{
	int rc = load_authorized(svc, who, id, VTP_ACT_VIEW, out, fail);

	if (rc)
		return rc;
	overlay_live(svc, out);
	audit(svc, who, out->id, "view", NULL);
	return 0;
}

int vtp_recordings_get_json(vtp_recordings *svc, const vtp_actor *who,
			    const char *id, vtp_buf *out, vtp_fail *fail)
{
	/* what a kept answer needs re-checked: the policy, for this caller */
	struct {
		char started_by[VTP_UUID_BUFLEN];
		bool done;
	} tag;
	char rid[VTP_UUID_BUFLEN];
	uint64_t gen = vtp_store_generation(svc->store);
	size_t mark = out->len;
	vtp_recording rec;
	vtp_jw w;
	int rc, level = VTP_PERM_NONE;

	if (id && vtp_uuid_parse(id, rid) &&
	    vtp_gencache_get(svc->rendered, rid, strlen(rid), gen, out, &tag, sizeof(tag))) {
		bool starter = strcmp(tag.started_by, who->user_id) == 0;

		/* starters and admins need no share lookup; anyone else takes
		 * the full path below */
		if (vtp_policy_check(who->role, starter, VTP_PERM_NONE, VTP_ACT_VIEW) == 0) {
			/* the kept text is the object without its URLs (which are
			 * the caller's own) and without its closing brace */
			vtp_jw_init(&w, out);
			vtp_jw_resume_object(&w);
			if (tag.done) {
				vtp_recording key_only;

				memset(&key_only, 0, sizeof(key_only));
				memcpy(key_only.id, rid, sizeof(key_only.id));
				memcpy(key_only.started_by, tag.started_by, sizeof(key_only.started_by));
				key_only.status = (char *)"done";
				write_urls(svc, who, &key_only, VTP_PERM_SHARE, &w);
			} else {
				vtp_recording_write_urls(&w, NULL, NULL, NULL);
			}
			vtp_jw_object_end(&w);
			audit(svc, who, rid, "view", NULL);
			return 0;
		}
		out->len = mark;
	}
	rc = load_authorized_level(svc, who, id, VTP_ACT_VIEW, &rec, &level, fail);
	if (rc)
		return rc;
	overlay_live(svc, &rec);
	audit(svc, who, rec.id, "view", NULL);
	vtp_jw_init(&w, out);
	vtp_recording_write_fields(&w, &rec);
	if (!vtp_recording_is_active(&rec) && !rec.deleted_at) {
		memset(&tag, 0, sizeof(tag));
		memcpy(tag.started_by, rec.started_by, sizeof(tag.started_by));
		tag.done = strcmp(rec.status, "done") == 0;
		vtp_gencache_put(svc->rendered, rec.id, strlen(rec.id), gen, out->data + mark,
				 out->len - mark, &tag, sizeof(tag));
	}
	write_urls(svc, who, &rec, level, &w);
	vtp_jw_object_end(&w);
	vtp_recording_clear(&rec);
	return 0;
}

static const char *const statuses[] = {"pending", "recording", "stopped",
				       "processing", "done", "failed", NULL};

int vtp_recordings_list(vtp_recordings *svc, const vtp_actor *who,
			const vtp_list_query *q, vtp_recording **out, size_t *n,
			int64_t *total, vtp_fail *fail)
{
	vtp_recording_filter f;
	int rc;

	if (q->status) {
		bool ok = false;

		for (const char *const *s = statuses; *s; s++)
			ok = ok || strcmp(*s, q->status) == 0;
		if (!ok)
			return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "status",
					    "status must be one of pending, recording, stopped, processing, done, failed");
	}
	if (q->room_id && (!*q->room_id || !vtp_utf8_valid(q->room_id, true) ||
			   vtp_utf8_length(q->room_id) > 255))
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "room_id",
				    "room_id must be 1..255 characters of UTF-8 text");
	memset(&f, 0, sizeof(f));
	f.room_id = q->room_id;
	f.status = q->status;
	f.deleted = q->deleted;
	f.viewer_id = who->user_id;
	f.viewer_role = who->role;
	f.viewer_is_admin = vtp_role_is(who->role, VTP_ROLE_ADMIN);
	f.limit = q->limit;
	f.offset = q->offset;
	rc = vtp_store_recording_list(svc->store, &f, out, n, total);
	if (rc)
		return store_fail(fail, rc);
	for (size_t i = 0; i < *n; i++)
		overlay_live(svc, &(*out)[i]);
	return 0;
}

int vtp_recordings_delete(vtp_recordings *svc, const vtp_actor *who,
			  const char *id, int64_t *deleted_at, vtp_fail *fail)
{
	vtp_recording rec;
	int64_t now;
	int rc = load_authorized(svc, who, id, VTP_ACT_DELETE, &rec, fail);

	if (rc)
		return rc;
	if (vtp_recording_is_active(&rec)) {
		rc = stop_locked(svc, who, &rec, fail);
		if (rc && rc != VTP_ECONFLICT) /* raced with another stop: fine */
			goto out;
		vtp_fail_clear(fail);
	}
	now = vtp_now_ms();
	rc = vtp_store_recording_soft_delete(svc->store, rec.id, now);
	if (rc == VTP_ECONFLICT) {
		rc = vtp_fail_set(fail, VTP_ECONFLICT, "already_deleted", NULL,
				  "the recording is already deleted");
		goto out;
	}
	if (rc) {
		rc = store_fail(fail, rc);
		goto out;
	}
	audit(svc, who, rec.id, "delete", NULL);
	emit(svc, rec.id, "deleted");
	*deleted_at = now;
out:
	vtp_recording_clear(&rec);
	return rc;
}

int vtp_recordings_restore(vtp_recordings *svc, const vtp_actor *who,
			   const char *id, vtp_recording *out, vtp_fail *fail)
{
	int rc = load_authorized(svc, who, id, VTP_ACT_RESTORE, out, fail);

	if (rc)
		return rc;
	rc = vtp_store_recording_restore(svc->store, out->id);
	if (rc == VTP_ECONFLICT) {
		vtp_recording_clear(out);
		return vtp_fail_set(fail, VTP_ECONFLICT, "not_deleted", NULL,
				    "the recording is not deleted");
	}
	if (rc) {
		vtp_recording_clear(out);
		return store_fail(fail, rc);
	}
	audit(svc, who, out->id, "restore", NULL);
	return reload(svc, out->id, out, fail);
}

int vtp_recordings_retry(vtp_recordings *svc, const vtp_actor *who, const char *id,
			 vtp_recording *out, vtp_fail *fail)
{
	char *previous = NULL;
	int rc = load_authorized(svc, who, id, VTP_ACT_STOP, out, fail);

	if (rc == VTP_EFORBIDDEN) {
		vtp_fail_clear(fail);
		return vtp_fail_set(fail, VTP_EFORBIDDEN, "forbidden", NULL,
				    "only the recording's starter or an admin may retry it");
	}
	if (rc)
		return rc;
	previous = out->error ? vtp_strdup(out->error) : NULL;
	rc = vtp_store_recording_requeue(svc->store, out->id);
	if (rc == VTP_ECONFLICT) {
		char status[32];

		snprintf(status, sizeof(status), "%s", out->status);
		vtp_recording_clear(out);
		rc = vtp_fail_set(fail, VTP_ECONFLICT, "not_failed", NULL,
				  "the recording is %s; only a failed recording can be retried",
				  status);
		goto out;
	}
	if (rc) {
		vtp_recording_clear(out);
		rc = store_fail(fail, rc);
		goto out;
	}
	audit(svc, who, out->id, "retry",
	      json_pack("{ss ss*}", "status", "stopped", "previousError", previous));
	VTP_INFO("recording %s queued again for processing (was failed: %s)", out->id,
		 previous ? previous : "no error");
	emit(svc, out->id, "stopped");
	queue_processing(svc, out->id);
	rc = reload(svc, out->id, out, fail);
out:
	vtp_free(previous);
	return rc;
}

/* Whether the share's creator may still share the recording: the starter,
 * an admin, or a user who still holds "share" (directly or by role). A
 * creator who no longer exists may not. *may is the answer. */
static int creator_may_share(vtp_recordings *svc, const vtp_recording *rec,
			     const char *creator, bool *may)
{
	vtp_user u;
	int level = VTP_PERM_NONE, rc;

	*may = true;
	if (!creator || strcmp(creator, rec->started_by) == 0)
		return 0;
	memset(&u, 0, sizeof(u));
	rc = vtp_store_user_by_id(svc->store, creator, &u);
	if (rc == VTP_ENOTFOUND) {
		*may = false;
		return 0;
	}
	if (rc)
		return rc;
	if (!vtp_role_is(u.role, VTP_ROLE_ADMIN)) {
		rc = vtp_store_share_level(svc->store, rec->id, u.id, u.role, &level);
		*may = rc == 0 && level >= VTP_PERM_SHARE;
	}
	vtp_user_clear(&u);
	return rc;
}

/* Shares end with their creator's right to share: after a revocation or a
 * lowered share, every share made by someone who no longer holds "share"
 * is removed, and again for the shares those people made (until nothing
 * changes), each with an "unshare" entry in the access log by whoever
 * caused it, marked "cascade" and naming the share's creator. */
static void revoke_orphaned_shares(vtp_recordings *svc, const vtp_actor *who,
				   const vtp_recording *rec)
{
	/* each round removes at least one share: bounded by their number */
	for (int round = 0; round < 1000; round++) {
		vtp_share *shares = NULL;
		size_t n = 0;
		int removed = 0, rc;

		rc = vtp_store_share_list(svc->store, rec->id, &shares, &n);
		if (rc) {
			VTP_ERROR("recording %s: cannot check the shares made by holders: %s",
				  rec->id, vtp_strerror(rc));
			return;
		}
		for (size_t i = 0; i < n; i++) {
			bool may = true;

			rc = creator_may_share(svc, rec, shares[i].shared_by, &may);
			if (rc || may)
				continue;
			rc = vtp_store_share_delete(svc->store, rec->id, shares[i].id);
			if (rc && rc != VTP_ENOTFOUND) {
				VTP_ERROR("recording %s: share %s outlives its creator's grant: %s",
					  rec->id, shares[i].id, vtp_strerror(rc));
				continue;
			}
			if (rc == 0) {
				audit(svc, who, rec->id, "unshare",
				      json_pack("{ss sb ss}", "shareId", shares[i].id, "cascade", 1,
						"sharedBy", shares[i].shared_by));
				removed++;
			}
		}
		vtp_share_free_array(shares, n);
		if (!removed)
			return;
	}
}

static const vtp_json_param share_params[] = {
	{"userId", VTP_JV_STRING, false, 36, 36, NULL, true},
	{"role", VTP_JV_STRING, false, 0, -1, roles, false},
	{"permission", VTP_JV_STRING, true, 0, -1, permissions, false},
};

int vtp_recordings_share(vtp_recordings *svc, const vtp_actor *who,
			 const char *id, json_t *body, vtp_share *out,
			 bool *created, vtp_fail *fail)
{
	char user_id[VTP_UUID_BUFLEN];
	const char *uid, *role;
	vtp_recording rec;
	vtp_user target;
	vtp_share sh;
	bool owner;
	int rc, level = VTP_PERM_NONE;

	rc = load_authorized_level(svc, who, id, VTP_ACT_SHARE, &rec, &level, fail);
	if (rc)
		return rc;
	rc = vtp_json_validate(body, share_params,
			       sizeof(share_params) / sizeof(share_params[0]), fail);
	if (rc)
		goto out;
	uid = vtp_json_str(body, "userId");
	role = vtp_json_str(body, "role");
	if ((uid == NULL) == (role == NULL)) {
		rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "userId",
				  "give exactly one of userId or role");
		goto out;
	}
	owner = strcmp(rec.started_by, who->user_id) == 0 || vtp_role_is(who->role, VTP_ROLE_ADMIN);
	/* A holder of "share" passes on what they hold, person by person: a
	 * role share would reach people the starter never chose, and nothing
	 * above the holder's own grant. */
	if (!owner && role) {
		rc = vtp_fail_set(fail, VTP_EFORBIDDEN, "role_share_forbidden", "role",
				  "only the recording's starter or an admin may share with a "
				  "role; share with individual users");
		goto out;
	}
	if (!owner && vtp_perm_parse(vtp_json_str(body, "permission")) > level) {
		rc = vtp_fail_set(fail, VTP_EFORBIDDEN, "permission_above_own", "permission",
				  "you may not share with more rights than your own (%s)",
				  level >= VTP_PERM_SHARE ? "share"
				  : level >= VTP_PERM_DOWNLOAD ? "download" : "view");
		goto out;
	}
	memset(&sh, 0, sizeof(sh));
	if (uid) {
		if (!vtp_uuid_parse(uid, user_id)) {
			rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "userId",
					  "userId must be a UUID");
			goto out;
		}
		memset(&target, 0, sizeof(target));
		rc = vtp_store_user_by_id(svc->store, user_id, &target);
		vtp_user_clear(&target);
		if (rc == VTP_ENOTFOUND) {
			rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "userId",
					  "no such user");
			goto out;
		}
		if (rc) {
			rc = store_fail(fail, rc);
			goto out;
		}
		sh.user_id = user_id;
	} else {
		sh.role = (char *)role;
	}
	vtp_uuid_v4(sh.id);
	snprintf(sh.recording_id, sizeof(sh.recording_id), "%s", rec.id);
	sh.permission = (char *)vtp_json_str(body, "permission");
	sh.shared_by = (char *)who->user_id;
	sh.shared_at = vtp_now_ms();
	/* Holders of "share" may add shares; changing an existing one (which
	 * could lower or revoke what the starter granted) is for the starter
	 * and admins. */
	rc = vtp_store_share_put(svc->store, &sh, owner, out, created);
	if (rc == VTP_ECONFLICT) {
		rc = vtp_fail_set(fail, VTP_ECONFLICT, "share_exists", uid ? "userId" : "role",
				  "this %s already has a share; only the recording's starter or an "
				  "admin can change it", uid ? "user" : "role");
		goto out;
	}
	if (rc) {
		rc = store_fail(fail, rc);
		goto out;
	}
	audit(svc, who, rec.id, "share",
	      json_pack("{sssssssb}", "shareId", out->id, uid ? "userId" : "role",
			uid ? user_id : role, "permission", out->permission,
			"created", *created));
	/* a replaced share may have taken "share" from its holder */
	if (!*created)
		revoke_orphaned_shares(svc, who, &rec);
out:
	vtp_recording_clear(&rec);
	return rc;
}

int vtp_recordings_shares(vtp_recordings *svc, const vtp_actor *who,
			  const char *id, vtp_share **out, size_t *n,
			  vtp_fail *fail)
{
	vtp_recording rec;
	int rc = load_authorized(svc, who, id, VTP_ACT_MANAGE_SHARES, &rec, fail);

	if (rc)
		return rc;
	rc = vtp_store_share_list(svc->store, rec.id, out, n);
	if (rc)
		rc = store_fail(fail, rc);
	vtp_recording_clear(&rec);
	return rc;
}

int vtp_recordings_unshare(vtp_recordings *svc, const vtp_actor *who,
			   const char *id, const char *share_id, vtp_fail *fail)
{
	char sid[VTP_UUID_BUFLEN];
	vtp_recording rec;
	int rc = load_authorized(svc, who, id, VTP_ACT_MANAGE_SHARES, &rec, fail);

	if (rc)
		return rc;
	if (!share_id || !vtp_uuid_parse(share_id, sid)) {
		rc = vtp_fail_set(fail, VTP_ENOTFOUND, "not_found", NULL, "share not found");
		goto out;
	}
	rc = vtp_store_share_delete(svc->store, rec.id, sid);
	if (rc == VTP_ENOTFOUND) {
		rc = vtp_fail_set(fail, VTP_ENOTFOUND, "not_found", NULL, "share not found");
		goto out;
	}
	if (rc) {
		rc = store_fail(fail, rc);
		goto out;
	}
	audit(svc, who, rec.id, "unshare", json_pack("{ss}", "shareId", sid));
	revoke_orphaned_shares(svc, who, &rec);
out:
	vtp_recording_clear(&rec);
	return rc;
}

int vtp_recordings_participants(vtp_recordings *svc, const vtp_actor *who,
				const char *id, vtp_participant **out,
				size_t *n, vtp_recording *rec_out, vtp_fail *fail)
{
	vtp_recording rec;
	int rc = load_authorized(svc, who, id, VTP_ACT_VIEW, &rec, fail);

	if (rc)
		return rc;
	rc = vtp_store_participant_list(svc->store, rec.id, out, n);
	if (rc)
		rc = store_fail(fail, rc);
	if (rc == 0 && rec_out) {
		overlay_live(svc, &rec);
		*rec_out = rec;
		return 0;
	}
	vtp_recording_clear(&rec);
	return rc;
}

int vtp_recordings_access_log(vtp_recordings *svc, const vtp_actor *who,
			      const char *id, int limit, int offset,
			      vtp_access_entry **out, size_t *n, int64_t *total,
			      vtp_fail *fail)
{
	vtp_recording rec;
	int rc = load_authorized(svc, who, id, VTP_ACT_ACCESS_LOG, &rec, fail);

	if (rc)
		return rc;
	rc = vtp_store_access_log_list(svc->store, rec.id, limit, offset, out, n, total);
	if (rc)
		rc = store_fail(fail, rc);
	vtp_recording_clear(&rec);
	return rc;
}

/* ---- media ---------------------------------------------------------------- */

void vtp_recordings_set_media(vtp_recordings *svc, const vtp_media_hooks *hooks)
{
	if (hooks)
		svc->media = *hooks;
	else
		memset(&svc->media, 0, sizeof(svc->media));
}

void vtp_recordings_set_cache(vtp_recordings *svc, bool on)
{
	if (!on) {
		vtp_gencache_free(svc->rendered);
		svc->rendered = NULL;
	}
}

void vtp_recordings_set_node(vtp_recordings *svc, const char *node_id)
{
	svc->node_id = node_id;
}

int vtp_recordings_for_tracks(vtp_recordings *svc, const vtp_actor *who,
			      const char *id, vtp_recording *out, vtp_fail *fail)
{
	int rc = load_authorized(svc, who, id, VTP_ACT_TRACKS, out, fail);

	if (rc)
		return rc;
	if (!vtp_recording_is_active(out) || vtp_recordings_stop_pending(svc, out->id)) {
		vtp_fail_set(fail, VTP_ECONFLICT, "not_active", NULL,
			     "the recording is not active (status %s)",
			     vtp_recording_is_active(out) ? "stopped" : out->status);
		vtp_recording_clear(out);
		return VTP_ECONFLICT;
	}
	return 0;
}

int vtp_recordings_user_exists(vtp_recordings *svc, const char *user_id, vtp_fail *fail)
{
	vtp_user u;
	int rc;

	memset(&u, 0, sizeof(u));
	rc = vtp_store_user_by_id(svc->store, user_id, &u);
	vtp_user_clear(&u);
	if (rc == VTP_ENOTFOUND)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "userId",
				    "userId names no user of this server");
	if (rc)
		return store_fail(fail, rc);
	return 0;
}

int vtp_recordings_active_in_room(vtp_recordings *svc, const char *room_id, vtp_recording *out)
{
	char id[VTP_UUID_BUFLEN];
	int rc;

	rc = vtp_store_recording_active_in_room(svc->store, room_id, id);
	if (rc)
		return rc;
	rc = vtp_store_recording_get(svc->store, id, out);
	if (rc)
		return rc;
	/* a stop not saved yet (full disk) is a stop: WHIP sessions attach
	 * to nothing */
	if (out->deleted_at > 0 || !vtp_recording_is_active(out) ||
	    vtp_recordings_stop_pending(svc, out->id)) {
		vtp_recording_clear(out);
		return VTP_ENOTFOUND;
	}
	return 0;
}

int vtp_recordings_tracks_dir(vtp_recordings *svc, const vtp_recording *r,
			      char *out, size_t outlen)
{
	return recording_dir(svc, r->room_id, r->id, "tracks", out, outlen);
}

void vtp_recordings_audit_track(vtp_recordings *svc, const vtp_actor *who,
				const char *id, const char *type, json_t *detail)
{
	audit(svc, who, id, type, detail);
}

int vtp_recordings_participant_joined(vtp_recordings *svc, const char *recording_id,
				      const char *peer_id, const char *full_name,
				      const char *user_id, const char *role,
				      int64_t at, char id_out[VTP_UUID_BUFLEN])
{
	vtp_participant p;

	memset(&p, 0, sizeof(p));
	vtp_uuid_v4(p.id);
	snprintf(p.recording_id, sizeof(p.recording_id), "%s", recording_id);
	p.peer_id = (char *)peer_id;
	p.full_name = (char *)full_name;
	p.user_id = (char *)user_id;
	p.role = (char *)role;
	p.joined_at = at;
	return vtp_store_participant_join(svc->store, &p, id_out);
}

int vtp_recordings_participant_left(vtp_recordings *svc, const char *participant_id,
				    int64_t at)
{
	return vtp_store_participant_left(svc->store, participant_id, at);
}

int vtp_recordings_interrupted(vtp_recordings *svc, vtp_recording **out, size_t *n)
{
	return vtp_store_recording_active_of_node(svc->store, svc->node_id, out, n);
}

int vtp_recordings_mark_interrupted(vtp_recordings *svc, const vtp_recording *r,
				    int64_t stopped_at, const char *tracks,
				    const char *note)
{
	json_t *meta = json_loads(r->metadata ? r->metadata : "{}", 0, NULL);
	double duration;
	char *meta_text;
	int rc;

	if (!json_is_object(meta)) {
		json_decref(meta);
		meta = json_object();
	}
	json_object_set_new(meta, "interrupted", json_string(note));
	meta_text = json_dumps(meta, JSON_COMPACT);
	json_decref(meta);
	if (stopped_at < r->created_at)
		stopped_at = r->created_at;
	duration = (double)(stopped_at - r->created_at) / 1000.0;
	rc = vtp_store_recording_interrupt(svc->store, r->id, stopped_at, duration, tracks,
					   meta_text);
	free(meta_text);
	if (rc == 0) {
		/* what the logs' gap records say the disk did not take */
		save_track_warnings(svc, r->id, r->warnings, tracks);
		rc = vtp_store_participant_left_all(svc->store, r->id, stopped_at);
		audit(svc, NULL, r->id, "stop",
		      json_pack("{ss ss}", "status", "stopped", "reason", "recovered after restart"));
		VTP_WARN("recording %s was interrupted by a restart: stopped at its last packet (%.3f s)",
			 r->id, duration);
		queue_processing(svc, r->id);
	}
	return rc;
}

/* ---- processing ------------------------------------------------------------ */

void vtp_recordings_set_event_hook(vtp_recordings *svc, void (*written)(void *ctx), void *ctx)
{
	svc->room_event = written;
	svc->room_event_ctx = ctx;
}

void vtp_recordings_set_job_hook(vtp_recordings *svc, void (*queued)(void *ctx), void *ctx)
{
	svc->job_queued = queued;
	svc->job_ctx = ctx;
}

void vtp_recordings_wake_jobs(vtp_recordings *svc)
{
	if (svc->job_queued)
		svc->job_queued(svc->job_ctx);
}

int vtp_recordings_queue_unqueued(vtp_recordings *svc, int *count)
{
	vtp_recording *arr = NULL;
	size_t n = 0;
	int rc, queued = 0;

	*count = 0;
	rc = vtp_store_recording_unqueued(svc->store, &arr, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		int qrc = vtp_store_job_enqueue(svc->store, arr[i].id, 0, NULL);

		if (qrc == 0)
			queued++;
		else if (qrc != VTP_ECONFLICT) /* ECONFLICT: queued by someone else meanwhile */
			rc = qrc;
	}
	vtp_recording_free_array(arr, n);
	if (queued && svc->job_queued)
		svc->job_queued(svc->job_ctx);
	*count = queued;
	return rc;
}

int vtp_recordings_job_ended(vtp_recordings *svc, const char *id)
{
	vtp_recording r;
	int rc = vtp_store_recording_get(svc->store, id, &r);

	if (rc)
		return rc;
	if (!r.deleted_at && r.status && strcmp(r.status, "stopped") == 0)
		queue_processing(svc, id);
	vtp_recording_clear(&r);
	return 0;
}

int vtp_recordings_output_file(vtp_recordings *svc, const vtp_recording *r, const char *name,
			       char *key, size_t keylen, char *path, size_t pathlen)
{
	char room_dir[VTP_PATH_COMPONENT_MAX + 1];
	size_t len;
	int rc, n;

	rc = recording_dir(svc, r->room_id, r->id, NULL, path, pathlen);
	if (rc)
		return rc;
	vtp_path_encode_component(r->room_id, room_dir);
	n = snprintf(key, keylen, "%s/%s/%s", room_dir, r->id, name);
	if (n < 0 || (size_t)n >= keylen)
		return VTP_ETOOBIG;
	len = strlen(path);
	n = snprintf(path + len, pathlen - len, "/%s", name);
	if (n < 0 || (size_t)n >= pathlen - len)
		return VTP_ETOOBIG;
	return 0;
}

int vtp_recordings_processing(vtp_recordings *svc, const char *id, int attempt)
{
	int rc = vtp_store_recording_processing(svc->store, id);

	if (rc == 0) {
		audit(svc, NULL, id, "processing",
		      attempt > 0 ? json_pack("{ss si}", "status", "processing", "attempt", attempt)
				  : json_pack("{ss}", "status", "processing"));
		progress_event(svc, id, 0);
	}
	return rc;
}

int vtp_recordings_progress(vtp_recordings *svc, const char *id, int percent)
{
	int rc = vtp_store_recording_progress(svc->store, id, percent);

	if (rc == 0)
		progress_event(svc, id, percent);
	return rc;
}

int vtp_recordings_add_warnings(vtp_recordings *svc, const char *id, json_t *warnings)
{
	json_t *arr = NULL, *w;
	vtp_recording r;
	char *text = NULL;
	size_t i;
	int rc;

	rc = vtp_store_recording_get(svc->store, id, &r);
	if (rc)
		goto out;
	arr = r.warnings ? json_loads(r.warnings, 0, NULL) : NULL;
	vtp_recording_clear(&r);
	if (!json_is_array(arr)) {
		json_decref(arr);
		arr = json_array();
	}
	json_array_foreach(warnings, i, w)
		warnings_put(arr, json_incref(w));
	text = json_dumps(arr, JSON_COMPACT);
	rc = text ? vtp_store_recording_set_warnings(svc->store, id, text) : VTP_EINTERNAL;
out:
	free(text);
	json_decref(arr);
	json_decref(warnings);
	return rc;
}

/* The composer's metadata with the recording's warnings in it, so that a
 * downloaded description says what is missing too. Returns owned text. */
static char *metadata_with_warnings(vtp_recordings *svc, const char *id, const char *metadata)
{
	json_t *meta = json_loads(metadata ? metadata : "{}", 0, NULL);
	json_t *warnings;
	vtp_recording r;
	char *text, *out;

	if (!json_is_object(meta)) {
		json_decref(meta);
		meta = json_object();
	}
	if (vtp_store_recording_get(svc->store, id, &r) == 0) {
		warnings = r.warnings ? json_loads(r.warnings, 0, NULL) : NULL;
		if (json_is_array(warnings) && json_array_size(warnings))
			json_object_set(meta, "warnings", warnings);
		json_decref(warnings);
		vtp_recording_clear(&r);
	}
	text = json_dumps(meta, JSON_COMPACT);
	out = vtp_strdup(text ? text : "{}");
	free(text);
	json_decref(meta);
	return out;
}

int vtp_recordings_done(vtp_recordings *svc, const char *id, const char *file_key,
			int64_t file_size, double duration_seconds, const char *metadata)
{
	char *meta = metadata_with_warnings(svc, id, metadata);
	int rc = vtp_store_recording_done(svc->store, id, file_key, file_size, duration_seconds,
					  meta, vtp_now_ms());

	vtp_free(meta);

	if (rc == 0) {
		audit(svc, NULL, id, "done",
		      json_pack("{ss sI sf}", "status", "done", "fileSize", (json_int_t)file_size,
				"durationSeconds", duration_seconds));
		emit(svc, id, "done");
	}
	return rc;
}

int vtp_recordings_failed(vtp_recordings *svc, const char *id, const char *error,
			  json_t *detail)
{
	int rc = vtp_store_recording_failed(svc->store, id, error, vtp_now_ms());

	if (rc == 0) {
		if (!json_is_object(detail)) {
			json_decref(detail);
			detail = json_object();
		}
		json_object_set_new(detail, "status", json_string("failed"));
		json_object_set_new(detail, "error", json_string(error));
		audit(svc, NULL, id, "failed", detail);
		emit(svc, id, "failed");
	} else {
		json_decref(detail);
	}
	return rc;
}

void vtp_recordings_audit_system(vtp_recordings *svc, const char *id, const char *type,
				 json_t *detail)
{
	audit(svc, NULL, id, type, detail);
}
