/* The worker threads: claim, run the compose child (child.c), settle the
 * outcome in the store (job retried or finished, recording failed when it
 * will not be composed), count it for /metrics. The recording is always
 * settled before its job, so that a job is never finished while its
 * recording still waits (the sweep would queue it again). */
#include "jobs/jobs.h"
#include "jobs/jobs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/path.h"
#include "core/random.h"
#include "core/timeutil.h"

#define SWEEP_INTERVAL_US (60 * INT64_C(1000000))
#define DB_ERROR_LOG_INTERVAL_US (60 * INT64_C(1000000))
/* Queued jobs weighed per claim: enough to find a light one behind a few
 * heavy ones, few enough that the look stays cheap. */
#define CLAIM_CANDIDATES 32

struct vtp_jobs {
	vtp_store *store;
	vtp_recordings *recordings;
	vtp_storage *storage; /* NULL: no leftovers sweep */
	char *claimer;
	vtp_jobs_settings settings;
	char **env; /* the child's, without VTP_JOB_ATTEMPT */
	int nworkers;
	pthread_t *threads;
	atomic_bool stopping;
	atomic_bool draining;    /* no more claims; what runs may finish */
	double capacity;         /* core-equivalents (VTP_WORKER_CAPACITY) */
	pthread_mutex_t cap_mu;  /* one claim at a time, and the two below */
	double running_cost;     /* under cap_mu: the costs of the jobs running */
	int running;             /* under cap_mu: jobs claimed and not settled */
	char held_job[VTP_UUID_BUFLEN]; /* under cap_mu: the last job logged as held */
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* CLOCK_MONOTONIC */
	uint64_t wake_seq;       /* under mu: moved by every wake */
	int64_t next_due_ms;     /* under mu: earliest retry this node queued (wall clock), 0 none */
	_Atomic int64_t last_sweep_us;
	_Atomic int64_t last_db_error_us;
};

/* One process runs one set of workers: plain counters for /metrics. */
static atomic_ullong claimed_total, succeeded_total, retried_total, failed_total;
static atomic_int running_now, workers_now;
/* Capacity and the running jobs' cost, in thousandths (atomic doubles are
 * not portable), and whether the node drains. */
static atomic_llong capacity_milli, running_cost_milli;
static atomic_bool draining_now;

/* ---- settings ---------------------------------------------------------------------- */

static bool parse_seconds(const char *s, double max, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= 0) || v > max)
		return false;
	*out = v;
	return true;
}

int vtp_jobs_settings_load(vtp_jobs_settings *s, char *err, size_t errlen)
{
	const char *v;

	memset(s, 0, sizeof(*s));
	s->timeout_base = 60;
	s->timeout_factor = 3;
	s->backoff[0] = 10;
	s->backoff[1] = 40;
	s->nbackoff = 2;
	s->poll_interval = 1;
	s->max_wait = 60;
	s->node_timeout = 30;
	s->segment_wait = 600;
	if ((v = getenv("VTP_NODE_TIMEOUT")) && (!parse_seconds(v, 86400, &s->node_timeout) ||
						  s->node_timeout < 1)) {
		snprintf(err, errlen, "VTP_NODE_TIMEOUT: invalid value '%.80s' (expected seconds "
			 "1..86400 after which a silent node counts as lost, e.g. 30)", v);
		return VTP_EINVAL;
	}
	if ((v = getenv("VTP_JOB_SEGMENT_WAIT")) && !parse_seconds(v, 86400, &s->segment_wait)) {
		snprintf(err, errlen, "VTP_JOB_SEGMENT_WAIT: invalid value '%.80s' (expected seconds "
			 "0..86400 a job waits for track segments still on their way, e.g. 600)", v);
		return VTP_EINVAL;
	}
	if ((v = getenv("VTP_JOB_MAX_WAIT")) && !parse_seconds(v, 86400, &s->max_wait)) {
		snprintf(err, errlen, "VTP_JOB_MAX_WAIT: invalid value '%.80s' (expected seconds "
			 "0..86400 a job that does not fit may be passed over, e.g. 60)", v);
		return VTP_EINVAL;
	}
	if ((v = getenv("VTP_JOB_TIMEOUT")) && (!parse_seconds(v, 86400, &s->timeout_base) ||
						 s->timeout_base <= 0)) {
		snprintf(err, errlen, "VTP_JOB_TIMEOUT: invalid value '%.80s' (expected seconds "
			 "above 0, at most 86400, e.g. 60 or 0.5)", v);
		return VTP_EINVAL;
	}
	if ((v = getenv("VTP_JOB_TIMEOUT_FACTOR")) && !parse_seconds(v, 1000, &s->timeout_factor)) {
		snprintf(err, errlen, "VTP_JOB_TIMEOUT_FACTOR: invalid value '%.80s' (expected "
			 "0..1000 seconds per second of recording)", v);
		return VTP_EINVAL;
	}
	if ((v = getenv("VTP_JOB_BACKOFF"))) {
		const char *p = v;
		int n = 0;
		bool ok = true;

		/* "10,40": every entry a number of seconds, none empty */
		while (ok) {
			char item[32];
			size_t len = strcspn(p, ",");

			ok = len > 0 && len < sizeof(item) && n < VTP_JOBS_BACKOFF_MAX;
			if (ok) {
				memcpy(item, p, len);
				item[len] = '\0';
				ok = parse_seconds(item, 86400, &s->backoff[n++]);
			}
			if (!ok || !p[len])
				break;
			p += len + 1;
		}
		if (!ok) {
			snprintf(err, errlen, "VTP_JOB_BACKOFF: invalid value '%.80s' (expected 1..%d "
				 "comma-separated delays in seconds, e.g. 10,40)", v,
				 VTP_JOBS_BACKOFF_MAX);
			return VTP_EINVAL;
		}
		s->nbackoff = n;
	}
	return 0;
}

