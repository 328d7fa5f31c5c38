/* Tests for the batched audit writer (src/recording/audit.c) against a real
 * SQLite store in a temporary directory: durable entries are committed when
 * vtp_audit_add returns, queued ones after a flush or vtp_audit_free, and
 * many threads adding at once lose nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>

#include "core/error.h"
#include "core/log.h"
#include "core/random.h"
#include "recording/audit.h"
#include "store/store.h"

#define T0 INT64_C(1795000000123)

typedef struct fixture {
	char dir[64];
	char url[128];
	vtp_store *s;
	char user[VTP_UUID_BUFLEN];
	char rec[VTP_UUID_BUFLEN]; /* a recording row; tests add their own too */
} fixture;

/* ---- helpers ------------------------------------------------------------ */

static void open_store(fixture *fx)
{
	char err[256];
	int applied = -1;

	assert_int_equal(vtp_store_open(fx->url, 4, &fx->s, err, sizeof(err)), 0);
	assert_int_equal(vtp_store_migrate(fx->s, &applied), 0);
}

static void make_recording(fixture *fx, char id[VTP_UUID_BUFLEN])
{
	vtp_recording r;
	char room[40], hex[17];

	vtp_random_hex(hex, 8);
	snprintf(room, sizeof(room), "audit-%s", hex);
	memset(&r, 0, sizeof(r));
	vtp_uuid_v4(r.id);
	r.room_id = room;
	r.title = "Audited";
	memcpy(r.started_by, fx->user, VTP_UUID_BUFLEN);
	r.status = "recording";
	r.file_size = -1;
	r.duration_seconds = -1;
	r.format = "webm";
	r.video_codec = "vp8";
	r.audio_codec = "opus";
	r.bitrate = 2000;
	r.created_at = T0;
	assert_int_equal(vtp_store_recording_insert(fx->s, &r), 0);
	memcpy(id, r.id, VTP_UUID_BUFLEN);
}

static void entry_init(vtp_access_entry *e, const fixture *fx, const char *rec,
		       const char *type, char *agent)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->recording_id, rec, VTP_UUID_BUFLEN);
	e->accessed_by = (char *)fx->user;
	e->access_type = (char *)type;
	e->ip_address = "203.0.113.7";
	e->user_agent = agent;
	e->accessed_at = T0;
}

static int64_t count_entries(vtp_store *s, const char *rec)
{
	vtp_access_entry *arr = NULL;
	size_t n = 0;
	int64_t total = -1;

	assert_int_equal(vtp_store_access_log_list(s, rec, 1, 0, &arr, &n, &total), 0);
	vtp_access_entry_free_array(arr, n);
	return total;
}

/* ---- cases -------------------------------------------------------------- */

/* A durable entry is readable the moment vtp_audit_add returns, every time. */
static void test_durable_visible(void **state)
{
	fixture *fx = *state;
	vtp_audit *a = vtp_audit_new(fx->s);
	char rec[VTP_UUID_BUFLEN], agent[32];
	vtp_access_entry e, *arr = NULL;
	size_t n = 0;
	int64_t total = 0;

	make_recording(fx, rec);
	for (int i = 0; i < 25; i++) {
		snprintf(agent, sizeof(agent), "durable-%d", i);
		entry_init(&e, fx, rec, i % 2 ? "stop" : "start", agent);
		e.accessed_at = T0 + i;
		e.detail = i == 3 ? "{\"reason\":\"test\"}" : NULL;
		assert_int_equal(vtp_audit_add(a, &e, true), 0);
		assert_int_equal(vtp_store_access_log_list(fx->s, rec, 1, 0, &arr, &n,
							   &total),
				 0);
		assert_int_equal(total, i + 1);
		assert_int_equal(n, 1);
		/* newest first: the one just added, with every field */
		assert_string_equal(arr[0].user_agent, agent);
		assert_string_equal(arr[0].access_type, e.access_type);
		assert_string_equal(arr[0].accessed_by, fx->user);
		assert_string_equal(arr[0].ip_address, "203.0.113.7");
		assert_string_equal(arr[0].recording_id, rec);
		assert_int_equal(arr[0].accessed_at, T0 + i);
		vtp_access_entry_free_array(arr, n);
	}
	assert_int_equal(vtp_audit_lost(a), 0);
	vtp_audit_free(a);
}

