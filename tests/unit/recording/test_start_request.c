/* Tests for vtp_start_request_parse (src/recording/service.c) and the JSON
 * parameter tables under it (src/core/jsonval.c): every field's bounds and
 * types, defaults, format/codec combinations, and the field-level failure
 * (VTP_EINVAL, "invalid_input", the field's name) a client gets back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "core/error.h"
#include "core/fail.h"
#include "core/jsonval.h"
#include "core/mem.h"
#include "recording/recording.h"

/* A minimal valid body; cases add or override members. */
#define BASE "\"roomId\":\"room-1\",\"title\":\"Lecture\""

struct start_case {
	const char *name;
	const char *json;      /* the body, or NULL for a NULL body */
	/* optional: body[long_key] = long_unit repeated long_count times */
	const char *long_key;
	const char *long_unit;
	int long_count;
	const char *field;     /* NULL: must succeed; else the failing field */
	/* expected request on success (NULL description = absent) */
	const char *description;
	const char *format, *video, *audio;
	int bitrate;
};

#define OK_DEFAULTS NULL, NULL, "webm", "vp8", "opus", 2000
#define FAILS(f) f, NULL, NULL, NULL, NULL, 0

static const struct start_case cases[] = {
	/* defaults */
	{"minimal", "{" BASE "}", NULL, NULL, 0, OK_DEFAULTS},
	{"all nulls are absent",
	 "{" BASE ",\"description\":null,\"format\":null,\"videoCodec\":null,"
	 "\"audioCodec\":null,\"bitrate\":null}",
	 NULL, NULL, 0, OK_DEFAULTS},
	{"format webm explicit", "{" BASE ",\"format\":\"webm\"}", NULL, NULL, 0,
	 OK_DEFAULTS},
	{"format mp4 defaults to h264/aac", "{" BASE ",\"format\":\"mp4\"}",
	 NULL, NULL, 0, NULL, NULL, "mp4", "h264", "aac", 2000},
	{"mp4 h264 aac explicit",
	 "{" BASE ",\"format\":\"mp4\",\"videoCodec\":\"h264\",\"audioCodec\":\"aac\"}",
	 NULL, NULL, 0, NULL, NULL, "mp4", "h264", "aac", 2000},
	{"mp4 h264 opus", "{" BASE ",\"format\":\"mp4\",\"audioCodec\":\"opus\"}",
	 NULL, NULL, 0, NULL, NULL, "mp4", "h264", "opus", 2000},
	{"webm vp8 opus explicit",
	 "{" BASE ",\"format\":\"webm\",\"videoCodec\":\"vp8\",\"audioCodec\":\"opus\"}",
	 NULL, NULL, 0, OK_DEFAULTS},
	{"no format, vp8/opus", "{" BASE ",\"videoCodec\":\"vp8\",\"audioCodec\":\"opus\"}",
	 NULL, NULL, 0, OK_DEFAULTS},
	{"unknown fields ignored",
	 "{" BASE ",\"extra\":1,\"RoomId\":5,\"nested\":{\"a\":[1,2]},\"bitRate\":\"x\"}",
	 NULL, NULL, 0, OK_DEFAULTS},

	/* roomId: required, 1..255 code points, no control characters */
	{"roomId missing", "{\"title\":\"Lecture\"}", NULL, NULL, 0, FAILS("roomId")},
	{"roomId null", "{\"roomId\":null,\"title\":\"Lecture\"}", NULL, NULL, 0,
	 FAILS("roomId")},
	{"roomId empty", "{\"roomId\":\"\",\"title\":\"Lecture\"}", NULL, NULL, 0,
	 FAILS("roomId")},
	{"roomId 1 char", "{\"roomId\":\"r\",\"title\":\"Lecture\"}", NULL, NULL, 0,
	 OK_DEFAULTS},
	{"roomId 255 ascii", "{\"title\":\"Lecture\"}", "roomId", "a", 255,
	 OK_DEFAULTS},
	{"roomId 256 ascii", "{\"title\":\"Lecture\"}", "roomId", "a", 256,
	 FAILS("roomId")},
	{"roomId 255 x e-acute (510 bytes)", "{\"title\":\"Lecture\"}", "roomId",
	 "\xc3\xa9", 255, OK_DEFAULTS},
	{"roomId 256 x e-acute", "{\"title\":\"Lecture\"}", "roomId", "\xc3\xa9",
	 256, FAILS("roomId")},
	{"roomId 255 x 4-byte emoji", "{\"title\":\"Lecture\"}", "roomId",
	 "\xf0\x9f\x8e\xa5", 255, OK_DEFAULTS},
	{"roomId 256 x 4-byte emoji", "{\"title\":\"Lecture\"}", "roomId",
	 "\xf0\x9f\x8e\xa5", 256, FAILS("roomId")},
	{"roomId newline", "{\"roomId\":\"a\\nb\",\"title\":\"Lecture\"}", NULL,
	 NULL, 0, FAILS("roomId")},
	{"roomId tab", "{\"roomId\":\"a\\tb\",\"title\":\"Lecture\"}", NULL, NULL,
	 0, FAILS("roomId")},
	{"roomId CR", "{\"roomId\":\"a\\r\",\"title\":\"Lecture\"}", NULL, NULL, 0,
	 FAILS("roomId")},
	{"roomId U+0001", "{\"roomId\":\"\\u0001\",\"title\":\"Lecture\"}", NULL,
	 NULL, 0, FAILS("roomId")},
	{"roomId U+001F", "{\"roomId\":\"x\\u001f\",\"title\":\"Lecture\"}", NULL,
	 NULL, 0, FAILS("roomId")},
	{"roomId DEL", "{\"roomId\":\"x\\u007f\",\"title\":\"Lecture\"}", NULL,
	 NULL, 0, FAILS("roomId")},
	{"roomId non-control unicode", "{\"roomId\":\"Raum \\u00fc \\u4e2d\",\"title\":\"L\"}",
	 NULL, NULL, 0, OK_DEFAULTS},
	{"roomId space and punctuation",
	 "{\"roomId\":\"room 1/a:b\",\"title\":\"Lecture\"}", NULL, NULL, 0,
	 OK_DEFAULTS},
	{"roomId number", "{\"roomId\":5,\"title\":\"Lecture\"}", NULL, NULL, 0,
	 FAILS("roomId")},
	{"roomId array", "{\"roomId\":[\"r\"],\"title\":\"Lecture\"}", NULL, NULL,
	 0, FAILS("roomId")},
	{"roomId object", "{\"roomId\":{},\"title\":\"Lecture\"}", NULL, NULL, 0,
	 FAILS("roomId")},
	{"roomId bool", "{\"roomId\":true,\"title\":\"Lecture\"}", NULL, NULL, 0,
	 FAILS("roomId")},

	/* title: required, 1..500, control characters allowed */
	{"title missing", "{\"roomId\":\"r\"}", NULL, NULL, 0, FAILS("title")},
	{"title null", "{\"roomId\":\"r\",\"title\":null}", NULL, NULL, 0,
	 FAILS("title")},
	{"title empty", "{\"roomId\":\"r\",\"title\":\"\"}", NULL, NULL, 0,
	 FAILS("title")},
	{"title 500", "{\"roomId\":\"r\"}", "title", "t", 500, OK_DEFAULTS},
	{"title 501", "{\"roomId\":\"r\"}", "title", "t", 501, FAILS("title")},
	{"title 500 x e-acute", "{\"roomId\":\"r\"}", "title", "\xc3\xa9", 500,
	 OK_DEFAULTS},
	{"title 501 x e-acute", "{\"roomId\":\"r\"}", "title", "\xc3\xa9", 501,
	 FAILS("title")},
	{"title with newline", "{\"roomId\":\"r\",\"title\":\"a\\nb\"}", NULL, NULL,
	 0, OK_DEFAULTS},
	{"title number", "{\"roomId\":\"r\",\"title\":1}", NULL, NULL, 0,
	 FAILS("title")},
	{"title object", "{\"roomId\":\"r\",\"title\":{\"x\":1}}", NULL, NULL, 0,
	 FAILS("title")},
	/* both missing: the first in table order is reported */
	{"empty object", "{}", NULL, NULL, 0, FAILS("roomId")},

	/* description: optional, 0..10000 */
	{"description empty", "{" BASE ",\"description\":\"\"}", NULL, NULL, 0,
	 NULL, "", "webm", "vp8", "opus", 2000},
	{"description text", "{" BASE ",\"description\":\"Week 1\\nintro\"}", NULL,
	 NULL, 0, NULL, "Week 1\nintro", "webm", "vp8", "opus", 2000},
	{"description 10000", "{" BASE "}", "description", "d", 10000, OK_DEFAULTS},
	{"description 10001", "{" BASE "}", "description", "d", 10001,
	 FAILS("description")},
	{"description 10000 x e-acute", "{" BASE "}", "description", "\xc3\xa9",
	 10000, OK_DEFAULTS},
	{"description 10001 x e-acute", "{" BASE "}", "description", "\xc3\xa9",
	 10001, FAILS("description")},
	{"description number", "{" BASE ",\"description\":3}", NULL, NULL, 0,
	 FAILS("description")},
	{"description array", "{" BASE ",\"description\":[]}", NULL, NULL, 0,
	 FAILS("description")},

	/* format and codecs: choices, exact match */
	{"format mkv", "{" BASE ",\"format\":\"mkv\"}", NULL, NULL, 0,
	 FAILS("format")},
	{"format WEBM", "{" BASE ",\"format\":\"WEBM\"}", NULL, NULL, 0,
	 FAILS("format")},
	{"format empty", "{" BASE ",\"format\":\"\"}", NULL, NULL, 0,
	 FAILS("format")},
	{"format trailing space", "{" BASE ",\"format\":\"mp4 \"}", NULL, NULL, 0,
	 FAILS("format")},
	{"format number", "{" BASE ",\"format\":4}", NULL, NULL, 0,
	 FAILS("format")},
	{"videoCodec vp9", "{" BASE ",\"videoCodec\":\"vp9\"}", NULL, NULL, 0,
	 FAILS("videoCodec")},
	{"videoCodec H264", "{" BASE ",\"format\":\"mp4\",\"videoCodec\":\"H264\"}",
	 NULL, NULL, 0, FAILS("videoCodec")},
	{"videoCodec bool", "{" BASE ",\"videoCodec\":true}", NULL, NULL, 0,
	 FAILS("videoCodec")},
	{"audioCodec mp3", "{" BASE ",\"audioCodec\":\"mp3\"}", NULL, NULL, 0,
	 FAILS("audioCodec")},
	{"audioCodec number", "{" BASE ",\"audioCodec\":0}", NULL, NULL, 0,
	 FAILS("audioCodec")},

	/* incompatible combinations */
	{"webm+h264", "{" BASE ",\"format\":\"webm\",\"videoCodec\":\"h264\"}",
	 NULL, NULL, 0, FAILS("videoCodec")},
	{"default webm+h264", "{" BASE ",\"videoCodec\":\"h264\"}", NULL, NULL, 0,
	 FAILS("videoCodec")},
	{"webm+aac", "{" BASE ",\"format\":\"webm\",\"audioCodec\":\"aac\"}", NULL,
	 NULL, 0, FAILS("audioCodec")},
	{"default webm+aac", "{" BASE ",\"audioCodec\":\"aac\"}", NULL, NULL, 0,
	 FAILS("audioCodec")},
	{"webm+h264+aac reports video first",
	 "{" BASE ",\"videoCodec\":\"h264\",\"audioCodec\":\"aac\"}", NULL, NULL, 0,
	 FAILS("videoCodec")},
	{"mp4+vp8", "{" BASE ",\"format\":\"mp4\",\"videoCodec\":\"vp8\"}", NULL,
	 NULL, 0, FAILS("videoCodec")},
	{"mp4+vp8+opus",
	 "{" BASE ",\"format\":\"mp4\",\"videoCodec\":\"vp8\",\"audioCodec\":\"opus\"}",
	 NULL, NULL, 0, FAILS("videoCodec")},

	/* bitrate: integer 100..20000 */
	{"bitrate 100", "{" BASE ",\"bitrate\":100}", NULL, NULL, 0, NULL, NULL,
	 "webm", "vp8", "opus", 100},
	{"bitrate 20000", "{" BASE ",\"bitrate\":20000}", NULL, NULL, 0, NULL,
	 NULL, "webm", "vp8", "opus", 20000},
	{"bitrate 4500 mp4", "{" BASE ",\"format\":\"mp4\",\"bitrate\":4500}", NULL,
	 NULL, 0, NULL, NULL, "mp4", "h264", "aac", 4500},
	{"bitrate 99", "{" BASE ",\"bitrate\":99}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate 20001", "{" BASE ",\"bitrate\":20001}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate 0", "{" BASE ",\"bitrate\":0}", NULL, NULL, 0, FAILS("bitrate")},
	{"bitrate -2000", "{" BASE ",\"bitrate\":-2000}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate 2^32+2000 (no int truncation)",
	 "{" BASE ",\"bitrate\":4294969296}", NULL, NULL, 0, FAILS("bitrate")},
	{"bitrate INT64_MAX", "{" BASE ",\"bitrate\":9223372036854775807}", NULL,
	 NULL, 0, FAILS("bitrate")},
	{"bitrate string", "{" BASE ",\"bitrate\":\"2000\"}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate fraction", "{" BASE ",\"bitrate\":2000.5}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate real", "{" BASE ",\"bitrate\":2000.0}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate exponent", "{" BASE ",\"bitrate\":2e3}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate bool", "{" BASE ",\"bitrate\":true}", NULL, NULL, 0,
	 FAILS("bitrate")},
	{"bitrate array", "{" BASE ",\"bitrate\":[2000]}", NULL, NULL, 0,
	 FAILS("bitrate")},

	/* the first violation in table order wins */
	{"roomId before bitrate", "{\"roomId\":\"\",\"title\":\"t\",\"bitrate\":1}",
	 NULL, NULL, 0, FAILS("roomId")},
	{"title before format", "{\"roomId\":\"r\",\"title\":7,\"format\":\"x\"}",
	 NULL, NULL, 0, FAILS("title")},
	{"field bounds before combination",
	 "{" BASE ",\"videoCodec\":\"h264\",\"bitrate\":5}", NULL, NULL, 0,
	 FAILS("bitrate")},

	/* not an object: no field */
	{"array body", "[]", NULL, NULL, 0, FAILS("")},
	{"array of object body", "[{" BASE "}]", NULL, NULL, 0, FAILS("")},
	{"string body", "\"roomId\"", NULL, NULL, 0, FAILS("")},
	{"number body", "42", NULL, NULL, 0, FAILS("")},
	{"null body", "null", NULL, NULL, 0, FAILS("")},
	{"NULL body", NULL, NULL, NULL, 0, FAILS("")},
};

