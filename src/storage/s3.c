/* s3:// storage over libcurl: path-style requests (endpoint/bucket/key)
 * signed with SigV4 (sigv4.c), so one code path serves AWS, MinIO, Ceph,
 * R2 and s3rver. Every call goes through s3_perform: sign at send time,
 * retry connection errors, timeouts, 5xx and 429 with exponential back-off
 * and jitter (never a 4xx), keep a 2xx body and S3's <Code> of an error.
 * Uploads stream the file (hashed first, then read again by the transfer),
 * in parts above a threshold, and count only once a HEAD confirms the size.
 * The streaming reader runs one transfer on its own thread that feeds a
 * bounded ring the caller drains. Secrets are never logged; a failure is
 * logged once with the operation, the key and the HTTP status. */
#include "storage_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"

#define MiB (1024 * 1024LL)
#define S3_POOL_MAX 8
#define S3_ATTEMPTS 4
#define S3_BACKOFF_MS 200 /* before attempts 2, 3, 4: 0.2, 0.8, 3.2 s, each +-25 % */
#define S3_CONNECT_TIMEOUT 5L
#define S3_META_TIMEOUT 30L     /* requests without a large body */
#define S3_COMPLETE_TIMEOUT 900L /* CompleteMultipartUpload may take minutes */
#define S3_PING_TIMEOUT 3L
#define S3_LOW_SPEED_BYTES 1024L /* large transfers: fail below 1 KiB/s ... */
#define S3_LOW_SPEED_TIME 30L    /* ... for 30 s, instead of a total timeout */
#define S3_DEFAULT_THRESHOLD (64 * MiB)
#define S3_DEFAULT_PART (16 * MiB)
#define S3_MIN_PART (5 * MiB)
#define S3_MAX_PARTS 10000
#define S3_ERRBODY_MAX (16 * 1024)
#define S3_XML_MAX (32 * MiB)
#define S3_LIST_MAX (10 * 1000 * 1000)
#define S3_DELETE_BATCH 1000
#define S3_READER_RING (1 * MiB)
#define S3_READER_IDLE_US (60 * 1000000LL)

typedef struct s3_backend {
	char *bucket;
	char *endpoint; /* scheme://authority, no trailing '/' */
	char *host;     /* authority: the Host header, signed */
	char *region;
	char *access_key; /* NULL: anonymous (unsigned) requests */
	char *secret_key;
	int64_t threshold;
	int64_t part_size;
	int list_max_keys;
	pthread_mutex_t lock;
	CURL *pool[S3_POOL_MAX];
	int npool;
} s3_backend;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ------------------------------------------------------------- */

static CURL *pool_get(s3_backend *s3)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s3->lock);
	if (s3->npool > 0)
		h = s3->pool[--s3->npool];
	pthread_mutex_unlock(&s3->lock);
	if (!h)
		h = curl_easy_init();
	return h;
}

static void pool_put(s3_backend *s3, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&s3->lock);
	if (s3->npool < S3_POOL_MAX) {
		s3->pool[s3->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s3->lock);
	if (h)
		curl_easy_cleanup(h);
}

static int64_t now_unix_s(void)
{
	struct timespec ts;

	/* The real clock: a signature must carry the time S3 sees. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* Before attempt n+1 (n >= 1): base * 4^(n-1), jittered by +-25 %. */
static int64_t backoff_ms(int n)
{
	uint32_t r;
	int64_t ms = S3_BACKOFF_MS;

	for (int i = 1; i < n; i++)
		ms *= 4;
	vtp_random_bytes(&r, sizeof(r));
	return ms * 3 / 4 + (int64_t)((double)r / 4294967296.0 * (double)ms / 2);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* "/bucket" or "/bucket/<encoded key>" */
static int s3_path(const s3_backend *s3, const char *key, vtp_buf *out)
{
	int rc = vtp_buf_appends(out, "/");

	if (rc == 0)
		rc = vtp_sigv4_uri_encode(out, s3->bucket, false);
	if (rc == 0 && key) {
		rc = vtp_buf_appends(out, "/");
		if (rc == 0)
			rc = vtp_sigv4_uri_encode(out, key, true);
	}
	return rc;
}

/* ---- minimal XML ---------------------------------------------------------------- */

/* The text between <tag> and </tag>, searched from s (NUL-terminated). */
static bool xml_find(const char *s, const char *tag, const char **text, size_t *len,
		     const char **after)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = strstr(s, open);
	if (!a)
		return false;
	a += strlen(open);
	b = strstr(a, close);
	if (!b)
		return false;
	*text = a;
	*len = (size_t)(b - a);
	if (after)
		*after = b + strlen(close);
	return true;
}

static int utf8_put(vtp_buf *out, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return VTP_EINVAL;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return vtp_buf_append(out, u, n);
}

/* XML character data to text: the five entities and &#N; / &#xN;. Anything
 * else after '&' is refused (VTP_EINVAL), as are markup and NUL. */
static int xml_unescape(const char *s, size_t n, vtp_buf *out)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *semi;
		bool done = false;

		if (s[i] == '<' || s[i] == '\0')
			return VTP_EINVAL;
		if (s[i] != '&') {
			rc = vtp_buf_append(out, &s[i], 1);
			continue;
		}
		semi = memchr(s + i, ';', n - i);
		if (!semi || semi - (s + i) > 12)
			return VTP_EINVAL;
		for (size_t e = 0; e < sizeof(ents) / sizeof(ents[0]) && !done; e++) {
			size_t el = strlen(ents[e].name);

			if ((size_t)(semi - (s + i)) == el && memcmp(s + i + 1, ents[e].name, el) == 0) {
				rc = vtp_buf_append(out, &ents[e].c, 1);
				done = true;
			}
		}
		if (!done && s[i + 1] == '#') {
			const char *p = s + i + 2;
			int base = 10;
			unsigned long cp = 0;

			if (*p == 'x' || *p == 'X') {
				base = 16;
				p++;
			}
			if (p == semi)
				return VTP_EINVAL;
			for (; p < semi; p++) {
				int d;

				if (*p >= '0' && *p <= '9')
					d = *p - '0';
				else if (base == 16 && *p >= 'a' && *p <= 'f')
					d = *p - 'a' + 10;
				else if (base == 16 && *p >= 'A' && *p <= 'F')
					d = *p - 'A' + 10;
				else
					return VTP_EINVAL;
				cp = cp * (unsigned long)base + (unsigned long)d;
				if (cp > 0x10FFFF)
					return VTP_EINVAL;
			}
			rc = utf8_put(out, cp);
			done = true;
		}
		if (!done)
			return VTP_EINVAL;
		i = (size_t)(semi - s);
	}
	return rc;
}

static int xml_escape(vtp_buf *out, const char *s)
{
	int rc = 0;

	for (; *s && rc == 0; s++) {
		switch (*s) {
		case '&':
			rc = vtp_buf_appends(out, "&amp;");
			break;
		case '<':
			rc = vtp_buf_appends(out, "&lt;");
			break;
		case '>':
			rc = vtp_buf_appends(out, "&gt;");
			break;
		default:
			rc = vtp_buf_append(out, s, 1);
		}
	}
	return rc;
}

/* The unescaped text of the first <tag> in xml, vtp_malloc'd, or NULL. */
static char *xml_get(const char *xml, const char *tag)
{
	const char *t;
	size_t n;
	vtp_buf b;

	if (!xml || !xml_find(xml, tag, &t, &n, NULL))
		return NULL;
	vtp_buf_init(&b, n + 1);
	if (xml_unescape(t, n, &b) != 0) {
		vtp_buf_free(&b);
		return NULL;
	}
	if (!b.data)
		return vtp_strdup("");
	return vtp_buf_steal(&b, NULL);
}

/* The XML readers and writer, for the fuzz target (tests/fuzz/fuzz_s3_xml.c). */
int vtp__s3_xml_unescape(const char *s, size_t n, vtp_buf *out)
{
	return xml_unescape(s, n, out);
}

int vtp__s3_xml_escape(vtp_buf *out, const char *s)
{
	return xml_escape(out, s);
}

char *vtp__s3_xml_get(const char *xml, const char *tag)
{
	return xml_get(xml, tag);
}

