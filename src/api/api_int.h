/* Internals shared by the files of src/api: the per-request object, the
 * route table and the reply helpers. Not included outside src/api. */
#ifndef VTP_API_INT_H
#define VTP_API_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "core/buf.h"
#include "core/fail.h"
#include "core/gencache.h"
#include "recording/recording.h"

#define VTP_API_JSON_LIMIT (1u << 20) /* 1 MiB */
#define VTP_API_SDP_LIMIT (64u * 1024)  /* WHIP offers */
#define VTP_API_MAX_PARAMS 2

typedef struct vtp_req vtp_req;
typedef struct vtp__authcache vtp__authcache;
typedef struct vtp__deferq vtp__deferq;
typedef struct vtp__headwatch vtp__headwatch;
typedef void (*vtp_handler)(vtp_req *r);

/* AUTH_MEDIA: a Bearer token, or a signed media token in ?token= (auth.h)
 * for the recording in the route's first parameter. */
enum { AUTH_NONE, AUTH_USER, AUTH_MEDIA_VIEW, AUTH_MEDIA_DOWNLOAD };
enum { BODY_NONE, BODY_JSON, BODY_SDP };

typedef struct vtp_route {
	const char *method;
	const char *pattern;   /* "/api/v1/recordings/{id}/shares/{id}" */
	vtp_handler handler;
	int auth;
	int body;
	const char *name;      /* metrics label */
} vtp_route;

struct vtp_api {
	struct MHD_Daemon *daemon;
	vtp_api_config cfg;
	vtp_throttle *throttle;    /* failed logins per email and client address */
	vtp_throttle *ip_throttle; /* failed logins per client address */
	vtp_throttle *account_throttle; /* failed logins per email (h_auth.c) */
	vtp__authcache *authcache;
	vtp__deferq *deferq;       /* slow work (password checks) */
	vtp__headwatch *headwatch; /* the request-head deadline */
	vtp_gencache *listcache;   /* rendered list pages (listcache.c); NULL: off */
	struct vtp__dlseen *dlseen; /* recent downloads, one access-log entry each (h_media.c) */
	int port;
};

struct vtp_req {
	vtp_api *api;
	struct MHD_Connection *conn;
	const char *method;
	const char *version;   /* "HTTP/1.1"; MHD's, valid for the request */
	char *path;            /* decoded path, owned */
	const vtp_route *route;
	int route_index;       /* for metrics; -1 unmatched */
	const char *params[VTP_API_MAX_PARAMS]; /* point into path copy */
	char *path_segments;   /* owned copy split in place */
	char request_id[17];
	char ip[64];
	char *user_agent;      /* sanitised copy, owned; NULL if absent */
	int64_t start_us;
	int status;
	bool responded;
	bool body_too_big;
	vtp_buf body;
	json_t *json;          /* parsed body for BODY_JSON routes */
	char allow[128];       /* Allow header for 405 */
	char retry_after[24];  /* Retry-After header for 429 */
	bool deferred;         /* handed to a worker (set before it can run) */
	bool in_worker;        /* a deferred worker is replying */
	struct MHD_Response *parked; /* reply made by a worker, queued on resume */
	int parked_status;
	bool close_connection; /* Connection: close on the reply (bad framing) */
	bool cors;             /* WHIP: answers readable from other origins */
	bool authed;
	vtp_user user;
	vtp_actor actor;
};

/* router.c */
extern const vtp_route vtp__routes[];
extern const int vtp__route_count;
/* Resolves a path (given as a copy the matcher splits in place; params
 * point into it) and a method. Returns the route or NULL; on NULL, *status
 * is 404 or 405 and allow (when 405) lists the permitted methods. */
const vtp_route *vtp__route_match(const char *method, char *segments_copy,
				  const char **params,
				  int *route_index, int *status, char *allow,
				  size_t allow_len);

/* response.c: each queues exactly one response on the request. */
void vtp__reply_json(vtp_req *r, int status, json_t *body); /* consumes body */
/* Sends the bytes of a JSON buffer (taken over and emptied). */
void vtp__reply_buf(vtp_req *r, int status, vtp_buf *json);
void vtp__reply_text(vtp_req *r, int status, const char *content_type,
		     const char *text, size_t len);
void vtp__reply_fail(vtp_req *r, const vtp_fail *fail);
/* Queues resp (taken over) with the common headers, its Content-Type (when
 * non-NULL) and Cache-Control. */
void vtp__reply_response(vtp_req *r, int status, struct MHD_Response *resp, const char *ctype,
			 const char *cache_control);
