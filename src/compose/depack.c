/* Depacketizing half of depack.h: ordered RTP packets to codec frames.
 * Video (VP8, H.264) shares one frame assembler: packets of one timestamp
 * are appended to a capped buffer; a frame ends at the marker bit, at a
 * timestamp change (complete only when no sequence number is missing), or
 * at the end of input (never complete without its marker). Anything odd in
 * a frame (a sequence gap, a payload that does not parse, a fragment out of
 * order, the size cap) marks it broken; a broken frame is dropped and puts
 * the stream in keyframe wait, which is also how every stream starts.
 * Codec code only checks its payload format and appends bytes. Finished
 * frames go to a small queue whose buffers are swapped, not copied, with
 * the assembler's; a popped frame stays put until the next call. */
#include "depack.h"

#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"

#define FRAME_MAX (4u << 20)

/* RFC 7741 §4.2 payload descriptor */
#define VP8_X 0x80
#define VP8_S 0x10
#define VP8_PID 0x07
#define VP8_I 0x80
#define VP8_L 0x40
#define VP8_T 0x20
#define VP8_K 0x10
#define VP8_PICTURE_ID_M 0x80
#define VP8_P 0x01 /* payload header: 0 on a keyframe */

/* RFC 6184 §5.3, §5.7.1, §5.8 */
#define H264_NAL_TYPE 0x1f
#define H264_NAL_FNRI 0xe0
#define H264_IDR 5
#define H264_STAP_A 24
#define H264_FU_A 28
#define H264_FU_S 0x80
#define H264_FU_E 0x40
#define H264_FU_R 0x20

static const uint8_t start_code[4] = {0, 0, 0, 1};

typedef struct ready_frame {
	vtp_buf buf;
	uint64_t ext_ts;
	uint64_t arrival_ns;
	bool keyframe;
} ready_frame;

struct vtp_depack {
	vtp_codec codec;
	/* the frame being assembled */
	vtp_buf buf;
	bool active;
	bool broken;
	bool keyframe;
	bool fu_open;            /* H.264: inside an FU-A, S seen, E not yet */
	uint8_t fu_type;
	uint64_t ext_ts;
	uint64_t arrival_ns;
	/* the stream */
	bool have_seq;
	uint64_t last_seq;
	bool wait_keyframe;
	/* finished frames: ready[head..count) not yet popped */
	ready_frame *ready;
	size_t head;
	size_t count;
	size_t cap;
	/* counters */
	uint64_t frames;
	uint64_t dropped_incomplete;
	uint64_t skipped;
};

int vtp_codec_parse(const char *name, vtp_codec *out)
{
	static const struct {
		const char *name;
		vtp_codec codec;
	} names[] = {
		{"opus", VTP_CODEC_OPUS},
		{"vp8", VTP_CODEC_VP8},
		{"h264", VTP_CODEC_H264},
	};

	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i].name) == 0) {
			*out = names[i].codec;
			return 0;
		}
	}
	return -1;
}

vtp_depack *vtp_depack_new(vtp_codec codec)
{
	vtp_depack *d = vtp_calloc(1, sizeof(*d));

	d->codec = codec;
	d->wait_keyframe = true;
	vtp_buf_init(&d->buf, FRAME_MAX);
	return d;
}

void vtp_depack_free(vtp_depack *d)
{
	if (!d)
		return;
	vtp_buf_free(&d->buf);
	for (size_t i = 0; i < d->cap; i++)
		vtp_buf_free(&d->ready[i].buf);
	vtp_free(d->ready);
	vtp_free(d);
}

/* ---- ready queue ------------------------------------------------------------- */

/* Once everything queued has been popped, the slots are free again: the
 * frame handed out last is only promised until the next call. */
static void recycle(vtp_depack *d)
{
	if (d->head == d->count)
		d->head = d->count = 0;
}

