/* Tests for src/auth/jwt.c: the sign/verify roundtrip and every way a token
 * must be refused. Hostile tokens are forged here with OpenSSL so that
 * their signatures are valid under the algorithm they claim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "core/error.h"
#include "core/mem.h"

#define NOW 1800000000
#define SUB "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define GOOD_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define GOOD_CLAIMS "{\"sub\":\"" SUB "\",\"iat\":1800000000,\"exp\":1800003600}"

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN (sizeof(KEY) - 1)
static const unsigned char OTHER_KEY[] = "fedcba9876543210fedcba9876543210";

/* ---- forging helpers ----------------------------------------------------- */

static char *b64url(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (int i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
}

static char *b64url_str(const char *s)
{
	return b64url((const unsigned char *)s, strlen(s));
}

/* header.payload.signature where the signature is HMAC-<md> under key, or
 * empty when md is NULL. */
static char *forge(const char *header, const char *payload, const EVP_MD *md,
		   const unsigned char *key, size_t keylen)
{
	char *h = b64url_str(header), *p = b64url_str(payload), *s = NULL;
	size_t len = strlen(h) + strlen(p) + 2;
	char *input = malloc(len), *token;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	snprintf(input, len, "%s.%s", h, p);
	if (md) {
		assert_non_null(HMAC(md, key, (int)keylen,
				     (const unsigned char *)input, strlen(input),
				     mac, &maclen));
		s = b64url(mac, maclen);
	}
	len = strlen(input) + (s ? strlen(s) : 0) + 2;
	token = malloc(len);
	snprintf(token, len, "%s.%s", input, s ? s : "");
	free(h);
	free(p);
	free(s);
	free(input);
	return token;
}

static int verify(const char *token, const char **reason, char sub[VTP_UUID_BUFLEN])
{
	return vtp_jwt_verify(KEY, KEYLEN, token, NOW, sub, NULL, reason);
}

static void expect_reason(const char *token, const char *want)
{
	char sub[VTP_UUID_BUFLEN] = "unchanged";
	const char *reason = NULL;

	assert_int_equal(verify(token, &reason, sub), VTP_EUNAUTH);
	assert_non_null(reason);
	if (strcmp(reason, want) != 0)
		fail_msg("token %.80s: reason %s, want %s", token ? token : "(null)",
			 reason, want);
	assert_string_equal(sub, "");
}

/* ---- tests --------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
	char *token = NULL, sub[VTP_UUID_BUFLEN];
	const char *reason = "x";
	int64_t exp = 0;
	char *dot;

	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN, SUB, NOW, 3600, &token), 0);
	assert_non_null(token);
	/* the header is HS256/JWT, byte for byte what we expect */
	dot = strchr(token, '.');
	assert_non_null(dot);
	{
		char *h = b64url_str("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
		char *h2 = b64url_str("{\"typ\":\"JWT\",\"alg\":\"HS256\"}");
		size_t hl = (size_t)(dot - token);

		assert_true((strlen(h) == hl && memcmp(h, token, hl) == 0) ||
			    (strlen(h2) == hl && memcmp(h2, token, hl) == 0));
		free(h);
		free(h2);
	}
	assert_int_equal(vtp_jwt_verify(KEY, KEYLEN, token, NOW, sub, &exp, &reason), 0);
	assert_string_equal(sub, SUB);
	assert_int_equal(exp, NOW + 3600);
	assert_null(reason);
	/* one second before expiry still fine, at expiry not */
	assert_int_equal(vtp_jwt_verify(KEY, KEYLEN, token, NOW + 3599, sub, NULL, NULL), 0);
	assert_int_equal(vtp_jwt_verify(KEY, KEYLEN, token, NOW + 3600, sub, NULL, &reason),
			 VTP_EUNAUTH);
	assert_string_equal(reason, "expired");
	vtp_free(token);
}

static void test_forged_roundtrip_and_uppercase_sub(void **state)
{
	char *t = forge(GOOD_HEADER, GOOD_CLAIMS, EVP_sha256(), KEY, KEYLEN);
	char *t2 = forge("{\"alg\":\"HS256\"}",
			 "{\"sub\":\"3F2504E0-4F89-41D3-9A0C-0305E82C3301\",\"exp\":1800000001}",
			 EVP_sha256(), KEY, KEYLEN);
	char sub[VTP_UUID_BUFLEN];

	assert_int_equal(verify(t, NULL, sub), 0);
	assert_string_equal(sub, SUB);
	assert_int_equal(verify(t2, NULL, sub), 0);
	assert_string_equal(sub, SUB);
	free(t);
	free(t2);
}

static void test_sign_rejects_bad_input(void **state)
{
	char *token = (char *)"x";

	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN, "nope", NOW, 60, &token), VTP_EINVAL);
	assert_null(token);
	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN, NULL, NOW, 60, &token), VTP_EINVAL);
	assert_int_equal(vtp_jwt_sign(KEY, 0, SUB, NOW, 60, &token), VTP_EINVAL);
	assert_int_equal(vtp_jwt_sign(NULL, KEYLEN, SUB, NOW, 60, &token), VTP_EINVAL);
	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN, SUB, NOW, 0, &token), VTP_EINVAL);
	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN, SUB, INT64_MAX - 10, 60, &token),
			 VTP_EINVAL);
	assert_null(token);
}

