/* Tests for src/compose/tracks.c and the layout in video.c: the clock map
 * built from real packet logs (written with the capture writer) must put
 * every frame within a few ms of when it was really sent, despite network
 * jitter, a start-up burst and sender clock drift; RTCP sender reports
 * must tie a peer's audio and video together even when their network
 * delays differ; the grid must place n tiles without overlap, inside the
 * canvas, with even coordinates; name tiles and aspect-kept blits draw
 * where they should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <libavutil/frame.h>
#include <libswscale/swscale.h>

#include "capture/capture.h"
#include "compose/compose_int.h"

#define T0 1700000000000000000LL /* recorder time of the first send, ns */

static char dir[] = "/tmp/vtp-test-clock-XXXXXX";

/* Deterministic noise in [0, 1). */
static uint64_t rng = 88172645463325252ULL;
static double unit(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

typedef struct spec {
	const char *name;
	bool video;
	uint32_t ts_base;       /* random RTP origin */
	double drift_ppm;       /* sender clock fast by this much */
	double delay_ms;        /* minimum network delay */
	double jitter_ms;       /* extra delay, uniform 0..jitter */
	double burst_ms;        /* the first second arrives this much early */
	bool sr;                /* send RTCP SRs (NTP = true send time) */
	double seconds;
} spec;

static void put_rtp(uint8_t *p, uint16_t seq, uint32_t ts, bool marker, uint8_t pt)
{
	p[0] = 0x80;
	p[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
	p[2] = (uint8_t)(seq >> 8);
	p[3] = (uint8_t)seq;
	p[4] = (uint8_t)(ts >> 24);
	p[5] = (uint8_t)(ts >> 16);
	p[6] = (uint8_t)(ts >> 8);
	p[7] = (uint8_t)ts;
	p[8] = 0x11;
	p[9] = 0x22;
	p[10] = 0x33;
	p[11] = 0x44;
}

/* Writes a capture of s; returns its path (static buffer per call slot). */
static void write_track(const spec *s, const char *peer, char *path, size_t n)
{
	snprintf(path, n, "%s/%s-%s.vtpcap", dir, peer, s->video ? "v" : "a");
	char meta[256];
	snprintf(meta, sizeof meta,
		 "{\"trackId\":\"%s-%s\",\"peerId\":\"%s\",\"fullName\":\"P\",\"kind\":\"%s\","
		 "\"codec\":\"%s\",\"payloadType\":%d,\"clockRate\":%d}",
		 peer, s->video ? "v" : "a", peer, s->video ? "video" : "audio",
		 s->video ? "vp8" : "opus", s->video ? 96 : 111, s->video ? 90000 : 48000);
	vtp_capw *w;
	assert_int_equal(vtp_capw_open(path, meta, 0, &w, NULL), 0);
	uint32_t clock = s->video ? 90000 : 48000;
	double step = s->video ? 1.0 / 30 : 0.02;
	uint16_t seq = 1000;
	for (double t = 0; t < s->seconds; t += step) {
		/* Media time t is sent at true time t; the sender's RTP clock
		 * runs fast by drift_ppm. */
		uint32_t ts = s->ts_base + (uint32_t)(t * clock * (1 + s->drift_ppm * 1e-6));
		double d = s->delay_ms + unit() * s->jitter_ms;
		if (t < 1.0)
			d -= s->burst_ms * (1.0 - t);
		uint64_t arrival = (uint64_t)(T0 + (int64_t)((t + d / 1000) * 1e9));
		uint8_t pkt[64];
		put_rtp(pkt, seq++, ts, true, s->video ? 96 : 111);
		/* VP8: descriptor S=1 PID=0, then a keyframe-marked header
		 * byte; Opus: any byte. */
		pkt[12] = 0x10;
		pkt[13] = 0x00;
		pkt[14] = 0x00;
		pkt[15] = 0x00;
		assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, arrival, pkt, 16), 0);
		if (s->sr && ((int)(t / step)) % 50 == 0) {
			uint8_t sr[28] = {0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44};
			/* NTP of the true send time (1900 epoch, any origin works). */
			double ntp = 3900000000.0 + t;
			uint64_t fx = (uint64_t)(ntp * 4294967296.0);
			for (int i = 0; i < 8; i++)
				sr[8 + i] = (uint8_t)(fx >> (56 - 8 * i));
			sr[16] = (uint8_t)(ts >> 24);
			sr[17] = (uint8_t)(ts >> 16);
			sr[18] = (uint8_t)(ts >> 8);
			sr[19] = (uint8_t)ts;
			assert_int_equal(vtp_capw_append(w, VTP_CAP_RTCP, arrival, sr, sizeof sr), 0);
		}
	}
	assert_int_equal(vtp_capw_close(w), 0);
}

