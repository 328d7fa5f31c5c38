/* Tests for the streaming JSON writer (src/core/jsonw.c): commas at every
 * nesting level, string escaping, integers, shortest round-trip doubles,
 * RFC 3339 times and raw members. Every output is compared byte for byte
 * and also parsed back with jansson, which must see the intended value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>

#include "core/buf.h"
#include "core/jsonw.h"
#include "core/random.h"

#define T_2026 INT64_C(1795498260123) /* 2026-11-24T05:31:00.123Z */

/* Writes with fn into a fresh buffer; returns a heap copy of the text. */
static char *render(void (*fn)(vtp_jw *w))
{
	vtp_buf b;
	vtp_jw w;
	char *out;

	vtp_buf_init(&b, 1 << 20);
	vtp_jw_init(&w, &b);
	fn(&w);
	out = strdup(b.data ? b.data : "");
	assert_non_null(out);
	assert_int_equal(strlen(out), b.len);
	vtp_buf_free(&b);
	return out;
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &err);

	if (!j)
		fail_msg("jansson rejects %s: %s (col %d)", text, err.text, err.column);
	return j;
}

/* ---- structure ----------------------------------------------------------- */

static void w_empty_object(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_object_end(w);
}

static void w_empty_array(vtp_jw *w)
{
	vtp_jw_array_begin(w);
	vtp_jw_array_end(w);
}

static void w_flat_object(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "id");
	vtp_jw_string(w, "abc");
	vtp_jw_key(w, "n");
	vtp_jw_int(w, 5);
	vtp_jw_key(w, "ok");
	vtp_jw_bool(w, true);
	vtp_jw_key(w, "no");
	vtp_jw_bool(w, false);
	vtp_jw_key(w, "nothing");
	vtp_jw_null(w);
	vtp_jw_key(w, "s");
	vtp_jw_string(w, NULL);
	vtp_jw_object_end(w);
}

static void w_flat_array(vtp_jw *w)
{
	vtp_jw_array_begin(w);
	vtp_jw_int(w, 1);
	vtp_jw_string(w, "two");
	vtp_jw_double(w, 3.5);
	vtp_jw_bool(w, false);
	vtp_jw_null(w);
	vtp_jw_raw(w, "{\"r\":[1,2]}");
	vtp_jw_time(w, 0);
	vtp_jw_array_end(w);
}

static void w_nested(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "a");
	vtp_jw_array_begin(w);
	vtp_jw_int(w, 1);
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "b");
	vtp_jw_array_begin(w);
	vtp_jw_array_end(w);
	vtp_jw_key(w, "c");
	vtp_jw_object_begin(w);
	vtp_jw_object_end(w);
	vtp_jw_object_end(w);
	vtp_jw_array_begin(w);
	vtp_jw_array_end(w);
	vtp_jw_int(w, 2);
	vtp_jw_array_end(w);
	vtp_jw_key(w, "d");
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "e");
	vtp_jw_int(w, 3);
	vtp_jw_object_end(w);
	vtp_jw_key(w, "f");
	vtp_jw_string(w, "last");
	vtp_jw_object_end(w);
}

/* A list response: an array of objects, each with nested members. */
static void w_list(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "items");
	vtp_jw_array_begin(w);
	for (int i = 0; i < 3; i++) {
		vtp_jw_object_begin(w);
		vtp_jw_key(w, "i");
		vtp_jw_int(w, i);
		vtp_jw_key(w, "tracks");
		vtp_jw_array_begin(w);
		for (int k = 0; k < i; k++)
			vtp_jw_int(w, k);
		vtp_jw_array_end(w);
		vtp_jw_key(w, "meta");
		vtp_jw_raw(w, i == 1 ? NULL : "{}");
		vtp_jw_object_end(w);
	}
	vtp_jw_array_end(w);
	vtp_jw_key(w, "total");
	vtp_jw_int(w, 3);
	vtp_jw_object_end(w);
}

