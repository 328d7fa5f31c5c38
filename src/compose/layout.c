/* Layouts for the composer: what each track is (its source), who speaks
 * when (voice activity from a microphone's energy against its noise
 * floor, then the main-area decision with hysteresis, in 20 ms ticks,
 * over the whole timeline or a tick at a time), and the tiles of one
 * output instant for each layout (grid, speaker, presentation, screen,
 * auto). Everything here is a pure function of its inputs (and of the
 * state a step carries), so the unit tests drive it with tables. */
#include "compose/compose_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

int vtp__source_parse(const char *s, bool video)
{
	if (s && video && strcmp(s, "screen") == 0)
		return VTP__SRC_SCREEN;
	if (s && !video && strcmp(s, "screen_audio") == 0)
		return VTP__SRC_SCREEN_AUDIO;
	return video ? VTP__SRC_CAMERA : VTP__SRC_MICROPHONE;
}

int vtp__layout_parse(const char *s)
{
	static const char *const names[] = {"grid", "speaker", "presentation", "screen", "auto"};
	if (!s)
		return VTP__LAYOUT_AUTO;
	for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* ---- voice activity ---------------------------------------------------------- */

#define SPEECH_ABOVE_FLOOR_DB 15.0f /* speech stands this far over the noise */
#define SPEECH_MIN_DB -50.0f        /* and over this, whatever the floor */
#define BRIDGE_TICKS 15             /* 300 ms: pauses between words */
#define BLIP_TICKS 3                /* 60 ms: clicks are not speech */

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

float vtp__voice_floor(const float *db, size_t n)
{
	/* The 10th percentile of the person's tick energies (a microphone is
	 * quiet most of a lecture; when it never is, speech must still rise
	 * over the floor of the absolute threshold). */
	float *sorted = vtp_malloc(n * sizeof *sorted);
	memcpy(sorted, db, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_float);
	float floor_db = sorted[n / 10];
	vtp_free(sorted);
	return floor_db;
}

void vtp__voice_activity(const float *db, size_t n, uint8_t *speaking)
{
	if (n == 0)
		return;
	vtp__voice_mark(db, n, vtp__voice_floor(db, n), speaking);
}

static float voice_threshold(float floor_db)
{
	float thr = floor_db + SPEECH_ABOVE_FLOOR_DB;
	return thr < SPEECH_MIN_DB ? SPEECH_MIN_DB : thr;
}

void vtp__voice_mark(const float *db, size_t n, float floor_db, uint8_t *speaking)
{
	float thr = voice_threshold(floor_db);
	for (size_t i = 0; i < n; i++)
		speaking[i] = db[i] > thr;
	/* Bridge short pauses, then drop blips. */
	size_t last_on = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (!speaking[i])
			continue;
		if (last_on != SIZE_MAX && i - last_on > 1 && i - last_on <= BRIDGE_TICKS)
			memset(speaking + last_on + 1, 1, i - last_on - 1);
		last_on = i;
	}
	for (size_t i = 0; i < n;) {
		if (!speaking[i]) {
			i++;
			continue;
		}
		size_t k = i;
		while (k < n && speaking[k])
			k++;
		if (k - i < BLIP_TICKS)
			memset(speaking + i, 0, k - i);
		i = k;
	}
}

/* ---- voice activity as the ticks come --------------------------------------- */

/* The histogram's range: a tick's energy is 10 log10(mean square + 1e-12),
 * so -120 dB at least; a decoder's overshoot stays well under +10. */
#define HIST_MIN_DB -120.0f
#define HIST_BINS 260 /* 0.5 dB each, to +10 dB */

struct vtp__voice_stream {
	float fixed_floor;      /* NAN: from the histogram */
	float floor_db;         /* the last push's */
	uint64_t hist[HIST_BINS];
	uint8_t *on;            /* per tick: over the threshold or bridged */
	uint8_t *marks;         /* per tick: final marks, [0, final) */
	size_t n, cap, final;
	size_t last_on;         /* the last tick over the threshold, SIZE_MAX */
};

vtp__voice_stream *vtp__voice_stream_new(float floor_db)
{
	vtp__voice_stream *s = vtp_calloc(1, sizeof *s);
	s->fixed_floor = floor_db;
	s->floor_db = floor_db;
	s->last_on = SIZE_MAX;
	return s;
}

void vtp__voice_stream_free(vtp__voice_stream *s)
{
	if (!s)
		return;
	vtp_free(s->on);
	vtp_free(s->marks);
	vtp_free(s);
}

/* The histogram's 10th percentile (vtp__voice_floor's sorted[n / 10]): the
 * lower edge of the bin holding it, so within 0.5 dB below it. */
