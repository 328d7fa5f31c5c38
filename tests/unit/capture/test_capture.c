/* Tests for the packet log and its checksum: CRC-32C known answers and
 * chaining (software and SSE4.2 paths against a bitwise reference), write
 * and read back, the summary on a synthetic stream, every way a file can
 * end badly (torn tail, flipped bits, bad fields, bad headers), a failing
 * disk and fdatasync from another thread. Files live in a fresh mkdtemp
 * directory per test. The .c files are included to reach the writer's
 * descriptor and the two CRC paths. */
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
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/capture.c"
#include "core/crc32c.c"

#define ARRIVAL0 ((uint64_t)1700000000123456789ULL)

/* ---- helpers ------------------------------------------------------------- */

typedef struct tmpdir {
	char dir[64];
	char path[256]; /* scratch: the last tmp_path() */
} tmpdir;

static int dir_setup(void **state)
{
	tmpdir *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/vtp-capture-XXXXXX");
	if (!mkdtemp(t->dir)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int dir_teardown(void **state)
{
	tmpdir *t = *state;
	DIR *d = opendir(t->dir);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		char p[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", t->dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(t->dir);
	free(t);
	return 0;
}

static const char *tmp_path(void **state, const char *name)
{
	tmpdir *t = *state;

	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
	return t->path;
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: reproducible test data */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t s = 0x9E3779B97F4A7C15ULL ^ seed;

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next(&s) >> 56);
}

static uint8_t *slurp(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = vtp_malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return p;
}

static void spit(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void patch(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* ---- CRC-32C --------------------------------------------------------------- */

static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

static void test_crc32c_known(void **state)
{
	static const struct {
		const char *text;
		uint32_t crc;
	} cases[] = {
		{"", 0},
		{"a", 0xC1D04330},
		{"123456789", 0xE3069283},
		{"The quick brown fox jumps over the lazy dog", 0x22620404},
	};
	uint8_t b[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(vtp_crc32c(0, cases[i].text, strlen(cases[i].text)),
				 cases[i].crc);
	/* RFC 3720 B.4 */
	memset(b, 0, sizeof(b));
	assert_int_equal(vtp_crc32c(0, b, 32), 0x8A9136AA);
	memset(b, 0xff, sizeof(b));
	assert_int_equal(vtp_crc32c(0, b, 32), 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(vtp_crc32c(0, b, 32), 0x46DD794E);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(vtp_crc32c(0, b, 32), 0x113FDB5C);
	/* empty input leaves any running value alone */
	assert_int_equal(vtp_crc32c(0xE3069283, "", 0), 0xE3069283);
	assert_int_equal(vtp_crc32c(0xE3069283, NULL, 0), 0xE3069283);
	/* chaining */
	assert_int_equal(vtp_crc32c(vtp_crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
}

/* Every length 0..200 at every alignment 0..7, in every path we have. */
static void test_crc32c_paths(void **state)
{
	uint8_t buf[256];
	uint64_t s = 42;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rng_next(&s);
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n <= 200; n++) {
			uint32_t want = crc_bitwise(0, buf + off, n);

			assert_int_equal(vtp_crc32c(0, buf + off, n), want);
			assert_int_equal(~crc32c_sw(~0u, buf + off, n), want);
#if defined(__x86_64__)
			if (__builtin_cpu_supports("sse4.2"))
				assert_int_equal(~crc32c_sse42(~0u, buf + off, n), want);
#endif
		}
}

static void test_crc32c_chained_1mib(void **state)
{
	size_t n = 1 << 20;
	uint8_t *buf = vtp_malloc(n);
	uint64_t s = 7;
	uint32_t whole, sw;

	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(rng_next(&s) >> 32);
	whole = vtp_crc32c(0, buf, n);
	sw = ~crc32c_sw(~0u, buf, n);
	assert_int_equal(whole, sw);
	for (int round = 0; round < 20; round++) {
		uint32_t crc = 0;
		size_t at = 0;

		while (at < n) {
			/* mostly small pieces, sometimes large ones, sometimes empty */
			uint64_t r = rng_next(&s);
			size_t piece = (r & 3) == 0 ? (size_t)(r >> 40) % 200000 : (size_t)(r >> 40) % 97;

			if (piece > n - at)
				piece = n - at;
			crc = vtp_crc32c(crc, buf + at, piece);
			at += piece;
		}
		assert_int_equal(crc, whole);
	}
	vtp_free(buf);
}

/* ---- write and read back ---------------------------------------------------- */

static const struct {
	int kind;
	size_t len;
} roundtrip_records[] = {
	{VTP_CAP_RTP, 1},     {VTP_CAP_RTCP, 1},    {VTP_CAP_RTP, 12},
	{VTP_CAP_RTCP, 12},   {VTP_CAP_RTP, 1200},  {VTP_CAP_RTCP, 1200},
	{VTP_CAP_RTP, 65535}, {VTP_CAP_RTCP, 65535}, {VTP_CAP_RTP, 13},
	{VTP_CAP_RTP, 65534}, {VTP_CAP_RTP, 700},   {VTP_CAP_RTCP, 28},
};
#define N_ROUNDTRIP (sizeof(roundtrip_records) / sizeof(roundtrip_records[0]))
#define ROUNDTRIP_REPEAT 9 /* about 2.4 MB: the reader's window refills many times */

static void test_roundtrip(void **state)
{
	/* 0: default 64 KiB; 100: most records bypass the buffer; 1 MiB */
	static const size_t buffers[] = {0, 100, 1 << 20};
	static const char meta[] = "{\"codec\":\"VP8\",\"clockRate\":90000,\"pt\":96}";
	uint8_t *payload = vtp_malloc(VTP_CAP_MAX_PAYLOAD);

	for (size_t b = 0; b < sizeof(buffers) / sizeof(buffers[0]); b++) {
		char name[32];
		const char *path;
		vtp_capw *w = NULL;
		vtp_capr *r = NULL;
		vtp_cap_record rec;
		uint64_t expect_off, bytes;
		char err[128];
		struct stat st;
		uint32_t idx = 0;

		snprintf(name, sizeof(name), "rt%zu.cap", b);
		path = tmp_path(state, name);
		assert_int_equal(vtp_capw_open(path, meta, buffers[b], &w, NULL), 0);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		/* the header is in the file at once */
		assert_int_equal(st.st_size, VTP_CAP_HEADER_FIXED + strlen(meta) + 4);
		for (int rep = 0; rep < ROUNDTRIP_REPEAT; rep++)
			for (size_t i = 0; i < N_ROUNDTRIP; i++, idx++) {
				fill_pattern(payload, roundtrip_records[i].len, idx);
				assert_int_equal(vtp_capw_append(w, roundtrip_records[i].kind,
								 ARRIVAL0 + idx * 20000000ULL,
								 payload, roundtrip_records[i].len),
						 0);
			}
		assert_int_equal(vtp_capw_records(w), idx);
		bytes = vtp_capw_bytes(w);
		assert_int_equal(vtp_capw_close(w), 0);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal((uint64_t)st.st_size, bytes);

		assert_int_equal(vtp_capr_open(path, &r, err, sizeof(err)), 0);
		assert_string_equal(vtp_capr_meta(r), meta);
		expect_off = VTP_CAP_HEADER_FIXED + strlen(meta) + 4;
		assert_int_equal(vtp_capr_good_bytes(r), expect_off);
		idx = 0;
		for (int rep = 0; rep < ROUNDTRIP_REPEAT; rep++)
			for (size_t i = 0; i < N_ROUNDTRIP; i++, idx++) {
				assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
				assert_int_equal(rec.kind, roundtrip_records[i].kind);
				assert_int_equal(rec.len, roundtrip_records[i].len);
				assert_int_equal(rec.arrival_ns, ARRIVAL0 + idx * 20000000ULL);
				assert_int_equal(rec.offset, expect_off);
				fill_pattern(payload, rec.len, idx);
				assert_memory_equal(rec.data, payload, rec.len);
				expect_off += rec.len + VTP_CAP_RECORD_OVERHEAD;
				assert_int_equal(vtp_capr_good_bytes(r), expect_off);
			}
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
		assert_int_equal(vtp_capr_good_bytes(r), bytes);
		vtp_capr_close(r);
	}
	vtp_free(payload);
}

/* The bytes on disk, field by field, for one record. */
static void test_layout(void **state)
{
	const char *path = tmp_path(state, "layout.cap");
	static const uint8_t expect[] = {
		'V', 'T', 'P', 'C', 'A', 'P', '\r', '\n', 1, 0, 0, 0, 2, 0, 0, 0,
		'{', '}', 0, 0, 0, 0, /* header CRC, patched below */
		3, 0, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 2,
		0xAA, 0xBB, 0xCC, 0, 0, 0, 0, /* record CRC, patched below */
	};
	uint8_t want[sizeof(expect)];
	static const uint8_t data[] = {0xAA, 0xBB, 0xCC};
	vtp_capw *w = NULL;
	uint8_t *got;
	uint32_t crc;
	size_t n;

	memcpy(want, expect, sizeof(want));
	crc = crc_bitwise(0, want, 18);
	for (int i = 0; i < 4; i++)
		want[18 + i] = (uint8_t)(crc >> (8 * i));
	crc = crc_bitwise(0, want + 22, 16);
	for (int i = 0; i < 4; i++)
		want[38 + i] = (uint8_t)(crc >> (8 * i));

	assert_int_equal(vtp_capw_open(path, "{}", 0, &w, NULL), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTCP, 0x0102030405060708ULL, data, 3), 0);
	assert_int_equal(vtp_capw_close(w), 0);
	got = slurp(path, &n);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(got, want, n);
	vtp_free(got);
}

static void test_writer_refuses(void **state)
{
	static const struct {
		int kind;
		size_t len;
	} bad[] = {
		{VTP_CAP_RTP, 0},
		{VTP_CAP_RTP, VTP_CAP_MAX_PAYLOAD + 1},
		{VTP_CAP_RTCP, (size_t)1 << 32},
		{0, 10},
		{5, 10},
		{VTP_CAP_GAP, 10},
		{-1, 10},
		{255, 10},
	};
	uint8_t *payload = vtp_calloc(1, VTP_CAP_MAX_PAYLOAD + 1);
	char *meta = vtp_malloc(VTP_CAP_MAX_META + 2);
	const char *path = tmp_path(state, "refuse.cap");
	vtp_capw *w = NULL;
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	uint64_t bytes;
	int err_no = -1;

	/* metadata one byte too long: refused before the file exists */
	memset(meta, 'x', VTP_CAP_MAX_META + 1);
	meta[VTP_CAP_MAX_META + 1] = '\0';
	assert_int_equal(vtp_capw_open(path, meta, 0, &w, &err_no), VTP_EINVAL);
	assert_null(w);
	assert_int_equal(access(path, F_OK), -1);
	/* exactly the limit is fine */
	meta[VTP_CAP_MAX_META] = '\0';
	assert_int_equal(vtp_capw_open(path, meta, 0, &w, &err_no), 0);
	assert_int_equal(err_no, 0);
	bytes = vtp_capw_bytes(w);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vtp_capw_append(w, bad[i].kind, 1, payload, bad[i].len),
				 VTP_EINVAL);
	assert_int_equal(vtp_capw_records(w), 0);
	assert_int_equal(vtp_capw_bytes(w), bytes);
	/* refusals are not write errors */
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 1, payload, 1), 0);
	assert_int_equal(vtp_capw_errno(w), 0);
	assert_int_equal(vtp_capw_close(w), 0);

	assert_int_equal(vtp_capr_open(path, &r, NULL, 0), 0);
	assert_int_equal(strlen(vtp_capr_meta(r)), VTP_CAP_MAX_META);
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
	vtp_capr_close(r);
	vtp_free(meta);
	vtp_free(payload);
}

static void test_open_exclusive(void **state)
{
	const char *path = tmp_path(state, "exists.cap");
	vtp_capw *w = NULL;
	uint8_t *got;
	size_t n;
	int err_no = 0;

	spit(path, "precious", 8);
	assert_int_equal(vtp_capw_open(path, "{}", 0, &w, &err_no), VTP_ECONFLICT);
	assert_null(w);
	assert_int_equal(err_no, EEXIST);
	got = slurp(path, &n);
	assert_int_equal(n, 8);
	assert_memory_equal(got, "precious", 8);
	vtp_free(got);

	path = tmp_path(state, "no-such-dir/x.cap");
	assert_int_equal(vtp_capw_open(path, "{}", 0, &w, &err_no), VTP_EIO);
	assert_int_equal(err_no, ENOENT);
	assert_int_equal(vtp_capw_open(path, "{}", 0, &w, NULL), VTP_EIO);
	assert_int_equal(vtp_capw_close(NULL), 0);
}

/* A disk that fills up: the descriptor is swapped for /dev/full (every
 * write fails with ENOSPC) after some records reached the file. */
static void test_write_error(void **state)
{
	const char *path = tmp_path(state, "full.cap");
	uint8_t payload[300];
	vtp_capw *w = NULL;
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	uint64_t flushed;
	int full;

	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	if (full < 0)
		skip();
	fill_pattern(payload, sizeof(payload), 1);
	assert_int_equal(vtp_capw_open(path, "{}", 1000, &w, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + i, payload, 100), 0);
	assert_int_equal(vtp_capw_flush(w), 0);
	flushed = vtp_capw_bytes(w);
	assert_true(dup2(full, w->fd) == w->fd);
	close(full);

	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + 3, payload, 100), 0);
	assert_int_equal(vtp_capw_flush(w), VTP_EIO);
	assert_int_equal(vtp_capw_errno(w), ENOSPC);
	assert_true(vtp_capw_failing(w));
	/* while failing, records are counted as lost (the one buffered waits) */
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + 4, payload, 100), VTP_EIO);
	w->retry_at_ns = 0; /* the retry is due, and fails again */
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTCP, ARRIVAL0 + 9, payload, 1), VTP_EIO);
	assert_int_equal(vtp_capw_flush(w), VTP_EIO);
	assert_int_equal(vtp_capw_records(w), 4);
	assert_int_equal(vtp_capw_errno(w), ENOSPC);
	{
		vtp_cap_loss loss;

		vtp_capw_loss(w, &loss);
		assert_int_equal(loss.records, 2);
		assert_int_equal(loss.bytes, 101);
		assert_int_equal(loss.lost_ns, 5);
		assert_int_equal(loss.gaps, 1);
		assert_int_equal(loss.last_errno, ENOSPC);
	}
	/* the file keeps what reached it before */
	assert_int_equal(vtp_capr_open(path, &r, NULL, 0), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
		assert_int_equal(rec.arrival_ns, ARRIVAL0 + i);
	}
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
	assert_int_equal(vtp_capr_good_bytes(r), flushed);
	vtp_capr_close(r);

	/* space comes back: the next append after the back-off writes the
	 * buffered record, a gap record, and itself; no hole, no torn tail */
	full = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(full >= 0);
	assert_true(dup2(full, w->fd) == w->fd);
	close(full);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + 10, payload, 100), VTP_EIO);
	w->retry_at_ns = 0;
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, ARRIVAL0 + 11, payload, 100), 0);
	assert_false(vtp_capw_failing(w));
	assert_int_equal(vtp_capw_errno(w), 0);
	{
		vtp_cap_loss loss;

		assert_int_equal(vtp_capw_close_loss(w, &loss), 0);
		assert_int_equal(loss.records, 3);
		assert_int_equal(loss.lost_ns, 6);
		assert_int_equal(loss.gaps, 1);
	}
	assert_int_equal(vtp_capr_open(path, &r, NULL, 0), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
		assert_int_equal(rec.arrival_ns, ARRIVAL0 + i);
	}
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
	assert_int_equal(rec.kind, VTP_CAP_GAP);
	assert_int_equal(rec.len, 36);
	assert_int_equal(get_le64(rec.data), ARRIVAL0 + 4);
	assert_int_equal(get_le64(rec.data + 8), ARRIVAL0 + 10);
	assert_int_equal(get_le64(rec.data + 16), 3);
	assert_int_equal(get_le32(rec.data + 32), ENOSPC);
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
	assert_int_equal(rec.arrival_ns, ARRIVAL0 + 11);
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
	vtp_capr_close(r);
	{
		vtp_cap_summary sum;

		assert_int_equal(vtp_cap_summarize(path, &sum, NULL, 0), 0);
		assert_int_equal(sum.gaps, 1);
		assert_int_equal(sum.gap_records, 3);
		assert_int_equal(sum.gap_errno, ENOSPC);
		assert_int_equal(sum.rtp_packets, 5);
		assert_int_equal(sum.end, VTP_CAPR_END);
		vtp_cap_summary_clear(&sum);
	}

	/* a record too large for the buffer fails on its direct write */
	path = tmp_path(state, "full-direct.cap");
	assert_int_equal(vtp_capw_open(path, "{}", 64, &w, NULL), 0);
	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(dup2(full, w->fd) == w->fd);
	close(full);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 1, payload, sizeof(payload)), VTP_EIO);
	assert_int_equal(vtp_capw_errno(w), ENOSPC);
	assert_int_equal(vtp_capw_records(w), 0);
	assert_int_equal(vtp_capw_close(w), VTP_EIO);
}

