/* The metadata store: users, recordings, participants, shares and the access
 * log, behind one interface with two backends (SQLite, PostgreSQL). Callers
 * never see SQL or know which backend is in use.
 *
 * Conventions:
 * - every function returns 0 or a negative VTP_E* code (src/core/error.h);
 *   VTP_EDB for a database fault (already logged), VTP_EUNAVAIL when the
 *   database cannot be reached;
 * - times are int64 milliseconds since the Unix epoch; 0 means NULL/unset;
 * - ids are canonical lowercase UUID strings; callers validate ids they got
 *   from outside with vtp_uuid_parse() before passing them here;
 * - structs filled by the store own their strings: release them with the
 *   matching *_clear / *_free_array function. Structs passed in are borrowed.
 * - the store is safe to use from many threads at once (connection pool). */
#ifndef VTP_STORE_H
#define VTP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/random.h"

typedef struct vtp_store vtp_store;

/* ---- lifecycle ---------------------------------------------------------- */

/* url: "sqlite://PATH" (relative or absolute; the file is created, WAL mode)
 * or "postgres://user:pass@host:port/db" (also "postgresql://").
 * pool_size: connections kept (>= 1). On failure returns a negative code and
 * writes a one-line reason (no password) into err. Does not migrate. */
int vtp_store_open(const char *url, int pool_size, vtp_store **out, char *err,
		   size_t errlen);
void vtp_store_free(vtp_store *s);
/* "sqlite" or "postgres". */
const char *vtp_store_backend(const vtp_store *s);
/* Applies the embedded migrations not yet applied (idempotent, safe to run
 * from several processes at once). *applied receives how many ran. */
int vtp_store_migrate(vtp_store *s, int *applied);
/* Cheap round trip for health checks. */
int vtp_store_ping(vtp_store *s);
/* A real write (one row of health_probe, committed) for health checks:
 * 0 or the error. It leaves vtp_store_last_write alone. */
int vtp_store_write_probe(vtp_store *s);
/* 0 when the last write of this process went through, else its error
 * (VTP_EDB, VTP_EUNAVAIL, VTP_EIO) for 30 s after it failed: a full disk
 * fails every write while reads still answer (and a probe can still find
 * room in SQLite's WAL). Conflicts and bad input do not count. */
int vtp_store_last_write(vtp_store *s);
/* A number that changes after every committed change to users, recordings,
 * participants or shares (not the access log), or 0 when nothing can be
 * promised. Read it before a query whose result you keep: the result is
 * current for as long as the number stays the same. On SQLite the number is
 * shared by every process using the file (a counter in DB-generation beside
 * it), so writes by compose children, a `worker` or the CLI move it too. On
 * PostgreSQL other nodes write too: the number moves on their notifications
 * (vtp_store_watch), as soon as they arrive, and is 0 without a watcher. */
uint64_t vtp_store_generation(vtp_store *s);
/* PostgreSQL: follows the writes of every node (a LISTEN connection on its
 * own thread, reconnecting with back-off; stopped by vtp_store_free), so
 * that vtp_store_generation can promise something: it moves on each
 * notification, and is 0 whenever that connection is down (then nothing
 * is kept; everything kept before is dropped when it comes back). Without
 * it the generation stays 0 on PostgreSQL. No-op on SQLite. For `serve`. */
int vtp_store_watch(vtp_store *s);
/* Whether the generation currently promises anything (always on SQLite). */
bool vtp_store_watch_up(vtp_store *s);
/* The database's clock (PostgreSQL: now()), or this process's where the
 * database is on this machine (SQLite). */
int vtp_store_clock(vtp_store *s, int64_t *ms);

/* ---- users -------------------------------------------------------------- */

typedef struct vtp_user {
	char id[VTP_UUID_BUFLEN];
	char *email;         /* stored lowercase, unique */
	char *full_name;
	char *role;          /* admin | instructor | student | service */
	char *password_hash; /* argon2id encoded; NULL: password login disabled */
	int64_t created_at;
} vtp_user;

