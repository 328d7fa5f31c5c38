/* Tests for the packet log in segments (capture.h "Segments"): the writer
 * closes a segment by time (a tiny interval) at a record boundary, never
 * while failing, and announces each one only once committed; the reader
 * reads a track's segments as one stream, past a segment cut by a crash or
 * damaged, reports a missing one, keeps reading old single-file captures
 * (bytes built by hand here), and the re-basing of a relatch works across
 * a segment switch. The .c is included to reach the writer's descriptor
 * and its segment clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture/capture.c"
#include "core/crc32c.c"

#define ARRIVAL0 ((uint64_t)1700000000123456789ULL)
#define META "{\"trackId\":\"t1\",\"codec\":\"opus\",\"clockRate\":48000}"

/* ---- helpers ------------------------------------------------------------- */

typedef struct fixture {
	char dir[64];
	char path[256];   /* the track's first segment */
	/* what the segment hook was told, in order */
	char seen[16][300];
	uint32_t seen_index[16];
	bool seen_last[16];
	int nseen;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/vtp-segments-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/t1.vtpcap", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		char p[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void on_segment(void *ctx, const char *path, uint32_t segment, bool last)
{
	fixture *f = ctx;

	assert_true(f->nseen < 16);
	snprintf(f->seen[f->nseen], sizeof(f->seen[0]), "%s", path);
	f->seen_index[f->nseen] = segment;
	f->seen_last[f->nseen] = last;
	f->nseen++;
}

static vtp_capw *open_segmented(fixture *f, uint64_t segment_ns)
{
	vtp_capw_opts o = {.segment_ns = segment_ns, .on_segment = on_segment, .ctx = f};
	vtp_capw *w = NULL;

	assert_int_equal(vtp_capw_open_opts(f->path, META, &o, &w, NULL), 0);
	return w;
}

/* Record i: a 20-byte RTP packet, SSRC 7, seq i, arrival ARRIVAL0 + i ms. */
static void append_rtp(vtp_capw *w, int i)
{
	uint8_t p[20] = {0x80, 111};

	p[2] = (uint8_t)(i >> 8);
	p[3] = (uint8_t)i;
	p[7] = (uint8_t)i; /* timestamp */
	p[11] = 7;         /* SSRC */
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + (uint64_t)i * 1000000ULL, p,
					 sizeof(p)),
			 0);
}

/* The open segment is due: its first record counts as long ago. */
static void make_due(vtp_capw *w)
{
	w->seg_first_mono_ns = 0;
}

