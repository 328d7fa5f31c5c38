/* Webhook delivery (README "Webhooks"): a thread that takes due events from the
 * persistent outbox (store.h, written by the recording service with each
 * status change) and POSTs them to VTP_WEBHOOK_URL with
 * X-VTP-Signature: sha256=<hex HMAC-SHA256 of the body with
 * VTP_WEBHOOK_SECRET>. A 2xx answer delivers an event; anything else
 * (errors, timeouts, other statuses) retries it with back-off: 1 s, 2 s,
 * 4 s, ... up to an hour between tries, for as long as it takes (at least
 * once). Several nodes may deliver from one outbox: a claim leases an
 * event for a minute. Nothing here runs on a request's or the ingest's
 * path, so a slow or dead receiver never blocks a recording. */
#ifndef VTP_EVENTS_WEBHOOK_H
#define VTP_EVENTS_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

typedef struct vtp_webhooks vtp_webhooks;

/* store is borrowed; url and secret are copied (secret may be NULL: then
 * the requests carry no signature). NULL with a reason in err. */
vtp_webhooks *vtp_webhooks_start(vtp_store *store, const char *url, const char *secret,
				 char *err, size_t errlen);
/* Finishes the delivery in flight (bounded by its timeout) and stops. */
void vtp_webhooks_stop(vtp_webhooks *wh);
/* Prometheus lines for /metrics. */
void vtp_webhooks_metrics(vtp_webhooks *wh, vtp_buf *out);

#endif
