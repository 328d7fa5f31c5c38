/* Media delivery: the recording's file (download), its HLS playlist and
 * segments, and its thumbnail.
 *
 * Local files go out with sendfile (libmicrohttpd's fd responses, zero
 * copy). Objects in S3 are answered with a 302 to a presigned URL, or
 * streamed through the server when VTP_S3_PROXY=1. Conditional and range
 * requests follow RFC 9110: ETag (the file's SHA-256 for the recording),
 * If-None-Match (304), If-Range, one byte range (206, or 416 with
 * Content-Range: bytes * /size); several ranges are answered with the
 * whole file, as the RFC allows.
 *
 * The access log gets one "download" per download: a request that starts
 * at byte 0 (or has no Range) and is not a HEAD or a 304, and not within a
 * minute of the same user's last one for that recording from the same
 * address (players re-ask for bytes=0- while they probe). The HLS playlist
 * counts as one "view" (via hls); segments and thumbnails are not logged. */
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"

#define PLAYLIST_MAX (1u << 20)
#define PRESIGN_SECONDS 300
#define PROXY_BLOCK (256u << 10)

/* ---- one access-log entry per download ------------------------------------- */

#define DLSEEN_SLOTS 1024
#define DLSEEN_WINDOW_MS 60000

struct vtp__dlseen {
	pthread_mutex_t mu;
	struct {
		uint64_t key;
		int64_t at;
	} slot[DLSEEN_SLOTS];
};

struct vtp__dlseen *vtp__dlseen_new(void)
{
	struct vtp__dlseen *d = vtp_calloc(1, sizeof(*d));

	pthread_mutex_init(&d->mu, NULL);
	return d;
}

void vtp__dlseen_free(struct vtp__dlseen *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->mu);
	vtp_free(d);
}

/* True when this (user, recording, address) has not started a download in
 * the last minute; remembers it. */
static bool dlseen_first(struct vtp__dlseen *d, const vtp_req *r, const char *id)
{
	char k[256];
	int n = snprintf(k, sizeof(k), "%s|%s|%s", r->actor.user_id, id, r->ip);
	uint64_t key = vtp_fnv1a(k, (size_t)(n > 0 ? n : 0)) | 1;
	size_t i = (size_t)(key % DLSEEN_SLOTS);
	int64_t now = vtp_mono_us() / 1000;
	bool first;

	pthread_mutex_lock(&d->mu);
	first = d->slot[i].key != key || now - d->slot[i].at >= DLSEEN_WINDOW_MS;
	d->slot[i].key = key;
	d->slot[i].at = now;
	pthread_mutex_unlock(&d->mu);
	return first;
}

/* ---- names, validators --------------------------------------------------- */

/* The storage key of a file beside the recording's output. */
static bool sibling_key(const vtp_recording *rec, const char *name, char *out, size_t outlen)
{
	const char *slash = strrchr(rec->file_path, '/');
	int n;

	if (!slash)
		return false;
	n = snprintf(out, outlen, "%.*s/%s", (int)(slash - rec->file_path), rec->file_path, name);
	return n > 0 && (size_t)n < outlen;
}

