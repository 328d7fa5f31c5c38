/* Tests for the pass in src/compose/compose.c driven through its internal
 * interface (compose_int.h), the way a driver runs it: open, advance,
 * finish, close. Advancing in steps (whole seconds, steps off the frame
 * grid, one frame at a time, a part and then finish) must give the same
 * file as advancing once to the end, packet for packet (WebM: VP8 on two
 * chunked encoders, Opus, and the H.264/AAC HLS made in the same pass;
 * MP4: x264, AAC), in grid and in speaker (whose who-spoke-last state
 * lives across the steps). The inputs are set by hand: two people whose
 * tiles are name tiles (no decoders), one joining late, a speaker table,
 * silence; no captures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libavformat/avformat.h>

#include "compose/compose_int.h"

#define FPS 10
#define SECOND 1000000000LL
#define T0 (1000 * SECOND)
#define LENGTH (4 * SECOND + 50000000LL) /* 41 frames: two GOP chunks and one frame */

static char g_dir[] = "/tmp/vtp-test-pass-XXXXXX";

/* One packet of a file, as compared: its stream, when, a hash of its
 * bytes; and its place in the file. */
typedef struct pkt_sum {
	int stream;
	size_t order;
	int64_t pts, dts;
	int flags, size;
	uint64_t hash;
} pkt_sum;