struct forged_case {
	const char *name;
	const char *header;
	const char *claims;
	const char *md; /* OpenSSL digest name, NULL: empty signature */
	const char *want;
};

static const struct forged_case forged_cases[] = {
	/* claims */
	{"exp missing", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"iat\":1800000000}", "SHA256", "no_exp"},
	{"exp string", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":\"1800003600\"}", "SHA256", "no_exp"},
	{"exp real", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1800003600.0}", "SHA256", "no_exp"},
	{"exp null", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":null}", "SHA256", "no_exp"},
	{"exp true", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":true}", "SHA256", "no_exp"},
	{"expired", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1799999999}", "SHA256", "expired"},
	{"exp == now", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1800000000}", "SHA256", "expired"},
	{"exp negative", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":-1}", "SHA256", "expired"},
	{"nbf in the future", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":1800000001}", "SHA256", "not_yet_valid"},
	{"nbf far in the future", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":1800003000}", "SHA256", "not_yet_valid"},
	{"nbf string", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":\"0\"}", "SHA256", "bad_nbf"},
	{"nbf real", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":1.5}", "SHA256", "bad_nbf"},
	{"nbf null", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":null}", "SHA256", "bad_nbf"},
	{"sub missing", GOOD_HEADER, "{\"exp\":1800003600}", "SHA256", "bad_sub"},
	{"sub number", GOOD_HEADER, "{\"sub\":42,\"exp\":1800003600}", "SHA256", "bad_sub"},
	{"sub not uuid", GOOD_HEADER, "{\"sub\":\"admin\",\"exp\":1800003600}", "SHA256", "bad_sub"},
	{"sub uuid no dashes", GOOD_HEADER, "{\"sub\":\"3f2504e04f8941d39a0c0305e82c3301\",\"exp\":1800003600}", "SHA256", "bad_sub"},
	{"sub uuid braces", GOOD_HEADER, "{\"sub\":\"{" SUB "}\",\"exp\":1800003600}", "SHA256", "bad_sub"},
	{"sub embedded NUL", GOOD_HEADER, "{\"sub\":\"" SUB "\\u0000x\",\"exp\":1800003600}", "SHA256", "malformed"},
	{"claims not object", GOOD_HEADER, "[1,2,3]", "SHA256", "malformed"},
	{"claims not json", GOOD_HEADER, "sub=x", "SHA256", "malformed"},
	{"claims duplicate exp", GOOD_HEADER, "{\"sub\":\"" SUB "\",\"exp\":1,\"exp\":1800003600}", "SHA256", "malformed"},
	/* algorithms */
	{"alg none, no signature", "{\"alg\":\"none\"}", GOOD_CLAIMS, NULL, "bad_alg"},
	{"alg none typ JWT, no signature", "{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_CLAIMS, NULL, "bad_alg"},
	{"alg none with signature", "{\"alg\":\"none\"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg None", "{\"alg\":\"None\"}", GOOD_CLAIMS, NULL, "bad_alg"},
	{"alg NONE", "{\"alg\":\"NONE\"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg empty", "{\"alg\":\"\"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg missing", "{\"typ\":\"JWT\"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg null", "{\"alg\":null}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg number", "{\"alg\":256}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg lowercase", "{\"alg\":\"hs256\"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg trailing space", "{\"alg\":\"HS256 \"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg embedded NUL", "{\"alg\":\"HS256\\u0000\"}", GOOD_CLAIMS, "SHA256", "malformed"},
	{"alg HS384", "{\"alg\":\"HS384\",\"typ\":\"JWT\"}", GOOD_CLAIMS, "SHA384", "bad_alg"},
	{"alg HS512", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_CLAIMS, "SHA512", "bad_alg"},
	{"alg RS256 signed with HMAC (key confusion)", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"alg ES256", "{\"alg\":\"ES256\"}", GOOD_CLAIMS, "SHA256", "bad_alg"},
	{"header duplicate alg", "{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_CLAIMS, "SHA256", "malformed"},
	{"header crit", "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", GOOD_CLAIMS, "SHA256", "malformed"},
	{"header array", "[\"HS256\"]", GOOD_CLAIMS, "SHA256", "malformed"},
	{"header string", "\"HS256\"", GOOD_CLAIMS, "SHA256", "malformed"},
	{"header not json", "alg=HS256", GOOD_CLAIMS, "SHA256", "malformed"},
	{"header trailing garbage", "{\"alg\":\"HS256\"}x", GOOD_CLAIMS, "SHA256", "malformed"},
	{"HS256 with empty signature", GOOD_HEADER, GOOD_CLAIMS, NULL, "bad_signature"},
	{"HS256 header, HS512 signature", GOOD_HEADER, GOOD_CLAIMS, "SHA512", "bad_signature"},
};

static void test_forged_table(void **state)
{
	for (size_t i = 0; i < sizeof(forged_cases) / sizeof(forged_cases[0]); i++) {
		const struct forged_case *c = &forged_cases[i];
		const EVP_MD *md = c->md ? EVP_get_digestbyname(c->md) : NULL;
		char *t;
		char sub[VTP_UUID_BUFLEN];
		const char *reason = NULL;

		if (c->md)
			assert_non_null(md);
		t = forge(c->header, c->claims, md, KEY, KEYLEN);
		if (verify(t, &reason, sub) != VTP_EUNAUTH ||
		    strcmp(reason ? reason : "(null)", c->want) != 0)
			fail_msg("case \"%s\": reason %s, want %s", c->name,
				 reason ? reason : "(null)", c->want);
		free(t);
	}
}

/* nbf at or before now is accepted. */
static void test_nbf_reached(void **state)
{
	static const char *const claims[] = {
		"{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":1800000000}",
		"{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":1799999000}",
		"{\"sub\":\"" SUB "\",\"exp\":1800003600,\"nbf\":0}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		char *t = forge(GOOD_HEADER, claims[i], EVP_sha256(), KEY, KEYLEN);
		char sub[VTP_UUID_BUFLEN];
		const char *reason = NULL;

		if (verify(t, &reason, sub) != 0)
			fail_msg("claims %s refused: %s", claims[i], reason ? reason : "(null)");
		assert_string_equal(sub, SUB);
		free(t);
	}
}

