/* The packet log (format in capture.h). The writer batches encoded records
 * in one buffer and hands them to the kernel in large write()s. A failed
 * write (full disk) is cut back to the last record boundary; the writer then
 * keeps its buffer, counts what arrives as lost, and tries again with a
 * back-off: when a write goes through, the buffer follows and then one gap
 * record with what was lost, so the file never has a hole and the reader
 * and the composer know where and how much is missing. The reader pulls the file
 * through a 256 KiB window (more than the largest record, so a record is
 * always contiguous in it) and checks every length, kind and CRC before it
 * hands a record out. The summary is the reader plus a minimal RTP header
 * look, so this module needs nothing from src/ingest; so is the re-basing
 * of a track that followed a new sender (vtp_cap_rebase). Segments: the
 * appender closes one and opens the next without waiting for the disk (the
 * real-time path never blocks on fdatasync); the closed descriptor waits in
 * a list that the owner's syncing thread empties (vtp_capw_commit: sync,
 * close, announce). The reader walks the segment files as one stream. */
#include "capture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/mem.h"

#define CAPW_DEFAULT_BUFFER (64 * 1024)
#define CAPR_WINDOW (256 * 1024)
#define RECORD_HEAD 13 /* len + arrival + kind, before the payload */

/* ---- little-endian fields ------------------------------------------------ */

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static bool kind_valid(int kind)
{
	return kind == VTP_CAP_RTP || kind == VTP_CAP_RTCP || kind == VTP_CAP_GAP ||
	       kind == VTP_CAP_NOTE;
}

/* ---- writer -------------------------------------------------------------- */

#define RETRY_FIRST_NS (200 * 1000000ULL)  /* first retry after a failed write */
#define RETRY_MAX_NS (2000 * 1000000ULL)   /* back-off cap */
#define GAP_PAYLOAD 36 /* u64 first, u64 last, u64 records, u64 bytes, u32 errno */

struct vtp_capw {
	int fd;
	uint8_t *buf;
	size_t cap, used;
	uint64_t file_off; /* bytes in the file: header and whole records */
	int err_no;     /* errno of the current failure, 0 while writing */
	/* Set by vtp_capw_sync on any thread, read by close: Linux reports a
	 * writeback failure once per descriptor, so a failed sync on the
	 * timer thread must not be forgotten by the final one. */
	atomic_int sync_errno;
	uint64_t records, bytes;
	uint64_t device; /* st_dev of the file */
	/* While a write fails: what is buffered waits, new records are
	 * counted as the current gap, and a write is tried again at
	 * retry_at (CLOCK_MONOTONIC) with a doubling back-off. */
	bool failing;
	uint64_t retry_at_ns, backoff_ns;
	uint64_t gap_records, gap_bytes, gap_first_ns, gap_last_ns;
	uint64_t buf_records, buf_first_ns, buf_last_ns; /* what the buffer holds */
	vtp_cap_loss loss; /* finished gaps */
	/* Segments. The appender alone changes fd (under mu, so that a
	 * syncing thread reads a whole value); descriptors are closed only by
	 * the syncing thread (commit) and close, never by the appender. */
	char *first_path, *cur_path;
	json_t *meta_obj;        /* the track's meta, to stamp "segment" on */
	char *meta_text;         /* when it is not an object: as given */
	uint64_t segment_ns;
	vtp_capw_segment_fn on_segment;
	void *ctx;
	uint32_t segment;        /* the open one, 1.. */
	uint64_t seg_records, seg_first_mono_ns;
	uint64_t rotate_retry_ns; /* after a failed open of the next segment */
	pthread_mutex_t mu;
	struct closed_segment {
		int fd;
		char *path;
		uint32_t index;
	} *closed; /* closed by the appender, not yet committed */
	size_t nclosed, closed_cap;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* 0 or an errno value. Regular files rarely write short, but a full disk
 * can cut a write in the middle: go on until the kernel says why. At the
 * writer's own offset (the descriptor's offset is left alone: after a cut
 * the file is truncated back to file_off). */