/* ---- one request, with retries ------------------------------------------------------ */

typedef struct s3_req {
	const char *op;     /* names the operation in logs: "put", "list", ... */
	const char *method; /* GET HEAD PUT POST DELETE */
	const char *key;    /* NULL: the bucket itself */
	const char *query;  /* canonical form (sorted, encoded); NULL: none */
	vtp_sigv4_header extra[3]; /* more headers to send and sign */
	size_t nextra;
	const char *payload_sha256; /* NULL: the empty body's */
	/* request body: a file range (body_fd >= 0) or bytes in memory */
	int body_fd;
	int64_t body_off, body_len;
	const char *body_mem;
	size_t body_mem_len;
	/* a 2xx response body goes to out, or to out_fd (from offset 0), or away */
	vtp_buf *out;
	int out_fd;
	int attempts;
	long timeout_s; /* whole request; 0: the low-speed limit instead */
	long connect_timeout_s;
	bool error_in_body; /* a 200 carrying <Error> failed (CompleteMultipartUpload) */
	/* results */
	long status;
	int64_t content_length; /* -1: not given */
	int64_t received;       /* 2xx body bytes */
	char etag[160];
	char content_range[128];
	char s3_code[64]; /* <Code> of an error answer */
} s3_req;

static void req_init(s3_req *r, const char *op, const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->method = method;
	r->key = key;
	r->body_fd = -1;
	r->out_fd = -1;
	r->attempts = S3_ATTEMPTS;
	r->timeout_s = S3_META_TIMEOUT;
	r->connect_timeout_s = S3_CONNECT_TIMEOUT;
	r->content_length = -1;
}

typedef struct s3_xfer {
	s3_req *rq;
	int64_t body_pos;
	vtp_buf errbody;
	int sink_rc; /* writing the response locally failed */
	int src_rc;  /* reading the request body failed */
} s3_xfer;

/* Shared header-line parsing: the status line resets what a previous
 * response (a 100 Continue) said. */
static void parse_header_line(const char *line, size_t len, long *status, int64_t *clen,
			      char *etag, size_t etaglen, char *crange, size_t crangelen)
{
	char buf[512];
	const char *colon, *v;
	size_t nlen, vlen;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	if (len >= sizeof(buf))
		return;
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/", 5) == 0) {
		const char *sp = strchr(buf, ' ');

		*status = sp ? strtol(sp + 1, NULL, 10) : 0;
		*clen = -1;
		if (etag)
			etag[0] = '\0';
		if (crange)
			crange[0] = '\0';
		return;
	}
	colon = strchr(buf, ':');
	if (!colon)
		return;
	nlen = (size_t)(colon - buf);
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	vlen = strlen(v);
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (nlen == 14 && strncasecmp(buf, "content-length", 14) == 0) {
		char *end = NULL;
		long long x;

		errno = 0;
		x = strtoll(v, &end, 10);
		if (errno == 0 && end != v && x >= 0)
			*clen = x;
	} else if (etag && nlen == 4 && strncasecmp(buf, "etag", 4) == 0 && vlen < etaglen) {
		memcpy(etag, v, vlen);
		etag[vlen] = '\0';
	} else if (crange && nlen == 13 && strncasecmp(buf, "content-range", 13) == 0 &&
		   vlen < crangelen) {
		memcpy(crange, v, vlen);
		crange[vlen] = '\0';
	}
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	s3_xfer *x = ud;
	s3_req *rq = x->rq;

	parse_header_line(data, size * n, &rq->status, &rq->content_length, rq->etag,
			  sizeof(rq->etag), rq->content_range, sizeof(rq->content_range));
	return size * n;
}

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
	s3_xfer *x = ud;
	s3_req *rq = x->rq;
	size_t len = size * n;

	if (rq->status < 200 || rq->status > 299) {
		size_t room = x->errbody.max - x->errbody.len;

		(void)vtp_buf_append(&x->errbody, data, len < room ? len : room);
		return len;
	}
	if (rq->out) {
		if (vtp_buf_append(rq->out, data, len) != 0) {
			x->sink_rc = VTP_ETOOBIG;
			return 0;
		}
	} else if (rq->out_fd >= 0) {
		for (size_t off = 0; off < len;) {
			ssize_t w = write(rq->out_fd, data + off, len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				VTP_WARN("s3: %s %s: local write failed: %s", rq->op,
					 rq->key ? rq->key : "", strerror(errno));
				x->sink_rc = VTP_EIO;
				return 0;
			}
			off += (size_t)w;
		}
	}
	rq->received += (int64_t)len;
	return len;
}

static size_t on_read(char *data, size_t size, size_t n, void *ud)
{
	s3_xfer *x = ud;
	s3_req *rq = x->rq;
	size_t want = size * n;
	int64_t left;

	if (rq->body_fd >= 0) {
		ssize_t got;

		left = rq->body_len - x->body_pos;
		if (left <= 0)
			return 0;
		if ((int64_t)want > left)
			want = (size_t)left;
		do
			got = pread(rq->body_fd, data, want, (off_t)(rq->body_off + x->body_pos));
		while (got < 0 && errno == EINTR);
		if (got <= 0) { /* an error, or the file shrank */
			x->src_rc = VTP_EIO;
			return CURL_READFUNC_ABORT;
		}
		x->body_pos += got;
		return (size_t)got;
	}
	left = (int64_t)rq->body_mem_len - x->body_pos;
	if (left <= 0)
		return 0;
	if ((int64_t)want > left)
		want = (size_t)left;
	memcpy(data, rq->body_mem + x->body_pos, want);
	x->body_pos += (int64_t)want;
	return want;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
	s3_xfer *x = ud;

	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->body_pos = (int64_t)off;
	return CURL_SEEKFUNC_OK;
}

static struct curl_slist *slist_add(struct curl_slist *l, bool *oom, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct curl_slist *slist_add(struct curl_slist *l, bool *oom, const char *fmt, ...)
{
	char line[2048];
	struct curl_slist *n;
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof(line)) {
		*oom = true;
		return l;
	}
	n = curl_slist_append(l, line);
	if (!n) {
		*oom = true;
		return l;
	}
	return n;
}

/* Signed headers for one attempt; NULL on failure. */
static struct curl_slist *build_headers(const s3_backend *s3, const s3_req *rq, const char *path)
{
	vtp_sigv4_header hs[8];
	size_t nh = 0;
	char date[17];
	char auth[1024];
	const char *sha = rq->payload_sha256 ? rq->payload_sha256 : VTP__EMPTY_SHA256;
	struct curl_slist *l = NULL;
	bool bad = false;

	vtp__sigv4_amz_date(now_unix_s(), date);
	hs[nh++] = (vtp_sigv4_header){"host", s3->host};
	hs[nh++] = (vtp_sigv4_header){"x-amz-content-sha256", sha};
	hs[nh++] = (vtp_sigv4_header){"x-amz-date", date};
	for (size_t i = 0; i < rq->nextra; i++)
		hs[nh++] = rq->extra[i];
	for (size_t i = 0; i < nh; i++)
		l = slist_add(l, &bad, "%s: %s", hs[i].name, hs[i].value);
	if (s3->access_key) {
		vtp_sigv4_request sr = {
			.method = rq->method,
			.path = path,
			.query = rq->query,
			.headers = hs,
			.nheaders = nh,
			.payload_sha256 = sha,
			.amz_date = date,
			.region = s3->region,
			.service = "s3",
			.access_key = s3->access_key,
			.secret_key = s3->secret_key,
		};

		if (vtp_sigv4_authorization(&sr, auth, sizeof(auth), NULL, NULL) != 0)
			bad = true;
		else
			l = slist_add(l, &bad, "Authorization: %s", auth);
		OPENSSL_cleanse(auth, sizeof(auth));
	}
	/* curl's own defaults would be sent unsigned; say what we mean */
	if (strcmp(rq->method, "POST") == 0 && !bad) {
		bool has_type = false;

		for (size_t i = 0; i < rq->nextra; i++)
			has_type |= strcasecmp(rq->extra[i].name, "content-type") == 0;
		if (!has_type)
			l = slist_add(l, &bad, "Content-Type:");
	}
	if (bad) {
		curl_slist_free_all(l);
		return NULL;
	}
	return l;
}

