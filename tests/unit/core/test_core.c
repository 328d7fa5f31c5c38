/* Tests for the core helpers: RFC 3339 time text, UUIDs, path component
 * encoding and the capped buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/path.h"
#include "core/random.h"
#include "core/timeutil.h"

/* ---- time ---------------------------------------------------------------- */

#define T_2026 ((int64_t)1795498260123) /* 2026-11-24T05:31:00.123Z */

static void test_time_format(void **state)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
		{0, "1970-01-01T00:00:00.000Z"},
		{1, "1970-01-01T00:00:00.001Z"},
		{999, "1970-01-01T00:00:00.999Z"},
		{T_2026, "2026-11-24T05:31:00.123Z"},
		{951868799999, "2000-02-29T23:59:59.999Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{-1000, "1969-12-31T23:59:59.000Z"},
		{-1001, "1969-12-31T23:59:58.999Z"},
		{253402300799999, "9999-12-31T23:59:59.999Z"},
	};
	char out[VTP_TIME_BUFLEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t back = 0;

		vtp_time_format(cases[i].ms, out);
		assert_string_equal(out, cases[i].text);
		/* and back */
		assert_true(vtp_time_parse(out, &back));
		assert_int_equal(back, cases[i].ms);
	}
}

static void test_time_roundtrip_many(void **state)
{
	char out[VTP_TIME_BUFLEN];

	for (int64_t ms = -86400000; ms < (int64_t)4102444800000; ms += 7777777777 + 13) {
		int64_t back = 0;

		vtp_time_format(ms, out);
		assert_int_equal(strlen(out), 24);
		assert_true(vtp_time_parse(out, &back));
		assert_int_equal(back, ms);
	}
}

static void test_time_parse_accepts(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} cases[] = {
		{"2026-11-24T05:31:00.123Z", T_2026},
		{"2026-11-24t05:31:00.123z", T_2026},
		/* PostgreSQL's ISO output for timestamptz */
		{"2026-11-24 05:31:00.123+00", T_2026},
		{"2026-11-24 05:31:00.123+00:00", T_2026},
		{"2026-11-24 05:31:00.123-00", T_2026},
		{"2026-11-24 05:31:00.123456+00", T_2026},
		{"2026-11-24 05:31:00+00", T_2026 - 123},
		{"2026-11-24T05:31:00Z", T_2026 - 123},
		/* fractions of any length: only milliseconds are kept */
		{"2026-11-24T05:31:00.1Z", T_2026 - 23},
		{"2026-11-24T05:31:00.12Z", T_2026 - 3},
		{"2026-11-24T05:31:00.123999999Z", T_2026},
		/* offsets: local time minus offset is UTC */
		{"2026-11-24T06:31:00.123+01:00", T_2026},
		{"2026-11-24T11:01:00.123+05:30", T_2026},
		{"2026-11-24T11:01:00.123+0530", T_2026},
		{"2026-11-23T21:31:00.123-08:00", T_2026},
		{"2026-11-23T21:31:00.123-0800", T_2026},
		{"2026-11-23T21:31:00.123-08", T_2026},
		{"2026-11-24 07:31:00.123+02", T_2026},
		{"2026-11-24T00:01:00Z", 1795478460000},
		{"1970-01-01T00:00:00Z", 0},
		{"1969-12-31T23:59:59.999Z", -1},
		{"2000-02-29T23:59:59.999Z", 951868799999},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = 0;

		if (!vtp_time_parse(cases[i].text, &ms))
			fail_msg("refused %s", cases[i].text);
		if (ms != cases[i].ms)
			fail_msg("%s: %lld, want %lld", cases[i].text, (long long)ms,
				 (long long)cases[i].ms);
	}
}

