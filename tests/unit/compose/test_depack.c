/* Tests for src/compose/reorder.c and depack.c: reordering (order, window
 * bound, duplicates, too-late packets, sequence and timestamp wraps, end of
 * input) and the VP8, H.264 and Opus depacketizers, each case a list of RTP
 * packets written by hand (payloads in hex) and the exact frames expected,
 * with the drop and keyframe-wait counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "compose/depack.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PKT_MAX 512
#define MAX_PKTS 12
#define MAX_FRAMES 6

/* In table loops: a failure names the case (the loop variable `c`). */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			fail_msg("case \"%s\": %s", c->name, #cond); \
	} while (0)


/* A 12-byte RTP header (PT 96, SSRC 0x11223344) and the payload. */
static size_t make_rtp(uint8_t *out, uint16_t seq, uint32_t ts, bool marker,
		       const uint8_t *payload, size_t n)
{
	assert_true(n <= PKT_MAX - 12);
	out[0] = 0x80;
	out[1] = (uint8_t)((marker ? 0x80 : 0) | 96);
	out[2] = (uint8_t)(seq >> 8);
	out[3] = (uint8_t)seq;
	out[4] = (uint8_t)(ts >> 24);
	out[5] = (uint8_t)(ts >> 16);
	out[6] = (uint8_t)(ts >> 8);
	out[7] = (uint8_t)ts;
	out[8] = 0x11;
	out[9] = 0x22;
	out[10] = 0x33;
	out[11] = 0x44;
	if (n)
		memcpy(out + 12, payload, n);
	return 12 + n;
}

static size_t make_rtp_hex(uint8_t *out, uint16_t seq, uint32_t ts, bool marker,
			   const char *hex)
{
	uint8_t payload[PKT_MAX];
	size_t n = vtp_test_unhex(hex, payload, sizeof(payload));

	return make_rtp(out, seq, ts, marker, payload, n);
}

static uint16_t seq_of(const vtp_ordered_pkt *p)
{
	return (uint16_t)(p->data[2] << 8 | p->data[3]);
}

/* ---- codec names ---------------------------------------------------------------- */

static void test_codec_parse(void **state)
{
	vtp_codec codec;

	assert_int_equal(vtp_codec_parse("opus", &codec), 0);
	assert_int_equal(codec, VTP_CODEC_OPUS);
	assert_int_equal(vtp_codec_parse("VP8", &codec), 0);
	assert_int_equal(codec, VTP_CODEC_VP8);
	assert_int_equal(vtp_codec_parse("h264", &codec), 0);
	assert_int_equal(codec, VTP_CODEC_H264);
	assert_int_equal(vtp_codec_parse("h265", &codec), -1);
	assert_int_equal(vtp_codec_parse("", &codec), -1);
	assert_int_equal(vtp_codec_parse(NULL, &codec), -1);
}

/* ---- reordering ------------------------------------------------------------------- */

/* Pushes packets (seq, ts = seq * 10) in the given order, popping after
 * each push and after the end; returns the released sequence numbers. */
static size_t reorder_run(size_t window, const uint16_t *seqs, size_t n,
			  uint16_t *out, size_t cap, vtp_reorder **keep)
{
	vtp_reorder *r = vtp_reorder_new(window);
	vtp_ordered_pkt p;
	size_t got = 0;
	uint8_t pkt[PKT_MAX];

	for (size_t i = 0; i < n; i++) {
		size_t len = make_rtp(pkt, seqs[i], (uint32_t)seqs[i] * 10, false,
				      (const uint8_t *)"x", 1);

		vtp_reorder_push(r, pkt, len, i);
		while (vtp_reorder_pop(r, &p)) {
			assert_true(got < cap);
			out[got++] = seq_of(&p);
		}
	}
	vtp_reorder_end(r);
	while (vtp_reorder_pop(r, &p)) {
		assert_true(got < cap);
		out[got++] = seq_of(&p);
	}
	if (keep)
		*keep = r;
	else
		vtp_reorder_free(r);
	return got;
}

