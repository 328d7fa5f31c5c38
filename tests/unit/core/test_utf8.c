/* UTF-8 validation and sanitising (src/core/utf8.c): table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/mem.h"
#include "core/utf8.h"

static const struct {
	const char *in;
	bool valid;     /* vtp_utf8_valid(in, false) */
	bool printable; /* vtp_utf8_valid(in, true) */
	const char *clean; /* vtp_utf8_sanitize(in, 64) */
} cases[] = {
	{"", true, true, ""},
	{"plain", true, true, "plain"},
	{"caf\xc3\xa9 \xf0\x9f\x8e\x93", true, true, "caf\xc3\xa9 \xf0\x9f\x8e\x93"},
	{"a\nb", true, false, "a\xef\xbf\xbd" "b"},
	{"esc\x1b[31m", true, false, "esc\xef\xbf\xbd[31m"},
	{"del\x7f", true, false, "del\xef\xbf\xbd"},
	{"nel\xc2\x85", true, false, "nel\xef\xbf\xbd"},          /* C1 NEL */
	{"csi\xc2\x9b", true, false, "csi\xef\xbf\xbd"},          /* C1 CSI */
	{"nbsp\xc2\xa0", true, true, "nbsp\xc2\xa0"},             /* first non-control */
	{"bad\xff", false, false, "bad\xef\xbf\xbd"},
	{"over\xc0\xaf", false, false, "over\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong '/' */
	{"sur\xed\xa0\x80", false, false, "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	{"big\xf4\x90\x80\x80", false, false,
	 "big\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  /* > U+10FFFF */
	{"cut\xe2\x82", false, false, "cut\xef\xbf\xbd\xef\xbf\xbd"},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *clean = vtp_utf8_sanitize(cases[i].in, 64);

		if (vtp_utf8_valid(cases[i].in, false) != cases[i].valid)
			fail_msg("case %zu: valid", i);
		if (vtp_utf8_valid(cases[i].in, true) != cases[i].printable)
			fail_msg("case %zu: printable", i);
		if (strcmp(clean, cases[i].clean) != 0)
			fail_msg("case %zu: sanitized to '%s'", i, clean);
		assert_true(vtp_utf8_valid(clean, true));
		vtp_free(clean);
	}
}

static void test_sanitize_cuts_at_character_boundary(void **state)
{
	char *s;

	(void)state;
	s = vtp_utf8_sanitize("\xc3\xa9\xc3\xa9\xc3\xa9", 5); /* 3 x 2 bytes into 5 */
	assert_string_equal(s, "\xc3\xa9\xc3\xa9");
	vtp_free(s);
	s = vtp_utf8_sanitize("abc", 0);
	assert_string_equal(s, "");
	vtp_free(s);
	assert_null(vtp_utf8_sanitize(NULL, 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_sanitize_cuts_at_character_boundary),
	};

	return cmocka_run_group_tests_name("core_utf8", tests, NULL, NULL);
}