static void test_time_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"2026",
		"2026-11-24",
		"2026-11-24T05:31",
		"2026-11-24T05:31:00",       /* no zone: ambiguous */
		"2026-11-24T05:31:00.123",   /* no zone */
		"2026-11-24T05:31:00.Z",     /* empty fraction */
		"2026-11-24T05:31:00,123Z",
		"2026-11-24T05:31:00.123ZZ",
		"2026-11-24T05:31:00.123Z ",
		" 2026-11-24T05:31:00.123Z",
		"2026-11-24T05:31:00.123UTC",
		"2026-11-24T05:31:00.123+",
		"2026-11-24T05:31:00.123+1",
		"2026-11-24T05:31:00.123+01:",
		"2026-11-24T05:31:00.123+01:0",
		"2026-11-24T05:31:00.123+010",
		"2026-11-24T05:31:00.123+01:00:00",
		"2026-11-24X05:31:00Z",
		"2026/11/24T05:31:00Z",
		"2026-11-24T05-31-00Z",
		"26-11-24T05:31:00Z",
		"+2026-11-24T05:31:00Z",
		"2026-00-24T05:31:00Z",
		"2026-13-24T05:31:00Z",
		/* local times whose UTC instant has no four-digit year */
		"9999-12-31T23:59:59.999-23:59",
		"0000-01-01T00:00:00+00:01",
		"2026-11-00T05:31:00Z",
		"2026-11-32T05:31:00Z",
		"2026-11-24T24:00:00Z",
		"2026-11-24T05:60:00Z",
		"2026-11-24T05:31:61Z",
		"2026-1a-24T05:31:00Z",
		"2026-11-24T05:31:00.12aZ",
		"-026-11-24T05:31:00Z",
		"now",
	};
	int64_t ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vtp_time_parse(bad[i], &ms))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(vtp_time_parse(NULL, &ms));
	assert_int_equal(ms, 42);
}

static int64_t fixed_clock(void)
{
	return 1234567;
}

static void test_clock_injection(void **state)
{
	int64_t a, b;

	vtp_clock_set(fixed_clock);
	assert_int_equal(vtp_now_ms(), 1234567);
	vtp_clock_set(NULL);
	assert_true(vtp_now_ms() > (int64_t)1600000000000);
	a = vtp_mono_us();
	b = vtp_mono_us();
	assert_true(b >= a);
}

/* ---- UUIDs --------------------------------------------------------------- */

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int cmp_uuid(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_uuid_v4(void **state)
{
	enum { N = 2000 };
	char (*ids)[VTP_UUID_BUFLEN] = calloc(N, VTP_UUID_BUFLEN);
	int variant_seen[4] = {0};

	assert_non_null(ids);
	for (int i = 0; i < N; i++) {
		char *u = ids[i], norm[VTP_UUID_BUFLEN];

		vtp_uuid_v4(u);
		assert_int_equal(strlen(u), 36);
		for (int j = 0; j < 36; j++) {
			if (j == 8 || j == 13 || j == 18 || j == 23)
				assert_int_equal(u[j], '-');
			else
				assert_true(is_lower_hex(u[j]));
		}
		assert_int_equal(u[14], '4'); /* version */
		assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
		variant_seen[strchr("89ab", u[19]) - "89ab"]++;
		assert_true(vtp_uuid_parse(u, norm));
		assert_string_equal(norm, u);
	}
	/* all four variant nibbles occur: the other bits are random */
	for (int i = 0; i < 4; i++)
		assert_true(variant_seen[i] > 0);
	qsort(ids, N, VTP_UUID_BUFLEN, cmp_uuid);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

/* Version 7 ids of one process are strictly increasing, also within one
 * millisecond (the room event journal orders by time, then id). 20,000 ids
 * take a few milliseconds, so many share one. */
static void test_uuid_v7_increasing(void **state)
{
	enum { N = 20000 };
	char prev[VTP_UUID_BUFLEN] = "", u[VTP_UUID_BUFLEN];
	int same_ms = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		vtp_uuid_v7(u);
		assert_int_equal(strlen(u), 36);
		assert_int_equal(u[14], '7');                     /* version */
		assert_non_null(strchr("89ab", u[19]));           /* variant */
		if (i > 0) {
			if (strcmp(prev, u) >= 0)
				fail_msg("id %d not after the one before: %s then %s", i, prev, u);
			same_ms += memcmp(prev, u, 13) == 0; /* the 48-bit time */
		}
		memcpy(prev, u, sizeof(u));
	}
	assert_true(same_ms > 0);
}

static void test_uuid_parse(void **state)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: refused */
	} cases[] = {
		{"3f2504e0-4f89-41d3-9a0c-0305e82c3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"},
		{"3F2504E0-4F89-41D3-9A0C-0305E82C3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"},
		{"3f2504E0-4f89-41D3-9a0c-0305e82C3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"},
		{"00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{"", NULL},
		{"3f2504e0", NULL},
		{"3f2504e04f8941d39a0c0305e82c3301", NULL},
		{"{3f2504e0-4f89-41d3-9a0c-0305e82c3301}", NULL},
		{"urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301", NULL},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c330", NULL},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c33011", NULL},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c3301\n", NULL},
		{" 3f2504e0-4f89-41d3-9a0c-0305e82c3301", NULL},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c330g", NULL},
		{"3f2504e0-4f89-41d3-9a0c+0305e82c3301", NULL},
		{"3f2504e0a4f89-41d3-9a0c-0305e82c3301", NULL},
		{"3f2504e-04f89-41d3-9a0c-0305e82c3301", NULL},
		{"3f2504e0-4f89-41d3-9a0c-0305e82c33-1", NULL},
		{"3f2504e0--f89-41d3-9a0c-0305e82c3301", NULL},
		{"../../../../../../../../../etc/pass", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[VTP_UUID_BUFLEN] = "untouched";
		bool ok = vtp_uuid_parse(cases[i].in, out);

		if (ok != (cases[i].out != NULL))
			fail_msg("vtp_uuid_parse(\"%s\") = %d", cases[i].in, ok);
		if (ok)
			assert_string_equal(out, cases[i].out);
		else
			assert_string_equal(out, "untouched");
		assert_int_equal(vtp_uuid_parse(cases[i].in, NULL), ok);
	}
	assert_false(vtp_uuid_parse(NULL, NULL));
}

