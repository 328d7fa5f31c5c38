/* The segment spool: every closed segment of a packet log is committed to
 * the recording's storage, in the order the segments closed, and the
 * database learns it (recording_tracks: how many of a track's segments
 * are in storage, and which is its last), so that any node's worker can
 * compose the recording and knows when a track is whole
 * (docs/ARCHITECTURE.md "Capture in segments").
 *
 * file:// storage: the segment already lies where it belongs; committing
 * is the database row. s3://: the segment is uploaded first (storage.c
 * confirms every byte), retried with back-off for as long as it takes;
 * the local copy is never deleted here. A queue lost with the process is
 * rebuilt at the next start from the database: every track of this node
 * that is not whole gets its local segments past the committed ones
 * queued again, the highest marked last (a restart ends every capture).
 *
 * One thread, which also writes this node's heartbeat (nodes.seen_at)
 * every few seconds: a job does not wait for the segments of a node
 * that stopped answering. Its state is on /healthz and /metrics. */
#include "ingest_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "storage/storage.h"

#define HEARTBEAT_MS 3000
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
/* at shutdown: what the spool still tries before the next start takes over */
#define DRAIN_MS 10000

typedef struct spool_item {
	struct spool_item *next;
	char recording_id[VTP_UUID_BUFLEN];
	char track_id[VTP_UUID_BUFLEN];
	char *path; /* the local file: <local root>/<key> */
	int segment;
	bool last;
	int64_t queued_ms;
} spool_item;

struct vtp__spool {
	vtp_storage *storage; /* borrowed */
	vtp_recordings *recs; /* borrowed */
	vtp_store *store;     /* borrowed (the recordings') */
	char *node_id;
	char *root; /* the storage's local root */
	bool remote;
	int64_t alert_ms; /* a segment waiting this long makes the node unhealthy and
			   * warns on its recording */

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool quit;
	spool_item *head, **tail;
	int pending;                      /* mu */
	char warned[VTP_UUID_BUFLEN];     /* the recording last warned about (thread) */
	char last_error[300];             /* mu */
	int64_t last_error_ms;            /* mu: 0 once an attempt succeeds */

	_Atomic uint64_t committed, failures, bytes;
};