static void set_common(CURL *h, long connect_timeout_s, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect_timeout_s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = '\0';
}

/* One try of rq on h. */
static CURLcode s3_attempt(const s3_backend *s3, CURL *h, s3_req *rq, s3_xfer *x, char *errbuf)
{
	vtp_buf path, url;
	struct curl_slist *headers = NULL;
	CURLcode res = CURLE_OUT_OF_MEMORY;

	vtp_buf_init(&path, 8192);
	vtp_buf_init(&url, 16384);
	if (s3_path(s3, rq->key, &path) != 0 ||
	    vtp_buf_appendf(&url, "%s%s%s%s", s3->endpoint, path.data, rq->query ? "?" : "",
			    rq->query ? rq->query : "") != 0)
		goto out;
	headers = build_headers(s3, rq, path.data);
	if (!headers)
		goto out;
	curl_easy_reset(h);
	set_common(h, rq->connect_timeout_s, errbuf);
	curl_easy_setopt(h, CURLOPT_URL, url.data);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	if (rq->timeout_s > 0) {
		curl_easy_setopt(h, CURLOPT_TIMEOUT, rq->timeout_s);
	} else {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, S3_LOW_SPEED_BYTES);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, S3_LOW_SPEED_TIME);
	}
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(rq->body_fd >= 0 ? rq->body_len
							       : (int64_t)rq->body_mem_len));
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body_mem ? rq->body_mem : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_mem_len);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	rq->status = 0;
	rq->content_length = -1;
	rq->received = 0;
	rq->etag[0] = '\0';
	rq->content_range[0] = '\0';
	res = curl_easy_perform(h);
	if (res == CURLE_OK) {
		long code = 0;

		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		rq->status = code;
	}
	/* the handle goes back to the pool: drop the pointers into this call
	 * (the connection stays open for the next request) */
	curl_easy_reset(h);
out:
	/* the headers held the signature: wipe before freeing */
	for (struct curl_slist *l = headers; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(headers);
	vtp_buf_free(&path);
	vtp_buf_free(&url);
	return res;
}

static void take_code(const char *xml, char *out, size_t outlen)
{
	char *code = xml_get(xml, "Code");

	out[0] = '\0';
	if (code) {
		snprintf(out, outlen, "%s", code);
		vtp_free(code);
	}
}

/* Network trouble is worth another try; a bad URL or certificate is not. */
static bool retryable_curl(CURLcode res)
{
	switch (res) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
		return false;
	default:
		return true;
	}
}

static bool retryable_status(long status)
{
	return status >= 500 || status == 429 || status == 408;
}

/* rq with retries. 0 on a 2xx; VTP_ENOTFOUND (404), VTP_ERANGE (416),
 * VTP_EUNAVAIL (anything else from the endpoint or the network, after the
 * retries), VTP_ETOOBIG / VTP_EIO (the local side of the transfer). */
static int s3_perform(s3_backend *s3, s3_req *rq)
{
	CURL *h = pool_get(s3);
	size_t out_start = rq->out ? rq->out->len : 0;
	char errbuf[CURL_ERROR_SIZE];
	char why[400] = "";
	int rc = VTP_EUNAVAIL;

	if (!h)
		return VTP_EINTERNAL;
	for (int attempt = 1; attempt <= rq->attempts; attempt++) {
		s3_xfer x = {.rq = rq};
		CURLcode res;
		bool retry = false;

		if (attempt > 1) {
			int64_t ms = backoff_ms(attempt - 1);

			VTP_INFO("s3: %s %s: %s; retry %d/%d in %.1f s", rq->op,
				 rq->key ? rq->key : "(bucket)", why, attempt - 1, rq->attempts - 1,
				 (double)ms / 1000.0);
			sleep_ms(ms);
		}
		if (rq->out) {
			rq->out->len = out_start;
			if (rq->out->data)
				rq->out->data[out_start] = '\0';
		}
		if (rq->out_fd >= 0 && (ftruncate(rq->out_fd, 0) != 0 ||
					lseek(rq->out_fd, 0, SEEK_SET) != 0)) {
			rc = VTP_EIO;
			break;
		}
		vtp_buf_init(&x.errbody, S3_ERRBODY_MAX);
		res = s3_attempt(s3, h, rq, &x, errbuf);
		rq->s3_code[0] = '\0';
		if (x.errbody.data)
			take_code(x.errbody.data, rq->s3_code, sizeof(rq->s3_code));
		vtp_buf_free(&x.errbody);
		if (x.sink_rc || x.src_rc) {
			rc = x.sink_rc ? x.sink_rc : x.src_rc;
			if (x.src_rc)
				VTP_WARN("s3: %s %s: reading the local file failed", rq->op,
					 rq->key ? rq->key : "");
			break;
		}
		if (res != CURLE_OK) {
			snprintf(why, sizeof(why), "%.100s%s%.255s", curl_easy_strerror(res),
				 errbuf[0] ? ": " : "", errbuf);
			retry = retryable_curl(res);
		} else if (rq->status >= 200 && rq->status <= 299) {
			if (rq->error_in_body && rq->out && rq->out->data &&
			    strstr(rq->out->data + out_start, "<Error>")) {
				take_code(rq->out->data + out_start, rq->s3_code, sizeof(rq->s3_code));
				snprintf(why, sizeof(why), "HTTP %ld with an error (%s)", rq->status,
					 rq->s3_code);
				retry = true;
			} else {
				rc = 0;
				break;
			}
		} else if (rq->status == 404 && strcmp(rq->s3_code, "NoSuchBucket") != 0) {
			rc = VTP_ENOTFOUND;
			break;
		} else if (rq->status == 416) {
			rc = VTP_ERANGE;
			break;
		} else {
			snprintf(why, sizeof(why), "HTTP %ld%s%s%s", rq->status,
				 rq->s3_code[0] ? " (" : "", rq->s3_code, rq->s3_code[0] ? ")" : "");
			retry = retryable_status(rq->status);
		}
		if (!retry || attempt == rq->attempts) {
			VTP_WARN("s3: %s %s failed: %s (after %d attempt%s)", rq->op,
				 rq->key ? rq->key : "(bucket)", why, attempt, attempt > 1 ? "s" : "");
			rc = VTP_EUNAVAIL;
			break;
		}
	}
	if (rc != 0 && rq->out) {
		rq->out->len = out_start;
		if (rq->out->data)
			rq->out->data[out_start] = '\0';
	}
	pool_put(s3, h);
	return rc;
}

/* ---- operations ----------------------------------------------------------------------- */

static int s3_ping(void *be)
{
	s3_req rq;
	int rc;

	req_init(&rq, "ping", "HEAD", NULL);
	rq.attempts = 1;
	rq.timeout_s = S3_PING_TIMEOUT;
	rq.connect_timeout_s = 2;
	rc = s3_perform(be, &rq);
	if (rc == VTP_ENOTFOUND)
		VTP_WARN("s3: ping: the bucket does not exist (HTTP 404)");
	return rc == 0 ? 0 : VTP_EUNAVAIL;
}

static int s3_stat(void *be, const char *key, int64_t *size)
{
	s3_req rq;
	int rc;

	req_init(&rq, "stat", "HEAD", key);
	rc = s3_perform(be, &rq);
	if (rc == 0 && rq.content_length < 0) {
		VTP_WARN("s3: stat %s: no Content-Length in the answer", key);
		rc = VTP_EUNAVAIL;
	}
	if (rc == 0)
		*size = rq.content_length;
	return rc;
}

static int s3_get_buf(void *be, const char *key, vtp_buf *out)
{
	s3_req rq;
	int rc;

	req_init(&rq, "get", "GET", key);
	rq.out = out;
	rq.timeout_s = 0;
	rc = s3_perform(be, &rq);
	if (rc == 0 && rq.content_length >= 0 && rq.received != rq.content_length) {
		VTP_WARN("s3: get %s: %lld of %lld bytes", key, (long long)rq.received,
			 (long long)rq.content_length);
		rc = VTP_EUNAVAIL;
	}
	return rc;
}