static void test_random_hex(void **state)
{
	char a[65], b[65], big[301];

	vtp_random_hex(a, 32);
	vtp_random_hex(b, 32);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
	for (int i = 0; i < 64; i++)
		assert_true(is_lower_hex(a[i]));
	vtp_random_hex(big, 150); /* more than one internal block */
	assert_int_equal(strlen(big), 300);
	vtp_random_hex(a, 0);
	assert_string_equal(a, "");
}

/* ---- path components ----------------------------------------------------- */

static bool component_safe(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
		      *s == '%' || *s == '~'))
			return false;
	return true;
}

static void check_component(const char *in, const char *out, size_t len)
{
	assert_int_equal(len, strlen(out));
	assert_true(len <= VTP_PATH_COMPONENT_MAX);
	assert_null(strchr(out, '/'));
	assert_null(strstr(out, ".."));
	assert_string_not_equal(out, ".");
	if (!component_safe(out))
		fail_msg("unsafe byte in \"%s\" (from \"%s\")", out, in);
}

static void test_path_encode(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"room-1_A", "room-1_A"},
		{"../../x", "%2E%2E%2F%2E%2E%2Fx"},
		{"..", "%2E%2E"},
		{".", "%2E"},
		{".hidden", "%2Ehidden"},
		{"a/b", "a%2Fb"},
		{"a%2Fb", "a%252Fb"}, /* '%' itself is encoded: no two inputs collide */
		{"a\\b", "a%5Cb"},
		{"\x01\n\t\x7f", "%01%0A%09%7F"},
		{"caf\xc3\xa9", "caf%C3%A9"},
		{"a b", "a%20b"},
		{"x~y", "x%7Ey"}, /* '~' only ever starts the hash suffix */
		{"\xff", "%FF"},
	};
	char out[VTP_PATH_COMPONENT_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = vtp_path_encode_component(cases[i].in, out);

		check_component(cases[i].in, out, n);
		assert_string_equal(out, cases[i].out);
	}
}