/* Largest |mapped - true send time| over a track's frames, in ms, after
 * removing offset_ms (the constant network delay the map cannot know). */
static double max_error_ms(const vtp__ctrack *t, const spec *s, double offset_ms)
{
	uint32_t clock = s->video ? 90000 : 48000;
	double worst = 0;
	vtp__fsrc *src = vtp__fsrc_open(t);
	assert_non_null(src);
	vtp_frame f;
	uint64_t first = 0;
	bool have = false;
	while (vtp__fsrc_next(src, &f)) {
		if (!have) {
			first = f.ext_ts;
			have = true;
		}
		double t_true = (double)(f.ext_ts - first) / clock / (1 + s->drift_ppm * 1e-6);
		double mapped = (double)(vtp__ctrack_map(t, f.ext_ts) - T0) / 1e6 - offset_ms;
		double e = mapped - t_true * 1000;
		if (e < 0)
			e = -e;
		if (e > worst)
			worst = e;
	}
	vtp__fsrc_close(src);
	return worst;
}

static void scan_map(vtp__ctrack *t, size_t n, char paths[][512])
{
	char err[128];
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(vtp__ctrack_scan(&t[i], paths[i], err, sizeof err), 0);
		t[i].peer = 0;
	}
	assert_int_equal(vtp__ctracks_map(t, n), 0);
}

static void test_jitter_burst_drift(void **state)
{
	(void)state;
	spec cases[] = {
		{"clean audio", false, 12345, 0, 5, 0, 0, false, 20},
		{"jittery video", true, 4000000000u, 0, 5, 40, 0, false, 20},
		{"burst at start", false, 77, 0, 5, 10, 150, false, 20},
		{"drift 200 ppm, 60 s", true, 1, 200, 5, 20, 0, false, 60},
		{"timestamp wrap", false, 0xffffff00u, 0, 5, 10, 0, false, 10},
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		char paths[1][512];
		write_track(&cases[c], "solo", paths[0], sizeof paths[0]);
		vtp__ctrack t[1];
		scan_map(t, 1, paths);
		double e = max_error_ms(&t[0], &cases[c], cases[c].delay_ms);
		printf("  %-22s max error %.2f ms\n", cases[c].name, e);
		if (e > 6.0)
			fail_msg("%s: frame placed %.2f ms from its send time", cases[c].name, e);
		vtp__ctrack_clear(&t[0]);
		unlink(paths[0]);
	}
}

/* Audio over a fast path (5 ms), video over a slow one (65 ms): alone,
 * each map would absorb its own delay and put them 60 ms apart in the
 * wrong direction; with sender reports they stay together. */
static void test_sender_reports_tie_peer(void **state)
{
	(void)state;
	spec a = {"audio", false, 1111, 0, 5, 10, 0, true, 15};
	spec v = {"video", true, 2222222, 0, 65, 10, 0, true, 15};
	char paths[2][512];
	write_track(&a, "peer", paths[0], sizeof paths[0]);
	write_track(&v, "peer", paths[1], sizeof paths[1]);
	vtp__ctrack t[2];
	scan_map(t, 2, paths);
	assert_true(t[0].use_sr && t[1].use_sr);
	/* Both mapped with the same (audio's, smallest) delay. */
	double ea = max_error_ms(&t[0], &a, 5), ev = max_error_ms(&t[1], &v, 5);
	printf("  with SR: audio %.2f ms, video %.2f ms off\n", ea, ev);
	assert_true(ea < 6.0);
	assert_true(ev < 6.0);
	vtp__ctrack_clear(&t[0]);
	vtp__ctrack_clear(&t[1]);
	unlink(paths[0]);
	unlink(paths[1]);
}

