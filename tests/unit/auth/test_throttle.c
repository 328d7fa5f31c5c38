/* Tests for src/auth/throttle.c: threshold, exponential back-off and its
 * cap, the 15-minute window, reset on success, independent keys, key
 * truncation, eviction when the table is full, and the SipHash used for
 * bucket selection. The .c is included to reach its constants and statics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/throttle.c"

#define SEC 1000
#define MIN (60 * SEC)
#define T0 ((int64_t)1800000000000)

static int64_t retry_of(vtp_throttle *t, const char *key, int64_t now)
{
	int64_t retry = -1;
	int rc = vtp_throttle_check(t, key, now, &retry);

	assert_true(retry >= 0);
	assert_int_equal(rc, retry > 0 ? VTP_ELIMIT : 0);
	return retry;
}

static void test_threshold(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);

	assert_int_equal(retry_of(t, "a@example.com", T0), 0);
	for (int i = 0; i < 4; i++) {
		vtp_throttle_failure(t, "a@example.com", T0 + i);
		assert_int_equal(retry_of(t, "a@example.com", T0 + i), 0);
	}
	vtp_throttle_failure(t, "a@example.com", T0 + 4);
	/* fifth failure: wait 2^0 s from it */
	assert_int_equal(retry_of(t, "a@example.com", T0 + 4), 1 * SEC);
	assert_int_equal(retry_of(t, "a@example.com", T0 + 4 + 999), 1);
	assert_int_equal(retry_of(t, "a@example.com", T0 + 4 + 1000), 0);
	/* retry_after_ms may be NULL */
	assert_int_equal(vtp_throttle_check(t, "a@example.com", T0 + 5, NULL), VTP_ELIMIT);
	vtp_throttle_free(t);
	vtp_throttle_free(NULL);
}

static void test_backoff_growth_and_cap(void **state)
{
	static const int64_t want_s[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
					 900, 900, 900, 900};
	vtp_throttle *t = vtp_throttle_new(5);
	int64_t now = T0;

	for (int i = 0; i < 4; i++)
		vtp_throttle_failure(t, "k", now++);
	for (size_t i = 0; i < sizeof(want_s) / sizeof(want_s[0]); i++) {
		int64_t retry;

		/* fail as soon as allowed */
		vtp_throttle_failure(t, "k", now);
		retry = retry_of(t, "k", now);
		if (retry != want_s[i] * SEC)
			fail_msg("failure %zu: retry %lld ms, want %lld s", i + 5,
				 (long long)retry, (long long)want_s[i]);
		now += retry;
		assert_int_equal(retry_of(t, "k", now), 0);
	}
	/* many more failures stay capped */
	for (int i = 0; i < 100; i++)
		vtp_throttle_failure(t, "k", now);
	assert_int_equal(retry_of(t, "k", now), 900 * SEC);
	assert_int_equal(wait_ms(5, THROTTLE_MAX_FAILURES), THROTTLE_MAX_WAIT_MS);
	assert_int_equal(wait_ms(5, UINT32_MAX), THROTTLE_MAX_WAIT_MS);
	vtp_throttle_free(t);
}