static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t k = pwrite(fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno;
		if (k == 0)
			return ENOSPC;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Writes whole records at the end of the file. On failure the part that
 * reached the file is cut off again (so the file still ends at a record
 * boundary), and the writer is failing until a retry succeeds. */
static int capw_write(vtp_capw *w, const uint8_t *const *parts, const size_t *lens, int nparts)
{
	uint64_t off = w->file_off;
	int e = 0;

	for (int i = 0; i < nparts && !e; i++) {
		e = pwrite_all(w->fd, parts[i], lens[i], off);
		off += lens[i];
	}
	if (!e) {
		w->file_off = off;
		return 0;
	}
	/* the torn tail goes; if even that fails the next write overwrites it */
	if (ftruncate(w->fd, (off_t)w->file_off) != 0) {
		/* nothing more to do: readers stop before a torn record */
	}
	if (!w->failing) {
		w->failing = true;
		w->backoff_ns = RETRY_FIRST_NS;
	} else {
		w->backoff_ns = w->backoff_ns * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : w->backoff_ns * 2;
	}
	w->err_no = e;
	w->loss.last_errno = e;
	w->retry_at_ns = mono_ns() + w->backoff_ns;
	return VTP_EIO;
}

static int capw_write_buffer(vtp_capw *w)
{
	const uint8_t *parts[1] = {w->buf};
	size_t lens[1] = {w->used};

	if (w->used == 0)
		return 0;
	if (capw_write(w, parts, lens, 1) != 0)
		return VTP_EIO;
	w->used = 0;
	w->buf_records = 0;
	return 0;
}

static void encode_record(uint8_t *head, int kind, uint64_t arrival_ns, const uint8_t *data,
			  size_t len, uint8_t *tail)
{
	put_le32(head, (uint32_t)len);
	put_le64(head + 4, arrival_ns);
	head[12] = (uint8_t)kind;
	put_le32(tail, vtp_crc32c(vtp_crc32c(0, head, RECORD_HEAD), data, len));
}

/* A record (or gap record) went into the open segment. */
static void capw_count_in_segment(vtp_capw *w)
{
	if (w->seg_records++ == 0)
		w->seg_first_mono_ns = mono_ns();
}

/* Space came back (or the error went away): what waited in the buffer,
 * then one gap record saying what was lost, then capture goes on. With
 * force the back-off is not waited for (close). */
static void capw_retry(vtp_capw *w, bool force)
{
	uint8_t head[RECORD_HEAD], payload[GAP_PAYLOAD], tail[4];

	if (!w->failing || (!force && mono_ns() < w->retry_at_ns))
		return;
	if (capw_write_buffer(w) != 0)
		return;
	if (w->gap_records) {
		const uint8_t *parts[3] = {head, payload, tail};
		size_t lens[3] = {RECORD_HEAD, GAP_PAYLOAD, 4};

		put_le64(payload, w->gap_first_ns);
		put_le64(payload + 8, w->gap_last_ns);
		put_le64(payload + 16, w->gap_records);
		put_le64(payload + 24, w->gap_bytes);
		put_le32(payload + 32, (uint32_t)w->err_no);
		encode_record(head, VTP_CAP_GAP, w->gap_first_ns, payload, GAP_PAYLOAD, tail);
		if (capw_write(w, parts, lens, 3) != 0)
			return;
		w->bytes += RECORD_HEAD + GAP_PAYLOAD + 4;
		capw_count_in_segment(w);
		w->loss.records += w->gap_records;
		w->loss.bytes += w->gap_bytes;
		w->loss.lost_ns += w->gap_last_ns - w->gap_first_ns;
		w->loss.gaps++;
		w->gap_records = w->gap_bytes = w->gap_first_ns = w->gap_last_ns = 0;
	}
	w->failing = false;
	w->err_no = 0;
}

/* A record that could not be taken while failing joins the current gap. */
static void capw_lose(vtp_capw *w, uint64_t arrival_ns, size_t len)
{
	if (w->gap_records == 0 || arrival_ns < w->gap_first_ns)
		w->gap_first_ns = arrival_ns;
	if (arrival_ns > w->gap_last_ns)
		w->gap_last_ns = arrival_ns;
	w->gap_records++;
	w->gap_bytes += len;
}

int vtp_cap_segment_path(const char *first_path, uint32_t segment, char *out, size_t outlen)
{
	if (segment <= 1)
		return snprintf(out, outlen, "%s", first_path);
	return snprintf(out, outlen, "%s.%06u", first_path, (unsigned)segment);
}

/* Creates path (O_EXCL) with a whole header. 0 with *fd_out and
 * *header_out, or VTP_ECONFLICT / VTP_EIO with the errno in *e; a file
 * it created without a whole header is removed again. */
static int capw_create(const char *path, const char *meta, int *fd_out, uint64_t *header_out,
		       int *e)
{
	size_t meta_len = meta ? strlen(meta) : 0;
	size_t header_len = VTP_CAP_HEADER_FIXED + meta_len + 4;
	uint8_t *header = NULL;
	int fd, rc = 0;

	*e = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*e = errno;
		return *e == EEXIST ? VTP_ECONFLICT : VTP_EIO;
	}
	header = vtp_malloc(header_len);
	memcpy(header, VTP_CAP_MAGIC, 8);
	put_le16(header + 8, VTP_CAP_VERSION);
	put_le16(header + 10, 0);
	put_le32(header + 12, (uint32_t)meta_len);
	if (meta_len)
		memcpy(header + VTP_CAP_HEADER_FIXED, meta, meta_len);
	put_le32(header + header_len - 4, vtp_crc32c(0, header, header_len - 4));
	*e = pwrite_all(fd, header, header_len, 0);
	vtp_free(header);
	if (*e) {
		rc = VTP_EIO;
		goto fail_unlink;
	}
	*fd_out = fd;
	*header_out = header_len;
	return 0;

fail_unlink:
	/* ours (O_EXCL) and useless without a whole header */
	unlink(path);
	close(fd);
	return rc;
}

/* The header meta of segment n: the track's, with "segment": n when the
 * writer segments and the meta is an object. NULL for none; free with free(). */
static char *capw_segment_meta(const vtp_capw *w, uint32_t n)
{
	if (!w->meta_obj)
		return w->meta_text ? vtp_strdup(w->meta_text) : NULL;
	json_object_set_new(w->meta_obj, "segment", json_integer(n));
	return json_dumps(w->meta_obj, JSON_COMPACT);
}

