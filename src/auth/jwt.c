/* HS256 JSON Web Tokens: signing through libjwt, and a defensive verify.
 * Before libjwt sees a token we split it ourselves (three strict base64url
 * parts, bounded length), require the header to be a JSON object with
 * "alg" exactly "HS256", and check the HMAC-SHA256 ourselves with a
 * constant-time compare (upstream libjwt 1.10.2 compares with strcmp; only
 * some distribution builds carry the CVE-2024-25189 fix). libjwt then
 * decodes and verifies the token again; the claims (exp: integer, in the
 * future; nbf when present: integer, not in the future; sub: a UUID) are
 * read from the payload we decoded. */
#include "auth/auth.h"

#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/random.h"

#define JWT_MAX_LEN 8192
#define HS256_LEN 32

/* Strict base64url (RFC 4648 §5) without padding: only [A-Za-z0-9_-],
 * length % 4 != 1 and unused trailing bits zero, so every byte string has
 * exactly one accepted spelling. `out` must hold len * 3 / 4 + 1 bytes;
 * the result is NUL-terminated for the JSON parser. */
static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

static bool b64url_decode(const char *in, size_t len, unsigned char *out,
			  size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if (len % 4 == 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* non-canonical trailing bits */
		return false;
	out[n] = '\0';
	*outlen = n;
	return true;
}

/* Decodes one part and parses it as a JSON object (duplicate keys are
 * refused, so no two parsers can disagree on which value counts). */
static json_t *decode_json_part(const char *in, size_t len)
{
	unsigned char *raw = vtp_malloc(len * 3 / 4 + 1);
	json_t *obj = NULL;
	size_t rawlen;

	if (!b64url_decode(in, len, raw, &rawlen))
		goto out;
	obj = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
	if (obj && !json_is_object(obj)) {
		json_decref(obj);
		obj = NULL;
	}
out:
	vtp_free(raw);
	return obj;
}

static bool hs256_signature_ok(const unsigned char *key, size_t keylen,
			       const char *signing_input, size_t signing_len,
			       const char *sig, size_t siglen)
{
	unsigned char want[EVP_MAX_MD_SIZE];
	unsigned char got[HS256_LEN + 3];
	unsigned int wantlen = 0;
	size_t gotlen = 0;

	/* 43 characters is the only spelling of a 32-byte HMAC. */
	if (siglen != 43 || !b64url_decode(sig, siglen, got, &gotlen) ||
	    gotlen != HS256_LEN)
		return false;
	if (!HMAC(EVP_sha256(), key, (int)keylen,
		  (const unsigned char *)signing_input, signing_len, want,
		  &wantlen) ||
	    wantlen != HS256_LEN)
		return false;
	return CRYPTO_memcmp(want, got, HS256_LEN) == 0;
}

int vtp_jwt_sign(const unsigned char *key, size_t keylen, const char *sub,
		 int64_t now_s, int64_t ttl_s, char **token)
{
	jwt_t *jwt = NULL;
	char *encoded = NULL;
	int rc = VTP_EINVAL;

	if (!token)
		return VTP_EINVAL;
	*token = NULL;
	if (!key || keylen == 0 || keylen > INT_MAX || !vtp_uuid_parse(sub, NULL))
		goto out;
	if (now_s < 0 || ttl_s <= 0 || now_s > LONG_MAX - ttl_s)
		goto out;
	rc = VTP_EINTERNAL;
	if (jwt_new(&jwt) != 0)
		goto out;
	if (jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)keylen) != 0 ||
	    jwt_add_grant(jwt, "sub", sub) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) != 0)
		goto out;
	encoded = jwt_encode_str(jwt); /* malloc'd by libjwt */
	if (!encoded)
		goto out;
	*token = vtp_strdup(encoded);
	rc = 0;
out:
	free(encoded);
	jwt_free(jwt);
	return rc;
}

int vtp_jwt_verify(const unsigned char *key, size_t keylen, const char *token,
		   int64_t now_s, char sub[VTP_UUID_BUFLEN], int64_t *exp,
		   const char **reason)
{
	const char *why = "malformed";
	const char *dot1, *dot2, *sig;
	size_t len, hlen, plen, slen;
	json_t *header = NULL, *claims = NULL, *v;
	jwt_t *jwt = NULL;
	int64_t exp_s;
	int rc = VTP_EUNAUTH;

	if (!key || keylen == 0 || keylen > INT_MAX || !token || !sub)
		goto out;
	len = strnlen(token, JWT_MAX_LEN + 1);
	if (len == 0 || len > JWT_MAX_LEN)
		goto out;

	/* header "." payload "." signature, nothing else */
	dot1 = memchr(token, '.', len);
	if (!dot1)
		goto out;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		goto out;
	sig = dot2 + 1;
	hlen = (size_t)(dot1 - token);
	plen = (size_t)(dot2 - dot1 - 1);
	slen = len - (size_t)(sig - token);
	if (hlen == 0 || plen == 0)
		goto out;

	/* The header decides the algorithm, so it is checked before anything
	 * else: HS256 and nothing but HS256 ("none", HS384, RS256 ... and a
	 * missing alg are all refused). */
	header = decode_json_part(token, hlen);
	if (!header)
		goto out;
	v = json_object_get(header, "alg");
	if (!json_is_string(v) || strcmp(json_string_value(v), "HS256") != 0 ||
	    json_string_length(v) != 5) {
		why = "bad_alg";
		goto out;
	}
	/* Extensions we do not understand must not be ignored (RFC 7515). */
	if (json_object_get(header, "crit"))
		goto out;

	if (!hs256_signature_ok(key, keylen, token, (size_t)(dot2 - token),
				sig, slen)) {
		why = "bad_signature";
		goto out;
	}

	/* A second opinion from libjwt, which must agree on everything. */
	if (jwt_decode(&jwt, token, key, (int)keylen) != 0 || !jwt)
		goto out;
	if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
		why = "bad_alg";
		goto out;
	}

	claims = decode_json_part(dot1 + 1, plen);
	if (!claims)
		goto out;
	v = json_object_get(claims, "exp");
	if (!json_is_integer(v)) {
		why = "no_exp";
		goto out;
	}
	exp_s = (int64_t)json_integer_value(v);
	if (exp_s <= now_s) {
		why = "expired";
		goto out;
	}
	/* nbf (RFC 7519 §4.1.5): not before then. Like exp, no leeway: the
	 * server that checks is the one that signs. */
	v = json_object_get(claims, "nbf");
	if (v && !json_is_integer(v)) {
		why = "bad_nbf";
		goto out;
	}
	if (v && (int64_t)json_integer_value(v) > now_s) {
		why = "not_yet_valid";
		goto out;
	}
	v = json_object_get(claims, "sub");
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    !vtp_uuid_parse(json_string_value(v), sub)) {
		why = "bad_sub";
		goto out;
	}
	if (exp)
		*exp = exp_s;
	why = NULL;
	rc = 0;
out:
	if (rc != 0 && sub)
		sub[0] = '\0';
	if (reason)
		*reason = why;
	jwt_free(jwt);
	json_decref(claims);
	json_decref(header);
	return rc;
}
