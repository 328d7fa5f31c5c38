/* Processing jobs: the worker threads of a node. Each claims a job from the
 * store's queue and runs it as a child process, `vtp-recorder compose
 * --recording ID` (/proc/self/exe, the node's configuration passed in the
 * environment), so that a libav crash or hang costs one attempt, never the
 * server. The child's exit decides:
 *   0  done (the child wrote the recording's done state)
 *   3  no media: permanent, the child already failed the recording
 *   2  refused (not composable): permanent, the recording is failed
 *   1, a signal, or the timeout (60 s + 3 x the recording's duration,
 *      then SIGKILL): retried with back-off (10 s, then 40 s) up to 3
 *      attempts, then the recording is failed with a readable error such as
 *      "composer crashed (SIGSEGV) on 3 attempts: <its last stderr line>".
 * Idle workers sleep until a stop on this node queues a job (the wake hook)
 * or the next look at the queue (every second: other nodes queue too).
 * Capacity: each job has a cost in core-equivalents (capacity.c: from the
 * output size and fps, and the cameras its layout decodes; audio-only and
 * the single-camera fast path nearly free). A worker claims the oldest
 * runnable job whose cost fits in what the node's capacity
 * (VTP_WORKER_CAPACITY) leaves beside the jobs it runs; a job bigger than
 * the whole capacity runs alone on an idle node. A later, lighter job may
 * pass one that does not fit, until that one has waited VTP_JOB_MAX_WAIT
 * (default 60 s): then the node claims nothing until it fits. VTP_WORKERS
 * still bounds how many run at once, whatever they cost.
 * Draining (SIGTERM): no more claims, the running jobs may finish for the
 * drain time the caller gives them (VTP_DRAIN_SECONDS), then stopping
 * kills the children left and puts their jobs back in the queue with the
 * attempt given back (a shutdown is not the composer's fault).
 * Before each attempt, and for finished recordings when the workers start,
 * the temporary outputs of composers that no longer run (<name>.tmp-<pid>)
 * are removed from the recording's local folder.
 *
 * The child also gets VTP_JOB_ATTEMPT (1, 2, 3) for its "processing" entry
 * in the access log.
 *
 * Knobs (environment only, for operators and tests): VTP_JOB_TIMEOUT (base
 * seconds, default 60), VTP_JOB_TIMEOUT_FACTOR (seconds per second of
 * recording, default 3), VTP_JOB_BACKOFF (seconds before each retry, comma
 * separated, the last one repeats; default "10,40"). */
#ifndef VTP_JOBS_H
#define VTP_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/config.h"
#include "recording/recording.h"
#include "store/store.h"

#define VTP_JOBS_MAX_ATTEMPTS 3
#define VTP_JOBS_BACKOFF_MAX 8

/* The child's exit codes (see above). */
enum {
	VTP_COMPOSE_EXIT_DONE = 0,
	VTP_COMPOSE_EXIT_FAILED = 1,
	VTP_COMPOSE_EXIT_REFUSED = 2,
	VTP_COMPOSE_EXIT_NO_MEDIA = 3,
};

typedef struct vtp_jobs_settings {
	double timeout_base;      /* seconds */
	double timeout_factor;    /* seconds per second of recording */
	double backoff[VTP_JOBS_BACKOFF_MAX]; /* seconds before retry 1, 2, ... */
	int nbackoff;
	double poll_interval;     /* seconds between looks at the queue */
	/* seconds a runnable job that does not fit may be passed over by
	 * lighter ones (VTP_JOB_MAX_WAIT) */
	double max_wait;
	/* a job waits until every track of its recording is whole in storage
	 * (the spool committed its last segment), but not for a node silent
	 * this long (VTP_NODE_TIMEOUT, default 30 s), and never longer than
	 * segment_wait after it became runnable (VTP_JOB_SEGMENT_WAIT, 600 s) */
	double node_timeout;
	double segment_wait;
} vtp_jobs_settings;

/* Defaults, then the VTP_JOB_* variables. VTP_EINVAL with one line naming
 * the variable in err on a bad value. */
int vtp_jobs_settings_load(vtp_jobs_settings *s, char *err, size_t errlen);

typedef struct vtp_jobs_config {
	vtp_store *store;            /* borrowed */
	vtp_recordings *recordings;  /* borrowed: transitions and access log */
	/* borrowed, may be NULL: where composers write (its local root), for
	 * removing the temporary outputs of killed ones */
	vtp_storage *storage;
	/* Who claims (jobs.claimed_by): the node id for `serve`, the node id
	 * + "/worker" for `worker`, so that one restarting re-queues only its
	 * own jobs. Copied. */
	const char *claimer;
	int workers;                 /* threads; 0: none (recovery only) */
	double capacity;             /* core-equivalents at once; <= 0: 1 */
	const vtp_config *config;    /* for the child's environment; read at start */
	vtp_jobs_settings settings;
} vtp_jobs_config;

typedef struct vtp_jobs vtp_jobs;

/* Re-queues the claimer's running jobs (interrupted by its last stop) and
 * queues recordings that wait for processing without a job, then starts
 * the worker threads. NULL with a reason in err on failure. */
vtp_jobs *vtp_jobs_start(const vtp_jobs_config *c, char *err, size_t errlen);
/* Wakes idle workers (a job was queued). ctx is the vtp_jobs; the shape
 * fits vtp_recordings_set_job_hook. */
void vtp_jobs_wake(void *ctx);
/* Stops claiming for good (SIGTERM): the running jobs go on; /healthz
 * reports the node draining from now on. NULL-safe. */
void vtp_jobs_drain(vtp_jobs *j);
/* Jobs claimed by this node's workers and not yet settled. 0 for NULL. */
int vtp_jobs_running(vtp_jobs *j);
/* Whether this process drains (vtp_jobs_drain was called). */
bool vtp_jobs_draining(void);
/* Stops claiming, kills running children (SIGKILL), puts their jobs back
 * in the queue, joins the threads, frees. NULL-safe. */
void vtp_jobs_stop(vtp_jobs *j);

/* Prometheus text: jobs claimed/succeeded/retried/failed since the process
 * started, the ones running now, the capacity, their cost and the load
 * ratio (cost / capacity), and whether the node drains. */
void vtp_jobs_metrics(vtp_buf *out);

#endif