/* The caller's entry is copied: its strings may change right after. */
static void test_entry_copied(void **state)
{
	fixture *fx = *state;
	vtp_audit *a = vtp_audit_new(fx->s);
	char rec[VTP_UUID_BUFLEN], agent[32], type[16];
	vtp_access_entry e, *arr = NULL;
	size_t n = 0;
	int64_t total = 0;

	make_recording(fx, rec);
	snprintf(agent, sizeof(agent), "original");
	snprintf(type, sizeof(type), "view");
	entry_init(&e, fx, rec, type, agent);
	assert_int_equal(vtp_audit_add(a, &e, false), 0);
	snprintf(agent, sizeof(agent), "overwritten");
	snprintf(type, sizeof(type), "XXXX");
	memset(&e, 0, sizeof(e));
	vtp_audit_flush(a);
	assert_int_equal(vtp_store_access_log_list(fx->s, rec, 10, 0, &arr, &n, &total),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].user_agent, "original");
	assert_string_equal(arr[0].access_type, "view");
	vtp_access_entry_free_array(arr, n);
	vtp_audit_free(a);
}

/* Non-durable entries are all there after a flush; repeated flushes and a
 * flush with nothing queued return. */
static void test_flush(void **state)
{
	fixture *fx = *state;
	static const int rounds[] = {1, 7, 511, 512, 513, 1500};
	vtp_audit *a = vtp_audit_new(fx->s);
	char rec[VTP_UUID_BUFLEN], agent[32];
	vtp_access_entry e;
	int64_t expect = 0;

	make_recording(fx, rec);
	vtp_audit_flush(a); /* empty */
	for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]); r++) {
		for (int i = 0; i < rounds[r]; i++) {
			snprintf(agent, sizeof(agent), "view-%zu-%d", r, i);
			entry_init(&e, fx, rec, "view", agent);
			e.accessed_by = i % 3 ? (char *)fx->user : NULL;
			assert_int_equal(vtp_audit_add(a, &e, false), 0);
		}
		expect += rounds[r];
		vtp_audit_flush(a);
		assert_int_equal(count_entries(fx->s, rec), expect);
		vtp_audit_flush(a);
	}
	assert_int_equal(vtp_audit_lost(a), 0);
	vtp_audit_free(a);
	assert_int_equal(count_entries(fx->s, rec), expect);
}

/* vtp_audit_free writes everything still queued: counted through a fresh
 * store on the same file, as after a restart. */
static void test_free_drains(void **state)
{
	fixture *fx = *state;
	vtp_audit *a = vtp_audit_new(fx->s);
	char rec[VTP_UUID_BUFLEN], agent[32];
	vtp_access_entry e;

	make_recording(fx, rec);
	for (int i = 0; i < 2000; i++) {
		snprintf(agent, sizeof(agent), "queued-%d", i);
		entry_init(&e, fx, rec, "view", agent);
		assert_int_equal(vtp_audit_add(a, &e, false), 0);
	}
	vtp_audit_free(a);
	vtp_store_free(fx->s);
	fx->s = NULL;
	open_store(fx);
	assert_int_equal(count_entries(fx->s, rec), 2000);

	/* an audit writer with nothing to do stops at once too */
	vtp_audit_free(vtp_audit_new(fx->s));
	vtp_audit_free(NULL);
}

/* A durable entry the store refuses is reported to its caller and counted
 * as lost; the writer goes on with the next one. */
static void test_durable_failure(void **state)
{
	fixture *fx = *state;
	vtp_audit *a = vtp_audit_new(fx->s);
	char rec[VTP_UUID_BUFLEN];
	vtp_access_entry e;

	make_recording(fx, rec);
	entry_init(&e, fx, rec, "start", "bad");
	e.detail = "not json";
	assert_true(vtp_audit_add(a, &e, true) < 0);
	assert_true(vtp_audit_lost(a) >= 1);
	entry_init(&e, fx, rec, "stop", "good");
	assert_int_equal(vtp_audit_add(a, &e, true), 0);
	assert_int_equal(count_entries(fx->s, rec), 1);
	vtp_audit_free(a);
}

/* ---- concurrency -------------------------------------------------------- */

#define THREADS 8
#define VIEWS 500

typedef struct adder {
	fixture *fx;
	vtp_audit *a;
	pthread_barrier_t *barrier;
	char rec[VTP_UUID_BUFLEN];
	int view_failures;
	int durable_rc;
	int64_t seen_after_durable;
} adder;