static int s3_get_file(void *be, const char *key, const char *path)
{
	char tmp[PATH_MAX];
	s3_req rq;
	int fd, rc;

	fd = vtp__storage_tmpfile(path, tmp, sizeof(tmp));
	if (fd < 0)
		return VTP_EIO;
	req_init(&rq, "get_file", "GET", key);
	rq.out_fd = fd;
	rq.timeout_s = 0;
	rc = s3_perform(be, &rq);
	if (rc == 0 && rq.content_length >= 0 && rq.received != rq.content_length) {
		VTP_WARN("s3: get_file %s: %lld of %lld bytes", key, (long long)rq.received,
			 (long long)rq.content_length);
		rc = VTP_EUNAVAIL;
	}
	if (rc != 0) {
		close(fd);
		unlink(tmp);
		return rc;
	}
	return vtp__storage_commit(fd, tmp, path);
}

static int s3_delete(void *be, const char *key)
{
	s3_req rq;
	int rc;

	req_init(&rq, "delete", "DELETE", key);
	rc = s3_perform(be, &rq);
	return rc == VTP_ENOTFOUND ? 0 : rc;
}

/* The object at key must now be size bytes. */
static int confirm_size(s3_backend *s3, const char *key, int64_t size)
{
	int64_t got = -1;
	int rc = s3_stat(s3, key, &got);

	if (rc == 0 && got != size) {
		VTP_WARN("s3: put %s: the stored object has %lld bytes, not %lld", key,
			 (long long)got, (long long)size);
		rc = VTP_EUNAVAIL;
	} else if (rc == VTP_ENOTFOUND) {
		VTP_WARN("s3: put %s: the object is not there after the upload", key);
		rc = VTP_EUNAVAIL;
	}
	return rc;
}

static int put_single(s3_backend *s3, const char *key, int fd, int64_t size, const char *ctype)
{
	char sha[VTP__SHA256_HEX];
	s3_req rq;
	int rc;

	if (vtp__sha256_fd_hex(fd, 0, size, sha) != 0) {
		VTP_WARN("s3: put %s: reading the local file failed", key);
		return VTP_EIO;
	}
	req_init(&rq, "put", "PUT", key);
	rq.extra[rq.nextra++] = (vtp_sigv4_header){"content-type", ctype};
	rq.payload_sha256 = sha;
	rq.body_fd = fd;
	rq.body_off = 0;
	rq.body_len = size;
	rq.timeout_s = 0;
	rc = s3_perform(s3, &rq);
	if (rc == 0 && !rq.etag[0]) {
		VTP_WARN("s3: put %s: HTTP %ld without an ETag", key, rq.status);
		rc = VTP_EUNAVAIL;
	}
	return rc;
}

static void abort_multipart(s3_backend *s3, const char *key, const char *upload_id)
{
	vtp_buf q;
	s3_req rq;

	vtp_buf_init(&q, 4096);
	if (vtp_buf_appends(&q, "uploadId=") == 0 && vtp_sigv4_uri_encode(&q, upload_id, false) == 0) {
		req_init(&rq, "abort_multipart", "DELETE", key);
		rq.query = q.data;
		rq.attempts = 2;
		(void)s3_perform(s3, &rq);
	}
	vtp_buf_free(&q);
}

static int put_multipart(s3_backend *s3, const char *key, int fd, int64_t size, const char *ctype)
{
	int64_t part = s3->part_size;
	int64_t nparts;
	char *upload_id = NULL;
	char **etags = NULL;
	vtp_buf body, q, xml;
	char sha[VTP__SHA256_HEX];
	s3_req rq;
	int rc;

	vtp_buf_init(&body, S3_XML_MAX);
	vtp_buf_init(&q, 4096);
	vtp_buf_init(&xml, 64 * 1024);
	nparts = (size + part - 1) / part;
	if (nparts > S3_MAX_PARTS) {
		part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
		part = (part + MiB - 1) / MiB * MiB;
		nparts = (size + part - 1) / part;
	}

	req_init(&rq, "put (create multipart)", "POST", key);
	rq.query = "uploads=";
	rq.extra[rq.nextra++] = (vtp_sigv4_header){"content-type", ctype};
	rq.out = &xml;
	rc = s3_perform(s3, &rq);
	if (rc != 0)
		goto out;
	upload_id = xml_get(xml.data, "UploadId");
	if (!upload_id || !*upload_id) {
		VTP_WARN("s3: put %s: no UploadId in the CreateMultipartUpload answer", key);
		rc = VTP_EUNAVAIL;
		goto out;
	}

	etags = vtp_calloc((size_t)nparts, sizeof(*etags));
	for (int64_t i = 0; i < nparts && rc == 0; i++) {
		int64_t off = i * part;
		int64_t len = size - off < part ? size - off : part;

		if (vtp__sha256_fd_hex(fd, off, len, sha) != 0) {
			VTP_WARN("s3: put %s: reading the local file failed", key);
			rc = VTP_EIO;
			break;
		}
		vtp_buf_reset(&q);
		rc = vtp_buf_appendf(&q, "partNumber=%lld&uploadId=", (long long)(i + 1));
		if (rc == 0)
			rc = vtp_sigv4_uri_encode(&q, upload_id, false);
		if (rc != 0)
			break;
		req_init(&rq, "put (upload part)", "PUT", key);
		rq.query = q.data;
		rq.payload_sha256 = sha;
		rq.body_fd = fd;
		rq.body_off = off;
		rq.body_len = len;
		rq.timeout_s = 0;
		rc = s3_perform(s3, &rq);
		if (rc == 0 && !rq.etag[0]) {
			VTP_WARN("s3: put %s: part %lld answered without an ETag", key,
				 (long long)(i + 1));
			rc = VTP_EUNAVAIL;
		}
		if (rc == 0)
			etags[i] = vtp_strdup(rq.etag);
	}
	if (rc != 0)
		goto abort;

	rc = vtp_buf_appends(&body, "<CompleteMultipartUpload>");
	for (int64_t i = 0; i < nparts && rc == 0; i++) {
		rc = vtp_buf_appendf(&body, "<Part><PartNumber>%lld</PartNumber><ETag>",
				     (long long)(i + 1));
		if (rc == 0)
			rc = xml_escape(&body, etags[i]);
		if (rc == 0)
			rc = vtp_buf_appends(&body, "</ETag></Part>");
	}
	if (rc == 0)
		rc = vtp_buf_appends(&body, "</CompleteMultipartUpload>");
	if (rc != 0)
		goto abort;
	vtp__sha256_hex(body.data, body.len, sha);
	vtp_buf_reset(&q);
	rc = vtp_buf_appends(&q, "uploadId=");
	if (rc == 0)
		rc = vtp_sigv4_uri_encode(&q, upload_id, false);
	if (rc != 0)
		goto abort;
	vtp_buf_reset(&xml);
	req_init(&rq, "put (complete multipart)", "POST", key);
	rq.query = q.data;
	rq.extra[rq.nextra++] = (vtp_sigv4_header){"content-type", "application/xml"};
	rq.payload_sha256 = sha;
	rq.body_mem = body.data;
	rq.body_mem_len = body.len;
	rq.out = &xml;
	rq.error_in_body = true;
	rq.timeout_s = S3_COMPLETE_TIMEOUT;
	rc = s3_perform(s3, &rq);
	if (rc == 0 && (!xml.data || !strstr(xml.data, "<ETag>"))) {
		VTP_WARN("s3: put %s: CompleteMultipartUpload answered without an ETag", key);
		rc = VTP_EUNAVAIL;
	}
	if (rc == 0) {
		VTP_DEBUG("s3: put %s: %lld bytes in %lld parts", key, (long long)size,
			  (long long)nparts);
		goto out;
	}
abort:
	abort_multipart(s3, key, upload_id);
out:
	if (etags)
		for (int64_t i = 0; i < nparts; i++)
			vtp_free(etags[i]);
	vtp_free(etags);
	vtp_free(upload_id);
	vtp_buf_free(&body);
	vtp_buf_free(&q);
	vtp_buf_free(&xml);
	return rc;
}