static void test_window(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);

	/* 4 failures, then the window from the first one passes: a new count */
	for (int i = 0; i < 4; i++)
		vtp_throttle_failure(t, "w", T0 + i * MIN);
	vtp_throttle_failure(t, "w", T0 + 15 * MIN);
	assert_int_equal(retry_of(t, "w", T0 + 15 * MIN), 0);
	for (int i = 1; i < 4; i++)
		vtp_throttle_failure(t, "w", T0 + 15 * MIN + i);
	assert_int_equal(retry_of(t, "w", T0 + 15 * MIN + 3), 0);
	vtp_throttle_failure(t, "w", T0 + 15 * MIN + 4);
	assert_int_equal(retry_of(t, "w", T0 + 15 * MIN + 4), 1 * SEC);

	/* 5 failures within 15 minutes, spread out, still trigger */
	for (int i = 0; i < 5; i++)
		vtp_throttle_failure(t, "spread", T0 + i * 3 * MIN + i);
	assert_true(retry_of(t, "spread", T0 + 12 * MIN + 4) > 0);

	/* a key in back-off keeps counting until it has been quiet for 15
	 * minutes beyond its wait, even long after its first failure */
	for (int i = 0; i < 12; i++)
		vtp_throttle_failure(t, "b", T0);
	assert_int_equal(retry_of(t, "b", T0), 128 * SEC);
	assert_int_equal(retry_of(t, "b", T0 + 128 * SEC), 0);
	vtp_throttle_failure(t, "b", T0 + 14 * MIN);
	vtp_throttle_failure(t, "b", T0 + 28 * MIN);
	assert_int_equal(retry_of(t, "b", T0 + 28 * MIN), 512 * SEC);
	for (int i = 0; i < 14; i++)
		vtp_throttle_failure(t, "c", T0);
	vtp_throttle_failure(t, "c", T0 + 512 * SEC + 15 * MIN - 1);
	assert_int_equal(retry_of(t, "c", T0 + 512 * SEC + 15 * MIN - 1), 900 * SEC);
	/* waiting out the cap is not enough to be forgotten */
	vtp_throttle_failure(t, "c", T0 + 512 * SEC + 30 * MIN - 1);
	assert_int_equal(retry_of(t, "c", T0 + 512 * SEC + 30 * MIN - 1), 900 * SEC);

	/* quiet long enough: back to zero */
	{
		const int64_t q = T0 + 28 * MIN + 512 * SEC + 15 * MIN;

		assert_int_equal(retry_of(t, "b", q), 0);
		vtp_throttle_failure(t, "b", q);
		assert_int_equal(retry_of(t, "b", q), 0);
		for (int i = 0; i < 3; i++)
			vtp_throttle_failure(t, "b", q);
		assert_int_equal(retry_of(t, "b", q), 0);
		vtp_throttle_failure(t, "b", q);
		assert_int_equal(retry_of(t, "b", q), 1 * SEC);

		/* a clock stepping back does not shorten a wait */
		vtp_throttle_failure(t, "b", q - 3 * MIN);
		assert_int_equal(retry_of(t, "b", q), 2 * SEC);
	}
	vtp_throttle_free(t);
}

static void test_success_resets(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);

	for (int i = 0; i < 7; i++)
		vtp_throttle_failure(t, "s", T0);
	assert_int_equal(retry_of(t, "s", T0), 4 * SEC);
	vtp_throttle_success(t, "s");
	assert_int_equal(retry_of(t, "s", T0), 0);
	for (int i = 0; i < 4; i++)
		vtp_throttle_failure(t, "s", T0);
	assert_int_equal(retry_of(t, "s", T0), 0);
	/* success for an unknown key is harmless */
	vtp_throttle_success(t, "never-seen");
	vtp_throttle_free(t);
}

static void test_independent_keys(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);

	for (int i = 0; i < 5; i++)
		vtp_throttle_failure(t, "alice@example.com", T0);
	assert_true(retry_of(t, "alice@example.com", T0) > 0);
	assert_int_equal(retry_of(t, "bob@example.com", T0), 0);
	assert_int_equal(retry_of(t, "Alice@example.com", T0), 0);
	assert_int_equal(retry_of(t, "alice@example.co", T0), 0);
	assert_int_equal(retry_of(t, "10.0.0.1", T0), 0);
	assert_int_equal(retry_of(t, "", T0), 0);
	vtp_throttle_success(t, "bob@example.com");
	assert_true(retry_of(t, "alice@example.com", T0) > 0);

	/* NULL is treated as the empty key */
	for (int i = 0; i < 5; i++)
		vtp_throttle_failure(t, NULL, T0);
	assert_true(retry_of(t, "", T0) > 0);
	assert_int_equal(vtp_throttle_check(t, NULL, T0, NULL), VTP_ELIMIT);
	vtp_throttle_success(t, NULL);
	assert_int_equal(retry_of(t, "", T0), 0);
	vtp_throttle_free(t);
}

