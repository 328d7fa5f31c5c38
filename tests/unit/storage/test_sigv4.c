/* SigV4 against what AWS publishes: the S3 examples of "Signature
 * Calculations for the Authorization Header" (GET Object with a range, PUT
 * Object, GET Bucket lifecycle, GET Bucket list) and of "Query String
 * Authentication" (the presigned GET), the signing-key derivation example,
 * and cases of the AWS SigV4 test suite (query order, unreserved
 * characters, UTF-8 path, header trimming, repeated headers). Then the same
 * requests curl 7.88 signs with --aws-sigv4, captured on a local socket:
 * our Authorization must equal curl's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "storage/storage.h"
#include "storage/storage_int.h"

extern char **environ;

#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_HOST "examplebucket.s3.amazonaws.com"
#define S3_DATE "20130524T000000Z"
#define EMPTY VTP__EMPTY_SHA256

/* the general test suite's credentials and time */
#define TS_AK "AKIDEXAMPLE"
#define TS_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TS_DATE "20150830T123600Z"

static const char *sig_of(const char *auth)
{
	const char *s = strstr(auth, "Signature=");

	assert_non_null(s);
	return s + 10;
}

/* ---- S3 documentation examples ---------------------------------------------- */

static void test_s3_get_object(void **state)
{
	const vtp_sigv4_header hs[] = {
		{"Host", S3_HOST},
		{"Range", "bytes=0-9"},
		{"x-amz-content-sha256", EMPTY},
		{"x-amz-date", S3_DATE},
	};
	vtp_sigv4_request rq = {"GET", "/test.txt", NULL, hs, 4, EMPTY, S3_DATE, "us-east-1", "s3",
				S3_AK, S3_SK};
	char auth[512];
	vtp_buf creq, sts;

	vtp_buf_init(&creq, 1 << 16);
	vtp_buf_init(&sts, 1 << 16);
	assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), &creq, &sts), 0);
	assert_string_equal(creq.data, "GET\n"
				       "/test.txt\n"
				       "\n"
				       "host:examplebucket.s3.amazonaws.com\n"
				       "range:bytes=0-9\n"
				       "x-amz-content-sha256:" EMPTY "\n"
				       "x-amz-date:20130524T000000Z\n"
				       "\n"
				       "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY);
	assert_string_equal(sts.data, "AWS4-HMAC-SHA256\n"
				      "20130524T000000Z\n"
				      "20130524/us-east-1/s3/aws4_request\n"
				      "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	assert_string_equal(auth,
			    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
			    "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
			    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	vtp_buf_free(&creq);
	vtp_buf_free(&sts);
}

static void test_s3_put_object(void **state)
{
	char payload[VTP__SHA256_HEX];
	char creq_hash[VTP__SHA256_HEX];
	vtp_buf path, creq;
	char auth[512];

	vtp__sha256_hex("Welcome to Amazon S3.", 21, payload);
	assert_string_equal(payload,
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	vtp_buf_init(&path, 1024);
	vtp_buf_init(&creq, 1 << 16);
	assert_int_equal(vtp_buf_appends(&path, "/"), 0);
	assert_int_equal(vtp_sigv4_uri_encode(&path, "test$file.text", true), 0);
	assert_string_equal(path.data, "/test%24file.text");
	{
		const vtp_sigv4_header hs[] = {
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"Host", S3_HOST},
			{"x-amz-date", S3_DATE},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-content-sha256", payload},
		};
		vtp_sigv4_request rq = {"PUT", path.data, "", hs, 5, payload, S3_DATE, "us-east-1",
					"s3", S3_AK, S3_SK};

		assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), &creq, NULL), 0);
	}
	vtp__sha256_hex(creq.data, creq.len, creq_hash);
	assert_string_equal(creq_hash,
			    "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
	assert_non_null(strstr(auth, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
				     "x-amz-storage-class, "));
	assert_string_equal(sig_of(auth),
			    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	vtp_buf_free(&path);
	vtp_buf_free(&creq);
}

static void test_s3_bucket_examples(void **state)
{
	static const struct {
		const char *query;
		const char *canonical;
		const char *sig;
	} cases[] = {
		/* GET Bucket lifecycle: a parameter without a value */
		{"lifecycle", "lifecycle=",
		 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
		/* GET Bucket (list objects), parameters given out of order */
		{"prefix=J&max-keys=2", "max-keys=2&prefix=J",
		 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
	};
	const vtp_sigv4_header hs[] = {
		{"host", S3_HOST},
		{"x-amz-content-sha256", EMPTY},
		{"x-amz-date", S3_DATE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vtp_sigv4_request rq = {"GET", "/", cases[i].query, hs, 3, EMPTY, S3_DATE,
					"us-east-1", "s3", S3_AK, S3_SK};
		char auth[512];
		vtp_buf creq;

		vtp_buf_init(&creq, 1 << 16);
		assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), &creq, NULL), 0);
		assert_non_null(strstr(creq.data, cases[i].canonical));
		assert_string_equal(sig_of(auth), cases[i].sig);
		vtp_buf_free(&creq);
	}
}

static void test_s3_presigned_get(void **state)
{
	vtp__sigv4_presign_request rq = {
		.method = "GET",
		.host = S3_HOST,
		.path = "/test.txt",
		.amz_date = S3_DATE,
		.expires_s = 86400,
		.region = "us-east-1",
		.service = "s3",
		.access_key = S3_AK,
		.secret_key = S3_SK,
	};
	vtp_buf q, creq, sts;

	vtp_buf_init(&q, 1 << 16);
	vtp_buf_init(&creq, 1 << 16);
	vtp_buf_init(&sts, 1 << 16);
	assert_int_equal(vtp__sigv4_presign_query(&rq, &q, &creq, &sts), 0);
	assert_string_equal(creq.data,
			    "GET\n/test.txt\n"
			    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
			    "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
			    "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
			    "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
	assert_string_equal(sts.data,
			    "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
			    "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
	assert_string_equal(q.data,
			    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
			    "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
			    "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
			    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	vtp_buf_free(&q);
	vtp_buf_free(&creq);
	vtp_buf_free(&sts);
}

/* response-content-* are signed in canonical order, values encoded once. */
static void test_presign_response_params(void **state)
{
	const vtp__sigv4_param params[] = {
		{"response-content-type", "video/webm"},
		{"response-content-disposition", "attachment; filename=\"a b.webm\""},
	};
	vtp__sigv4_presign_request rq = {
		.method = "GET",
		.host = "127.0.0.1:9000",
		.path = "/bucket/room/id/recording.webm",
		.params = params,
		.nparams = 2,
		.amz_date = S3_DATE,
		.expires_s = 3600,
		.region = "us-east-1",
		.service = "s3",
		.access_key = S3_AK,
		.secret_key = S3_SK,
	};
	vtp_buf q;
	const char *a, *b, *c;

	vtp_buf_init(&q, 1 << 16);
	assert_int_equal(vtp__sigv4_presign_query(&rq, &q, NULL, NULL), 0);
	a = strstr(q.data, "X-Amz-SignedHeaders=host&response-content-disposition="
			   "attachment%3B%20filename%3D%22a%20b.webm%22");
	b = strstr(q.data, "&response-content-type=video%2Fwebm&X-Amz-Signature=");
	c = strstr(q.data, "X-Amz-Expires=3600&");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a < b);
	assert_int_equal(strlen(strstr(q.data, "X-Amz-Signature=")), 16 + 64);
	/* expiry bounds */
	rq.expires_s = 604801;
	assert_int_equal(vtp__sigv4_presign_query(&rq, &q, NULL, NULL), VTP_EINVAL);
	rq.expires_s = 0;
	assert_int_equal(vtp__sigv4_presign_query(&rq, &q, NULL, NULL), VTP_EINVAL);
	vtp_buf_free(&q);
}

static void test_signing_key(void **state)
{
	unsigned char key[32];
	char hex[65];

	/* "Examples of how to derive a signing key for Signature Version 4" */
	vtp__sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1",
			       "iam", key);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	assert_string_equal(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

/* ---- the AWS SigV4 test suite ------------------------------------------------------ */

static void test_suite_cases(void **state)
{
	static const struct {
		const char *name;
		const char *path;
		const char *query;
		vtp_sigv4_header extra[3];
		size_t nextra;
		const char *signed_headers;
		const char *sig;
	} cases[] = {
		{"get-vanilla-query-order-key-case", "/", "Param2=value2&Param1=value1", {{0}}, 0,
		 "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"get-vanilla-query-unreserved", "/",
		 "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
		 "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		 {{0}}, 0, "host;x-amz-date",
		 "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
		{"get-utf8", "/%E1%88%B4", NULL, {{0}}, 0, "host;x-amz-date",
		 "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
		{"get-header-value-trim", "/", NULL,
		 {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}}, 2,
		 "host;my-header1;my-header2;x-amz-date",
		 "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
		{"get-header-key-duplicate", "/", NULL,
		 {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}, 3,
		 "host;my-header1;x-amz-date",
		 "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vtp_sigv4_header hs[5] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", TS_DATE}};
		vtp_sigv4_request rq = {"GET", cases[i].path, cases[i].query, hs, 2, EMPTY, TS_DATE,
					"us-east-1", "service", TS_AK, TS_SK};
		char auth[512], want[256];

		for (size_t j = 0; j < cases[i].nextra; j++)
			hs[rq.nheaders++] = cases[i].extra[j];
		assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), NULL, NULL), 0);
		snprintf(want, sizeof(want), "SignedHeaders=%s, ", cases[i].signed_headers);
		if (!strstr(auth, want) || strcmp(sig_of(auth), cases[i].sig) != 0)
			fail_msg("%s: got %s", cases[i].name, auth);
		assert_non_null(strstr(auth, "Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
					     "aws4_request, "));
	}
}

/* ---- encoding and refusals ------------------------------------------------------------- */

static void test_uri_encode(void **state)
{
	static const struct {
		const char *in;
		bool keep_slash;
		const char *out;
	} cases[] = {
		{"abcXYZ019-._~", false, "abcXYZ019-._~"},
		{"a b+c", false, "a%20b%2Bc"},
		{"room%2F1/id/rec.webm", true, "room%252F1/id/rec.webm"},
		{"a/b", false, "a%2Fb"},
		{"\xc3\xa9t\xc3\xa9", true, "%C3%A9t%C3%A9"},
		{"=&?#*", false, "%3D%26%3F%23%2A"},
		{"", true, ""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vtp_buf b;

		vtp_buf_init(&b, 1024);
		assert_int_equal(vtp_sigv4_uri_encode(&b, cases[i].in, cases[i].keep_slash), 0);
		assert_string_equal(b.data ? b.data : "", cases[i].out);
		vtp_buf_free(&b);
	}
}

static void test_canonical_query(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1", "a=1&a=2"},
		{"uploads", "uploads="},
		{"prefix=a%2fb&list-type=2", "list-type=2&prefix=a%2Fb"},
		{"prefix=a/b", "prefix=a%2Fb"},
		{"x=%zz", "x=%25zz"},
		{"k=a b&&", "k=a%20b"},
		{"Z=1&a=1", "Z=1&a=1"}, /* byte order: upper case first */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vtp_buf b;

		vtp_buf_init(&b, 1024);
		assert_int_equal(vtp__sigv4_canonical_query(&b, cases[i].in), 0);
		assert_string_equal(b.data ? b.data : "", cases[i].out);
		vtp_buf_free(&b);
	}
}

static void test_refusals(void **state)
{
	vtp_sigv4_header hs[2] = {{"host", "h"}, {"x-amz-date", S3_DATE}};
	vtp_sigv4_request ok = {"GET", "/", NULL, hs, 2, EMPTY, S3_DATE, "us-east-1", "s3",
				S3_AK, S3_SK};
	vtp_sigv4_request rq;
	char auth[512];

	assert_int_equal(vtp_sigv4_authorization(&ok, auth, sizeof(auth), NULL, NULL), 0);
	rq = ok;
	rq.amz_date = "2013-05-24T00:00:00Z";
	assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), NULL, NULL), VTP_EINVAL);
	rq = ok;
	rq.region = "us east";
	assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), NULL, NULL), VTP_EINVAL);
	rq = ok;
	rq.path = "/a b";
	assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), NULL, NULL), VTP_EINVAL);
	rq = ok;
	hs[0].value = "h\r\nx-evil: 1";
	assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), NULL, NULL), VTP_EINVAL);
	hs[0].value = "h";
	hs[0].name = "ho st";
	assert_int_equal(vtp_sigv4_authorization(&rq, auth, sizeof(auth), NULL, NULL), VTP_EINVAL);
	hs[0].name = "host";
	/* an output buffer too small */
	assert_int_equal(vtp_sigv4_authorization(&ok, auth, 40, NULL, NULL), VTP_ETOOBIG);
}