static float hist_floor(const vtp__voice_stream *s, size_t total)
{
	uint64_t want = total / 10, seen = 0;
	int b = 0;
	for (; b < HIST_BINS - 1; b++) {
		seen += s->hist[b];
		if (seen > want)
			break;
	}
	return HIST_MIN_DB + 0.5f * (float)b;
}

/* Marks the ticks in [s->final, upto): a run of marked ticks (after the
 * bridging) stays when it is BLIP_TICKS long or more. The caller knows
 * each tick there is final: its run is complete or long enough already. */
static void settle(vtp__voice_stream *s, size_t upto)
{
	size_t t = s->final;
	while (t < upto) {
		if (!s->on[t]) {
			s->marks[t++] = 0;
			continue;
		}
		size_t a = t, e = t;
		while (a > 0 && s->on[a - 1])
			a--;
		while (e + 1 < s->n && s->on[e + 1])
			e++;
		uint8_t keep = e - a + 1 >= BLIP_TICKS;
		for (; t <= e && t < upto; t++)
			s->marks[t] = keep;
	}
	s->final = upto;
}

size_t vtp__voice_stream_push(vtp__voice_stream *s, const float *db, size_t n)
{
	if (s->n + n > s->cap) {
		s->cap = (s->n + n) * 2;
		s->on = vtp_realloc(s->on, s->cap);
		s->marks = vtp_realloc(s->marks, s->cap);
	}
	if (isnan(s->fixed_floor) && n > 0) {
		for (size_t i = 0; i < n; i++) {
			int b = (int)floorf((db[i] - HIST_MIN_DB) * 2.0f);
			s->hist[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b]++;
		}
		s->floor_db = hist_floor(s, s->n + n);
	}
	float thr = voice_threshold(s->floor_db);
	/* As vtp__voice_mark() does, a tick at a time: a tick over the
	 * threshold bridges the pause since the last one. */
	for (size_t i = 0; i < n; i++) {
		size_t t = s->n + i;
		s->on[t] = db[i] > thr;
		if (!s->on[t])
			continue;
		if (s->last_on != SIZE_MAX && t - s->last_on > 1 && t - s->last_on <= BRIDGE_TICKS)
			memset(s->on + s->last_on + 1, 1, t - s->last_on - 1);
		s->last_on = t;
	}
	s->n += n;
	/* Final: a pause can be bridged by a tick up to BRIDGE_TICKS after
	 * the last one over the threshold, and a run ending there is known
	 * complete (or long enough) one tick later. */
	if (s->n > VTP__VOICE_LOOKAHEAD && s->n - VTP__VOICE_LOOKAHEAD > s->final)
		settle(s, s->n - VTP__VOICE_LOOKAHEAD);
	return s->final;
}

size_t vtp__voice_stream_end(vtp__voice_stream *s)
{
	settle(s, s->n);
	return s->final;
}

const uint8_t *vtp__voice_stream_marks(const vtp__voice_stream *s)
{
	return s->marks;
}

float vtp__voice_stream_floor(const vtp__voice_stream *s)
{
	return s->floor_db;
}

/* ---- who is in the main area ------------------------------------------------- */

#define TAKE_TICKS 50   /* 1 s of speech takes the main area */
#define HOLD_TICKS 150  /* 3 s at least between switches */

void vtp__speaker_init(vtp__speaker_state *st, int np, int first)
{
	st->np = np;
	st->first = first;
	st->run = vtp_malloc((np ? (size_t)np : 1) * sizeof *st->run);
	st->last = vtp_malloc((np ? (size_t)np : 1) * sizeof *st->last);
	for (int p = 0; p < np; p++)
		st->run[p] = st->last[p] = -1;
	st->cur = -1;
	st->by_speech = false;
	st->switched = INT64_MIN / 2;
}

void vtp__speaker_free(vtp__speaker_state *st)
{
	vtp_free(st->run);
	vtp_free(st->last);
	st->run = st->last = NULL;
}

