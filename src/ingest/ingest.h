/* Plain-RTP ingest: the UDP loop that receives every registered track and
 * writes it, packet for packet, to its packet log (src/capture).
 *
 * Threads. One loop thread owns every media socket: epoll, recvmmsg
 * batches, RTP/RTCP checks, statistics, feedback (PLI/FIR, receiver
 * reports) and appends to the packet logs; nothing on that path takes a
 * lock that an HTTP thread can hold. HTTP threads reach the loop through a
 * command queue and an eventfd and wait for the loop's answer when they
 * need one (ending a track). A second thread, the keeper, runs everything
 * slow the loop must not wait for: syncing every log to disk at least every
 * second (fdatasync per log, or one syncfs per file system once 16 or more
 * logs are open), closing finished logs, and the participant joined/left
 * events it reports to the recording service (database writes).
 *
 * Live statistics are published by the loop as relaxed atomics in each
 * track and read from there by anyone; tracks are reference counted, so a
 * reader never sees one freed under it. */
#ifndef VTP_INGEST_H
#define VTP_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/fail.h"
#include "recording/recording.h"

typedef struct vtp_ingest vtp_ingest;

typedef struct vtp_ingest_config {
	const char *public_ip;  /* put in registrations; bound when local */
	int port_min, port_max; /* inclusive */
	vtp_recordings *recordings; /* borrowed: authorisation, participants */
	const char *node_id;
	/* Seconds without packets before a peer counts as gone (default 10). */
	int idle_seconds;
	/* Socket receive buffer per track, bytes (default 4 MiB). */
	int rcvbuf;
	/* WHIP: seconds without media (or without connectivity checks) before
	 * a session ends (default 30); the most a publisher is asked to send
	 * (REMB), bits per second (default 2.5 Mbit/s). */
	int whip_timeout_seconds;
	int whip_max_bitrate;
	/* A live video sender that sent no keyframe for this long is asked for
	 * one (PLI), milliseconds; 0: only when needed (first packet, loss). */
	int keyframe_interval_ms;
	/* A track's packet log closes a segment and opens the next at least
	 * this often (default 10): what a crash can lose (capture.h). */
	int segment_seconds;
	/* Where closed segments are committed (borrowed; NULL: nowhere, the
	 * tests of the packet path). */
	struct vtp_storage *storage;
	/* A segment waiting for storage this long makes the node unhealthy
	 * and warns on its recording (default 30). */
	int spool_alert_seconds;
	/* A node silent this long counts as lost (VTP_NODE_TIMEOUT, default
	 * 30): a restart does not end a recording that a live node still
	 * captures. */
	int node_timeout_seconds;
	/* Called once when a WHIP session ends, however it ends (DELETE,
	 * timeout, replaced, shutdown), from a thread that may use the
	 * database (never the packet loop): the owner table forgets it.
	 * May be NULL. */
	void (*whip_ended)(void *ctx, const char *session_id);
	void *whip_ended_ctx;
} vtp_ingest_config;

/* The segment spool's state (/healthz, /metrics). */
typedef struct vtp_spool_state {
	int pending;          /* segments waiting for storage */
	int64_t oldest_ms;    /* how long the oldest has waited */
	bool failing;         /* the last attempt failed */
	bool stuck;           /* a segment waited past the limit (unhealthy) */
	char last_error[300];
	uint64_t committed, failures, bytes;
} vtp_spool_state;
void vtp_ingest_spool_state(vtp_ingest *ing, vtp_spool_state *out);

/* Starts the loop and keeper threads. NULL with a reason in err. Also
 * registers itself as the recording service's media hooks (stop ends the
 * captures, reads include live track statistics). */
vtp_ingest *vtp_ingest_start(const vtp_ingest_config *cfg, char *err, size_t errlen);
/* Ends every track (logs synced), stops the threads, frees. */
void vtp_ingest_stop(vtp_ingest *ing);

/* Registers a track on a recording for `who`, from a parsed JSON body
 * (POST .../tracks in docs/openapi.yaml). Fills info_json with {"trackId","ip","port","rtcpMux"}.
 * Errors: 400 fields, 404 recording, 403, 409 not_active, 503 no_ports. */
int vtp_ingest_add_track(vtp_ingest *ing, const vtp_actor *who,
			 const char *recording_id, json_t *body,
			 vtp_buf *info_json, vtp_fail *fail);
/* Ends one track (the peer left): its log is synced and closed when this
 * returns. 404 when unknown on this recording. */
int vtp_ingest_end_track(vtp_ingest *ing, const vtp_actor *who,
			 const char *recording_id, const char *track_id,
			 vtp_fail *fail);

/* ---- WHIP (RFC 9725, README "WebRTC (WHIP)") -------------------------------- */

/* Who publishes: the token's user. Strings borrowed. */
typedef struct vtp_whip_publisher {
	const vtp_actor *who;
	const char *full_name;
	bool screen;           /* ?source=screen: a screen share (README "Sources") */
} vtp_whip_publisher;

/* A publisher's offer for a room: the session is created (its own UDP
 * port), the answer SDP is appended to answer and its id written to
 * session_id. While the room has an active recording, the session's audio
 * and video are captured as tracks of it, and the publisher is a
 * participant. A screen share (pub->screen) ends the same user's earlier
 * screen share in the room, if any (replaced; not for roles service and
 * admin, which publish for many), and its tracks are credited to the
 * user's camera session in the room when there is one (the same peerId).
 * Errors: 400 invalid_sdp / invalid_input (roomId), 429
 * too_many_sessions (16 at once or 30 a minute per user, but for roles
 * service and admin), 503 no_ports / no_capacity. */
int vtp_ingest_whip_create(vtp_ingest *ing, const vtp_whip_publisher *pub, const char *room_id,
			   const char *sdp, size_t sdp_len, vtp_buf *answer,
			   char session_id[VTP_UUID_BUFLEN], vtp_fail *fail);
/* Ends a session of the room (its captures synced first). Only its
 * publisher or an admin: anyone else gets 404, as for an unknown one. */
int vtp_ingest_whip_delete(vtp_ingest *ing, const vtp_actor *who, const char *room_id,
			   const char *session_id, vtp_fail *fail);
/* Whether this node holds a live session session_id in room_id (whoever
 * published it). */
bool vtp_ingest_whip_exists(vtp_ingest *ing, const char *room_id, const char *session_id);

/* Prometheus lines for /metrics (totals and per-track series). */
void vtp_ingest_metrics(vtp_ingest *ing, vtp_buf *out);

/* Recovery after a crash: every recording of this node still marked
 * pending/recording becomes stopped, with its tracks summarised from their
 * packet logs and a note in metadata. Run once at start, before serving.
 * *recovered receives how many. */
int vtp_ingest_recover(vtp_ingest *ing, int *recovered);

#endif