static void w_arrays_of_arrays(vtp_jw *w)
{
	vtp_jw_array_begin(w);
	for (int i = 0; i < 3; i++) {
		vtp_jw_array_begin(w);
		for (int k = 0; k <= i; k++) {
			vtp_jw_array_begin(w);
			vtp_jw_int(w, k);
			vtp_jw_array_end(w);
		}
		vtp_jw_array_end(w);
	}
	vtp_jw_array_end(w);
}

/* The deepest nesting the writer tracks: VTP_JW_MAX_DEPTH - 1 containers,
 * with a sibling before and after each level to exercise every comma. */
static void w_deep(vtp_jw *w)
{
	for (int i = 0; i < VTP_JW_MAX_DEPTH - 1; i++) {
		vtp_jw_array_begin(w);
		vtp_jw_int(w, i);
	}
	for (int i = 0; i < VTP_JW_MAX_DEPTH - 1; i++) {
		vtp_jw_int(w, -i);
		vtp_jw_array_end(w);
	}
}

/* Keys are written as is; long ones (over the 68-byte fast path) take the
 * escaping path. Both must produce the same separators. */
#define K68 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define K69 K68 "l"
#define K100 K68 "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm"

static void w_long_keys(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, K69);
	vtp_jw_int(w, 1);
	vtp_jw_key(w, "a");
	vtp_jw_int(w, 2);
	vtp_jw_key(w, K68);
	vtp_jw_int(w, 3);
	vtp_jw_key(w, K100);
	vtp_jw_object_begin(w);
	vtp_jw_key(w, K100);
	vtp_jw_array_begin(w);
	vtp_jw_array_end(w);
	vtp_jw_object_end(w);
	vtp_jw_object_end(w);
}

static void w_key_value_kinds(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "t");
	vtp_jw_time(w, T_2026);
	vtp_jw_key(w, "t0");
	vtp_jw_time(w, 0);
	vtp_jw_key(w, "d");
	vtp_jw_double(w, 0.25);
	vtp_jw_key(w, "nan");
	vtp_jw_double(w, NAN);
	vtp_jw_key(w, "raw");
	vtp_jw_raw(w, "[true,{\"x\":null}]");
	vtp_jw_key(w, "rawnull");
	vtp_jw_raw(w, NULL);
	vtp_jw_key(w, "min");
	vtp_jw_int(w, LLONG_MIN);
	vtp_jw_object_end(w);
}

static void w_top_string(vtp_jw *w) { vtp_jw_string(w, "top"); }
static void w_top_int(vtp_jw *w) { vtp_jw_int(w, -7); }
static void w_top_null_time(vtp_jw *w) { vtp_jw_time(w, 0); }

static const struct {
	const char *name;
	void (*fn)(vtp_jw *w);
	const char *want;
} structure_cases[] = {
	{"empty object", w_empty_object, "{}"},
	{"empty array", w_empty_array, "[]"},
	{"flat object", w_flat_object,
	 "{\"id\":\"abc\",\"n\":5,\"ok\":true,\"no\":false,\"nothing\":null,\"s\":null}"},
	{"flat array", w_flat_array,
	 "[1,\"two\",3.5,false,null,{\"r\":[1,2]},null]"},
	{"nested", w_nested,
	 "{\"a\":[1,{\"b\":[],\"c\":{}},[],2],\"d\":{\"e\":3},\"f\":\"last\"}"},
	{"list", w_list,
	 "{\"items\":[{\"i\":0,\"tracks\":[],\"meta\":{}},"
	 "{\"i\":1,\"tracks\":[0],\"meta\":null},"
	 "{\"i\":2,\"tracks\":[0,1],\"meta\":{}}],\"total\":3}"},
	{"arrays of arrays", w_arrays_of_arrays, "[[[0]],[[0],[1]],[[0],[1],[2]]]"},
	{"deep", w_deep,
	 "[0,[1,[2,[3,[4,[5,[6,[7,[8,[9,[10,[11,[12,[13,[14,0],-1],-2],-3],-4],"
	 "-5],-6],-7],-8],-9],-10],-11],-12],-13],-14]"},
	{"long keys", w_long_keys,
	 "{\"" K69 "\":1,\"a\":2,\"" K68 "\":3,\"" K100 "\":{\"" K100 "\":[]}}"},
	{"key value kinds", w_key_value_kinds,
	 "{\"t\":\"2026-11-24T05:31:00.123Z\",\"t0\":null,\"d\":0.25,\"nan\":null,"
	 "\"raw\":[true,{\"x\":null}],\"rawnull\":null,"
	 "\"min\":-9223372036854775808}"},
	{"top-level string", w_top_string, "\"top\""},
	{"top-level int", w_top_int, "-7"},
	{"top-level null time", w_top_null_time, "null"},
};

