/* AWS Signature Version 4, written from AWS's description ("Create a
 * canonical request", "Create a string to sign", "Calculate the signature")
 * and checked against its published examples in tests/unit/storage. S3
 * flavour: the path is used as given (already encoded once, never
 * normalised or encoded twice). Query parameters are decoded and encoded
 * again so that "a%2Fb" and "a/b" sign the same; header values are trimmed
 * and inner runs of spaces collapsed; repeated header names are joined with
 * ','. Secrets never leave this file except as the final signature. */
#include "storage_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/mem.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_MAX_HEADERS 32
#define SIGV4_MAX_PARAMS 64
#define SIGV4_TEXT_MAX (256 * 1024)

static const char HEX[] = "0123456789abcdef";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = HEX[p[i] >> 4];
		out[2 * i + 1] = HEX[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void vtp__sha256_hex(const void *p, size_t n, char out[VTP__SHA256_HEX])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
	to_hex(md, 32, out);
}

int vtp__sha256_fd_hex(int fd, int64_t off, int64_t len, char out[VTP__SHA256_HEX])
{
	enum { CHUNK = 256 * 1024 };
	unsigned char *buf = vtp_malloc(CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dig[32];
	unsigned int diglen = 0;
	int rc = VTP_EIO;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	while (len > 0) {
		size_t want = len < CHUNK ? (size_t)len : CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n <= 0)
			goto out;
		EVP_DigestUpdate(md, buf, (size_t)n);
		off += n;
		len -= n;
	}
	if (!EVP_DigestFinal_ex(md, dig, &diglen))
		goto out;
	to_hex(dig, 32, out);
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	vtp_free(buf);
	return rc;
}

static void hmac(const void *key, size_t keylen, const char *msg, size_t msglen,
		 unsigned char out[32])
{
	unsigned int outlen = 32;

	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, msglen, out, &outlen);
}

void vtp__sigv4_signing_key(const char *secret, const char *date8, const char *region,
			    const char *service, unsigned char out[32])
{
	size_t n = strlen(secret);
	char *k = vtp_malloc(n + 5);
	unsigned char a[32], b[32];

	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, n + 1);
	hmac(k, n + 4, date8, strlen(date8), a);
	hmac(a, 32, region, strlen(region), b);
	hmac(b, 32, service, strlen(service), a);
	hmac(a, 32, "aws4_request", 12, out);
	OPENSSL_cleanse(k, n + 4);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	vtp_free(k);
}

void vtp__sigv4_amz_date(int64_t unix_s, char out[17])
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	char tmp[80];

	gmtime_r(&t, &tm);
	snprintf(tmp, sizeof(tmp), "%04d%02d%02dT%02d%02d%02dZ", (tm.tm_year + 1900) % 10000,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	memcpy(out, tmp, 16);
	out[16] = '\0';
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int uri_encode_n(vtp_buf *out, const char *s, size_t n, bool keep_slash)
{
	static const char UHEX[] = "0123456789ABCDEF";
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			rc = vtp_buf_append(out, &s[i], 1);
		} else {
			char e[3] = {'%', UHEX[c >> 4], UHEX[c & 15]};

			rc = vtp_buf_append(out, e, 3);
		}
	}
	return rc;
}

int vtp_sigv4_uri_encode(vtp_buf *out, const char *s, bool keep_slash)
{
	if (!s)
		return VTP_EINVAL;
	return uri_encode_n(out, s, strlen(s), keep_slash);
}

/* Percent-decodes s[0..n) then appends its SigV4 encoding. A '%' not
 * followed by two hex digits is taken literally. */
static int reencode(vtp_buf *out, const char *s, size_t n)
{
	vtp_buf raw;
	int rc = 0;

	vtp_buf_init(&raw, n + 1);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char c = s[i];

		if (c == '%' && i + 2 < n && vtp_hex_value(s[i + 1]) >= 0 && vtp_hex_value(s[i + 2]) >= 0) {
			c = (char)(vtp_hex_value(s[i + 1]) << 4 | vtp_hex_value(s[i + 2]));
			i += 2;
		}
		rc = vtp_buf_append(&raw, &c, 1);
	}
	if (rc == 0)
		rc = uri_encode_n(out, raw.data ? raw.data : "", raw.len, false);
	vtp_buf_free(&raw);
	return rc;
}