typedef struct pkt_list {
	pkt_sum *p;
	size_t n;
} pkt_list;

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int cmp_stream_order(const void *a, const void *b)
{
	const pkt_sum *x = a, *y = b;
	if (x->stream != y->stream)
		return x->stream < y->stream ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static pkt_list read_packets(const char *path)
{
	pkt_list l = {0};
	size_t cap = 0;
	AVFormatContext *ic = NULL;
	assert_int_equal(avformat_open_input(&ic, path, NULL, NULL), 0);
	AVPacket *pkt = av_packet_alloc();
	while (av_read_frame(ic, pkt) >= 0) {
		if (l.n == cap) {
			cap = cap ? cap * 2 : 256;
			l.p = realloc(l.p, cap * sizeof *l.p);
			assert_non_null(l.p);
		}
		l.p[l.n] = (pkt_sum){pkt->stream_index, l.n, pkt->pts, pkt->dts, pkt->flags,
				     pkt->size, fnv1a(pkt->data, (size_t)pkt->size)};
		l.n++;
		av_packet_unref(pkt);
	}
	av_packet_free(&pkt);
	avformat_close_input(&ic);
	/* Stream by stream: how the muxer interleaves them is not compared
	 * (it may flush one stream early when the other lags far behind). */
	qsort(l.p, l.n, sizeof *l.p, cmp_stream_order);
	return l;
}

static bool same_packet(const pkt_sum *a, const pkt_sum *b)
{
	return a->stream == b->stream && a->pts == b->pts && a->dts == b->dts &&
	       a->flags == b->flags && a->size == b->size && a->hash == b->hash;
}

static void assert_same_packets(const pkt_list *a, const pkt_list *b, const char *what)
{
	if (a->n != b->n)
		fail_msg("%s: %zu packets, the reference %zu", what, b->n, a->n);
	for (size_t i = 0; i < a->n; i++)
		if (!same_packet(&a->p[i], &b->p[i]))
			fail_msg("%s: packet %zu (stream %d, pts %lld) differs", what, i, b->p[i].stream,
				 (long long)b->p[i].pts);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* The HLS folders hold the same files, byte for byte. */
static void assert_same_hls(const char *a, const char *b)
{
	char pa[640], pb[640];
	int files = 0;
	/* the playlist and init, then segments until the first missing one */
	static const char *fixed[] = {"index.m3u8", "init.mp4"};
	for (int i = 0; i < 2 + 100; i++) {
		char name[64];
		if (i < 2)
			snprintf(name, sizeof name, "%s", fixed[i]);
		else
			snprintf(name, sizeof name, "seg_%05d.m4s", i - 2);
		snprintf(pa, sizeof pa, "%s/%s", a, name);
		snprintf(pb, sizeof pb, "%s/%s", b, name);
		size_t na = 0, nb = 0;
		char *da = slurp(pa, &na), *db = slurp(pb, &nb);
		if (!da && i >= 2) {
			assert_null(db);
			break;
		}
		assert_non_null(da);
		if (!db || na != nb || memcmp(da, db, na) != 0)
			fail_msg("HLS %s differs", name);
		free(da);
		free(db);
		files++;
	}
	assert_true(files >= 3);
}

/* The inputs: A (camera + microphone) from 0, C (microphone) from 0.5 s,
 * B (camera) from 1.5 s, all to the end; in speaker, A in the main area,
 * then B from 2.5 s, the strip beside it ordered by who spoke last. */
#define NTRACKS 4
#define NPEERS 3
typedef struct inputs {
	vtp__ctrack t[NTRACKS];
	vtp__cpeer p[NPEERS];
	int join[NPEERS];
	size_t nticks;
	uint8_t *speaking;
	int *main_of_tick;
} inputs;

static void inputs_init(inputs *in)
{
	memset(in, 0, sizeof *in);
	static char ida[] = "peer-a", idb[] = "peer-b", idc[] = "peer-c";
	static char na[] = "Ada", nb[] = "Bob", nc[] = "Cy";
	in->p[0] = (vtp__cpeer){ida, na, T0, T0 + LENGTH, true, true, false};
	in->p[1] = (vtp__cpeer){idb, nb, T0 + 1500000000LL, T0 + LENGTH, true, false, false};
	in->p[2] = (vtp__cpeer){idc, nc, T0 + 500000000LL, T0 + LENGTH, true, false, false};
	in->join[0] = 0;
	in->join[1] = 2;
	in->join[2] = 1;
	const struct {
		bool video;
		int source, peer;
	} tr[NTRACKS] = {{true, VTP__SRC_CAMERA, 0}, {false, VTP__SRC_MICROPHONE, 0},
			 {true, VTP__SRC_CAMERA, 1}, {false, VTP__SRC_MICROPHONE, 2}};
	for (int i = 0; i < NTRACKS; i++) {
		in->t[i].video = tr[i].video;
		in->t[i].source = tr[i].source;
		in->t[i].peer = tr[i].peer;
		in->t[i].frames = 10;
		in->t[i].width = 320;
		in->t[i].height = 240;
		in->t[i].start_ns = in->p[tr[i].peer].start_ns;
		in->t[i].end_ns = in->p[tr[i].peer].end_ns;
	}
	in->nticks = (size_t)(LENGTH / VTP__TICK_NS) + 1;
	in->speaking = calloc(NPEERS * in->nticks, 1);
	in->main_of_tick = calloc(in->nticks, sizeof *in->main_of_tick);
	assert_non_null(in->speaking);
	assert_non_null(in->main_of_tick);
	for (size_t k = 0; k < in->nticks; k++) {
		in->speaking[k] = k >= 10 && k < 60;                      /* A: 0.2-1.2 s */
		in->speaking[in->nticks + k] = k >= 100 && k < 180;       /* B: 2-3.6 s */
		in->speaking[2 * in->nticks + k] = k >= 65 && k < 90;     /* C: 1.3-1.8 s */
		in->main_of_tick[k] = k < 125 ? 0 : 1;
	}
}

static void inputs_free(inputs *in)
{
	free(in->speaking);
	free(in->main_of_tick);
}

/* Composes the inputs into out (and hls, when not NULL), advancing to each
 * of steps[] (ns from t0, ascending) and then finishing. */
static void compose(const char *format, int layout, const char *out, const char *hls,
		    const int64_t *steps, size_t nsteps)
{
	inputs in;
	inputs_init(&in);
	vtp_compose_opts o;
	vtp_compose_defaults(&o);
	o.tracks_dir = g_dir; /* not read: the inputs are set here */
	o.out_path = out;
	o.format = format;
	o.video_codec = NULL;
	o.audio_codec = NULL;
	o.width = 320;
	o.height = 240;
	o.fps = FPS;
	o.bitrate_kbps = 400;
	o.threads = 2; /* VP8: two encoders, chunk by chunk */
	o.hls_dir = hls;
	vtp_compose_result r;
	memset(&r, 0, sizeof r);
	vtp__cjob j;
	vtp__cjob_init(&j, &o, &r);
	assert_int_equal(vtp__cjob_check_opts(&j), 0);
	j.layout = layout;
	j.t = in.t;
	j.nt = NTRACKS;
	j.p = in.p;
	j.np = NPEERS;
	j.join = in.join;
	j.t0 = T0;
	j.t1 = T0 + LENGTH;
	j.nticks = in.nticks;
	if (layout != VTP__LAYOUT_GRID) {
		j.speaking = in.speaking;
		j.main_of_tick = in.main_of_tick;
	}
	vtp__vdec *vdec[NTRACKS] = {NULL};
	vtp__adec *adec[NTRACKS] = {NULL};
	j.vdec = vdec;
	j.adec = adec;
	int rc = vtp__cjob_open_output(&j);
	assert_int_equal(rc, 0);
	j.frames = (LENGTH * FPS + SECOND - 1) / SECOND;
	rc = vtp__cjob_open(&j);
	if (rc)
		fail_msg("open: %s", r.error);
	for (size_t i = 0; i < nsteps && rc == 0; i++) {
		rc = vtp__cjob_advance(&j, steps[i]);
		/* the frames whose instant is before the step, no more */
		int64_t want = steps[i] <= 0 ? 0 : (steps[i] * FPS + SECOND - 1) / SECOND;
		assert_int_equal(r.frames_out, (uint64_t)(want < j.frames ? want : j.frames));
	}
	if (rc == 0)
		rc = vtp__cjob_finish(&j);
	if (rc)
		fail_msg("compose: %s", r.error);
	assert_int_equal(r.frames_out, (uint64_t)j.frames);
	assert_true(r.duration_seconds > 4.0);
	vtp__cjob_close(&j, rc);
	inputs_free(&in);
}

/* The ways to step: each a list of instants to advance to. */
#define MAX_STEPS 64
typedef struct stepping {
	const char *name;
	int64_t at[MAX_STEPS];
	size_t n;
} stepping;

static void steppings(stepping *s, size_t *n)
{
	size_t k = 0;
	s[k] = (stepping){.name = "once to the end", .at = {LENGTH}, .n = 1};
	k++;
	s[k] = (stepping){.name = "whole seconds, then past the end", .n = 0};
	for (int64_t t = SECOND; t <= 6 * SECOND; t += SECOND)
		s[k].at[s[k].n++] = t;
	k++;
	/* 0.37 s: off the frame grid (a step ending inside a frame's span) */
	s[k] = (stepping){.name = "0.37 s steps, with a zero and a repeated step", .n = 0};
	s[k].at[s[k].n++] = 0;
	for (int64_t t = 370000000LL; t < LENGTH; t += 370000000LL) {
		s[k].at[s[k].n++] = t;
		if (s[k].n == 4)
			s[k].at[s[k].n++] = t;
	}
	k++;
	s[k] = (stepping){.name = "one frame at a time", .n = 0};
	for (int64_t f = 1; f <= 41 && s[k].n < MAX_STEPS; f++)
		s[k].at[s[k].n++] = f * SECOND / FPS;
	k++;
	s[k] = (stepping){.name = "to 1.7 s, then finish", .at = {1700000000LL}, .n = 1};
	k++;
	s[k] = (stepping){.name = "finish alone", .n = 0};
	k++;
	*n = k;
}

static void check_format(const char *format, int layout, bool hls)
{
	stepping s[8];
	size_t ns = 0;
	steppings(s, &ns);
	char ref[512], ref_hls[512];
	const char *ext = strcmp(format, "mp4") == 0 ? "mp4" : "webm";
	snprintf(ref, sizeof ref, "%s/ref-%s-%d.%s", g_dir, format, layout, ext);
	snprintf(ref_hls, sizeof ref_hls, "%s/ref-%s-%d-hls", g_dir, format, layout);
	compose(format, layout, ref, hls ? ref_hls : NULL, s[0].at, s[0].n);
	pkt_list want = read_packets(ref);
	assert_true(want.n > 41);
	for (size_t i = 1; i < ns; i++) {
		char out[512], out_hls[512];
		snprintf(out, sizeof out, "%s/step%zu-%s-%d.%s", g_dir, i, format, layout, ext);
		snprintf(out_hls, sizeof out_hls, "%s/step%zu-%s-%d-hls", g_dir, i, format, layout);
		compose(format, layout, out, hls ? out_hls : NULL, s[i].at, s[i].n);
		pkt_list got = read_packets(out);
		char what[256];
		snprintf(what, sizeof what, "%s %s: %s", format,
			 layout == VTP__LAYOUT_GRID ? "grid" : "speaker", s[i].name);
		assert_same_packets(&want, &got, what);
		if (hls)
			assert_same_hls(ref_hls, out_hls);
		free(got.p);
	}
	free(want.p);
}

static void test_webm_grid_hls(void **state)
{
	(void)state;
	check_format("webm", VTP__LAYOUT_GRID, true);
}

static void test_webm_speaker(void **state)
{
	(void)state;
	check_format("webm", VTP__LAYOUT_SPEAKER, false);
}

static void test_mp4_speaker(void **state)
{
	(void)state;
	check_format("mp4", VTP__LAYOUT_SPEAKER, false);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_webm_grid_hls),
		cmocka_unit_test(test_webm_speaker),
		cmocka_unit_test(test_mp4_speaker),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
