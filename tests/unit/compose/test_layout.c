/* Tests for src/compose/layout.c: sources and layout names, voice
 * activity from tick energies (pauses bridged, clicks dropped), the
 * main-area decision with its hysteresis (1 s of speech takes over, a
 * 0.3 s burst does not, 3 s between switches, the instructor first, a
 * leaver replaced at once), and the tiles of each layout (the main
 * area's share of the canvas, the strip's order and cap, the share at
 * full aspect, auto's choice), all table-driven; and the name label. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <libavutil/frame.h>

#include "compose/compose_int.h"

#define TICKS_PER_S 50

static void test_names(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		bool video;
		int want;
	} src[] = {
		{NULL, true, VTP__SRC_CAMERA},          {NULL, false, VTP__SRC_MICROPHONE},
		{"screen", true, VTP__SRC_SCREEN},      {"screen_audio", false, VTP__SRC_SCREEN_AUDIO},
		{"camera", true, VTP__SRC_CAMERA},      {"microphone", false, VTP__SRC_MICROPHONE},
		{"screen", false, VTP__SRC_MICROPHONE}, {"screen_audio", true, VTP__SRC_CAMERA},
		{"bogus", true, VTP__SRC_CAMERA},
	};
	for (size_t i = 0; i < sizeof src / sizeof *src; i++)
		assert_int_equal(vtp__source_parse(src[i].s, src[i].video), src[i].want);
	static const struct {
		const char *s;
		int want;
	} lay[] = {
		{NULL, VTP__LAYOUT_AUTO},       {"auto", VTP__LAYOUT_AUTO},
		{"grid", VTP__LAYOUT_GRID},     {"speaker", VTP__LAYOUT_SPEAKER},
		{"presentation", VTP__LAYOUT_PRESENTATION}, {"screen", VTP__LAYOUT_SCREEN},
		{"Grid", -1},                   {"", -1},
		{"gallery", -1},
	};
	for (size_t i = 0; i < sizeof lay / sizeof *lay; i++)
		assert_int_equal(vtp__layout_parse(lay[i].s), lay[i].want);
}

/* Voice: -70 dB of noise with loud spans [from, to) in ticks. */
static void test_voice_activity(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		int spans[3][2];
		int expect_on[2];   /* a span expected speaking throughout */
		int expect_off;     /* a tick expected silent */
		int talk_ticks;
	} cases[] = {
		{"a 0.3 s burst is speech", {{100, 115}}, {100, 115}, 99, 15},
		{"a 200 ms pause is bridged", {{100, 150}, {160, 200}}, {100, 200}, 201, 100},
		{"a 400 ms pause is not", {{100, 150}, {170, 200}}, {100, 150}, 160, 80},
		{"a 40 ms click is dropped", {{100, 102}}, {0, 0}, 100, 0},
	};
	enum { N = 500 };
	float db[N];
	uint8_t sp[N];
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		for (int i = 0; i < N; i++)
			db[i] = -70.0f + (float)(i % 7); /* noise that wobbles */
		for (int s = 0; s < 3; s++)
			for (int i = cases[c].spans[s][0]; i < cases[c].spans[s][1]; i++)
				db[i] = -20.0f;
		vtp__voice_activity(db, N, sp);
		for (int i = cases[c].expect_on[0]; i < cases[c].expect_on[1]; i++)
			assert_true(sp[i]);
		assert_false(sp[cases[c].expect_off]);
		int talk = 0;
		for (int i = 0; i < N; i++)
			talk += sp[i];
		print_message("%s: %d ticks\n", cases[c].name, talk);
		assert_int_equal(talk, cases[c].talk_ticks);
	}
}

/* Main-area decisions: speech spans in seconds per person, presence,
 * then who must be in the main area at given seconds. */
typedef struct decide_case {
	const char *name;
	int np;
	double speech[4][4][2]; /* per person up to 4 spans [from, to) s */
	double present[4][2];   /* [from, to) s; {0, 0}: the whole time */
	int first;
	struct {
		double at;
		int main;
	} expect[8];
} decide_case;