static void test_wrong_key(void **state)
{
	char *t = NULL;

	assert_int_equal(vtp_jwt_sign(OTHER_KEY, sizeof(OTHER_KEY) - 1, SUB, NOW, 60, &t), 0);
	expect_reason(t, "bad_signature");
	/* a key that is a prefix of ours */
	vtp_free(t);
	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN - 1, SUB, NOW, 60, &t), 0);
	expect_reason(t, "bad_signature");
	vtp_free(t);
}

static char b64_swap(char c)
{
	return c == 'A' ? 'B' : 'A';
}

static void test_tampering(void **state)
{
	char *t = NULL, *copy;
	char *dot1, *dot2;
	size_t len;

	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN, SUB, NOW, 3600, &t), 0);
	len = strlen(t);
	dot1 = strchr(t, '.');
	dot2 = strchr(dot1 + 1, '.');

	/* one character in the middle of the payload */
	copy = vtp_strdup(t);
	copy[(dot1 - t) + 5] = b64_swap(copy[(dot1 - t) + 5]);
	expect_reason(copy, "bad_signature");
	vtp_free(copy);

	/* payload replaced by one with a longer exp, old signature kept */
	{
		char *p = b64url_str("{\"sub\":\"" SUB "\",\"iat\":1800000000,\"exp\":1900000000}");
		size_t n = (size_t)(dot1 - t) + 1 + strlen(p) + strlen(dot2) + 1;

		copy = malloc(n);
		snprintf(copy, n, "%.*s.%s%s", (int)(dot1 - t), t, p, dot2);
		expect_reason(copy, "bad_signature");
		free(copy);
		free(p);
	}

	/* one character in the middle of the signature */
	copy = vtp_strdup(t);
	copy[(dot2 - t) + 10] = b64_swap(copy[(dot2 - t) + 10]);
	expect_reason(copy, "bad_signature");
	vtp_free(copy);

	/* signature truncated, extended, or spelt with non-canonical bits */
	copy = vtp_strdup(t);
	copy[len - 1] = '\0';
	expect_reason(copy, "bad_signature");
	vtp_free(copy);
	{
		size_t n = len + 3;

		copy = malloc(n);
		snprintf(copy, n, "%sAA", t);
		expect_reason(copy, "bad_signature");
		free(copy);
	}
	copy = vtp_strdup(t);
	/* the last of 43 chars carries 4 bits + 2 unused: set an unused one */
	{
		const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		int v = (int)(strchr(alpha, copy[len - 1]) - alpha);

		copy[len - 1] = alpha[v ^ 1];
		expect_reason(copy, "bad_signature");
	}
	vtp_free(copy);
	vtp_free(t);
}