static int s3_put_file(void *be, const char *key, const char *path, const char *content_type)
{
	s3_backend *s3 = be;
	const char *ctype = content_type ? content_type : "application/octet-stream";
	struct stat sb;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		VTP_WARN("s3: put %s: cannot open %s: %s", key, path, strerror(errno));
		return VTP_EIO;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		VTP_WARN("s3: put %s: %s is not a regular file", key, path);
		close(fd);
		return VTP_EIO;
	}
	if ((int64_t)sb.st_size > s3->threshold)
		rc = put_multipart(s3, key, fd, (int64_t)sb.st_size, ctype);
	else
		rc = put_single(s3, key, fd, (int64_t)sb.st_size, ctype);
	close(fd);
	if (rc == 0)
		rc = confirm_size(s3, key, (int64_t)sb.st_size);
	return rc;
}

/* ---- list and delete ------------------------------------------------------------------- */

static int parse_list_page(const char *xml, const char *prefix, char ***keys, size_t *n,
			   size_t *cap, bool *truncated, char **token)
{
	const char *p = xml;
	const char *t;
	size_t tl;

	if (!xml || !strstr(xml, "<ListBucketResult"))
		return VTP_EUNAVAIL;
	while (xml_find(p, "Contents", &t, &tl, &p)) {
		const char *k;
		size_t kl;
		vtp_buf key;

		/* the <Key> must lie inside this <Contents> */
		if (!xml_find(t, "Key", &k, &kl, NULL) || k + kl > t + tl)
			return VTP_EUNAVAIL;
		vtp_buf_init(&key, VTP__STORAGE_KEY_MAX * 4);
		if (xml_unescape(k, kl, &key) != 0 || !key.data ||
		    strlen(key.data) != key.len) {
			vtp_buf_free(&key);
			return VTP_EUNAVAIL;
		}
		if (strncmp(key.data, prefix, strlen(prefix)) != 0) {
			vtp_buf_free(&key);
			continue;
		}
		if (*n == *cap) {
			if (*cap >= S3_LIST_MAX) {
				vtp_buf_free(&key);
				return VTP_ETOOBIG;
			}
			*cap = *cap ? *cap * 2 : 256;
			*keys = vtp_realloc(*keys, *cap * sizeof(**keys));
		}
		(*keys)[(*n)++] = vtp_buf_steal(&key, NULL);
	}
	*truncated = xml_find(xml, "IsTruncated", &t, &tl, NULL) && tl == 4 &&
		     memcmp(t, "true", 4) == 0;
	vtp_free(*token);
	*token = *truncated ? xml_get(xml, "NextContinuationToken") : NULL;
	if (*truncated && (!*token || !**token))
		return VTP_EUNAVAIL;
	return 0;
}

int vtp__s3_parse_list_page(const char *xml, const char *prefix, char ***keys, size_t *n,
			    size_t *cap, bool *truncated, char **token)
{
	return parse_list_page(xml, prefix, keys, n, cap, truncated, token);
}

static int s3_list(void *be, const char *prefix, char ***keys, size_t *n)
{
	s3_backend *s3 = be;
	char **list = NULL;
	size_t count = 0, cap = 0;
	char *token = NULL;
	bool truncated = true;
	vtp_buf raw, query, xml;
	int rc = 0;

	vtp_buf_init(&raw, 16384);
	vtp_buf_init(&query, 16384);
	vtp_buf_init(&xml, S3_XML_MAX);
	for (int page = 0; truncated && rc == 0; page++) {
		s3_req rq;

		vtp_buf_reset(&raw);
		vtp_buf_reset(&query);
		vtp_buf_reset(&xml);
		rc = vtp_buf_appendf(&raw, "list-type=2&max-keys=%d&prefix=", s3->list_max_keys);
		if (rc == 0)
			rc = vtp_sigv4_uri_encode(&raw, prefix, false);
		if (rc == 0 && token) {
			rc = vtp_buf_appends(&raw, "&continuation-token=");
			if (rc == 0)
				rc = vtp_sigv4_uri_encode(&raw, token, false);
		}
		if (rc == 0)
			rc = vtp__sigv4_canonical_query(&query, raw.data);
		if (rc != 0)
			break;
		req_init(&rq, "list", "GET", NULL);
		rq.query = query.data;
		rq.out = &xml;
		rc = s3_perform(s3, &rq);
		if (rc == VTP_ENOTFOUND)
			rc = VTP_EUNAVAIL; /* the bucket itself */
		if (rc == 0) {
			rc = parse_list_page(xml.data, prefix, &list, &count, &cap, &truncated,
					     &token);
			if (rc == VTP_EUNAVAIL)
				VTP_WARN("s3: list %s: an answer that is not a ListBucketResult "
					 "(page %d)", prefix, page + 1);
		}
	}
	vtp_free(token);
	vtp_buf_free(&raw);
	vtp_buf_free(&query);
	vtp_buf_free(&xml);
	if (rc != 0) {
		vtp_storage_keys_free(list, count);
		return rc;
	}
	if (count > 1)
		qsort(list, count, sizeof(*list), vtp__storage_keys_cmp);
	*keys = list;
	*n = count;
	return 0;
}

static void md5_base64(const void *p, size_t n, char out[32])
{
	unsigned char md[16];
	unsigned int mdlen = 0;

	EVP_Digest(p, n, md, &mdlen, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, 16);
}

/* DeleteObjects for keys[0..n), n <= 1000, quiet: the answer lists errors only. */
static int delete_batch(s3_backend *s3, char **keys, size_t n)
{
	vtp_buf body, xml;
	char sha[VTP__SHA256_HEX];
	char md5[32];
	s3_req rq;
	int rc;

	vtp_buf_init(&body, S3_XML_MAX);
	vtp_buf_init(&xml, S3_XML_MAX);
	rc = vtp_buf_appends(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true"
				    "</Quiet>");
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = vtp_buf_appends(&body, "<Object><Key>");
		if (rc == 0)
			rc = xml_escape(&body, keys[i]);
		if (rc == 0)
			rc = vtp_buf_appends(&body, "</Key></Object>");
	}
	if (rc == 0)
		rc = vtp_buf_appends(&body, "</Delete>");
	if (rc != 0)
		goto out;
	vtp__sha256_hex(body.data, body.len, sha);
	md5_base64(body.data, body.len, md5);
	req_init(&rq, "delete_prefix", "POST", NULL);
	rq.query = "delete=";
	rq.extra[rq.nextra++] = (vtp_sigv4_header){"content-md5", md5};
	rq.extra[rq.nextra++] = (vtp_sigv4_header){"content-type", "application/xml"};
	rq.payload_sha256 = sha;
	rq.body_mem = body.data;
	rq.body_mem_len = body.len;
	rq.out = &xml;
	rc = s3_perform(s3, &rq);
	if (rc == 0 && xml.data && strstr(xml.data, "<Error>")) {
		char *key = xml_get(strstr(xml.data, "<Error>"), "Key");
		char code[64];

		take_code(strstr(xml.data, "<Error>"), code, sizeof(code));
		VTP_WARN("s3: delete_prefix: %s not deleted (%s)", key ? key : "an object", code);
		vtp_free(key);
		rc = VTP_EUNAVAIL;
	}
out:
	vtp_buf_free(&body);
	vtp_buf_free(&xml);
	return rc;
}

static int s3_delete_prefix(void *be, const char *prefix)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = s3_list(be, prefix, &keys, &n);

	for (size_t i = 0; i < n && rc == 0; i += S3_DELETE_BATCH)
		rc = delete_batch(be, keys + i, n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH);
	vtp_storage_keys_free(keys, n);
	return rc;
}

/* ---- presigned GET ----------------------------------------------------------------------- */

