/* The recording service: the lifecycle state machine (pending -> recording
 * -> stopped -> processing -> done|failed), one active recording per room,
 * visibility and permissions, shares, participants and the audit trail.
 * Every operation that a person performs is checked against the policy and
 * written to the access log here, so the REST API and the Socket.IO events
 * apply exactly the same rules. No HTTP, no SQL, no media I/O. */
#ifndef VTP_RECORDING_H
#define VTP_RECORDING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/fail.h"
#include "core/jsonw.h"
#include "auth/auth.h"
#include "core/random.h"
#include "store/store.h"
#include "storage/storage.h"

typedef struct vtp_recordings vtp_recordings;

/* Who is asking, and from where (for the access log). Strings borrowed. */
typedef struct vtp_actor {
	char user_id[VTP_UUID_BUFLEN];
	char role[16];
	const char *ip;
	const char *user_agent;
} vtp_actor;

/* store is borrowed; recordings_dir is where per-recording folders live
 * ($VTP_DATA_DIR/recordings). */
vtp_recordings *vtp_recordings_new(vtp_store *store, const char *recordings_dir);
void vtp_recordings_free(vtp_recordings *svc);

/* StartRecordingRequest after validation; strings point into the JSON body. */
typedef struct vtp_start_request {
	const char *room_id;
	const char *title;
	const char *description;
	const char *format;
	const char *video_codec;
	const char *audio_codec;
	int bitrate;
	const char *layout; /* auto (default) | grid | speaker | presentation | screen */
} vtp_start_request;

/* The output rules shared by the API and the compose CLI: fills a NULL
 * format (webm) and NULL codecs (by format: vp8+opus, h264+aac), then checks
 * the combination (webm: vp8+opus; mp4: h264 with opus or aac). Returns NULL
 * when fine, else the offending field's name ("format", "videoCodec",
 * "audioCodec") with a one-line reason in why. */
const char *vtp_output_check(const char **format, const char **video_codec,
			     const char **audio_codec, char *why, size_t whylen);

/* Validates a StartRecordingRequest and applies the defaults (webm, codecs
 * by format, 2000 kbps, layout auto). Fails with a field-level VTP_EINVAL. */
int vtp_start_request_parse(json_t *body, vtp_start_request *req, vtp_fail *fail);

/* Each returns 0 or a negative code with fail filled for the client. On
 * success, output structs are owned by the caller (vtp_*_clear). */
int vtp_recordings_start(vtp_recordings *svc, const vtp_actor *who,
			 const vtp_start_request *req, vtp_recording *out,
			 vtp_fail *fail);
int vtp_recordings_stop(vtp_recordings *svc, const vtp_actor *who,
			const char *id, vtp_recording *out, vtp_fail *fail);
/* Reads one recording for display and logs a "view". */
/* True while a stop the database refused (full disk) waits for its
 * background retry: the captures ended, the Recording reads as stopped
 * with a stop_pending warning, and Stop answers 202. */
bool vtp_recordings_stop_pending(vtp_recordings *svc, const char *id);
int vtp_recordings_get(vtp_recordings *svc, const vtp_actor *who,
		       const char *id, vtp_recording *out, vtp_fail *fail);
/* The same, appending the Recording's JSON to out. Finished recordings are
 * kept rendered until the store's generation moves; the permission check
 * and the "view" entry happen on every call. */
int vtp_recordings_get_json(vtp_recordings *svc, const vtp_actor *who,
			    const char *id, vtp_buf *out, vtp_fail *fail);

typedef struct vtp_list_query {
	const char *room_id;
	const char *status;
	bool deleted;
	int limit;
	int offset;
} vtp_list_query;

int vtp_recordings_list(vtp_recordings *svc, const vtp_actor *who,
			const vtp_list_query *q, vtp_recording **out, size_t *n,
			int64_t *total, vtp_fail *fail);
/* Soft delete (an active recording is stopped first). */
int vtp_recordings_delete(vtp_recordings *svc, const vtp_actor *who,
			  const char *id, int64_t *deleted_at, vtp_fail *fail);
int vtp_recordings_restore(vtp_recordings *svc, const vtp_actor *who,
			   const char *id, vtp_recording *out, vtp_fail *fail);