/* ---- curl --aws-sigv4 ------------------------------------------------------------------ */

typedef struct captured {
	char method[16];
	char target[1024];
	char head[8192];
	char body[1024];
	size_t bodylen;
} captured;

/* The first value of header name in the captured head, or NULL. */
static const char *cap_header(const captured *c, const char *name, char *out, size_t outlen)
{
	const char *p = strstr(c->head, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2;
		const char *end = strstr(line, "\r\n");
		const char *colon = memchr(line, ':', (size_t)(end - line));

		if (colon && (size_t)(colon - line) == strlen(name) &&
		    strncasecmp(line, name, strlen(name)) == 0) {
			const char *v = colon + 1;

			while (*v == ' ')
				v++;
			snprintf(out, outlen, "%.*s", (int)(end - v), v);
			return out;
		}
		p = end;
	}
	return NULL;
}

/* Runs curl with args against a one-shot listener; false when curl is absent. */
static bool run_curl(char *const extra[], size_t nextra, const char *path, captured *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t salen = sizeof(sa);
	char url[256];
	char *argv[32];
	size_t argc = 0;
	pid_t pid;
	int ls, cs, status = 0;
	size_t got = 0;
	char buf[16384];
	struct pollfd pfd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ls >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &salen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", ntohs(sa.sin_port), path);

	argv[argc++] = "curl";
	argv[argc++] = "-s";
	argv[argc++] = "-o";
	argv[argc++] = "/dev/null";
	argv[argc++] = "--max-time";
	argv[argc++] = "10";
	argv[argc++] = "--aws-sigv4";
	argv[argc++] = "aws:amz:us-east-1:s3";
	argv[argc++] = "--user";
	argv[argc++] = S3_AK ":" S3_SK;
	argv[argc++] = "-H";
	argv[argc++] = "x-amz-date: " S3_DATE;
	for (size_t i = 0; i < nextra; i++)
		argv[argc++] = extra[i];
	argv[argc++] = url;
	argv[argc] = NULL;
	if (posix_spawnp(&pid, "curl", NULL, NULL, argv, environ) != 0) {
		close(ls);
		return false;
	}
	pfd.fd = ls;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1) {
		waitpid(pid, &status, 0);
		close(ls);
		/* curl exits 127 when the shell cannot find it (posix_spawnp may fork first) */
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return false;
		fail_msg("curl did not connect");
	}
	cs = accept(ls, NULL, NULL);
	assert_true(cs >= 0);
	for (;;) {
		ssize_t n = read(cs, buf + got, sizeof(buf) - 1 - got);
		char *end;

		assert_true(n > 0);
		got += (size_t)n;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end) {
			size_t headlen = (size_t)(end - buf) + 4;
			char clen[32];
			size_t want = 0;

			assert_true(headlen < sizeof(c->head));
			memcpy(c->head, buf, headlen);
			c->head[headlen] = '\0';
			if (cap_header(c, "Content-Length", clen, sizeof(clen)))
				want = (size_t)strtoul(clen, NULL, 10);
			if (got - headlen < want)
				continue;
			assert_true(want < sizeof(c->body));
			memcpy(c->body, buf + headlen, want);
			c->bodylen = want;
			break;
		}
	}
	{
		static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
					    "Connection: close\r\n\r\n";

		assert_int_equal(write(cs, reply, sizeof(reply) - 1), (ssize_t)sizeof(reply) - 1);
	}
	close(cs);
	close(ls);
	waitpid(pid, &status, 0);
	assert_true(sscanf(c->head, "%15s %1023s", c->method, c->target) == 2);
	return true;
}