static void test_path_encode_long(void **state)
{
	char in[2048], out[VTP_PATH_COMPONENT_MAX + 1];
	char out2[VTP_PATH_COMPONENT_MAX + 1];
	size_t n;

	/* 255 × "é" (510 bytes, 1530 encoded) is cut and hashed, and stays
	 * distinct from 254 × "é" */
	in[0] = '\0';
	for (int i = 0; i < 255; i++)
		memcpy(in + 2 * i, "\xc3\xa9", 3);
	n = vtp_path_encode_component(in, out);
	check_component(in, out, n);
	assert_non_null(strchr(out, '~'));
	in[2 * 254] = '\0';
	n = vtp_path_encode_component(in, out2);
	check_component(in, out2, n);
	assert_string_not_equal(out, out2);

	/* exactly VTP_PATH_COMPONENT_MAX safe bytes fit unchanged; one more is
	 * cut to the maximum */
	memset(in, 'a', VTP_PATH_COMPONENT_MAX);
	in[VTP_PATH_COMPONENT_MAX] = '\0';
	n = vtp_path_encode_component(in, out);
	assert_int_equal(n, VTP_PATH_COMPONENT_MAX);
	assert_string_equal(out, in);
	in[VTP_PATH_COMPONENT_MAX] = 'a';
	in[VTP_PATH_COMPONENT_MAX + 1] = '\0';
	n = vtp_path_encode_component(in, out);
	check_component(in, out, n);
	assert_int_equal(n, VTP_PATH_COMPONENT_MAX);
	assert_non_null(strchr(out, '~'));
	in[VTP_PATH_COMPONENT_MAX + 1] = 'a';
	in[VTP_PATH_COMPONENT_MAX + 2] = '\0';
	n = vtp_path_encode_component(in, out2);
	check_component(in, out2, n);
	assert_string_not_equal(out, out2);

	/* two long inputs differing only after the cut stay distinct */
	memset(in, '/', 1000);
	in[1000] = '\0';
	vtp_path_encode_component(in, out);
	in[999] = '.';
	vtp_path_encode_component(in, out2);
	assert_string_not_equal(out, out2);
	check_component(in, out2, strlen(out2));
}

static void test_path_encode_random(void **state)
{
	unsigned char in[700];
	char out[VTP_PATH_COMPONENT_MAX + 1];

	for (int i = 0; i < 2000; i++) {
		size_t len;

		vtp_random_bytes(in, sizeof(in) - 1);
		len = in[0] % 4 == 0 ? in[1] % 8 : (size_t)(in[1] | (in[2] << 8)) % (sizeof(in) - 1);
		for (size_t j = 0; j < len; j++)
			if (in[j] == 0)
				in[j] = '.';
		in[len] = '\0';
		check_component((const char *)in, out,
				vtp_path_encode_component((const char *)in, out));
	}
}

static void test_path_encode_empty(void **state)
{
	char out[VTP_PATH_COMPONENT_MAX + 1];

	/* Never an empty component (which would collapse into its parent):
	 * "" becomes "%00", an encoding no other C string can produce. */
	assert_int_equal(vtp_path_encode_component("", out), 3);
	assert_string_equal(out, "%00");
	assert_int_equal(vtp_path_encode_component(" ", out), 3);
	assert_string_equal(out, "%20");
}

/* ---- capped buffer ------------------------------------------------------- */