static void test_reorder_table(void **state)
{
	static const struct reorder_case {
		const char *name;
		size_t window;
		uint16_t in[16];
		size_t n_in;
		uint16_t out[16];
		size_t n_out;
		uint64_t duplicates, too_late;
	} cases[] = {
		{"in order", 4, {1, 2, 3, 4, 5, 6}, 6, {1, 2, 3, 4, 5, 6}, 6, 0, 0},
		{"window 0 passes through", 0, {3, 1, 2}, 3, {3}, 1, 0, 2},
		{"shuffled within window", 4, {2, 1, 5, 3, 4, 8, 6, 7, 9}, 9,
		 {1, 2, 3, 4, 5, 6, 7, 8, 9}, 9, 0, 0},
		{"reversed within window", 8, {8, 7, 6, 5, 4, 3, 2, 1}, 8,
		 {1, 2, 3, 4, 5, 6, 7, 8}, 8, 0, 0},
		{"held duplicate", 4, {1, 2, 2, 3, 1}, 5, {1, 2, 3}, 3, 2, 0},
		{"released duplicate", 1, {1, 2, 3, 1, 2}, 5, {1, 2, 3}, 3, 2, 0},
		{"too late", 2, {5, 6, 7, 8, 4, 2, 9}, 7, {5, 6, 7, 8, 9}, 5, 0, 2},
		{"gap is not late, older is", 1, {1, 5, 6, 3, 7}, 5, {1, 5, 6, 7}, 4, 0, 1},
		{"seq wrap", 2, {65534, 65535, 0, 1, 2}, 5,
		 {65534, 65535, 0, 1, 2}, 5, 0, 0},
		{"seq wrap shuffled", 3, {65535, 0, 65534, 2, 1}, 5,
		 {65534, 65535, 0, 1, 2}, 5, 0, 0},
		{"late packet from before a wrap at the start", 4, {0, 1, 65535, 2}, 4,
		 {65535, 0, 1, 2}, 4, 0, 0},
		{"duplicate across wrap", 4, {65535, 0, 65535, 0}, 4,
		 {65535, 0}, 2, 2, 0},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct reorder_case *c = &cases[i];
		uint16_t out[32];
		vtp_reorder *r = NULL;
		size_t n = reorder_run(c->window, c->in, c->n_in, out, ARRAY_LEN(out), &r);

		CHECK(n == c->n_out);
		for (size_t j = 0; j < n && j < c->n_out; j++)
			if (out[j] != c->out[j])
				fail_msg("case \"%s\": out[%zu] = %u, want %u", c->name,
					 j, out[j], c->out[j]);
		CHECK(vtp_reorder_duplicates(r) == c->duplicates);
		CHECK(vtp_reorder_too_late(r) == c->too_late);
		CHECK(vtp_reorder_malformed(r) == 0);
		vtp_reorder_free(r);
	}
}

/* Extended values run on over both wraps, and the packet's bytes and
 * arrival time come back untouched. */
static void test_reorder_extension(void **state)
{
	static const struct {
		uint16_t seq;
		uint32_t ts;
	} in[] = {
		{65534, 0xfffffe00u}, {0, 0x00000100u}, {65535, 0xffffff80u},
		{1, 0x00000200u}, {2, 0x00000300u},
	};
	vtp_reorder *r = vtp_reorder_new(8);
	vtp_ordered_pkt p;
	uint8_t pkt[PKT_MAX];
	uint64_t prev_seq = 0, prev_ts = 0;
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(in); i++) {
		size_t len = make_rtp(pkt, in[i].seq, in[i].ts, false,
				      (const uint8_t *)"ab", 2);

		vtp_reorder_push(r, pkt, len, 1000 + i);
	}
	assert_false(vtp_reorder_pop(r, &p));
	vtp_reorder_end(r);
	while (vtp_reorder_pop(r, &p)) {
		assert_int_equal(p.len, 14);
		assert_memory_equal(p.data + 12, "ab", 2);
		assert_int_equal(p.ext_seq % 65536, seq_of(&p));
		assert_int_equal(p.ext_ts % (1ull << 32),
				 (uint32_t)p.data[4] << 24 | (uint32_t)p.data[5] << 16 |
				 (uint32_t)p.data[6] << 8 | p.data[7]);
		if (n > 0) {
			assert_int_equal(p.ext_seq, prev_seq + 1);
			assert_true(p.ext_ts > prev_ts);
		}
		if (seq_of(&p) == 65535)
			assert_int_equal(p.arrival_ns, 1002);
		prev_seq = p.ext_seq;
		prev_ts = p.ext_ts;
		n++;
	}
	assert_int_equal(n, 5);
	vtp_reorder_free(r);
}