static void seg_path(const fixture *f, uint32_t n, char *out, size_t outlen)
{
	assert_true(vtp_cap_segment_path(f->path, n, out, outlen) < (int)outlen);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Reads the whole track: the record numbers (from the RTP seq) and the
 * segment each came in, then the end. */
static int read_track(const char *path, int *seq, uint32_t *segment, int max, int *n)
{
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	char err[200];
	int rc;

	*n = 0;
	assert_int_equal(vtp_capr_open(path, &r, err, sizeof(err)), 0);
	while ((rc = vtp_capr_next(r, &rec)) == VTP_CAPR_RECORD) {
		assert_true(*n < max);
		seq[*n] = rec.kind == VTP_CAP_RTP ? rec.data[2] << 8 | rec.data[3] : -rec.kind;
		segment[*n] = rec.segment;
		(*n)++;
	}
	vtp_capr_close(r);
	return rc;
}

/* ---- writer ---------------------------------------------------------------- */

/* A tiny interval on the real clock: a segment closes once its first
 * record is that old, at a record boundary; it is announced only at
 * commit, never changes afterwards, and each one reads alone. */
static void test_rotation_by_time(void **state)
{
	fixture *f = *state;
	struct timespec nap = {0, 30 * 1000000L};
	char p2[300], p3[300];
	int seq[16], n;
	uint32_t segs[16];
	off_t size1;
	vtp_capw *w = open_segmented(f, 20 * 1000000ULL); /* 20 ms */

	append_rtp(w, 0);
	append_rtp(w, 1);
	assert_int_equal(vtp_capw_segment(w), 1);
	nanosleep(&nap, NULL);
	append_rtp(w, 2); /* the first record of segment 2 */
	assert_int_equal(vtp_capw_segment(w), 2);
	seg_path(f, 2, p2, sizeof(p2));
	seg_path(f, 3, p3, sizeof(p3));
	assert_string_equal(p2 + strlen(p2) - 16, "t1.vtpcap.000002");
	size1 = file_size(f->path);
	nanosleep(&nap, NULL);
	assert_int_equal(vtp_capw_flush(w), 0); /* a flush alone closes a due segment */
	assert_int_equal(vtp_capw_segment(w), 3);
	assert_int_equal(access(p3, F_OK), 0);
	/* closed, not yet committed: not announced */
	assert_int_equal(f->nseen, 0);
	assert_int_equal(vtp_capw_commit(w), 0);
	assert_int_equal(f->nseen, 2);
	assert_string_equal(f->seen[0], f->path);
	assert_string_equal(f->seen[1], p2);
	assert_int_equal(f->seen_index[0], 1);
	assert_int_equal(f->seen_index[1], 2);
	assert_false(f->seen_last[0] || f->seen_last[1]);
	append_rtp(w, 3);
	assert_int_equal(vtp_capw_commit(w), 0); /* nothing new closed */
	assert_int_equal(f->nseen, 2);
	assert_int_equal(vtp_capw_records(w), 4);
	assert_int_equal(vtp_capw_close(w), 0);
	assert_int_equal(f->nseen, 3);
	assert_string_equal(f->seen[2], p3);
	assert_true(f->seen_last[2]);
	/* segment 1 did not change after it closed */
	assert_int_equal(file_size(f->path), size1);

	/* each segment alone: a whole log with the track's meta and its number */
	{
		vtp_capr *r = NULL;
		vtp_cap_record rec;
		json_t *m;

		assert_int_equal(vtp_capr_open(p2, &r, NULL, 0), 0);
		m = json_loads(vtp_capr_meta(r), 0, NULL);
		assert_string_equal(json_string_value(json_object_get(m, "trackId")), "t1");
		assert_int_equal(json_integer_value(json_object_get(m, "segment")), 2);
		json_decref(m);
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
		assert_int_equal(rec.data[3], 2);
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
		vtp_capr_close(r);
	}
	/* the track: every record once, in order, across the three */
	assert_int_equal(read_track(f->path, seq, segs, 16, &n), VTP_CAPR_END);
	assert_int_equal(n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(seq[i], i);
	assert_int_equal(segs[0], 1);
	assert_int_equal(segs[1], 1);
	assert_int_equal(segs[2], 2);
	assert_int_equal(segs[3], 3);
}

/* Not while failing: the gap record goes into the segment where writing
 * resumed, and the switch follows once it has. */
static void test_no_rotation_while_failing(void **state)
{
	fixture *f = *state;
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC), fd;
	vtp_capw *w;
	int seq[16], n;
	uint32_t segs[16];
	vtp_cap_summary s;
	char p2[300];

	if (full < 0)
		skip();
	w = open_segmented(f, 3600ULL * 1000000000ULL);
	append_rtp(w, 0);
	assert_int_equal(vtp_capw_flush(w), 0);
	assert_true(dup2(full, w->fd) == w->fd);
	close(full);
	append_rtp(w, 1);
	assert_int_equal(vtp_capw_flush(w), VTP_EIO);
	assert_true(vtp_capw_failing(w));
	make_due(w);
	/* lost while failing; the due switch waits */
	{
		uint8_t p[20] = {0x80, 111, 0, 2};

		assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + 2000000ULL, p, 20),
				 VTP_EIO);
	}
	assert_int_equal(vtp_capw_segment(w), 1);
	/* space comes back */
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	assert_true(dup2(fd, w->fd) == w->fd);
	close(fd);
	w->retry_at_ns = 0;
	assert_int_equal(vtp_capw_flush(w), 0);
	assert_false(vtp_capw_failing(w));
	assert_int_equal(vtp_capw_segment(w), 2);
	append_rtp(w, 3);
	assert_int_equal(vtp_capw_close(w), 0);
	seg_path(f, 2, p2, sizeof(p2));
	assert_int_equal(access(p2, F_OK), 0);

	assert_int_equal(read_track(f->path, seq, segs, 16, &n), VTP_CAPR_END);
	assert_int_equal(n, 4);
	assert_int_equal(seq[0], 0);
	assert_int_equal(seq[1], 1);
	assert_int_equal(seq[2], -VTP_CAP_GAP);
	assert_int_equal(segs[2], 1);
	assert_int_equal(seq[3], 3);
	assert_int_equal(segs[3], 2);
	assert_int_equal(vtp_cap_summarize(f->path, &s, NULL, 0), 0);
	assert_int_equal(s.gaps, 1);
	assert_int_equal(s.gap_records, 1);
	assert_int_equal(s.nsegments, 2);
	assert_int_equal(s.rtp_packets, 3);
	vtp_cap_summary_clear(&s);
}

