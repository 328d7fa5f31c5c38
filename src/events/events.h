/* Real-time events (README "Real-time events"): the Socket.IO v4 protocol (Engine.IO 4,
 * WebSocket transport only) on connections the HTTP layer has upgraded
 * (src/api/h_socketio.c), with wslay doing the WebSocket framing.
 *
 * One thread owns every connection (epoll). Clients authenticate with
 * auth.token in the Socket.IO CONNECT, join rooms, and may start and stop
 * recordings with the REST rules (the recording service). Status changes
 * reach the rooms through the room event journal in the database (store.h),
 * which every process that changes a recording writes (this server, other
 * servers, workers, compose children) and this thread reads four times a
 * second while it has clients. With several nodes on one PostgreSQL, who is
 * in a room is kept in the database too (room_presence), so room-members
 * counts every node's people. Nothing here runs on an HTTP or ingest
 * thread: a slow client only ever delays itself. */
#ifndef VTP_EVENTS_EVENTS_H
#define VTP_EVENTS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "recording/recording.h"
#include "store/store.h"

typedef struct vtp_events vtp_events;

typedef struct vtp_events_config {
	vtp_store *store;             /* borrowed */
	vtp_recordings *recordings;   /* borrowed */
	const unsigned char *jwt_key; /* borrowed */
	size_t jwt_key_len;
	int ping_interval_ms;         /* Engine.IO pingInterval; pingTimeout is the same */
	int max_connections;          /* above it new connections are refused */
	/* Several nodes on one database (PostgreSQL): room-members counts the
	 * people of every node, kept in the store's room_presence under
	 * node_id (borrowed), refreshed by a heartbeat. */
	bool shared_presence;
	const char *node_id;
} vtp_events_config;

/* Starts the events thread; NULL with a reason in err on failure. */
vtp_events *vtp_events_start(const vtp_events_config *cfg, char *err, size_t errlen);

/* Takes over an upgraded WebSocket connection: fd (already past the HTTP
 * 101), extra bytes the HTTP layer read beyond the request, who is on the
 * other end (ip, user agent; copied). When the connection ends, release(arg)
 * is called once, from the events thread, and fd must not be used after.
 * Returns 0, or -1 when refused (stopping, full): release is then called
 * before it returns. Thread-safe. */
int vtp_events_adopt(vtp_events *ev, int fd, const void *extra, size_t extra_len,
		     const char *ip, const char *user_agent, void (*release)(void *arg),
		     void *arg);

/* A room event was just written by this process: read the journal now
 * rather than at the next poll. Thread-safe, never blocks; the signature
 * is that of vtp_recordings_set_event_hook. */
void vtp_events_notify(void *ev);

/* Closes every connection (releasing each) and ends the thread; later
 * adoptions are refused. Call before the HTTP server stops. */
void vtp_events_stop(vtp_events *ev);
/* Frees what is left; after vtp_events_stop and after the HTTP server stopped. */
void vtp_events_free(vtp_events *ev);

/* Prometheus lines for /metrics. */
void vtp_events_metrics(vtp_events *ev, vtp_buf *out);

#endif