/* Never more than `window` held while popping as you go; malformed input
 * counted and dropped. */
static void test_reorder_window_bound(void **state)
{
	const size_t window = 16;
	vtp_reorder *r = vtp_reorder_new(window);
	vtp_ordered_pkt p;
	uint8_t pkt[PKT_MAX];
	size_t pushed = 0, popped = 0;

	for (uint32_t i = 0; i < 1000; i++) {
		/* blocks of 8 in reverse order */
		uint16_t seq = (uint16_t)(40000 + (i / 8) * 8 + (7 - i % 8));
		size_t len = make_rtp(pkt, seq, i * 3000, false, (const uint8_t *)"v", 1);

		vtp_reorder_push(r, pkt, len, i);
		pushed++;
		while (vtp_reorder_pop(r, &p))
			popped++;
		assert_true(pushed - popped <= window);
		assert_true(pushed - popped == (pushed < window ? pushed : window));
	}
	vtp_reorder_push(r, pkt, 11, 0);          /* shorter than a header */
	pkt[0] = 0x40;                               /* version 1 */
	vtp_reorder_push(r, pkt, 13, 0);
	assert_int_equal(vtp_reorder_malformed(r), 2);
	vtp_reorder_end(r);
	while (vtp_reorder_pop(r, &p))
		popped++;
	assert_int_equal(popped, 1000);
	assert_int_equal(vtp_reorder_duplicates(r) + vtp_reorder_too_late(r), 0);
	vtp_reorder_free(r);
	vtp_reorder_free(NULL);
}

/* ---- depacketizers -------------------------------------------------------------- */

struct pkt_spec {
	uint16_t seq;
	uint32_t ts;
	bool marker;
	const char *payload; /* NULL ends the list */
};

struct frame_spec {
	uint32_t ts;
	bool key;
	const char *hex;     /* NULL ends the list */
};

struct depack_case {
	const char *name;
	vtp_codec codec;
	struct pkt_spec pkts[MAX_PKTS];
	struct frame_spec frames[MAX_FRAMES];
	uint64_t dropped;
	uint64_t skipped;
};