static const decide_case decide_cases[] = {
	{"default, then 1 s of speech takes over; a burst does not",
	 3,
	 {{{0}}, {{2.0, 4.0}}, {{6.0, 6.3}}},
	 {{0}},
	 0,
	 {{0.5, 0}, {2.5, 0}, {3.1, 1}, {5.0, 1}, {6.2, 1}, {7.0, 1}, {-1, 0}}},
	{"the instructor first; 1.5 s of speech shows within 2 s",
	 3,
	 {{{0}}, {{0}}, {{1.0, 2.5}}},
	 {{0}},
	 1,
	 {{0.2, 1}, {1.9, 1}, {2.1, 2}, {3.0, 2}, {-1, 0}}},
	{"no switch sooner than 3 s after the last",
	 2,
	 {{{3.5, 8.0}}, {{1.0, 3.0}}},
	 {{0}},
	 0,
	 {{2.1, 1}, {4.6, 1}, {4.9, 1}, {5.1, 0}, {7.0, 0}, {-1, 0}}},
	{"the main person talking longer keeps the main area",
	 2,
	 {{{1.0, 9.0}}, {{4.0, 8.0}}},
	 {{0}},
	 1,
	 {{0.5, 1}, {2.1, 0}, {6.0, 0}, {8.5, 0}, {-1, 0}}},
	{"the instructor joining after the others is shown once there",
	 3,
	 {{{0}}, {{0}}, {{4.0, 6.0}}},
	 {{0, 10}, {0.5, 10}, {0, 10}},
	 1,
	 {{0.2, 0}, {0.6, 1}, {4.9, 1}, {5.1, 2}, {-1, 0}}},
	{"a leaver is replaced at once by the latest speaker",
	 3,
	 {{{0}}, {{1.0, 3.0}}, {{4.0, 4.2}}},
	 {{0, 10}, {0, 5}, {0, 10}},
	 0,
	 {{2.5, 1}, {4.9, 1}, {5.0, 2}, {6.0, 2}, {-1, 0}}},
};

static void test_speaker_decide(void **state)
{
	(void)state;
	enum { NT = 10 * TICKS_PER_S };
	static uint8_t speaking[4 * NT];
	int main_person[NT];
	for (size_t c = 0; c < sizeof decide_cases / sizeof *decide_cases; c++) {
		const decide_case *dc = &decide_cases[c];
		int64_t from[4], to[4];
		memset(speaking, 0, sizeof speaking);
		for (int p = 0; p < dc->np; p++) {
			for (int s = 0; s < 4; s++)
				for (int t = (int)(dc->speech[p][s][0] * TICKS_PER_S);
				     t < (int)(dc->speech[p][s][1] * TICKS_PER_S); t++)
					speaking[p * NT + t] = 1;
			bool whole = dc->present[p][1] == 0;
			from[p] = whole ? 0 : (int64_t)(dc->present[p][0] * TICKS_PER_S);
			to[p] = whole ? NT : (int64_t)(dc->present[p][1] * TICKS_PER_S);
		}
		vtp__speaker_decide(speaking, dc->np, NT, from, to, dc->first, main_person);
		for (int e = 0; e < 8 && dc->expect[e].at >= 0; e++) {
			int t = (int)(dc->expect[e].at * TICKS_PER_S);
			if (main_person[t] != dc->expect[e].main)
				print_error("%s: at %.2f s main %d, want %d\n", dc->name, dc->expect[e].at,
					    main_person[t], dc->expect[e].main);
			assert_int_equal(main_person[t], dc->expect[e].main);
		}
	}
}

/* Every tile inside the canvas, even, no two overlapping. */
static void check_geometry(const vtp__ltile *t, int n, int w, int h)
{
	for (int i = 0; i < n; i++) {
		const vtp__tile *a = &t[i].r;
		assert_true(a->x >= 0 && a->y >= 0 && a->w > 0 && a->h > 0);
		assert_true(a->x + a->w <= w && a->y + a->h <= h);
		assert_int_equal((a->x | a->y | a->w | a->h) & 1, 0);
		for (int k = 0; k < i; k++) {
			const vtp__tile *b = &t[k].r;
			bool apart = a->x + a->w <= b->x || b->x + b->w <= a->x ||
				     a->y + a->h <= b->y || b->y + b->h <= a->y;
			assert_true(apart);
		}
	}
}