void vtp_user_clear(vtp_user *u);
/* VTP_ECONFLICT if the email is taken. */
int vtp_store_user_insert(vtp_store *s, const vtp_user *u);
/* VTP_ENOTFOUND if absent. email is matched case-insensitively. */
int vtp_store_user_by_email(vtp_store *s, const char *email, vtp_user *out);
int vtp_store_user_by_id(vtp_store *s, const char *id, vtp_user *out);
int vtp_store_user_count(vtp_store *s, int64_t *count);

/* ---- recordings --------------------------------------------------------- */

typedef struct vtp_recording {
	char id[VTP_UUID_BUFLEN];
	char *room_id;
	char *title;
	char *description;   /* may be NULL */
	char started_by[VTP_UUID_BUFLEN];
	char *status;        /* pending|recording|stopped|processing|done|failed */
	char *file_path;     /* storage key of the output; never sent to clients */
	int64_t file_size;   /* -1: unknown */
	double duration_seconds; /* < 0: unknown */
	char *format;        /* webm | mp4 */
	char *video_codec;   /* vp8 | h264 */
	char *audio_codec;   /* opus | aac */
	int resolution_width;
	int resolution_height;
	int fps;
	int bitrate;         /* kbps */
	int progress;        /* 0..100 */
	char *error;         /* NULL unless failed */
	char *node_id;       /* node that ingests it; may be NULL */
	char *metadata;      /* JSON object text, never NULL once read ("{}") */
	char *tracks;        /* JSON array of per-track ingest statistics, or NULL */
	char *warnings;      /* JSON array of {code, message, trackId?, peerId?}, or NULL */
	char *layout;        /* auto|grid|speaker|presentation|screen; read: never NULL;
			      * insert: NULL means auto */
	int64_t created_at;
	int64_t stopped_at;
	int64_t completed_at;
	int64_t deleted_at;
	int participant_count; /* read-only: computed from participants */
} vtp_recording;

void vtp_recording_clear(vtp_recording *r);
void vtp_recording_free_array(vtp_recording *arr, size_t n);

/* Inserts r (status must be pending or recording for the room constraint to
 * apply). VTP_ECONFLICT when the room already has a pending/recording
 * recording: enforced by a partial unique index, not check-then-insert. */
int vtp_store_recording_insert(vtp_store *s, const vtp_recording *r);
/* id of the pending/recording recording of a room; VTP_ENOTFOUND if none. */
int vtp_store_recording_active_in_room(vtp_store *s, const char *room_id,
				       char id[VTP_UUID_BUFLEN]);
/* Reads one recording whether or not it is soft-deleted (check deleted_at).
 * VTP_ENOTFOUND if no such id. */
int vtp_store_recording_get(vtp_store *s, const char *id, vtp_recording *out);

typedef struct vtp_recording_filter {
	const char *room_id;  /* NULL: any */
	const char *status;   /* NULL: any */
	bool deleted;         /* false: live ones only; true: soft-deleted only */
	/* Visibility: admins see all; others see what they started or what is
	 * shared with their user id or their role. When deleted is true only
	 * the starter (or an admin) sees a recording, shares do not count. */
	const char *viewer_id;
	const char *viewer_role;
	bool viewer_is_admin;
	int limit;            /* 1..100 */
	int offset;           /* >= 0 */
} vtp_recording_filter;

/* Newest first (created_at DESC, id DESC). *total = rows matching without
 * limit/offset. *out is an array of *n recordings (free with
 * vtp_recording_free_array), NULL when *n == 0. */
int vtp_store_recording_list(vtp_store *s, const vtp_recording_filter *f,
			     vtp_recording **out, size_t *n, int64_t *total);
/* pending|recording -> stopped, sets stopped_at and duration_seconds.
 * VTP_ECONFLICT if the recording is not pending/recording (or deleted). */
int vtp_store_recording_stop(vtp_store *s, const char *id, int64_t stopped_at,
			     double duration_seconds);