static void test_structure(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(structure_cases) / sizeof(structure_cases[0]); i++) {
		char *got = render(structure_cases[i].fn);
		json_t *jgot, *jwant;

		if (strcmp(got, structure_cases[i].want) != 0)
			fail_msg("%s:\n got  %s\n want %s", structure_cases[i].name,
				 got, structure_cases[i].want);
		jgot = parse(got);
		jwant = parse(structure_cases[i].want);
		if (!json_equal(jgot, jwant))
			fail_msg("%s: parsed values differ", structure_cases[i].name);
		json_decref(jgot);
		json_decref(jwant);
		free(got);
	}
}

/* ---- strings ------------------------------------------------------------- */

static const struct {
	const char *in;
	const char *want; /* the escaped literal, quotes included */
} string_cases[] = {
	{"", "\"\""},
	{"plain", "\"plain\""},
	{"say \"hi\"", "\"say \\\"hi\\\"\""},
	{"C:\\path\\", "\"C:\\\\path\\\\\""},
	{"\"", "\"\\\"\""},
	{"\\", "\"\\\\\""},
	{"a\nb", "\"a\\nb\""},
	{"\r\n\t", "\"\\r\\n\\t\""},
	{"\b\f", "\"\\b\\f\""},
	{"\x01", "\"\\u0001\""},
	{"x\x1fy", "\"x\\u001fy\""},
	{"\x0b\x0e\x10\x1a\x1b", "\"\\u000b\\u000e\\u0010\\u001a\\u001b\""},
	{"\x7f", "\"\\u007f\""},        /* DEL: legal raw, escaped for logs */
	{"a/b</script>", "\"a/b</script>\""},
	{"\xc3\xa9t\xc3\xa9", "\"\xc3\xa9t\xc3\xa9\""},           /* été */
	{"\xe4\xb8\xad\xe6\x96\x87", "\"\xe4\xb8\xad\xe6\x96\x87\""}, /* 中文 */
	{"\xf0\x9f\x8e\xa5 rec", "\"\xf0\x9f\x8e\xa5 rec\""},     /* 🎥 */
	{"\xe2\x80\xa8", "\"\xe2\x80\xa8\""},                     /* U+2028 */
	{"\xc2\x85", "\"\\u0085\""},                           /* C1 NEL: escaped */
	{"\xc2\xa0", "\"\xc2\xa0\""},                             /* U+00A0 as is */
	{"end\\\"", "\"end\\\\\\\"\""},
	{"\"\"\"", "\"\\\"\\\"\\\"\""},
	{"mixed \xc3\xa9\n\"\x02\\", "\"mixed \xc3\xa9\\n\\\"\\u0002\\\\\""},
};

/* Invalid UTF-8 still yields valid JSON: each bad byte is \ufffd. */
static void test_invalid_utf8(void **state)
{
	static const struct {
		const char *in, *want;
	} bad[] = {
		{"a\xff" "b", "\"a\\ufffdb\""},
		{"\xc0\xaf", "\"\\ufffd\\ufffd\""},
		{"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},
		{"cut\xe2\x82", "\"cut\\ufffd\\ufffd\""},
	};
	vtp_buf b;
	vtp_jw w;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j;

		vtp_buf_init(&b, 1024);
		vtp_jw_init(&w, &b);
		vtp_jw_string(&w, bad[i].in);
		if (strcmp(b.data, bad[i].want) != 0)
			fail_msg("bad %zu: got %s want %s", i, b.data, bad[i].want);
		j = json_loads(b.data, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		json_decref(j);
		vtp_buf_free(&b);
	}
}

static size_t current_string;

static void w_one_string_case(vtp_jw *w)
{
	vtp_jw_string(w, string_cases[current_string].in);
}

static void w_string_in_context(vtp_jw *w)
{
	vtp_jw_array_begin(w);
	vtp_jw_string(w, string_cases[current_string].in);
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "k");
	vtp_jw_string(w, string_cases[current_string].in);
	vtp_jw_object_end(w);
	vtp_jw_array_end(w);
}