/* ---- summary -------------------------------------------------------------- */

typedef struct synth_packet {
	int kind;
	uint16_t seq;        /* RTP */
	uint8_t rtcp_type;   /* RTCP */
	size_t len;
	uint32_t ssrc;
} synth_packet;

#define SSRC_A 0x11223344u
#define TS_BASE 0xFFFFF000u /* wraps after the second packet */
#define SEQ_FIRST 65530

/* Timestamps follow the sequence number (3000 per packet), so the span is
 * 3000 * (extended last seq - first seq). */
static const synth_packet synth[] = {
	{VTP_CAP_RTP, 65530, 0, 1200, SSRC_A},
	{VTP_CAP_RTCP, 0, 200, 52, 0},       /* SR */
	{VTP_CAP_RTP, 65531, 0, 1100, SSRC_A},
	{VTP_CAP_RTP, 65533, 0, 900, SSRC_A}, /* gap: 65532 missing */
	{VTP_CAP_RTP, 65533, 0, 900, SSRC_A}, /* duplicate */
	{VTP_CAP_RTP, 65532, 0, 800, SSRC_A}, /* late */
	{VTP_CAP_RTP, 65534, 0, 1000, SSRC_A},
	{VTP_CAP_RTCP, 0, 201, 32, 0},       /* RR */
	{VTP_CAP_RTP, 65535, 0, 1000, SSRC_A},
	{VTP_CAP_RTP, 0, 0, 1000, SSRC_A},     /* sequence wrap */
	{VTP_CAP_RTP, 1, 0, 1000, SSRC_A},
	{VTP_CAP_RTP, 5, 0, 1000, SSRC_A},     /* gap: 2, 3, 4 missing */
	{VTP_CAP_RTCP, 0, 0, 1, 0},          /* too short to have a type */
	{VTP_CAP_RTP, 6, 0, 12, SSRC_A},
};
#define N_SYNTH (sizeof(synth) / sizeof(synth[0]))

