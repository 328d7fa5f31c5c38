/* The batch composer, vtp_compose_run (compose.h): a stopped recording's
 * folder of captures, read whole. It owns what needs the whole timeline:
 * scanning every track to its end, the clock maps and the timeline's
 * bounds, who speaks when (measured ahead for the layouts that follow the
 * speaker), where each video track is on screen (laid out ahead, so that
 * its decoder decodes only what shows), and the choice of the fast path.
 * The pass itself (compose.c) is then advanced once to the end of the
 * timeline and finished. */
#include "compose/compose_int.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"

/* Runs fn(j, i) for i in [0, n) on up to vtp__compose_threads() threads
 * (the caller's one among them); each index once. For work that is per
 * track and independent: scanning, measuring voices. */
typedef struct par_for_ctx {
	vtp__cjob *j;
	size_t n;
	atomic_size_t next;
	void (*fn)(vtp__cjob *j, size_t i);
} par_for_ctx;

static void *par_for_main(void *arg)
{
	par_for_ctx *c = arg;
	size_t i;
	while ((i = atomic_fetch_add(&c->next, 1)) < c->n)
		c->fn(c->j, i);
	return NULL;
}

static void par_for(vtp__cjob *j, size_t n, void (*fn)(vtp__cjob *j, size_t i))
{
	par_for_ctx c = {.j = j, .n = n, .fn = fn};
	atomic_init(&c.next, 0);
	pthread_t th[16];
	int want = vtp__compose_threads(j->o), started = 0;
	for (int k = 1; k < want && k < 16 && (size_t)k < n; k++)
		if (pthread_create(&th[started], NULL, par_for_main, &c) == 0)
			started++;
	par_for_main(&c);
	for (int k = 0; k < started; k++)
		pthread_join(th[k], NULL);
}

/* ---- tracks ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_one(vtp__cjob *j, size_t i)
{
	char path[4096], err[200];
	snprintf(path, sizeof path, "%s/%s", j->o->tracks_dir, j->scan_names[i]);
	if (vtp__ctrack_scan(&j->t[i], path, err, sizeof err) != 0)
		j->scan_err[i] = vtp_strdup(err);
}

static int load_tracks(vtp__cjob *j)
{
	DIR *d = opendir(j->o->tracks_dir);
	if (!d) {
		if (errno == ENOENT)
			return 0; /* no tracks at all: no media */
		return vtp__cjob_fail(j, VTP_COMPOSE_EIO, "cannot open the tracks folder: %s",
				      strerror(errno));
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 8 || strcmp(e->d_name + l - 7, ".vtpcap") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = vtp_realloc(names, cap * sizeof *names);
		}
		names[n++] = vtp_strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	/* Every track is scanned on its own (in parallel), then the readable
	 * ones are kept in name order. */
	j->t = vtp_calloc(n ? n : 1, sizeof *j->t);
	j->scan_names = names;
	j->scan_err = vtp_calloc(n ? n : 1, sizeof *j->scan_err);
	par_for(j, n, scan_one);
	for (size_t i = 0; i < n; i++) {
		vtp__ctrack *t = &j->t[j->nt];
		if (j->scan_err[i]) {
			VTP_WARN("compose: skipping track %s: %s", names[i], j->scan_err[i]);
			vtp__ctrack_clear(&j->t[i]);
			vtp_free(j->scan_err[i]);
		} else {
			if (t != &j->t[i]) {
				*t = j->t[i];
				memset(&j->t[i], 0, sizeof j->t[i]);
			}
			if (t->cap_end != VTP_CAPR_END)
				VTP_WARN("compose: track %s ends %s; using what is whole", names[i],
					 t->cap_end == VTP_CAPR_TORN ? "torn" : "corrupt");
			/* the reader joins what is left; say where it did */
			if (t->segments_missing || t->segments_cut)
				VTP_WARN("compose: track %s: %u segment(s) of its packet log missing, "
					 "%u cut short; the media there is lost",
					 names[i], (unsigned)t->segments_missing,
					 (unsigned)t->segments_cut);
			j->nt++;
		}
		vtp_free(names[i]);
	}
	vtp_free(names);
	vtp_free(j->scan_err);
	j->scan_names = NULL;
	j->scan_err = NULL;
	j->r->tracks = (int)j->nt;
	/* Peers, by peer id. */
	j->p = vtp_calloc(j->nt ? j->nt : 1, sizeof *j->p);
	for (size_t i = 0; i < j->nt; i++) {
		size_t k;
		for (k = 0; k < j->np; k++)
			if (strcmp(j->p[k].peer_id, j->t[i].peer_id) == 0)
				break;
		if (k == j->np) {
			j->p[k].peer_id = j->t[i].peer_id;
			j->p[k].full_name = j->t[i].full_name;
			j->np++;
		}
		j->t[i].peer = (int)k;
		/* A peer that only shares a screen is no person: no tile of
		 * its own in grid or speaker. */
		if (j->t[i].source == VTP__SRC_CAMERA || j->t[i].source == VTP__SRC_MICROPHONE)
			j->p[k].person = true;
		if (j->t[i].instructor)
			j->p[k].instructor = true;
		if (j->o->starter_user_id && j->o->starter_user_id[0] && j->t[i].user_id &&
		    strcmp(j->t[i].user_id, j->o->starter_user_id) == 0)
			j->p[k].starter = true;
	}
	return 0;
}