static bool header_text_ok(const char *s)
{
	if (!s)
		return true;
	if (strlen(s) > 1024)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int s3_presign_get(void *be, const char *key, int64_t now_s, int expires_s,
			  const char *content_disposition, const char *content_type, char **url)
{
	s3_backend *s3 = be;
	vtp__sigv4_param params[2];
	size_t np = 0;
	vtp_buf path, query, out;
	char date[17];
	int rc;

	if (expires_s < 1 || expires_s > 604800 || now_s < 0 ||
	    !header_text_ok(content_disposition) || !header_text_ok(content_type))
		return VTP_EINVAL;
	if (content_disposition)
		params[np++] = (vtp__sigv4_param){"response-content-disposition", content_disposition};
	if (content_type)
		params[np++] = (vtp__sigv4_param){"response-content-type", content_type};
	vtp_buf_init(&path, 8192);
	vtp_buf_init(&query, 16384);
	vtp_buf_init(&out, 32768);
	rc = s3_path(s3, key, &path);
	if (rc == 0 && s3->access_key) {
		vtp__sigv4_presign_request pr = {
			.method = "GET",
			.host = s3->host,
			.path = path.data,
			.params = params,
			.nparams = np,
			.amz_date = date,
			.expires_s = expires_s,
			.region = s3->region,
			.service = "s3",
			.access_key = s3->access_key,
			.secret_key = s3->secret_key,
		};

		vtp__sigv4_amz_date(now_s, date);
		rc = vtp__sigv4_presign_query(&pr, &query, NULL, NULL);
	} else if (rc == 0) {
		/* anonymous: the response-* parameters alone (a public bucket) */
		for (size_t i = 0; i < np && rc == 0; i++) {
			rc = vtp_buf_appendf(&query, "%s%s=", i ? "&" : "", params[i].name);
			if (rc == 0)
				rc = vtp_sigv4_uri_encode(&query, params[i].value, false);
		}
	}
	if (rc == 0)
		rc = vtp_buf_appendf(&out, "%s%s%s%s", s3->endpoint, path.data,
				     query.len ? "?" : "", query.len ? query.data : "");
	if (rc == 0)
		*url = vtp_buf_steal(&out, NULL);
	vtp_buf_free(&path);
	vtp_buf_free(&query);
	vtp_buf_free(&out);
	return rc;
}

/* ---- streaming reader -------------------------------------------------------------------- */

typedef struct s3_reader {
	vtp_storage_reader base;
	s3_backend *s3;
	char *key;
	int64_t offset, length;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned char *ring;
	size_t head, count;
	atomic_bool closing;
	bool ready;   /* the final response headers came (or the open failed) */
	bool done;    /* the transfer ended */
	int open_rc;  /* the answer to open_read */
	int xfer_rc;  /* what read() reports at the end */
	int64_t total; /* object size */
	int64_t skip;  /* bytes to drop first (a 200 to a range request) */
	int64_t want;  /* bytes still to hand out; -1: to the end */
	bool retry;    /* this attempt got a retryable status */
	long status;
	int64_t clen;
	char crange[128];
	int64_t last_rx_us;
	char why[400];
} s3_reader;

static int64_t parse_total(const char *crange)
{
	const char *slash = strrchr(crange, '/');
	char *end = NULL;
	long long x;

	if (!slash || slash[1] == '*')
		return -1;
	errno = 0;
	x = strtoll(slash + 1, &end, 10);
	return errno == 0 && end != slash + 1 && x >= 0 ? x : -1;
}

/* Locked: the final headers of an answer. */
static void reader_headers_done(s3_reader *rd)
{
	long st = rd->status;

	if (st >= 200 && st <= 299) {
		if (st == 206) {
			rd->total = parse_total(rd->crange);
			rd->want = rd->clen;
		} else {
			rd->total = rd->clen;
			rd->skip = rd->offset;
			rd->want = rd->length > 0 ? rd->length
				   : rd->clen >= 0 ? rd->clen - rd->offset
						   : -1;
		}
		if (rd->length > 0 && rd->want > rd->length)
			rd->want = rd->length;
		rd->open_rc = 0;
	} else if (st == 404) {
		rd->open_rc = VTP_ENOTFOUND;
	} else if (st == 416) {
		rd->open_rc = VTP_ERANGE;
	} else if (retryable_status(st)) {
		rd->retry = true;
		snprintf(rd->why, sizeof(rd->why), "HTTP %ld", st);
		return;
	} else {
		VTP_WARN("s3: read %s failed: HTTP %ld", rd->key, st);
		rd->open_rc = VTP_EUNAVAIL;
	}
	rd->ready = true;
	pthread_cond_broadcast(&rd->cond);
}

static size_t reader_on_header(char *data, size_t size, size_t n, void *ud)
{
	s3_reader *rd = ud;
	size_t len = size * n;

	rd->last_rx_us = vtp_mono_us();
	if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
		if (rd->status >= 200) {
			pthread_mutex_lock(&rd->lock);
			reader_headers_done(rd);
			pthread_mutex_unlock(&rd->lock);
		}
		return len;
	}
	parse_header_line(data, len, &rd->status, &rd->clen, NULL, 0, rd->crange,
			  sizeof(rd->crange));
	return len;
}

static size_t reader_on_write(char *data, size_t size, size_t n, void *ud)
{
	s3_reader *rd = ud;
	size_t len = size * n;
	size_t pos = 0;

	rd->last_rx_us = vtp_mono_us();
	pthread_mutex_lock(&rd->lock);
	if (!rd->ready || rd->open_rc != 0 || atomic_load(&rd->closing))
		goto abort; /* an error answer's body, or nobody is reading */
	if (rd->skip > 0) {
		size_t s = (int64_t)len < rd->skip ? len : (size_t)rd->skip;

		rd->skip -= (int64_t)s;
		pos = s;
	}
	while (pos < len) {
		size_t room, chunk, tail;

		if (rd->want == 0)
			goto abort; /* everything asked for is out */
		while (rd->count == S3_READER_RING && !atomic_load(&rd->closing))
			pthread_cond_wait(&rd->cond, &rd->lock);
		if (atomic_load(&rd->closing))
			goto abort;
		room = S3_READER_RING - rd->count;
		chunk = len - pos < room ? len - pos : room;
		if (rd->want > 0 && (int64_t)chunk > rd->want)
			chunk = (size_t)rd->want;
		tail = (rd->head + rd->count) % S3_READER_RING;
		if (chunk > S3_READER_RING - tail) {
			size_t first = S3_READER_RING - tail;

			memcpy(rd->ring + tail, data + pos, first);
			memcpy(rd->ring, data + pos + first, chunk - first);
		} else {
			memcpy(rd->ring + tail, data + pos, chunk);
		}
		rd->count += chunk;
		pos += chunk;
		if (rd->want > 0)
			rd->want -= (int64_t)chunk;
		pthread_cond_broadcast(&rd->cond);
	}
	pthread_mutex_unlock(&rd->lock);
	rd->last_rx_us = vtp_mono_us();
	return len;
abort:
	pthread_mutex_unlock(&rd->lock);
	return 0;
}

static int reader_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			      curl_off_t ulnow)
{
	s3_reader *rd = ud;

	if (atomic_load(&rd->closing))
		return 1;
	return vtp_mono_us() - rd->last_rx_us > S3_READER_IDLE_US;
}