static void run_depack_cases(const struct depack_case *cases, size_t n_cases)
{
	for (size_t i = 0; i < n_cases; i++) {
		const struct depack_case *c = &cases[i];
		vtp_depack *d = vtp_depack_new(c->codec);
		size_t got = 0;
		vtp_frame f;

		for (size_t j = 0; j <= MAX_PKTS; j++) {
			uint8_t pkt[PKT_MAX];
			vtp_ordered_pkt p;
			bool last = j == MAX_PKTS || !c->pkts[j].payload;

			if (last) {
				vtp_depack_end(d);
			} else {
				const struct pkt_spec *s = &c->pkts[j];

				p.len = make_rtp_hex(pkt, s->seq, s->ts, s->marker,
						     s->payload);
				p.data = pkt;
				p.ext_seq = s->seq;
				p.ext_ts = s->ts;
				p.arrival_ns = 100 + j;
				vtp_depack_push(d, &p);
			}
			while (vtp_depack_pop(d, &f)) {
				const struct frame_spec *want;
				uint8_t bytes[PKT_MAX];
				size_t n;

				if (got == MAX_FRAMES || !c->frames[got].hex)
					fail_msg("case \"%s\": unexpected frame %zu (ts %llu)",
						 c->name, got,
						 (unsigned long long)f.ext_ts);
				want = &c->frames[got++];
				n = vtp_test_unhex(want->hex, bytes, sizeof(bytes));
				CHECK(f.ext_ts == want->ts);
				CHECK(f.keyframe == want->key);
				CHECK(f.len == n);
				CHECK(memcmp(f.data, bytes, n) == 0);
			}
			if (last)
				break;
		}
		if (got < MAX_FRAMES && c->frames[got].hex)
			fail_msg("case \"%s\": %zu frames, want more", c->name, got);
		CHECK(vtp_depack_frames(d) == got);
		CHECK(vtp_depack_dropped_incomplete(d) == c->dropped);
		CHECK(vtp_depack_skipped_until_keyframe(d) == c->skipped);
		vtp_depack_free(d);
	}
}

/* VP8 payload descriptors: 10 = S, PID 0; 00 = continuation; 90 = X + S.
 * VP8 payload header first byte: even = keyframe, odd = interframe. */