/* Sets deleted_at. VTP_ECONFLICT if already deleted. */
int vtp_store_recording_soft_delete(vtp_store *s, const char *id, int64_t at);
/* Clears deleted_at. VTP_ECONFLICT if not deleted. */
int vtp_store_recording_restore(vtp_store *s, const char *id);
/* Sets the per-track statistics (a JSON array text). */
int vtp_store_recording_set_tracks(vtp_store *s, const char *id, const char *tracks);
/* Replaces the warnings (a JSON array text, or NULL for none). */
int vtp_store_recording_set_warnings(vtp_store *s, const char *id, const char *warnings);
/* pending|recording -> stopped after a crash: stopped_at, duration, tracks
 * and a metadata object (replacing the old one). VTP_ECONFLICT if not
 * active any more. */
int vtp_store_recording_interrupt(vtp_store *s, const char *id, int64_t stopped_at,
				  double duration_seconds, const char *tracks,
				  const char *metadata);
/* Recordings in pending/recording ingested by node_id (or by no node). */
int vtp_store_recording_active_of_node(vtp_store *s, const char *node_id,
				       vtp_recording **out, size_t *n);
/* Recordings waiting for processing without a queued or running job:
 * stopped or processing ones whose job was never queued (stopped by an older
 * build, or a crash between the stop and the enqueue) or was lost. Oldest
 * stop first. */
int vtp_store_recording_unqueued(vtp_store *s, vtp_recording **out, size_t *n);
/* Soft-deleted recordings deleted before before_ms, oldest first, at most
 * limit (the retention sweep). */
int vtp_store_recording_deleted_before(vtp_store *s, int64_t before_ms, int limit,
				       vtp_recording **out, size_t *n);
/* Deletes the row (its participants, shares and jobs go with it; the access
 * log stays) when it is still deleted with that deleted_at: a restore, or a
 * delete again, meanwhile leaves it. VTP_ECONFLICT / VTP_ENOTFOUND else. */
int vtp_store_recording_purge(vtp_store *s, const char *id, int64_t deleted_at);
/* Number of recordings in status pending or recording (for /metrics). */
int vtp_store_recording_count_active(vtp_store *s, int64_t *count);

/* stopped -> processing, processing -> done|failed (and stopped -> failed).
 * VTP_ECONFLICT when the recording is not in a status the move starts from. */
int vtp_store_recording_processing(vtp_store *s, const char *id);
int vtp_store_recording_progress(vtp_store *s, const char *id, int progress);
/* processing -> done with the output: storage key, size, media duration,
 * and a metadata object (replacing the old one). */
int vtp_store_recording_done(vtp_store *s, const char *id, const char *file_path,
			     int64_t file_size, double duration_seconds,
			     const char *metadata, int64_t completed_at);
int vtp_store_recording_failed(vtp_store *s, const char *id, const char *error,
			       int64_t completed_at);
/* failed -> stopped again (error, completed_at and progress cleared) for
 * another round of processing; not for a deleted one. VTP_ECONFLICT when
 * it is not failed. */
int vtp_store_recording_requeue(vtp_store *s, const char *id);

/* ---- jobs (the processing queue) ------------------------------------------ */

typedef struct vtp_job {
	char id[VTP_UUID_BUFLEN];
	char recording_id[VTP_UUID_BUFLEN];
	int attempts; /* including the one just claimed */
} vtp_job;

/* Queues a job for a recording, runnable from run_after. VTP_ECONFLICT when
 * it already has a queued or running one (a partial unique index). */
int vtp_store_job_enqueue(vtp_store *s, const char *recording_id, int64_t run_after,
			  vtp_job *out);
/* Claims the oldest runnable queued job for node_id: it becomes running,
 * attempts + 1. Atomic against other claimers, other nodes included
 * (FOR UPDATE SKIP LOCKED on PostgreSQL). VTP_ENOTFOUND when none. */
int vtp_store_job_claim(vtp_store *s, const char *node_id, int64_t now, vtp_job *out);
/* What a claimer weighs before it claims (src/jobs "Capacity"): a runnable
 * queued job with what its recording's composer will decode and encode.
 * The strings are the row's, valid during the callback only. */
typedef struct vtp_job_candidate {
	char id[VTP_UUID_BUFLEN];
	char recording_id[VTP_UUID_BUFLEN];
	int64_t run_after;   /* ms: runnable since */
	int width, height, fps;
	const char *layout;  /* NULL: auto */
	const char *tracks;  /* the recording's tracks JSON, NULL when unknown */
} vtp_job_candidate;