static void *reader_main(void *arg)
{
	s3_reader *rd = arg;
	s3_backend *s3 = rd->s3;
	CURL *h = pool_get(s3);
	char range[64] = "";
	char errbuf[CURL_ERROR_SIZE];
	CURLcode res = CURLE_FAILED_INIT;
	int attempt, tries = 0;

	if (rd->offset > 0 || rd->length > 0) {
		if (rd->length > 0)
			snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)rd->offset,
				 (long long)(rd->offset + rd->length - 1));
		else
			snprintf(range, sizeof(range), "bytes=%lld-", (long long)rd->offset);
	}
	for (attempt = 1; h && attempt <= S3_ATTEMPTS; attempt++) {
		s3_req rq;
		vtp_buf path, url;
		struct curl_slist *headers = NULL;

		if (attempt > 1) {
			struct timespec until;
			int64_t ms = backoff_ms(attempt - 1);

			VTP_INFO("s3: read %s: %s; retry %d/%d in %.1f s", rd->key, rd->why,
				 attempt - 1, S3_ATTEMPTS - 1, (double)ms / 1000.0);
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += (time_t)(ms / 1000);
			until.tv_nsec += (long)(ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_mutex_lock(&rd->lock);
			while (!atomic_load(&rd->closing) &&
			       pthread_cond_timedwait(&rd->cond, &rd->lock, &until) == 0)
				;
			pthread_mutex_unlock(&rd->lock);
		}
		if (atomic_load(&rd->closing))
			break;
		tries = attempt;
		req_init(&rq, "read", "GET", rd->key);
		if (range[0])
			rq.extra[rq.nextra++] = (vtp_sigv4_header){"range", range};
		vtp_buf_init(&path, 8192);
		vtp_buf_init(&url, 16384);
		if (s3_path(s3, rd->key, &path) != 0 ||
		    vtp_buf_appendf(&url, "%s%s", s3->endpoint, path.data) != 0 ||
		    !(headers = build_headers(s3, &rq, path.data))) {
			vtp_buf_free(&path);
			vtp_buf_free(&url);
			snprintf(rd->why, sizeof(rd->why), "cannot build the request");
			break;
		}
		rd->status = 0;
		rd->clen = -1;
		rd->crange[0] = '\0';
		rd->retry = false;
		rd->last_rx_us = vtp_mono_us();
		curl_easy_reset(h);
		set_common(h, S3_CONNECT_TIMEOUT, errbuf);
		curl_easy_setopt(h, CURLOPT_URL, url.data);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, reader_on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, rd);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reader_on_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, rd);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, reader_on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, rd);
		res = curl_easy_perform(h);
		curl_easy_reset(h);
		for (struct curl_slist *l = headers; l; l = l->next)
			OPENSSL_cleanse(l->data, strlen(l->data));
		curl_slist_free_all(headers);
		vtp_buf_free(&path);
		vtp_buf_free(&url);

		pthread_mutex_lock(&rd->lock);
		if (rd->ready || atomic_load(&rd->closing)) {
			pthread_mutex_unlock(&rd->lock);
			break;
		}
		if (!rd->retry)
			snprintf(rd->why, sizeof(rd->why), "%.100s%s%.255s", curl_easy_strerror(res),
				 errbuf[0] ? ": " : "", errbuf);
		pthread_mutex_unlock(&rd->lock);
		if (!rd->retry && !retryable_curl(res))
			break;
	}
	pool_put(s3, h);

	pthread_mutex_lock(&rd->lock);
	if (!rd->ready) {
		if (!atomic_load(&rd->closing))
			VTP_WARN("s3: read %s failed: %s (after %d attempt%s)", rd->key,
				 h ? rd->why : "no curl handle", tries, tries == 1 ? "" : "s");
		rd->ready = true;
		rd->open_rc = VTP_EUNAVAIL;
	} else if (rd->open_rc == 0 && !atomic_load(&rd->closing)) {
		if (rd->want > 0 || (res != CURLE_OK && rd->want != 0)) {
			VTP_WARN("s3: read %s broke off: %s", rd->key,
				 res != CURLE_OK ? curl_easy_strerror(res) : "short body");
			rd->xfer_rc = VTP_EUNAVAIL;
		}
	}
	rd->done = true;
	pthread_cond_broadcast(&rd->cond);
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

static ssize_t s3_read(vtp_storage_reader *base, void *buf, size_t len)
{
	s3_reader *rd = (s3_reader *)base;
	ssize_t r;

	pthread_mutex_lock(&rd->lock);
	while (rd->count == 0 && !rd->done)
		pthread_cond_wait(&rd->cond, &rd->lock);
	if (rd->count > 0) {
		size_t k = len < rd->count ? len : rd->count;
		size_t first = S3_READER_RING - rd->head;

		if (k <= first) {
			memcpy(buf, rd->ring + rd->head, k);
		} else {
			memcpy(buf, rd->ring + rd->head, first);
			memcpy((char *)buf + first, rd->ring, k - first);
		}
		rd->head = (rd->head + k) % S3_READER_RING;
		rd->count -= k;
		pthread_cond_broadcast(&rd->cond);
		r = (ssize_t)k;
	} else {
		r = rd->xfer_rc;
	}
	pthread_mutex_unlock(&rd->lock);
	return r;
}

static void s3_reader_close(vtp_storage_reader *base)
{
	s3_reader *rd = (s3_reader *)base;

	atomic_store(&rd->closing, true);
	pthread_mutex_lock(&rd->lock);
	pthread_cond_broadcast(&rd->cond);
	pthread_mutex_unlock(&rd->lock);
	pthread_join(rd->thread, NULL);
	pthread_mutex_destroy(&rd->lock);
	pthread_cond_destroy(&rd->cond);
	vtp_free(rd->ring);
	vtp_free(rd->key);
	vtp_free(rd);
}

static int s3_open_read(void *be, const char *key, int64_t offset, int64_t length,
			vtp_storage_reader **out, int64_t *size)
{
	s3_reader *rd = vtp_calloc(1, sizeof(*rd));
	pthread_condattr_t ca;
	int rc;

	rd->base.read = s3_read;
	rd->base.close = s3_reader_close;
	rd->s3 = be;
	rd->key = vtp_strdup(key);
	rd->offset = offset;
	rd->length = length;
	rd->total = -1;
	rd->want = -1;
	rd->ring = vtp_malloc(S3_READER_RING);
	atomic_init(&rd->closing, false);
	pthread_mutex_init(&rd->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_cond_init(&rd->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&rd->thread, NULL, reader_main, rd) != 0) {
		pthread_mutex_destroy(&rd->lock);
		pthread_cond_destroy(&rd->cond);
		vtp_free(rd->ring);
		vtp_free(rd->key);
		vtp_free(rd);
		return VTP_EINTERNAL;
	}
	pthread_mutex_lock(&rd->lock);
	while (!rd->ready)
		pthread_cond_wait(&rd->cond, &rd->lock);
	rc = rd->open_rc;
	if (size)
		*size = rd->total;
	pthread_mutex_unlock(&rd->lock);
	if (rc != 0) {
		s3_reader_close(&rd->base);
		return rc;
	}
	*out = &rd->base;
	return 0;
}

/* ---- open / free ------------------------------------------------------------------------- */

static void s3_free(void *be)
{
	s3_backend *s3 = be;

	if (!s3)
		return;
	for (int i = 0; i < s3->npool; i++)
		curl_easy_cleanup(s3->pool[i]);
	pthread_mutex_destroy(&s3->lock);
	if (s3->secret_key)
		OPENSSL_cleanse(s3->secret_key, strlen(s3->secret_key));
	vtp_free(s3->bucket);
	vtp_free(s3->endpoint);
	vtp_free(s3->host);
	vtp_free(s3->region);
	vtp_free(s3->access_key);
	vtp_free(s3->secret_key);
	vtp_free(s3);
}

static const vtp__storage_ops s3_ops = {
	.kind = "s3",
	.remote = true,
	.free = s3_free,
	.ping = s3_ping,
	.put_file = s3_put_file,
	.get_file = s3_get_file,
	.get_buf = s3_get_buf,
	.stat = s3_stat,
	.list = s3_list,
	.del = s3_delete,
	.delete_prefix = s3_delete_prefix,
	.presign_get = s3_presign_get,
	.open_read = s3_open_read,
};

/* Percent-decodes s[0..n) into a new string; NULL on a bad escape or NUL. */
static char *url_decode(const char *s, size_t n)
{
	char *out = vtp_malloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= n) {
				vtp_free(out);
				return NULL;
			}
			hi = s[i + 1] >= '0' && s[i + 1] <= '9'	  ? s[i + 1] - '0'
			     : s[i + 1] >= 'a' && s[i + 1] <= 'f' ? s[i + 1] - 'a' + 10
			     : s[i + 1] >= 'A' && s[i + 1] <= 'F' ? s[i + 1] - 'A' + 10
								  : -1;
			lo = s[i + 2] >= '0' && s[i + 2] <= '9'	  ? s[i + 2] - '0'
			     : s[i + 2] >= 'a' && s[i + 2] <= 'f' ? s[i + 2] - 'a' + 10
			     : s[i + 2] >= 'A' && s[i + 2] <= 'F' ? s[i + 2] - 'A' + 10
								  : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				vtp_free(out);
				return NULL;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static bool bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_'))
			return false;
	}
	return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

static bool region_ok(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 32)
		return false;
	for (; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return false;
	return true;
}

