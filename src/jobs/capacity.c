/* Capacity (README "Processing jobs"): what a job costs in core-equivalents,
 * and which of the queued jobs a node may claim with what it runs already.
 * Both are pure functions of their arguments, so that the formula and the
 * fit decision are tested without a database or a child. */
#include "jobs/jobs_int.h"

#include <jansson.h>
#include <string.h>

/* One core-equivalent: encoding a 1280x720 output at 30 fps. */
#define UNIT_PIXELS_PER_SECOND (1280.0 * 720.0 * 30.0)
/* Decoding one camera for a tile, against encoding the output. */
#define DECODE_SHARE 0.25
/* Cameras decoded at a time by the layouts that show one main camera and
 * a strip (speaker, presentation, screen): a camera is decoded only from
 * its keyframe before it is on screen, so about the main one and one more. */
#define FEW_CAMERAS 2
/* What the composer costs when there is no video to compose: audio decode,
 * mix and encode, or the single-camera fast path (a copy, no encoder). */
#define AUDIO_ONLY_COST 0.2
#define FAST_PATH_COST 0.3
/* Cameras assumed when the store does not know the tracks (captured
 * elsewhere, written by an older version): a typical two-peer class. */
#define UNKNOWN_CAMERAS 2
#define MAX_COST 64.0

/* The video tracks in the recording's tracks JSON (an array of objects with
 * "kind"); -1 when it is missing or unreadable. */
static int count_video_tracks(const char *tracks_json)
{
	json_t *a = tracks_json ? json_loads(tracks_json, 0, NULL) : NULL;
	int n = -1;

	if (!json_is_array(a))
		goto out;
	n = 0;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *kind = json_string_value(json_object_get(json_array_get(a, i), "kind"));

		if (kind && strcmp(kind, "video") == 0)
			n++;
	}
out:
	json_decref(a);
	return n;
}

double vtp__job_cost(const char *layout, int width, int height, int fps, const char *tracks_json)
{
	int video = count_video_tracks(tracks_json);
	double unit, cost;
	int shown;

	if (video == 0 || video == 1) {
		cost = video == 0 ? AUDIO_ONLY_COST : FAST_PATH_COST;
		goto out;
	}
	if (video < 0)
		video = UNKNOWN_CAMERAS;
	if (width <= 0 || height <= 0)
		width = 1280, height = 720;
	if (fps <= 0)
		fps = 30;
	unit = (double)width * (double)height * (double)fps / UNIT_PIXELS_PER_SECOND;
	/* grid (and auto, which may become grid) decodes every camera */
	shown = video;
	if (layout && (strcmp(layout, "speaker") == 0 || strcmp(layout, "presentation") == 0 ||
		       strcmp(layout, "screen") == 0) && shown > FEW_CAMERAS)
		shown = FEW_CAMERAS;
	cost = unit * (1.0 + DECODE_SHARE * shown);
	if (cost < AUDIO_ONLY_COST)
		cost = AUDIO_ONLY_COST;
	if (cost > MAX_COST)
		cost = MAX_COST;
out:
	return cost;
}

bool vtp__job_fits(double capacity, double running_cost, int running, double cost)
{
	/* an idle node takes any job, however big: nothing would ever fit it
	 * otherwise. The epsilon absorbs sums like 0.1 + 0.2. */
	return running == 0 || running_cost + cost <= capacity + 1e-9;
}

int vtp__job_pick(const double *cost, const double *waited_s, int n, double capacity,
		  double running_cost, int running, double max_wait_s)
{
	for (int i = 0; i < n; i++) {
		if (vtp__job_fits(capacity, running_cost, running, cost[i]))
			return i;
		/* an older job that does not fit has waited too long: take
		 * nothing more until what runs leaves it room */
		if (waited_s[i] >= max_wait_s)
			return -1;
	}
	return -1;
}