static ready_frame *queue_slot(vtp_depack *d)
{
	if (d->count == d->cap && d->head > 0) {
		/* rotate unpopped frames to the front, keeping every buffer */
		for (size_t i = 0; i < d->count - d->head; i++) {
			ready_frame t = d->ready[i];

			d->ready[i] = d->ready[d->head + i];
			d->ready[d->head + i] = t;
		}
		d->count -= d->head;
		d->head = 0;
	}
	if (d->count == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4;

		d->ready = vtp_realloc(d->ready, cap * sizeof(*d->ready));
		for (size_t i = d->cap; i < cap; i++)
			vtp_buf_init(&d->ready[i].buf, FRAME_MAX);
		d->cap = cap;
	}
	return &d->ready[d->count++];
}

static void emit(vtp_depack *d, vtp_buf *buf, uint64_t ext_ts, uint64_t arrival_ns,
		 bool keyframe)
{
	ready_frame *f = queue_slot(d);
	vtp_buf t = f->buf;

	f->buf = *buf;
	*buf = t;
	vtp_buf_reset(buf);
	f->ext_ts = ext_ts;
	f->arrival_ns = arrival_ns;
	f->keyframe = keyframe;
	d->frames++;
}

/* ---- video frame assembly ---------------------------------------------------- */

static void append(vtp_depack *d, const void *p, size_t n)
{
	if (vtp_buf_append(&d->buf, p, n) != 0)
		d->broken = true;
}

/* complete: the frame's end was seen (marker, or a timestamp change with
 * no packet missing). */
static void finish(vtp_depack *d, bool complete)
{
	if (!d->active)
		return;
	if (d->broken || d->fu_open || d->buf.len == 0)
		complete = false;
	if (!complete) {
		d->dropped_incomplete++;
		d->wait_keyframe = true;
	} else if (d->wait_keyframe && !d->keyframe) {
		d->skipped++;
	} else {
		d->wait_keyframe = false;
		emit(d, &d->buf, d->ext_ts, d->arrival_ns, d->keyframe);
	}
	vtp_buf_reset(&d->buf);
	d->active = false;
	d->broken = false;
	d->keyframe = false;
	d->fu_open = false;
}

/* RFC 7741: strips the payload descriptor. The first packet of a frame
 * must start partition 0; a later one must not. */
static void vp8_packet(vtp_depack *d, const uint8_t *p, size_t n, bool first)
{
	size_t off = 1;
	bool start;

	if (n < 1)
		goto broken;
	start = (p[0] & VP8_S) && (p[0] & VP8_PID) == 0;
	if (p[0] & VP8_X) {
		uint8_t x;

		if (n < 2)
			goto broken;
		x = p[1];
		off = 2;
		if (x & VP8_I) {
			if (off >= n)
				goto broken;
			off += (p[off] & VP8_PICTURE_ID_M) ? 2 : 1;
		}
		if (x & VP8_L)
			off++;
		if (x & (VP8_T | VP8_K))
			off++;
	}
	if (off >= n) /* the VP8 payload is never empty */
		goto broken;
	if (start != first)
		goto broken;
	if (first)
		d->keyframe = (p[off] & VP8_P) == 0;
	append(d, p + off, n - off);
	return;
broken:
	d->broken = true;
}

static bool h264_single_type(uint8_t type)
{
	return type >= 1 && type <= 23;
}

static void h264_nal(vtp_depack *d, const uint8_t *nal, size_t n)
{
	if ((nal[0] & H264_NAL_TYPE) == H264_IDR)
		d->keyframe = true;
	append(d, start_code, sizeof(start_code));
	append(d, nal, n);
}

/* RFC 6184 packetization-mode 1. Types 0, 30, 31 and the aggregations and
 * fragmentations of the interleaved mode break the access unit. */