static void *add_many(void *arg)
{
	adder *ad = arg;
	vtp_access_entry e;
	char agent[32];

	pthread_barrier_wait(ad->barrier);
	for (int i = 0; i < VIEWS; i++) {
		snprintf(agent, sizeof(agent), "v%d", i);
		entry_init(&e, ad->fx, ad->rec, "view", agent);
		e.accessed_at = T0 + i;
		if (vtp_audit_add(ad->a, &e, false) != 0)
			ad->view_failures++;
	}
	entry_init(&e, ad->fx, ad->rec, "stop", "durable");
	e.accessed_at = T0 + VIEWS;
	ad->durable_rc = vtp_audit_add(ad->a, &e, true);
	/* Entries are written in queue order, so when the durable one is
	 * committed, this thread's earlier views are too. */
	ad->seen_after_durable = count_entries(ad->fx->s, ad->rec);
	return NULL;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void test_concurrent_adds(void **state)
{
	fixture *fx = *state;
	vtp_audit *a = vtp_audit_new(fx->s);
	pthread_t th[THREADS];
	adder ads[THREADS];
	pthread_barrier_t barrier;
	vtp_access_entry *lists[THREADS] = {0};
	size_t lens[THREADS] = {0};
	char **ids;
	size_t nids = 0;

	pthread_barrier_init(&barrier, NULL, THREADS);
	for (int t = 0; t < THREADS; t++) {
		memset(&ads[t], 0, sizeof(ads[t]));
		ads[t].fx = fx;
		ads[t].a = a;
		ads[t].barrier = &barrier;
		make_recording(fx, ads[t].rec);
	}
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, add_many, &ads[t]), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&barrier);
	vtp_audit_flush(a);
	assert_int_equal(vtp_audit_lost(a), 0);

	ids = calloc(THREADS * (VIEWS + 1), sizeof(*ids));
	assert_non_null(ids);
	for (int t = 0; t < THREADS; t++) {
		bool seen[VIEWS + 1] = {false};
		int64_t total = 0;

		assert_int_equal(ads[t].view_failures, 0);
		assert_int_equal(ads[t].durable_rc, 0);
		assert_int_equal(ads[t].seen_after_durable, VIEWS + 1);
		assert_int_equal(vtp_store_access_log_list(fx->s, ads[t].rec, 1000, 0,
							   &lists[t], &lens[t], &total),
				 0);
		assert_int_equal(total, VIEWS + 1);
		assert_int_equal(lens[t], VIEWS + 1);
		/* every (thread, i) exactly once; newest (the durable) first */
		assert_string_equal(lists[t][0].user_agent, "durable");
		for (size_t k = 0; k < lens[t]; k++) {
			const vtp_access_entry *e = &lists[t][k];
			int i = VIEWS;

			if (strcmp(e->user_agent, "durable") != 0) {
				assert_int_equal(e->user_agent[0], 'v');
				i = (int)strtol(e->user_agent + 1, NULL, 10);
				assert_string_equal(e->access_type, "view");
			}
			assert_true(i >= 0 && i <= VIEWS);
			assert_false(seen[i]);
			seen[i] = true;
			assert_int_equal(e->accessed_at, T0 + i);
			ids[nids++] = lists[t][k].id;
		}
	}
	assert_int_equal(nids, THREADS * (VIEWS + 1));
	assert_int_equal(nids, 4008);
	qsort(ids, nids, sizeof(*ids), cmp_str);
	for (size_t k = 1; k < nids; k++)
		if (strcmp(ids[k - 1], ids[k]) == 0)
			fail_msg("duplicate access-log id %s", ids[k]);
	for (size_t k = 0; k < nids; k++)
		assert_true(vtp_uuid_parse(ids[k], NULL));
	free(ids);
	for (int t = 0; t < THREADS; t++)
		vtp_access_entry_free_array(lists[t], lens[t]);
	assert_int_equal(vtp_audit_lost(a), 0);
	vtp_audit_free(a);
}

/* ---- fixture ------------------------------------------------------------ */

static int setup(void **state)
{
	static fixture fx;
	vtp_user u = {0};
	char email[64], hex[17];

	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/vtp-audit-test.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.url, sizeof(fx.url), "sqlite://%s/vtp.db", fx.dir);
	*state = &fx;
	open_store(&fx);
	vtp_random_hex(hex, 8);
	snprintf(email, sizeof(email), "auditor-%s@example.com", hex);
	vtp_uuid_v4(u.id);
	u.email = email;
	u.full_name = "Auditor";
	u.role = "instructor";
	u.created_at = T0;
	if (vtp_store_user_insert(fx.s, &u) != 0)
		return -1;
	memcpy(fx.user, u.id, VTP_UUID_BUFLEN);
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	char cmd[128];

	vtp_store_free(fx->s);
	fx->s = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durable_visible),
		cmocka_unit_test(test_entry_copied),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_free_drains),
		cmocka_unit_test(test_durable_failure),
		cmocka_unit_test(test_concurrent_adds),
	};

	vtp_log_init(getenv("VTP_TEST_LOG") ? VTP_LOG_DEBUG : VTP_LOG_OFF, false);
	return cmocka_run_group_tests(tests, setup, teardown);
}