/* ---- outcomes ------------------------------------------------------------------------ */

static const char *signal_name(int sig, char buf[32])
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, 32, "SIG%s", abbrev);
	else
		snprintf(buf, 32, "signal %d", sig);
	return buf;
}

/* "composer crashed (SIGSEGV)", "composer timed out after 75 s", ... */
static void describe(const vtp__child_result *cr, double timeout_s, char *out, size_t outlen)
{
	char sig[32];

	switch (cr->end) {
	case VTP__CHILD_SIGNALED:
		snprintf(out, outlen, "composer crashed (%s)", signal_name(cr->code, sig));
		break;
	case VTP__CHILD_TIMED_OUT:
		snprintf(out, outlen, "composer timed out after %.*f s", timeout_s < 10 ? 1 : 0,
			 timeout_s);
		break;
	case VTP__CHILD_NOT_STARTED:
		snprintf(out, outlen, "composer not started");
		break;
	case VTP__CHILD_INTERRUPTED:
		snprintf(out, outlen, "composer interrupted by a shutdown");
		break;
	case VTP__CHILD_EXITED:
		if (cr->code == 127)
			snprintf(out, outlen, "composer could not be executed");
		else
			snprintf(out, outlen, "composer failed");
		break;
	}
}

/* The error text of a job or a recording: what happened, how often, and
 * the child's last word when it had one (a timeout speaks for itself). */
static void error_text(const vtp__child_result *cr, double timeout_s, int attempts,
		       char *out, size_t outlen)
{
	char what[96];

	describe(cr, timeout_s, what, sizeof(what));
	if (cr->tail[0] && cr->end != VTP__CHILD_TIMED_OUT)
		snprintf(out, outlen, "%s on %d attempt%s: %s", what, attempts,
			 attempts == 1 ? "" : "s", cr->tail);
	else
		snprintf(out, outlen, "%s on %d attempt%s", what, attempts, attempts == 1 ? "" : "s");
}

static void job_finish(vtp_jobs *j, const vtp_job *job, bool ok, const char *error)
{
	int rc = vtp_store_job_finish(j->store, job->id, ok, error);

	if (rc)
		VTP_ERROR("job %s: cannot record its end: %s", job->id, vtp_strerror(rc));
	atomic_fetch_add(ok ? &succeeded_total : &failed_total, 1);
	/* a retry while this job ran queued nothing (its job was still ours) */
	rc = vtp_recordings_job_ended(j->recordings, job->recording_id);
	if (rc && rc != VTP_ENOTFOUND)
		VTP_WARN("recording %s: not checked for a retry after its job: %s "
			 "(the sweep queues it)", job->recording_id, vtp_strerror(rc));
}

/* The recording will not be composed: failed with the error (unless it
 * is already past processing), then the job. */
static void give_up(vtp_jobs *j, const vtp_job *job, const char *error)
{
	int rc = vtp_recordings_failed(j->recordings, job->recording_id, error,
				       json_pack("{si}", "attempts", job->attempts));

	if (rc && rc != VTP_ECONFLICT)
		VTP_ERROR("recording %s: cannot mark it failed: %s", job->recording_id,
			  vtp_strerror(rc));
	job_finish(j, job, false, error);
	VTP_ERROR("recording %s failed: %s", job->recording_id, error);
}

static void note_due(vtp_jobs *j, int64_t due_ms)
{
	pthread_mutex_lock(&j->mu);
	if (!j->next_due_ms || due_ms < j->next_due_ms)
		j->next_due_ms = due_ms;
	pthread_mutex_unlock(&j->mu);
}