static void test_vp8(void **state)
{
	static const struct depack_case cases[] = {
		{"single-packet keyframe", VTP_CODEC_VP8,
		 {{1, 1000, true, "10 | 00 9d 01 2a"}},
		 {{1000, true, "00 9d 01 2a"}}, 0, 0},
		{"multi-packet frame", VTP_CODEC_VP8,
		 {{1, 1000, false, "10 | 00 aa"}, {2, 1000, false, "00 | bb"},
		  {3, 1000, true, "00 | cc dd"}},
		 {{1000, true, "00 aa bb cc dd"}}, 0, 0},
		{"keyframe then delta", VTP_CODEC_VP8,
		 {{1, 1000, true, "10 | 00 aa"}, {2, 4000, false, "10 | 01 bb"},
		  {3, 4000, true, "01 | cc"}},
		 {{1000, true, "00 aa"}, {4000, false, "01 bb cc"}}, 0, 0},
		{"7-bit PictureID", VTP_CODEC_VP8,
		 {{1, 1000, false, "90 80 05 | 00 aa"}, {2, 1000, true, "80 80 05 | bb"}},
		 {{1000, true, "00 aa bb"}}, 0, 0},
		{"15-bit PictureID", VTP_CODEC_VP8,
		 {{1, 1000, false, "90 80 81 23 | 00 aa"},
		  {2, 1000, true, "80 80 81 23 | bb"}},
		 {{1000, true, "00 aa bb"}}, 0, 0},
		{"TL0PICIDX", VTP_CODEC_VP8,
		 {{1, 1000, true, "90 40 07 | 00 aa"}}, {{1000, true, "00 aa"}}, 0, 0},
		{"TID", VTP_CODEC_VP8,
		 {{1, 1000, true, "90 20 e0 | 00 aa"}}, {{1000, true, "00 aa"}}, 0, 0},
		{"KEYIDX", VTP_CODEC_VP8,
		 {{1, 1000, true, "90 10 1f | 00 aa"}}, {{1000, true, "00 aa"}}, 0, 0},
		{"I L T K together, N set", VTP_CODEC_VP8,
		 {{1, 1000, false, "b0 f0 80 01 02 40 | 00 aa"},
		  {2, 1000, true, "a0 f0 80 01 02 40 | bb"}},
		 {{1000, true, "00 aa bb"}}, 0, 0},
		{"missing middle packet: dropped, deltas skipped until keyframe",
		 VTP_CODEC_VP8,
		 {{1, 1000, true, "10 | 00 e1"}, {2, 2000, false, "10 | 01 a1"},
		  {4, 2000, true, "00 | a3"}, {5, 3000, true, "10 | 01 b1"},
		  {6, 4000, true, "10 | 01 c1"}, {7, 5000, false, "10 | 00 e2"},
		  {8, 5000, true, "00 | e3"}, {9, 6000, true, "10 | 01 d1"}},
		 {{1000, true, "00 e1"}, {5000, true, "00 e2 e3"}, {6000, false, "01 d1"}},
		 1, 2},
		{"stream starting with deltas", VTP_CODEC_VP8,
		 {{1, 1000, true, "10 | 01 aa"}, {2, 2000, true, "10 | 01 bb"},
		  {3, 3000, true, "10 | 00 cc"}, {4, 4000, true, "10 | 01 dd"}},
		 {{3000, true, "00 cc"}, {4000, false, "01 dd"}}, 0, 2},
		{"stream starting mid-frame", VTP_CODEC_VP8,
		 {{1, 1000, true, "00 | aa"}, {2, 2000, true, "10 | 00 bb"}},
		 {{2000, true, "00 bb"}}, 1, 0},
		{"marker-less frame ended by timestamp change", VTP_CODEC_VP8,
		 {{1, 1000, false, "10 | 00 aa"}, {2, 1000, false, "00 | bb"},
		  {3, 2000, true, "10 | 01 cc"}},
		 {{1000, true, "00 aa bb"}, {2000, false, "01 cc"}}, 0, 0},
		{"timestamp change after a gap drops the previous frame", VTP_CODEC_VP8,
		 {{1, 1000, false, "10 | 00 aa"}, {3, 2000, true, "10 | 01 cc"},
		  {4, 3000, true, "10 | 00 dd"}},
		 {{3000, true, "00 dd"}}, 1, 1},
		{"keyframe right after a lost frame is kept", VTP_CODEC_VP8,
		 {{1, 1000, true, "10 | 00 aa"}, {3, 3000, true, "10 | 00 cc"},
		  {4, 4000, true, "10 | 01 dd"}},
		 {{1000, true, "00 aa"}, {3000, true, "00 cc"}, {4000, false, "01 dd"}},
		 0, 0},
		{"frame without marker at the end is dropped", VTP_CODEC_VP8,
		 {{1, 1000, true, "10 | 00 aa"}, {2, 2000, false, "10 | 01 bb"}},
		 {{1000, true, "00 aa"}}, 1, 0},
		{"truncated descriptors", VTP_CODEC_VP8,
		 {{1, 1000, true, "90"}, {2, 2000, true, "90 80"},
		  {3, 3000, true, "90 80 81"}, {4, 4000, true, "90 40"},
		  {5, 5000, true, "90 20"}, {6, 6000, true, "10"},
		  {7, 7000, true, ""}, {8, 8000, true, "10 | 00 0f"}},
		 {{8000, true, "00 0f"}}, 7, 0},
		{"second partition-0 start in one frame", VTP_CODEC_VP8,
		 {{1, 1000, false, "10 | 00 aa"}, {2, 1000, true, "10 | 00 bb"}},
		 {{0}}, 1, 0},
	};

	run_depack_cases(cases, ARRAY_LEN(cases));
}

/* H.264 payloads: 65 = IDR (NRI 3), 41 = non-IDR slice, 67/68 = SPS/PPS,
 * 18 = STAP-A, 7c = FU-A indicator (NRI 3); FU headers 85/05/45 are
 * start/middle/end of an IDR, 81/01/41 of a non-IDR slice. */
