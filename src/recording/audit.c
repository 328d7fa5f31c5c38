/* Batched access-log writer (see audit.h). One queue under one mutex; the
 * writer swaps the whole queue out and writes it in one store call. A caller
 * that waits (durable) puts a ticket on its stack; the writer fills in that
 * entry's outcome, so one failed entry is never reported to another caller. */
#include "audit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"

#define AUDIT_QUEUE_MAX 100000 /* entries waiting; beyond this views are dropped */
#define AUDIT_BATCH 512        /* write at once when this many are waiting */
#define AUDIT_DELAY_MS 10      /* else gather views for at most this long */

typedef struct ticket {
	bool done;
	int rc;
} ticket;

typedef struct item {
	vtp_access_entry e;
	ticket *t; /* NULL: nobody waits */
} item;

struct vtp_audit {
	vtp_store *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;      /* writer: work to do */
	pthread_cond_t committed; /* waiters: a batch finished */
	item *queue;
	size_t len, cap;
	size_t waiting;           /* durable items in the queue */
	uint64_t added, written;  /* for vtp_audit_flush */
	uint64_t lost;
	bool stopping;
};

static void entry_copy(vtp_access_entry *dst, const vtp_access_entry *src)
{
	memcpy(dst->id, src->id, sizeof(dst->id));
	memcpy(dst->recording_id, src->recording_id, sizeof(dst->recording_id));
	dst->accessed_by = vtp_strdup(src->accessed_by);
	dst->access_type = vtp_strdup(src->access_type);
	dst->ip_address = vtp_strdup(src->ip_address);
	dst->user_agent = vtp_strdup(src->user_agent);
	dst->detail = vtp_strdup(src->detail);
	dst->accessed_at = src->accessed_at;
}

/* Views may wait a little to share one transaction; a durable item cannot. */
static void gather(vtp_audit *a)
{
	struct timespec deadline;

	if (a->stopping || a->waiting || a->len >= AUDIT_BATCH)
		return;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += AUDIT_DELAY_MS * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (!a->stopping && !a->waiting && a->len < AUDIT_BATCH &&
	       pthread_cond_timedwait(&a->wake, &a->lock, &deadline) == 0)
		;
}

/* Writes n items; returns how many could not be written. */
static size_t write_items(vtp_audit *a, item *batch, size_t n, vtp_access_entry **scratch,
			  size_t *scratch_cap)
{
	size_t failed = 0;
	int rc;

	if (*scratch_cap < n) {
		*scratch_cap = n;
		*scratch = vtp_realloc(*scratch, n * sizeof(**scratch));
	}
	for (size_t i = 0; i < n; i++)
		(*scratch)[i] = batch[i].e;
	rc = vtp_store_access_log_insert_many(a->store, *scratch, n);
	for (size_t i = 0; i < n; i++) {
		int one = rc;

		/* A failed batch is retried entry by entry: one bad entry must
		 * not take the others with it. */
		if (rc && n > 1)
			one = vtp_store_access_log_insert(a->store, &batch[i].e);
		if (one)
			failed++;
		if (batch[i].t)
			batch[i].t->rc = one;
	}
	if (failed)
		VTP_ERROR("audit: %zu of %zu access-log entries not written: %s", failed, n,
			  vtp_strerror(rc));
	return failed;
}

static void *writer(void *arg)
{
	vtp_audit *a = arg;
	item *batch = NULL;
	vtp_access_entry *scratch = NULL;
	size_t n, cap = 0, scratch_cap = 0, failed;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (a->len == 0 && !a->stopping)
			pthread_cond_wait(&a->wake, &a->lock);
		if (a->len == 0 && a->stopping)
			break;
		gather(a);
		{ /* take the whole queue; hand back the spare buffer */
			item *q = a->queue;
			size_t qcap = a->cap;

			a->queue = batch;
			a->cap = cap;
			batch = q;
			cap = qcap;
			n = a->len;
			a->len = 0;
			a->waiting = 0;
		}
		pthread_mutex_unlock(&a->lock);

		failed = write_items(a, batch, n, &scratch, &scratch_cap);

		pthread_mutex_lock(&a->lock);
		for (size_t i = 0; i < n; i++) {
			if (batch[i].t)
				batch[i].t->done = true;
			vtp_access_entry_clear(&batch[i].e);
		}
		a->lost += failed;
		a->written += n;
		pthread_cond_broadcast(&a->committed);
	}
	pthread_mutex_unlock(&a->lock);
	vtp_free(batch);
	vtp_free(scratch);
	return NULL;
}

vtp_audit *vtp_audit_new(vtp_store *store)
{
	vtp_audit *a = vtp_calloc(1, sizeof(*a));
	pthread_condattr_t attr;

	a->store = store;
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&a->committed, NULL);
	if (pthread_create(&a->thread, NULL, writer, a) != 0) {
		VTP_ERROR("audit: cannot start the writer thread");
		abort();
	}
	return a;
}

void vtp_audit_free(vtp_audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL); /* the writer drains the queue first */
	vtp_free(a->queue);
	pthread_cond_destroy(&a->committed);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	vtp_free(a);
}

int vtp_audit_add(vtp_audit *a, const vtp_access_entry *e, bool durable)
{
	ticket t = {false, 0};
	int rc = 0;

	pthread_mutex_lock(&a->lock);
	if (!durable && a->len >= AUDIT_QUEUE_MAX) {
		a->lost++;
		pthread_mutex_unlock(&a->lock);
		return VTP_ELIMIT;
	}
	if (a->len == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 256;
		a->queue = vtp_realloc(a->queue, a->cap * sizeof(*a->queue));
	}
	entry_copy(&a->queue[a->len].e, e);
	a->queue[a->len].t = durable ? &t : NULL;
	a->len++;
	a->added++;
	if (durable)
		a->waiting++;
	/* Wake the writer only when it has something new to decide: the first
	 * entry, a full batch, or a caller that waits. */
	if (a->len == 1 || a->len == AUDIT_BATCH || durable)
		pthread_cond_signal(&a->wake);
	if (durable) {
		while (!t.done)
			pthread_cond_wait(&a->committed, &a->lock);
		rc = t.rc;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void vtp_audit_flush(vtp_audit *a)
{
	uint64_t target;

	pthread_mutex_lock(&a->lock);
	target = a->added;
	a->waiting++; /* no gathering delay while someone waits */
	pthread_cond_signal(&a->wake);
	while (a->written < target)
		pthread_cond_wait(&a->committed, &a->lock);
	pthread_mutex_unlock(&a->lock);
}

uint64_t vtp_audit_lost(vtp_audit *a)
{
	uint64_t n;

	pthread_mutex_lock(&a->lock);
	n = a->lost;
	pthread_mutex_unlock(&a->lock);
	return n;
}
