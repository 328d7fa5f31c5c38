/* The compose child's side of the job protocol (the parent's side is
 * jobs.c and child.c): `vtp-recorder compose --recording ID` takes one
 * stopped recording through processing to done or failed, fetching its
 * tracks from the bucket and uploading what it made when storage is S3,
 * and tells the worker how it went by its exit code (jobs.h). main.c
 * parses the command line and calls vtp_jobs_compose_recording. */
#include "jobs/compose_job.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/capture.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "jobs/jobs.h"
#include "recording/recording.h"
#include "store/store.h"
#include "storage/storage.h"

/* The worker takes the child's last stderr line with this prefix as the
 * reason it gives (REASON_PREFIX in child.c): the same words as every
 * other command's. */
#define PROG "vtp-recorder"

/* Progress into the recording's row: at most two writes a second, never
 * 100 (that is the done state's). */
typedef struct compose_progress {
	vtp_recordings *recs;
	const char *id;
	int64_t last_us;
	int last;
} compose_progress;

static void compose_progress_cb(void *ud, int percent)
{
	compose_progress *p = ud;
	int64_t now = vtp_mono_us();
	int rc;

	if (percent > 99)
		percent = 99;
	if (percent <= p->last || now - p->last_us < 500000)
		return;
	rc = vtp_recordings_progress(p->recs, p->id, percent);
	if (rc)
		VTP_WARN("recording %s: progress not saved: %s", p->id, vtp_strerror(rc));
	p->last = percent;
	p->last_us = now;
}

json_t *vtp_jobs_compose_stats_json(const vtp_compose_result *res)
{
	json_t *j = json_pack("{sb si si sI sI sI sI sI sI}", "fastPath", res->fast_path, "tracks",
			      res->tracks, "peers", res->peers, "framesOut",
			      (json_int_t)res->frames_out, "framesDropped",
			      (json_int_t)res->frames_dropped, "audioConcealedMs",
			      (json_int_t)res->audio_concealed_ms, "decodeErrors",
			      (json_int_t)res->decode_errors, "framesDecoded",
			      (json_int_t)res->frames_decoded, "framesNotDecoded",
			      (json_int_t)res->frames_skipped);

	if (res->hls_segments > 0)
		json_object_set_new(j, "hls", json_pack("{si sb}", "segments", res->hls_segments,
							"copied", res->hls_copied));
	if (res->thumb_at_seconds >= 0)
		json_object_set_new(j, "thumbnailAtSeconds",
				    json_real(floor(res->thumb_at_seconds * 1000 + 0.5) / 1000));
	/* Seconds each person spoke, to the tenth (the participants API's
	 * talkSeconds reads it from here). */
	json_t *talk = json_object();
	for (int i = 0; i < res->ntalk && i < VTP_COMPOSE_MAX_TALK; i++)
		json_object_set_new(talk, res->talk[i].peer_id,
				    json_real(floor(res->talk[i].seconds * 10 + 0.5) / 10));
	json_object_set_new(j, "talk", talk);
	return j;
}

/* One warning per track the composer could not use: a participant without
 * picture or sound in the file says why (nothing arrived; video without a
 * keyframe; nothing decodable). */
json_t *vtp_jobs_undecoded_warnings(const vtp_compose_result *res)
{
	json_t *arr = json_array();
	int n = res->nundecoded < VTP_COMPOSE_MAX_UNDECODED ? res->nundecoded
							     : VTP_COMPOSE_MAX_UNDECODED;

	for (int i = 0; i < n; i++) {
		const vtp_compose_undecoded *u = &res->undecoded[i];
		const char *name = u->full_name[0] ? u->full_name : "A participant";
		char msg[512];

		if (u->rtp_packets == 0)
			snprintf(msg, sizeof(msg), "%s's %s track recorded nothing (nothing arrived, or "
				 "everything was dropped: see the track's error), so the file has "
				 "no %s from it", name,
				 u->video ? "video" : "audio", u->video ? "picture" : "sound");
		else if (u->video)
			snprintf(msg, sizeof(msg), "%s's video track: %llu packets received, but no "
				 "keyframe, so the file has no picture from it", name,
				 (unsigned long long)u->rtp_packets);
		else
			snprintf(msg, sizeof(msg), "%s's audio track: %llu packets received, but "
				 "none decodable, so the file has no sound from it", name,
				 (unsigned long long)u->rtp_packets);
		json_array_append_new(arr, json_pack("{ss ss ss* ss* sI}", "code",
						     u->video ? "no_video_decoded"
							      : "no_audio_decoded",
						     "message", msg, "trackId",
						     u->track_id[0] ? u->track_id : NULL, "peerId",
						     u->peer_id[0] ? u->peer_id : NULL, "packets",
						     (json_int_t)u->rtp_packets));
	}
	return arr;
}