typedef struct qparam {
	char *name;  /* encoded */
	char *value; /* encoded */
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
	const qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

int vtp__sigv4_canonical_query(vtp_buf *out, const char *raw)
{
	qparam params[SIGV4_MAX_PARAMS];
	size_t np = 0;
	const char *p = raw ? raw : "";
	int rc = 0;

	while (*p && rc == 0) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;
		vtp_buf nb, vb;

		if (len == 0) { /* "a=1&&b=2" */
			p++;
			continue;
		}
		if (np == SIGV4_MAX_PARAMS) {
			rc = VTP_ETOOBIG;
			break;
		}
		vtp_buf_init(&nb, SIGV4_TEXT_MAX);
		vtp_buf_init(&vb, SIGV4_TEXT_MAX);
		rc = reencode(&nb, p, nlen);
		if (rc == 0 && eq)
			rc = reencode(&vb, eq + 1, len - nlen - 1);
		params[np].name = vtp_buf_steal(&nb, NULL);
		params[np].value = vtp_buf_steal(&vb, NULL);
		if (!params[np].name)
			params[np].name = vtp_strdup("");
		if (!params[np].value)
			params[np].value = vtp_strdup("");
		np++;
		p += len;
		if (*p == '&')
			p++;
	}
	if (rc == 0) {
		qsort(params, np, sizeof(params[0]), qparam_cmp);
		for (size_t i = 0; i < np && rc == 0; i++)
			rc = vtp_buf_appendf(out, "%s%s=%s", i ? "&" : "", params[i].name,
					     params[i].value);
	}
	for (size_t i = 0; i < np; i++) {
		vtp_free(params[i].name);
		vtp_free(params[i].value);
	}
	return rc;
}

typedef struct cheader {
	char *name;  /* lower case */
	char *value; /* trimmed, spaces collapsed */
	size_t order;
} cheader;

static int cheader_cmp(const void *a, const void *b)
{
	const cheader *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool header_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == ':')
			return false;
	}
	return true;
}