int vtp_capw_open_opts(const char *path, const char *meta, const vtp_capw_opts *opts,
		       vtp_capw **out, int *err_no)
{
	vtp_capw_opts none = {0};
	vtp_capw *w = NULL;
	char *seg_meta = NULL;
	uint64_t header_len = 0;
	int fd = -1, e = 0, rc;

	*out = NULL;
	if (err_no)
		*err_no = 0;
	if (!opts)
		opts = &none;
	if (meta && strlen(meta) > VTP_CAP_MAX_META)
		return VTP_EINVAL;
	w = vtp_calloc(1, sizeof(*w));
	w->segment_ns = opts->segment_ns;
	w->segment = 1;
	if (w->segment_ns && meta) {
		w->meta_obj = json_loads(meta, 0, NULL);
		if (!json_is_object(w->meta_obj)) {
			json_decref(w->meta_obj);
			w->meta_obj = NULL;
		}
	}
	if (meta && !w->meta_obj)
		w->meta_text = vtp_strdup(meta);
	seg_meta = capw_segment_meta(w, 1);
	if (seg_meta && strlen(seg_meta) > VTP_CAP_MAX_META) {
		rc = VTP_EINVAL;
		goto fail;
	}
	rc = capw_create(path, seg_meta, &fd, &header_len, &e);
	if (rc)
		goto fail;
	free(seg_meta);
	w->fd = fd;
	{
		struct stat st;

		if (fstat(fd, &st) == 0)
			w->device = (uint64_t)st.st_dev;
	}
	w->cap = opts->buffer_bytes ? opts->buffer_bytes : CAPW_DEFAULT_BUFFER;
	w->buf = vtp_malloc(w->cap);
	atomic_init(&w->sync_errno, 0);
	pthread_mutex_init(&w->mu, NULL);
	w->bytes = header_len;
	w->file_off = header_len;
	w->first_path = vtp_strdup(path);
	w->cur_path = vtp_strdup(path);
	w->on_segment = opts->on_segment;
	w->ctx = opts->ctx;
	*out = w;
	return 0;

fail:
	free(seg_meta);
	json_decref(w->meta_obj);
	vtp_free(w->meta_text);
	vtp_free(w);
	if (err_no)
		*err_no = e;
	return rc;
}

int vtp_capw_open(const char *path, const char *meta, size_t buffer_bytes,
		  vtp_capw **out, int *err_no)
{
	vtp_capw_opts o = {.buffer_bytes = buffer_bytes};

	return vtp_capw_open_opts(path, meta, &o, out, err_no);
}

/* Closes the open segment and opens the next, when it is due: at a record
 * boundary (between appends), never while failing (the gap record goes
 * where writing resumes), after the buffer reached the closing file. The
 * closed descriptor waits for vtp_capw_commit. When the next file cannot
 * be made (full disk, no descriptors), the open segment goes on and the
 * switch is tried again after a while: nothing is lost by waiting. */
static void capw_maybe_rotate(vtp_capw *w)
{
	char path[4200];
	char *meta;
	uint64_t now, header_len = 0;
	int fd = -1, e = 0, rc;

	if (!w->segment_ns || w->failing || w->seg_records == 0)
		return;
	now = mono_ns();
	if (now - w->seg_first_mono_ns < w->segment_ns || now < w->rotate_retry_ns)
		return;
	if (capw_write_buffer(w) != 0)
		return; /* failing now: the segment stays open */
	if (vtp_cap_segment_path(w->first_path, w->segment + 1, path, sizeof(path)) >=
	    (int)sizeof(path)) {
		w->segment_ns = 0; /* no room for the name: one file from here on */
		return;
	}
	meta = capw_segment_meta(w, w->segment + 1);
	rc = capw_create(path, meta, &fd, &header_len, &e);
	free(meta);
	if (rc) {
		w->rotate_retry_ns = now + RETRY_MAX_NS;
		return;
	}
	pthread_mutex_lock(&w->mu);
	if (w->nclosed == w->closed_cap) {
		w->closed_cap = w->closed_cap ? w->closed_cap * 2 : 4;
		w->closed = vtp_realloc(w->closed, w->closed_cap * sizeof(*w->closed));
	}
	w->closed[w->nclosed++] = (struct closed_segment){w->fd, w->cur_path, w->segment};
	w->fd = fd;
	pthread_mutex_unlock(&w->mu);
	w->cur_path = vtp_strdup(path);
	w->segment++;
	w->file_off = header_len;
	w->bytes += header_len;
	w->seg_records = 0;
}

int vtp_capw_flush(vtp_capw *w)
{
	int rc;

	if (w->failing) {
		capw_retry(w, false);
		if (w->failing)
			return VTP_EIO;
	}
	rc = capw_write_buffer(w);
	if (rc == 0)
		capw_maybe_rotate(w);
	return rc;
}

int vtp_capw_append(vtp_capw *w, int kind, uint64_t arrival_ns,
		    const uint8_t *data, size_t len)
{
	size_t need = len + VTP_CAP_RECORD_OVERHEAD;
	uint8_t head[RECORD_HEAD], tail[4], *p;

	if (len == 0 || len > VTP_CAP_MAX_PAYLOAD || !kind_valid(kind) || kind == VTP_CAP_GAP ||
	    !data)
		return VTP_EINVAL;
	if (w->failing)
		capw_retry(w, false);
	capw_maybe_rotate(w);
	if (!w->failing && need > w->cap - w->used)
		capw_write_buffer(w);
	if (w->failing)
		goto lost;
	encode_record(head, kind, arrival_ns, data, len, tail);
	if (need > w->cap) {
		/* larger than the whole buffer (empty now): straight to the file */
		const uint8_t *parts[3] = {head, data, tail};
		size_t lens[3] = {RECORD_HEAD, len, 4};

		if (capw_write(w, parts, lens, 3) != 0)
			goto lost;
	} else {
		p = w->buf + w->used;
		memcpy(p, head, RECORD_HEAD);
		memcpy(p + RECORD_HEAD, data, len);
		memcpy(p + RECORD_HEAD + len, tail, 4);
		w->used += need;
		if (w->buf_records++ == 0)
			w->buf_first_ns = arrival_ns;
		w->buf_last_ns = arrival_ns;
	}
	w->records++;
	w->bytes += need;
	capw_count_in_segment(w);
	return 0;

lost:
	capw_lose(w, arrival_ns, len);
	return VTP_EIO;
}

