/* The packet log: one append-only log per track, kept as a series of
 * segment files, each readable alone up to its last whole record after a
 * crash or a full disk (docs/ARCHITECTURE.md "The packet log").
 *
 * File layout (all integers little-endian):
 *   header  "VTPCAP\r\n" (8 bytes) | u16 version (1) | u16 flags (0)
 *           | u32 meta_len | meta (meta_len bytes of UTF-8 JSON, the track's
 *           metadata: codec, payload type, clock rate, kind, peer...)
 *           | u32 crc32c of every header byte before it
 *   records u32 len | u64 arrival_ns (CLOCK_REALTIME) | u8 kind (1 rtp,
 *           2 rtcp, 3 gap, 4 note) | len bytes (the datagram as received,
 *           the gap or the note)
 *           | u32 crc32c of every record byte before it
 *   gap     a record of kind 3 whose 36 bytes say what the writer could not
 *           write (full disk): u64 first and u64 last arrival_ns lost,
 *           u64 records and u64 payload bytes lost, u32 errno; its
 *           arrival_ns is the first lost one
 * len is 1..VTP_CAP_MAX_PAYLOAD; meta_len is at most VTP_CAP_MAX_META.
 *
 * The writer buffers records in memory and hands them to the kernel with
 * write() when its buffer fills or when vtp_capw_flush() is called; the
 * owner calls flush on a timer so that a kill -9 loses at most that
 * interval. vtp_capw_sync() (fdatasync) may run on another thread while the
 * owner appends: it touches only the descriptor. After a failed write
 * (ENOSPC, EIO) the file is cut back to its last whole record and the
 * writer is "failing": records appended meanwhile are counted as lost
 * (VTP_EIO), and appends and flushes try the write again after a back-off
 * (200 ms doubling to 2 s). When it goes through, what the buffer held is
 * written, then a gap record, and capture goes on: space that comes back
 * resumes capture without anyone reopening anything.
 *
 * Segments. A track's log is a series of files, each a complete log of the
 * format above (its own header with the track's metadata, plus "segment": N
 * in it when the writer segments), named after the track's first one:
 *   <trackId>.vtpcap          segment 1 (and the whole track of old captures)
 *   <trackId>.vtpcap.000002   segment 2, then .000003, ... (decimal, at least
 *                             6 digits, so that a plain sort keeps the order)
 * The first segment keeps the name a track always had, so everything that
 * lists "*.vtpcap" still sees one file per track and an old single-file
 * capture is simply a track of one segment; continuations sort right after
 * it (one S3 prefix per track). The writer closes a segment at a record
 * boundary, never while failing (the gap record goes into the segment where
 * writing resumed). A closed segment is never written again: the owner's
 * syncing thread fdatasyncs it (vtp_capw_commit) and only then announces it
 * through the segment hook, so what the hook names is complete, durable
 * and immutable: it can be uploaded as is. Only the open segment can be
 * lost by a crash. The reader (vtp_capr_open on the first segment's path)
 * reads the segments in order as one stream: one cut by a crash is read up
 * to its last whole record and the next one continues; a segment missing
 * from the series is reported (vtp_capr_segments), not silently joined. */
#ifndef VTP_CAPTURE_H
#define VTP_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VTP_CAP_MAGIC "VTPCAP\r\n"
#define VTP_CAP_VERSION 1
#define VTP_CAP_MAX_PAYLOAD 65535
#define VTP_CAP_MAX_META (64 * 1024)
#define VTP_CAP_HEADER_FIXED 16 /* magic + version + flags + meta_len */
#define VTP_CAP_RECORD_OVERHEAD 17 /* len + arrival + kind + crc */

/* Record kinds. GAP is written only by the writer itself (see above).
 * NOTE: a JSON object the ingest writes between packets when something
 * changes that the packets alone do not say, e.g.
 * {"event":"relatch","previousSsrc":N,"silentMs":N,"from":"ip:port"}: the
 * track followed a new sender, whose RTP (from the next packet on) is a
 * new sequence and timestamp space. Readers skip notes they do not know. */
enum { VTP_CAP_RTP = 1, VTP_CAP_RTCP = 2, VTP_CAP_GAP = 3, VTP_CAP_NOTE = 4 };

/* What a writer could not write, over its life. */
typedef struct vtp_cap_loss {
	uint64_t records, bytes; /* records lost and their payload bytes */
	uint64_t lost_ns;        /* sum over gaps of last - first lost arrival */
	uint64_t gaps;           /* separate failure spans */
	int last_errno;          /* of the last failed write, 0 if none */
} vtp_cap_loss;

/* ---- writer ------------------------------------------------------------- */

typedef struct vtp_capw vtp_capw;

/* Called for each segment once it is closed, flushed and fdatasync'ed
 * (path: its file; segment: 1..; last: the writer's final one, at close).
 * Runs on the thread that calls vtp_capw_commit or vtp_capw_close; it must
 * not call back into the writer. The future S3 spool queues path here. */