/* The next segment cannot be made (here: its name is taken): the open one
 * goes on, nothing is lost, the switch is tried again later. */
static void test_rotation_open_fails(void **state)
{
	fixture *f = *state;
	vtp_capw *w = open_segmented(f, 1000000000ULL);
	char p2[300];
	int seq[16], n;
	uint32_t segs[16];

	seg_path(f, 2, p2, sizeof(p2));
	close(open(p2, O_WRONLY | O_CREAT, 0600));
	append_rtp(w, 0);
	make_due(w);
	append_rtp(w, 1);
	assert_int_equal(vtp_capw_segment(w), 1);
	assert_true(w->rotate_retry_ns > 0);
	assert_int_equal(vtp_capw_close(w), 0);
	unlink(p2);
	assert_int_equal(read_track(f->path, seq, segs, 16, &n), VTP_CAPR_END);
	assert_int_equal(n, 2);
}

/* ---- reader ---------------------------------------------------------------- */

/* Three segments of 3 records each: seq 0..8. */
static void write_three(fixture *f)
{
	vtp_capw *w = open_segmented(f, 1000000000ULL);

	for (int i = 0; i < 9; i++) {
		if (i == 3 || i == 6)
			make_due(w);
		append_rtp(w, i);
	}
	assert_int_equal(vtp_capw_segment(w), 3);
	assert_int_equal(vtp_capw_close(w), 0);
}

/* A middle segment cut by a crash (its last record torn), or damaged, or
 * empty (made just before the crash): read up to its last whole record,
 * and the next segment continues. */
static void test_cut_middle_segment(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *what;
		int end;       /* of segment 2 */
		int records;   /* read from it */
	} cases[] = {
		{"torn", VTP_CAPR_TORN, 2},
		{"flipped", VTP_CAPR_CORRUPT, 2},
		{"empty", VTP_CAPR_TORN, 0},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char p2[300], p3[300];
		int seq[16], n;
		uint32_t segs[16];
		off_t size;
		vtp_cap_summary s;

		write_three(f);
		seg_path(f, 2, p2, sizeof(p2));
		seg_path(f, 3, p3, sizeof(p3));
		size = file_size(p2);
		if (c == 0) {
			assert_int_equal(truncate(p2, size - 5), 0);
		} else if (c == 1) {
			int fd = open(p2, O_RDWR);
			uint8_t b;

			assert_int_equal(pread(fd, &b, 1, size - 8), 1);
			b ^= 0x40;
			assert_int_equal(pwrite(fd, &b, 1, size - 8), 1);
			close(fd);
		} else {
			assert_int_equal(truncate(p2, 0), 0);
		}
		assert_int_equal(read_track(f->path, seq, segs, 16, &n), VTP_CAPR_END);
		assert_int_equal(n, 6 + cases[c].records);
		for (int i = 0; i < 3 + cases[c].records; i++)
			assert_int_equal(seq[i], i);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(seq[3 + cases[c].records + i], 6 + i);
			assert_int_equal(segs[3 + cases[c].records + i], 3);
		}
		assert_int_equal(vtp_cap_summarize(f->path, &s, NULL, 0), 0);
		assert_int_equal(s.end, VTP_CAPR_END);
		assert_int_equal(s.nsegments, 3);
		assert_int_equal(s.segments[1].end, cases[c].end);
		assert_int_equal(s.segments[1].records, (uint64_t)cases[c].records);
		assert_true(s.segments[0].read && s.segments[2].read);
		assert_int_equal(s.segments[0].end, VTP_CAPR_END);
		assert_int_equal(s.segments_cut, 1);
		assert_int_equal(s.segments_missing, 0);
		assert_int_equal(s.rtp_packets, (uint64_t)(6 + cases[c].records));
		assert_true(s.good_bytes < s.file_bytes || c == 2);
		vtp_cap_summary_clear(&s);
		unlink(f->path);
		unlink(p2);
		unlink(p3);
	}
}

