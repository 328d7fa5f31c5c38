/* The audit writer: access-log entries are queued by request threads and
 * written by one background thread in batches, so a busy read path (every
 * GET of a recording is a "view") never waits for a database write or
 * contends for SQLite's write lock. Entries for state changes are written
 * durably: the caller waits until their batch is committed. A view entry may
 * be lost only in a crash, within one batch interval. */
#ifndef VTP_RECORDING_AUDIT_H
#define VTP_RECORDING_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

typedef struct vtp_audit vtp_audit;

vtp_audit *vtp_audit_new(vtp_store *store);
/* Writes everything queued, then stops the thread. NULL-safe. */
void vtp_audit_free(vtp_audit *a);
/* Copies e into the queue. With durable, returns only after the entry is
 * committed (0) or failed (negative code). Without, returns 0 at once, or
 * VTP_ELIMIT when the queue is full (the entry is dropped and counted). */
int vtp_audit_add(vtp_audit *a, const vtp_access_entry *e, bool durable);
/* Blocks until everything queued so far is written. */
void vtp_audit_flush(vtp_audit *a);
/* Entries dropped or failed since start (for /metrics). */
uint64_t vtp_audit_lost(vtp_audit *a);

#endif
