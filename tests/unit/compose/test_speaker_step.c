/* Tests for the tick-at-a-time forms in src/compose/layout.c: the main-area
 * decision stepped one tick at a time (vtp__speaker_step) equals the
 * whole-timeline decision it replaced (a copy of the old loop kept here),
 * and voice activity split into its floor and its marking equals the old
 * whole function (also kept here), on random tables: people joining and
 * leaving, speech in bursts and long runs, the instructor or nobody
 * first; energies of noise with speech and clicks, quiet and loud rooms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compose/compose_int.h"

/* ---- the old whole-timeline functions, as they were ---------------------- */

static void old_speaker_decide(const uint8_t *speaking, int np, size_t nticks, const int64_t *from,
			       const int64_t *to, int first, int *main_person)
{
	int64_t *run = malloc((np ? (size_t)np : 1) * sizeof *run);
	int64_t *last = malloc((np ? (size_t)np : 1) * sizeof *last);
	for (int p = 0; p < np; p++)
		run[p] = last[p] = -1;
	int cur = -1;
	bool by_speech = false;
	int64_t switched = INT64_MIN / 2;
	for (size_t tt = 0; tt < nticks; tt++) {
		int64_t t = (int64_t)tt;
		for (int p = 0; p < np; p++) {
			bool here = from[p] <= t && t < to[p];
			if (here && speaking[(size_t)p * nticks + tt]) {
				if (run[p] < 0)
					run[p] = t;
				last[p] = t;
			} else {
				run[p] = -1;
			}
		}
		if (cur < 0 || !(from[cur] <= t && t < to[cur])) {
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
			by_speech = pick >= 0 && last[pick] >= 0;
			cur = pick;
		} else if (!by_speech && first >= 0 && first < np && cur != first &&
			   from[first] <= t && t < to[first] && last[cur] < 0) {
			cur = first;
		} else if (t - switched >= 150) {
			int cand = -1;
			for (int p = 0; p < np; p++)
				if (p != cur && run[p] >= 0 && t - run[p] >= 50 &&
				    (cand < 0 || run[p] < run[cand]))
					cand = p;
			if (cand >= 0 && !(run[cur] >= 0 && run[cur] <= run[cand])) {
				cur = cand;
				by_speech = true;
				switched = t;
			}
		}
		main_person[tt] = cur;
	}
	free(run);
	free(last);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

static void old_voice_activity(const float *db, size_t n, uint8_t *speaking)
{
	if (n == 0)
		return;
	float *sorted = malloc(n * sizeof *sorted);
	memcpy(sorted, db, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_float);
	float floor_db = sorted[n / 10];
	free(sorted);
	float thr = floor_db + 15.0f;
	if (thr < -50.0f)
		thr = -50.0f;
	for (size_t i = 0; i < n; i++)
		speaking[i] = db[i] > thr;
	size_t last_on = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (!speaking[i])
			continue;
		if (last_on != SIZE_MAX && i - last_on > 1 && i - last_on <= 15)
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
		if (k - i < 3)
			memset(speaking + i, 0, k - i);
		i = k;
	}
}

/* ---- random tables ---------------------------------------------------------- */

static uint32_t g_rng = 12345;

static uint32_t rnd(uint32_t n)
{
	g_rng = g_rng * 1664525u + 1013904223u;
	return (g_rng >> 8) % n;
}

/* Speech for np people over nticks: runs of 1..max_run ticks on, gaps of
 * 1..max_gap off, each person with its own rhythm. */
static void random_speech(uint8_t *sp, int np, size_t nticks)
{
	for (int p = 0; p < np; p++) {
		uint32_t max_run = 2 + rnd(300), max_gap = 2 + rnd(600);
		size_t t = rnd(200);
		memset(sp + (size_t)p * nticks, 0, nticks);
		while (t < nticks) {
			size_t run = 1 + rnd(max_run);
			for (size_t k = 0; k < run && t < nticks; k++, t++)
				sp[(size_t)p * nticks + t] = 1;
			t += 1 + rnd(max_gap);
		}
	}
}

static void test_step_equals_decide(void **state)
{
	(void)state;
	enum { NT = 3000, MAXP = 6 };
	static uint8_t sp[MAXP * NT];
	int want[NT], got_loop[NT], got_step[NT];
	int64_t from[MAXP], to[MAXP];
	for (int round = 0; round < 300; round++) {
		int np = 1 + (int)rnd(MAXP);
		random_speech(sp, np, NT);
		for (int p = 0; p < np; p++) {
			/* some there all along, some joining late, leaving early, or both */
			switch (rnd(4)) {
			case 0:
				from[p] = 0;
				to[p] = NT;
				break;
			case 1:
				from[p] = rnd(NT);
				to[p] = NT;
				break;
			case 2:
				from[p] = 0;
				to[p] = rnd(NT);
				break;
			default:
				from[p] = rnd(NT);
				to[p] = from[p] + rnd(NT);
			}
		}
		int first = (int)rnd((uint32_t)np + 1) - 1; /* -1: nobody first */
		old_speaker_decide(sp, np, NT, from, to, first, want);
		vtp__speaker_decide(sp, np, NT, from, to, first, got_loop);
		/* tick by tick, each tick's column copied out: as a composer
		 * that sees one tick at a time would hold it */
		vtp__speaker_state st;
		vtp__speaker_init(&st, np, first);
		for (size_t t = 0; t < NT; t++) {
			uint8_t col[MAXP];
			for (int p = 0; p < np; p++)
				col[p] = sp[(size_t)p * NT + t];
			got_step[t] = vtp__speaker_step(&st, col, 1, from, to, (int64_t)t);
		}
		vtp__speaker_free(&st);
		for (size_t t = 0; t < NT; t++) {
			if (got_loop[t] != want[t] || got_step[t] != want[t])
				fail_msg("round %d (%d people, first %d), tick %zu: want %d, decide %d, step %d",
					 round, np, first, t, want[t], got_loop[t], got_step[t]);
		}
	}
}

static void test_floor_and_mark_equal_activity(void **state)
{
	(void)state;
	enum { N = 4000 };
	static float db[N];
	static uint8_t want[N], got[N], split[N];
	for (int round = 0; round < 300; round++) {
		size_t n = 1 + rnd(N);
		float noise = -90.0f + (float)rnd(60); /* quiet to loud rooms */
		for (size_t i = 0; i < n; i++)
			db[i] = noise + (float)rnd(100) / 10.0f;
		/* speech runs and clicks over it */
		for (int k = (int)rnd(30); k > 0; k--) {
			size_t at = rnd((uint32_t)n), len = rnd(2) ? 1 + rnd(4) : 1 + rnd(400);
			float level = -60.0f + (float)rnd(55);
			for (size_t i = at; i < at + len && i < n; i++)
				db[i] = level + (float)rnd(30) / 10.0f;
		}
		old_voice_activity(db, n, want);
		vtp__voice_activity(db, n, got);
		vtp__voice_mark(db, n, vtp__voice_floor(db, n), split);
		for (size_t i = 0; i < n; i++)
			if (got[i] != want[i] || split[i] != want[i])
				fail_msg("round %d (%zu ticks), tick %zu: want %d, activity %d, floor+mark %d",
					 round, n, i, want[i], got[i], split[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_equals_decide),
		cmocka_unit_test(test_floor_and_mark_equal_activity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
