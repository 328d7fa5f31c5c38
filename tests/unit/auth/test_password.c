/* Tests for src/auth/password.c: argon2id hashing, verification and the
 * refusal of everything that is not a well-formed argon2id hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "core/error.h"
#include "core/mem.h"

static const char PREFIX[] = "$argon2id$v=19$m=19456,t=2,p=1$";

static void test_hash_and_verify(void **state)
{
	char *a = NULL, *b = NULL;

	assert_int_equal(vtp_password_hash("correct horse battery staple", &a), 0);
	assert_non_null(a);
	assert_memory_equal(a, PREFIX, strlen(PREFIX));
	assert_true(vtp_password_verify(a, "correct horse battery staple"));
	assert_false(vtp_password_verify(a, "correct horse battery stapl"));
	assert_false(vtp_password_verify(a, "correct horse battery staple "));
	assert_false(vtp_password_verify(a, "Correct horse battery staple"));
	assert_false(vtp_password_verify(a, ""));
	assert_false(vtp_password_verify(a, NULL));

	/* a fresh salt each time */
	assert_int_equal(vtp_password_hash("correct horse battery staple", &b), 0);
	assert_string_not_equal(a, b);
	assert_true(vtp_password_verify(b, "correct horse battery staple"));
	vtp_free(a);
	vtp_free(b);
}

static void test_unicode_and_long(void **state)
{
	char *h = NULL;
	char long_pw[10001];

	assert_int_equal(vtp_password_hash("pässwörd ✓", &h), 0);
	assert_true(vtp_password_verify(h, "pässwörd ✓"));
	assert_false(vtp_password_verify(h, "passwörd ✓"));
	vtp_free(h);

	memset(long_pw, 'a', sizeof(long_pw) - 1);
	long_pw[sizeof(long_pw) - 1] = '\0';
	assert_int_equal(vtp_password_hash(long_pw, &h), 0);
	assert_true(vtp_password_verify(h, long_pw));
	long_pw[9999] = 'b';
	assert_false(vtp_password_verify(h, long_pw));
	vtp_free(h);
}

static void test_empty(void **state)
{
	char *h = (char *)"x";

	assert_int_equal(vtp_password_hash(NULL, &h), VTP_EINVAL);
	assert_null(h);
	assert_int_equal(vtp_password_hash("x", NULL), VTP_EINVAL);
	assert_false(vtp_password_verify(NULL, "x"));
	assert_false(vtp_password_verify("", "x"));
	assert_false(vtp_password_verify("", ""));
	assert_false(vtp_password_verify(NULL, NULL));

	/* the empty password is hashed like any other (length rules live in
	 * the caller) */
	assert_int_equal(vtp_password_hash("", &h), 0);
	assert_true(vtp_password_verify(h, ""));
	assert_false(vtp_password_verify(h, " "));
	vtp_free(h);
}

static void test_tampered(void **state)
{
	char *h = NULL, *t;
	size_t len, salt_at;

	assert_int_equal(vtp_password_hash("secret", &h), 0);
	len = strlen(h);
	salt_at = strlen(PREFIX);

	/* each character of salt and hash matters */
	for (size_t i = salt_at; i < len; i += 7) {
		if (h[i] == '$')
			continue;
		t = vtp_strdup(h);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_false(vtp_password_verify(t, "secret"));
		vtp_free(t);
	}
	/* truncated */
	t = vtp_strdup(h);
	t[len - 5] = '\0';
	assert_false(vtp_password_verify(t, "secret"));
	vtp_free(t);

	/* parameters changed: same salt and hash, other cost */
	{
		static const char *const swaps[][2] = {
			{"m=19456", "m=19457"},
			{"t=2", "t=3"},
			{"p=1", "p=2"},
			{"v=19", "v=16"},
		};

		for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
			char buf[256];
			const char *at = strstr(h, swaps[i][0]);
			int n;

			assert_non_null(at);
			n = snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - h), h,
				     swaps[i][1], at + strlen(swaps[i][0]));
			assert_true(n > 0 && (size_t)n < sizeof(buf));
			assert_false(vtp_password_verify(buf, "secret"));
		}
	}
	assert_true(vtp_password_verify(h, "secret"));
	vtp_free(h);
}

static void test_not_argon2id(void **state)
{
	char i_hash[256], d_hash[256];
	const unsigned char salt[16] = "0123456789abcdef";
	static const char *const others[] = {
		"secret",
		"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
		"$6$saltsalt$abcdefghijklmnop",
		"$argon2$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$ARGON2ID$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		" $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$argon2id$",
		"$argon2id$v=19$",
		"$argon2id$v=19$m=19456,t=2,p=1$",
		"$argon2id$v=19$m=19456,t=2,p=1$$",
		"$argon2id$v=19$m=,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$argon2id$v=19$m=-1,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$argon2id$v=19$m=+19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		/* absurd costs must be refused before any work is done */
		"$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=255$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
		"$argon2id$v=19$m=99999999999,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
	};

	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (vtp_password_verify(others[i], "secret"))
			fail_msg("accepted %s", others[i]);

	/* real argon2i / argon2d hashes of the right password */
	assert_int_equal(argon2i_hash_encoded(2, 19456, 1, "secret", 6, salt,
					      sizeof(salt), 32, i_hash,
					      sizeof(i_hash)), ARGON2_OK);
	assert_int_equal(argon2d_hash_encoded(2, 19456, 1, "secret", 6, salt,
					      sizeof(salt), 32, d_hash,
					      sizeof(d_hash)), ARGON2_OK);
	assert_int_equal(argon2_verify(i_hash, "secret", 6, Argon2_i), ARGON2_OK);
	assert_false(vtp_password_verify(i_hash, "secret"));
	assert_false(vtp_password_verify(d_hash, "secret"));

	/* the argon2i hash relabelled as argon2id does not verify either */
	{
		char relabelled[300];

		snprintf(relabelled, sizeof(relabelled), "$argon2id$%s",
			 i_hash + strlen("$argon2i$"));
		assert_false(vtp_password_verify(relabelled, "secret"));
	}
}

static void test_burn(void **state)
{
	/* Must neither crash nor accept anything; runs the dummy setup once. */
	vtp_password_burn("secret");
	vtp_password_burn("");
	vtp_password_burn(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_unicode_and_long),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_not_argon2id),
		cmocka_unit_test(test_burn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