/* The last segment cut (kill -9 while it was open): the track ends torn
 * after everything before it. */
static void test_cut_last_segment(void **state)
{
	fixture *f = *state;
	char p3[300];
	int seq[16], n;
	uint32_t segs[16];

	write_three(f);
	seg_path(f, 3, p3, sizeof(p3));
	assert_int_equal(truncate(p3, file_size(p3) - 3), 0);
	assert_int_equal(read_track(f->path, seq, segs, 16, &n), VTP_CAPR_TORN);
	assert_int_equal(n, 8);
}

/* A segment missing from the series is reported, not silently joined. */
static void test_missing_segment(void **state)
{
	fixture *f = *state;
	vtp_capw *w = open_segmented(f, 1000000000ULL);
	char p3[300];
	int seq[16], n;
	uint32_t segs[16];
	vtp_capr *r = NULL;
	const vtp_cap_segment *sg;
	size_t ns;
	vtp_cap_record rec;
	vtp_cap_summary s;

	for (int i = 0; i < 8; i++) { /* segments 1..4, two records each */
		if (i && i % 2 == 0)
			make_due(w);
		append_rtp(w, i);
	}
	assert_int_equal(vtp_capw_close(w), 0);
	seg_path(f, 3, p3, sizeof(p3));
	assert_int_equal(unlink(p3), 0);

	assert_int_equal(read_track(f->path, seq, segs, 16, &n), VTP_CAPR_END);
	assert_int_equal(n, 6);
	assert_int_equal(seq[3], 3);
	assert_int_equal(seq[4], 6);
	assert_int_equal(segs[4], 4);
	assert_int_equal(vtp_capr_open(f->path, &r, NULL, 0), 0);
	sg = vtp_capr_segments(r, &ns);
	assert_int_equal(ns, 3); /* listed at open */
	assert_int_equal(sg[2].index, 4);
	assert_int_equal(sg[2].missing_before, 1);
	assert_int_equal(sg[1].missing_before, 0);
	while (vtp_capr_next(r, &rec) == VTP_CAPR_RECORD)
		;
	vtp_capr_close(r);
	assert_int_equal(vtp_cap_summarize(f->path, &s, NULL, 0), 0);
	assert_int_equal(s.segments_missing, 1);
	assert_int_equal(s.segments_cut, 0);
	assert_int_equal(s.end, VTP_CAPR_END);
	vtp_cap_summary_clear(&s);
}

/* An old capture (before segments): one file, no "segment" in its meta,
 * bytes as the format has always been, made by hand here. Unrelated names
 * next to it are no continuation. */