/* failed -> stopped and queued for processing again (starter, admin):
 * 409 not_failed for any other status. Audited ("retry" by who) and
 * broadcast as a stop. */
int vtp_recordings_retry(vtp_recordings *svc, const vtp_actor *who, const char *id,
			 vtp_recording *out, vtp_fail *fail);

/* body: {"userId"} or {"role"}, "permission". *created: new vs replaced.
 * A holder of "share" (not the starter, not an admin) may share only with
 * users (403 role_share_forbidden), never above their own level (403
 * permission_above_own), and not change an existing share (409). The
 * shares a holder made end with the holder's grant: unshare (and a
 * replaced share) removes them, recursively. */
int vtp_recordings_share(vtp_recordings *svc, const vtp_actor *who,
			 const char *id, json_t *body, vtp_share *out,
			 bool *created, vtp_fail *fail);
int vtp_recordings_shares(vtp_recordings *svc, const vtp_actor *who,
			  const char *id, vtp_share **out, size_t *n,
			  vtp_fail *fail);
int vtp_recordings_unshare(vtp_recordings *svc, const vtp_actor *who,
			   const char *id, const char *share_id, vtp_fail *fail);
/* The participants, and into rec (when not NULL; clear it after) the
 * recording with its tracks as they are now (live statistics while it
 * records): what vtp_participant_add_media reads. */
int vtp_recordings_participants(vtp_recordings *svc, const vtp_actor *who,
				const char *id, vtp_participant **out,
				size_t *n, vtp_recording *rec, vtp_fail *fail);
int vtp_recordings_access_log(vtp_recordings *svc, const vtp_actor *who,
			      const char *id, int limit, int offset,
			      vtp_access_entry **out, size_t *n, int64_t *total,
			      vtp_fail *fail);

/* ---- media (implemented by src/ingest, which depends on this module) ---- */

typedef struct vtp_media_hooks {
	void *ctx;
	/* A recording just left pending/recording: end its tracks, sync their
	 * logs, and return their statistics as a JSON array (vtp_malloc'd
	 * text, caller frees) or NULL when it had none. */
	char *(*end_recording)(void *ctx, const char *recording_id);
	/* Live statistics of an active recording's tracks, same shape, or NULL
	 * when it has none on this node. */
	char *(*live_tracks)(void *ctx, const char *recording_id);
	/* A recording just started in a room (WHIP publishers there start
	 * capturing). Called after the row is committed; must not block. */
	void (*recording_started)(void *ctx, const char *recording_id, const char *room_id);
} vtp_media_hooks;

/* Installs the hooks (before serving; NULL clears them). */
void vtp_recordings_set_media(vtp_recordings *svc, const vtp_media_hooks *hooks);
/* Status changes (started, stopped, done, failed, deleted) are written to
 * the webhook outbox (set before serving; off by default). */
void vtp_recordings_set_webhooks(vtp_recordings *svc, bool on);
/* Keep rendered finished recordings (vtp_recordings_get_json); on by
 * default. Set before serving. */
void vtp_recordings_set_cache(vtp_recordings *svc, bool on);
/* The node id written on recordings started here (borrowed, set once
 * before serving). */
void vtp_recordings_set_node(vtp_recordings *svc, const char *node_id);

/* Track registration: checks that who may register tracks on id (starter,
 * admin, service), that it is active (409 not_active), and fills out. */
int vtp_recordings_for_tracks(vtp_recordings *svc, const vtp_actor *who,
			      const char *id, vtp_recording *out, vtp_fail *fail);
/* Track registration: the userId a track is credited to must name an
 * existing user (400 invalid_input on userId otherwise; 503 when the
 * database does not answer). */
int vtp_recordings_user_exists(vtp_recordings *svc, const char *user_id, vtp_fail *fail);
/* The active recording of a room, whoever started it (WHIP publishing is
 * open to the room's participants): VTP_ENOTFOUND when none. */
int vtp_recordings_active_in_room(vtp_recordings *svc, const char *room_id, vtp_recording *out);
/* The folder of a recording's packet logs, created (0700) if needed:
 * <recordings dir>/<encoded room>/<id>/tracks. */