/* Six decimal digits (checked by the caller). */
static int atoi_6(const char *s)
{
	int v = 0;

	for (int i = 0; i < 6; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* <root>/<encoded room>/<recording id>/tracks/<track id>.vtpcap[.NNNNNN]:
 * the ids and the segment number, or false for any other file. */
static bool parse_path(const char *root, const char *path, char rid[VTP_UUID_BUFLEN],
		       char tid[VTP_UUID_BUFLEN], int *segment)
{
	size_t rl = strlen(root);
	const char *name, *tracks, *recdir;
	char buf[VTP_UUID_BUFLEN + 8];
	bool ok = false;

	if (strncmp(path, root, rl) != 0 || path[rl] != '/')
		goto out;
	name = strrchr(path, '/') + 1;
	tracks = name - 1;
	if (tracks - path < 8 || strncmp(tracks - 7, "/tracks", 7) != 0)
		goto out;
	recdir = tracks - 7;
	while (recdir > path + rl && recdir[-1] != '/')
		recdir--;
	if ((size_t)(tracks - 7 - recdir) >= sizeof(buf))
		goto out;
	memcpy(buf, recdir, (size_t)(tracks - 7 - recdir));
	buf[tracks - 7 - recdir] = '\0';
	if (!vtp_uuid_parse(buf, rid))
		goto out;
	if (strlen(name) < 36 + 7 || strncmp(name + 36, ".vtpcap", 7) != 0)
		goto out;
	memcpy(buf, name, 36);
	buf[36] = '\0';
	if (!vtp_uuid_parse(buf, tid))
		goto out;
	if (name[43] == '\0') {
		*segment = 1;
		ok = true;
	} else if (name[43] == '.' && strlen(name + 44) == 6 &&
		   strspn(name + 44, "0123456789") == 6) {
		*segment = atoi_6(name + 44);
		ok = *segment >= 2;
	}
out:
	return ok;
}

void vtp__spool_add(vtp__spool *sp, const char *path, uint32_t segment, bool last)
{
	spool_item *it;
	char rid[VTP_UUID_BUFLEN], tid[VTP_UUID_BUFLEN];
	int seg = 0;

	if (!sp)
		return;
	if (!parse_path(sp->root, path, rid, tid, &seg) || seg != (int)segment) {
		VTP_ERROR("segment spool: %s is not a track segment under %s; not committed", path,
			  sp->root);
		return;
	}
	it = vtp_calloc(1, sizeof(*it));
	memcpy(it->recording_id, rid, sizeof(rid));
	memcpy(it->track_id, tid, sizeof(tid));
	it->path = vtp_strdup(path);
	it->segment = seg;
	it->last = last;
	it->queued_ms = vtp_now_ms();
	pthread_mutex_lock(&sp->mu);
	*sp->tail = it;
	sp->tail = &it->next;
	sp->pending++;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

static void item_free(spool_item *it)
{
	vtp_free(it->path);
	vtp_free(it);
}

/* Once per recording: its segments wait for storage. */
static void warn_recording(vtp__spool *sp, const spool_item *it, const char *why)
{
	char msg[512];

	if (strcmp(sp->warned, it->recording_id) == 0)
		return;
	memcpy(sp->warned, it->recording_id, sizeof(sp->warned));
	snprintf(msg, sizeof(msg),
		 "Node %s could not commit track segments to storage for over %lld s (%s). They "
		 "are kept on its disk and retried; the recording is composed when they arrive, "
		 "or without them if the node is lost.",
		 sp->node_id, (long long)(sp->alert_ms / 1000), why);
	if (vtp_recordings_add_warnings(sp->recs, it->recording_id,
					json_pack("[{ss ss ss}]", "code", "segments_delayed",
						  "message", msg, "nodeId", sp->node_id)) != 0)
		VTP_WARN("recording %s: the warning about delayed segments is not saved",
			 it->recording_id);
}

/* One attempt at the head item: 0 done (committed, or moot), else the
 * error to retry on. */
static int commit_one(vtp__spool *sp, spool_item *it, char *why, size_t whylen)
{
	const char *key = it->path + strlen(sp->root) + 1;
	struct stat st;
	int rc;

	if (stat(it->path, &st) != 0) {
		/* deleted with its recording (or by hand): nothing left to upload.
		 * Still counted, so that a job does not wait for it: the reader
		 * reports the missing segment. */
		VTP_WARN("segment spool: %s is gone (%s); counted as missing", it->path,
			 strerror(errno));
	} else if (sp->remote) {
		rc = vtp_storage_put_file(sp->storage, key, it->path, "application/octet-stream");
		if (rc) {
			snprintf(why, whylen, "upload of %s: %s", key, vtp_strerror(rc));
			return rc;
		}
		atomic_fetch_add(&sp->bytes, (uint64_t)st.st_size);
	}
	rc = vtp_store_track_commit(sp->store, it->recording_id, it->track_id, sp->node_id,
				    it->segment, it->last, 0);
	if (rc == VTP_EINVAL) {
		/* the recording is gone (deleted meanwhile) */
		VTP_WARN("segment spool: recording %s is gone; segment %d of track %s dropped",
			 it->recording_id, it->segment, it->track_id);
		return 0;
	}
	if (rc) {
		snprintf(why, whylen, "database: %s", vtp_strerror(rc));
		return rc;
	}
	atomic_fetch_add(&sp->committed, 1);
	if (it->last) {
		VTP_DEBUG("recording %s: track %s whole in storage (%d segments)", it->recording_id,
			  it->track_id, it->segment);
		vtp_recordings_wake_jobs(sp->recs);
	}
	return 0;
}

static void *spool_main(void *arg)
{
	vtp__spool *sp = arg;
	int64_t next_beat = 0, next_try = 0, delay = RETRY_MIN_MS, drain_until = 0;

	pthread_setname_np(pthread_self(), "vtp-spool");
	pthread_mutex_lock(&sp->mu);
	for (;;) {
		int64_t now = vtp_now_ms();
		spool_item *it;
		char why[300];
		int rc;

		if (sp->quit && !drain_until)
			drain_until = now + DRAIN_MS;
		if (sp->quit && (!sp->head || now >= drain_until))
			break;
		if (now >= next_beat) {
			pthread_mutex_unlock(&sp->mu);
			rc = vtp_store_node_seen(sp->store, sp->node_id, now);
			if (rc)
				VTP_DEBUG("segment spool: heartbeat not written: %s", vtp_strerror(rc));
			pthread_mutex_lock(&sp->mu);
			next_beat = now + HEARTBEAT_MS;
		}
		if (!sp->head || now < next_try) {
			int64_t until = next_beat;
			struct timespec ts;

			if (sp->head && next_try < until)
				until = next_try;
			if (drain_until && drain_until < until)
				until = drain_until;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (until - now) / 1000;
			ts.tv_nsec += ((until - now) % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (until > now)
				pthread_cond_timedwait(&sp->cv, &sp->mu, &ts);
			continue;
		}
		it = sp->head;
		pthread_mutex_unlock(&sp->mu);
		why[0] = '\0';
		rc = commit_one(sp, it, why, sizeof(why));
		if (rc && now - it->queued_ms >= sp->alert_ms)
			warn_recording(sp, it, why);
		pthread_mutex_lock(&sp->mu);
		if (rc == 0) {
			sp->head = it->next;
			if (!sp->head)
				sp->tail = &sp->head;
			sp->pending--;
			sp->last_error_ms = 0;
			item_free(it);
			delay = RETRY_MIN_MS;
			next_try = 0;
			continue;
		}
		atomic_fetch_add(&sp->failures, 1);
		if (!sp->last_error_ms)
			VTP_WARN("segment spool: %s; retrying (%d segment(s) wait)", why, sp->pending);
		snprintf(sp->last_error, sizeof(sp->last_error), "%s", why);
		sp->last_error_ms = now;
		next_try = now + delay;
		delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
	}
	if (sp->head)
		VTP_WARN("segment spool: %d segment(s) not committed at shutdown; the next start "
			 "commits them", sp->pending);
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* ---- at start: what the last run left ------------------------------------------- */

typedef struct scan_ctx {
	vtp__spool *sp;
	int queued;
} scan_ctx;

/* The local segments of one track past the committed ones, in order. */
static void queue_track(vtp__spool *sp, const char *dir, const char *tid, int committed,
			int last_known, int *queued)
{
	char path[4400];
	int top = 0;

	/* the highest local segment: they are numbered without gaps */
	for (int s = 1; s < 1000000; s++) {
		struct stat st;

		if (s == 1)
			snprintf(path, sizeof(path), "%s/%s.vtpcap", dir, tid);
		else
			snprintf(path, sizeof(path), "%s/%s.vtpcap.%06d", dir, tid, s);
		if (stat(path, &st) != 0)
			break;
		top = s;
	}
	if (last_known && top > last_known)
		top = last_known;
	for (int s = committed + 1; s <= top; s++) {
		if (s == 1)
			snprintf(path, sizeof(path), "%s/%s.vtpcap", dir, tid);
		else
			snprintf(path, sizeof(path), "%s/%s.vtpcap.%06d", dir, tid, s);
		vtp__spool_add(sp, path, (uint32_t)s, s == top);
		(*queued)++;
	}
}

static int scan_one(void *ctx, const vtp_track_pending *t)
{
	scan_ctx *c = ctx;
	vtp_recording rec;
	char dir[4096];

	memset(&rec, 0, sizeof(rec));
	memcpy(rec.id, t->recording_id, sizeof(rec.id));
	rec.room_id = (char *)t->room_id;
	if (vtp_recordings_tracks_dir(c->sp->recs, &rec, dir, sizeof(dir)) != 0) {
		VTP_WARN("segment spool: recording %s: no tracks folder: %s", t->recording_id,
			 strerror(errno));
		return 0;
	}
	queue_track(c->sp, dir, t->track_id, t->segments, t->last_segment, &c->queued);
	return 0;
}

int vtp__spool_recover(vtp__spool *sp, int *queued)
{
	scan_ctx c = {sp, 0};
	int rc;

	rc = vtp_store_tracks_unfinished(sp->store, sp->node_id, scan_one, &c);
	*queued = c.queued;
	if (c.queued)
		VTP_WARN("segment spool: %d segment(s) left by the last run queued for storage",
			 c.queued);
	return rc;
}

/* ---- lifecycle, health ------------------------------------------------------------ */

vtp__spool *vtp__spool_start(vtp_storage *storage, vtp_recordings *recs, const char *node_id,
			     int alert_seconds)
{
	vtp__spool *sp = vtp_calloc(1, sizeof(*sp));

	sp->alert_ms = (int64_t)(alert_seconds > 0 ? alert_seconds : 30) * 1000;
	sp->storage = storage;
	sp->recs = recs;
	sp->store = vtp_recordings_store(recs);
	sp->node_id = vtp_strdup(node_id && *node_id ? node_id : "local");
	sp->root = vtp_strdup(vtp_storage_local_root(storage));
	sp->remote = vtp_storage_is_remote(storage);
	sp->tail = &sp->head;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	if (pthread_create(&sp->thread, NULL, spool_main, sp) == 0)
		sp->started = true;
	else
		VTP_ERROR("segment spool: cannot start its thread; segments are committed at the "
			  "next start");
	return sp;
}

void vtp__spool_stop(vtp__spool *sp)
{
	if (!sp)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->quit = true;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	if (sp->started)
		pthread_join(sp->thread, NULL);
	while (sp->head) {
		spool_item *it = sp->head;

		sp->head = it->next;
		item_free(it);
	}
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	vtp_free(sp->root);
	vtp_free(sp->node_id);
	vtp_free(sp);
}

void vtp__spool_state(vtp__spool *sp, vtp_spool_state *out)
{
	int64_t now = vtp_now_ms();

	memset(out, 0, sizeof(*out));
	if (!sp)
		return;
	pthread_mutex_lock(&sp->mu);
	out->pending = sp->pending;
	out->oldest_ms = sp->head ? now - sp->head->queued_ms : 0;
	out->failing = sp->last_error_ms != 0;
	snprintf(out->last_error, sizeof(out->last_error), "%s", sp->last_error);
	pthread_mutex_unlock(&sp->mu);
	out->committed = atomic_load(&sp->committed);
	out->failures = atomic_load(&sp->failures);
	out->bytes = atomic_load(&sp->bytes);
	out->stuck = out->pending > 0 && out->oldest_ms >= sp->alert_ms;
}