static int cmp_peer_start(const void *a, const void *b)
{
	const vtp__cpeer *p = *(vtp__cpeer *const *)a, *q = *(vtp__cpeer *const *)b;
	return p->start_ns < q->start_ns ? -1 : p->start_ns > q->start_ns;
}

/* Tracks that give the file nothing (no keyframe ever, nothing received):
 * the recording is done without them, and its warnings say so. */
static void undecoded(vtp__cjob *j)
{
	for (size_t i = 0; i < j->nt; i++) {
		const vtp__ctrack *t = &j->t[i];
		vtp_compose_undecoded *u;

		if (t->frames > 0)
			continue;
		if (j->r->nundecoded++ >= VTP_COMPOSE_MAX_UNDECODED)
			continue;
		u = &j->r->undecoded[j->r->nundecoded - 1];
		snprintf(u->track_id, sizeof u->track_id, "%s", t->track_id ? t->track_id : "");
		snprintf(u->peer_id, sizeof u->peer_id, "%s", t->peer_id ? t->peer_id : "");
		snprintf(u->full_name, sizeof u->full_name, "%s", t->full_name ? t->full_name : "");
		u->video = t->video;
		u->rtp_packets = t->rtp_packets;
	}
}

/* Timeline bounds and each peer's presence. false when nothing plays. */
static bool timeline(vtp__cjob *j)
{
	vtp__ctracks_map(j->t, j->nt);
	j->t0 = INT64_MAX;
	j->t1 = INT64_MIN;
	for (size_t k = 0; k < j->np; k++) {
		j->p[k].start_ns = INT64_MAX;
		j->p[k].end_ns = INT64_MIN;
	}
	for (size_t i = 0; i < j->nt; i++) {
		vtp__ctrack *t = &j->t[i];
		if (t->frames == 0)
			continue;
		vtp__cpeer *p = &j->p[t->peer];
		if (t->start_ns < p->start_ns)
			p->start_ns = t->start_ns;
		if (t->end_ns > p->end_ns)
			p->end_ns = t->end_ns;
		if (t->start_ns < j->t0)
			j->t0 = t->start_ns;
		if (t->end_ns > j->t1)
			j->t1 = t->end_ns;
		if (t->video)
			j->r->video_tracks++;
		else
			j->r->audio_tracks++;
	}
	undecoded(j);
	if (j->t0 == INT64_MAX)
		return false;
	/* Join order. */
	vtp__cpeer **ord = vtp_malloc(j->np * sizeof *ord);
	for (size_t k = 0; k < j->np; k++)
		ord[k] = &j->p[k];
	qsort(ord, j->np, sizeof *ord, cmp_peer_start);
	j->join = vtp_malloc(j->np * sizeof *j->join);
	for (size_t k = 0; k < j->np; k++)
		j->join[k] = (int)(ord[k] - j->p);
	vtp_free(ord);
	for (size_t k = 0; k < j->np; k++)
		if (j->p[k].start_ns != INT64_MAX)
			j->r->peers++;
	return true;
}

/* ---- speech ------------------------------------------------------------------ */

/* Sets up measuring every microphone (person's voice, not a shared tab's
 * sound) over the timeline in ticks (a float per tick: 0.7 MB per
 * microphone and hour). auto without any screen share and with at most
 * four people with a camera is grid all along: composed as grid, without
 * the pass ahead. */
