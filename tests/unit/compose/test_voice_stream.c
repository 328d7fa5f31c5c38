/* Tests for voice activity as the ticks come (src/compose/layout.c,
 * vtp__voice_stream): with a fixed floor, pushed in chunks of any size,
 * every tick is final VTP__VOICE_LOOKAHEAD ticks later and its mark is
 * the one vtp__voice_mark() gives on the whole timeline, and all of them
 * at the end; without one, the floor from the histogram is within 0.5 dB
 * of the whole timeline's 10th percentile. Random tables: noise from
 * quiet to loud rooms, speech runs with short and long pauses, clicks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compose/compose_int.h"

static uint32_t g_rng = 777;

static uint32_t rnd(uint32_t n)
{
	g_rng = g_rng * 1664525u + 1013904223u;
	return (g_rng >> 8) % n;
}

enum { N = 6000 };

/* Noise with speech, pauses of 1..30 ticks (some bridged, some not) and
 * clicks of 1..4 ticks. */
static size_t random_energies(float *db)
{
	size_t n = 1 + rnd(N);
	float noise = -100.0f + (float)rnd(70);
	for (size_t i = 0; i < n; i++)
		db[i] = noise + (float)rnd(100) / 10.0f;
	for (int k = (int)rnd(40); k > 0; k--) {
		size_t at = rnd((uint32_t)n);
		float level = -55.0f + (float)rnd(50);
		for (int w = (int)rnd(6); w >= 0; w--) {
			size_t len = rnd(3) ? 1 + rnd(4) : 1 + rnd(120);
			for (size_t i = at; i < at + len && i < n; i++)
				db[i] = level + (float)rnd(30) / 10.0f;
			at += len + 1 + rnd(30);
		}
	}
	return n;
}

static void test_fixed_floor_equals_mark(void **state)
{
	(void)state;
	static float db[N];
	static uint8_t want[N];
	for (int round = 0; round < 400; round++) {
		size_t n = random_energies(db);
		/* the whole timeline's floor, or one of a quieter or louder room */
		float floor_db = vtp__voice_floor(db, n) + (float)((int)rnd(3) - 1) * 10.0f;
		vtp__voice_mark(db, n, floor_db, want);
		vtp__voice_stream *s = vtp__voice_stream_new(floor_db);
		size_t pushed = 0, final = 0;
		while (pushed < n) {
			size_t k = rnd(4) ? rnd(60) : rnd(600); /* 0 too */
			if (k > n - pushed)
				k = n - pushed;
			final = vtp__voice_stream_push(s, db + pushed, k);
			pushed += k;
			size_t expect = pushed > VTP__VOICE_LOOKAHEAD ? pushed - VTP__VOICE_LOOKAHEAD : 0;
			assert_int_equal(final, expect);
			const uint8_t *m = vtp__voice_stream_marks(s);
			for (size_t t = 0; t < final; t++)
				if (m[t] != want[t])
					fail_msg("round %d (%zu ticks), after %zu pushed: tick %zu is %d, "
						 "the whole timeline's %d", round, n, pushed, t, m[t], want[t]);
		}
		assert_int_equal(vtp__voice_stream_end(s), n);
		const uint8_t *m = vtp__voice_stream_marks(s);
		for (size_t t = 0; t < n; t++)
			if (m[t] != want[t])
				fail_msg("round %d (%zu ticks), at the end: tick %zu is %d, the whole "
					 "timeline's %d", round, n, t, m[t], want[t]);
		vtp__voice_stream_free(s);
	}
}

static void test_histogram_floor(void **state)
{
	(void)state;
	static float db[N];
	for (int round = 0; round < 200; round++) {
		size_t n = random_energies(db);
		vtp__voice_stream *s = vtp__voice_stream_new(NAN);
		for (size_t pushed = 0; pushed < n;) {
			size_t k = 1 + rnd(200);
			if (k > n - pushed)
				k = n - pushed;
			vtp__voice_stream_push(s, db + pushed, k);
			pushed += k;
		}
		float got = vtp__voice_stream_floor(s), want = vtp__voice_floor(db, n);
		if (!(got <= want && want - got <= 0.5f))
			fail_msg("round %d (%zu ticks): floor %.3f, the percentile %.3f", round, n,
				 (double)got, (double)want);
		vtp__voice_stream_free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_floor_equals_mark),
		cmocka_unit_test(test_histogram_floor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