static void write_synth(const char *path, const char *meta, uint32_t last_ssrc)
{
	uint8_t p[1500];
	vtp_capw *w = NULL;

	assert_int_equal(vtp_capw_open(path, meta, 0, &w, NULL), 0);
	for (size_t i = 0; i < N_SYNTH; i++) {
		memset(p, 0, sizeof(p));
		if (synth[i].kind == VTP_CAP_RTP) {
			uint32_t ext = synth[i].seq >= SEQ_FIRST ? synth[i].seq
								  : 65536u + synth[i].seq;
			uint32_t ts = TS_BASE + 3000u * (ext - SEQ_FIRST);
			uint32_t ssrc = i == N_SYNTH - 1 ? last_ssrc : synth[i].ssrc;

			p[0] = 0x80;
			p[1] = 96;
			p[2] = (uint8_t)(synth[i].seq >> 8);
			p[3] = (uint8_t)synth[i].seq;
			for (int k = 0; k < 4; k++) {
				p[4 + k] = (uint8_t)(ts >> (24 - 8 * k));
				p[8 + k] = (uint8_t)(ssrc >> (24 - 8 * k));
			}
		} else {
			p[0] = 0x80;
			p[1] = synth[i].rtcp_type;
		}
		assert_int_equal(vtp_capw_append(w, synth[i].kind, ARRIVAL0 + i * 1000000ULL,
						 p, synth[i].len),
				 0);
	}
	assert_int_equal(vtp_capw_close(w), 0);
}