static void speech_begin(vtp__cjob *j)
{
	if (j->layout == VTP__LAYOUT_AUTO) {
		bool screen = false;
		int cams = 0;
		for (size_t k = 0; k < j->np; k++) {
			bool cam = false;
			for (size_t i = 0; i < j->nt; i++) {
				if (j->t[i].peer != (int)k || j->t[i].frames == 0)
					continue;
				screen |= j->t[i].source == VTP__SRC_SCREEN;
				cam |= j->t[i].source == VTP__SRC_CAMERA;
			}
			cams += cam && j->p[k].person;
		}
		if (!screen && cams <= 4)
			j->layout = VTP__LAYOUT_GRID;
	}
	j->nticks = (size_t)((j->t1 - j->t0 + VTP__TICK_NS - 1) / VTP__TICK_NS) + 1;
	j->esum = vtp_calloc(j->nt, sizeof *j->esum);
	for (size_t i = 0; i < j->nt; i++)
		if (!j->t[i].video && j->t[i].frames > 0 && j->t[i].source == VTP__SRC_MICROPHONE)
			j->esum[i] = vtp_calloc(j->nticks, sizeof **j->esum);
}

/* The layouts other than grid need to know who speaks before the frames
 * are laid out: a first pass decodes the microphones alone (Opus decodes
 * far faster than the video, and only the voices are measured). */
static void measure_voice(vtp__cjob *j, size_t i)
{
	if (!j->esum[i])
		return;
	float buf[VTP__TICK_SAMPLES];
	vtp__adec *a = vtp__adec_open(&j->t[i], j->t0);
	for (size_t t = 0; t < j->nticks; t++) {
		int64_t pos = (int64_t)t * VTP__TICK_SAMPLES;
		memset(buf, 0, sizeof buf);
		vtp__adec_mix(a, pos, buf, VTP__TICK_SAMPLES);
		vtp__cjob_energy_add(j, i, pos, buf, VTP__TICK_SAMPLES);
	}
	vtp__adec_close(a);
}

static void speech_prepass(vtp__cjob *j)
{
	par_for(j, j->nt, measure_voice);
}

/* From the measured energies: who speaks when (per peer: the loudest of
 * its microphones), talk time into the result, and (layouts other than
 * grid) who is in the main area at each tick. Frees the energies. */
static void speech_decide(vtp__cjob *j)
{
	size_t nt = j->nticks;
	float *db = vtp_malloc(nt * sizeof *db);
	j->speaking = vtp_calloc(j->np * nt, 1);
	for (size_t p = 0; p < j->np; p++) {
		bool any = false;
		for (size_t t = 0; t < nt; t++)
			db[t] = -120.0f;
		for (size_t i = 0; i < j->nt; i++) {
			if (!j->esum[i] || j->t[i].peer != (int)p)
				continue;
			any = true;
			for (size_t t = 0; t < nt; t++) {
				float d = (float)(10.0 * log10((double)j->esum[i][t] / VTP__TICK_SAMPLES + 1e-12));
				if (d > db[t])
					db[t] = d;
			}
		}
		if (!any)
			continue;
		uint8_t *sp = j->speaking + p * nt;
		vtp__voice_activity(db, nt, sp);
		size_t ticks = 0;
		for (size_t t = 0; t < nt; t++)
			ticks += sp[t];
		if (j->r->ntalk < VTP_COMPOSE_MAX_TALK) {
			snprintf(j->r->talk[j->r->ntalk].peer_id, sizeof j->r->talk[0].peer_id, "%s",
				 j->p[p].peer_id);
			j->r->talk[j->r->ntalk].seconds = (double)ticks * VTP__TICK_NS / 1e9;
			j->r->ntalk++;
		}
	}
	vtp_free(db);
	for (size_t i = 0; i < j->nt; i++)
		vtp_free(j->esum[i]);
	vtp_free(j->esum);
	j->esum = NULL;
	if (j->layout == VTP__LAYOUT_GRID)
		return;
	int64_t *from = vtp_malloc((j->np ? j->np : 1) * sizeof *from);
	int64_t *to = vtp_malloc((j->np ? j->np : 1) * sizeof *to);
	int first = -1;
	for (size_t p = 0; p < j->np; p++) {
		from[p] = to[p] = 0;
		if (!j->p[p].person || j->p[p].start_ns == INT64_MAX)
			continue;
		from[p] = (j->p[p].start_ns - j->t0) / VTP__TICK_NS;
		to[p] = (j->p[p].end_ns - j->t0 + VTP__TICK_NS - 1) / VTP__TICK_NS;
	}
	/* Before anyone speaks: the instructor, else the one who started the
	 * recording, else the first to join. */
	for (size_t k = 0; k < j->np && first < 0; k++)
		if (j->p[j->join[k]].person && j->p[j->join[k]].instructor)
			first = j->join[k];
	for (size_t k = 0; k < j->np && first < 0; k++)
		if (j->p[j->join[k]].person && j->p[j->join[k]].starter)
			first = j->join[k];
	for (size_t k = 0; k < j->np && first < 0; k++)
		if (j->p[j->join[k]].person)
			first = j->join[k];
	j->main_of_tick = vtp_malloc(nt * sizeof *j->main_of_tick);
	vtp__speaker_decide(j->speaking, (int)j->np, nt, from, to, first, j->main_of_tick);
	vtp_free(from);
	vtp_free(to);
}