static void retry_later(vtp_jobs *j, const vtp_job *job, const char *what, const char *tail)
{
	int idx = job->attempts - 1 < j->settings.nbackoff ? job->attempts - 1
							    : j->settings.nbackoff - 1;
	int64_t delay_ms = (int64_t)(j->settings.backoff[idx < 0 ? 0 : idx] * 1000.0);
	int64_t due = vtp_now_ms() + delay_ms;
	char error[600];
	int rc;

	snprintf(error, sizeof(error), "%s%s%s", what, tail[0] ? ": " : "", tail);
	rc = vtp_store_job_retry(j->store, job->id, due, error);
	if (rc) {
		VTP_ERROR("job %s: cannot queue its retry: %s", job->id, vtp_strerror(rc));
		return;
	}
	atomic_fetch_add(&retried_total, 1);
	vtp_recordings_audit_system(j->recordings, job->recording_id, "retry",
				    json_pack("{si ss sf}", "attempt", job->attempts, "error", error,
					      "retryInSeconds", (double)delay_ms / 1000.0));
	VTP_WARN("recording %s: %s (attempt %d of %d); retry in %.1f s", job->recording_id, error,
		 job->attempts, VTP_JOBS_MAX_ATTEMPTS, (double)delay_ms / 1000.0);
	note_due(j, due);
}

/* ---- leftovers of killed composers ----------------------------------------------------- */

/* The pid in a composer's temporary output name, "<name>.tmp-<pid>"
 * (recording.webm.tmp-123, hls.tmp-123, thumbnail.jpg.tmp-123), else 0. */
static long tmp_output_pid(const char *name)
{
	const char *mark = strstr(name, ".tmp-");
	const char *p;
	long pid = 0;

	if (!mark)
		return 0;
	/* the last ".tmp-" counts: a room or file name may hold one too */
	while ((p = strstr(mark + 1, ".tmp-")) != NULL)
		mark = p;
	p = mark + 5;
	if (!*p || strlen(p) > 10)
		return 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		pid = pid * 10 + (*p - '0');
	}
	return pid;
}

static bool process_alive(long pid)
{
	return pid > 0 && pid <= INT32_MAX && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* rm -r of a composer's temporary folder (hls.tmp-<pid>: segments only,
 * but a folder below is removed too); links are removed, never followed. */
static void remove_tree(int parent_fd, const char *name, int depth)
{
	int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0) {
		unlinkat(parent_fd, name, 0);
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat sb;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(sb.st_mode) && depth < 4)
			remove_tree(fd, e->d_name, depth + 1);
		else
			unlinkat(fd, e->d_name, 0);
	}
	closedir(d); /* closes fd */
	unlinkat(parent_fd, name, AT_REMOVEDIR);
}

/* Removes from a recording's local folder (the file:// folder, or the
 * s3:// spool where composers write before uploading) the temporary outputs
 * of composers that no longer run; with dry_run only counts them. Returns
 * how many. */
static int sweep_folder_mode(const char *dir, const char *recording_id, bool dry_run)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *e;
	int removed = 0;
	DIR *d;

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		long pid = tmp_output_pid(e->d_name);

		if (!pid || process_alive(pid))
			continue;
		if (dry_run) {
			removed++;
			continue;
		}
		VTP_INFO("recording %s: removing %s, left by composer %ld that no longer runs",
			 recording_id, e->d_name, pid);
		remove_tree(fd, e->d_name, 0);
		removed++;
	}
	closedir(d);
	return removed;
}

static int sweep_folder(const char *dir, const char *recording_id)
{
	return sweep_folder_mode(dir, recording_id, false);
}

static void remove_leftovers(vtp_jobs *j, const vtp_recording *rec)
{
	char room[VTP_PATH_COMPONENT_MAX + 1], key[VTP_PATH_COMPONENT_MAX + 64];
	char dir[4096];

	if (!j->storage)
		return;
	vtp_path_encode_component(rec->room_id, room);
	snprintf(key, sizeof(key), "%s/%s", room, rec->id);
	if (vtp_storage_local_path(j->storage, key, dir, sizeof(dir)) == 0)
		sweep_folder(dir, rec->id);
}

/* At start: the whole local tree (<room>/<id>/), for recordings that no
 * composer works on any more (done, failed, deleted or gone). Those still
 * waiting for processing are left to their next attempt, which may run on
 * another node sharing the folder. */