static void test_summary(void **state)
{
	static const struct {
		const char *meta;
		double seconds;
	} metas[] = {
		{"{\"kind\":\"video\",\"clockRate\":90000}", 36000.0 / 90000},
		{"{\"clockRate\":48000}", 36000.0 / 48000},
		{"{}", 0},
		{"", 0},
		{"not json", 0},
		{"{\"clockRate\":\"90000\"}", 0},
		{"{\"clockRate\":0}", 0},
		{"{\"clockRate\":-8000}", 0},
		{"{\"clockRate\":90000.5}", 0},
	};
	uint64_t rtp_bytes = 0, rtp = 0, rtcp = 0;
	char name[32], err[128];

	for (size_t i = 0; i < N_SYNTH; i++) {
		if (synth[i].kind == VTP_CAP_RTP) {
			rtp++;
			rtp_bytes += synth[i].len;
		} else {
			rtcp++;
		}
	}
	for (size_t m = 0; m < sizeof(metas) / sizeof(metas[0]); m++) {
		vtp_cap_summary s;
		const char *path;
		struct stat st;

		snprintf(name, sizeof(name), "sum%zu.cap", m);
		path = tmp_path(state, name);
		write_synth(path, metas[m].meta, SSRC_A);
		assert_int_equal(vtp_cap_summarize(path, &s, err, sizeof(err)), 0);
		assert_int_equal(stat(path, &st), 0);
		assert_string_equal(s.meta, metas[m].meta);
		assert_int_equal(s.rtp_packets, rtp);
		assert_int_equal(s.rtcp_packets, rtcp);
		assert_int_equal(s.rtp_bytes, rtp_bytes);
		assert_int_equal(s.sender_reports, 1);
		assert_int_equal(s.first_arrival_ns, ARRIVAL0);
		assert_int_equal(s.last_arrival_ns, ARRIVAL0 + (N_SYNTH - 1) * 1000000ULL);
		assert_int_equal(s.ssrc, SSRC_A);
		assert_false(s.ssrc_changed);
		assert_int_equal(s.seq_gaps, 2);
		assert_int_equal(s.seq_missing, 4);
		assert_int_equal(s.reordered_or_dup, 2);
		assert_true(s.media_seconds > metas[m].seconds - 1e-9 &&
			    s.media_seconds < metas[m].seconds + 1e-9);
		assert_int_equal(s.end, VTP_CAPR_END);
		assert_int_equal(s.good_bytes, (uint64_t)st.st_size);
		assert_int_equal(s.file_bytes, (uint64_t)st.st_size);
		vtp_cap_summary_clear(&s);
		assert_null(s.meta);
		vtp_cap_summary_clear(&s);
	}

	/* another SSRC on the last packet */
	{
		vtp_cap_summary s;
		const char *path = tmp_path(state, "ssrc.cap");

		write_synth(path, "{}", 0xCAFEBABE);
		assert_int_equal(vtp_cap_summarize(path, &s, err, sizeof(err)), 0);
		assert_int_equal(s.ssrc, SSRC_A);
		assert_true(s.ssrc_changed);
		vtp_cap_summary_clear(&s);
	}
}

/* RTP-kind records that are not RTP (short, version 0) count as records
 * and bytes, but stay out of the sequence and timestamp figures. */