int vtp__speaker_step(vtp__speaker_state *st, const uint8_t *speaking, size_t stride,
		      const int64_t *from, const int64_t *to, int64_t t)
{
	int np = st->np, first = st->first, cur = st->cur;
	int64_t *run = st->run, *last = st->last;
	for (int p = 0; p < np; p++) {
		bool here = from[p] <= t && t < to[p];
		if (here && speaking[(size_t)p * stride]) {
			if (run[p] < 0)
				run[p] = t;
			last[p] = t;
		} else {
			run[p] = -1;
		}
	}
	if (cur < 0 || !(from[cur] <= t && t < to[cur])) {
		/* Nobody yet, or the main person left: the most recent
		 * speaker present, else the default, else the first
		 * present; this is no switch between speakers, so no hold. */
		int pick = -1;
		for (int p = 0; p < np; p++)
			if (from[p] <= t && t < to[p] && last[p] >= 0 &&
			    (pick < 0 || last[p] > last[pick]))
				pick = p;
		if (pick < 0 && first >= 0 && first < np && from[first] <= t && t < to[first])
			pick = first;
		for (int p = 0; pick < 0 && p < np; p++)
			if (from[p] <= t && t < to[p])
				pick = p;
		st->by_speech = pick >= 0 && last[pick] >= 0;
		cur = pick;
	} else if (!st->by_speech && first >= 0 && first < np && cur != first &&
		   from[first] <= t && t < to[first] && last[cur] < 0) {
		/* Nobody has spoken yet and the instructor arrived after
		 * whoever was shown first: the instructor. */
		cur = first;
	} else if (t - st->switched >= HOLD_TICKS) {
		/* The longest current speech of a second or more takes
		 * over, unless the main person has been talking longer. */
		int cand = -1;
		for (int p = 0; p < np; p++)
			if (p != cur && run[p] >= 0 && t - run[p] >= TAKE_TICKS &&
			    (cand < 0 || run[p] < run[cand]))
				cand = p;
		if (cand >= 0 && !(run[cur] >= 0 && run[cur] <= run[cand])) {
			cur = cand;
			st->by_speech = true;
			st->switched = t;
		}
	}
	st->cur = cur;
	return cur;
}

void vtp__speaker_decide(const uint8_t *speaking, int np, size_t nticks, const int64_t *from,
			 const int64_t *to, int first, int *main_person)
{
	vtp__speaker_state st;
	vtp__speaker_init(&st, np, first);
	for (size_t tt = 0; tt < nticks; tt++)
		main_person[tt] = vtp__speaker_step(&st, speaking + tt, nticks, from, to, (int64_t)tt);
	vtp__speaker_free(&st);
}

/* ---- tiles ------------------------------------------------------------------------ */

static void person_tile(vtp__ltile *t, const vtp__lperson *p, int x, int y, int w, int h)
{
	t->r = (vtp__tile){x & ~1, y & ~1, w & ~1, h & ~1};
	t->peer = p->peer;
	t->track = p->camera;
	t->label = p->camera >= 0; /* a name tile carries the name already */
}

/* People other than skip, most recent speakers first (then join order),
 * at most max of them, as indices into s->people. */
static int strip_order(const vtp__lscene *s, int skip, int max, int *out)
{
	int *all = vtp_malloc((s->n ? (size_t)s->n : 1) * sizeof *all);
	int n = 0;
	for (int i = 0; i < s->n; i++) {
		if (i == skip)
			continue;
		/* insertion sort by last_spoke descending, stable: join order */
		int k = n++;
		while (k > 0 && s->people[all[k - 1]].last_spoke < s->people[i].last_spoke) {
			all[k] = all[k - 1];
			k--;
		}
		all[k] = i;
	}
	if (n > max)
		n = max;
	memcpy(out, all, (size_t)n * sizeof *out);
	vtp_free(all);
	return n;
}

/* A row (or column) of up to VTP__STRIP_MAX tiles of 16:9 in the box
 * (x, y, w, h): a row centred along it, a column from its top. */
static int strip(const vtp__lscene *s, const int *order, int n, int x, int y, int w, int h,
		 bool vertical, vtp__ltile *out)
{
	if (n <= 0 || w < 4 || h < 4)
		return 0;
	int tw, th;
	if (vertical) {
		tw = w;
		th = tw * 9 / 16;
		if (th * n > h) {
			th = h / n;
			tw = th * 16 / 9 < w ? th * 16 / 9 : w;
		}
	} else {
		th = h;
		tw = th * 16 / 9;
		if (tw * n > w) {
			tw = w / n;
			th = tw * 9 / 16 < h ? tw * 9 / 16 : h;
		}
	}
	tw &= ~1;
	th &= ~1;
	for (int i = 0; i < n; i++) {
		int tx = vertical ? x + (w - tw) / 2 : x + (w - n * tw) / 2 + i * tw;
		int ty = vertical ? y + i * th : y + (h - th) / 2;
		person_tile(&out[i], &s->people[order[i]], tx, ty, tw, th);
	}
	return n;
}