static void sweep_all_leftovers(vtp_jobs *j)
{
	const char *root;
	DIR *rd;
	struct dirent *re;
	int removed = 0;

	if (!j->storage)
		return;
	root = vtp_storage_local_root(j->storage);
	rd = opendir(root);
	if (!rd)
		return;
	while ((re = readdir(rd)) != NULL) {
		char room_dir[4096];
		struct dirent *ie;
		DIR *id_dir;

		if (re->d_name[0] == '.')
			continue;
		snprintf(room_dir, sizeof(room_dir), "%s/%s", root, re->d_name);
		id_dir = opendir(room_dir);
		if (!id_dir)
			continue;
		while ((ie = readdir(id_dir)) != NULL) {
			char id[VTP_UUID_BUFLEN], dir[4400];
			vtp_recording rec;
			bool busy;
			int rc;

			if (!vtp_uuid_parse(ie->d_name, id))
				continue;
			snprintf(dir, sizeof(dir), "%s/%s", room_dir, ie->d_name);
			/* the database only for the few folders with leftovers */
			if (sweep_folder_mode(dir, id, true) == 0)
				continue;
			memset(&rec, 0, sizeof(rec));
			rc = vtp_store_recording_get(j->store, id, &rec);
			if (rc && rc != VTP_ENOTFOUND)
				continue;
			busy = rc == 0 && rec.deleted_at == 0 &&
			       (strcmp(rec.status, "stopped") == 0 ||
				strcmp(rec.status, "processing") == 0);
			vtp_recording_clear(&rec);
			if (busy)
				continue;
			removed += sweep_folder(dir, id);
		}
		closedir(id_dir);
	}
	closedir(rd);
	if (removed)
		VTP_INFO("removed %d temporary output(s) of composers killed earlier", removed);
}

/* ---- one job ------------------------------------------------------------------------- */

static void run_job(vtp_jobs *j, const vtp_job *job, double cost)
{
	char attempt_env[48], error[700];
	const char *exe = "/proc/self/exe";
	char *argv[] = {"vtp-recorder", "compose", "--recording", (char *)job->recording_id, NULL};
	char **env = NULL;
	vtp__child_result cr;
	vtp_recording rec;
	double timeout_s, duration;
	bool counted = false;
	size_t n = 0;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rc = vtp_store_recording_get(j->store, job->recording_id, &rec);
	if (rc == VTP_ENOTFOUND) {
		job_finish(j, job, false, "the recording no longer exists");
		return;
	}
	if (rc) {
		/* the database is in trouble: try again soon, without a child */
		VTP_ERROR("job %s: cannot read recording %s: %s", job->id, job->recording_id,
			  vtp_strerror(rc));
		if (vtp_store_job_retry(j->store, job->id, vtp_now_ms() + 5000, vtp_strerror(rc)) == 0)
			note_due(j, vtp_now_ms() + 5000);
		return;
	}
	if (strcmp(rec.status, "stopped") != 0 && strcmp(rec.status, "processing") != 0) {
		/* composed meanwhile (e.g. by an operator's `compose`) */
		snprintf(error, sizeof(error), "nothing to do: the recording is %s", rec.status);
		VTP_INFO("recording %s: %s", rec.id, error);
		job_finish(j, job, strcmp(rec.status, "done") == 0, error);
		goto out;
	}
	if (job->attempts > VTP_JOBS_MAX_ATTEMPTS) {
		/* the earlier attempts were cut by restarts of the node */
		snprintf(error, sizeof(error), "composer interrupted on %d attempts (restarts)",
			 job->attempts - 1);
		give_up(j, job, error);
		goto out;
	}
	duration = rec.duration_seconds > 0 ? rec.duration_seconds : 0;
	timeout_s = j->settings.timeout_base + j->settings.timeout_factor * duration;

	/* the child's environment: ours plus which attempt this is */
	snprintf(attempt_env, sizeof(attempt_env), "VTP_JOB_ATTEMPT=%d", job->attempts);
	for (char **e = j->env; *e; e++)
		n++;
	env = vtp_calloc(n + 2, sizeof(char *));
	memcpy(env, j->env, n * sizeof(char *));
	env[n] = attempt_env;

	/* what a killed earlier attempt left behind goes before this one writes */
	remove_leftovers(j, &rec);
	VTP_INFO("recording %s: composing (attempt %d of %d, timeout %.1f s, cost %.2f of "
		 "capacity %.2f)", rec.id, job->attempts, VTP_JOBS_MAX_ATTEMPTS, timeout_s, cost,
		 j->capacity);
	atomic_fetch_add(&running_now, 1);
	counted = true;
	vtp__child_run(exe, argv, env, timeout_s, &j->stopping, &cr);
	/* running_now drops at out:, once the outcome is counted, so that a
	 * reader seeing 0 running sees every counter final */

	if (cr.end == VTP__CHILD_SIGNALED && (cr.code == SIGTERM || cr.code == SIGINT)) {
		/* A service manager stops the whole group (systemd's
		 * KillMode=control-group): the child may die of the same SIGTERM
		 * a moment before this node starts stopping. Give the stop a
		 * second to show; if it does, this was the shutdown too. */
		for (int i = 0; i < 20 && !atomic_load(&j->stopping); i++)
			usleep(50 * 1000);
		if (atomic_load(&j->stopping))
			cr.end = VTP__CHILD_INTERRUPTED;
	}
	if (cr.end == VTP__CHILD_INTERRUPTED) {
		/* not the composer's fault: back in the queue for the next start
		 * (or another node), and the attempt is given back, so that
		 * restarts never use up the attempts of a sound recording */
		rc = vtp_store_job_release(j->store, job->id, vtp_now_ms(),
					   "interrupted by a shutdown");
		if (rc)
			VTP_ERROR("job %s: cannot put it back in the queue: %s (the next start does)",
				  job->id, vtp_strerror(rc));
		VTP_WARN("recording %s: composer stopped by the shutdown%s; the job is queued "
			 "again for this node's next start or another node", rec.id,
			 atomic_load(&j->draining) ? " (the drain time was over)" : "");
		goto out;
	}
	if (cr.end == VTP__CHILD_EXITED && cr.code == VTP_COMPOSE_EXIT_DONE) {
		/* the child logged the outcome */
		job_finish(j, job, true, NULL);
		VTP_DEBUG("recording %s: composer done in %.1f s (attempt %d)", rec.id, cr.seconds,
			  job->attempts);
		goto out;
	}
	if (cr.end == VTP__CHILD_EXITED && cr.code == VTP_COMPOSE_EXIT_NO_MEDIA) {
		/* the child failed the recording itself, and logged it */
		job_finish(j, job, false, "no_media");
		goto out;
	}
	if (cr.end == VTP__CHILD_EXITED && cr.code == VTP_COMPOSE_EXIT_REFUSED) {
		snprintf(error, sizeof(error), "composer refused the recording: %s",
			 cr.tail[0] ? cr.tail : "no reason given");
		give_up(j, job, error);
		goto out;
	}
	if (job->attempts < VTP_JOBS_MAX_ATTEMPTS) {
		char what[96];

		describe(&cr, timeout_s, what, sizeof(what));
		retry_later(j, job, what, cr.end == VTP__CHILD_TIMED_OUT ? "" : cr.tail);
		goto out;
	}
	error_text(&cr, timeout_s, job->attempts, error, sizeof(error));
	give_up(j, job, error);
out:
	/* only what was counted: the paths above that end before the child
	 * (nothing to do, out of attempts) never started one */
	if (counted)
		atomic_fetch_sub(&running_now, 1);
	vtp_free(env);
	vtp_recording_clear(&rec);
}