/* http(s)://authority with no path, query, user or fragment. */
static int parse_endpoint(s3_backend *s3, const char *ep, char *err, size_t errlen)
{
	const char *auth;
	size_t alen, n = strlen(ep);

	if (strncmp(ep, "http://", 7) == 0)
		auth = ep + 7;
	else if (strncmp(ep, "https://", 8) == 0)
		auth = ep + 8;
	else
		goto bad;
	while (n > (size_t)(auth - ep) && ep[n - 1] == '/')
		n--;
	alen = n - (size_t)(auth - ep);
	if (alen == 0 || alen > 255)
		goto bad;
	for (size_t i = 0; i < alen; i++) {
		unsigned char c = (unsigned char)auth[i];

		if (c <= 0x20 || c >= 0x7f || strchr("/?#@\\%", c))
			goto bad;
	}
	{
		/* a port, if any, is digits (the host may be [v6]) */
		const char *close = memchr(auth, ']', alen);
		const char *colon = NULL;

		for (const char *p = close ? close : auth; p < auth + alen; p++)
			if (*p == ':')
				colon = p;
		if (colon) {
			size_t plen = (size_t)(auth + alen - colon - 1);

			if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen)
				goto bad;
		}
	}
	s3->endpoint = vtp_strndup(ep, n);
	s3->host = vtp_strndup(auth, alen);
	return 0;
bad:
	snprintf(err, errlen, "VTP_STORAGE_URL: invalid endpoint '%.80s' (expected "
		 "http://host:port or https://host, without a path)", ep);
	return VTP_EINVAL;
}

static int parse_s3_url(s3_backend *s3, const char *url, char *err, size_t errlen)
{
	const char *rest = url + 5; /* after s3:// */
	const char *q = strchr(rest, '?');
	size_t blen = q ? (size_t)(q - rest) : strlen(rest);
	char *endpoint = NULL, *region = NULL;
	int rc = VTP_EINVAL;

	if (blen > 0 && rest[blen - 1] == '/')
		blen--;
	if (memchr(rest, '/', blen)) {
		snprintf(err, errlen, "VTP_STORAGE_URL: an s3:// URL names a bucket, not a path "
			 "('%.80s')", url);
		goto out;
	}
	if (!bucket_ok(rest, blen)) {
		snprintf(err, errlen, "VTP_STORAGE_URL: invalid bucket name '%.*s' (3..63 of a-z "
			 "0-9 . - _)", (int)(blen < 80 ? blen : 80), rest);
		goto out;
	}
	s3->bucket = vtp_strndup(rest, blen);
	for (const char *p = q ? q + 1 : NULL; p && *p;) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		char **slot = NULL;
		char *value;

		if (len == 0) {
			p++;
			continue;
		}
		if (eq && (size_t)(eq - p) == 8 && strncmp(p, "endpoint", 8) == 0)
			slot = &endpoint;
		else if (eq && (size_t)(eq - p) == 6 && strncmp(p, "region", 6) == 0)
			slot = &region;
		if (!slot) {
			snprintf(err, errlen, "VTP_STORAGE_URL: unknown parameter '%.*s' (expected "
				 "endpoint=... and region=...)", (int)(len < 40 ? len : 40), p);
			goto out;
		}
		if (*slot) {
			snprintf(err, errlen, "VTP_STORAGE_URL: '%.*s' given twice",
				 (int)(eq - p), p);
			goto out;
		}
		value = url_decode(eq + 1, len - (size_t)(eq - p) - 1);
		if (!value || !*value) {
			vtp_free(value);
			snprintf(err, errlen, "VTP_STORAGE_URL: empty or badly encoded '%.*s'",
				 (int)(eq - p), p);
			goto out;
		}
		*slot = value;
		p += len;
		if (*p == '&')
			p++;
	}
	if (region && !region_ok(region)) {
		snprintf(err, errlen, "VTP_STORAGE_URL: invalid region '%.40s' (e.g. us-east-1)",
			 region);
		goto out;
	}
	s3->region = vtp_strdup(region ? region : "us-east-1");
	if (endpoint) {
		if (parse_endpoint(s3, endpoint, err, errlen) != 0)
			goto out;
	} else {
		s3->endpoint = vtp_malloc(strlen(s3->region) + 32);
		snprintf(s3->endpoint, strlen(s3->region) + 32, "https://s3.%s.amazonaws.com",
			 s3->region);
		s3->host = vtp_strdup(s3->endpoint + 8);
	}
	rc = 0;
out:
	vtp_free(endpoint);
	vtp_free(region);
	return rc;
}

int vtp__s3_open(vtp_storage *st, const vtp_storage_config *cfg, char *err, size_t errlen)
{
	s3_backend *s3 = vtp_calloc(1, sizeof(*s3));
	bool has_access = cfg->access_key && *cfg->access_key;
	bool has_secret = cfg->secret_key && *cfg->secret_key;
	int64_t list_max = 1000;
	char spool[PATH_MAX];
	int n, rc = VTP_EINVAL;

	pthread_mutex_init(&s3->lock, NULL);
	s3->threshold = S3_DEFAULT_THRESHOLD;
	s3->part_size = S3_DEFAULT_PART;
	rc = parse_s3_url(s3, cfg->url, err, errlen);
	if (rc != 0)
		goto fail;
	rc = VTP_EINVAL;
	if (has_access != has_secret) {
		snprintf(err, errlen, "%s: missing (%s is set; give both or neither)",
			 has_access ? "VTP_S3_SECRET_KEY" : "VTP_S3_ACCESS_KEY",
			 has_access ? "VTP_S3_ACCESS_KEY" : "VTP_S3_SECRET_KEY");
		goto fail;
	}
	if (has_access && (strpbrk(cfg->access_key, "/,; \t\r\n") ||
			   strlen(cfg->access_key) > 128 || strpbrk(cfg->secret_key, "\r\n"))) {
		snprintf(err, errlen, "VTP_S3_ACCESS_KEY: invalid value (no spaces, '/', ',' or ';')");
		goto fail;
	}
	if (has_access) {
		s3->access_key = vtp_strdup(cfg->access_key);
		s3->secret_key = vtp_strdup(cfg->secret_key);
	}
	if ((rc = vtp__storage_env_bytes("VTP_S3_MULTIPART_THRESHOLD", 1, INT64_MAX / 2,
					 &s3->threshold, err, errlen)) != 0 ||
	    (rc = vtp__storage_env_bytes("VTP_S3_PART_SIZE", 1024, 5 * 1024 * MiB,
					 &s3->part_size, err, errlen)) != 0 ||
	    (rc = vtp__storage_env_bytes("VTP_S3_LIST_MAX_KEYS", 1, 1000, &list_max, err,
					 errlen)) != 0)
		goto fail;
	s3->list_max_keys = (int)list_max;
	if (!cfg->data_dir || !*cfg->data_dir) {
		snprintf(err, errlen, "VTP_DATA_DIR: missing (the s3:// spool lives there)");
		rc = VTP_EINVAL;
		goto fail;
	}
	n = snprintf(spool, sizeof(spool), "%s/spool", cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(spool) - VTP__STORAGE_KEY_MAX - 64) {
		snprintf(err, errlen, "VTP_DATA_DIR: the path is too long");
		rc = VTP_EINVAL;
		goto fail;
	}
	if (vtp__storage_mkdirs(spool) != 0) {
		snprintf(err, errlen, "VTP_DATA_DIR: cannot create the spool folder '%.80s'", spool);
		rc = VTP_EIO;
		goto fail;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "VTP_STORAGE_URL: libcurl failed to initialise: %s",
			 curl_easy_strerror(curl_init_rc));
		rc = VTP_EIO;
		goto fail;
	}
	if (s3->part_size < S3_MIN_PART)
		VTP_WARN("s3: VTP_S3_PART_SIZE=%lld is below S3's 5 MiB minimum part: only test "
			 "endpoints accept it", (long long)s3->part_size);
	if (!s3->access_key)
		VTP_WARN("s3: no VTP_S3_ACCESS_KEY / VTP_S3_SECRET_KEY: requests go unsigned "
			 "(anonymous)");
	st->ops = &s3_ops;
	st->be = s3;
	st->local_root = vtp_strdup(spool);
	return 0;
fail:
	s3_free(s3);
	return rc;
}