/* ---- the layout ahead and the fast path ------------------------------------ */

typedef struct showlist {
	vtp__vshow *v;
	size_t n, cap;
	int64_t last_k;
} showlist;

/* Where each video track is on screen: the layout of every output
 * instant, worked out before any frame is decoded (it depends only on the
 * timeline and the voices), as stretches per track. Each decoder is then
 * started with its track's stretches. */
static int start_decoders(vtp__cjob *j)
{
	const vtp_compose_opts *o = j->o;
	showlist *sl = vtp_calloc(j->nt, sizeof *sl);
	vtp__cframe_layout fs;
	vtp__cframe_layout_init(j, &fs);
	int64_t half = 500000000LL / o->fps;
	for (int64_t k = 0; k < j->frames; k++) {
		int64_t at = k * 1000000000LL / o->fps;
		int n = vtp__cjob_frame_tiles(j, at, &fs);
		for (int i = 0; i < n; i++) {
			const vtp__ltile *tl = &fs.tiles[i];
			if (tl->track < 0)
				continue;
			showlist *s = &sl[tl->track];
			vtp__vshow *last = s->n ? &s->v[s->n - 1] : NULL;
			if (last && s->last_k == k - 1 && last->tile_w == tl->r.w && last->tile_h == tl->r.h) {
				last->to = at + half;
			} else {
				if (s->n == s->cap) {
					s->cap = s->cap ? s->cap * 2 : 8;
					s->v = vtp_realloc(s->v, s->cap * sizeof *s->v);
				}
				s->v[s->n++] = (vtp__vshow){at + half, at + half, tl->r.w, tl->r.h};
			}
			s->last_k = k;
		}
	}
	vtp__cframe_layout_free(&fs);
	vtp__cjob_reset_layout(j);
	int rc = 0;
	for (size_t i = 0; i < j->nt; i++) {
		if (rc == 0 && j->t[i].video && j->t[i].frames > 0 &&
		    !(j->vdec[i] = vtp__vdec_start(&j->t[i], j->t0, sl[i].v, sl[i].n, o->decode_all)))
			rc = vtp__cjob_fail(j, VTP_COMPOSE_ECODEC, "cannot start a decoder thread");
		vtp_free(sl[i].v);
	}
	vtp_free(sl);
	return rc;
}

/* The single video track that can be copied into this output, or -1. */
static int fast_track(vtp__cjob *j)
{
	if (j->o->no_fast_path || j->r->peers != 1)
		return -1;
	int found = -1;
	for (size_t i = 0; i < j->nt; i++) {
		const vtp__ctrack *t = &j->t[i];
		if (!t->video || t->frames == 0)
			continue;
		if (found >= 0)
			return -1;
		found = (int)i;
	}
	if (found < 0)
		return -1;
	const vtp__ctrack *t = &j->t[found];
	bool match = j->mp4 ? t->codec == VTP_CODEC_H264 : t->codec == VTP_CODEC_VP8;
	if (!match || t->size_changed || t->width <= 0 || t->keyframes == 0)
		return -1;
	return found;
}

/* Fast path: moves the timeline's origin back (never forward) so that the
 * copied video's frames fall on its own frame grid from 0: players and
 * tools that assume a constant rate from the file's start then see each
 * frame on its tick. */
static void align_origin(vtp__cjob *j, const vtp__ctrack *t)
{
	int fps = vtp__whole_fps(t);
	if (fps == 0)
		return;
	int64_t period = 1000000000LL / fps, v0 = t->start_ns;
	int64_t k = (v0 - j->t0 + period - 1) / period;
	j->t0 = v0 - k * period;
}

/* ---- the run ------------------------------------------------------------------- */