static void test_summary_odd_rtp(void **state)
{
	const char *path = tmp_path(state, "odd.cap");
	static const uint8_t v0[12] = {0x00, 96, 0, 9, 0, 0, 0, 9, 1, 2, 3, 4};
	static const uint8_t first[12] = {0x80, 96, 0, 10, 0, 0, 0x03, 0xE8, 1, 2, 3, 4};
	static const uint8_t later[12] = {0x80, 96, 0, 11, 0, 0, 0x07, 0xD0, 1, 2, 3, 4};
	vtp_capw *w = NULL;
	vtp_cap_summary s;

	assert_int_equal(vtp_capw_open(path, "{\"clockRate\":1000}", 0, &w, NULL), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 5, v0, 12), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 6, first, 11), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 7, first, 12), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 8, v0, 12), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 9, later, 12), 0);
	assert_int_equal(vtp_capw_close(w), 0);
	assert_int_equal(vtp_cap_summarize(path, &s, NULL, 0), 0);
	assert_int_equal(s.rtp_packets, 5);
	assert_int_equal(s.rtp_bytes, 59);
	assert_int_equal(s.ssrc, 0x01020304);
	assert_false(s.ssrc_changed);
	assert_int_equal(s.seq_gaps, 0);
	assert_int_equal(s.reordered_or_dup, 0);
	assert_true(s.media_seconds > 0.999999 && s.media_seconds < 1.000001);
	assert_int_equal(s.first_arrival_ns, 5);
	assert_int_equal(s.last_arrival_ns, 9);
	vtp_cap_summary_clear(&s);
}

/* A note before any packet (a relatch while the first packets were not
 * written) is the first record: the summary's first arrival is its own, not
 * the first packet's after it. */
static void test_summary_note_first(void **state)
{
	const char *path = tmp_path(state, "notefirst.cap");
	static const char note[] = "{\"event\":\"relatch\",\"previousSsrc\":1}";
	static const uint8_t pkt[12] = {0x80, 96, 0, 10, 0, 0, 0x03, 0xE8, 1, 2, 3, 4};
	vtp_capw *w = NULL;
	vtp_cap_summary s;

	assert_int_equal(vtp_capw_open(path, "{\"clockRate\":1000}", 0, &w, NULL), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_NOTE, 5, (const uint8_t *)note,
					 sizeof(note) - 1), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 7, pkt, 12), 0);
	assert_int_equal(vtp_capw_append(w, VTP_CAP_RTP, 9, pkt, 12), 0);
	assert_int_equal(vtp_capw_close(w), 0);
	assert_int_equal(vtp_cap_summarize(path, &s, NULL, 0), 0);
	assert_int_equal(s.relatches, 1);
	assert_int_equal(s.rtp_packets, 2);
	assert_int_equal(s.first_arrival_ns, 5);
	assert_int_equal(s.last_arrival_ns, 9);
	vtp_cap_summary_clear(&s);
}

/* ---- damaged files -------------------------------------------------------- */

#define DAMAGE_RECORDS 5

/* Five records of 40..44 bytes; offsets of each record in *offs (plus the
 * end of the file in offs[DAMAGE_RECORDS]). */
static void write_damage_base(const char *path, uint64_t offs[DAMAGE_RECORDS + 1])
{
	uint8_t p[64];
	vtp_capw *w = NULL;

	assert_int_equal(vtp_capw_open(path, "{\"clockRate\":90000}", 0, &w, NULL), 0);
	offs[0] = vtp_capw_bytes(w);
	for (int i = 0; i < DAMAGE_RECORDS; i++) {
		fill_pattern(p, 40 + (size_t)i, (uint32_t)i);
		p[0] = 0x80;
		assert_int_equal(vtp_capw_append(w, i == 2 ? VTP_CAP_RTCP : VTP_CAP_RTP,
						 ARRIVAL0 + (uint64_t)i, p, 40 + (size_t)i),
				 0);
		offs[i + 1] = vtp_capw_bytes(w);
	}
	assert_int_equal(vtp_capw_close(w), 0);
}

/* Reads path expecting `good` intact records of write_damage_base, then
 * `end` twice (sticky) and good_bytes at offs[good]. */
static void expect_damage_read(const char *path, const uint64_t *offs, int good, int end)
{
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	vtp_cap_summary s;
	uint8_t p[64];
	char err[128];

	assert_int_equal(vtp_capr_open(path, &r, err, sizeof(err)), 0);
	for (int i = 0; i < good; i++) {
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
		fill_pattern(p, 40 + (size_t)i, (uint32_t)i);
		p[0] = 0x80;
		assert_int_equal(rec.len, 40 + i);
		assert_memory_equal(rec.data, p, rec.len);
		assert_int_equal(rec.arrival_ns, ARRIVAL0 + (uint64_t)i);
		assert_int_equal(rec.offset, offs[i]);
	}
	assert_int_equal(vtp_capr_next(r, &rec), end);
	assert_int_equal(vtp_capr_next(r, &rec), end);
	assert_int_equal(vtp_capr_next(r, &rec), end);
	assert_int_equal(vtp_capr_good_bytes(r), offs[good]);
	vtp_capr_close(r);

	assert_int_equal(vtp_cap_summarize(path, &s, err, sizeof(err)), 0);
	assert_int_equal(s.end, end);
	assert_int_equal(s.good_bytes, offs[good]);
	assert_int_equal(s.rtp_packets + s.rtcp_packets, good);
	vtp_cap_summary_clear(&s);
}

static void test_torn_tail(void **state)
{
	const char *path = tmp_path(state, "torn.cap");
	uint64_t offs[DAMAGE_RECORDS + 1];
	const int last = DAMAGE_RECORDS - 1;

	write_damage_base(path, offs);
	expect_damage_read(path, offs, DAMAGE_RECORDS, VTP_CAPR_END);
	/* every cut strictly inside the last record, shrinking the file */
	for (uint64_t cut = offs[last + 1] - 1; cut > offs[last]; cut--) {
		assert_int_equal(truncate(path, (off_t)cut), 0);
		expect_damage_read(path, offs, last, VTP_CAPR_TORN);
	}
	/* cut exactly between records: a clean end */
	assert_int_equal(truncate(path, (off_t)offs[last]), 0);
	expect_damage_read(path, offs, last, VTP_CAPR_END);
	/* down to the header alone */
	assert_int_equal(truncate(path, (off_t)offs[0]), 0);
	expect_damage_read(path, offs, 0, VTP_CAPR_END);
}