#define SC "00 00 00 01 "
static void test_h264(void **state)
{
	static const struct depack_case cases[] = {
		{"single NAL IDR", VTP_CODEC_H264,
		 {{1, 90000, true, "65 88 84 00"}},
		 {{90000, true, SC "65 88 84 00"}}, 0, 0},
		{"STAP-A SPS PPS IDR", VTP_CODEC_H264,
		 {{1, 90000, true,
		   "18 | 00 04 67 42 00 1f | 00 02 68 ce | 00 03 65 88 84"}},
		 {{90000, true, SC "67 42 00 1f" SC "68 ce" SC "65 88 84"}}, 0, 0},
		{"SPS, PPS, IDR in separate packets, then a delta", VTP_CODEC_H264,
		 {{1, 90000, false, "67 42 00 1f"}, {2, 90000, false, "68 ce"},
		  {3, 90000, true, "65 88"}, {4, 93000, true, "41 9a"}},
		 {{90000, true, SC "67 42 00 1f" SC "68 ce" SC "65 88"},
		  {93000, false, SC "41 9a"}}, 0, 0},
		{"FU-A reassembly", VTP_CODEC_H264,
		 {{1, 90000, false, "7c 85 | aa bb"}, {2, 90000, false, "7c 05 | cc"},
		  {3, 90000, true, "7c 45 | dd ee"}},
		 {{90000, true, SC "65 aa bb cc dd ee"}}, 0, 0},
		{"STAP-A then FU-A in one AU", VTP_CODEC_H264,
		 {{1, 90000, false, "78 | 00 02 67 42 | 00 02 68 ce"},
		  {2, 90000, false, "5c 85 | aa"}, {3, 90000, true, "5c 45 | bb"}},
		 {{90000, true, SC "67 42" SC "68 ce" SC "45 aa bb"}}, 0, 0},
		{"FU-A missing middle: dropped, wait for IDR", VTP_CODEC_H264,
		 {{1, 90000, true, "65 01"}, {2, 93000, false, "7c 81 | aa"},
		  {4, 93000, true, "7c 41 | cc"}, {5, 96000, true, "41 9a"},
		  {6, 99000, true, "65 02"}, {7, 102000, true, "41 9b"}},
		 {{90000, true, SC "65 01"}, {99000, true, SC "65 02"},
		  {102000, false, SC "41 9b"}}, 1, 1},
		{"FU-A missing end, timestamp change", VTP_CODEC_H264,
		 {{1, 90000, false, "7c 85 | aa"}, {2, 90000, false, "7c 05 | bb"},
		  {3, 93000, true, "65 02"}},
		 {{93000, true, SC "65 02"}}, 1, 0},
		{"FU-A missing end, marker on a middle fragment", VTP_CODEC_H264,
		 {{1, 90000, false, "7c 85 | aa"}, {2, 90000, true, "7c 05 | bb"}},
		 {{0}}, 1, 0},
		{"FU-A without start", VTP_CODEC_H264,
		 {{1, 90000, true, "7c 45 | aa"}}, {{0}}, 1, 0},
		{"FU-A start and end in one fragment", VTP_CODEC_H264,
		 {{1, 90000, true, "7c c5 | aa"}}, {{0}}, 1, 0},
		{"FU-A interrupted by a single NAL", VTP_CODEC_H264,
		 {{1, 90000, false, "7c 85 | aa"}, {2, 90000, false, "68 ce"},
		  {3, 90000, true, "7c 45 | bb"}}, {{0}}, 1, 0},
		{"stream starting with non-IDR", VTP_CODEC_H264,
		 {{1, 90000, true, "41 9a"}, {2, 93000, true, "41 9b"},
		  {3, 96000, true, "65 88"}},
		 {{96000, true, SC "65 88"}}, 0, 2},
		{"marker-less AU ended by timestamp change", VTP_CODEC_H264,
		 {{1, 90000, false, "65 88"}, {2, 93000, true, "41 9a"}},
		 {{90000, true, SC "65 88"}, {93000, false, SC "41 9a"}}, 0, 0},
		{"gap before an AU may have taken its start", VTP_CODEC_H264,
		 {{1, 90000, true, "65 01"}, {3, 93000, true, "65 02"},
		  {4, 96000, true, "65 03"}},
		 {{90000, true, SC "65 01"}, {96000, true, SC "65 03"}}, 1, 0},
		{"bad STAP-A sizes", VTP_CODEC_H264,
		 {{1, 90000, true, "18"}, {2, 91000, true, "18 | 00 09 67 42"},
		  {3, 92000, true, "18 | 00 00"}, {4, 93000, true, "18 | 00 02 67 42 | 00"},
		  {5, 94000, true, "18 | 00 01 18"}, {6, 95000, true, "18 | 00 01 00"},
		  {7, 96000, true, "65 0f"}},
		 {{96000, true, SC "65 0f"}}, 6, 0},
		{"unsupported NAL types break the AU", VTP_CODEC_H264,
		 {{1, 90000, true, "00 aa"}, {2, 91000, true, "19 00 00 00 02 65 aa"},
		  {3, 92000, true, "1a aa"}, {4, 93000, true, "1b aa"},
		  {5, 94000, true, "1d 85 aa"}, {6, 95000, true, "1e aa"},
		  {7, 96000, true, "1f aa"}, {8, 97000, true, ""},
		  {9, 98000, true, "7c"}, {10, 99000, true, "7c 80 aa"},
		  {11, 100000, true, "65 0f"}},
		 {{100000, true, SC "65 0f"}}, 10, 0},
	};

	run_depack_cases(cases, ARRAY_LEN(cases));
}

