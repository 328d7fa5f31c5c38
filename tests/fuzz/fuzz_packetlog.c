/* Fuzz target: the packet-log reader and summary. The input is a whole
 * capture file. It is read twice: as it is (nearly every mutation breaks a
 * CRC, which exercises the checks), then with magic, version, flags and
 * every CRC that can be placed repaired, so that mutated lengths, kinds and
 * payloads reach the record loop and the summary's RTP bookkeeping. Must
 * never crash; records must be exact slices of the file with sane fields,
 * offsets must add up and the end state must be sticky and agree with the
 * summary. The reader wants a path: one memfd per process, reached through
 * /proc/self/fd (a temporary file where that fails), rewritten each run. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture/capture.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/mem.h"

#define RECORD_HEAD 13 /* len + arrival + kind */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int file_fd = -1;
static char file_path[64];

static void file_remove(void)
{
	unlink(file_path);
}

static void file_init(void)
{
	file_fd = memfd_create("fuzz_packetlog", MFD_CLOEXEC);
	if (file_fd >= 0) {
		snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
		if (access(file_path, R_OK) == 0)
			return;
		close(file_fd);
	}
	snprintf(file_path, sizeof(file_path), "/tmp/fuzz_packetlog.XXXXXX");
	file_fd = mkstemp(file_path);
	if (file_fd < 0)
		abort();
	atexit(file_remove);
}

static void file_set(const uint8_t *data, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t k = pwrite(file_fd, data + done, size - done, (off_t)done);

		if (k <= 0)
			abort();
		done += (size_t)k;
	}
	if (ftruncate(file_fd, (off_t)size) != 0)
		abort();
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Makes the header valid when its meta_len fits, then gives each record
 * whose length is valid and fits its right CRC; kinds stay as they are. */
static void repair(uint8_t *b, size_t size)
{
	size_t off, meta_len;

	if (size < VTP_CAP_HEADER_FIXED)
		return;
	memcpy(b, VTP_CAP_MAGIC, 8);
	b[8] = VTP_CAP_VERSION;
	b[9] = b[10] = b[11] = 0;
	meta_len = le32(b + 12);
	if (size < VTP_CAP_HEADER_FIXED + 4 || meta_len > VTP_CAP_MAX_META ||
	    size - VTP_CAP_HEADER_FIXED - 4 < meta_len)
		return;
	off = VTP_CAP_HEADER_FIXED + meta_len;
	put_le32(b + off, vtp_crc32c(0, b, off));
	off += 4;
	while (size - off >= VTP_CAP_RECORD_OVERHEAD) {
		size_t len = le32(b + off);

		if (len == 0 || len > VTP_CAP_MAX_PAYLOAD ||
		    size - off - VTP_CAP_RECORD_OVERHEAD < len)
			break;
		put_le32(b + off + RECORD_HEAD + len,
			 vtp_crc32c(0, b + off, RECORD_HEAD + len));
		off += VTP_CAP_RECORD_OVERHEAD + len;
	}
}

static void check(const uint8_t *file, size_t size)
{
	static char sentinel;
	vtp_capr *r = (vtp_capr *)&sentinel;
	vtp_cap_record rec;
	vtp_cap_summary s;
	uint64_t off, records = 0, notes = 0, gaps = 0;
	size_t meta_len;
	char err[160];
	int rc, end;

	file_set(file, size);
	rc = vtp_capr_open(file_path, &r, err, sizeof(err));
	if (rc != 0) {
		if (rc != VTP_EINVAL || r != NULL || err[0] == '\0')
			abort();
		if (vtp_cap_summarize(file_path, &s, err, sizeof(err)) != rc || s.meta)
			abort();
		return;
	}
	/* the header is read whole; meta may hold a NUL, so compare its text */
	off = vtp_capr_good_bytes(r);
	meta_len = strlen(vtp_capr_meta(r));
	if (off > size || off < VTP_CAP_HEADER_FIXED + 4 ||
	    le32(file + 12) != off - VTP_CAP_HEADER_FIXED - 4 ||
	    meta_len > off - VTP_CAP_HEADER_FIXED - 4 ||
	    memcmp(vtp_capr_meta(r), file + VTP_CAP_HEADER_FIXED, meta_len) != 0)
		abort();
	while ((rc = vtp_capr_next(r, &rec)) == VTP_CAPR_RECORD) {
		if (rec.len < 1 || rec.len > VTP_CAP_MAX_PAYLOAD)
			abort();
		if (rec.kind != VTP_CAP_RTP && rec.kind != VTP_CAP_RTCP && rec.kind != VTP_CAP_NOTE &&
		    rec.kind != VTP_CAP_GAP)
			abort();
		notes += rec.kind == VTP_CAP_NOTE;
		gaps += rec.kind == VTP_CAP_GAP;
		if (rec.offset != off || off + VTP_CAP_RECORD_OVERHEAD + rec.len > size)
			abort();
		if (memcmp(rec.data, file + off + RECORD_HEAD, rec.len) != 0)
			abort();
		off += VTP_CAP_RECORD_OVERHEAD + rec.len;
		if (vtp_capr_good_bytes(r) != off)
			abort();
		records++;
	}
	end = rc;
	if (end != VTP_CAPR_END && end != VTP_CAPR_TORN && end != VTP_CAPR_CORRUPT)
		abort();
	if (vtp_capr_next(r, &rec) != end || vtp_capr_next(r, &rec) != end)
		abort();
	if (vtp_capr_good_bytes(r) != off || off > size)
		abort();
	if ((end == VTP_CAPR_END) != (off == size))
		abort();
	vtp_capr_close(r);

	if (vtp_cap_summarize(file_path, &s, err, sizeof(err)) != 0)
		abort();
	if (s.end != end || s.good_bytes != off || s.file_bytes != size ||
	    s.rtp_packets + s.rtcp_packets + notes + gaps != records || s.relatches > notes ||
	    s.gaps > gaps ||
	    s.seq_missing < s.seq_gaps ||
	    s.rtp_bytes > size || s.sender_reports > s.rtcp_packets ||
	    !(s.media_seconds >= 0) || !isfinite(s.media_seconds) || !s.meta)
		abort();
	if (records == 0 && (s.first_arrival_ns || s.last_arrival_ns || s.ssrc_changed))
		abort();
	vtp_cap_summary_clear(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (file_fd < 0)
		file_init();
	check(data, size);
	copy = vtp_malloc(size ? size : 1);
	memcpy(copy, data, size);
	repair(copy, size);
	check(copy, size);
	vtp_free(copy);
	return 0;
}