static void test_damaged_record(void **state)
{
	enum { XOR, SET, ZERO_LEN };
	/* a change at byte `at` of record 2 (negative: from its end) */
	static const struct {
		const char *what;
		int at;
		int op;
		uint8_t val;
		int end;
	} cases[] = {
		{"payload bit", 13 + 20, XOR, 0x10, VTP_CAPR_CORRUPT},
		{"first payload bit", 13, XOR, 0x01, VTP_CAPR_CORRUPT},
		{"last payload bit", -5, XOR, 0x80, VTP_CAPR_CORRUPT},
		{"crc bit", -1, XOR, 0x40, VTP_CAPR_CORRUPT},
		{"arrival bit", 7, XOR, 0x02, VTP_CAPR_CORRUPT},
		{"kind 1 <-> 2", 12, XOR, 0x03, VTP_CAPR_CORRUPT},
		{"kind 0", 12, SET, 0, VTP_CAPR_CORRUPT},
		{"kind 4", 12, SET, 4, VTP_CAPR_CORRUPT},
		{"kind 255", 12, SET, 255, VTP_CAPR_CORRUPT},
		{"len one more", 0, XOR, 0x01, VTP_CAPR_CORRUPT}, /* 42 -> 43 */
		{"len 65536+", 2, SET, 1, VTP_CAPR_CORRUPT},
		{"len 2^24+", 3, SET, 1, VTP_CAPR_CORRUPT},
		{"len 0", 0, ZERO_LEN, 0, VTP_CAPR_CORRUPT},
	};
	uint64_t offs[DAMAGE_RECORDS + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[32];
		const char *path;
		uint8_t *file, b[4] = {0};
		uint64_t at;
		size_t n;

		snprintf(name, sizeof(name), "damage%zu.cap", i);
		path = tmp_path(state, name);
		write_damage_base(path, offs);
		file = slurp(path, &n);
		at = cases[i].at >= 0 ? offs[2] + (uint64_t)cases[i].at
				      : offs[3] - (uint64_t)-cases[i].at;
		if (cases[i].op == ZERO_LEN) {
			patch(path, at, b, 4);
		} else {
			b[0] = cases[i].op == XOR ? file[at] ^ cases[i].val : cases[i].val;
			patch(path, at, b, 1);
		}
		print_message("case %s\n", cases[i].what);
		expect_damage_read(path, offs, 2, cases[i].end);
		vtp_free(file);
	}
}

/* A length that points past the end of the file is a torn record: the
 * reader cannot tell it from a crash in the middle of a write. */
static void test_length_past_end(void **state)
{
	const char *path = tmp_path(state, "long.cap");
	uint64_t offs[DAMAGE_RECORDS + 1];
	uint8_t len[4] = {0xff, 0xff, 0, 0};

	write_damage_base(path, offs);
	patch(path, offs[3], len, 4);
	expect_damage_read(path, offs, 3, VTP_CAPR_TORN);
}

/* ---- headers -------------------------------------------------------------- */

static void put_header_crc(uint8_t *h, size_t meta_len)
{
	uint32_t crc = crc_bitwise(0, h, VTP_CAP_HEADER_FIXED + meta_len);

	for (int i = 0; i < 4; i++)
		h[VTP_CAP_HEADER_FIXED + meta_len + i] = (uint8_t)(crc >> (8 * i));
}

static void test_bad_headers(void **state)
{
	enum { AS_IS, FIX_CRC };
	/* h is a good header with meta "{\"a\":1}" (7 bytes, 27 in all),
	 * changed as the case says, then cut to `len` bytes */
	static const struct {
		const char *what;
		int at;       /* -1: no change */
		uint8_t val;
		int crc;      /* recompute the CRC after the change */
		size_t len;
		int rc;
		const char *reason;
	} cases[] = {
		{"empty", -1, 0, AS_IS, 0, VTP_EINVAL, "empty file"},
		{"1 byte", -1, 0, AS_IS, 1, VTP_EINVAL, "header torn"},
		{"magic only", -1, 0, AS_IS, 8, VTP_EINVAL, "header torn"},
		{"fixed part cut", -1, 0, AS_IS, 15, VTP_EINVAL, "header torn"},
		{"no meta", -1, 0, AS_IS, 16, VTP_EINVAL, "header torn"},
		{"meta cut", -1, 0, AS_IS, 20, VTP_EINVAL, "header torn"},
		{"crc cut", -1, 0, AS_IS, 26, VTP_EINVAL, "header torn"},
		{"bad magic", 0, 'X', FIX_CRC, 27, VTP_EINVAL, "not a VTP capture (bad magic)"},
		{"bad magic short", 3, 'X', AS_IS, 5, VTP_EINVAL, "not a VTP capture (bad magic)"},
		{"bad magic CRLF", 7, '\r', AS_IS, 27, VTP_EINVAL, "not a VTP capture (bad magic)"},
		{"version 2", 8, 2, FIX_CRC, 27, VTP_EINVAL, "unsupported version 2"},
		{"version 0", 8, 0, AS_IS, 27, VTP_EINVAL, "unsupported version 0"},
		{"version 257", 9, 1, FIX_CRC, 27, VTP_EINVAL, "unsupported version 257"},
		{"flags", 10, 1, FIX_CRC, 27, VTP_EINVAL, "unsupported header flags 0x0001"},
		{"flags bit flip", 11, 0x80, AS_IS, 27, VTP_EINVAL, "header CRC mismatch"},
		{"meta bit flip", 17, '?', AS_IS, 27, VTP_EINVAL, "header CRC mismatch"},
		{"crc bit flip", 26, 0, AS_IS, 27, VTP_EINVAL, "header CRC mismatch"},
		{"meta_len huge", 15, 0x80, AS_IS, 27, VTP_EINVAL,
		 "header corrupt (metadata length 2147483655 over 65536)"},
		{"meta_len longer than file", 12, 200, AS_IS, 27, VTP_EINVAL, "header torn"},
	};
	uint8_t h[27] = {'V', 'T', 'P', 'C', 'A', 'P', '\r', '\n', 1, 0, 0, 0, 7, 0, 0, 0,
			 '{', '"', 'a', '"', ':', '1', '}'};
	char err[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[32];
		const char *path;
		static char sentinel;
		uint8_t c[27];
		vtp_capr *r = (vtp_capr *)&sentinel; /* open must reset it */
		vtp_cap_summary s;

		put_header_crc(h, 7);
		memcpy(c, h, sizeof(c));
		if (cases[i].at >= 0)
			c[cases[i].at] = cases[i].val ? cases[i].val : (uint8_t)(c[cases[i].at] ^ 1);
		if (cases[i].crc == FIX_CRC)
			put_header_crc(c, 7);
		snprintf(name, sizeof(name), "hdr%zu.cap", i);
		path = tmp_path(state, name);
		spit(path, c, cases[i].len);
		print_message("case %s\n", cases[i].what);
		assert_int_equal(vtp_capr_open(path, &r, err, sizeof(err)), cases[i].rc);
		assert_null(r);
		assert_string_equal(err, cases[i].reason);
		memset(&s, 0xff, sizeof(s));
		assert_int_equal(vtp_cap_summarize(path, &s, err, sizeof(err)), cases[i].rc);
		assert_string_equal(err, cases[i].reason);
		assert_null(s.meta);
		vtp_cap_summary_clear(&s);
		/* no room for the reason is fine */
		assert_int_equal(vtp_capr_open(path, &r, NULL, 0), cases[i].rc);
		assert_int_equal(vtp_capr_open(path, &r, err, 1), cases[i].rc);
		assert_string_equal(err, "");
	}
}