static void http_date(int64_t ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Does an If-None-Match list name this ETag (weak comparison)? */
static bool etag_listed(const char *list, const char *etag)
{
	const char *p = list;
	size_t n = strlen(etag);

	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

int vtp__parse_range(const char *h, int64_t size, int64_t *off, int64_t *len)
{
	const char *p;
	char *end;
	unsigned long long a, b;

	if (!h)
		return 0;
	while (*h == ' ')
		h++;
	if (strncasecmp(h, "bytes=", 6) != 0)
		return 0;
	p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return 0;
	if (*p == '-') {
		if (p[1] < '0' || p[1] > '9')
			return 0;
		errno = 0;
		b = strtoull(p + 1, &end, 10);
		while (*end == ' ')
			end++;
		if (errno || *end)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*len = b >= (unsigned long long)size ? size : (int64_t)b;
		*off = size - *len;
		return 1;
	}
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	a = strtoull(p, &end, 10);
	if (errno || *end != '-')
		return 0;
	p = end + 1;
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		b = ULLONG_MAX;
	} else {
		if (*p < '0' || *p > '9')
			return 0;
		errno = 0;
		b = strtoull(p, &end, 10);
		while (*end == ' ')
			end++;
		if (errno || *end || b < a)
			return 0;
	}
	if (a >= (unsigned long long)size)
		return -1;
	if (b >= (unsigned long long)size)
		b = (unsigned long long)size - 1;
	*off = (int64_t)a;
	*len = (int64_t)(b - a + 1);
	return 1;
}

/* Content-Disposition for the download: a safe ASCII filename (the title
 * with anything but letters, digits and " -_.()" replaced, cut to 100
 * bytes) and the exact title in RFC 6266 / RFC 8187 filename*. */
static void disposition(const vtp_recording *rec, char *out, size_t outlen)
{
	const char *ext = strcmp(rec->format, "mp4") == 0 ? "mp4" : "webm";
	const unsigned char *t = (const unsigned char *)(rec->title ? rec->title : "");
	char ascii[128];
	size_t n = 0;
	vtp_buf b;
	bool last_us = false;

	for (const unsigned char *p = t; *p && n < 100; p++) {
		unsigned char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == ' ' || c == '-' || c == '_' || c == '.' || c == '(' || c == ')';

		if (ok && !(c == '.' && n == 0)) {
			ascii[n++] = (char)c;
			last_us = false;
		} else if (!last_us) {
			ascii[n++] = '_';
			last_us = true;
		}
	}
	while (n && (ascii[n - 1] == ' ' || ascii[n - 1] == '.' || ascii[n - 1] == '_'))
		n--;
	ascii[n] = '\0';
	if (n == 0)
		snprintf(ascii, sizeof(ascii), "recording");

	vtp_buf_init(&b, 4096);
	vtp_buf_appendf(&b, "attachment; filename=\"%s.%s\"; filename*=UTF-8''", ascii, ext);
	for (const unsigned char *p = t; *p; p++) {
		unsigned char c = *p;
		bool attr = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c);

		if (c == 0 || (attr ? vtp_buf_append(&b, p, 1) : vtp_buf_appendf(&b, "%%%02X", c)) != 0)
			break;
	}
	vtp_buf_appendf(&b, ".%s", ext);
	snprintf(out, outlen, "%s", b.data ? b.data : "attachment");
	vtp_buf_free(&b);
}

/* ---- serving one file ------------------------------------------------------ */

typedef struct media {
	const vtp_recording *rec;
	const char *key;
	const char *ctype;
	const char *cache;      /* Cache-Control */
	const char *disposition;/* NULL: inline */
	int64_t size;           /* -1: ask the storage */
	char etag[96];
	bool log_download;
	/* An HLS segment past the end is a client asking for what never
	 * existed (a well-formed name is all it takes): 404, not a fault. */
	bool missing_is_404;
} media;

static bool is_head(const vtp_req *r)
{
	return strcmp(r->method, "HEAD") == 0;
}

static void common_headers(struct MHD_Response *resp, const media *m, const char *lastmod)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, m->etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, lastmod);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (m->disposition)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, m->disposition);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* ---- proxy mode: an object streamed without blocking an HTTP thread ------- */

/* A pump thread reads the object (vtp_storage_read blocks) into a buffer;
 * MHD's content reader takes from it, and when it is empty suspends the
 * connection and returns 0 (the flow control microhttpd.h prescribes); the
 * pump resumes it when bytes, the end or an error arrive. The pump owns
 * the storage reader; whichever of the two sides lets go last frees the
 * proxy. */
#define PROXY_BUF (1u << 20)

typedef struct proxy {
	vtp_storage_reader *rd;
	struct MHD_Connection *conn;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf;
	size_t head, len;       /* bytes [head, head + len) of buf, a ring */
	bool eof, failed;
	bool suspended;         /* the connection waits for the pump */
	bool closing;           /* MHD let go of the response */
	int refs;               /* 2: MHD's response and the pump */
} proxy;

static void proxy_unref(proxy *px)
{
	bool last;

	pthread_mutex_lock(&px->mu);
	last = --px->refs == 0;
	pthread_mutex_unlock(&px->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&px->mu);
	pthread_cond_destroy(&px->cv);
	vtp_free(px->buf);
	vtp_free(px);
}