static void test_opus(void **state)
{
	static const struct depack_case cases[] = {
		{"passthrough, DTX skipped, gaps ignored", VTP_CODEC_OPUS,
		 {{1, 960, false, "fc ff fe"}, {2, 1920, false, ""},
		  {5, 4800, true, "78 01"}},
		 {{960, true, "fc ff fe"}, {4800, true, "78 01"}}, 0, 0},
	};

	run_depack_cases(cases, ARRAY_LEN(cases));
}

/* A frame over the 4 MiB cap is dropped; the next keyframe comes through. */
static void test_frame_cap(void **state)
{
	vtp_depack *d = vtp_depack_new(VTP_CODEC_VP8);
	uint8_t pkt[PKT_MAX], payload[400];
	vtp_ordered_pkt p;
	vtp_frame f;
	uint64_t seq = 1;

	memset(payload, 0, sizeof(payload));
	payload[0] = 0x10;
	for (size_t total = 0; total <= (4u << 20); total += sizeof(payload) - 1) {
		p.len = make_rtp(pkt, (uint16_t)seq, 1000, false, payload, sizeof(payload));
		p.data = pkt;
		p.ext_seq = seq++;
		p.ext_ts = 1000;
		p.arrival_ns = 0;
		vtp_depack_push(d, &p);
		assert_false(vtp_depack_pop(d, &f));
		payload[0] = 0x00;
	}
	p.len = make_rtp(pkt, (uint16_t)seq, 1000, true, payload, sizeof(payload));
	p.ext_seq = seq++;
	vtp_depack_push(d, &p);
	assert_false(vtp_depack_pop(d, &f));
	assert_int_equal(vtp_depack_dropped_incomplete(d), 1);
	payload[0] = 0x10;
	p.len = make_rtp(pkt, (uint16_t)seq, 2000, true, payload, 2);
	p.ext_seq = seq++;
	p.ext_ts = 2000;
	vtp_depack_push(d, &p);
	assert_true(vtp_depack_pop(d, &f));
	assert_int_equal(f.len, 1);
	assert_true(f.keyframe);
	vtp_depack_free(d);
	vtp_depack_free(NULL);
}