/* The open segment's descriptor, for the syncing thread: it stays open
 * after the unlock, since only that thread (and close) closes descriptors. */
static int capw_current_fd(vtp_capw *w)
{
	int fd;

	pthread_mutex_lock(&w->mu);
	fd = w->fd;
	pthread_mutex_unlock(&w->mu);
	return fd;
}

int vtp_capw_sync(vtp_capw *w)
{
	int expected = 0;

	if (fdatasync(capw_current_fd(w)) == 0)
		return 0;
	atomic_compare_exchange_strong(&w->sync_errno, &expected, errno);
	return VTP_EIO;
}

int vtp_capw_syncfs(vtp_capw *w)
{
	int expected = 0;

	if (syncfs(capw_current_fd(w)) == 0)
		return 0;
	atomic_compare_exchange_strong(&w->sync_errno, &expected, errno);
	return VTP_EIO;
}

int vtp_capw_commit(vtp_capw *w)
{
	struct closed_segment *list;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&w->mu);
	list = w->closed;
	n = w->nclosed;
	w->closed = NULL;
	w->nclosed = w->closed_cap = 0;
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < n; i++) {
		int expected = 0;

		if (fdatasync(list[i].fd) != 0) {
			atomic_compare_exchange_strong(&w->sync_errno, &expected, errno);
			rc = VTP_EIO;
		}
		if (close(list[i].fd) != 0)
			rc = VTP_EIO;
		if (w->on_segment)
			w->on_segment(w->ctx, list[i].path, list[i].index, false);
		vtp_free(list[i].path);
	}
	vtp_free(list);
	return rc;
}

uint64_t vtp_capw_device(const vtp_capw *w)
{
	return w->device;
}

void vtp_capw_loss(const vtp_capw *w, vtp_cap_loss *out)
{
	*out = w->loss;
	if (w->gap_records) { /* the gap still open counts too */
		out->records += w->gap_records;
		out->bytes += w->gap_bytes;
		out->lost_ns += w->gap_last_ns - w->gap_first_ns;
		out->gaps++;
	}
}

int vtp_capw_close_loss(vtp_capw *w, vtp_cap_loss *loss)
{
	int rc, rc2;

	if (loss)
		memset(loss, 0, sizeof(*loss));
	if (!w)
		return 0;
	/* a last try: what waits in the buffer and the gap record */
	capw_retry(w, true);
	rc = capw_write_buffer(w);
	if (w->failing) {
		rc = VTP_EIO;
		/* the buffer never reached the file: lost as well, just
		 * before the gap */
		if (w->buf_records) {
			if (w->gap_records == 0)
				w->gap_last_ns = w->buf_last_ns;
			w->gap_first_ns = w->buf_first_ns;
			w->gap_records += w->buf_records;
			w->gap_bytes += w->used - w->buf_records * VTP_CAP_RECORD_OVERHEAD;
		}
	}
	rc2 = vtp_capw_commit(w);
	if (!rc)
		rc = rc2;
	rc2 = vtp_capw_sync(w);
	if (!rc)
		rc = rc2;
	if (!rc && atomic_load(&w->sync_errno))
		rc = VTP_EIO;
	if (close(w->fd) != 0 && !rc)
		rc = VTP_EIO;
	if (w->on_segment)
		w->on_segment(w->ctx, w->cur_path, w->segment, true);
	if (loss)
		vtp_capw_loss(w, loss);
	pthread_mutex_destroy(&w->mu);
	json_decref(w->meta_obj);
	vtp_free(w->meta_text);
	vtp_free(w->first_path);
	vtp_free(w->cur_path);
	vtp_free(w->buf);
	vtp_free(w);
	return rc;
}

int vtp_capw_close(vtp_capw *w)
{
	return vtp_capw_close_loss(w, NULL);
}

int vtp_capw_errno(const vtp_capw *w)
{
	return w->err_no;
}

bool vtp_capw_failing(const vtp_capw *w)
{
	return w->failing;
}

uint64_t vtp_capw_records(const vtp_capw *w)
{
	return w->records;
}

uint64_t vtp_capw_bytes(const vtp_capw *w)
{
	return w->bytes;
}

uint32_t vtp_capw_segment(const vtp_capw *w)
{
	return w->segment;
}

/* ---- reader -------------------------------------------------------------- */

struct vtp_capr {
	int fd;
	uint8_t *buf;      /* CAPR_WINDOW bytes */
	size_t start, end; /* unconsumed bytes: buf[start..end) */
	uint64_t pos;      /* file offset of buf[start] in the open segment */
	bool eof, ioerr;
	bool header_torn;  /* the last header check failed on a short file */
	int state;         /* 0 while records may follow, else the sticky end */
	char *meta;        /* the first segment's */
	char **paths;      /* of the segments, in order */
	vtp_cap_segment *segs;
	size_t nsegs, cur; /* segs[cur] is open */
	uint64_t good_done; /* good bytes of the segments read through */
};

/* Makes at least want bytes (<= CAPR_WINDOW) available at buf + start, or
 * as many as the file still has. Returns how many are available. */
