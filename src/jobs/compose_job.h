/* The compose child's job (compose_job.c), run by `vtp-recorder compose
 * --recording ID` in a process of its own that a worker started (jobs.h):
 *   1. read the recording: only a stopped or processing one is composed,
 *      anything else is refused (exit 2);
 *   2. move it to processing (attempt VTP_JOB_ATTEMPT, for its access log);
 *   3. on S3, fetch from the bucket the tracks this node did not capture;
 *      none here nor there while another node captured them: exit 1, so
 *      that the retry may land on that node;
 *   4. compose the file, HLS and thumbnail with the recording's settings,
 *      progress into its row; no media: fail it with no_media (exit 3);
 *   5. on S3, upload tracks, HLS and file, every put confirmed before done;
 *   6. done with size, duration, SHA-256 and the composer's measurements
 *      in its metadata (exit 0), then remove the local copies on S3.
 * Anything else that goes wrong is exit 1 (the worker retries) with one
 * line on stderr saying why. */
#ifndef VTP_COMPOSE_JOB_H
#define VTP_COMPOSE_JOB_H

#include <jansson.h>
#include <stdbool.h>

#include "compose/compose.h"
#include "core/config.h"
#include "core/random.h"
#include "storage/storage.h"
#include "store/store.h"

/* The command line's set-up, shared with serve and worker, so that a
 * database, storage or node-id problem reads the same whichever command
 * meets it. Each returns 0, or non-zero having printed one line on stderr;
 * what it opens is the caller's to free. */
typedef struct vtp_jobs_compose_setup {
	int (*open_store)(const vtp_config *cfg, int pool, vtp_store **store);
	int (*open_storage)(const vtp_config *cfg, vtp_storage **storage);
	int (*load_node_id)(const vtp_config *cfg, char id[VTP_UUID_BUFLEN]);
} vtp_jobs_compose_setup;

/* Composes recording id (a UUID in canonical form) with `threads` composer
 * threads, never by the fast path when no_fast_path. Returns the child's
 * exit code, VTP_COMPOSE_EXIT_* (jobs.h). */
int vtp_jobs_compose_recording(const vtp_config *cfg, const vtp_jobs_compose_setup *setup,
			       const char *id, int threads, bool no_fast_path);

/* What the composer measured, as the recording's metadata.compose (and
 * `compose --json`): fastPath, tracks, peers, frames, concealment, decode
 * errors, HLS segments, the thumbnail's time. A new object. */
json_t *vtp_jobs_compose_stats_json(const vtp_compose_result *res);
/* The warnings (a JSON array, owned by the caller) for the tracks that gave
 * the composed file nothing: codes no_video_decoded / no_audio_decoded. */
json_t *vtp_jobs_undecoded_warnings(const vtp_compose_result *res);

#endif