static void test_strings(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(string_cases) / sizeof(string_cases[0]); i++) {
		char *got, *want_ctx;
		json_t *j;
		size_t wl = strlen(string_cases[i].want) * 2 + 16;

		current_string = i;
		got = render(w_one_string_case);
		if (strcmp(got, string_cases[i].want) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, got,
				 string_cases[i].want);
		/* jansson decodes it back to the same bytes */
		j = parse(got);
		assert_true(json_is_string(j));
		assert_int_equal(json_string_length(j), strlen(string_cases[i].in));
		assert_string_equal(json_string_value(j), string_cases[i].in);
		json_decref(j);
		free(got);

		got = render(w_string_in_context);
		want_ctx = malloc(wl);
		assert_non_null(want_ctx);
		snprintf(want_ctx, wl, "[%s,{\"k\":%s}]", string_cases[i].want,
			 string_cases[i].want);
		assert_string_equal(got, want_ctx);
		j = parse(got);
		assert_string_equal(json_string_value(json_array_get(j, 0)),
				    string_cases[i].in);
		assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "k")),
				    string_cases[i].in);
		json_decref(j);
		free(want_ctx);
		free(got);
	}
}

/* Every byte 0x01..0x7f alone and in a run: the output always decodes to
 * the input (checks the run/escape bookkeeping at each boundary). */
static void w_all_ascii(vtp_jw *w)
{
	char s[3 * 127 + 1];
	size_t k = 0;

	vtp_jw_array_begin(w);
	for (int c = 1; c < 128; c++) {
		char one[2] = {(char)c, 0};

		vtp_jw_string(w, one);
		s[k++] = 'a';
		s[k++] = (char)c;
		s[k++] = (char)c;
	}
	s[k] = '\0';
	vtp_jw_string(w, s);
	vtp_jw_array_end(w);
}

static void test_all_ascii(void **state)
{
	char *got = render(w_all_ascii);
	json_t *j = parse(got);
	char run[3 * 127 + 1];
	size_t k = 0;

	(void)state;
	assert_int_equal(json_array_size(j), 128);
	for (int c = 1; c < 128; c++) {
		const char *s = json_string_value(json_array_get(j, (size_t)c - 1));

		assert_non_null(s);
		assert_int_equal(strlen(s), 1);
		assert_int_equal((unsigned char)s[0], c);
		run[k++] = 'a';
		run[k++] = (char)c;
		run[k++] = (char)c;
	}
	run[k] = '\0';
	assert_string_equal(json_string_value(json_array_get(j, 127)), run);
	/* no raw control bytes in the output */
	for (const char *p = got; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
	json_decref(j);
	free(got);
}

/* ---- numbers ------------------------------------------------------------- */

static const struct {
	long long v;
	const char *want;
} int_cases[] = {
	{0, "0"},
	{1, "1"},
	{-1, "-1"},
	{2000, "2000"},
	{INT_MAX, "2147483647"},
	{(long long)INT_MAX + 1, "2147483648"},
	{INT_MIN, "-2147483648"},
	{LLONG_MAX, "9223372036854775807"},
	{LLONG_MIN, "-9223372036854775808"},
	{LLONG_MIN + 1, "-9223372036854775807"},
};

static long long current_int;

static void w_one_int(vtp_jw *w)
{
	vtp_jw_array_begin(w);
	vtp_jw_int(w, current_int);
	vtp_jw_int(w, current_int);
	vtp_jw_array_end(w);
}

static void test_ints(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
		char want[64];
		char *got;
		json_t *j;

		current_int = int_cases[i].v;
		got = render(w_one_int);
		snprintf(want, sizeof(want), "[%s,%s]", int_cases[i].want,
			 int_cases[i].want);
		assert_string_equal(got, want);
		j = parse(got);
		assert_true(json_is_integer(json_array_get(j, 0)));
		assert_true(json_integer_value(json_array_get(j, 1)) == int_cases[i].v);
		json_decref(j);
		free(got);
	}
}