static void test_header_only(void **state)
{
	const char *path = tmp_path(state, "hdr-only.cap");
	vtp_capw *w = NULL;
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	vtp_cap_summary s;
	char err[128];

	assert_int_equal(vtp_capw_open(path, NULL, 0, &w, NULL), 0);
	assert_int_equal(vtp_capw_bytes(w), 20);
	assert_int_equal(vtp_capw_close(w), 0);
	assert_int_equal(vtp_capr_open(path, &r, err, sizeof(err)), 0);
	assert_string_equal(vtp_capr_meta(r), "");
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
	assert_int_equal(vtp_capr_good_bytes(r), 20);
	vtp_capr_close(r);
	assert_int_equal(vtp_cap_summarize(path, &s, err, sizeof(err)), 0);
	assert_int_equal(s.end, VTP_CAPR_END);
	assert_int_equal(s.rtp_packets + s.rtcp_packets, 0);
	assert_int_equal(s.first_arrival_ns, 0);
	assert_int_equal(s.last_arrival_ns, 0);
	assert_int_equal(s.good_bytes, 20);
	assert_int_equal(s.file_bytes, 20);
	assert_true(s.media_seconds == 0);
	vtp_cap_summary_clear(&s);

	/* one stray byte after the header: torn */
	{
		uint8_t *h;
		size_t n;

		h = slurp(path, &n);
		h[n] = 0x05;
		spit(tmp_path(state, "hdr-stray.cap"), h, n + 1);
		vtp_free(h);
	}
	assert_int_equal(vtp_capr_open(tmp_path(state, "hdr-stray.cap"), &r, err, sizeof(err)), 0);
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_TORN);
	assert_int_equal(vtp_capr_good_bytes(r), 20);
	vtp_capr_close(r);
}

static void test_not_found(void **state)
{
	vtp_capr *r = NULL;
	vtp_cap_summary s;
	char err[256];

	assert_int_equal(vtp_capr_open(tmp_path(state, "nope.cap"), &r, err, sizeof(err)),
			 VTP_ENOTFOUND);
	assert_null(r);
	assert_non_null(strstr(err, "nope.cap"));
	assert_int_equal(vtp_cap_summarize(tmp_path(state, "nope.cap"), &s, err, sizeof(err)),
			 VTP_ENOTFOUND);
	/* a directory opens but cannot be read */
	assert_int_equal(vtp_capr_open(((tmpdir *)*state)->dir, &r, err, sizeof(err)), VTP_EIO);
	assert_null(r);
	vtp_capr_close(NULL);
}

/* ---- fdatasync from another thread ----------------------------------------- */

#define SYNC_RECORDS 100000

typedef struct sync_arg {
	vtp_capw *w;
	atomic_bool stop;
	int syncs, failures;
} sync_arg;

static void *sync_loop(void *p)
{
	sync_arg *a = p;

	while (!atomic_load(&a->stop)) {
		if (vtp_capw_sync(a->w) != 0)
			a->failures++;
		a->syncs++;
	}
	return NULL;
}