/* Under mu: wakes the connection when it waits. */
static void proxy_wake(proxy *px)
{
	if (px->suspended && !px->closing) {
		px->suspended = false;
		MHD_resume_connection(px->conn);
	}
	pthread_cond_broadcast(&px->cv);
}

static void *proxy_pump(void *arg)
{
	proxy *px = arg;
	char *tmp = vtp_malloc(PROXY_BLOCK);

	for (;;) {
		size_t room;
		ssize_t n;

		bool stop;

		pthread_mutex_lock(&px->mu);
		while (px->len == PROXY_BUF && !px->closing)
			pthread_cond_wait(&px->cv, &px->mu);
		room = PROXY_BUF - px->len;
		stop = px->closing;
		pthread_mutex_unlock(&px->mu);
		if (stop)
			break;
		n = vtp_storage_read(px->rd, tmp, room < PROXY_BLOCK ? room : PROXY_BLOCK);
		pthread_mutex_lock(&px->mu);
		if (n > 0) {
			for (ssize_t k = 0; k < n;) {
				size_t at = (px->head + px->len) % PROXY_BUF;
				size_t run = PROXY_BUF - at < (size_t)(n - k) ? PROXY_BUF - at : (size_t)(n - k);

				memcpy(px->buf + at, tmp + k, run);
				px->len += run;
				k += (ssize_t)run;
			}
		} else if (n == 0) {
			px->eof = true;
		} else {
			px->failed = true;
			VTP_WARN("proxy: reading from storage failed part way: %s", vtp_strerror((int)n));
		}
		proxy_wake(px);
		bool done = px->eof || px->failed || px->closing;
		pthread_mutex_unlock(&px->mu);
		if (done)
			break;
	}
	vtp_free(tmp);
	vtp_storage_reader_close(px->rd); /* aborts a transfer still running */
	proxy_unref(px);
	return NULL;
}

static ssize_t proxy_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	proxy *px = cls;
	ssize_t out = 0;

	(void)pos;
	pthread_mutex_lock(&px->mu);
	if (px->len > 0) {
		size_t n = px->len < max ? px->len : max;
		size_t run = PROXY_BUF - px->head < n ? PROXY_BUF - px->head : n;

		memcpy(buf, px->buf + px->head, run);
		memcpy(buf + run, px->buf, n - run);
		px->head = (px->head + n) % PROXY_BUF;
		px->len -= n;
		pthread_cond_broadcast(&px->cv); /* room for the pump */
		out = (ssize_t)n;
	} else if (px->failed) {
		out = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (px->eof) {
		out = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		px->suspended = true;
		MHD_suspend_connection(px->conn);
	}
	pthread_mutex_unlock(&px->mu);
	return out;
}

static void proxy_close(void *cls)
{
	proxy *px = cls;

	pthread_mutex_lock(&px->mu);
	px->closing = true;
	px->suspended = false; /* never resume a connection MHD is done with */
	pthread_cond_broadcast(&px->cv);
	pthread_mutex_unlock(&px->mu);
	proxy_unref(px);
}

/* A response streaming rd (taken over) through a pump thread; NULL on
 * failure (rd closed). */
static struct MHD_Response *proxy_response(vtp_req *r, vtp_storage_reader *rd, int64_t len)
{
	proxy *px = vtp_calloc(1, sizeof(*px));
	struct MHD_Response *resp;
	pthread_t th;

	px->rd = rd;
	px->conn = r->conn;
	px->buf = vtp_malloc(PROXY_BUF);
	px->refs = 2;
	pthread_mutex_init(&px->mu, NULL);
	pthread_cond_init(&px->cv, NULL);
	resp = MHD_create_response_from_callback((uint64_t)len, PROXY_BLOCK, proxy_read, px,
						 proxy_close);
	if (!resp) {
		vtp_storage_reader_close(rd);
		px->refs = 1;
		proxy_unref(px);
		return NULL;
	}
	if (pthread_create(&th, NULL, proxy_pump, px) != 0) {
		pthread_mutex_lock(&px->mu);
		px->failed = true; /* the response ends with an error at once */
		pthread_mutex_unlock(&px->mu);
		vtp_storage_reader_close(rd);
		proxy_unref(px); /* the pump's reference */
		return resp;
	}
	pthread_detach(th);
	return resp;
}

