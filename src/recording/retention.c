/* Retention: recordings soft-deleted more than VTP_RETENTION_DAYS ago are
 * purged: the row first (its participants, shares and jobs go with it; the
 * access log stays, with a "purged" entry by the system), then every file
 * and object under the recording's folder. The row goes first so that a
 * restore racing the sweep either wins (nothing is purged) or loses (the
 * row is gone before any byte is), never leaving a recording without its
 * media. A sweep runs at start and then every hour, on every node (the
 * purge of one row is idempotent). */
#include "recording.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/path.h"
#include "core/timeutil.h"

#define SWEEP_BATCH 100
#define DAY_MS (24LL * 3600 * 1000)

struct vtp_retention {
	vtp_recordings *svc;
	vtp_storage *storage;
	int days;
	int64_t interval_ms;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool started;
};

/* Removes a local folder and what is in it, two levels deep (the
 * recording's folder holds files, tracks/ and hls/). */
static void remove_tree(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char p[4600];
		struct stat sb;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode) && depth > 0)
			remove_tree(p, depth - 1);
		else if (!S_ISDIR(sb.st_mode))
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* The recording's folder key: "<encoded room>/<id>". */
static void folder_key(const vtp_recording *r, char *out, size_t outlen)
{
	char room[VTP_PATH_COMPONENT_MAX + 1];

	vtp_path_encode_component(r->room_id, room);
	snprintf(out, outlen, "%s/%s", room, r->id);
}

int vtp_retention_sweep(vtp_recordings *svc, vtp_storage *st, int days, int *purged)
{
	int64_t cutoff = vtp_now_ms() - (int64_t)days * DAY_MS;
	int rc = 0;

	*purged = 0;
	for (;;) {
		vtp_recording *arr = NULL;
		size_t n = 0, done = 0;

		rc = vtp_store_recording_deleted_before(vtp_recordings_store(svc), cutoff,
							SWEEP_BATCH, &arr, &n);
		if (rc || n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			const vtp_recording *r = &arr[i];
			char key[1200], prefix[1210], local[4096];
			char when[VTP_TIME_BUFLEN];
			int prc = vtp_store_recording_purge(vtp_recordings_store(svc), r->id,
							    r->deleted_at);

			if (prc) {
				if (prc != VTP_ECONFLICT && prc != VTP_ENOTFOUND)
					rc = prc;
				continue; /* restored, or purged by another node */
			}
			done++;
			(*purged)++;
			folder_key(r, key, sizeof(key));
			snprintf(prefix, sizeof(prefix), "%s/", key);
			vtp_time_format(r->deleted_at, when);
			int drc = vtp_storage_delete_prefix(st, prefix);
			if (drc)
				VTP_ERROR("retention: recording %s purged, but removing %s from storage "
					  "failed (%s); remove it by hand", r->id, prefix,
					  vtp_strerror(drc));
			if (vtp_storage_local_path(st, key, local, sizeof(local)) == 0)
				remove_tree(local, 2);
			vtp_recordings_audit_system(
				svc, r->id, "purged",
				json_pack("{ss si sb}", "deletedAt", when, "retentionDays", days,
					  "storageRemoved", drc == 0));
			VTP_INFO("retention: purged recording %s (deleted %s, kept %d days)", r->id,
				 when, days);
		}
		vtp_recording_free_array(arr, n);
		if (rc || done == 0 || n < SWEEP_BATCH)
			break;
	}
	return rc;
}

static void *sweeper(void *arg)
{
	vtp_retention *t = arg;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		int purged = 0, rc;
		struct timespec until;

		pthread_mutex_unlock(&t->mu);
		rc = vtp_retention_sweep(t->svc, t->storage, t->days, &purged);
		if (rc)
			VTP_WARN("retention: sweep failed (%s); trying again in an hour",
				 vtp_strerror(rc));
		else
			VTP_INFO("retention: sweep done, %d recording(s) purged (kept %d days)", purged,
				 t->days);
		pthread_mutex_lock(&t->mu);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += t->interval_ms / 1000;
		until.tv_nsec += (t->interval_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

vtp_retention *vtp_retention_start(vtp_recordings *svc, vtp_storage *st, int days,
				   int64_t interval_ms)
{
	vtp_retention *t = vtp_calloc(1, sizeof(*t));
	pthread_condattr_t ca;

	t->svc = svc;
	t->storage = st;
	t->days = days;
	t->interval_ms = interval_ms > 0 ? interval_ms : 3600 * 1000;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t->th, NULL, sweeper, t) != 0) {
		VTP_ERROR("retention: cannot start the sweeper thread");
		vtp_retention_stop(t);
		return NULL;
	}
	t->started = true;
	return t;
}

void vtp_retention_stop(vtp_retention *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (t->started)
		pthread_join(t->th, NULL);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	vtp_free(t);
}
