/* Tests for vtp_participant_add_media (src/recording/json.c): a participant's
 * sources from the Recording's tracks (their peerId, start, end once the
 * track ended, the kind's default for statistics saved before sources) and
 * talkSeconds from the composed recording's metadata
 * {"compose": {"talk": {peerId: s}}} (only once done; 0 for a peer it does
 * not name; null without it). sources.test.mjs reaches the "before done"
 * half through the binary, layouts.test.mjs the composer's talk times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "recording/recording.h"

#define TRACKS                                                                            \
	"[{\"trackId\":\"t1\",\"peerId\":\"ada\",\"kind\":\"video\",\"source\":\"camera\","    \
	"\"state\":\"receiving\",\"firstPacketAt\":\"2026-01-01T10:00:00.000Z\","              \
	"\"lastPacketAt\":\"2026-01-01T10:05:00.000Z\"},"                                       \
	"{\"trackId\":\"t2\",\"peerId\":\"ada\",\"kind\":\"video\",\"source\":\"screen\","      \
	"\"state\":\"ended\",\"firstPacketAt\":\"2026-01-01T10:01:00.000Z\","                  \
	"\"lastPacketAt\":\"2026-01-01T10:03:00.000Z\"},"                                       \
	"{\"trackId\":\"t3\",\"peerId\":\"bob\",\"kind\":\"audio\",\"state\":\"ended\","        \
	"\"firstPacketAt\":null,\"lastPacketAt\":null}]"

static json_t *media_of(const char *peer, const char *status, const char *meta)
{
	vtp_recording rec;
	json_t *o = json_object();

	memset(&rec, 0, sizeof(rec));
	rec.status = (char *)status;
	rec.metadata = (char *)meta;
	rec.tracks = (char *)TRACKS;
	vtp_participant_add_media(o, peer, &rec);
	return o;
}

static void test_sources(void **state)
{
	json_t *o = media_of("ada", "recording", "{}");
	json_t *s = json_object_get(o, "sources");

	(void)state;
	assert_int_equal(json_array_size(s), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(s, 0), "source")), "camera");
	assert_string_equal(json_string_value(json_object_get(json_array_get(s, 0), "trackId")), "t1");
	/* still receiving: no end yet */
	assert_true(json_is_null(json_object_get(json_array_get(s, 0), "endedAt")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(s, 1), "source")), "screen");
	assert_string_equal(json_string_value(json_object_get(json_array_get(s, 1), "endedAt")),
			    "2026-01-01T10:03:00.000Z");
	assert_true(json_is_null(json_object_get(o, "talkSeconds")));
	json_decref(o);

	/* statistics without a source: the kind's default; no packet: no times */
	o = media_of("bob", "stopped", "{}");
	s = json_object_get(o, "sources");
	assert_int_equal(json_array_size(s), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(s, 0), "source")),
			    "microphone");
	assert_true(json_is_null(json_object_get(json_array_get(s, 0), "startedAt")));
	assert_true(json_is_null(json_object_get(json_array_get(s, 0), "endedAt")));
	json_decref(o);

	o = media_of("nobody", "recording", "{}");
	assert_int_equal(json_array_size(json_object_get(o, "sources")), 0);
	json_decref(o);
}

static void test_talk_seconds(void **state)
{
	const char *meta = "{\"compose\":{\"talk\":{\"ada\":12.5,\"carol\":\"x\"}}}";
	json_t *o;

	(void)state;
	o = media_of("ada", "done", meta);
	assert_true(json_is_number(json_object_get(o, "talkSeconds")));
	assert_true(json_number_value(json_object_get(o, "talkSeconds")) == 12.5);
	json_decref(o);
	/* named nowhere in a talk object: never heard */
	o = media_of("bob", "done", meta);
	assert_true(json_number_value(json_object_get(o, "talkSeconds")) == 0.0);
	json_decref(o);
	/* a value that is not a number counts as none */
	o = media_of("carol", "done", meta);
	assert_true(json_number_value(json_object_get(o, "talkSeconds")) == 0.0);
	json_decref(o);
	/* before done the metadata is not the composer's: null */
	o = media_of("ada", "processing", meta);
	assert_true(json_is_null(json_object_get(o, "talkSeconds")));
	json_decref(o);
	/* done by a composer that did not count talk time, or broken metadata */
	o = media_of("ada", "done", "{\"other\":1}");
	assert_true(json_is_null(json_object_get(o, "talkSeconds")));
	json_decref(o);
	o = media_of("ada", "done", "{not json");
	assert_true(json_is_null(json_object_get(o, "talkSeconds")));
	json_decref(o);
	o = media_of("ada", "done", "{\"talk\":[1]}");
	assert_true(json_is_null(json_object_get(o, "talkSeconds")));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_talk_seconds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