static int run(vtp__cjob *j)
{
	int rc = vtp__cjob_check_opts(j);
	if (rc)
		return rc;
	int64_t began = vtp_mono_us();
	if ((rc = load_tracks(j)) != 0)
		return rc;
	VTP_DEBUG("compose: %zu tracks scanned in %.2f s", j->nt, (double)(vtp_mono_us() - began) / 1e6);
	if (!timeline(j))
		return vtp__cjob_fail(j, VTP_COMPOSE_NO_MEDIA, "no track carried decodable media");
	if ((rc = vtp__cjob_open_output(j)) != 0)
		return rc;
	j->adec = vtp_calloc(j->nt, sizeof *j->adec);
	j->vdec = vtp_calloc(j->nt, sizeof *j->vdec);
	int ft = fast_track(j);
	if (ft >= 0)
		align_origin(j, &j->t[ft]);
	/* Who speaks: measured ahead for the layouts that follow the
	 * speaker, along the one pass for grid (talk time only). */
	speech_begin(j);
	if (j->layout != VTP__LAYOUT_GRID) {
		int64_t at = vtp_mono_us();
		speech_prepass(j);
		speech_decide(j);
		VTP_DEBUG("compose: voices measured and the main area decided in %.2f s",
			  (double)(vtp_mono_us() - at) / 1e6);
	}
	for (size_t i = 0; i < j->nt; i++)
		if (!j->t[i].video && j->t[i].frames > 0)
			j->adec[i] = vtp__adec_open(&j->t[i], j->t0);
	if (j->o->thumb_path)
		j->thumb = vtp__thumb_new((j->t1 - j->t0) / 10);
	if (ft >= 0) {
		rc = vtp__cjob_copy(j, ft);
	} else {
		j->frames = ((j->t1 - j->t0) * j->o->fps + 999999999) / 1000000000;
		if ((rc = vtp__cjob_open(j)) != 0)
			return rc;
		int64_t at = vtp_mono_us();
		if ((rc = start_decoders(j)) != 0)
			return rc;
		VTP_DEBUG("compose: %lld frames laid out in %.2f s", (long long)j->frames,
			  (double)(vtp_mono_us() - at) / 1e6);
		at = vtp_mono_us();
		/* The whole timeline in one step: every frame and its audio. */
		rc = vtp__cjob_advance(j, j->t1 - j->t0);
		VTP_DEBUG("compose: video composed in %.2f s", (double)(vtp_mono_us() - at) / 1e6);
	}
	if (rc == 0)
		rc = vtp__cjob_finish(j);
	/* Grid measured the voices along the pass: talk time now. */
	if (rc == 0 && j->esum)
		speech_decide(j);
	return rc;
}

int vtp_compose_run(const vtp_compose_opts *o, vtp_compose_result *r)
{
	memset(r, 0, sizeof *r);
	r->thumb_at_seconds = -1;
	vtp__cjob j;
	vtp__cjob_init(&j, o, r);
	int rc = run(&j);
	for (size_t i = 0; i < j.nt; i++) {
		if (j.vdec && j.vdec[i]) {
			r->decode_errors += vtp__vdec_errors(j.vdec[i]);
			r->frames_dropped += vtp__vdec_dropped(j.vdec[i]);
			r->frames_decoded += vtp__vdec_decoded(j.vdec[i]);
			r->frames_skipped += vtp__vdec_skipped(j.vdec[i]);
			vtp__vdec_stop(j.vdec[i]);
		}
		if (j.adec && j.adec[i]) {
			r->audio_concealed_ms += vtp__adec_concealed_ms(j.adec[i]);
			r->decode_errors += vtp__adec_errors(j.adec[i]);
			vtp__adec_close(j.adec[i]);
		}
	}
	vtp__cjob_close(&j, rc);
	vtp__thumb_free(j.thumb);
	for (size_t i = 0; i < j.nt; i++)
		vtp__ctrack_clear(&j.t[i]);
	vtp_free(j.t);
	vtp_free(j.p);
	vtp_free(j.join);
	vtp_free(j.vdec);
	vtp_free(j.adec);
	for (size_t i = 0; j.esum && i < j.nt; i++)
		vtp_free(j.esum[i]);
	vtp_free(j.esum);
	vtp_free(j.speaking);
	vtp_free(j.main_of_tick);
	if (rc == VTP_COMPOSE_OK && o->progress)
		o->progress(o->ud, 100);
	return rc;
}