static void serve(vtp_req *r, media *m)
{
	vtp_storage *st = r->api->cfg.storage;
	const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_RANGE);
	const char *ifrange = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							  MHD_HTTP_HEADER_IF_RANGE);
	struct MHD_Response *resp = NULL;
	char path[4096], lastmod[40], cr[96];
	int64_t off = 0, len = 0;
	int fd = -1, want, status, rc;

	http_date(m->rec->completed_at ? m->rec->completed_at : m->rec->created_at, lastmod);
	if (inm && etag_listed(inm, m->etag)) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		common_headers(resp, m, lastmod);
		vtp__reply_response(r, 304, resp, NULL, m->cache);
		return;
	}
	/* the local copy first (file://, or an s3 spool not yet cleaned) */
	if (vtp_storage_local_path(st, m->key, path, sizeof(path)) == 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			struct stat sb;

			if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
				close(fd);
				fd = -1;
			} else {
				m->size = sb.st_size;
			}
		}
	}
	if (fd < 0 && !vtp_storage_is_remote(st) && m->missing_is_404) {
		vtp__reply_error(r, 404, "not_found", NULL, "no such HLS file");
		return;
	}
	if (fd < 0 && !vtp_storage_is_remote(st)) {
		VTP_ERROR("recording %s is done but its file %s is missing", m->rec->id, m->key);
		vtp__reply_error(r, 500, "media_missing", NULL,
				 "the recording's media is missing from storage");
		return;
	}
	if (fd < 0 && m->size < 0) {
		rc = vtp_storage_stat(st, m->key, &m->size);
		if (rc == VTP_ENOTFOUND && m->missing_is_404) {
			vtp__reply_error(r, 404, "not_found", NULL, "no such HLS file");
			return;
		}
		if (rc) {
			if (rc == VTP_ENOTFOUND)
				VTP_ERROR("recording %s is done but object %s is missing", m->rec->id,
					  m->key);
			vtp__reply_error(r, rc == VTP_ENOTFOUND ? 500 : 503,
					 rc == VTP_ENOTFOUND ? "media_missing" : "storage_unavailable",
					 NULL, "%s", rc == VTP_ENOTFOUND
							     ? "the recording's media is missing from storage"
							     : "the media storage does not answer");
			return;
		}
	}
	/* If-Range: the range applies only to the representation named */
	if (range && ifrange && strcmp(ifrange, m->etag) != 0 && strcmp(ifrange, lastmod) != 0)
		range = NULL;
	want = vtp__parse_range(range, m->size, &off, &len);
	if (want < 0) {
		if (fd >= 0)
			close(fd);
		snprintf(cr, sizeof(cr), "bytes */%" PRId64, m->size);
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
		vtp__reply_response(r, 416, resp, NULL, "no-store");
		return;
	}
	if (want == 0) {
		off = 0;
		len = m->size;
	}
	status = want ? 206 : 200;
	if (m->log_download && !is_head(r) && off == 0 &&
	    dlseen_first(r->api->dlseen, r, m->rec->id))
		vtp_recordings_audit_media(r->api->cfg.recordings, &r->actor, m->rec->id, "download",
					   json_pack("{sI}", "bytes", (json_int_t)m->size));
	if (fd >= 0) {
		resp = MHD_create_response_from_fd_at_offset64((uint64_t)len, fd, (uint64_t)off);
		if (!resp)
			close(fd);
	} else if (!r->api->cfg.s3_proxy) {
		char *url = NULL;

		rc = vtp_storage_presign_get(st, m->key, vtp_now_ms() / 1000, PRESIGN_SECONDS,
					     m->disposition, m->ctype, &url);
		if (rc) {
			vtp__reply_error(r, 500, NULL, NULL, "cannot sign a storage URL");
			return;
		}
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, url);
		vtp_free(url);
		vtp__reply_response(r, 302, resp, NULL, "no-store");
		return;
	} else if (is_head(r)) {
		/* the GET's length, without fetching a byte (MHD never reads the
		 * body of a HEAD response) */
		resp = MHD_create_response_from_callback((uint64_t)len, PROXY_BLOCK, no_body, NULL,
							 NULL);
	} else {
		vtp_storage_reader *rd = NULL;
		int64_t total = 0;

		rc = vtp_storage_open_read(st, m->key, off, len, &rd, &total);
		if (rc) {
			vtp__reply_error(r, rc == VTP_ENOTFOUND ? 500 : 503,
					 rc == VTP_ENOTFOUND ? "media_missing" : "storage_unavailable",
					 NULL, "the media storage did not give the object");
			return;
		}
		resp = proxy_response(r, rd, len);
	}
	if (!resp) {
		vtp__reply_error(r, 500, NULL, NULL, "cannot create the response");
		return;
	}
	common_headers(resp, m, lastmod);
	if (status == 206) {
		snprintf(cr, sizeof(cr), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, off, off + len - 1,
			 m->size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	vtp__reply_response(r, status, resp, m->ctype, m->cache);
}

/* The recording, checked for `action` and done; replies itself on failure. */
static bool load(vtp_req *r, vtp_action action, vtp_recording *rec)
{
	vtp_fail fail = VTP_FAIL_INIT;

	if (vtp_recordings_for_media(r->api->cfg.recordings, &r->actor, r->params[0], action, rec,
				     &fail)) {
		vtp__reply_fail(r, &fail);
		vtp_fail_clear(&fail);
		return false;
	}
	return true;
}

/* A validator that changes whenever the recording is composed again. */
static void sibling_etag(const vtp_recording *rec, const char *name, char *out, size_t outlen)
{
	char in[512];
	int n = snprintf(in, sizeof(in), "%s|%lld|%s", rec->id, (long long)rec->completed_at, name);

	snprintf(out, outlen, "\"%016llx\"",
		 (unsigned long long)vtp_fnv1a(in, (size_t)(n > 0 ? n : 0)));
}

void vtp__h_download(vtp_req *r)
{
	vtp_recording rec;
	char disp[2048], sha[65] = "";
	media m;
	json_t *meta;

	if (!load(r, VTP_ACT_DOWNLOAD, &rec))
		return;
	memset(&m, 0, sizeof(m));
	m.rec = &rec;
	m.key = rec.file_path;
	m.ctype = strcmp(rec.format, "mp4") == 0 ? "video/mp4" : "video/webm";
	m.cache = "private, max-age=300";
	m.size = rec.file_size >= 0 ? rec.file_size : -1;
	m.log_download = true;
	disposition(&rec, disp, sizeof(disp));
	m.disposition = disp;
	meta = json_loads(rec.metadata ? rec.metadata : "{}", 0, NULL);
	if (json_is_string(json_object_get(meta, "sha256")))
		snprintf(sha, sizeof(sha), "%s", json_string_value(json_object_get(meta, "sha256")));
	json_decref(meta);
	if (strlen(sha) == 64)
		snprintf(m.etag, sizeof(m.etag), "\"%.32s\"", sha);
	else
		sibling_etag(&rec, "file", m.etag, sizeof(m.etag));
	serve(r, &m);
	vtp_recording_clear(&rec);
}

void vtp__h_thumbnail(vtp_req *r)
{
	vtp_recording rec;
	char key[1200];
	media m;

	if (!load(r, VTP_ACT_VIEW, &rec))
		return;
	if (!sibling_key(&rec, "thumbnail.jpg", key, sizeof(key))) {
		vtp_recording_clear(&rec);
		vtp__reply_error(r, 404, "not_found", NULL, "this recording has no thumbnail");
		return;
	}
	memset(&m, 0, sizeof(m));
	m.rec = &rec;
	m.key = key;
	m.ctype = "image/jpeg";
	m.cache = "private, max-age=3600";
	m.size = -1;
	sibling_etag(&rec, "thumbnail.jpg", m.etag, sizeof(m.etag));
	serve(r, &m);
	vtp_recording_clear(&rec);
}

/* index.m3u8, init.mp4, seg_<digits>.m4s: nothing else is ever served. */
static const char *hls_type(const char *name)
{
	size_t n = strlen(name);

	if (strcmp(name, "index.m3u8") == 0)
		return "application/vnd.apple.mpegurl";
	if (strcmp(name, "init.mp4") == 0)
		return "video/mp4";
	if (n < 13 || n > 24 || strncmp(name, "seg_", 4) != 0 || strcmp(name + n - 4, ".m4s") != 0)
		return NULL;
	for (size_t i = 4; i < n - 4; i++)
		if (name[i] < '0' || name[i] > '9')
			return NULL;
	return "video/mp4";
}

int vtp__rewrite_playlist(const char *in, size_t len, const char *token, vtp_buf *out)
{
	const char *p = in, *end = in + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t l = (size_t)(le - p);
		const char *uri;
		int rc = 0;

		if (l && p[l - 1] == '\r')
			l--;
		if (l == 0) {
			/* blank line */
		} else if (p[0] == '#') {
			uri = memmem(p, l, "URI=\"", 5);
			if (uri) {
				const char *q = memchr(uri + 5, '"', (size_t)(p + l - (uri + 5)));

				if (!q)
					return VTP_EINVAL;
				rc = vtp_buf_append(out, p, (size_t)(q - p));
				if (!rc)
					rc = vtp_buf_appendf(out, "?token=%s", token);
				if (!rc)
					rc = vtp_buf_append(out, q, (size_t)(p + l - q));
			} else {
				rc = vtp_buf_append(out, p, l);
			}
		} else {
			rc = vtp_buf_append(out, p, l);
			if (!rc)
				rc = vtp_buf_appendf(out, "?token=%s", token);
		}
		if (!rc)
			rc = vtp_buf_append(out, "\n", 1);
		if (rc)
			return rc;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

static void playlist(vtp_req *r, const vtp_recording *rec, const char *key)
{
	vtp_storage *st = r->api->cfg.storage;
	char tok[VTP_MEDIA_TOKEN_BUFLEN];
	vtp_buf in, out;
	int rc;

	vtp_buf_init(&in, PLAYLIST_MAX);
	rc = vtp_storage_get_buf(st, key, &in);
	if (rc) {
		vtp_buf_free(&in);
		if (rc == VTP_ENOTFOUND)
			VTP_ERROR("recording %s is done but its playlist %s is missing", rec->id, key);
		vtp__reply_error(r, rc == VTP_EUNAVAIL ? 503 : 500,
				 rc == VTP_EUNAVAIL ? "storage_unavailable" : "media_missing", NULL,
				 "the recording's playlist cannot be read");
		return;
	}
	vtp_recordings_media_token(r->api->cfg.recordings, VTP_MEDIA_VIEW, rec->id,
				   r->actor.user_id, tok);
	vtp_buf_init(&out, 2 * PLAYLIST_MAX);
	rc = vtp__rewrite_playlist(in.data ? in.data : "", in.len, tok, &out);
	vtp_buf_free(&in);
	if (rc) {
		vtp_buf_free(&out);
		vtp__reply_error(r, 500, NULL, NULL, "the recording's playlist is damaged");
		return;
	}
	if (!is_head(r))
		vtp_recordings_audit_media(r->api->cfg.recordings, &r->actor, rec->id, "view",
					   json_pack("{ss}", "via", "hls"));
	{
		size_t len = 0;
		char *text = vtp_buf_steal(&out, &len);
		struct MHD_Response *resp =
			MHD_create_response_from_buffer_with_free_callback(len, text, vtp_free);

		vtp__reply_response(r, 200, resp, "application/vnd.apple.mpegurl", "private, no-cache");
	}
}

void vtp__h_hls(vtp_req *r)
{
	const char *name = r->params[1];
	const char *type = hls_type(name);
	vtp_recording rec;
	char file[64], key[1200];
	media m;

	if (!type) {
		vtp__reply_error(r, 404, "not_found", NULL, "no such HLS file");
		return;
	}
	if (!load(r, VTP_ACT_VIEW, &rec))
		return;
	snprintf(file, sizeof(file), "hls/%s", name);
	if (!sibling_key(&rec, file, key, sizeof(key))) {
		vtp_recording_clear(&rec);
		vtp__reply_error(r, 404, "not_found", NULL, "this recording has no HLS");
		return;
	}
	if (strcmp(name, "index.m3u8") == 0) {
		playlist(r, &rec, key);
		vtp_recording_clear(&rec);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.rec = &rec;
	m.key = key;
	m.ctype = type;
	m.cache = "private, max-age=3600";
	m.size = -1;
	m.missing_is_404 = strncmp(name, "seg_", 4) == 0;
	sibling_etag(&rec, name, m.etag, sizeof(m.etag));
	serve(r, &m);
	vtp_recording_clear(&rec);
}