/* The first `limit` runnable queued jobs, oldest first (the order of
 * vtp_store_job_claim). fn returning non-zero stops the walk (returned). */
int vtp_store_job_candidates(vtp_store *s, int64_t now, int limit,
			     int (*fn)(void *ctx, const vtp_job_candidate *c), void *ctx);
/* Claims that job for node_id like vtp_store_job_claim; VTP_ECONFLICT when
 * it is no longer queued (another claimer was first). */
int vtp_store_job_claim_id(vtp_store *s, const char *job_id, const char *node_id, int64_t now,
			   vtp_job *out);
/* running -> queued again, runnable from run_after, with the error seen. */
int vtp_store_job_retry(vtp_store *s, const char *job_id, int64_t run_after,
			const char *error);
/* running -> queued again like retry, but the attempt just claimed is
 * given back (attempts - 1): it was cut by a shutdown of the node, not
 * spent by the composer. */
int vtp_store_job_release(vtp_store *s, const char *job_id, int64_t run_after,
			  const char *error);
/* running -> done, or -> failed with the error. */
int vtp_store_job_finish(vtp_store *s, const char *job_id, bool ok, const char *error);
/* At start: this node's running jobs (interrupted by its stop) are queued
 * again. *count receives how many. */
int vtp_store_job_requeue_node(vtp_store *s, const char *node_id, int64_t now, int *count);

/* ---- webhook outbox (README "Webhooks") ------------------------------------ */

typedef struct vtp_outbox_item {
	char id[VTP_UUID_BUFLEN];
	char *event;   /* "recording.started", ... */
	char *body;    /* the JSON to POST */
	int attempts;  /* including the one just claimed */
} vtp_outbox_item;

void vtp_outbox_item_clear(vtp_outbox_item *it);
/* Adds an event, due at once. */
int vtp_store_outbox_add(vtp_store *s, const char *event, const char *body);
/* Claims the oldest due undelivered event: attempts + 1 and next_at pushed
 * lease_ms ahead (so a claimer that dies leaves it to others). Atomic
 * against other claimers. VTP_ENOTFOUND when none is due. */
int vtp_store_outbox_claim(vtp_store *s, int64_t now, int64_t lease_ms, vtp_outbox_item *out);
/* Delivered: never tried again. */
int vtp_store_outbox_delivered(vtp_store *s, const char *id);
/* Not delivered: due again at next_at, with the error seen. */
int vtp_store_outbox_retry(vtp_store *s, const char *id, int64_t next_at, const char *error);
/* Undelivered events (for /metrics). */
int vtp_store_outbox_pending(vtp_store *s, int64_t *count);

/* ---- room event journal (docs/ARCHITECTURE.md "Events") ------------------- */

typedef struct vtp_room_event {
	char id[VTP_UUID_BUFLEN]; /* UUIDv7: time-ordered */
	const char *room_id;      /* valid during the callback */
	const char *event;        /* "recording-started", ... */
	const char *payload;      /* the JSON the clients receive */
	int64_t created_at;
} vtp_room_event;

/* Appends an event for the clients in room_id, stamped with the database's
 * clock (vtp_store_clock). */
int vtp_store_room_event_add(vtp_store *s, const char *room_id, const char *event,
			     const char *payload);
/* Calls fn for each event created at or after since_ms, oldest first; a
 * nonzero return from fn stops the walk and is returned. */
int vtp_store_room_events_since(vtp_store *s, int64_t since_ms,
				int (*fn)(void *ctx, const vtp_room_event *e), void *ctx);
/* Deletes events created before before_ms. */
int vtp_store_room_events_prune(vtp_store *s, int64_t before_ms);

/* ---- room presence (the Socket.IO people of every node, PostgreSQL) ------- */

/* One row per node, socket and room, for room-members across nodes; rows
 * live while their node's heartbeat refreshes them. Puts (or refreshes the
 * name and role of) a row. */
int vtp_store_presence_put(vtp_store *s, const char *node_id, const char *sid,
			   const char *room_id, const char *user_id, const char *full_name,
			   const char *role);