int vtp_recordings_tracks_dir(vtp_recordings *svc, const vtp_recording *r,
			      char *out, size_t outlen);
/* Writes an audit entry for a track operation (access type "track_add" or
 * "track_end"). detail is consumed. */
void vtp_recordings_audit_track(vtp_recordings *svc, const vtp_actor *who,
				const char *id, const char *type, json_t *detail);
/* A peer's first packet (joined) and its departure (left): one participant
 * row per peer, from its first arrival to its last departure (a peer that
 * comes back is present again). joined fills the row's id. */
int vtp_recordings_participant_joined(vtp_recordings *svc, const char *recording_id,
				      const char *peer_id, const char *full_name,
				      const char *user_id, const char *role,
				      int64_t at, char id_out[VTP_UUID_BUFLEN]);
int vtp_recordings_participant_left(vtp_recordings *svc, const char *participant_id,
				    int64_t at);
/* Recordings of this node left pending/recording by a crash. */
int vtp_recordings_interrupted(vtp_recordings *svc, vtp_recording **out, size_t *n);
/* Marks one stopped after a crash: stopped_at = the last packet kept (or
 * its start), tracks statistics, and metadata.interrupted = note. */
int vtp_recordings_mark_interrupted(vtp_recordings *svc, const vtp_recording *r,
				    int64_t stopped_at, const char *tracks,
				    const char *note);

/* ---- processing (the job workers and the compose child process) ---------- */

/* Every stop (API, delete of an active recording, recovery after a crash)
 * queues a processing job; queued() is then called so that local workers
 * wake at once (set before serving; NULL: nobody to wake). */
void vtp_recordings_set_job_hook(vtp_recordings *svc, void (*queued)(void *ctx), void *ctx);
/* After each room event this process writes (docs/ARCHITECTURE.md "Events"), written() is
 * called so that the local events thread sends it at once instead of at
 * its next poll (set before serving; NULL: nobody to wake). */
void vtp_recordings_set_event_hook(vtp_recordings *svc, void (*written)(void *ctx), void *ctx);
/* Queues a job for every recording that waits for processing without one
 * (vtp_store_recording_unqueued); *count receives how many were queued. */
int vtp_recordings_queue_unqueued(vtp_recordings *svc, int *count);
/* A job of recording `id` has just ended. A retry that came while that job
 * was still running found its place taken and queued nothing; if the
 * recording waits for processing (stopped, not deleted), queue it now. */
int vtp_recordings_job_ended(vtp_recordings *svc, const char *id);
/* A file in the recording's folder (created 0700 if needed): key receives
 * its storage key, <encoded room>/<id>/<name>, relative to the recordings
 * dir (what file_path holds; never shown to clients), path its full path. */
int vtp_recordings_output_file(vtp_recordings *svc, const vtp_recording *r, const char *name,
			       char *key, size_t keylen, char *path, size_t pathlen);
/* The transitions of processing, each written to the access log as the
 * system's ("processing" with the attempt when > 0, "done", "failed").
 * VTP_ECONFLICT when the recording is not in a status the move starts from
 * (store.h). */
int vtp_recordings_processing(vtp_recordings *svc, const char *id, int attempt);
int vtp_recordings_progress(vtp_recordings *svc, const char *id, int percent);
int vtp_recordings_done(vtp_recordings *svc, const char *id, const char *file_key,
			int64_t file_size, double duration_seconds, const char *metadata);
/* Adds warnings found while processing (a JSON array of Warning objects,
 * consumed) to the recording's list, each replacing one with the same code
 * and track: a retried composition does not repeat them. */
/* Local workers look at the queue now (a job may have become ready). */
void vtp_recordings_wake_jobs(vtp_recordings *svc);
int vtp_recordings_add_warnings(vtp_recordings *svc, const char *id, json_t *warnings);
/* detail (consumed, may be NULL) is merged into the access-log entry. */
int vtp_recordings_failed(vtp_recordings *svc, const char *id, const char *error,
			  json_t *detail);
/* An access-log entry by the system (e.g. "retry"); detail is consumed. */
void vtp_recordings_audit_system(vtp_recordings *svc, const char *id, const char *type,
				 json_t *detail);