static json_t *case_body(const struct start_case *c)
{
	json_error_t err;
	json_t *body;

	if (!c->json)
		return NULL;
	body = json_loads(c->json, JSON_DECODE_ANY, &err);
	if (!body)
		fail_msg("%s: bad test JSON: %s", c->name, err.text);
	if (c->long_key) {
		size_t unit = strlen(c->long_unit);
		char *s = vtp_malloc(unit * (size_t)c->long_count + 1);

		for (int i = 0; i < c->long_count; i++)
			memcpy(s + unit * (size_t)i, c->long_unit, unit);
		s[unit * (size_t)c->long_count] = '\0';
		assert_int_equal(json_object_set_new(body, c->long_key,
						     json_string(s)),
				 0);
		vtp_free(s);
	}
	return body;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void test_start_table(void **state)
{
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct start_case *c = &cases[i];
		json_t *body = case_body(c);
		vtp_start_request req;
		vtp_fail fail = VTP_FAIL_INIT;
		/* generated descriptions are checked against the body */
		const char *want_desc = c->long_key && strcmp(c->long_key, "description") == 0
						? vtp_json_str(body, "description")
						: c->description;
		int rc;

		memset(&req, 0xA5, sizeof(req));
		rc = vtp_start_request_parse(body, &req, &fail);
		if (!c->field) {
			if (rc != 0) {
				print_error("%s: got %d (%s: %s), want success\n",
					    c->name, rc, fail.field, fail.message);
				failures++;
			} else if (!str_eq(req.room_id, vtp_json_str(body, "roomId")) ||
				   !str_eq(req.title, vtp_json_str(body, "title")) ||
				   !str_eq(req.description, want_desc) ||
				   !str_eq(req.format, c->format) ||
				   !str_eq(req.video_codec, c->video) ||
				   !str_eq(req.audio_codec, c->audio) ||
				   req.bitrate != c->bitrate) {
				print_error("%s: got %s/%s/%s/%d desc=%.40s\n", c->name,
					    req.format, req.video_codec,
					    req.audio_codec, req.bitrate,
					    req.description ? req.description : "(null)");
				failures++;
			} else if (fail.code != 0) {
				print_error("%s: success left a failure set\n", c->name);
				failures++;
			}
		} else if (rc != VTP_EINVAL || fail.code != VTP_EINVAL ||
			   !fail.reason || strcmp(fail.reason, "invalid_input") != 0 ||
			   strcmp(fail.field, c->field) != 0 || !fail.message[0]) {
			print_error("%s: got rc=%d code=%d reason=%s field='%s' (%s), "
				    "want EINVAL invalid_input field='%s'\n",
				    c->name, rc, fail.code,
				    fail.reason ? fail.reason : "(null)", fail.field,
				    fail.message, c->field);
			failures++;
		}
		vtp_fail_clear(&fail);
		json_decref(body);
	}
	assert_int_equal(failures, 0);
}