/* The picture a w x h source makes fitted into tile (aspect kept). */
static double fitted_area(const vtp__tile *t, int sw, int sh)
{
	double k = (double)t->w / sw < (double)t->h / sh ? (double)t->w / sw : (double)t->h / sh;
	return sw * k * sh * k;
}

typedef struct scene_case {
	const char *name;
	int layout;
	int n;          /* people 0..n-1, peer = index, camera = 100 + index */
	int no_camera;  /* this many of the last have no camera */
	int main;
	int screen_w, screen_h; /* 0: no share */
	int64_t last_spoke[12];
	int want_used;
	int want_tiles;
	int want_order[9]; /* peers of tiles 0.. (-1: the screen), -2: end */
} scene_case;

static const scene_case scene_cases[] = {
	{"grid of 4", VTP__LAYOUT_GRID, 4, 0, -1, 0, 0, {0}, VTP__LAYOUT_GRID, 4,
	 {0, 1, 2, 3, -2}},
	{"speaker: main first, the strip by recency", VTP__LAYOUT_SPEAKER, 4, 0, 2, 0, 0,
	 {-1, 10, 50, 30}, VTP__LAYOUT_SPEAKER, 4, {2, 3, 1, 0, -2}},
	{"speaker: as many in the strip as fit at 16:9 (5 of 256x144)", VTP__LAYOUT_SPEAKER, 12, 2,
	 0, 0, 0, {0}, VTP__LAYOUT_SPEAKER, 6, {0, 1, 2, 3, 4, 5, -2}},
	{"speaker: the strip's most recent speakers", VTP__LAYOUT_SPEAKER, 12, 0, 11, 0, 0,
	 {0, 0, 0, 0, 0, 0, 0, 3, 9, 7, 5, 8}, VTP__LAYOUT_SPEAKER, 6, {11, 8, 9, 10, 7, 0, -2}},
	{"presentation: 4 beside the share (256x144)", VTP__LAYOUT_PRESENTATION, 12, 0, 3, 1920,
	 1080, {0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 10}, VTP__LAYOUT_PRESENTATION, 5,
	 {-1, 3, 10, 0, 1, -2}},
	{"speaker: nobody chosen yet shows the first", VTP__LAYOUT_SPEAKER, 2, 0, -1, 0, 0, {0},
	 VTP__LAYOUT_SPEAKER, 2, {0, 1, -2}},
	{"presentation: the share, then the speaker", VTP__LAYOUT_PRESENTATION, 3, 0, 2, 1920,
	 1080, {0, 0, 40}, VTP__LAYOUT_PRESENTATION, 4, {-1, 2, 0, 1, -2}},
	{"presentation: the sharer while the one chosen has not spoken", VTP__LAYOUT_PRESENTATION,
	 3, 0, 2, 1920, 1080, {0}, VTP__LAYOUT_PRESENTATION, 4, {-1, 1, 0, 2, -2}},
	{"presentation: the sharer when nobody spoke", VTP__LAYOUT_PRESENTATION, 3, 0, -1, 1920,
	 1080, {0}, VTP__LAYOUT_PRESENTATION, 4, {-1, 1, 0, 2, -2}},
	{"presentation: a 4:3 share", VTP__LAYOUT_PRESENTATION, 2, 0, 0, 1024, 768, {0},
	 VTP__LAYOUT_PRESENTATION, 3, {-1, 1, 0, -2}},
	{"presentation without a share is speaker", VTP__LAYOUT_PRESENTATION, 2, 0, 1, 0, 0, {0},
	 VTP__LAYOUT_SPEAKER, 2, {1, 0, -2}},
	{"screen: the share alone", VTP__LAYOUT_SCREEN, 3, 0, 1, 1920, 1080, {0},
	 VTP__LAYOUT_SCREEN, 1, {-1, -2}},
	{"auto: 4 cameras are a grid", VTP__LAYOUT_AUTO, 6, 2, 0, 0, 0, {0}, VTP__LAYOUT_GRID, 6,
	 {0, 1, 2, 3, 4, 5, -2}},
	{"auto: 5 cameras are speaker", VTP__LAYOUT_AUTO, 5, 0, 0, 0, 0, {0},
	 VTP__LAYOUT_SPEAKER, 5, {0, 1, 2, 3, 4, -2}},
	{"auto: a share is presentation", VTP__LAYOUT_AUTO, 2, 0, 0, 1920, 1080, {7},
	 VTP__LAYOUT_PRESENTATION, 3, {-1, 0, 1, -2}},
};

