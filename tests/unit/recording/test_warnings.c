/* Tests for the warnings of a recording (src/recording/service.c): what a
 * track's statistics say it could not write becomes one warning per track
 * with whose track it is and how much is missing; merging replaces a
 * warning of the same code and track and keeps the others. service.c is
 * included to reach its statics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recording/service.c"

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

static const char tracks_lost[] =
	"[{\"trackId\":\"t-video\",\"peerId\":\"p1\",\"fullName\":\"Ada Lovelace\",\"kind\":\"video\","
	"\"notWrittenPackets\":117,\"notWrittenSeconds\":7.54,\"notWrittenReason\":\"disk_full\"},"
	"{\"trackId\":\"t-audio\",\"peerId\":\"p1\",\"fullName\":\"Ada Lovelace\",\"kind\":\"audio\"},"
	"{\"trackId\":\"t-screen\",\"peerId\":\"p2\",\"kind\":\"video\",\"notWrittenPackets\":3,"
	"\"notWrittenSeconds\":0.2,\"notWrittenReason\":\"write_failed\"}]";

static void test_from_tracks(void **state)
{
	char *text = warnings_merge(NULL, tracks_lost, NULL);
	json_t *arr, *w;

	(void)state;
	assert_non_null(text);
	arr = parse(text);
	assert_int_equal(json_array_size(arr), 2); /* the audio track lost nothing */
	w = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(w, "code")), "disk_full");
	assert_string_equal(json_string_value(json_object_get(w, "trackId")), "t-video");
	assert_string_equal(json_string_value(json_object_get(w, "peerId")), "p1");
	assert_string_equal(json_string_value(json_object_get(w, "message")),
			    "Ada Lovelace's video track: 7.5 s (117 packets) not recorded because the "
			    "recordings disk was full");
	assert_int_equal(json_integer_value(json_object_get(w, "packets")), 117);
	w = json_array_get(arr, 1);
	assert_string_equal(json_string_value(json_object_get(w, "code")), "capture_write_failed");
	assert_string_equal(json_string_value(json_object_get(w, "message")),
			    "A participant's video track: 0.2 s (3 packets) not recorded because the "
			    "recordings disk could not be written");
	json_decref(arr);
	vtp_free(text);
}

static void test_merge(void **state)
{
	/* an older count of the same track is replaced, another code kept */
	const char *old = "[{\"code\":\"disk_full\",\"message\":\"old\",\"trackId\":\"t-video\"},"
			  "{\"code\":\"node_lost\",\"message\":\"a node was lost\"}]";
	char *text = warnings_merge(old, tracks_lost,
				    json_pack("{ss ss}", "code", "stop_pending", "message", "not saved"));
	json_t *arr;

	(void)state;
	arr = parse(text);
	assert_int_equal(json_array_size(arr), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "trackId")),
			    "t-video");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "packets")), 117);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "code")),
			    "node_lost");
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 3), "code")),
			    "stop_pending");
	json_decref(arr);
	vtp_free(text);
}

static void test_none(void **state)
{
	(void)state;
	assert_null(warnings_merge(NULL, NULL, NULL));
	assert_null(warnings_merge(NULL, "[{\"trackId\":\"x\",\"packets\":10}]", NULL));
	assert_null(warnings_merge("[]", "not json", NULL));
	assert_null(warnings_merge("{\"not\":\"an array\"}", "[]", NULL));
}

/* A recording interrupted by a restart is stopped by the recovery from its
 * packet logs, whose gap records say what the disk did not take: those
 * tracks get their warnings then, as a Stop gives them. */
static void test_interrupted(void **state)
{
	char dir[64], url[128], err[256], cmd[128], email[64], hex[17];
	vtp_store *s = NULL;
	vtp_recordings *svc;
	vtp_recording r, got;
	vtp_user u = {0};
	json_t *arr, *w;
	int applied = -1;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vtp-warnings-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "sqlite://%s/vtp.db", dir);
	assert_int_equal(vtp_store_open(url, 2, &s, err, sizeof(err)), 0);
	assert_int_equal(vtp_store_migrate(s, &applied), 0);
	vtp_random_hex(hex, 8);
	snprintf(email, sizeof(email), "starter-%s@example.com", hex);
	vtp_uuid_v4(u.id);
	u.email = email;
	u.full_name = "Starter";
	u.role = "instructor";
	u.created_at = 1795000000000;
	assert_int_equal(vtp_store_user_insert(s, &u), 0);
	memset(&r, 0, sizeof(r));
	vtp_uuid_v4(r.id);
	r.room_id = "room-interrupted";
	r.title = "Interrupted";
	memcpy(r.started_by, u.id, VTP_UUID_BUFLEN);
	r.status = "recording";
	r.file_size = -1;
	r.duration_seconds = -1;
	r.format = "webm";
	r.video_codec = "vp8";
	r.audio_codec = "opus";
	r.bitrate = 2000;
	r.created_at = 1795000000000;
	assert_int_equal(vtp_store_recording_insert(s, &r), 0);

	svc = vtp_recordings_new(s, dir);
	assert_int_equal(vtp_recordings_mark_interrupted(svc, &r, r.created_at + 9000, tracks_lost,
							 "restarted"),
			 0);
	memset(&got, 0, sizeof(got));
	assert_int_equal(vtp_store_recording_get(s, r.id, &got), 0);
	assert_string_equal(got.status, "stopped");
	assert_non_null(got.warnings);
	arr = parse(got.warnings);
	assert_int_equal(json_array_size(arr), 2);
	w = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(w, "code")), "disk_full");
	assert_string_equal(json_string_value(json_object_get(w, "trackId")), "t-video");
	json_decref(arr);
	vtp_recording_clear(&got);
	vtp_recordings_free(svc);
	vtp_store_free(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_tracks),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_interrupted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