/* Frames not popped at once stay queued, in order. */
static void test_depack_queue(void **state)
{
	vtp_depack *d = vtp_depack_new(VTP_CODEC_OPUS);
	uint8_t pkt[PKT_MAX];
	vtp_ordered_pkt p;
	vtp_frame f;

	for (uint32_t i = 0; i < 20; i++) {
		uint8_t b = (uint8_t)i;

		p.len = make_rtp(pkt, (uint16_t)i, i * 960, false, &b, 1);
		p.data = pkt;
		p.ext_seq = i;
		p.ext_ts = i * 960;
		p.arrival_ns = i;
		vtp_depack_push(d, &p);
		if (i == 5) { /* pop two, leave the rest */
			assert_true(vtp_depack_pop(d, &f));
			assert_int_equal(f.data[0], 0);
			assert_true(vtp_depack_pop(d, &f));
			assert_int_equal(f.data[0], 1);
		}
	}
	for (uint32_t i = 2; i < 20; i++) {
		assert_true(vtp_depack_pop(d, &f));
		assert_int_equal(f.len, 1);
		assert_int_equal(f.data[0], i);
		assert_int_equal(f.ext_ts, i * 960);
	}
	assert_false(vtp_depack_pop(d, &f));
	assert_int_equal(vtp_depack_frames(d), 20);
	vtp_depack_free(d);
}

/* Reordering into depacketizing: an H.264 stream across a sequence and a
 * timestamp wrap, shuffled and with a duplicate, comes out whole. */
static void test_pipeline_h264(void **state)
{
	static const struct {
		uint16_t seq;
		uint32_t ts;
		bool marker;
		const char *payload;
	} in[] = {
		{65535, 0xffffd8f0u, false, "7c 85 | 01 02"},
		{1, 0xffffd8f0u, true, "7c 45 | 05"},
		{0, 0xffffd8f0u, false, "7c 05 | 03 04"},
		{65534, 0xffffd8f0u, false, "18 | 00 02 67 42 | 00 02 68 ce"},
		{0, 0xffffd8f0u, false, "7c 05 | 03 04"},
		{3, 0x00000bb8u, true, "41 bb"},
		{2, 0xfffff460u, true, "41 aa"},
	};
	static const char *const want[] = {
		SC "67 42" SC "68 ce" SC "65 01 02 03 04 05",
		SC "41 aa",
		SC "41 bb",
	};
	vtp_reorder *r = vtp_reorder_new(4);
	vtp_depack *d = vtp_depack_new(VTP_CODEC_H264);
	vtp_ordered_pkt p;
	vtp_frame f;
	uint8_t pkt[PKT_MAX];
	size_t got = 0;
	uint64_t prev_ts = 0;

	for (size_t i = 0; i <= ARRAY_LEN(in); i++) {
		if (i < ARRAY_LEN(in)) {
			size_t len = make_rtp_hex(pkt, in[i].seq, in[i].ts, in[i].marker,
						  in[i].payload);

			vtp_reorder_push(r, pkt, len, i);
		} else {
			vtp_reorder_end(r);
		}
		while (vtp_reorder_pop(r, &p)) {
			vtp_depack_push(d, &p);
			while (vtp_depack_pop(d, &f)) {
				uint8_t bytes[PKT_MAX];
				size_t n;

				assert_true(got < ARRAY_LEN(want));
				n = vtp_test_unhex(want[got], bytes, sizeof(bytes));
				assert_int_equal(f.len, n);
				assert_memory_equal(f.data, bytes, n);
				assert_true(f.ext_ts > prev_ts);
				prev_ts = f.ext_ts;
				got++;
			}
		}
	}
	vtp_depack_end(d);
	assert_false(vtp_depack_pop(d, &f));
	assert_int_equal(got, ARRAY_LEN(want));
	assert_int_equal(vtp_reorder_duplicates(r), 1);
	assert_int_equal(vtp_depack_dropped_incomplete(d), 0);
	vtp_depack_free(d);
	vtp_reorder_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_parse),
		cmocka_unit_test(test_reorder_table),
		cmocka_unit_test(test_reorder_extension),
		cmocka_unit_test(test_reorder_window_bound),
		cmocka_unit_test(test_vp8),
		cmocka_unit_test(test_h264),
		cmocka_unit_test(test_opus),
		cmocka_unit_test(test_frame_cap),
		cmocka_unit_test(test_depack_queue),
		cmocka_unit_test(test_pipeline_h264),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