static size_t capr_fill(vtp_capr *r, size_t want)
{
	if (r->end - r->start >= want || r->eof || r->ioerr)
		return r->end - r->start;
	/* at most one partial record moves; every read gets a large span */
	memmove(r->buf, r->buf + r->start, r->end - r->start);
	r->end -= r->start;
	r->start = 0;
	while (r->end - r->start < want) {
		ssize_t k = read(r->fd, r->buf + r->end, CAPR_WINDOW - r->end);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r->ioerr = true;
			break;
		}
		if (k == 0) {
			r->eof = true;
			break;
		}
		r->end += (size_t)k;
	}
	return r->end - r->start;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* 0, or VTP_EINVAL / VTP_EIO with the reason in err. */
static int capr_read_header(vtp_capr *r, char *err, size_t errlen)
{
	const uint8_t *p;
	size_t avail, total;
	uint32_t meta_len;
	uint16_t version, flags;

	avail = capr_fill(r, VTP_CAP_HEADER_FIXED);
	p = r->buf + r->start;
	if (r->ioerr)
		goto fail_io;
	if (avail == 0) {
		r->header_torn = true;
		set_err(err, errlen, "empty file");
		return VTP_EINVAL;
	}
	if (memcmp(p, VTP_CAP_MAGIC, avail < 8 ? avail : 8) != 0) {
		set_err(err, errlen, "not a VTP capture (bad magic)");
		return VTP_EINVAL;
	}
	if (avail < VTP_CAP_HEADER_FIXED)
		goto fail_torn;
	version = get_le16(p + 8);
	flags = get_le16(p + 10);
	meta_len = get_le32(p + 12);
	if (version != VTP_CAP_VERSION) {
		set_err(err, errlen, "unsupported version %u", (unsigned)version);
		return VTP_EINVAL;
	}
	if (meta_len > VTP_CAP_MAX_META) {
		set_err(err, errlen, "header corrupt (metadata length %u over %u)",
			(unsigned)meta_len, (unsigned)VTP_CAP_MAX_META);
		return VTP_EINVAL;
	}
	total = VTP_CAP_HEADER_FIXED + meta_len + 4;
	avail = capr_fill(r, total);
	p = r->buf + r->start;
	if (r->ioerr)
		goto fail_io;
	if (avail < total)
		goto fail_torn;
	if (vtp_crc32c(0, p, total - 4) != get_le32(p + total - 4)) {
		set_err(err, errlen, "header CRC mismatch");
		return VTP_EINVAL;
	}
	/* after the CRC, so a flipped bit reads as corruption */
	if (flags != 0) {
		set_err(err, errlen, "unsupported header flags 0x%04x", (unsigned)flags);
		return VTP_EINVAL;
	}
	if (!r->meta) { /* the first segment's describes the track */
		r->meta = vtp_malloc((size_t)meta_len + 1);
		memcpy(r->meta, p + VTP_CAP_HEADER_FIXED, meta_len);
		r->meta[meta_len] = '\0';
	}
	r->start += total;
	r->pos = total;
	return 0;

fail_torn:
	r->header_torn = true;
	set_err(err, errlen, "header torn");
	return VTP_EINVAL;
fail_io:
	set_err(err, errlen, "read: %s", strerror(errno));
	return VTP_EIO;
}

/* Continuation files of first_path: "<its name>.<digits>", numbered 2 and
 * up, sorted by number (a second name for a number already seen is left
 * out). Fills r->paths / r->segs after the first segment's entry. */
typedef struct seg_name {
	uint32_t index;
	char *path;
} seg_name;

static int cmp_seg_name(const void *a, const void *b)
{
	uint32_t x = ((const seg_name *)a)->index, y = ((const seg_name *)b)->index;

	return x < y ? -1 : x > y;
}

static void capr_list_segments(vtp_capr *r, const char *first_path)
{
	const char *slash = strrchr(first_path, '/');
	const char *base = slash ? slash + 1 : first_path;
	size_t base_len = strlen(base), dir_len = slash ? (size_t)(slash - first_path) : 0;
	char dir[4096];
	seg_name *names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;

	r->paths = vtp_calloc(1, sizeof(*r->paths));
	r->segs = vtp_calloc(1, sizeof(*r->segs));
	r->paths[0] = vtp_strdup(first_path);
	r->segs[0].index = 1;
	r->nsegs = 1;
	if (dir_len >= sizeof(dir))
		return;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (dir_len == 0)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)dir_len, first_path);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *num = e->d_name + base_len + 1;
		size_t digits = strspn(num, "0123456789");
		unsigned long idx;
		char path[4400];

		if (strncmp(e->d_name, base, base_len) != 0 || e->d_name[base_len] != '.' ||
		    digits == 0 || digits > 9 || num[digits] != '\0')
			continue;
		idx = strtoul(num, NULL, 10);
		if (idx < 2)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = vtp_realloc(names, cap * sizeof(*names));
		}
		names[n].index = (uint32_t)idx;
		names[n++].path = vtp_strdup(path);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_seg_name);
	r->paths = vtp_realloc(r->paths, (n + 1) * sizeof(*r->paths));
	r->segs = vtp_realloc(r->segs, (n + 1) * sizeof(*r->segs));
	for (size_t i = 0; i < n; i++) {
		vtp_cap_segment *prev = &r->segs[r->nsegs - 1];

		if (names[i].index == prev->index) {
			vtp_free(names[i].path);
			continue;
		}
		memset(&r->segs[r->nsegs], 0, sizeof(r->segs[r->nsegs]));
		r->segs[r->nsegs].index = names[i].index;
		r->segs[r->nsegs].missing_before = names[i].index - prev->index - 1;
		r->paths[r->nsegs++] = names[i].path;
	}
	vtp_free(names);
}