static void test_long_keys(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);
	char a[1000], b[1000], c[1000];

	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(a));
	b[THROTTLE_KEY_MAX + 10] = 'y'; /* differs after the cut: same key */
	memcpy(c, a, sizeof(a));
	c[THROTTLE_KEY_MAX - 1] = 'y'; /* differs before the cut */
	for (int i = 0; i < 5; i++)
		vtp_throttle_failure(t, a, T0);
	assert_true(retry_of(t, a, T0) > 0);
	assert_true(retry_of(t, b, T0) > 0);
	assert_int_equal(retry_of(t, c, T0), 0);
	vtp_throttle_free(t);
}

static void test_eviction_when_full(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);
	char key[32];

	/* fill the table, every key blocked for 900 s, key i failing at T0 + i */
	for (int i = 0; i < THROTTLE_MAX_ENTRIES; i++) {
		snprintf(key, sizeof(key), "user%d", i);
		for (int j = 0; j < 15; j++)
			vtp_throttle_failure(t, key, T0 + i);
	}
	assert_true(retry_of(t, "user0", T0 + THROTTLE_MAX_ENTRIES) > 0);
	/* refresh user1: now user2 has the oldest latest failure after user0 */
	vtp_throttle_failure(t, "user1", T0 + THROTTLE_MAX_ENTRIES);

	vtp_throttle_failure(t, "newcomer", T0 + THROTTLE_MAX_ENTRIES);
	assert_int_equal(retry_of(t, "user0", T0 + THROTTLE_MAX_ENTRIES), 0);
	assert_true(retry_of(t, "user1", T0 + THROTTLE_MAX_ENTRIES) > 0);
	assert_true(retry_of(t, "user2", T0 + THROTTLE_MAX_ENTRIES) > 0);

	vtp_throttle_failure(t, "newcomer2", T0 + THROTTLE_MAX_ENTRIES);
	assert_int_equal(retry_of(t, "user2", T0 + THROTTLE_MAX_ENTRIES), 0);
	assert_true(retry_of(t, "user1", T0 + THROTTLE_MAX_ENTRIES) > 0);
	assert_true(retry_of(t, "user3", T0 + THROTTLE_MAX_ENTRIES) > 0);

	/* the newcomers are counted */
	for (int j = 0; j < 4; j++)
		vtp_throttle_failure(t, "newcomer", T0 + THROTTLE_MAX_ENTRIES);
	assert_true(retry_of(t, "newcomer", T0 + THROTTLE_MAX_ENTRIES) > 0);

	/* success frees a slot: no eviction for the next newcomer */
	vtp_throttle_success(t, "user100");
	vtp_throttle_failure(t, "newcomer3", T0 + THROTTLE_MAX_ENTRIES);
	assert_true(retry_of(t, "user3", T0 + THROTTLE_MAX_ENTRIES) > 0);
	vtp_throttle_free(t);
}

/* Reference vectors from the SipHash paper (key 00..0f). */
static void test_siphash_vectors(void **state)
{
	unsigned char key[16], msg[64];

	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (unsigned char)i;
	assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(siphash24(key, msg, 1) == 0x74f839c593dc67fdULL);
	assert_true(siphash24(key, msg, 8) == 0x93f5f5799a932462ULL);
	assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
	assert_true(siphash24(key, msg, 63) == 0x958a324ceb064572ULL);
}

struct hammer_arg {
	vtp_throttle *t;
	int id;
};

static void *hammer(void *p)
{
	struct hammer_arg *a = p;
	char key[32];

	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "k%d", (i * 7 + a->id) % 5000);
		vtp_throttle_failure(a->t, key, T0 + i);
		(void)vtp_throttle_check(a->t, key, T0 + i, NULL);
		if (i % 13 == 0)
			vtp_throttle_success(a->t, key);
	}
	return NULL;
}