/* ---- media delivery ------------------------------------------------------- */

/* Signed media URLs (auth.h) in the Recording JSON: set before serving
 * (key borrowed); without it the URLs are null. */
void vtp_recordings_set_media_urls(vtp_recordings *svc, const unsigned char *key, size_t keylen,
				   int64_t ttl_s);
/* When the tokens made now expire (changes every 5 minutes). */
int64_t vtp_recordings_media_expiry(vtp_recordings *svc);
/* A token for user_id on recording id ("" when URLs are off). */
void vtp_recordings_media_token(vtp_recordings *svc, vtp_media_scope scope, const char *id,
				const char *user_id, char out[VTP_MEDIA_TOKEN_BUFLEN]);
/* A Recording for `who`: its fields, then downloadUrl (only for those who
 * may download), hlsUrl and thumbnailUrl when done, else null. */
void vtp_recordings_write(vtp_recordings *svc, const vtp_actor *who, const vtp_recording *r,
			  vtp_jw *w);
/* Media access: who may do action (VTP_ACT_VIEW: HLS and thumbnail,
 * VTP_ACT_DOWNLOAD) on id, which must be done (else VTP_ECONFLICT
 * "not_ready"); out filled. Logs nothing (the caller knows what counts as
 * one access). */
int vtp_recordings_for_media(vtp_recordings *svc, const vtp_actor *who, const char *id,
			     vtp_action action, vtp_recording *out, vtp_fail *fail);
/* An access-log entry of `who` (type "download", "view"...); detail consumed. */
void vtp_recordings_audit_media(vtp_recordings *svc, const vtp_actor *who, const char *id,
				const char *type, json_t *detail);

/* ---- retention (retention.c) ---------------------------------------------- */

/* The store the service works on (borrowed). */
vtp_store *vtp_recordings_store(vtp_recordings *svc);
/* One sweep: purges recordings soft-deleted more than `days` ago (rows,
 * then their files/objects; the access log stays, with a "purged" entry).
 * *purged receives how many. */
int vtp_retention_sweep(vtp_recordings *svc, vtp_storage *st, int days, int *purged);
/* A thread sweeping now and then every interval_ms (0: an hour). */
typedef struct vtp_retention vtp_retention;
vtp_retention *vtp_retention_start(vtp_recordings *svc, vtp_storage *st, int days,
				   int64_t interval_ms);
void vtp_retention_stop(vtp_retention *t);

/* pending or recording: media may still arrive, statistics are live. */
bool vtp_recording_is_active(const vtp_recording *r);

/* Access-log entries that could not be written since start (for /metrics). */
uint64_t vtp_recordings_audit_lost(vtp_recordings *svc);

/* Client-facing JSON (camelCase, RFC 3339 times, never a server path).
 * vtp_recording_write streams a Recording for the hot paths; the json_t form
 * is derived from it (one field list). */
void vtp_recording_write(vtp_jw *w, const vtp_recording *r);
/* The parts: the object opened and every field but the URLs; then the
 * three URL members (NULL: null). The caller closes the object. */
void vtp_recording_write_fields(vtp_jw *w, const vtp_recording *r);
void vtp_recording_write_urls(vtp_jw *w, const char *download, const char *hls,
			      const char *thumbnail);
json_t *vtp_recording_json(const vtp_recording *r);
json_t *vtp_share_json(const vtp_share *sh);
json_t *vtp_participant_json(const vtp_participant *p);
/* Adds to a participant's object o what rec says about the peer:
 * "sources" [{source, kind, trackId, startedAt, endedAt}] from rec's tracks
 * with that peerId (startedAt: first packet, null before one; endedAt: last
 * packet once the track ended, null while it may go on), and "talkSeconds"
 * from the composed recording's metadata ({"talk": {peerId: seconds}}; 0
 * for a peer it does not name; null before the recording is done or when
 * its composer did not count talk time). */
void vtp_participant_add_media(json_t *o, const char *peer_id, const vtp_recording *rec);
json_t *vtp_access_entry_json(const vtp_access_entry *e);
json_t *vtp_user_json(const vtp_user *u);

#endif