void vtp__reply_error(vtp_req *r, int status, const char *code,
		      const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int vtp__status_for(int code);
/* Query parameter or NULL. */
const char *vtp__query(vtp_req *r, const char *name);

/* authcache.c: verified tokens -> user snapshots (see the file). */
vtp__authcache *vtp__authcache_new(void);
void vtp__authcache_free(vtp__authcache *c);
/* 0 and a copy of the user on a fresh hit, else VTP_ENOTFOUND. */
int vtp__authcache_get(vtp__authcache *c, const char *token, int64_t now_ms, vtp_user *out);
void vtp__authcache_put(vtp__authcache *c, const char *token, int64_t exp_s,
			int64_t now_ms, const vtp_user *u);

/* headwatch.c: the request-head deadline (see the file). Start before the
 * daemon, stop (the sweep) and free after it has stopped. idle_seconds: how
 * long a kept-alive connection may wait for its next request (MHD's
 * connection timeout) before that head's own deadline starts. */
#define VTP__HTTP_IDLE_TIMEOUT 30
vtp__headwatch *vtp__headwatch_new(int timeout_seconds, int idle_seconds);
void vtp__headwatch_free(vtp__headwatch *w);
/* The MHD_OPTION_NOTIFY_CONNECTION callback (cls: the watch). */
void vtp__headwatch_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			   enum MHD_ConnectionNotificationCode code);
/* The head is complete (first access-handler call); false when the
 * connection was already cut off for being too slow: drop the request. */
bool vtp__headwatch_head_done(vtp__headwatch *w, struct MHD_Connection *conn);
/* The request completed; the next head on this connection starts now. */
void vtp__headwatch_rearm(vtp__headwatch *w, struct MHD_Connection *conn);
uint64_t vtp__headwatch_timeouts(vtp__headwatch *w);

/* listcache.c: the key of a rendered list page (see the file); false when
 * the query is too long to keep. */
#define VTP__LIST_SLOTS 256
#define VTP__LIST_BODY_MAX (64 * 1024)
bool vtp__list_key(const vtp_actor *who, const vtp_list_query *q,
		   char key[VTP_GENCACHE_KEY_MAX], size_t *len);

/* defer.c: runs `work` on a worker thread with the connection suspended;
 * work replies with the usual helpers. When the queue is full it replies 503
 * itself and returns false. */
vtp__deferq *vtp__deferq_new(void);
void vtp__deferq_drain(vtp__deferq *q); /* finishes queued work, stops workers */
void vtp__deferq_free(vtp__deferq *q);
bool vtp__defer(vtp_req *r, vtp_handler work);

/* metrics.c */
void vtp__metrics_observe(int route_index, int status, int64_t micros);
void vtp__metrics_render(vtp_buf *out, int64_t active_recordings, uint64_t audit_lost);

/* h_media.c */
/* One "bytes=a-b" / "bytes=a-" / "bytes=-n" against size. Returns 1 with
 * the range (0 <= off, len >= 1, off + len <= size), 0 to send the whole
 * file (no usable Range: absent, malformed or several ranges), -1 when
 * unsatisfiable (416). */
int vtp__parse_range(const char *h, int64_t size, int64_t *off, int64_t *len);
/* The playlist with ?token= on every URI in it (players resolve segment
 * names against the playlist's URL but drop its query). 0, VTP_EINVAL on
 * an unterminated URI="...", VTP_ETOOBIG past out's cap. */
int vtp__rewrite_playlist(const char *in, size_t len, const char *token, vtp_buf *out);
struct vtp__dlseen *vtp__dlseen_new(void);
void vtp__dlseen_free(struct vtp__dlseen *d);

/* handlers */
void vtp__h_healthz(vtp_req *r);
void vtp__h_metrics(vtp_req *r);
void vtp__h_login(vtp_req *r);
void vtp__h_me(vtp_req *r);
void vtp__h_start(vtp_req *r);
void vtp__h_stop(vtp_req *r);
void vtp__h_stop_alias(vtp_req *r);
void vtp__h_get(vtp_req *r);
void vtp__h_get_alias(vtp_req *r);
void vtp__h_list(vtp_req *r);
void vtp__h_delete(vtp_req *r);
void vtp__h_delete_alias(vtp_req *r);
void vtp__h_restore(vtp_req *r);
void vtp__h_retry(vtp_req *r);
void vtp__h_participants(vtp_req *r);
void vtp__h_shares_list(vtp_req *r);
void vtp__h_share_create(vtp_req *r);
void vtp__h_share_delete(vtp_req *r);
void vtp__h_access_log(vtp_req *r);
void vtp__h_track_add(vtp_req *r);
void vtp__h_track_end(vtp_req *r);
void vtp__h_download(vtp_req *r);
void vtp__h_web_root(vtp_req *r);
void vtp__h_web(vtp_req *r);
void vtp__h_socketio(vtp_req *r);
void vtp__h_web_vendor(vtp_req *r);
void vtp__h_hls(vtp_req *r);
void vtp__h_thumbnail(vtp_req *r);
void vtp__h_whip_create(vtp_req *r);
void vtp__h_whip_delete(vtp_req *r);
void vtp__h_whip_options(vtp_req *r);
void vtp__h_whip_patch(vtp_req *r);

#endif
