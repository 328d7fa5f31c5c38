/* Tests for src/auth/mediatoken.c: signed media URL tokens. A token made
 * for (scope, recording, user, exp) verifies for exactly that recording
 * until exp, gives back the user and scope, and every change to it, or a
 * token made with another key, is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "core/error.h"

#define NOW 1800000000LL
#define REC "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"
#define OTHER_REC "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6c"
#define USER "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN (sizeof(KEY) - 1)
static const unsigned char OTHER_KEY[] = "fedcba9876543210fedcba9876543210";

static int verify(const char *tok, const char *rec, int64_t now, const char **reason)
{
	char user[VTP_UUID_BUFLEN];
	vtp_media_scope scope;

	return vtp_media_token_verify(KEY, KEYLEN, tok, rec, now, user, &scope, reason);
}

static void test_roundtrip(void **state)
{
	char tok[VTP_MEDIA_TOKEN_BUFLEN], user[VTP_UUID_BUFLEN];
	const char *reason = "x";
	vtp_media_scope scope = VTP_MEDIA_VIEW;

	(void)state;
	vtp_media_token_sign(KEY, KEYLEN, VTP_MEDIA_DOWNLOAD, REC, USER, NOW + 3600, tok);
	assert_int_equal(strlen(tok), 2 + 32 + 1 + 10 + 1 + 32);
	assert_true(strncmp(tok, "d.3f2504e04f8941d39a0c0305e82c3301.1800003600.", 46) == 0);
	for (const char *p = tok; *p; p++) /* nothing to escape in a URL or a playlist */
		assert_true(strchr("0123456789abcdef.d", *p) != NULL);
	assert_int_equal(vtp_media_token_verify(KEY, KEYLEN, tok, REC, NOW, user, &scope, &reason), 0);
	assert_string_equal(user, USER);
	assert_int_equal(scope, VTP_MEDIA_DOWNLOAD);
	assert_null(reason);
	/* upper-case ids name the same recording */
	assert_int_equal(verify(tok, "0192A3B4-C5D6-7E8F-9A0B-1C2D3E4F5A6B", NOW, &reason), 0);
	vtp_media_token_sign(KEY, KEYLEN, VTP_MEDIA_VIEW, REC, USER, NOW + 3600, tok);
	assert_int_equal(vtp_media_token_verify(KEY, KEYLEN, tok, REC, NOW, user, &scope, &reason), 0);
	assert_int_equal(scope, VTP_MEDIA_VIEW);
}

static void test_refused(void **state)
{
	char tok[VTP_MEDIA_TOKEN_BUFLEN], bad[VTP_MEDIA_TOKEN_BUFLEN + 8];
	const char *reason = NULL;

	(void)state;
	vtp_media_token_sign(KEY, KEYLEN, VTP_MEDIA_DOWNLOAD, REC, USER, NOW + 3600, tok);
	/* expired, at and after exp */
	assert_int_equal(verify(tok, REC, NOW + 3600, &reason), VTP_EUNAUTH);
	assert_string_equal(reason, "expired");
	assert_int_equal(verify(tok, REC, NOW + 99999, &reason), VTP_EUNAUTH);
	/* another recording */
	assert_int_equal(verify(tok, OTHER_REC, NOW, &reason), VTP_EUNAUTH);
	assert_string_equal(reason, "bad_signature");
	assert_int_equal(verify(tok, "not-a-uuid", NOW, &reason), VTP_EUNAUTH);
	/* every single character changed */
	for (size_t i = 0; i < strlen(tok); i++) {
		snprintf(bad, sizeof(bad), "%s", tok);
		bad[i] = bad[i] == '1' ? '2' : '1';
		assert_int_equal(verify(bad, REC, NOW, &reason), VTP_EUNAUTH);
	}
	/* the scope swapped */
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[0] = 'v';
	assert_int_equal(verify(bad, REC, NOW, &reason), VTP_EUNAUTH);
	assert_string_equal(reason, "bad_signature");
	/* another key */
	vtp_media_token_sign(OTHER_KEY, KEYLEN, VTP_MEDIA_DOWNLOAD, REC, USER, NOW + 3600, bad);
	assert_int_equal(verify(bad, REC, NOW, &reason), VTP_EUNAUTH);
	/* shapes */
	static const char *const shapes[] = {
		"", "d", "d.", "x.3f2504e04f8941d39a0c0305e82c3301.1800003600.00000000000000000000000000000000",
		"d.3f2504e04f8941d39a0c0305e82c330.1800003600.00000000000000000000000000000000",
		"d.3f2504e04f8941d39a0c0305e82c3301.01800003600.00000000000000000000000000000000",
		"d.3f2504e04f8941d39a0c0305e82c3301.-1800003600.00000000000000000000000000000000",
		"d.3f2504e04f8941d39a0c0305e82c3301.1800003600.0000000000000000000000000000000",
		"d.3f2504e04f8941d39a0c0305e82c3301.1800003600.000000000000000000000000000000000",
		"d.3F2504E04F8941D39A0C0305E82C3301.1800003600.00000000000000000000000000000000",
		"d.3f2504e04f8941d39a0c0305e82c3301.99999999999999999999.00000000000000000000000000000000",
		"d.3f2504e04f8941d39a0c0305e82c3301.1800003600x00000000000000000000000000000000",
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		assert_int_equal(verify(shapes[i], REC, NOW, &reason), VTP_EUNAUTH);
		assert_string_equal(reason, "malformed");
	}
	assert_int_equal(verify(NULL, REC, NOW, &reason), VTP_EUNAUTH);
	/* a trailing byte */
	snprintf(bad, sizeof(bad), "%s0", tok);
	assert_int_equal(verify(bad, REC, NOW, &reason), VTP_EUNAUTH);
}

static void test_expiry_steps(void **state)
{
	(void)state;
	/* at least ttl away, on a 5-minute step, the same for 5 minutes */
	assert_int_equal(vtp_media_token_expiry(1800000000, 3600), 1800003600);
	assert_int_equal(vtp_media_token_expiry(1800000001, 3600), 1800003900);
	assert_int_equal(vtp_media_token_expiry(1800000299, 3600), 1800003900);
	for (int64_t now = NOW; now < NOW + 1000; now += 7) {
		int64_t e = vtp_media_token_expiry(now, 3600);

		assert_true(e >= now + 3600 && e < now + 3600 + 300);
		assert_int_equal(e % 300, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_expiry_steps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