/* How many 16:9 tiles a strip of w x h holds at its full height (a row)
 * or width (a column): 1..VTP__STRIP_MAX. Fewer, larger tiles rather than
 * stamps: 5 below the speaker and 4 beside a share on 1280x720, each
 * 256x144, big enough for a name label, and each one tile fewer to
 * decode. */
static int strip_fit(int w, int h, bool vertical)
{
	int side = vertical ? w * 9 / 16 : h * 16 / 9;
	int n = side > 0 ? (vertical ? h : w) / side : 1;
	return n < 1 ? 1 : n > VTP__STRIP_MAX ? VTP__STRIP_MAX : n;
}

static int grid(const vtp__lscene *s, vtp__ltile *out)
{
	vtp__tile *r = vtp_malloc((s->n ? (size_t)s->n : 1) * sizeof *r);
	vtp__layout(s->n, s->w, s->h, r);
	for (int i = 0; i < s->n; i++)
		person_tile(&out[i], &s->people[i], r[i].x, r[i].y, r[i].w, r[i].h);
	vtp_free(r);
	return s->n;
}

/* The main person full width over 4/5 of the height, the strip below. */
static int speaker(const vtp__lscene *s, vtp__ltile *out)
{
	if (s->n == 0)
		return 0;
	int m = s->main >= 0 && s->main < s->n ? s->main : 0;
	int order[VTP__STRIP_MAX];
	int ns = strip_order(s, m, strip_fit(s->w, s->h - ((s->h * 4 / 5) & ~1), false), order);
	int mh = ns > 0 ? (s->h * 4 / 5) & ~1 : s->h;
	person_tile(&out[0], &s->people[m], 0, 0, s->w, mh);
	return 1 + strip(s, order, ns, 0, mh, s->w, s->h - mh, false, out + 1);
}

/* The share at full aspect in the left 4/5 (1024 px of 1280: a 16:9
 * share gets 1024x576, 64 % of the canvas), the speaker (the sharer when
 * nobody spoke) on top of a column beside it, then the strip. */
static int presentation(const vtp__lscene *s, vtp__ltile *out)
{
	int mw = (s->w * 4 / 5) & ~1;
	int n = 0;
	out[n].r = (vtp__tile){0, 0, mw, s->h};
	out[n].peer = s->screen_peer;
	out[n].track = s->screen;
	out[n].label = false;
	n++;
	/* Fit the share: the column takes what the share leaves over, and
	 * starts level with the share's top edge. */
	int top = 0;
	if (s->screen_w > 0 && s->screen_h > 0) {
		int sw = (int)((int64_t)s->h * s->screen_w / s->screen_h) & ~1;
		if (sw < mw)
			mw = sw > s->w / 2 ? sw : mw;
		out[0].r.w = mw;
		int sh = (int)((int64_t)mw * s->screen_h / s->screen_w);
		if (sh < s->h)
			top = ((s->h - sh) / 2) & ~1;
	}
	if (s->n == 0)
		return n;
	/* The speaker beside the share; the sharer while the person chosen
	 * has not spoken (nobody has yet). */
	int m = s->main;
	if (m < 0 || m >= s->n || s->people[m].last_spoke < 0) {
		m = 0;
		for (int i = 0; i < s->n; i++)
			if (s->people[i].peer == s->screen_peer)
				m = i;
	}
	int order[VTP__STRIP_MAX + 1];
	order[0] = m;
	int ns = strip_order(s, m, strip_fit(s->w - mw, s->h - top, true) - 1, order + 1);
	return n + strip(s, order, ns + 1, mw, top, s->w - mw, s->h - top, true, out + n);
}

int vtp__layout_scene(const vtp__lscene *s, vtp__ltile *out, int *used)
{
	int l = s->layout;
	if (l == VTP__LAYOUT_AUTO) {
		int cams = 0;
		for (int i = 0; i < s->n; i++)
			cams += s->people[i].camera >= 0;
		l = s->screen >= 0 ? VTP__LAYOUT_PRESENTATION
				   : cams <= 4 ? VTP__LAYOUT_GRID : VTP__LAYOUT_SPEAKER;
	}
	if ((l == VTP__LAYOUT_PRESENTATION || l == VTP__LAYOUT_SCREEN) && s->screen < 0)
		l = VTP__LAYOUT_SPEAKER;
	if (used)
		*used = l;
	switch (l) {
	case VTP__LAYOUT_GRID:
		return grid(s, out);
	case VTP__LAYOUT_SPEAKER:
		return speaker(s, out);
	case VTP__LAYOUT_PRESENTATION:
		return presentation(s, out);
	default: /* screen */
		out[0] = (vtp__ltile){{0, 0, s->w, s->h}, s->screen_peer, s->screen, false};
		return 1;
	}
}