/* Drops a row; room_id NULL: all of the socket's; sid NULL: all the node's. */
int vtp_store_presence_drop(vtp_store *s, const char *node_id, const char *sid,
			    const char *room_id);
/* Refreshes the node's rows (*kept: how many it has) and deletes every
 * node's rows not refreshed for expire_ms, by the database's clock: a dead
 * node's people leave. expired is called with the room of each row deleted
 * (a room may come more than once); its nonzero return stops the walk. */
int vtp_store_presence_heartbeat(vtp_store *s, const char *node_id, int64_t expire_ms,
				 int64_t *kept, int (*expired)(void *ctx, const char *room_id),
				 void *ctx);
/* *count: different users in the room; fn: the first limit of them, in
 * the order they came (strings valid during the call). */
int vtp_store_presence_members(vtp_store *s, const char *room_id, int limit, int64_t *count,
			       int (*fn)(void *ctx, const char *user_id, const char *full_name,
					 const char *role),
			       void *ctx);

/* ---- participants ------------------------------------------------------- */

typedef struct vtp_participant {
	char id[VTP_UUID_BUFLEN];
	char recording_id[VTP_UUID_BUFLEN];
	char *peer_id;
	char *user_id;    /* may be NULL */
	char *full_name;
	char *role;       /* may be NULL */
	int64_t joined_at;
	int64_t left_at;  /* 0 while present */
} vtp_participant;

void vtp_participant_clear(vtp_participant *p);
void vtp_participant_free_array(vtp_participant *arr, size_t n);
int vtp_store_participant_insert(vtp_store *s, const vtp_participant *p);
/* A peer's media arrived: its row (one per peer and recording) is created
 * with p (whose id must be set), or, when the peer was there before, made
 * present again (left_at cleared; joined_at stays the first arrival).
 * id_out receives the row's id. */
int vtp_store_participant_join(vtp_store *s, const vtp_participant *p,
			       char id_out[VTP_UUID_BUFLEN]);
/* Sets left_at on one participant row if it is still present. */
int vtp_store_participant_left(vtp_store *s, const char *id, int64_t at);
/* Sets left_at on every still-present participant of a recording. */
int vtp_store_participant_left_all(vtp_store *s, const char *recording_id, int64_t at);
/* Ordered by joined_at, then id. */
int vtp_store_participant_list(vtp_store *s, const char *recording_id,
			       vtp_participant **out, size_t *n);

/* ---- shares ------------------------------------------------------------- */

typedef struct vtp_share {
	char id[VTP_UUID_BUFLEN];
	char recording_id[VTP_UUID_BUFLEN];
	char *user_id;     /* exactly one of user_id / role is set */
	char *role;
	char *permission;  /* view | download | share */
	char *shared_by;   /* user id */
	int64_t shared_at;
} vtp_share;

void vtp_share_clear(vtp_share *sh);
void vtp_share_free_array(vtp_share *arr, size_t n);
/* Creates the share. When the recording already has a share for the same
 * user (or role): with replace, its permission, shared_by and shared_at are
 * replaced (*out is the stored row, with the existing id); without replace,
 * nothing changes and VTP_ECONFLICT is returned. *created tells which
 * happened. */
int vtp_store_share_put(vtp_store *s, const vtp_share *sh, bool replace,
			vtp_share *out, bool *created);
int vtp_store_share_list(vtp_store *s, const char *recording_id,
			 vtp_share **out, size_t *n);
/* VTP_ENOTFOUND unless share_id belongs to recording_id. */
int vtp_store_share_delete(vtp_store *s, const char *recording_id,
			   const char *share_id);
/* Highest permission the user holds on the recording through shares to its
 * id or its role: 0 none, 1 view, 2 download, 3 share. */
int vtp_store_share_level(vtp_store *s, const char *recording_id,
			  const char *user_id, const char *role, int *level);

/* ---- access log --------------------------------------------------------- */

typedef struct vtp_access_entry {
	char id[VTP_UUID_BUFLEN];
	char recording_id[VTP_UUID_BUFLEN];
	char *accessed_by;  /* user id; NULL for the system */
	char *access_type;  /* start, stop, view, share, unshare, delete, ... */
	char *ip_address;   /* may be NULL */
	char *user_agent;   /* may be NULL */
	char *detail;       /* JSON object text or NULL */
	int64_t accessed_at;
} vtp_access_entry;