/* The Content-Type an object is stored with. */
static const char *media_type(const char *name)
{
	size_t n = strlen(name);

	if (n > 5 && strcmp(name + n - 5, ".webm") == 0)
		return "video/webm";
	if (n > 4 && (strcmp(name + n - 4, ".mp4") == 0 || strcmp(name + n - 4, ".m4s") == 0))
		return "video/mp4";
	if (n > 5 && strcmp(name + n - 5, ".m3u8") == 0)
		return "application/vnd.apple.mpegurl";
	if (n > 4 && strcmp(name + n - 4, ".jpg") == 0)
		return "image/jpeg";
	return "application/octet-stream";
}

/* Every file of a recording's local folder (and of its hls/ and tracks/
 * folders), as keys below folder_key: uploaded (put) or removed. Stops at
 * the first failure of a put. */
static int walk_folder(vtp_storage *st, const char *folder_key, const char *sub, bool put)
{
	char dirkey[1200], dirpath[4096], k[1500], p[4600];
	struct dirent *e;
	DIR *d;
	int rc = 0;

	snprintf(dirkey, sizeof(dirkey), "%s%s%s", folder_key, sub ? "/" : "", sub ? sub : "");
	if (vtp_storage_local_path(st, dirkey, dirpath, sizeof(dirpath)) != 0)
		return VTP_EINVAL;
	d = opendir(dirpath);
	if (!d)
		return errno == ENOENT ? 0 : VTP_EIO;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		struct stat sb;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dirpath, e->d_name);
		if (lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		/* half-written temporaries of an earlier attempt stay behind */
		if (strstr(e->d_name, ".tmp-"))
			continue;
		snprintf(k, sizeof(k), "%s/%s", dirkey, e->d_name);
		if (put) {
			rc = vtp_storage_put_file(st, k, p, media_type(e->d_name));
			if (rc)
				fprintf(stderr, PROG ": compose: uploading %s failed: %s\n", k,
					vtp_strerror(rc));
		} else {
			unlink(p);
		}
	}
	closedir(d);
	if (!put)
		rmdir(dirpath); /* the recording's own folder only once it is empty */
	return rc;
}

/* s3: the tracks of a recording composed on a node that did not capture
 * them come from the bucket into the local spool. *found receives how many
 * captures the folder then holds. */