static void test_old_single_file(void **state)
{
	fixture *f = *state;
	static const char meta[] = "{\"codec\":\"VP8\",\"clockRate\":90000}";
	uint8_t file[256], *p = file;
	uint8_t rtp[12] = {0x80, 96, 0, 5, 0, 0, 0, 9, 0, 0, 0, 1};
	uint32_t crc;
	char other[300];
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	const vtp_cap_segment *sg;
	size_t ns;
	int fd;

	memcpy(p, "VTPCAP\r\n\x01\x00\x00\x00", 12);
	p[12] = (uint8_t)(sizeof(meta) - 1);
	p[13] = p[14] = p[15] = 0;
	memcpy(p + 16, meta, sizeof(meta) - 1);
	p += 16 + sizeof(meta) - 1;
	crc = vtp_crc32c(0, file, (size_t)(p - file));
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(crc >> (8 * i));
	{
		uint8_t *rec0 = p;

		*p++ = 12, *p++ = 0, *p++ = 0, *p++ = 0;
		for (int i = 0; i < 8; i++)
			*p++ = (uint8_t)(ARRIVAL0 >> (8 * i));
		*p++ = VTP_CAP_RTP;
		memcpy(p, rtp, sizeof(rtp));
		p += sizeof(rtp);
		crc = vtp_crc32c(0, rec0, (size_t)(p - rec0));
		for (int i = 0; i < 4; i++)
			*p++ = (uint8_t)(crc >> (8 * i));
	}
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, file, (size_t)(p - file)), p - file);
	close(fd);
	snprintf(other, sizeof(other), "%s.bak", f->path);
	close(open(other, O_WRONLY | O_CREAT, 0600));
	snprintf(other, sizeof(other), "%s.1x", f->path);
	close(open(other, O_WRONLY | O_CREAT, 0600));

	assert_int_equal(vtp_capr_open(f->path, &r, NULL, 0), 0);
	assert_string_equal(vtp_capr_meta(r), meta);
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
	assert_int_equal(rec.arrival_ns, ARRIVAL0);
	assert_int_equal(rec.segment, 1);
	assert_memory_equal(rec.data, rtp, sizeof(rtp));
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
	assert_int_equal(vtp_capr_good_bytes(r), (uint64_t)(p - file));
	sg = vtp_capr_segments(r, &ns);
	assert_int_equal(ns, 1);
	assert_int_equal(sg[0].end, VTP_CAPR_END);
	assert_int_equal(sg[0].records, 1);
	vtp_capr_close(r);
	snprintf(other, sizeof(other), "%s.bak", f->path);
	unlink(other);
	snprintf(other, sizeof(other), "%s.1x", f->path);
	unlink(other);
}

/* A relatch note at the end of one segment, the new sender's packets in
 * the next: the re-basing sees one stream and joins the numbering. */
static void test_rebase_across_segments(void **state)
{
	fixture *f = *state;
	static const char note[] = "{\"event\":\"relatch\",\"previousSsrc\":7}";
	vtp_capw *w = open_segmented(f, 1000000000ULL);
	vtp_cap_rebase *rb = vtp_cap_rebase_new(48000);
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	uint16_t want = 0;
	int got = 0;

	for (int i = 0; i < 3; i++)
		append_rtp(w, i);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_NOTE, ARRIVAL0 + 3000000ULL,
					 (const uint8_t *)note, sizeof(note) - 1),
			 0);
	make_due(w);
	for (int i = 0; i < 3; i++) { /* a new sender: SSRC 9, seq from 1000 */
		uint8_t p[20] = {0x80, 111, 0x03, (uint8_t)(0xE8 + i), 0, 0, 0x10, 0, 0, 0, 0, 9};

		assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + (100 + i) * 1000000ULL,
						 p, sizeof(p)),
				 0);
	}
	assert_int_equal(vtp_capw_segment(w), 2);
	assert_int_equal(vtp_capw_close(w), 0);

	assert_int_equal(vtp_capr_open(f->path, &r, NULL, 0), 0);
	while (vtp_capr_next(r, &rec) == VTP_CAPR_RECORD) {
		uint16_t seq;

		if (!vtp_cap_rebase_apply(rb, &rec))
			continue;
		seq = (uint16_t)(rec.data[2] << 8 | rec.data[3]);
		assert_int_equal(rec.data[11], 7); /* the first sender's SSRC throughout */
		if (got == 3)
			want++; /* one missing packet marks the switch */
		assert_int_equal(seq, want);
		want++;
		got++;
	}
	assert_int_equal(got, 6);
	vtp_capr_close(r);
	vtp_cap_rebase_free(rb);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_rotation_by_time),
		T(test_no_rotation_while_failing),
		T(test_rotation_open_fails),
		T(test_cut_middle_segment),
		T(test_cut_last_segment),
		T(test_missing_segment),
		T(test_old_single_file),
		T(test_rebase_across_segments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
