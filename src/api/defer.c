/* Slow work off the HTTP threads. A handler that would block for long (an
 * argon2 password check costs ~50 ms by design) calls vtp__defer(): the
 * connection is suspended, a worker runs the work, which replies as usual;
 * the reply is parked on the request and queued by the access handler once
 * the connection is resumed (MHD wants responses queued from there). The
 * queue is bounded: a flood of logins gets 503, the rest of the API stays
 * responsive. Shutdown drains the queue before the daemon stops. */
#include "api_int.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/mem.h"

#define DEFER_THREADS 2
#define DEFER_QUEUE_MAX 256

typedef struct job {
	vtp_req *r;
	vtp_handler work;
} job;

struct vtp__deferq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	job ring[DEFER_QUEUE_MAX];
	size_t head, len;
	bool stopping;
	pthread_t threads[DEFER_THREADS];
};

static void *worker(void *arg)
{
	vtp__deferq *q = arg;

	for (;;) {
		job j;

		pthread_mutex_lock(&q->lock);
		while (q->len == 0 && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->len == 0) { /* stopping and drained */
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		j = q->ring[q->head];
		q->head = (q->head + 1) % DEFER_QUEUE_MAX;
		q->len--;
		pthread_mutex_unlock(&q->lock);

		j.r->in_worker = true;
		j.work(j.r);
		if (!j.r->responded)
			vtp__reply_error(j.r, 500, "internal", NULL, "internal error");
		j.r->in_worker = false;
		/* After this call the request belongs to MHD again. */
		MHD_resume_connection(j.r->conn);
	}
}

vtp__deferq *vtp__deferq_new(void)
{
	vtp__deferq *q = vtp_calloc(1, sizeof(*q));

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	for (int i = 0; i < DEFER_THREADS; i++)
		if (pthread_create(&q->threads[i], NULL, worker, q) != 0) {
			VTP_ERROR("cannot start a worker thread");
			abort();
		}
	return q;
}

void vtp__deferq_drain(vtp__deferq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (int i = 0; i < DEFER_THREADS; i++)
		pthread_join(q->threads[i], NULL);
}

void vtp__deferq_free(vtp__deferq *q)
{
	if (!q)
		return;
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	vtp_free(q);
}

bool vtp__defer(vtp_req *r, vtp_handler work)
{
	vtp__deferq *q = r->api->deferq;
	bool queued = false;

	pthread_mutex_lock(&q->lock);
	if (!q->stopping && q->len < DEFER_QUEUE_MAX) {
		/* Suspend and mark before a worker can see the job: from
		 * then on the worker owns r until it resumes the connection. */
		r->deferred = true;
		MHD_suspend_connection(r->conn);
		q->ring[(q->head + q->len) % DEFER_QUEUE_MAX] = (job){r, work};
		q->len++;
		queued = true;
		pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	if (!queued) {
		snprintf(r->retry_after, sizeof(r->retry_after), "1");
		vtp__reply_error(r, 503, "unavailable", NULL,
				 "the server is busy; try again in a moment");
	}
	return queued;
}