static int fetch_tracks(vtp_storage *st, const char *folder_key, const char *tracks_dir,
			int *found)
{
	char prefix[1200], path[4600];
	char **keys = NULL;
	size_t n = 0;
	int rc;

	snprintf(prefix, sizeof(prefix), "%s/tracks/", folder_key);
	rc = vtp_storage_list(st, prefix, &keys, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *name = keys[i] + strlen(prefix);
		struct stat sb;

		if (strchr(name, '/'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", tracks_dir, name);
		if (stat(path, &sb) == 0)
			continue; /* captured here */
		rc = vtp_storage_get_file(st, keys[i], path);
	}
	vtp_storage_keys_free(keys, n);
	*found = 0;
	if (rc == 0) {
		DIR *d = opendir(tracks_dir);
		struct dirent *e;

		while (d && (e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);

			if (l > 7 && strcmp(e->d_name + l - 7, ".vtpcap") == 0)
				(*found)++;
		}
		if (d)
			closedir(d);
	}
	return rc;
}

/* ---- tracks not whole in storage ---------------------------------------------------- */

typedef struct incomplete_ctx {
	const char *tracks_dir;
	json_t *warnings;
	int tracks; /* rows: 0 for a recording captured before segments */
	int incomplete;
} incomplete_ctx;

static int note_incomplete(void *ctx, const vtp_track_state *t)
{
	incomplete_ctx *c = ctx;
	char path[4600], err[160], msg[700], who[300];
	const char *kind = "a", *name = NULL;
	json_t *meta = NULL;
	vtp_capr *r = NULL;

	c->tracks++;
	snprintf(path, sizeof(path), "%s/%s.vtpcap", c->tracks_dir, t->track_id);
	if (t->last_segment > 0 && t->segments >= t->last_segment) {
		struct stat sb;

		if (stat(path, &sb) == 0)
			return 0;
		/* committed, yet not here: storage lost it, or file:// storage
		 * that this node does not share with the one that captured it */
		c->incomplete++;
		snprintf(msg, sizeof(msg),
			 "Track %s was captured on node %s and committed to storage, but this "
			 "node (the composer's) cannot find it there, so the file has nothing from "
			 "it (with file:// storage every node must share the folder)",
			 t->track_id, t->node_id);
		json_array_append_new(c->warnings,
				      json_pack("{ss ss ss ss si}", "code", "track_missing", "message",
						msg, "trackId", t->track_id, "nodeId", t->node_id,
						"committedSegments", t->segments));
		return 0;
	}
	c->incomplete++;
	/* who it was, from the header of its first segment when it arrived */
	if (vtp_capr_open(path, &r, err, sizeof(err)) == 0) {
		meta = json_loads(vtp_capr_meta(r), 0, NULL);
		name = json_string_value(json_object_get(meta, "fullName"));
		if (json_string_value(json_object_get(meta, "kind")))
			kind = json_string_value(json_object_get(meta, "kind"));
	}
	if (name && *name)
		snprintf(who, sizeof(who), "%s's %s track", name, kind);
	else
		snprintf(who, sizeof(who), "Track %s", t->track_id);
	if (t->segments == 0)
		snprintf(msg, sizeof(msg),
			 "%s was captured on node %s, and none of it reached storage: the node "
			 "was lost (or did not commit it in time), so the file has nothing from it",
			 who, t->node_id);
	else
		snprintf(msg, sizeof(msg),
			 "%s was captured on node %s, and only its first %d segment(s) reached "
			 "storage: the node was lost (or did not commit the rest in time), so the "
			 "file misses what followed (at most one segment, about %s, when the node "
			 "was lost)", who, t->node_id, t->segments, "10 s");
	json_array_append_new(c->warnings,
			      json_pack("{ss ss ss ss si}", "code", "track_incomplete", "message",
					msg, "trackId", t->track_id, "nodeId", t->node_id,
					"committedSegments", t->segments));
	json_decref(meta);
	vtp_capr_close(r);
	return 0;
}

int vtp_jobs_compose_recording(const vtp_config *cfg, const vtp_jobs_compose_setup *setup,
			       const char *id, int threads, bool no_fast_path)
{
	char tracks[4096], out_path[4096], key[1024];
	char hls_dir[4096], thumb[4096], folder[1024], scratch[1024], node[VTP_UUID_BUFLEN];
	int found = 0;
	incomplete_ctx inc = {0};
	vtp_storage *storage = NULL;
	bool remote = false;
	const char *attempt_env = getenv("VTP_JOB_ATTEMPT");
	vtp_recordings *recs = NULL;
	vtp_store *store = NULL;
	vtp_compose_opts o;
	vtp_compose_result res;
	compose_progress prog;
	vtp_recording rec;
	json_t *meta = NULL;
	char *meta_text = NULL, *end = NULL;
	long attempt = 0;
	int64_t started;
	double took;
	int rc;

	memset(&rec, 0, sizeof(rec));
	if (attempt_env) {
		attempt = strtol(attempt_env, &end, 10);
		if (!*attempt_env || *end || attempt < 0 || attempt > 1000)
			attempt = 0;
	}
	if ((rc = setup->open_store(cfg, 2, &store)))
		goto out;
	rc = vtp_store_recording_get(store, id, &rec);
	if (rc == VTP_ENOTFOUND) {
		fprintf(stderr, PROG ": compose: no recording %s\n", id);
		rc = VTP_COMPOSE_EXIT_REFUSED;
		goto out;
	}
	if (rc) {
		fprintf(stderr, PROG ": compose: cannot read recording %s: %s\n", id, vtp_strerror(rc));
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	if (strcmp(rec.status, "stopped") != 0 && strcmp(rec.status, "processing") != 0) {
		fprintf(stderr, PROG ": compose: recording %s is %s; only stopped or processing "
			"recordings are composed\n", id, rec.status);
		rc = VTP_COMPOSE_EXIT_REFUSED;
		goto out;
	}
	if (setup->open_storage(cfg, &storage)) {
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	remote = vtp_storage_is_remote(storage);
	recs = vtp_recordings_new(store, vtp_storage_local_root(storage));
	vtp_recordings_set_webhooks(recs, cfg->webhook_url != NULL);
	rc = vtp_recordings_processing(recs, id, (int)attempt);
	if (rc) {
		fprintf(stderr, PROG ": compose: recording %s cannot move to processing: %s\n", id,
			rc == VTP_ECONFLICT ? "its status changed meanwhile" : vtp_strerror(rc));
		rc = rc == VTP_ECONFLICT ? VTP_COMPOSE_EXIT_REFUSED : VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	if (vtp_recordings_tracks_dir(recs, &rec, tracks, sizeof(tracks)) != 0 ||
	    vtp_recordings_output_file(recs, &rec, strcmp(rec.format, "mp4") == 0
						       ? "recording.mp4" : "recording.webm",
				       key, sizeof(key), out_path, sizeof(out_path)) != 0 ||
	    vtp_recordings_output_file(recs, &rec, "hls", scratch, sizeof(scratch), hls_dir,
				       sizeof(hls_dir)) != 0 ||
	    vtp_recordings_output_file(recs, &rec, "thumbnail.jpg", scratch, sizeof(scratch), thumb,
				       sizeof(thumb)) != 0) {
		fprintf(stderr, PROG ": compose: recording %s: cannot prepare its folder under %s: %s\n",
			id, vtp_storage_local_root(storage), strerror(errno));
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	snprintf(folder, sizeof(folder), "%s", key);
	*strrchr(folder, '/') = '\0';
	if (remote && (rc = fetch_tracks(storage, folder, tracks, &found)) != 0) {
		fprintf(stderr, PROG ": compose: recording %s: cannot fetch its tracks from storage: "
			"%s\n", id, vtp_strerror(rc));
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	/* Tracks reach the bucket when the node that captured them composes.
	 * Another node finding none must not call the recording empty: it
	 * fails this attempt (retried, and with luck claimed by that node). */
	if (remote && found == 0 && rec.node_id && setup->load_node_id(cfg, node) == 0 &&
	    strcmp(rec.node_id, node) != 0) {
		fprintf(stderr, PROG ": compose: recording %s was captured on node %s; its tracks are "
			"neither in storage nor on this node (%s)\n", id, rec.node_id, node);
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}

	/* what storage does not hold whole: composed without, and said */
	inc = (incomplete_ctx){.tracks_dir = tracks, .warnings = json_array()};
	rc = vtp_store_track_states(store, id, note_incomplete, &inc);
	if (rc) {
		fprintf(stderr, PROG ": compose: recording %s: cannot read its tracks' segments: %s\n",
			id, vtp_strerror(rc));
		json_decref(inc.warnings);
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	if (inc.incomplete) {
		VTP_WARN("recording %s: %d of its %d track(s) are not whole in storage; composed "
			 "without what is missing", id, inc.incomplete, inc.tracks);
		rc = vtp_recordings_add_warnings(recs, id, inc.warnings);
		if (rc)
			VTP_ERROR("recording %s: warnings about incomplete tracks not saved: %s", id,
				  vtp_strerror(rc));
	} else {
		json_decref(inc.warnings);
	}

	vtp_compose_defaults(&o);
	o.tracks_dir = tracks;
	o.out_path = out_path;
	o.format = rec.format;
	o.video_codec = rec.video_codec;
	o.audio_codec = rec.audio_codec;
	if (rec.resolution_width > 0 && rec.resolution_height > 0) {
		o.width = rec.resolution_width;
		o.height = rec.resolution_height;
	}
	if (rec.fps > 0)
		o.fps = rec.fps;
	if (rec.bitrate > 0)
		o.bitrate_kbps = rec.bitrate;
	o.threads = threads;
	o.no_fast_path = no_fast_path;
	o.hls_dir = hls_dir;
	o.thumb_path = thumb;
	/* the layout chosen at start (validated there, and again by the
	 * composer: an unknown one composes in auto) */
	o.layout = rec.layout;
	o.starter_user_id = rec.started_by;
	memset(&prog, 0, sizeof(prog));
	prog.recs = recs;
	prog.id = id;
	prog.last_us = vtp_mono_us();
	o.progress = compose_progress_cb;
	o.ud = &prog;

	started = vtp_mono_us();
	rc = vtp_compose_run(&o, &res);
	took = (double)(vtp_mono_us() - started) / 1e6;
	if (rc == VTP_COMPOSE_NO_MEDIA) {
		rc = vtp_recordings_failed(recs, id, "no_media",
					   json_pack("{si ss}", "attempt", (int)attempt, "detail",
						     res.error));
		if (rc) {
			fprintf(stderr, PROG ": compose: recording %s has no media, but it cannot be "
				"marked failed: %s\n", id, vtp_strerror(rc));
			rc = VTP_COMPOSE_EXIT_FAILED;
			goto out;
		}
		VTP_WARN("recording %s failed: no_media (%s)", id, res.error[0] ? res.error
							: "no track carried media");
		rc = VTP_COMPOSE_EXIT_NO_MEDIA;
		goto out;
	}
	if (rc) {
		fprintf(stderr, PROG ": compose: recording %s: %s\n", id,
			res.error[0] ? res.error : "the composer failed");
		VTP_ERROR("recording %s: composing failed after %.1f s: %s", id, took,
			  res.error[0] ? res.error : "no reason given");
		rc = rc == VTP_COMPOSE_EINVAL ? VTP_COMPOSE_EXIT_REFUSED : VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}

	/* tracks that gave the file nothing are warnings of a done recording:
	 * saved before it is done, so that every reader of "done" sees them */
	if (res.nundecoded > 0) {
		rc = vtp_recordings_add_warnings(recs, id, vtp_jobs_undecoded_warnings(&res));
		if (rc)
			VTP_ERROR("recording %s: warnings about undecoded tracks not saved: %s", id,
				  vtp_strerror(rc));
	}

	/* the row's metadata, plus what the composer measured */
	meta = json_loads(rec.metadata ? rec.metadata : "{}", 0, NULL);
	if (!json_is_object(meta)) {
		json_decref(meta);
		meta = json_object();
	}
	json_object_set_new(meta, "sha256", json_string(res.sha256));
	json_object_set_new(meta, "compose", vtp_jobs_compose_stats_json(&res));
	meta_text = json_dumps(meta, JSON_COMPACT);
	/* s3: every byte confirmed by the bucket before the recording is
	 * done; the local copies go only after that */
	if (remote && ((inc.tracks == 0 && (rc = walk_folder(storage, folder, "tracks", true))) ||
		       (rc = walk_folder(storage, folder, "hls", true)) ||
		       (rc = walk_folder(storage, folder, NULL, true)))) {
		VTP_ERROR("recording %s: composed, but the upload to storage failed: %s", id,
			  vtp_strerror(rc));
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	rc = vtp_recordings_done(recs, id, key, res.file_size, res.duration_seconds, meta_text);
	if (rc) {
		fprintf(stderr, PROG ": compose: recording %s was composed but cannot be marked done: "
			"%s\n", id, rc == VTP_ECONFLICT ? "its status changed meanwhile"
							: vtp_strerror(rc));
		rc = VTP_COMPOSE_EXIT_FAILED;
		goto out;
	}
	if (remote) {
		/* a segment of an incomplete track may still be on its way from
		 * this node's spool: those stay until it has them */
		if (!inc.incomplete)
			walk_folder(storage, folder, "tracks", false);
		walk_folder(storage, folder, "hls", false);
		walk_folder(storage, folder, NULL, false);
	}
	VTP_INFO("recording %s done: %.3f s of media, %lld bytes, %d tracks of %d peers%s, "
		 "composed in %.1f s (%.1fx real time)", id, res.duration_seconds,
		 (long long)res.file_size, res.tracks, res.peers,
		 res.fast_path ? ", video copied (fast path)" : "", took,
		 took > 0 ? res.duration_seconds / took : 0.0);
	rc = VTP_COMPOSE_EXIT_DONE;
out:
	free(meta_text);
	json_decref(meta);
	vtp_recording_clear(&rec);
	vtp_recordings_free(recs);
	vtp_store_free(store);
	vtp_storage_free(storage);
	return rc;
}