/* ---- the threads --------------------------------------------------------------------- */

static void sweep(vtp_jobs *j)
{
	int queued = 0, rc = vtp_recordings_queue_unqueued(j->recordings, &queued);

	if (rc)
		VTP_ERROR("cannot queue the recordings waiting for processing: %s", vtp_strerror(rc));
	if (queued)
		VTP_WARN("queued %d recording(s) that waited for processing without a job", queued);
}

/* Sleeps until woken, the poll interval, or this node's earliest retry. */
static void idle(vtp_jobs *j, uint64_t seen)
{
	int64_t wait_us = (int64_t)(j->settings.poll_interval * 1e6);
	struct timespec ts;

	pthread_mutex_lock(&j->mu);
	if (j->next_due_ms) {
		int64_t due_us = (j->next_due_ms - vtp_now_ms()) * 1000;

		if (due_us <= 0)
			j->next_due_ms = 0; /* due now: the next claim takes it */
		if (due_us < wait_us)
			wait_us = due_us > 0 ? due_us : 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += wait_us / 1000000;
	ts.tv_nsec += (wait_us % 1000000) * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (!atomic_load(&j->stopping) && j->wake_seq == seen && wait_us > 0)
		if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&j->mu);
}

/* ---- capacity: which job, if any, this node claims -------------------------------------- */

typedef struct candidates {
	int n;
	int64_t now;
	char id[CLAIM_CANDIDATES][VTP_UUID_BUFLEN];
	char recording_id[CLAIM_CANDIDATES][VTP_UUID_BUFLEN];
	double cost[CLAIM_CANDIDATES];
	double waited_s[CLAIM_CANDIDATES];
} candidates;