static void h264_packet(vtp_depack *d, const uint8_t *p, size_t n)
{
	uint8_t type;

	if (n < 1)
		goto broken;
	type = p[0] & H264_NAL_TYPE;
	if (type != H264_FU_A && d->fu_open)
		goto broken;
	if (h264_single_type(type)) {
		h264_nal(d, p, n);
	} else if (type == H264_STAP_A) {
		size_t off = 1;

		if (off >= n)
			goto broken;
		while (off < n) {
			size_t size;

			if (n - off < 2)
				goto broken;
			size = (size_t)p[off] << 8 | p[off + 1];
			off += 2;
			if (size == 0 || size > n - off ||
			    !h264_single_type(p[off] & H264_NAL_TYPE))
				goto broken;
			h264_nal(d, p + off, size);
			off += size;
		}
	} else if (type == H264_FU_A) {
		uint8_t fu, inner;

		if (n < 2)
			goto broken;
		fu = p[1];
		inner = fu & H264_NAL_TYPE;
		if (!h264_single_type(inner) ||
		    (fu & (H264_FU_S | H264_FU_E)) == (H264_FU_S | H264_FU_E))
			goto broken;
		if (fu & H264_FU_S) {
			uint8_t header = (uint8_t)((p[0] & H264_NAL_FNRI) | inner);

			if (d->fu_open)
				goto broken;
			d->fu_open = true;
			d->fu_type = inner;
			if (inner == H264_IDR)
				d->keyframe = true;
			append(d, start_code, sizeof(start_code));
			append(d, &header, 1);
		} else if (!d->fu_open || d->fu_type != inner) {
			goto broken;
		}
		append(d, p + 2, n - 2);
		if (fu & H264_FU_E)
			d->fu_open = false;
	} else {
		goto broken;
	}
	return;
broken:
	d->broken = true;
}

static void video_packet(vtp_depack *d, const vtp_ordered_pkt *p, const vtp_rtp *rtp)
{
	bool gap = d->have_seq && p->ext_seq != d->last_seq + 1;
	bool first;

	d->have_seq = true;
	d->last_seq = p->ext_seq;
	if (d->active && p->ext_ts != d->ext_ts)
		finish(d, !gap);   /* a missing packet may be its tail */
	else if (d->active && gap)
		d->broken = true;
	if (gap)
		d->wait_keyframe = true;
	first = !d->active;
	if (first) {
		d->active = true;
		/* VP8 tells a frame's first packet (S, PID 0); H.264 cannot,
		 * so a gap may have taken the start of this access unit. */
		d->broken = gap && d->codec == VTP_CODEC_H264;
		d->keyframe = false;
		d->fu_open = false;
		d->ext_ts = p->ext_ts;
		d->arrival_ns = p->arrival_ns;
	}
	if (d->codec == VTP_CODEC_VP8)
		vp8_packet(d, rtp->payload, rtp->payload_len, first);
	else
		h264_packet(d, rtp->payload, rtp->payload_len);
	if (rtp->marker)
		finish(d, true);
}

/* ---- API ---------------------------------------------------------------------- */

void vtp_depack_push(vtp_depack *d, const vtp_ordered_pkt *p)
{
	vtp_rtp rtp;

	recycle(d);
	/* A packet that does not parse counts as lost: the next one shows
	 * a gap. */
	if (vtp_rtp_parse(p->data, p->len, &rtp) != 0)
		return;
	if (d->codec != VTP_CODEC_OPUS) {
		video_packet(d, p, &rtp);
		return;
	}
	if (rtp.payload_len == 0) /* DTX */
		return;
	vtp_buf_reset(&d->buf);
	if (vtp_buf_append(&d->buf, rtp.payload, rtp.payload_len) != 0) {
		d->dropped_incomplete++;
		return;
	}
	emit(d, &d->buf, p->ext_ts, p->arrival_ns, true);
}

bool vtp_depack_pop(vtp_depack *d, vtp_frame *out)
{
	const ready_frame *f;

	recycle(d);
	if (d->head == d->count)
		return false;
	f = &d->ready[d->head++];
	out->data = (const uint8_t *)f->buf.data;
	out->len = f->buf.len;
	out->ext_ts = f->ext_ts;
	out->arrival_ns = f->arrival_ns;
	out->keyframe = f->keyframe;
	return true;
}

void vtp_depack_end(vtp_depack *d)
{
	recycle(d);
	finish(d, false);
}

uint64_t vtp_depack_frames(const vtp_depack *d)
{
	return d->frames;
}

uint64_t vtp_depack_dropped_incomplete(const vtp_depack *d)
{
	return d->dropped_incomplete;
}

uint64_t vtp_depack_skipped_until_keyframe(const vtp_depack *d)
{
	return d->skipped;
}