/* C1 controls (U+0080..U+009F) are control characters too: U+0085 is NEL,
 * a line break to many log viewers and terminals, U+009B is CSI, which
 * starts a terminal escape sequence. A roomId travels into logs, file
 * names and Socket.IO room names, so it must reject them like C0. */
static void test_start_room_c1_controls(void **state)
{
	static const char *const rooms[] = {
		"x\xc2\x80", "x\xc2\x85y", "\xc2\x9b[31m", "\xc2\x9f",
	};

	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
		json_t *body = json_pack("{s:s, s:s}", "roomId", rooms[i], "title", "t");
		vtp_start_request req;
		vtp_fail fail = VTP_FAIL_INIT;
		int rc;

		assert_non_null(body);
		rc = vtp_start_request_parse(body, &req, &fail);
		if (rc != VTP_EINVAL || strcmp(fail.field, "roomId") != 0) {
			print_error("roomId with U+%04X accepted (rc %d)\n",
				    (unsigned char)strchr(rooms[i], '\xc2')[1], rc);
			failures++;
		}
		json_decref(body);
	}
	/* the first code point above them is an ordinary letter */
	{
		json_t *body = json_pack("{s:s, s:s}", "roomId", "\xc2\xa0\xc3\xbf",
					 "title", "t");
		vtp_start_request req;

		assert_int_equal(vtp_start_request_parse(body, &req, NULL), 0);
		json_decref(body);
	}
	assert_int_equal(failures, 0);
}