typedef void (*vtp_capw_segment_fn)(void *ctx, const char *path, uint32_t segment, bool last);

typedef struct vtp_capw_opts {
	size_t buffer_bytes;  /* in-memory batch size (0: 64 KiB) */
	/* Close the segment and open the next once its first record is this
	 * old (CLOCK_MONOTONIC), checked at each append and flush. 0: one file,
	 * as before segments (no "segment" in the meta). */
	uint64_t segment_ns;
	vtp_capw_segment_fn on_segment; /* may be NULL */
	void *ctx;
} vtp_capw_opts;

/* Segment N's file for a track whose first segment is first_path (N = 1:
 * first_path itself). Returns the length snprintf would write. */
int vtp_cap_segment_path(const char *first_path, uint32_t segment, char *out, size_t outlen);

/* Creates path (O_EXCL, mode 0600) and writes the header with meta (JSON
 * text, not validated here). buffer_bytes: in-memory batch size (0: 64 KiB).
 * Returns 0, VTP_EINVAL (meta too long), VTP_ECONFLICT (file exists) or
 * VTP_EIO (errno kept in *err_no when err_no is not NULL). */
int vtp_capw_open(const char *path, const char *meta, size_t buffer_bytes,
		  vtp_capw **out, int *err_no);
/* The same with segments (opts may be NULL: as vtp_capw_open). path is the
 * first segment's; the meta of every segment gets "segment": N when
 * opts->segment_ns is set and meta is a JSON object. */
int vtp_capw_open_opts(const char *path, const char *meta, const vtp_capw_opts *opts,
		       vtp_capw **out, int *err_no);
/* Appends one record (RTP or RTCP). VTP_EINVAL for len 0 or over
 * VTP_CAP_MAX_PAYLOAD or another kind; VTP_EIO when the record is lost
 * because writes fail (counted, see vtp_capw_loss). May call write() when
 * the buffer is full or a retry is due. */
int vtp_capw_append(vtp_capw *w, int kind, uint64_t arrival_ns,
		    const uint8_t *data, size_t len);
/* Writes buffered records to the kernel (or, while failing, retries when
 * the back-off allows), and closes the segment when it is due. 0, or
 * VTP_EIO while failing. */
int vtp_capw_flush(vtp_capw *w);
/* fdatasync of the open segment; safe to call from another thread than the
 * appender. sync, syncfs and commit are called from one thread at a time
 * (the owner's syncing thread): closed segments' descriptors are closed
 * only there and at vtp_capw_close. */
int vtp_capw_sync(vtp_capw *w);
/* Segments closed by the appender since the last call: each is
 * fdatasync'ed, its descriptor closed, then handed to the segment hook.
 * Same thread rules as vtp_capw_sync. Returns VTP_EIO when a sync failed
 * (the segment is still announced: it holds what the kernel kept), else 0. */
int vtp_capw_commit(vtp_capw *w);
/* syncfs on the file system holding w: every file of it at once (one
 * journal commit instead of one per file when many logs are open). Same
 * thread rules as vtp_capw_sync. */
int vtp_capw_syncfs(vtp_capw *w);
/* st_dev of the file, to group logs by file system. */
uint64_t vtp_capw_device(const vtp_capw *w);
/* Flushes (one last retry, without back-off, while failing), syncs, closes
 * and frees (w may be NULL); every segment not yet committed is, the open
 * one last (hook with last = true). Returns VTP_EIO when the last write or
 * a sync failed, else 0. */
int vtp_capw_close(vtp_capw *w);
/* The same, filling *loss (may be NULL) with the final count: what was
 * still buffered when a last retry failed counts as lost too. */
int vtp_capw_close_loss(vtp_capw *w, vtp_cap_loss *loss);
/* The errno of the current failure, or 0 while writes go through. */
int vtp_capw_errno(const vtp_capw *w);
/* True from a failed write until a retry goes through. */
bool vtp_capw_failing(const vtp_capw *w);
/* What was lost so far, the gap still open included. Owner thread. */
void vtp_capw_loss(const vtp_capw *w, vtp_cap_loss *out);
/* Records appended / bytes in the files once flushed (headers included),
 * over every segment. */
uint64_t vtp_capw_records(const vtp_capw *w);
uint64_t vtp_capw_bytes(const vtp_capw *w);
/* The open segment's number (1..). */
uint32_t vtp_capw_segment(const vtp_capw *w);

/* ---- reader ------------------------------------------------------------- */

typedef struct vtp_capr vtp_capr;

typedef struct vtp_cap_record {
	uint64_t arrival_ns;
	int kind;           /* VTP_CAP_RTP | VTP_CAP_RTCP */
	const uint8_t *data; /* valid until the next call */
	size_t len;
	uint64_t offset;    /* of the record in its segment's file */
	uint32_t segment;   /* the segment it is in (1..) */
} vtp_cap_record;