static int collect_candidate(void *ctx, const vtp_job_candidate *c)
{
	candidates *cs = ctx;
	int i = cs->n;

	if (i >= CLAIM_CANDIDATES)
		return 0;
	memcpy(cs->id[i], c->id, VTP_UUID_BUFLEN);
	memcpy(cs->recording_id[i], c->recording_id, VTP_UUID_BUFLEN);
	cs->cost[i] = vtp__job_cost(c->layout, c->width, c->height, c->fps, c->tracks);
	cs->waited_s[i] = c->run_after && cs->now > c->run_after
				  ? (double)(cs->now - c->run_after) / 1000.0 : 0;
	cs->n++;
	return 0;
}

static void drop_candidate(candidates *cs, int i)
{
	cs->n--;
	memmove(cs->id[i], cs->id[i + 1], (size_t)(cs->n - i) * VTP_UUID_BUFLEN);
	memmove(cs->recording_id[i], cs->recording_id[i + 1], (size_t)(cs->n - i) * VTP_UUID_BUFLEN);
	memmove(&cs->cost[i], &cs->cost[i + 1], (size_t)(cs->n - i) * sizeof(double));
	memmove(&cs->waited_s[i], &cs->waited_s[i + 1], (size_t)(cs->n - i) * sizeof(double));
}

static void publish_load(vtp_jobs *j)
{
	atomic_store(&running_cost_milli, (long long)(j->running_cost * 1000.0 + 0.5));
}

/* ---- readiness: every track whole in storage ---------------------------------------- */

typedef struct ready_ctx {
	int64_t now;
	double node_timeout;
	int waiting;             /* tracks a live node still commits */
	char node[65];           /* one of those nodes (the log line) */
} ready_ctx;

static int weigh_track(void *ctx, const vtp_track_state *t)
{
	ready_ctx *c = ctx;
	bool whole = t->last_segment > 0 && t->segments >= t->last_segment;
	bool lost = !t->node_seen_ms ||
		    (double)(c->now - t->node_seen_ms) / 1000.0 > c->node_timeout;

	if (!whole && !lost) {
		c->waiting++;
		snprintf(c->node, sizeof(c->node), "%s", t->node_id);
	}
	return 0;
}

/* Whether the recording can be composed now: each of its tracks is whole
 * in storage or belongs to a node that is lost (composed without what it
 * did not commit: the composer says so in the warnings); a job waiting
 * longer than segment_wait goes anyway. A database error counts as ready:
 * the composer then meets the same database and retries. */
static bool segments_ready(vtp_jobs *j, const char *recording_id, double waited_s, int64_t now)
{
	ready_ctx c = {.now = now, .node_timeout = j->settings.node_timeout};

	if (waited_s >= j->settings.segment_wait)
		return true;
	if (vtp_store_track_states(j->store, recording_id, weigh_track, &c) != 0)
		return true;
	if (c.waiting)
		VTP_DEBUG("recording %s: %d track(s) not whole in storage yet (node %s); its job "
			  "waits", recording_id, c.waiting, c.node);
	return c.waiting == 0;
}

/* Claims the oldest queued job that fits beside what runs (capacity.c
 * decides). One claim at a time per node, so that two of its workers never
 * both count on the same room. VTP_ENOTFOUND: nothing that fits. */
static int claim_fitting(vtp_jobs *j, vtp_job *job, double *cost)
{
	candidates *cs = vtp_calloc(1, sizeof(*cs));
	int rc;

	pthread_mutex_lock(&j->cap_mu);
	if (atomic_load(&j->draining) || atomic_load(&j->stopping)) {
		rc = VTP_ENOTFOUND;
		goto out;
	}
	cs->now = vtp_now_ms();
	rc = vtp_store_job_candidates(j->store, cs->now, CLAIM_CANDIDATES, collect_candidate, cs);
	if (rc)
		goto out;
	/* a job whose tracks are still reaching storage is not claimable:
	 * it neither runs nor holds the room of a heavy one */
	for (int i = 0; i < cs->n;) {
		if (segments_ready(j, cs->recording_id[i], cs->waited_s[i], cs->now))
			i++;
		else
			drop_candidate(cs, i);
	}
	rc = VTP_ENOTFOUND;
	while (cs->n > 0) {
		int i = vtp__job_pick(cs->cost, cs->waited_s, cs->n, j->capacity, j->running_cost,
				      j->running, j->settings.max_wait);

		if (i < 0) {
			/* the oldest that does not fit has waited long enough: say so
			 * once per job, and leave the room to it */
			for (int k = 0; k < cs->n; k++) {
				if (vtp__job_fits(j->capacity, j->running_cost, j->running, cs->cost[k]) ||
				    cs->waited_s[k] < j->settings.max_wait)
					continue;
				if (strcmp(j->held_job, cs->id[k]) != 0) {
					memcpy(j->held_job, cs->id[k], VTP_UUID_BUFLEN);
					VTP_INFO("recording %s: its job (cost %.2f) has waited %.0f s and does "
						 "not fit beside the %.2f running (capacity %.2f): no new jobs "
						 "until it fits", cs->recording_id[k], cs->cost[k],
						 cs->waited_s[k], j->running_cost, j->capacity);
				}
				break;
			}
			break;
		}
		rc = vtp_store_job_claim_id(j->store, cs->id[i], j->claimer, cs->now, job);
		if (rc == 0) {
			*cost = cs->cost[i];
			j->running_cost += *cost;
			j->running++;
			publish_load(j);
			break;
		}
		if (rc != VTP_ECONFLICT)
			break;
		/* another claimer was first: weigh the rest */
		drop_candidate(cs, i);
		rc = VTP_ENOTFOUND;
	}
out:
	pthread_mutex_unlock(&j->cap_mu);
	vtp_free(cs);
	return rc;
}