/* Strings of the request point into the body (no copies to free). */
static void test_start_borrows_body(void **state)
{
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}",
				 "roomId", "r-1", "title", "T", "description",
				 "D", "format", "mp4", "videoCodec", "h264",
				 "audioCodec", "aac", "bitrate", 300);
	vtp_start_request req;
	vtp_fail fail = VTP_FAIL_INIT;

	(void)state;
	assert_int_equal(vtp_start_request_parse(body, &req, &fail), 0);
	assert_ptr_equal(req.room_id, json_string_value(json_object_get(body, "roomId")));
	assert_ptr_equal(req.title, json_string_value(json_object_get(body, "title")));
	assert_ptr_equal(req.description,
			 json_string_value(json_object_get(body, "description")));
	assert_ptr_equal(req.format, json_string_value(json_object_get(body, "format")));
	assert_int_equal(req.bitrate, 300);
	json_decref(body);
}

/* Strings with an embedded NUL (JSON "\u0000") cannot be used as C strings. */
static void test_start_embedded_nul(void **state)
{
	static const char *const fields[] = {"roomId", "title", "description",
					     "format"};

	(void)state;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *body = json_pack("{s:s, s:s}", "roomId", "r", "title", "t");
		vtp_start_request req;
		vtp_fail fail = VTP_FAIL_INIT;

		json_object_set_new(body, fields[i], json_stringn("webm\0x", 6));
		assert_int_equal(vtp_start_request_parse(body, &req, &fail),
				 VTP_EINVAL);
		assert_string_equal(fail.field, fields[i]);
		assert_string_equal(fail.reason, "invalid_input");
		json_decref(body);
	}
}