/* Opens segs[i]'s file and checks its header. 0, or VTP_E* with the
 * reason in err (r->header_torn says whether the file was just short). */
static int capr_open_segment(vtp_capr *r, size_t i, char *err, size_t errlen)
{
	struct stat st;

	if (r->fd >= 0)
		close(r->fd);
	r->cur = i;
	r->start = r->end = 0;
	r->pos = 0;
	r->eof = r->ioerr = r->header_torn = false;
	r->fd = open(r->paths[i], O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		int e = errno;

		set_err(err, errlen, "%s: %s", r->paths[i], strerror(e));
		return e == ENOENT ? VTP_ENOTFOUND : VTP_EIO;
	}
	if (fstat(r->fd, &st) == 0)
		r->segs[i].file_bytes = (uint64_t)st.st_size;
	return capr_read_header(r, err, errlen);
}

int vtp_capr_open(const char *path, vtp_capr **out, char *err, size_t errlen)
{
	vtp_capr *r;
	int rc;

	*out = NULL;
	set_err(err, errlen, "%s", "");
	r = vtp_calloc(1, sizeof(*r));
	r->fd = -1;
	r->buf = vtp_malloc(CAPR_WINDOW);
	capr_list_segments(r, path);
	rc = capr_open_segment(r, 0, err, errlen);
	if (rc) {
		vtp_capr_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void vtp_capr_close(vtp_capr *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	for (size_t i = 0; i < r->nsegs; i++)
		vtp_free(r->paths[i]);
	vtp_free(r->paths);
	vtp_free(r->segs);
	vtp_free(r->buf);
	vtp_free(r->meta);
	vtp_free(r);
}

const char *vtp_capr_meta(const vtp_capr *r)
{
	return r->meta;
}

/* The next record of the open segment, or how that segment ends. */
static int capr_segment_next(vtp_capr *r, vtp_cap_record *rec)
{
	const uint8_t *p;
	size_t avail, total;
	uint32_t len;

	avail = capr_fill(r, RECORD_HEAD);
	p = r->buf + r->start;
	if (r->ioerr)
		return VTP_CAPR_IOERR;
	if (avail == 0)
		return VTP_CAPR_END;
	/* Fields are checked as soon as they are there: a torn tail is a
	 * prefix of a good record, so a bad field is corruption either way. */
	len = avail >= 4 ? get_le32(p) : 0;
	if (avail >= 4 && (len == 0 || len > VTP_CAP_MAX_PAYLOAD))
		return VTP_CAPR_CORRUPT;
	if (avail < RECORD_HEAD)
		return VTP_CAPR_TORN;
	if (!kind_valid(p[12]))
		return VTP_CAPR_CORRUPT;
	total = (size_t)len + VTP_CAP_RECORD_OVERHEAD;
	avail = capr_fill(r, total);
	p = r->buf + r->start;
	if (r->ioerr)
		return VTP_CAPR_IOERR;
	if (avail < total)
		return VTP_CAPR_TORN;
	if (vtp_crc32c(0, p, total - 4) != get_le32(p + total - 4))
		return VTP_CAPR_CORRUPT;
	rec->arrival_ns = get_le64(p + 4);
	rec->kind = p[12];
	rec->data = p + RECORD_HEAD;
	rec->len = len;
	rec->offset = r->pos;
	rec->segment = r->segs[r->cur].index;
	r->start += total;
	r->pos += total;
	return VTP_CAPR_RECORD;
}

/* segs[cur] is read through, ending with `end`. */
static void capr_segment_done(vtp_capr *r, int end)
{
	vtp_cap_segment *sg = &r->segs[r->cur];

	sg->end = end;
	sg->read = true;
	sg->good_bytes = r->pos;
	r->good_done += r->pos;
	r->pos = 0;
}

int vtp_capr_next(vtp_capr *r, vtp_cap_record *rec)
{
	int rc;

	for (;;) {
		if (r->state)
			return r->state;
		rc = capr_segment_next(r, rec);
		if (rc == VTP_CAPR_RECORD) {
			r->segs[r->cur].records++;
			return rc;
		}
		capr_segment_done(r, rc);
		if (rc == VTP_CAPR_IOERR || r->cur + 1 >= r->nsegs) {
			r->state = rc;
			return rc;
		}
		/* the next segment continues; one whose header is short or bad
		 * (a crash right after it was made) holds nothing */
		while (r->cur + 1 < r->nsegs) {
			rc = capr_open_segment(r, r->cur + 1, NULL, 0);
			if (rc == 0)
				break;
			if (rc == VTP_EIO && r->fd >= 0 && r->ioerr) {
				capr_segment_done(r, VTP_CAPR_IOERR);
				r->state = VTP_CAPR_IOERR;
				return r->state;
			}
			capr_segment_done(r, r->header_torn || rc == VTP_ENOTFOUND ? VTP_CAPR_TORN
										  : VTP_CAPR_CORRUPT);
			if (r->cur + 1 >= r->nsegs) {
				r->state = r->segs[r->cur].end;
				return r->state;
			}
		}
	}
}

uint64_t vtp_capr_good_bytes(const vtp_capr *r)
{
	return r->good_done + r->pos;
}

const vtp_cap_segment *vtp_capr_segments(const vtp_capr *r, size_t *n)
{
	*n = r->nsegs;
	return r->segs;
}

/* ---- summary ------------------------------------------------------------- */

static long long meta_clock_rate(const char *meta)
{
	json_t *j = json_loads(meta, 0, NULL);
	json_t *v = json_object_get(j, "clockRate");
	long long rate = 0;

	if (json_is_integer(v) && json_integer_value(v) > 0)
		rate = json_integer_value(v);
	json_decref(j);
	return rate;
}

static bool note_is_relatch(const uint8_t *p, size_t n)
{
	json_t *j = json_loadb((const char *)p, n, 0, NULL);
	const char *ev = json_string_value(json_object_get(j, "event"));
	bool yes = ev && strcmp(ev, "relatch") == 0;

	json_decref(j);
	return yes;
}

/* RTP bookkeeping over the packets that have a fixed header. */
typedef struct rtp_track {
	bool started;
	bool new_source;   /* a relatch note: the next packet starts a new space */
	uint32_t ssrc;
	uint64_t max_seq;  /* extended: cycles << 16 | seq */
	uint32_t prev_ts;
	int64_t ts_span;   /* unwrapped timestamp of the latest packet minus the first's */
} rtp_track;

static void summarize_rtp(vtp_cap_summary *s, rtp_track *t, const uint8_t *p,
			  size_t len)
{
	uint16_t seq, delta;
	uint32_t ts, ssrc, dts;

	if (len < 12 || p[0] >> 6 != 2)
		return;
	seq = (uint16_t)(p[2] << 8 | p[3]);
	ts = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
	if (!t->started) {
		t->started = true;
		t->ssrc = ssrc;
		s->ssrc = ssrc;
		t->max_seq = seq;
		t->prev_ts = ts;
		return;
	}
	if (ssrc != t->ssrc)
		s->ssrc_changed = true;
	if (t->new_source || ssrc != t->ssrc) {
		/* another sender's numbering: neither a gap nor a jump */
		t->new_source = false;
		t->ssrc = ssrc;
		t->max_seq = seq;
		t->prev_ts = ts;
		return;
	}
	/* Distance from the highest so far, modulo 2^16: under half the
	 * space ahead is forward (with a wrap when it crosses 65535). */
	delta = (uint16_t)(seq - (uint16_t)t->max_seq);
	if (delta == 0 || delta >= 0x8000) {
		s->reordered_or_dup++;
	} else {
		if (delta > 1) {
			s->seq_gaps++;
			s->seq_missing += delta - 1u;
		}
		t->max_seq += delta;
	}
	/* timestamps unwrap against the previous packet: steps under 2^31
	 * either way */
	dts = ts - t->prev_ts;
	t->ts_span += dts < 0x80000000u ? (int64_t)dts : (int64_t)dts - ((int64_t)1 << 32);
	t->prev_ts = ts;
}

int vtp_cap_summarize(const char *path, vtp_cap_summary *s, char *err,
		      size_t errlen)
{
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	rtp_track track = {0};
	long long clock_rate;
	bool any = false;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = vtp_capr_open(path, &r, err, errlen);
	if (rc)
		return rc;
	s->meta = vtp_strdup(vtp_capr_meta(r));
	clock_rate = meta_clock_rate(s->meta);
	while ((rc = vtp_capr_next(r, &rec)) == VTP_CAPR_RECORD) {
		if (rec.kind == VTP_CAP_GAP) {
			if (rec.len >= 24) {
				uint64_t first = get_le64(rec.data), last = get_le64(rec.data + 8);

				s->gaps++;
				s->gap_records += get_le64(rec.data + 16);
				if (last > first)
					s->gap_seconds += (double)(last - first) / 1e9;
				if (rec.len >= GAP_PAYLOAD)
					s->gap_errno = (int)get_le32(rec.data + 32);
			}
			continue;
		}
		if (!any) /* of any kind but gaps: a note may come first */
			s->first_arrival_ns = rec.arrival_ns;
		any = true;
		s->last_arrival_ns = rec.arrival_ns;
		if (rec.kind == VTP_CAP_RTP) {
			s->rtp_packets++;
			s->rtp_bytes += rec.len;
			summarize_rtp(s, &track, rec.data, rec.len);
		} else if (rec.kind == VTP_CAP_NOTE) {
			if (note_is_relatch(rec.data, rec.len)) {
				s->relatches++;
				track.new_source = true;
			}
		} else {
			s->rtcp_packets++;
			if (rec.len >= 2 && rec.data[1] == 200)
				s->sender_reports++;
		}
	}
	s->end = rc;
	s->good_bytes = vtp_capr_good_bytes(r);
	{
		size_t n;
		const vtp_cap_segment *segs = vtp_capr_segments(r, &n);

		s->segments = vtp_calloc(n, sizeof(*s->segments));
		memcpy(s->segments, segs, n * sizeof(*segs));
		s->nsegments = n;
		for (size_t i = 0; i < n; i++) {
			s->file_bytes += segs[i].file_bytes;
			s->segments_missing += segs[i].missing_before;
			if (i + 1 < n && segs[i].read && segs[i].end != VTP_CAPR_END)
				s->segments_cut++;
		}
	}
	if (clock_rate > 0 && track.ts_span > 0)
		s->media_seconds = (double)track.ts_span / (double)clock_rate;
	vtp_capr_close(r);
	return 0;
}

void vtp_cap_summary_clear(vtp_cap_summary *s)
{
	if (!s)
		return;
	vtp_free(s->meta);
	vtp_free(s->segments);
	memset(s, 0, sizeof(*s));
}

/* ---- re-basing (vtp_cap_rebase) -------------------------------------------- */

struct vtp_cap_rebase {
	uint32_t clock_rate;
	bool have;               /* an RTP packet seen */
	bool pending;            /* a relatch note seen: the next RTP is a new space */
	uint32_t out_ssrc;       /* the first sender's SSRC: every packet carries it */
	uint32_t cur_ssrc;       /* the current sender's own SSRC */
	uint16_t seq_off;        /* added to the current sender's numbers */
	uint32_t ts_off;
	uint16_t last_seq;       /* output numbering of the newest packet */
	uint32_t last_ts;
	uint64_t last_arrival_ns;
	uint8_t buf[VTP_CAP_MAX_PAYLOAD];
};

vtp_cap_rebase *vtp_cap_rebase_new(uint32_t clock_rate)
{
	vtp_cap_rebase *rb = vtp_calloc(1, sizeof(*rb));

	rb->clock_rate = clock_rate ? clock_rate : 90000;
	return rb;
}

void vtp_cap_rebase_free(vtp_cap_rebase *rb)
{
	vtp_free(rb);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A new sender's first packet: its numbers continue the timeline where the
 * last one left off, the timestamp advanced by the silence between them
 * (so the gap stays a gap in time) and the sequence by one missing packet
 * (so a depacketizer drops any half frame and waits for a keyframe). */
static void rebase_start(vtp_cap_rebase *rb, uint32_t ssrc, uint16_t seq, uint32_t ts,
			 uint64_t arrival_ns)
{
	uint64_t gap_ns = arrival_ns > rb->last_arrival_ns ? arrival_ns - rb->last_arrival_ns : 0;
	uint64_t ticks = gap_ns / 1000ULL * rb->clock_rate / 1000000ULL;

	if (ticks == 0)
		ticks = 1;
	rb->cur_ssrc = ssrc;
	rb->seq_off = (uint16_t)(rb->last_seq + 2u - seq);
	rb->ts_off = (uint32_t)(rb->last_ts + (uint32_t)ticks - ts);
	rb->pending = false;
}

static bool rebase_rtp(vtp_cap_rebase *rb, vtp_cap_record *rec)
{
	const uint8_t *p = rec->data;
	uint32_t ssrc, ts;
	uint16_t seq, out_seq;

	if (rec->len < 12 || p[0] >> 6 != 2)
		return true; /* not ours to judge: the caller's parser drops it */
	seq = (uint16_t)(p[2] << 8 | p[3]);
	ts = get_be32(p + 4);
	ssrc = get_be32(p + 8);
	if (!rb->have) {
		rb->have = true;
		rb->out_ssrc = rb->cur_ssrc = ssrc;
		rb->last_seq = seq;
		rb->last_ts = ts;
		rb->pending = false;
	} else if (rb->pending || ssrc != rb->cur_ssrc) {
		rebase_start(rb, ssrc, seq, ts, rec->arrival_ns);
	}
	out_seq = (uint16_t)(seq + rb->seq_off);
	/* the newest packet (under half the space ahead) moves the end */
	if ((uint16_t)(out_seq - rb->last_seq) < 0x8000u) {
		rb->last_seq = out_seq;
		rb->last_ts = ts + rb->ts_off;
	}
	if (rec->arrival_ns > rb->last_arrival_ns)
		rb->last_arrival_ns = rec->arrival_ns;
	if (rb->seq_off == 0 && rb->ts_off == 0 && ssrc == rb->out_ssrc)
		return true;
	memcpy(rb->buf, p, rec->len);
	rb->buf[2] = (uint8_t)(out_seq >> 8);
	rb->buf[3] = (uint8_t)out_seq;
	put_be32(rb->buf + 4, ts + rb->ts_off);
	put_be32(rb->buf + 8, rb->out_ssrc);
	rec->data = rb->buf;
	return true;
}

/* Sender reports tie RTP time to the sender's clock: the current sender's
 * are moved onto the output timeline; an earlier sender's (late) ones no
 * longer match any packet and are left out. */
static bool rebase_rtcp(vtp_cap_rebase *rb, vtp_cap_record *rec)
{
	bool copied = false;
	size_t off = 0;

	if (!rb->have || (rb->seq_off == 0 && rb->ts_off == 0 && rb->cur_ssrc == rb->out_ssrc))
		return true;
	while (off + 4 <= rec->len) {
		const uint8_t *p = rec->data + off;
		size_t sub = ((size_t)(p[2] << 8 | p[3]) + 1) * 4;

		if (off + sub > rec->len)
			break;
		if (p[1] == 200 && sub >= 28) {
			if (get_be32(p + 4) != rb->cur_ssrc)
				return false;
			if (!copied) {
				memcpy(rb->buf, rec->data, rec->len);
				rec->data = rb->buf;
				copied = true;
			}
			put_be32(rb->buf + off + 4, rb->out_ssrc);
			put_be32(rb->buf + off + 16, get_be32(p + 16) + rb->ts_off);
		}
		off += sub;
	}
	return true;
}

bool vtp_cap_rebase_apply(vtp_cap_rebase *rb, vtp_cap_record *rec)
{
	switch (rec->kind) {
	case VTP_CAP_RTP:
		return rebase_rtp(rb, rec);
	case VTP_CAP_RTCP:
		return rebase_rtcp(rb, rec);
	case VTP_CAP_NOTE:
		if (rb->have && note_is_relatch(rec->data, rec->len))
			rb->pending = true;
		return false;
	default:
		return false;
	}
}