static void test_buf_cap(void **state)
{
	vtp_buf b;
	char *s;
	size_t len = 99;

	vtp_buf_init(&b, 10);
	assert_int_equal(vtp_buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(vtp_buf_append(&b, "x", 1), VTP_ETOOBIG);
	assert_int_equal(vtp_buf_appends(&b, "x"), VTP_ETOOBIG);
	assert_int_equal(vtp_buf_appendf(&b, "%d", 1), VTP_ETOOBIG);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(vtp_buf_append(&b, "", 0), 0);
	assert_int_equal(vtp_buf_append(&b, "x", SIZE_MAX), VTP_ETOOBIG);

	vtp_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	/* an append that would cross the cap adds nothing at all */
	assert_int_equal(vtp_buf_appends(&b, "abcdef"), 0);
	assert_int_equal(vtp_buf_appends(&b, "ghijk"), VTP_ETOOBIG);
	assert_int_equal(vtp_buf_appendf(&b, "%s", "ghijk"), VTP_ETOOBIG);
	assert_string_equal(b.data, "abcdef");
	assert_int_equal(vtp_buf_appendf(&b, "%s", "ghij"), 0);
	assert_string_equal(b.data, "abcdefghij");

	s = vtp_buf_steal(&b, &len);
	assert_int_equal(len, 10);
	assert_string_equal(s, "abcdefghij");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	vtp_free(s);

	/* stealing from an empty buffer gives "" */
	s = vtp_buf_steal(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	vtp_free(s);
	vtp_buf_free(&b);
	vtp_buf_free(&b);

	vtp_buf_init(&b, 0);
	assert_int_equal(vtp_buf_append(&b, "x", 1), VTP_ETOOBIG);
	assert_int_equal(vtp_buf_append(&b, "", 0), 0);
	vtp_buf_free(&b);
}

static void test_buf_appendf_and_growth(void **state)
{
	vtp_buf b;
	char expect[64];

	vtp_buf_init(&b, 1 << 20);
	assert_int_equal(vtp_buf_appendf(&b, "%s=%d;", "a", 1), 0);
	assert_int_equal(vtp_buf_appendf(&b, "%05.1f|%x|%c", 3.25, 255u, 'z'), 0);
	assert_int_equal(vtp_buf_appendf(&b, "%s", ""), 0);
	snprintf(expect, sizeof(expect), "a=1;%05.1f|ff|z", 3.25);
	assert_string_equal(b.data, expect);
	assert_int_equal(b.len, strlen(expect));
	vtp_buf_reset(&b);

	/* grows through many reallocations and keeps every byte */
	for (int i = 0; i < 100000; i++)
		assert_int_equal(vtp_buf_appendf(&b, "%d,", i % 10), 0);
	assert_int_equal(b.len, 200000);
	for (size_t i = 0; i < b.len; i += 2) {
		assert_int_equal(b.data[i], '0' + (int)((i / 2) % 10));
		assert_int_equal(b.data[i + 1], ',');
	}
	assert_int_equal(b.data[b.len], '\0');
	/* binary data with NULs */
	vtp_buf_reset(&b);
	assert_int_equal(vtp_buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);
	vtp_buf_free(&b);
}

static void test_strerror(void **state)
{
	assert_string_equal(vtp_strerror(0), "success");
	assert_string_equal(vtp_strerror(VTP_ENOTFOUND), "not found");
	assert_string_equal(vtp_strerror(VTP_ELIMIT), "rate limited");
	assert_string_equal(vtp_strerror(-999), "unknown error");
	for (int e = VTP_ELIMIT; e <= 0; e++)
		assert_string_not_equal(vtp_strerror(e), "unknown error");
}

static void test_mem(void **state)
{
	char *s = vtp_strdup("hello");

	assert_string_equal(s, "hello");
	VTP_FREE(&s);
	assert_null(s);
	assert_null(vtp_strdup(NULL));
	assert_null(vtp_strndup(NULL, 3));
	s = vtp_strndup("hello", 3);
	assert_string_equal(s, "hel");
	vtp_free(s);
	s = vtp_strndup("hi", 10);
	assert_string_equal(s, "hi");
	vtp_free(s);
	vtp_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_roundtrip_many),
		cmocka_unit_test(test_time_parse_accepts),
		cmocka_unit_test(test_time_parse_refuses),
		cmocka_unit_test(test_clock_injection),
		cmocka_unit_test(test_uuid_v4),
		cmocka_unit_test(test_uuid_v7_increasing),
		cmocka_unit_test(test_uuid_parse),
		cmocka_unit_test(test_random_hex),
		cmocka_unit_test(test_path_encode),
		cmocka_unit_test(test_path_encode_long),
		cmocka_unit_test(test_path_encode_random),
		cmocka_unit_test(test_path_encode_empty),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_appendf_and_growth),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_mem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