/* The parameter table engine directly: min/max for strings, max -1 means
 * unbounded, int bounds inclusive, a NULL fail is allowed. */
static void test_json_validate(void **state)
{
	static const char *const colours[] = {"red", "green", NULL};
	static const vtp_json_param params[] = {
		{"s", VTP_JV_STRING, false, 2, 3, NULL, false},
		{"u", VTP_JV_STRING, false, 0, -1, NULL, true},
		{"c", VTP_JV_STRING, false, 0, -1, colours, false},
		{"n", VTP_JV_INT, false, -5, 5, NULL, false},
	};
	static const struct {
		const char *json;
		const char *field; /* NULL: ok */
	} vcases[] = {
		{"{}", NULL},
		{"{\"s\":\"ab\"}", NULL},
		{"{\"s\":\"abc\"}", NULL},
		{"{\"s\":\"a\"}", "s"},
		{"{\"s\":\"abcd\"}", "s"},
		{"{\"s\":\"\\u00e9\\u00e9\\u00e9\"}", NULL},
		{"{\"u\":\"\"}", NULL},
		{"{\"u\":\"a\\u0000b\"}", "u"},
		{"{\"c\":\"red\"}", NULL},
		{"{\"c\":\"green\"}", NULL},
		{"{\"c\":\"blue\"}", "c"},
		{"{\"c\":\"re\"}", "c"},
		{"{\"c\":\"reds\"}", "c"},
		{"{\"n\":-5}", NULL},
		{"{\"n\":5}", NULL},
		{"{\"n\":-6}", "n"},
		{"{\"n\":6}", "n"},
		{"{\"n\":null,\"s\":null}", NULL},
		{"{\"n\":-9223372036854775808}", "n"},
		{"{\"n\":1,\"s\":\"x\"}", "s"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		json_t *obj = json_loads(vcases[i].json, JSON_ALLOW_NUL, NULL);
		vtp_fail fail = VTP_FAIL_INIT;
		int rc;

		assert_non_null(obj);
		rc = vtp_json_validate(obj, params, sizeof(params) / sizeof(params[0]),
				       &fail);
		if (!vcases[i].field) {
			if (rc != 0)
				fail_msg("%s: got %d (%s)", vcases[i].json, rc, fail.message);
		} else {
			if (rc != VTP_EINVAL || strcmp(fail.field, vcases[i].field) != 0)
				fail_msg("%s: got %d field '%s', want field '%s'",
					 vcases[i].json, rc, fail.field, vcases[i].field);
			/* same answer without a fail to fill */
			assert_int_equal(vtp_json_validate(obj, params, 4, NULL),
					 VTP_EINVAL);
		}
		json_decref(obj);
	}
}

static void test_utf8_length(void **state)
{
	static const struct {
		const char *s;
		size_t n;
	} ucases[] = {
		{"", 0},
		{"a", 1},
		{"abc", 3},
		{"\xc3\xa9", 1},
		{"a\xc3\xa9z", 3},
		{"\xe4\xb8\xad\xe6\x96\x87", 2},
		{"\xf0\x9f\x8e\xa5!", 2},
		{"\xc2\x85", 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ucases) / sizeof(ucases[0]); i++)
		if (vtp_utf8_length(ucases[i].s) != ucases[i].n)
			fail_msg("case %zu: got %zu, want %zu", i,
				 vtp_utf8_length(ucases[i].s), ucases[i].n);
}

static void test_json_getters(void **state)
{
	json_t *obj = json_loads("{\"s\":\"x\",\"i\":7,\"n\":null,\"r\":1.5,"
				 "\"is\":\"7\"}",
				 0, NULL);

	(void)state;
	assert_string_equal(vtp_json_str(obj, "s"), "x");
	assert_null(vtp_json_str(obj, "i"));
	assert_null(vtp_json_str(obj, "n"));
	assert_null(vtp_json_str(obj, "missing"));
	assert_int_equal(vtp_json_int(obj, "i", -1), 7);
	assert_int_equal(vtp_json_int(obj, "n", -1), -1);
	assert_int_equal(vtp_json_int(obj, "r", -1), -1);
	assert_int_equal(vtp_json_int(obj, "is", -1), -1);
	assert_int_equal(vtp_json_int(obj, "missing", 42), 42);
	assert_null(vtp_json_str(NULL, "s"));
	assert_int_equal(vtp_json_int(NULL, "i", 3), 3);
	json_decref(obj);
}

/* layout: auto by default (also for null), each layout kept, anything else a
 * failure naming layout */
static void test_start_layout(void **state)
{
	static const struct {
		const char *json;
		const char *layout; /* NULL: fails on layout */
	} layouts[] = {
		{"{" BASE "}", "auto"},
		{"{" BASE ",\"layout\":null}", "auto"},
		{"{" BASE ",\"layout\":\"auto\"}", "auto"},
		{"{" BASE ",\"layout\":\"grid\"}", "grid"},
		{"{" BASE ",\"layout\":\"speaker\"}", "speaker"},
		{"{" BASE ",\"layout\":\"presentation\"}", "presentation"},
		{"{" BASE ",\"layout\":\"screen\"}", "screen"},
		{"{" BASE ",\"layout\":\"mosaic\"}", NULL},
		{"{" BASE ",\"layout\":\"Grid\"}", NULL},
		{"{" BASE ",\"layout\":\"\"}", NULL},
		{"{" BASE ",\"layout\":2}", NULL},
		{"{" BASE ",\"layout\":[\"grid\"]}", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		json_t *body = json_loads(layouts[i].json, 0, NULL);
		vtp_fail fail = VTP_FAIL_INIT;
		vtp_start_request req;
		int rc;

		assert_non_null(body);
		rc = vtp_start_request_parse(body, &req, &fail);
		if (layouts[i].layout) {
			assert_int_equal(rc, 0);
			assert_string_equal(req.layout, layouts[i].layout);
		} else {
			assert_int_equal(rc, VTP_EINVAL);
			assert_string_equal(fail.field, "layout");
		}
		vtp_fail_clear(&fail);
		json_decref(body);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_table),
		cmocka_unit_test(test_start_layout),
		cmocka_unit_test(test_start_room_c1_controls),
		cmocka_unit_test(test_start_borrows_body),
		cmocka_unit_test(test_start_embedded_nul),
		cmocka_unit_test(test_json_validate),
		cmocka_unit_test(test_utf8_length),
		cmocka_unit_test(test_json_getters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