static void test_concurrent_sync(void **state)
{
	const char *path = tmp_path(state, "sync.cap");
	uint8_t p[256];
	vtp_capr *r = NULL;
	vtp_cap_record rec;
	pthread_t th;
	sync_arg a;
	uint32_t i;

	memset(&a, 0, sizeof(a));
	atomic_init(&a.stop, false);
	assert_int_equal(vtp_capw_open(path, "{}", 16384, &a.w, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, sync_loop, &a), 0);
	for (i = 0; i < SYNC_RECORDS; i++) {
		size_t len = 12 + i % 200;

		memset(p, (int)(i & 0xff), len);
		p[0] = (uint8_t)(i >> 24);
		p[1] = (uint8_t)(i >> 16);
		p[2] = (uint8_t)(i >> 8);
		p[3] = (uint8_t)i;
		assert_int_equal(vtp_capw_append(a.w, i % 50 ? VTP_CAP_RTP : VTP_CAP_RTCP,
						 ARRIVAL0 + i, p, len),
				 0);
		if (i % 1000 == 999)
			assert_int_equal(vtp_capw_flush(a.w), 0);
	}
	atomic_store(&a.stop, true);
	pthread_join(th, NULL);
	assert_true(a.syncs > 0);
	assert_int_equal(a.failures, 0);
	assert_int_equal(vtp_capw_records(a.w), SYNC_RECORDS);
	assert_int_equal(vtp_capw_close(a.w), 0);

	assert_int_equal(vtp_capr_open(path, &r, NULL, 0), 0);
	for (i = 0; i < SYNC_RECORDS; i++) {
		assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_RECORD);
		assert_int_equal(rec.len, 12 + i % 200);
		assert_int_equal(rec.kind, i % 50 ? VTP_CAP_RTP : VTP_CAP_RTCP);
		assert_int_equal(rec.arrival_ns, ARRIVAL0 + i);
		assert_int_equal((uint32_t)rec.data[0] << 24 | (uint32_t)rec.data[1] << 16 |
					 (uint32_t)rec.data[2] << 8 | rec.data[3],
				 i);
		assert_int_equal(rec.data[rec.len - 1], i & 0xff);
	}
	assert_int_equal(vtp_capr_next(r, &rec), VTP_CAPR_END);
	vtp_capr_close(r);
}

/* Re-basing across senders: a relatch note and a new SSRC; the second
 * sender's packets continue the first's numbering (one missing packet in
 * between), its timestamps advance by the silence, every packet carries
 * the first SSRC, and its sender reports move along; a late report of the
 * first sender is left out, notes are not handed on. */
static void rtp_pkt(uint8_t *b, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
	memset(b, 0, 20);
	b[0] = 0x80;
	b[1] = 96;
	b[2] = (uint8_t)(seq >> 8);
	b[3] = (uint8_t)seq;
	for (int i = 0; i < 4; i++) {
		b[4 + i] = (uint8_t)(ts >> (24 - 8 * i));
		b[8 + i] = (uint8_t)(ssrc >> (24 - 8 * i));
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_rebase(void **state)
{
	vtp_cap_rebase *rb = vtp_cap_rebase_new(90000);
	uint8_t a[20], sr[28] = {0x80, 200, 0, 6};
	const char *note = "{\"event\":\"relatch\",\"previousSsrc\":1}";
	vtp_cap_record rec;
	const uint64_t t0 = 1000000000000ULL;

	(void)state;
	/* first sender: passes untouched */
	for (int i = 0; i < 3; i++) {
		rtp_pkt(a, (uint16_t)(65534 + i), 1000u + 3000u * (uint32_t)i, 0x11111111);
		rec = (vtp_cap_record){.kind = VTP_CAP_RTP, .data = a, .len = sizeof(a),
				       .arrival_ns = t0 + (uint64_t)i * 33333333ULL};
		assert_true(vtp_cap_rebase_apply(rb, &rec));
		assert_ptr_equal(rec.data, a);
	}
	/* the note is not for stream readers */
	rec = (vtp_cap_record){.kind = VTP_CAP_NOTE, .data = (const uint8_t *)note,
			       .len = strlen(note), .arrival_ns = t0 + 3000000000ULL};
	assert_false(vtp_cap_rebase_apply(rb, &rec));
	/* second sender, 3 s after the last packet (seq 0, ts 7000) */
	rtp_pkt(a, 500, 123456, 0x22222222);
	rec = (vtp_cap_record){.kind = VTP_CAP_RTP, .data = a, .len = sizeof(a),
			       .arrival_ns = t0 + 66666666ULL + 3000000000ULL};
	assert_true(vtp_cap_rebase_apply(rb, &rec));
	assert_int_equal(rec.data[2] << 8 | rec.data[3], 2); /* 0 + 1 missing + 1 */
	assert_int_equal(be32(rec.data + 4), 7000u + 270000u);
	assert_int_equal(be32(rec.data + 8), 0x11111111);
	rtp_pkt(a, 501, 126456, 0x22222222);
	rec = (vtp_cap_record){.kind = VTP_CAP_RTP, .data = a, .len = sizeof(a),
			       .arrival_ns = t0 + 3100000000ULL};
	assert_true(vtp_cap_rebase_apply(rb, &rec));
	assert_int_equal(rec.data[2] << 8 | rec.data[3], 3);
	assert_int_equal(be32(rec.data + 4), 7000u + 270000u + 3000u);
	/* its sender report moves along; the first sender's is left out */
	sr[4] = 0x22, sr[5] = 0x22, sr[6] = 0x22, sr[7] = 0x22;
	sr[16] = 0, sr[17] = 1, sr[18] = 0xe2, sr[19] = 0x40; /* 123456 */
	rec = (vtp_cap_record){.kind = VTP_CAP_RTCP, .data = sr, .len = sizeof(sr)};
	assert_true(vtp_cap_rebase_apply(rb, &rec));
	assert_int_equal(be32(rec.data + 4), 0x11111111);
	assert_int_equal(be32(rec.data + 16), 7000u + 270000u);
	sr[4] = 0x11, sr[5] = 0x11, sr[6] = 0x11, sr[7] = 0x11;
	rec = (vtp_cap_record){.kind = VTP_CAP_RTCP, .data = sr, .len = sizeof(sr)};
	assert_false(vtp_cap_rebase_apply(rb, &rec));
	vtp_cap_rebase_free(rb);
}

#define T(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_known),
		cmocka_unit_test(test_crc32c_paths),
		cmocka_unit_test(test_crc32c_chained_1mib),
		T(test_roundtrip),
		T(test_layout),
		T(test_writer_refuses),
		T(test_open_exclusive),
		T(test_write_error),
		T(test_summary),
		T(test_summary_odd_rtp),
		T(test_summary_note_first),
		T(test_torn_tail),
		T(test_damaged_record),
		T(test_length_past_end),
		T(test_bad_headers),
		T(test_header_only),
		T(test_not_found),
		T(test_concurrent_sync),
		cmocka_unit_test(test_rebase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