static void test_layout(void **state)
{
	(void)state;
	vtp__tile tiles[16];
	int W = 1280, H = 720;
	int expect_cols[] = {0, 1, 2, 2, 2, 3, 3, 3, 3, 3, 4};
	for (int n = 1; n <= 10; n++) {
		vtp__layout(n, W, H, tiles);
		int cols = expect_cols[n];
		for (int i = 0; i < n; i++) {
			const vtp__tile *t = &tiles[i];
			assert_true(t->x >= 0 && t->y >= 0 && t->x + t->w <= W && t->y + t->h <= H);
			assert_true(t->x % 2 == 0 && t->y % 2 == 0 && t->w % 2 == 0 && t->h % 2 == 0);
			assert_int_equal(t->w, (W / cols) & ~1);
			for (int k = 0; k < i; k++) {
				const vtp__tile *u = &tiles[k];
				bool apart = t->x >= u->x + u->w || u->x >= t->x + t->w ||
					     t->y >= u->y + u->h || u->y >= t->y + t->h;
				if (!apart)
					fail_msg("n=%d: tiles %d and %d overlap", n, k, i);
			}
		}
	}
	/* 3 tiles: a 2x2 grid with the third centred in the bottom row. */
	vtp__layout(3, W, H, tiles);
	assert_int_equal(tiles[2].x, (W - tiles[2].w) / 2 & ~1);
	assert_int_equal(tiles[2].y, tiles[0].y + tiles[0].h);
}

/* A name tile: the tile gets the peer's colour, white text in its middle
 * band and nothing outside the tile; a frame blitted into a tile keeps
 * its aspect (a 4:3 picture in a 16:9 tile has bars left and right). */
static AVFrame *canvas(int w, int h)
{
	AVFrame *c = av_frame_alloc();
	c->width = w;
	c->height = h;
	c->format = AV_PIX_FMT_YUV420P;
	assert_int_equal(av_frame_get_buffer(c, 0), 0);
	vtp__canvas_fill(c, 0, 0, w, h, 16, 128, 128);
	return c;
}

static void test_name_tile_and_blit(void **state)
{
	(void)state;
	AVFrame *c = canvas(1280, 720);
	vtp__tile t = {640, 0, 640, 360};
	vtp__canvas_name(c, &t, "peer-1", "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m");
	int bright = 0, outside = 0;
	for (int y = 0; y < 720; y++)
		for (int x = 0; x < 1280; x++) {
			uint8_t v = c->data[0][(size_t)y * c->linesize[0] + x];
			bool in = x >= t.x && x < t.x + t.w && y >= t.y && y < t.y + t.h;
			if (in && v > 200)
				bright++;
			if (!in && v != 16)
				outside++;
		}
	printf("  name tile: %d text pixels\n", bright);
	assert_true(bright > 500);  /* the name is drawn (needs fonts-dejavu-core) */
	assert_int_equal(outside, 0);

	AVFrame *src = canvas(320, 240); /* 4:3, all white */
	vtp__canvas_fill(src, 0, 0, 320, 240, 235, 128, 128);
	vtp__tile u = {0, 360, 640, 360};
	vtp__vframe vf = {src, NULL, 0, 0};
	struct SwsContext *sws = NULL;
	vtp__tile pic;
	assert_int_equal(vtp__canvas_blit(c, &u, &vf, &sws, &pic), 0);
	/* 4:3 at full height: 480 wide, centred: bars of 80 on each side
	 * (the rectangle drawn says so too: a label goes on the picture). */
	assert_int_equal(pic.x, 80);
	assert_int_equal(pic.y, 360);
	assert_int_equal(pic.w, 480);
	assert_int_equal(pic.h, 360);
	uint8_t *row = c->data[0] + (size_t)540 * c->linesize[0];
	assert_true(row[40] < 30 && row[600] < 30);
	assert_true(row[100] > 200 && row[540] > 200);
	sws_freeContext(sws);
	av_frame_free(&src);
	av_frame_free(&c);
	vtp__font_cleanup();
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jitter_burst_drift),
		cmocka_unit_test(test_sender_reports_tie_peer),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_name_tile_and_blit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