static const struct {
	double v;
	const char *want; /* NULL: any text that round-trips, checked below */
} double_cases[] = {
	{0.0, "0.0"},
	{-0.0, "-0.0"},
	{3.0, "3.0"},
	{-3.0, "-3.0"},
	{1.5, "1.5"},
	{0.25, "0.25"},
	{0.1, "0.1"},
	{-2.5, "-2.5"},
	{123.456, "123.456"},
	{0.1 + 0.2, "0.30000000000000004"},
	{1.0 / 3.0, "0.3333333333333333"},
	{2.0 / 3.0, "0.6666666666666666"},
	{1e300, "1e+300"},
	{-1e-300, "-1e-300"},
	{5e-324, "5e-324"},                 /* smallest subnormal */
	{DBL_MAX, "1.7976931348623157e+308"},
	{DBL_MIN, "2.2250738585072014e-308"},
	{DBL_EPSILON, "2.220446049250313e-16"},
	{12.0, NULL},                       /* "12.0" or "1.2e+01": a real either way */
	{100.0, NULL},
	{1e15, NULL},
	{9007199254740993.0, NULL},         /* 2^53 + 1 rounds to 2^53 */
	{123456789.125, "123456789.125"},
	{29.97, "29.97"},
	{59.94005994005994, "59.94005994005994"},
};

static double current_double;

static void w_one_double(vtp_jw *w)
{
	vtp_jw_double(w, current_double);
}

/* The text is a JSON real that jansson reads back to exactly v, and no %g
 * form with fewer significant digits would have done. */
static void check_double_text(double v, const char *text)
{
	json_t *j = parse(text);
	int digits = 0;

	if (!json_is_real(j))
		fail_msg("%.17g written as %s: not a real", v, text);
	if (!(json_real_value(j) == v) || signbit(json_real_value(j)) != signbit(v))
		fail_msg("%.17g written as %s reads back as %.17g", v, text,
			 json_real_value(j));
	json_decref(j);
	/* significant digits in the mantissa: from its first to its last
	 * non-zero digit (so "100.0" has one, like "1e+02") */
	{
		int seen = 0, since_last = 0;

		for (const char *p = text; *p && *p != 'e' && *p != 'E'; p++) {
			if (*p < '0' || *p > '9')
				continue;
			if (*p != '0') {
				digits = seen + since_last + 1;
				seen = digits;
				since_last = 0;
			} else if (seen) {
				since_last++;
			}
		}
	}
	if (digits > 1 && v != 0) {
		char shorter[400];

		snprintf(shorter, sizeof(shorter), "%.*g", digits - 1, v);
		if (strtod(shorter, NULL) == v)
			fail_msg("%.17g written as %s, but %s is shorter", v, text,
				 shorter);
	}
}

static void test_doubles(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(double_cases) / sizeof(double_cases[0]); i++) {
		char *got;

		current_double = double_cases[i].v;
		got = render(w_one_double);
		if (double_cases[i].want && strcmp(got, double_cases[i].want) != 0)
			fail_msg("case %zu (%.17g): got %s, want %s", i,
				 double_cases[i].v, got, double_cases[i].want);
		check_double_text(double_cases[i].v, got);
		free(got);
	}
}

static void w_non_finite(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "nan");
	vtp_jw_double(w, NAN);
	vtp_jw_key(w, "negnan");
	vtp_jw_double(w, -NAN);
	vtp_jw_key(w, "inf");
	vtp_jw_double(w, INFINITY);
	vtp_jw_key(w, "neginf");
	vtp_jw_double(w, -INFINITY);
	vtp_jw_key(w, "after");
	vtp_jw_double(w, 1.0);
	vtp_jw_object_end(w);
}