static void test_garbage(void **state)
{
	static const char *const cases[] = {
		"",
		".",
		"..",
		"...",
		"abc",
		"abc.def",
		"abc.def.ghi.jkl",
		"a.b.c.d",
		"!!!.@@@.###",
		"eyJhbGciOiJIUzI1NiJ9..sig",
		".eyJzdWIiOiJ4In0.sig",
		"eyJhbGciOiJIUzI1NiJ9=.eyJzdWIiOiJ4In0.sig",  /* padding */
		"eyJhbGciOiJIUzI1NiJ9 .eyJzdWIiOiJ4In0.sig",  /* space */
		"eyJhbGciOiJIUzI1NiJ9+.eyJzdWIiOiJ4In0.sig",  /* '+' is not base64url */
		"eyJhbGciOiJIUzI1NiJ9a.eyJzdWIiOiJ4In0.sig",  /* length % 4 == 1 */
		"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
	};
	char sub[VTP_UUID_BUFLEN];
	const char *reason;
	char *huge, *t = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_reason(cases[i], "malformed");

	reason = NULL;
	assert_int_equal(verify(NULL, &reason, sub), VTP_EUNAUTH);
	assert_string_equal(reason, "malformed");

	/* a validly signed but huge token */
	{
		size_t n = 9000;
		char *claims = malloc(n + 200);
		char *pad = malloc(n + 1);

		memset(pad, 'x', n);
		pad[n] = '\0';
		snprintf(claims, n + 200, "{\"sub\":\"%s\",\"exp\":1800003600,\"pad\":\"%s\"}", SUB, pad);
		huge = forge(GOOD_HEADER, claims, EVP_sha256(), KEY, KEYLEN);
		expect_reason(huge, "malformed");
		free(huge);
		free(claims);
		free(pad);
	}
	/* a megabyte of dots and letters */
	huge = malloc((1 << 20) + 1);
	for (size_t i = 0; i < (1 << 20); i++)
		huge[i] = i % 7 == 0 ? '.' : 'A';
	huge[1 << 20] = '\0';
	expect_reason(huge, "malformed");
	free(huge);

	/* NULL / empty key refuses even a good token */
	assert_int_equal(vtp_jwt_sign(KEY, KEYLEN, SUB, NOW, 60, &t), 0);
	assert_int_equal(vtp_jwt_verify(NULL, 0, t, NOW, sub, NULL, &reason), VTP_EUNAUTH);
	assert_int_equal(vtp_jwt_verify(KEY, 0, t, NOW, sub, NULL, &reason), VTP_EUNAUTH);
	vtp_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_forged_roundtrip_and_uppercase_sub),
		cmocka_unit_test(test_sign_rejects_bad_input),
		cmocka_unit_test(test_forged_table),
		cmocka_unit_test(test_nbf_reached),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
