/* The HTTP API server (libmicrohttpd, internal epoll thread pool): routing,
 * authentication, body limits, the error shape of docs/openapi.yaml, one log line
 * and metrics per request. Business rules live in src/recording. */
#ifndef VTP_API_H
#define VTP_API_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "events/events.h"
#include "events/webhook.h"
#include "ingest/ingest.h"
#include "recording/recording.h"
#include "storage/storage.h"
#include "store/store.h"

typedef struct vtp_api vtp_api;

typedef struct vtp_api_config {
	const char *host;          /* listen address (numeric or name) */
	int port;                  /* 0: any free port */
	int threads;               /* thread pool size */
	vtp_store *store;          /* borrowed */
	vtp_recordings *recordings;/* borrowed */
	const unsigned char *jwt_key; /* borrowed */
	size_t jwt_key_len;
	const char *data_dir;      /* for health checks */
	int token_ttl_seconds;     /* login token lifetime */
	bool response_cache;       /* keep rendered answers (listcache.c, recording service) */
	vtp_ingest *ingest;        /* borrowed; NULL: no media ingest */
	vtp_webhooks *webhooks;    /* borrowed; NULL: no webhook delivery here */
	vtp_events *events;        /* borrowed; NULL: /socket.io/ answers 503 */
	vtp_storage *storage;      /* borrowed: where finished media lives */
	bool s3_proxy;             /* stream remote objects instead of redirecting */
	/* borrowed; NULL or "": /metrics is public and names no recording or
	 * track; else it needs this bearer token and includes the per-track
	 * series */
	const char *metrics_token;
	int header_timeout_seconds; /* whole request head within this; 0: 10 s */
	/* WHIP behind a load balancer (h_whip.c): this node's id (borrowed)
	 * and the base URL the other nodes reach it at (borrowed; NULL:
	 * http://127.0.0.1:PORT, or the listen host when it is not a
	 * wildcard). */
	const char *node_id;
	const char *node_url;
} vtp_api_config;

/* Starts serving; returns NULL with a reason in err on failure. */
vtp_api *vtp_api_start(const vtp_api_config *cfg, char *err, size_t errlen);
/* The bound port (useful when cfg->port was 0). */
int vtp_api_port(const vtp_api *api);
/* Stops accepting, finishes in-flight requests, frees everything. */
void vtp_api_stop(vtp_api *api);

#endif