/* Signs what curl sent (its method, target, the headers it signed, the
 * body's hash) and compares with curl's Authorization. */
static void check_against_curl(char *const extra[], size_t nextra, const char *path)
{
	captured c = {0};
	char curl_auth[1024], ours[1024], signed_list[512];
	char values[8][512];
	vtp_sigv4_header hs[8];
	size_t nh = 0;
	char payload[VTP__SHA256_HEX];
	char *query, *save = NULL;
	const char *sh;

	if (!run_curl(extra, nextra, path, &c))
		skip();
	assert_non_null(cap_header(&c, "Authorization", curl_auth, sizeof(curl_auth)));
	sh = strstr(curl_auth, "SignedHeaders=");
	assert_non_null(sh);
	snprintf(signed_list, sizeof(signed_list), "%.*s", (int)strcspn(sh + 14, ", "), sh + 14);
	for (char *name = strtok_r(signed_list, ";", &save); name;
	     name = strtok_r(NULL, ";", &save)) {
		assert_true(nh < 8);
		assert_non_null(cap_header(&c, name, values[nh], sizeof(values[nh])));
		hs[nh].name = name;
		hs[nh].value = values[nh];
		nh++;
	}
	vtp__sha256_hex(c.body, c.bodylen, payload);
	query = strchr(c.target, '?');
	if (query)
		*query++ = '\0';
	{
		vtp_sigv4_request rq = {c.method, c.target, query, hs, nh, payload, S3_DATE,
					"us-east-1", "s3", S3_AK, S3_SK};

		assert_int_equal(vtp_sigv4_authorization(&rq, ours, sizeof(ours), NULL, NULL), 0);
	}
	if (strcmp(ours, curl_auth) != 0)
		fail_msg("curl: %s\nours: %s\nrequest:\n%s", curl_auth, ours, c.head);
}

static void test_curl_get(void **state)
{
	char *extra[] = {"-H", "Range: bytes=0-9"};

	/* curl 7.88 signs the query as given (it sorts only from 8.x), so the
	 * query here is already in canonical order */
	check_against_curl(extra, 2, "/examplebucket/room%20a/rec%24.webm?list-type=2&prefix=a%2Fb");
}

static void test_curl_put(void **state)
{
	char *extra[] = {"-X", "PUT", "--data-binary", "Welcome to Amazon S3.", "-H",
			 "Content-Type: video/webm"};

	check_against_curl(extra, 6, "/examplebucket/test%24file.text");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3_get_object),
		cmocka_unit_test(test_s3_put_object),
		cmocka_unit_test(test_s3_bucket_examples),
		cmocka_unit_test(test_s3_presigned_get),
		cmocka_unit_test(test_presign_response_params),
		cmocka_unit_test(test_signing_key),
		cmocka_unit_test(test_suite_cases),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_curl_get),
		cmocka_unit_test(test_curl_put),
	};

	vtp_log_init(getenv("VTP_TEST_LOG") ? VTP_LOG_DEBUG : VTP_LOG_OFF, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
