/* Signed media URL tokens (auth.h). Hex, not base64: the token goes into
 * URLs and HLS playlists verbatim, and a fixed alphabet of [0-9a-f.vd]
 * needs no escaping anywhere. */
#include "auth/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define MAC_LEN 16 /* bytes kept of the HMAC */
#define EXPIRY_STEP 300

/* The media key: HMAC(secret, label), so a media token can never be
 * mistaken for, or help to forge, a JWT made with the same secret. */
static void media_key(const unsigned char *key, size_t keylen, unsigned char out[32])
{
	static const char label[] = "vtp-recorder media url key v1";
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)label, sizeof(label) - 1, out,
	     &n);
}

static void mac(const unsigned char *key, size_t keylen, char scope, const char *rec,
		const char *user32, long long exp, unsigned char out[32])
{
	unsigned char k[32];
	char msg[200];
	unsigned int n = 32;
	int len;

	media_key(key, keylen, k);
	len = snprintf(msg, sizeof(msg), "media\n%c\n%s\n%s\n%lld", scope, rec, user32, exp);
	HMAC(EVP_sha256(), k, sizeof(k), (const unsigned char *)msg, (size_t)len, out, &n);
	OPENSSL_cleanse(k, sizeof(k));
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A canonical UUID without its dashes (32 lowercase hex). */
static bool squeeze(const char *uuid, char out[33])
{
	char canon[VTP_UUID_BUFLEN];
	size_t k = 0;

	if (!vtp_uuid_parse(uuid, canon))
		return false;
	for (const char *p = canon; *p; p++)
		if (*p != '-')
			out[k++] = *p;
	out[k] = '\0';
	return k == 32;
}

void vtp_media_token_sign(const unsigned char *key, size_t keylen, vtp_media_scope scope,
			  const char *recording_id, const char *user_id, int64_t exp_s,
			  char out[VTP_MEDIA_TOKEN_BUFLEN])
{
	char rec[VTP_UUID_BUFLEN], user[33], m[2 * MAC_LEN + 1];
	unsigned char d[32];

	out[0] = '\0';
	if (!vtp_uuid_parse(recording_id, rec) || !squeeze(user_id, user))
		return;
	mac(key, keylen, (char)scope, rec, user, (long long)exp_s, d);
	hex(d, MAC_LEN, m);
	snprintf(out, VTP_MEDIA_TOKEN_BUFLEN, "%c.%s.%lld.%s", (char)scope, user, (long long)exp_s, m);
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int vtp_media_token_verify(const unsigned char *key, size_t keylen, const char *token,
			   const char *recording_id, int64_t now_s,
			   char user_id[VTP_UUID_BUFLEN], vtp_media_scope *scope,
			   const char **reason)
{
	char rec[VTP_UUID_BUFLEN], user[33], m[2 * MAC_LEN + 1];
	unsigned char d[32];
	long long exp = 0;
	size_t len = token ? strlen(token) : 0;
	const char *p;

	*reason = "malformed";
	/* "s." + 32 + "." + 1..19 digits + "." + 32 */
	if (len < 2 + 32 + 1 + 1 + 1 + 32 || len > 2 + 32 + 1 + 19 + 1 + 32)
		return VTP_EUNAUTH;
	if ((token[0] != VTP_MEDIA_VIEW && token[0] != VTP_MEDIA_DOWNLOAD) || token[1] != '.' ||
	    !all_hex(token + 2, 32) || token[34] != '.')
		return VTP_EUNAUTH;
	p = token + 35;
	if (*p == '0' || *p < '0' || *p > '9') /* no leading zero, no sign */
		return VTP_EUNAUTH;
	while (*p >= '0' && *p <= '9') {
		if (exp > (INT64_MAX - 9) / 10)
			return VTP_EUNAUTH;
		exp = exp * 10 + (*p++ - '0');
	}
	if (*p != '.' || strlen(p + 1) != 2 * MAC_LEN || !all_hex(p + 1, 2 * MAC_LEN))
		return VTP_EUNAUTH;
	if (!recording_id || !vtp_uuid_parse(recording_id, rec))
		return VTP_EUNAUTH;
	memcpy(user, token + 2, 32);
	user[32] = '\0';
	mac(key, keylen, token[0], rec, user, exp, d);
	hex(d, MAC_LEN, m);
	if (CRYPTO_memcmp(m, p + 1, 2 * MAC_LEN) != 0) {
		*reason = "bad_signature";
		return VTP_EUNAUTH;
	}
	if (exp <= now_s) {
		*reason = "expired";
		return VTP_EUNAUTH;
	}
	snprintf(user_id, VTP_UUID_BUFLEN, "%.8s-%.4s-%.4s-%.4s-%.12s", user, user + 8, user + 12,
		 user + 16, user + 20);
	*scope = (vtp_media_scope)token[0];
	*reason = NULL;
	return 0;
}

int64_t vtp_media_token_expiry(int64_t now_s, int64_t ttl_s)
{
	int64_t at = now_s + ttl_s;

	return (at + EXPIRY_STEP - 1) / EXPIRY_STEP * EXPIRY_STEP;
}
