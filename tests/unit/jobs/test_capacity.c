/* Tests for src/jobs/capacity.c: a job's cost from what its composer will
 * decode and encode, and which queued job a node claims beside what it runs
 * (no head-of-line blocking, no starvation of a heavy job). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/jobs_int.h"


static const char *const TWO_PEERS =
	"[{\"kind\":\"video\"},{\"kind\":\"audio\"},{\"kind\":\"video\"}]";
static const char *const FOUR_PEERS =
	"[{\"kind\":\"video\"},{\"kind\":\"video\"},{\"kind\":\"video\"},{\"kind\":\"video\"},"
	"{\"kind\":\"audio\"},{\"kind\":\"audio\"}]";

static void test_cost_table(void **state)
{
	static const struct {
		const char *layout;
		int w, h, fps;
		const char *tracks;
		double want;
	} cases[] = {
		/* audio only, and the single-camera fast path: nearly free */
		{"auto", 1280, 720, 30, "[{\"kind\":\"audio\"},{\"kind\":\"audio\"}]", 0.2},
		{"grid", 1280, 720, 30, "[]", 0.2},
		{"auto", 1280, 720, 30, "[{\"kind\":\"video\"},{\"kind\":\"audio\"}]", 0.3},
		/* grid decodes every camera: encode 1 + 4 x 0.25 */
		{"grid", 1280, 720, 30, FOUR_PEERS, 2.0},
		{"auto", 1280, 720, 30, FOUR_PEERS, 2.0},
		/* speaker and presentation decode few: 1 + 2 x 0.25 */
		{"speaker", 1280, 720, 30, FOUR_PEERS, 1.5},
		{"presentation", 1280, 720, 30, FOUR_PEERS, 1.5},
		{"grid", 1280, 720, 30, TWO_PEERS, 1.5},
		/* scaled by pixels per second: 1080p30 is 2.25 x 720p30, 15 fps half */
		{"grid", 1920, 1080, 30, FOUR_PEERS, 4.5},
		{"grid", 1280, 720, 15, FOUR_PEERS, 1.0},
		/* unknown tracks: two cameras assumed */
		{"auto", 1280, 720, 30, NULL, 1.5},
		{"auto", 1280, 720, 30, "not json", 1.5},
		{"auto", 1280, 720, 30, "{\"kind\":\"video\"}", 1.5},
		/* missing output settings: 720p30 */
		{NULL, 0, 0, 0, TWO_PEERS, 1.5},
		/* a tiny output never costs less than audio alone; a huge one is capped */
		{"grid", 16, 16, 1, TWO_PEERS, 0.2},
		{"grid", 7680, 4320, 240, FOUR_PEERS, 64.0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = vtp__job_cost(cases[i].layout, cases[i].w, cases[i].h, cases[i].fps,
					   cases[i].tracks);

		if (got < cases[i].want - 1e-6 || got > cases[i].want + 1e-6)
			fail_msg("case %zu: cost %.4f, want %.4f", i, got, cases[i].want);
	}
}

static void test_fits(void **state)
{
	(void)state;
	assert_true(vtp__job_fits(2, 0, 0, 1.5));
	assert_true(vtp__job_fits(2, 1.5, 1, 0.5));   /* exactly full */
	assert_true(vtp__job_fits(0.3, 0.1, 1, 0.2)); /* 0.1 + 0.2: no float surprise */
	assert_false(vtp__job_fits(2, 1.5, 1, 1.5));
	/* bigger than the whole capacity: alone on an idle node, never beside */
	assert_true(vtp__job_fits(1, 0, 0, 64));
	assert_false(vtp__job_fits(1, 0.2, 1, 64));
}

static void test_pick(void **state)
{
	double heavy_light[] = {1.5, 0.2}, young[] = {5, 1}, old[] = {120, 1};
	double light_first[] = {0.2, 1.5};

	(void)state;
	/* idle: the oldest, whatever it costs */
	assert_int_equal(vtp__job_pick(heavy_light, young, 2, 2, 0, 0, 60), 0);
	/* a heavy one runs: the next heavy does not fit, the light one behind it does */
	assert_int_equal(vtp__job_pick(heavy_light, young, 2, 2, 1.5, 1, 60), 1);
	/* ... until the heavy one has waited max_wait: then nothing new */
	assert_int_equal(vtp__job_pick(heavy_light, old, 2, 2, 1.5, 1, 60), -1);
	/* max_wait 0: strict order, no passing at all */
	assert_int_equal(vtp__job_pick(heavy_light, young, 2, 2, 1.5, 1, 0), -1);
	/* the oldest fits: taken first */
	assert_int_equal(vtp__job_pick(light_first, young, 2, 2, 1.5, 1, 60), 0);
	/* nothing fits, none waited long: none */
	assert_int_equal(vtp__job_pick(heavy_light, young, 2, 1.7, 1.6, 1, 60), -1);
	/* an empty queue */
	assert_int_equal(vtp__job_pick(NULL, NULL, 0, 2, 0, 0, 60), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cost_table),
		cmocka_unit_test(test_fits),
		cmocka_unit_test(test_pick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