static void test_scenes(void **state)
{
	(void)state;
	enum { W = 1280, H = 720 };
	for (size_t c = 0; c < sizeof scene_cases / sizeof *scene_cases; c++) {
		const scene_case *sc = &scene_cases[c];
		vtp__lperson people[12];
		for (int i = 0; i < sc->n; i++)
			people[i] = (vtp__lperson){i, i >= sc->n - sc->no_camera ? -1 : 100 + i,
						   sc->last_spoke[i] ? sc->last_spoke[i] : -1};
		vtp__lscene s = {sc->layout, W, H, people, sc->n, sc->main,
				 sc->screen_w ? 200 : -1, sc->screen_w ? 1 : -1, sc->screen_w,
				 sc->screen_h};
		vtp__ltile t[13];
		int used = -1;
		int n = vtp__layout_scene(&s, t, &used);
		print_message("%s: %d tiles\n", sc->name, n);
		assert_int_equal(used, sc->want_used);
		assert_int_equal(n, sc->want_tiles);
		check_geometry(t, n, W, H);
		for (int i = 0; i < n && i < 9 && sc->want_order[i] != -2; i++) {
			if (sc->want_order[i] == -1) {
				assert_int_equal(t[i].track, 200);
				assert_false(t[i].label);
			} else {
				assert_int_equal(t[i].peer, sc->want_order[i]);
				assert_int_equal(t[i].track, people[sc->want_order[i]].camera);
				assert_int_equal(t[i].label, t[i].track >= 0);
			}
		}
		if ((used == VTP__LAYOUT_SPEAKER && n == 6) || (used == VTP__LAYOUT_PRESENTATION && n == 5)) {
			/* a full strip: 16:9 tiles of 256x144 (labels fit) */
			assert_int_equal(t[1].r.w, 256);
			assert_int_equal(t[1].r.h, 144);
		}
		if (used == VTP__LAYOUT_SPEAKER) /* a 16:9 camera in the main area */
			assert_true(fitted_area(&t[0].r, 640, 360) >= 0.6 * W * H);
		if (used == VTP__LAYOUT_PRESENTATION || used == VTP__LAYOUT_SCREEN) {
			assert_true(fitted_area(&t[0].r, sc->screen_w, sc->screen_h) >= 0.6 * W * H);
			if (sc->screen_w * 9 == sc->screen_h * 16)
				assert_true(t[0].r.w >= 1024);
		}
		if (used == VTP__LAYOUT_GRID) {
			vtp__tile g[12];
			vtp__layout(sc->n, W, H, g);
			for (int i = 0; i < n; i++)
				assert_memory_equal(&t[i].r, &g[i], sizeof g[i]);
		}
	}
}

/* A name label: light letters on a dark strip, never wider than allowed;
 * no room, no label. */
static void test_label(void **state)
{
	(void)state;
	AVFrame *f = vtp__label_image("Ada Lovelace", 24, 400);
	if (!f) {
		print_message("no font installed: labels are left out\n");
		vtp__font_cleanup();
		skip();
	}
	assert_int_equal(f->height, 24);
	assert_true(f->width > 48 && f->width <= 400 && (f->width & 1) == 0);
	int light = 0, dark = 0;
	for (int y = 0; y < f->height; y++)
		for (int x = 0; x < f->width; x++) {
			uint8_t v = f->data[0][y * f->linesize[0] + x];
			light += v > 150;
			dark += v < 40;
		}
	assert_true(light > 20 && dark > light);
	av_frame_free(&f);
	f = vtp__label_image("A very long name that will not fit in a small tile at all", 24, 100);
	assert_non_null(f);
	assert_true(f->width <= 100);
	av_frame_free(&f);
	assert_null(vtp__label_image("Ada", 24, 30)); /* narrower than two heights */
	assert_null(vtp__label_image("", 24, 400));
	vtp__font_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_voice_activity),
		cmocka_unit_test(test_speaker_decide),
		cmocka_unit_test(test_scenes),
		cmocka_unit_test(test_label),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
