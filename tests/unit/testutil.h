/* Helpers shared by the cmocka unit tests (include after <cmocka.h>). */
#ifndef VTP_TESTS_UNIT_TESTUTIL_H
#define VTP_TESTS_UNIT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Hex digits to bytes; spaces and '|' are separators for readability.
 * Fails the test on a bad digit, an odd count or more than cap bytes. */
static inline size_t vtp_test_unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v = 0;

		if (*s == ' ' || *s == '|')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			fail_msg("bad hex character '%c'", *s);
		if (hi < 0) {
			hi = v;
			continue;
		}
		assert_true(n < cap);
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	assert_int_equal(hi, -1);
	return n;
}

#endif