/* attempt = check + count in one step; refund takes one count back. */
static void test_attempt_and_refund(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);
	int64_t retry = -1;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(vtp_throttle_attempt(t, "k", T0, &retry), 0);
	/* five attempts in flight are five failures until proven otherwise */
	assert_int_equal(vtp_throttle_attempt(t, "k", T0, &retry), VTP_ELIMIT);
	assert_int_equal(retry, 1 * SEC);
	/* a refused attempt counted nothing: still exactly 5 */
	vtp_throttle_refund(t, "k");
	assert_int_equal(retry_of(t, "k", T0), 0);
	assert_int_equal(vtp_throttle_attempt(t, "k", T0, &retry), 0);
	/* refunds never go below zero, and an emptied key is forgotten */
	for (int i = 0; i < 10; i++)
		vtp_throttle_refund(t, "k");
	assert_int_equal(retry_of(t, "k", T0), 0);
	vtp_throttle_refund(t, "never-seen");
	vtp_throttle_free(t);
}

/* A correct login (an attempt settled with refund) leaves no trace: the
 * wait after it is what it was before, measured from the last real failure. */
static void test_correct_attempt_leaves_no_trace(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);
	int64_t retry = -1;

	(void)state;
	for (int i = 0; i < 6; i++)
		vtp_throttle_failure(t, "k", T0);
	assert_int_equal(retry_of(t, "k", T0), 2 * SEC); /* 2^(6-5) s */
	assert_int_equal(vtp_throttle_attempt(t, "k", T0 + 3 * SEC, &retry), 0);
	vtp_throttle_refund(t, "k"); /* the password was right */
	assert_int_equal(retry_of(t, "k", T0 + 3 * SEC + 1), 0);
	assert_int_equal(vtp_throttle_failures(t, "k", T0 + 3 * SEC), 6);
	/* the count is forgotten when it would have been without the login */
	assert_int_equal(vtp_throttle_failures(t, "k", T0 + 2 * SEC + THROTTLE_WINDOW_MS), 0);
	vtp_throttle_free(t);
}

/* attempt_failed turns the reservation into one failure. */
static void test_attempt_failed(void **state)
{
	vtp_throttle *t = vtp_throttle_new(2);
	int64_t retry = -1;

	(void)state;
	assert_int_equal(vtp_throttle_attempt(t, "k", T0, &retry), 0);
	assert_int_equal(vtp_throttle_failures(t, "k", T0), 0);
	vtp_throttle_attempt_failed(t, "k", T0);
	assert_int_equal(vtp_throttle_failures(t, "k", T0), 1);
	assert_int_equal(retry_of(t, "k", T0), 0);
	assert_int_equal(vtp_throttle_attempt(t, "k", T0 + 10, &retry), 0);
	vtp_throttle_attempt_failed(t, "k", T0 + 10);
	assert_int_equal(vtp_throttle_failures(t, "k", T0 + 10), 2);
	assert_int_equal(retry_of(t, "k", T0 + 10), 1 * SEC);
	/* nothing in flight any more: a refund takes nothing back */
	vtp_throttle_refund(t, "k");
	assert_int_equal(vtp_throttle_failures(t, "k", T0 + 10), 2);
	vtp_throttle_free(t);
}

static void test_concurrent(void **state)
{
	vtp_throttle *t = vtp_throttle_new(5);
	pthread_t th[4];
	struct hammer_arg args[4];

	for (int i = 0; i < 4; i++) {
		args[i].t = t;
		args[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	vtp_throttle_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_backoff_growth_and_cap),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_success_resets),
		cmocka_unit_test(test_independent_keys),
		cmocka_unit_test(test_long_keys),
		cmocka_unit_test(test_eviction_when_full),
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_attempt_and_refund),
		cmocka_unit_test(test_correct_attempt_leaves_no_trace),
		cmocka_unit_test(test_attempt_failed),
		cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