static void unclaim(vtp_jobs *j, double cost)
{
	pthread_mutex_lock(&j->cap_mu);
	j->running--;
	j->running_cost -= cost;
	if (j->running <= 0 || j->running_cost < 0) /* no drift from float sums */
		j->running_cost = 0;
	publish_load(j);
	pthread_mutex_unlock(&j->cap_mu);
	/* room was freed: idle workers look again now, not at their next poll */
	vtp_jobs_wake(j);
}

static void *worker_main(void *arg)
{
	vtp_jobs *j = arg;

	/* SIGINT/SIGTERM stay blocked as the starting thread had them (the
	 * main thread's sigwait() takes them) */
	while (!atomic_load(&j->stopping)) {
		int64_t now = vtp_mono_us();
		uint64_t seen;
		double cost = 0;
		vtp_job job;
		int rc;

		if (now - atomic_load(&j->last_sweep_us) >= SWEEP_INTERVAL_US) {
			atomic_store(&j->last_sweep_us, now);
			sweep(j);
		}
		pthread_mutex_lock(&j->mu);
		seen = j->wake_seq;
		pthread_mutex_unlock(&j->mu);
		if (atomic_load(&j->draining)) {
			idle(j, seen);
			continue;
		}
		rc = claim_fitting(j, &job, &cost);
		if (rc == 0) {
			atomic_fetch_add(&claimed_total, 1);
			run_job(j, &job, cost);
			unclaim(j, cost);
			continue;
		}
		if (rc != VTP_ENOTFOUND &&
		    now - atomic_load(&j->last_db_error_us) >= DB_ERROR_LOG_INTERVAL_US) {
			atomic_store(&j->last_db_error_us, now);
			VTP_ERROR("workers cannot claim jobs: %s (retrying every %.1f s)",
				  vtp_strerror(rc), j->settings.poll_interval);
		}
		idle(j, seen);
	}
	return NULL;
}