void vtp_access_entry_clear(vtp_access_entry *e);
void vtp_access_entry_free_array(vtp_access_entry *arr, size_t n);
int vtp_store_access_log_insert(vtp_store *s, const vtp_access_entry *e);
/* Inserts n entries in one transaction (all or none). */
int vtp_store_access_log_insert_many(vtp_store *s, const vtp_access_entry *e,
				     size_t n);
/* Newest first; *total counts all entries of the recording. */
int vtp_store_access_log_list(vtp_store *s, const char *recording_id,
			      int limit, int offset, vtp_access_entry **out,
			      size_t *n, int64_t *total);

/* ---- tracks in segments, nodes (docs/ARCHITECTURE.md "Capture in segments") ---- */

/* A track of a recording as its segments reach storage. */
typedef struct vtp_track_state {
	char track_id[VTP_UUID_BUFLEN];
	char node_id[65];     /* the node that captures it */
	int segments;         /* committed: 1..segments are in storage */
	int last_segment;     /* the track's last segment; 0 while it may grow */
	int64_t node_seen_ms; /* that node's last heartbeat; 0: never seen */
} vtp_track_state;

/* A track's capture starts on node_id (nothing committed yet; a second
 * call changes nothing). */
int vtp_store_track_register(vtp_store *s, const char *recording_id, const char *track_id,
			     const char *node_id);
/* Segment `segment` of the track is in storage (and every one before it);
 * last: it is the track's last. VTP_EINVAL also when the recording is gone. */
int vtp_store_track_commit(vtp_store *s, const char *recording_id, const char *track_id,
			   const char *node_id, int segment, bool last, int64_t now);
/* Every track of the recording with its node's last heartbeat, by track id. */
int vtp_store_track_states(vtp_store *s, const char *recording_id,
			   int (*fn)(void *ctx, const vtp_track_state *t), void *ctx);
/* node_id is alive at now (heartbeat). */
int vtp_store_node_seen(vtp_store *s, const char *node_id, int64_t now);
/* Adds the final statistics of some tracks (a JSON array of track objects)
 * to the recording's tracks: a track already there (same trackId) is
 * replaced. Safe against other nodes doing the same at once. */
int vtp_store_recording_merge_tracks(vtp_store *s, const char *id, const char *tracks);

/* A track of node_id that is not whole in storage (no last segment yet,
 * or fewer committed than its last): what a restart must still commit. */
typedef struct vtp_track_pending {
	char recording_id[VTP_UUID_BUFLEN];
	char track_id[VTP_UUID_BUFLEN];
	const char *room_id; /* valid during the callback */
	int segments, last_segment;
} vtp_track_pending;
int vtp_store_tracks_unfinished(vtp_store *s, const char *node_id,
				int (*fn)(void *ctx, const vtp_track_pending *t), void *ctx);

/* ---- WHIP session owners ------------------------------------------------ */

/* Which node holds a live WHIP session (README "WHIP behind a load
 * balancer"). node_url: that node's VTP_NODE_URL. A session id is written
 * once; putting it again replaces the row. */
int vtp_store_whip_owner_put(vtp_store *s, const char *session_id, const char *room_id,
			     const char *node_id, const char *node_url);
/* The owner of session_id in room_id: 0 with node_id and node_url (owned,
 * vtp_free) filled, VTP_ENOTFOUND when no node holds it. */
int vtp_store_whip_owner_get(vtp_store *s, const char *session_id, const char *room_id,
			     char node_id[VTP_UUID_BUFLEN], char **node_url);
/* Removes the row of session_id if node_id holds it (NULL: whoever does). */
int vtp_store_whip_owner_remove(vtp_store *s, const char *session_id, const char *node_id);
/* Removes every row of node_id (its sessions died with its last run);
 * *count (may be NULL) receives how many. */
int vtp_store_whip_owner_remove_node(vtp_store *s, const char *node_id, int *count);

#endif