static char *canonical_value(const char *v)
{
	size_t n = strlen(v);
	char *out = vtp_malloc(n + 1);
	size_t o = 0;
	bool space = false;

	for (size_t i = 0; i < n; i++) {
		char c = v[i];

		if (c == ' ' || c == '\t') {
			space = o > 0;
			continue;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

static bool amz_date_ok(const char *d)
{
	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return false;
	return true;
}

static bool scope_part_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

/* The signature (hex) of the string to sign built over canonical. */
static int sign(const char *secret, const char *amz_date, const char *region,
		const char *service, const vtp_buf *canonical, vtp_buf *sts_out,
		char sig[VTP__SHA256_HEX])
{
	char date8[9];
	char creq_hash[VTP__SHA256_HEX];
	unsigned char key[32], mac[32];
	vtp_buf sts;
	int rc;

	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	vtp__sha256_hex(canonical->data ? canonical->data : "", canonical->len, creq_hash);
	vtp_buf_init(&sts, 1024);
	rc = vtp_buf_appendf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date,
			     date8, region, service, creq_hash);
	if (rc == 0) {
		vtp__sigv4_signing_key(secret, date8, region, service, key);
		hmac(key, 32, sts.data, sts.len, mac);
		OPENSSL_cleanse(key, sizeof(key));
		to_hex(mac, 32, sig);
		if (sts_out) {
			vtp_buf_reset(sts_out);
			rc = vtp_buf_append(sts_out, sts.data, sts.len);
		}
	}
	vtp_buf_free(&sts);
	return rc;
}

int vtp_sigv4_authorization(const vtp_sigv4_request *rq, char *out, size_t outlen,
			    vtp_buf *canonical_request, vtp_buf *string_to_sign)
{
	cheader hs[SIGV4_MAX_HEADERS];
	size_t nh = 0;
	vtp_buf creq, signed_headers;
	char sig[VTP__SHA256_HEX];
	int rc = VTP_EINVAL;
	int n;

	vtp_buf_init(&creq, SIGV4_TEXT_MAX);
	vtp_buf_init(&signed_headers, 4096);
	if (!rq || !out || !rq->method || !*rq->method || !rq->path || !rq->payload_sha256 ||
	    !amz_date_ok(rq->amz_date) || !scope_part_ok(rq->region) ||
	    !scope_part_ok(rq->service) || !rq->access_key || !*rq->access_key ||
	    strpbrk(rq->access_key, "/, \r\n") || !rq->secret_key || rq->nheaders == 0 ||
	    rq->nheaders > SIGV4_MAX_HEADERS || !rq->headers)
		goto out;
	if (strpbrk(rq->path, " \r\n?#") || strpbrk(rq->method, " \r\n"))
		goto out;
	for (size_t i = 0; i < rq->nheaders; i++) {
		const char *name = rq->headers[i].name;
		const char *value = rq->headers[i].value;
		char *lname;

		if (!name || !value || !header_name_ok(name) || strpbrk(value, "\r\n"))
			goto free_headers;
		lname = vtp_strdup(name);
		for (char *c = lname; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		hs[nh].name = lname;
		hs[nh].value = canonical_value(value);
		hs[nh].order = i;
		nh++;
	}
	qsort(hs, nh, sizeof(hs[0]), cheader_cmp);

	rc = vtp_buf_appendf(&creq, "%s\n%s\n", rq->method, *rq->path ? rq->path : "/");
	if (rc == 0)
		rc = vtp__sigv4_canonical_query(&creq, rq->query);
	if (rc == 0)
		rc = vtp_buf_appends(&creq, "\n");
	for (size_t i = 0; i < nh && rc == 0; i++) {
		bool same = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;

		if (same)
			rc = vtp_buf_appendf(&creq, ",%s", hs[i].value);
		else
			rc = vtp_buf_appendf(&creq, "%s%s:%s", i ? "\n" : "", hs[i].name,
					     hs[i].value);
		if (rc == 0 && !same)
			rc = vtp_buf_appendf(&signed_headers, "%s%s", i ? ";" : "", hs[i].name);
	}
	if (rc == 0)
		rc = vtp_buf_appendf(&creq, "\n\n%s\n%s", signed_headers.data, rq->payload_sha256);
	if (rc == 0)
		rc = sign(rq->secret_key, rq->amz_date, rq->region, rq->service, &creq,
			  string_to_sign, sig);
	if (rc == 0) {
		n = snprintf(out, outlen,
			     SIGV4_ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, "
					     "SignedHeaders=%s, Signature=%s",
			     rq->access_key, rq->amz_date, rq->region, rq->service,
			     signed_headers.data, sig);
		if (n < 0 || (size_t)n >= outlen)
			rc = VTP_ETOOBIG;
	}
	if (rc == 0 && canonical_request) {
		vtp_buf_reset(canonical_request);
		rc = vtp_buf_append(canonical_request, creq.data, creq.len);
	}
free_headers:
	for (size_t i = 0; i < nh; i++) {
		vtp_free(hs[i].name);
		vtp_free(hs[i].value);
	}
out:
	vtp_buf_free(&creq);
	vtp_buf_free(&signed_headers);
	return rc;
}

int vtp__sigv4_presign_query(const vtp__sigv4_presign_request *rq, vtp_buf *out,
			     vtp_buf *canonical_request, vtp_buf *string_to_sign)
{
	vtp_buf raw, query, creq;
	char sig[VTP__SHA256_HEX];
	int rc = VTP_EINVAL;

	vtp_buf_init(&raw, SIGV4_TEXT_MAX);
	vtp_buf_init(&query, SIGV4_TEXT_MAX);
	vtp_buf_init(&creq, SIGV4_TEXT_MAX);
	if (!rq || !rq->method || !rq->host || !*rq->host || strpbrk(rq->host, " \r\n") ||
	    !rq->path || strpbrk(rq->path, " \r\n?#") || !amz_date_ok(rq->amz_date) ||
	    !scope_part_ok(rq->region) || !scope_part_ok(rq->service) || !rq->access_key ||
	    !*rq->access_key || strpbrk(rq->access_key, "/\r\n") || !rq->secret_key ||
	    rq->expires_s < 1 || rq->expires_s > 604800 || rq->nparams > SIGV4_MAX_PARAMS - 6)
		goto out;
	/* Every value goes in encoded; canonical_query decodes and encodes it
	 * again, which gives back the same text. */
	rc = vtp_buf_appends(&raw, "X-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=");
	if (rc == 0)
		rc = vtp_sigv4_uri_encode(&raw, rq->access_key, false);
	if (rc == 0)
		rc = vtp_buf_appendf(&raw, "%%2F%.8s%%2F%s%%2F%s%%2Faws4_request", rq->amz_date,
				     rq->region, rq->service);
	if (rc == 0)
		rc = vtp_buf_appendf(&raw, "&X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-SignedHeaders=host",
				     rq->amz_date, rq->expires_s);
	for (size_t i = 0; i < rq->nparams && rc == 0; i++) {
		if (!rq->params[i].name || !rq->params[i].value) {
			rc = VTP_EINVAL;
			break;
		}
		rc = vtp_buf_appends(&raw, "&");
		if (rc == 0)
			rc = vtp_sigv4_uri_encode(&raw, rq->params[i].name, false);
		if (rc == 0)
			rc = vtp_buf_appends(&raw, "=");
		if (rc == 0)
			rc = vtp_sigv4_uri_encode(&raw, rq->params[i].value, false);
	}
	if (rc == 0)
		rc = vtp__sigv4_canonical_query(&query, raw.data);
	if (rc == 0)
		rc = vtp_buf_appendf(&creq, "%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD",
				     rq->method, *rq->path ? rq->path : "/", query.data, rq->host);
	if (rc == 0)
		rc = sign(rq->secret_key, rq->amz_date, rq->region, rq->service, &creq,
			  string_to_sign, sig);
	if (rc == 0)
		rc = vtp_buf_appendf(out, "%s&X-Amz-Signature=%s", query.data, sig);
	if (rc == 0 && canonical_request) {
		vtp_buf_reset(canonical_request);
		rc = vtp_buf_append(canonical_request, creq.data, creq.len);
	}
out:
	vtp_buf_free(&raw);
	vtp_buf_free(&query);
	vtp_buf_free(&creq);
	return rc;
}
