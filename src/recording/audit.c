/* Batched access-log writer (see audit.h). One queue under one mutex; the
 * writer swaps the whole queue out and writes it in one store call. */
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

struct vtp_audit {
	vtp_store *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;      /* writer: work to do */
	pthread_cond_t committed; /* waiters: a batch finished */
	vtp_access_entry *queue;
	size_t len, cap;
	uint64_t queued_seq;      /* seq of the last entry queued */
	uint64_t done_seq;        /* every entry <= done_seq is written */
	uint64_t failed_from;     /* first seq of the last failed batch */
	uint64_t failed_to;
	uint64_t lost;
	uint64_t durable_waiting;  /* highest seq a caller waits for */
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

static void *writer(void *arg)
{
	vtp_audit *a = arg;
	vtp_access_entry *batch = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		uint64_t last;
		int rc;

		while (a->len == 0 && !a->stopping)
			pthread_cond_wait(&a->wake, &a->lock);
		if (a->len == 0 && a->stopping)
			break;
		/* Views can wait a little to share one transaction; a caller
		 * waiting for a durable entry cannot. */
		if (!a->stopping && a->durable_waiting <= a->done_seq && a->len < AUDIT_BATCH) {
			struct timespec deadline;

			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_nsec += AUDIT_DELAY_MS * 1000000L;
			if (deadline.tv_nsec >= 1000000000L) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000L;
			}
			while (!a->stopping && a->durable_waiting <= a->done_seq &&
			       a->len < AUDIT_BATCH &&
			       pthread_cond_timedwait(&a->wake, &a->lock, &deadline) == 0)
				;
		}
		/* swap the queue with the (empty) batch buffer */
		{
			vtp_access_entry *q = a->queue;
			size_t qcap = a->cap;

			a->queue = batch;
			a->cap = cap;
			batch = q;
			cap = qcap;
			n = a->len;
			a->len = 0;
		}
		last = a->queued_seq;
		pthread_mutex_unlock(&a->lock);

		rc = vtp_store_access_log_insert_many(a->store, batch, n);
		if (rc)
			VTP_ERROR("audit: %zu access-log entries not written: %s", n,
				  vtp_strerror(rc));
		for (size_t i = 0; i < n; i++)
			vtp_access_entry_clear(&batch[i]);

		pthread_mutex_lock(&a->lock);
		if (rc) {
			a->failed_from = last - n + 1;
			a->failed_to = last;
			a->lost += n;
		}
		a->done_seq = last;
		pthread_cond_broadcast(&a->committed);
	}
	pthread_mutex_unlock(&a->lock);
	vtp_free(batch);
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
	pthread_join(a->thread, NULL);
	for (size_t i = 0; i < a->len; i++)
		vtp_access_entry_clear(&a->queue[i]);
	vtp_free(a->queue);
	pthread_cond_destroy(&a->committed);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	vtp_free(a);
}

int vtp_audit_add(vtp_audit *a, const vtp_access_entry *e, bool durable)
{
	uint64_t seq;
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
	entry_copy(&a->queue[a->len++], e);
	seq = ++a->queued_seq;
	if (durable)
		a->durable_waiting = seq;
	/* Wake the writer only when it has something new to decide: the first
	 * entry, a full batch, or a caller that waits. */
	if (a->len == 1 || a->len == AUDIT_BATCH || durable)
		pthread_cond_signal(&a->wake);
	if (durable) {
		while (a->done_seq < seq)
			pthread_cond_wait(&a->committed, &a->lock);
		if (seq >= a->failed_from && seq <= a->failed_to)
			rc = VTP_EDB;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void vtp_audit_flush(vtp_audit *a)
{
	pthread_mutex_lock(&a->lock);
	{
		uint64_t seq = a->queued_seq;

		if (seq > a->durable_waiting)
			a->durable_waiting = seq;
		pthread_cond_signal(&a->wake);
		while (a->done_seq < seq)
			pthread_cond_wait(&a->committed, &a->lock);
	}
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