static void test_non_finite(void **state)
{
	char *got;

	(void)state;
	got = render(w_non_finite);
	assert_string_equal(got, "{\"nan\":null,\"negnan\":null,\"inf\":null,"
				 "\"neginf\":null,\"after\":1.0}");
	free(got);
}

/* Random bit patterns: every finite double round-trips exactly. */
static void test_doubles_random(void **state)
{
	int checked = 0;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		uint64_t bits;
		double v;
		char *got;

		vtp_random_bytes(&bits, sizeof(bits));
		if (i % 2) /* also plenty of "ordinary" magnitudes */
			bits = (bits & ~(UINT64_C(0x7ff) << 52)) |
			       ((UINT64_C(1023) - 30 + bits % 61) << 52);
		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v))
			continue;
		current_double = v;
		got = render(w_one_double);
		check_double_text(v, got);
		free(got);
		checked++;
	}
	assert_true(checked > 19000);
}

/* ---- time ---------------------------------------------------------------- */

static const struct {
	int64_t ms;
	const char *want;
} time_cases[] = {
	{0, "null"},
	{1, "\"1970-01-01T00:00:00.001Z\""},
	{T_2026, "\"2026-11-24T05:31:00.123Z\""},
	{INT64_C(1795000000000), "\"2026-11-18T11:06:40.000Z\""},
	{INT64_C(951868799999), "\"2000-02-29T23:59:59.999Z\""},
	{INT64_C(253402300799999), "\"9999-12-31T23:59:59.999Z\""},
	{-1, "\"1969-12-31T23:59:59.999Z\""},
};

static int64_t current_time;

static void w_one_time(vtp_jw *w)
{
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "a");
	vtp_jw_time(w, current_time);
	vtp_jw_key(w, "b");
	vtp_jw_time(w, current_time);
	vtp_jw_object_end(w);
}

static void test_times(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
		char want[128];
		char *got;
		json_t *j;

		current_time = time_cases[i].ms;
		got = render(w_one_time);
		snprintf(want, sizeof(want), "{\"a\":%s,\"b\":%s}", time_cases[i].want,
			 time_cases[i].want);
		assert_string_equal(got, want);
		j = parse(got);
		if (time_cases[i].ms == 0)
			assert_true(json_is_null(json_object_get(j, "a")));
		else
			assert_true(json_is_string(json_object_get(j, "b")));
		json_decref(j);
		free(got);
	}
}

/* ---- raw ----------------------------------------------------------------- */

static void w_raw(vtp_jw *w)
{
	vtp_jw_array_begin(w);
	vtp_jw_raw(w, "{}");
	vtp_jw_raw(w, "{\"resolution\":{\"w\":1280,\"h\":720},\"tags\":[\"a\",\"b\"]}");
	vtp_jw_raw(w, NULL);
	vtp_jw_raw(w, "\"s\"");
	vtp_jw_raw(w, "12.5");
	vtp_jw_object_begin(w);
	vtp_jw_key(w, "m");
	vtp_jw_raw(w, "[1,[2]]");
	vtp_jw_key(w, "n");
	vtp_jw_raw(w, NULL);
	vtp_jw_object_end(w);
	vtp_jw_array_end(w);
}

static void test_raw(void **state)
{
	char *got = render(w_raw);
	const char *want =
		"[{},{\"resolution\":{\"w\":1280,\"h\":720},\"tags\":[\"a\",\"b\"]},"
		"null,\"s\",12.5,{\"m\":[1,[2]],\"n\":null}]";
	json_t *jgot, *jwant;

	(void)state;
	assert_string_equal(got, want);
	jgot = parse(got);
	jwant = parse(want);
	assert_true(json_equal(jgot, jwant));
	json_decref(jgot);
	json_decref(jwant);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_all_ascii),
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_doubles),
		cmocka_unit_test(test_non_finite),
		cmocka_unit_test(test_doubles_random),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