void vtp_jobs_wake(void *ctx)
{
	vtp_jobs *j = ctx;

	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	j->wake_seq++;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

vtp_jobs *vtp_jobs_start(const vtp_jobs_config *c, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	vtp_jobs *j;
	int requeued = 0, rc;

	/* before any thread of ours claims: what ran here before is queued
	 * again, and what waits without a job gets one */
	rc = vtp_store_job_requeue_node(c->store, c->claimer, vtp_now_ms(), &requeued);
	if (rc) {
		snprintf(err, errlen, "cannot re-queue the jobs interrupted by the last stop: %s",
			 vtp_strerror(rc));
		return NULL;
	}
	if (requeued)
		VTP_WARN("re-queued %d processing job(s) interrupted by the last stop", requeued);

	j = vtp_calloc(1, sizeof(*j));
	j->store = c->store;
	j->recordings = c->recordings;
	j->storage = c->storage;
	j->claimer = vtp_strdup(c->claimer);
	j->settings = c->settings;
	if (j->settings.nbackoff < 1) {
		j->settings.backoff[0] = 10;
		j->settings.nbackoff = 1;
	}
	if (j->settings.poll_interval <= 0)
		j->settings.poll_interval = 1;
	j->env = vtp__env_build(c->config, NULL, 0);
	j->capacity = c->capacity > 0 ? c->capacity : 1;
	atomic_store(&capacity_milli,
		     c->workers > 0 ? (long long)(j->capacity * 1000.0 + 0.5) : 0);
	atomic_store(&running_cost_milli, 0);
	atomic_store(&draining_now, false);
	pthread_mutex_init(&j->cap_mu, NULL);
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_store(&j->last_sweep_us, vtp_mono_us());
	sweep(j);
	if (c->workers > 0)
		sweep_all_leftovers(j);

	j->threads = vtp_calloc(c->workers > 0 ? (size_t)c->workers : 1, sizeof(pthread_t));
	for (int i = 0; i < c->workers; i++) {
		char name[16];

		rc = pthread_create(&j->threads[i], NULL, worker_main, j);
		if (rc) {
			snprintf(err, errlen, "cannot start worker thread %d: %s", i + 1, strerror(rc));
			vtp_jobs_stop(j);
			return NULL;
		}
		snprintf(name, sizeof(name), "vtp-job-%d", (i + 1) % 1000);
		pthread_setname_np(j->threads[i], name);
		j->nworkers++;
	}
	atomic_store(&workers_now, j->nworkers);
	return j;
}

void vtp_jobs_drain(vtp_jobs *j)
{
	if (!j || atomic_exchange(&j->draining, true))
		return;
	atomic_store(&draining_now, true);
	vtp_jobs_wake(j);
	VTP_INFO("draining: no new jobs; %d running job(s) may finish", vtp_jobs_running(j));
}

int vtp_jobs_running(vtp_jobs *j)
{
	int n;

	if (!j)
		return 0;
	pthread_mutex_lock(&j->cap_mu);
	n = j->running;
	pthread_mutex_unlock(&j->cap_mu);
	return n;
}

bool vtp_jobs_draining(void)
{
	return atomic_load(&draining_now);
}

void vtp_jobs_stop(vtp_jobs *j)
{
	int running;

	if (!j)
		return;
	running = vtp_jobs_running(j);
	if (running)
		VTP_WARN("stopping with %d job(s) running: their composers are killed and the jobs "
			 "handed back to the queue", running);
	atomic_store(&j->stopping, true);
	vtp_jobs_wake(j);
	for (int i = 0; i < j->nworkers; i++)
		pthread_join(j->threads[i], NULL);
	atomic_store(&workers_now, 0);
	atomic_store(&running_cost_milli, 0);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	pthread_mutex_destroy(&j->cap_mu);
	vtp__env_free(j->env);
	vtp_free(j->threads);
	vtp_free(j->claimer);
	vtp_free(j);
}

/* ---- metrics ----------------------------------------------------------------------------- */

void vtp_jobs_metrics(vtp_buf *out)
{
	vtp_buf_appendf(out,
			"# HELP vtp_jobs_claimed_total Processing jobs claimed by this process.\n"
			"# TYPE vtp_jobs_claimed_total counter\n"
			"vtp_jobs_claimed_total %llu\n"
			"# HELP vtp_jobs_succeeded_total Processing jobs that ended with the recording done.\n"
			"# TYPE vtp_jobs_succeeded_total counter\n"
			"vtp_jobs_succeeded_total %llu\n"
			"# HELP vtp_jobs_retried_total Composer attempts that failed, crashed or timed out and were retried.\n"
			"# TYPE vtp_jobs_retried_total counter\n"
			"vtp_jobs_retried_total %llu\n"
			"# HELP vtp_jobs_failed_total Processing jobs that ended with the recording failed.\n"
			"# TYPE vtp_jobs_failed_total counter\n"
			"vtp_jobs_failed_total %llu\n"
			"# HELP vtp_jobs_running Composer child processes running now.\n"
			"# TYPE vtp_jobs_running gauge\n"
			"vtp_jobs_running %d\n"
			"# HELP vtp_jobs_workers Worker threads of this process.\n"
			"# TYPE vtp_jobs_workers gauge\n"
			"vtp_jobs_workers %d\n",
			atomic_load(&claimed_total), atomic_load(&succeeded_total),
			atomic_load(&retried_total), atomic_load(&failed_total),
			atomic_load(&running_now), atomic_load(&workers_now));
	{
		long long cap = atomic_load(&capacity_milli), cost = atomic_load(&running_cost_milli);

		vtp_buf_appendf(out,
				"# HELP vtp_worker_capacity Core-equivalents of jobs this process may run at once (VTP_WORKER_CAPACITY; 0 without workers).\n"
				"# TYPE vtp_worker_capacity gauge\n"
				"vtp_worker_capacity %.3f\n"
				"# HELP vtp_jobs_running_cost Summed cost, in core-equivalents, of the jobs running now.\n"
				"# TYPE vtp_jobs_running_cost gauge\n"
				"vtp_jobs_running_cost %.3f\n"
				"# HELP vtp_load_ratio Running cost over capacity (above 1 when a job bigger than the capacity runs alone).\n"
				"# TYPE vtp_load_ratio gauge\n"
				"vtp_load_ratio %.3f\n"
				"# HELP vtp_draining 1 while the node drains (SIGTERM): it claims no new jobs.\n"
				"# TYPE vtp_draining gauge\n"
				"vtp_draining %d\n",
				(double)cap / 1000.0, (double)cost / 1000.0,
				cap > 0 ? (double)cost / (double)cap : 0.0, atomic_load(&draining_now) ? 1 : 0);
	}
}