/* One segment as the reader found it. */
typedef struct vtp_cap_segment {
	uint32_t index;          /* 1.. */
	uint32_t missing_before; /* segments absent between the previous one and this */
	int end;                 /* VTP_CAPR_* once read through (see read) */
	bool read;               /* read through (the reader got past it) */
	uint64_t records;        /* whole records in it */
	uint64_t good_bytes, file_bytes; /* header and whole records / its size */
} vtp_cap_segment;

/* How a read ended. */
enum {
	VTP_CAPR_RECORD = 1, /* *rec filled */
	VTP_CAPR_END = 0,    /* clean end of file, after a whole record */
	VTP_CAPR_TORN = -1,  /* the file ends inside a record (crash, full disk) */
	VTP_CAPR_CORRUPT = -2, /* bad length, kind or CRC: stopped there */
	VTP_CAPR_IOERR = -3,
};

/* Opens a track: path is its first segment (or any one file, read alone
 * when it has no continuation files). Checks the first header and lists the
 * continuations (path.NNNNNN) in order. Returns 0, VTP_ENOTFOUND, VTP_EIO,
 * or VTP_EINVAL with a one-line reason in err (not a capture, unknown
 * version, corrupt or torn header, empty file). */
int vtp_capr_open(const char *path, vtp_capr **out, char *err, size_t errlen);
void vtp_capr_close(vtp_capr *r);
/* The header's metadata JSON (NUL-terminated, as written). */
const char *vtp_capr_meta(const vtp_capr *r);
/* Next record: one of the VTP_CAPR_* values. A segment that ends torn or
 * corrupt (or whose header is) is left where its whole records end and the
 * next segment follows; the end returned is the last segment's (IOERR
 * stops at once). After anything but RECORD, every further call returns the
 * same value. */
int vtp_capr_next(vtp_capr *r, vtp_cap_record *rec);
/* Bytes consumed as headers and whole records, over the segments read. */
uint64_t vtp_capr_good_bytes(const vtp_capr *r);
/* The track's segments (as listed at open; those not read yet have read
 * false). *n receives how many. Valid until vtp_capr_close. */
const vtp_cap_segment *vtp_capr_segments(const vtp_capr *r, size_t *n);

/* ---- summary (vtp-recorder inspect) -------------------------------------- */

typedef struct vtp_cap_summary {
	char *meta;              /* header JSON, owned */
	uint64_t rtp_packets, rtcp_packets, rtp_bytes;
	uint64_t sender_reports; /* RTCP SR seen */
	uint64_t first_arrival_ns, last_arrival_ns; /* 0 when no record */
	uint32_t ssrc;           /* of the first RTP packet */
	bool ssrc_changed;       /* more than one SSRC among RTP packets */
	uint64_t relatches;      /* relatch notes: the track followed a new sender */
	uint64_t seq_gaps;       /* places where sequence numbers jump forward */
	uint64_t seq_missing;    /* packets those jumps skip */
	uint64_t reordered_or_dup; /* packets at or behind the highest seq */
	double media_seconds;    /* RTP timestamp span / clock rate (meta), or 0 */
	int end;                 /* VTP_CAPR_END | TORN | CORRUPT | IOERR */
	uint64_t good_bytes, file_bytes;
	uint64_t gaps;           /* gap records: spans the writer could not write */
	uint64_t gap_records;    /* records they say were lost */
	double gap_seconds;      /* sum of their spans */
	int gap_errno;           /* the last gap's errno (ENOSPC: the disk was full), 0 if none */
	vtp_cap_segment *segments; /* owned, nsegments of them */
	size_t nsegments;
	uint64_t segments_missing; /* absent from the series (sum of missing_before) */
	uint64_t segments_cut;     /* before the last, ending torn or corrupt */
} vtp_cap_summary;

/* Reads a whole capture (every segment). 0 (even when it ends torn or
 * corrupt: see s->end) or an error from vtp_capr_open (reason in err). */
int vtp_cap_summarize(const char *path, vtp_cap_summary *s, char *err,
		      size_t errlen);
void vtp_cap_summary_clear(vtp_cap_summary *s);

/* ---- re-basing: one timeline across senders ---------------------------------- */

/* A track that followed a new sender (a relatch note) has packets from
 * two or more numbering spaces: sequence numbers, timestamps and SSRC
 * start anew. A reader that wants one continuous stream (the composer)
 * passes every record through vtp_cap_rebase_apply: each later sender's
 * RTP is renumbered to continue the first one's (its timestamps advanced by
 * the silence between them), and its sender reports moved along. Records
 * that are not for a stream reader come back false (notes; reports of an
 * earlier sender). rec->data may be pointed at the object's own copy,
 * valid until the next call. clock_rate: of the track (0: 90000). */
typedef struct vtp_cap_rebase vtp_cap_rebase;

vtp_cap_rebase *vtp_cap_rebase_new(uint32_t clock_rate);
void vtp_cap_rebase_free(vtp_cap_rebase *rb);
bool vtp_cap_rebase_apply(vtp_cap_rebase *rb, vtp_cap_record *rec);

#endif
