/* Fuzz target: reordering and depacketizing (src/compose). The first byte
 * picks the codec (its value mod 3, as vtp_codec) and the reordering
 * window (bits 2..5); the rest is a stream of packets, each a 2-byte
 * big-endian length and that many bytes (the last possibly cut short),
 * copied to buffers of their exact size so a read past the end is caught.
 * Everything goes through vtp_reorder into vtp_depack and every frame is
 * popped and read. Invariants abort(): packets leave the reorderer in
 * strictly increasing ext_seq matching their wire seq, every packet is
 * accounted for, frames are non-empty and under the cap, H.264 frames start
 * with a start code, Opus frames are keyframes, the first video frame and
 * the first after any drop are keyframes, and the counters agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compose/depack.h"

#define FRAME_CAP (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	vtp_codec codec;
	vtp_reorder *reorder;
	vtp_depack *depack;
	uint64_t released;
	bool have_released;
	uint64_t last_ext_seq;
	uint64_t frames;
	bool need_keyframe;      /* the next video frame must be one */
	volatile uint8_t sink;
};

static uint64_t drops(const struct run *st)
{
	return vtp_depack_dropped_incomplete(st->depack) +
	       vtp_depack_skipped_until_keyframe(st->depack);
}

static void check_frame(struct run *st, const vtp_frame *f)
{
	uint8_t x = 0;

	if (f->len == 0 || f->len > FRAME_CAP || !f->data)
		abort();
	for (size_t i = 0; i < f->len; i++)
		x ^= f->data[i];
	st->sink = x;
	if (st->codec == VTP_CODEC_H264 &&
	    (f->len < 5 || memcmp(f->data, "\0\0\0\1", 4) != 0))
		abort();
	if (st->codec == VTP_CODEC_OPUS && !f->keyframe)
		abort();
	if (st->need_keyframe && !f->keyframe)
		abort();
	st->need_keyframe = false;
	st->frames++;
}

/* One push ends at most two frames (the previous one on a timestamp
 * change, the new one on its marker). A drop during the push with no frame
 * out, or with a delta frame out (so the drop came after it), means the
 * next frame must be a keyframe; a drop next to a keyframe is ambiguous
 * and left unchecked. */
static void drain_frames(struct run *st, uint64_t drops_before)
{
	vtp_frame f;
	size_t n = 0;
	bool last_key = false;

	while (vtp_depack_pop(st->depack, &f)) {
		check_frame(st, &f);
		last_key = f.keyframe;
		n++;
	}
	if (vtp_depack_frames(st->depack) != st->frames)
		abort();
	if (st->codec == VTP_CODEC_OPUS || drops(st) == drops_before)
		return;
	if (n > 1)
		abort();
	if (n == 0 || !last_key)
		st->need_keyframe = true;
}

static void drain_packets(struct run *st)
{
	vtp_ordered_pkt p;

	while (vtp_reorder_pop(st->reorder, &p)) {
		uint64_t before;

		if (p.len < 12 || !p.data)
			abort();
		if (st->have_released && p.ext_seq <= st->last_ext_seq)
			abort();
		if (p.ext_seq % 65536 != (uint16_t)(p.data[2] << 8 | p.data[3]))
			abort();
		if (p.ext_ts % (1ull << 32) !=
		    ((uint32_t)p.data[4] << 24 | (uint32_t)p.data[5] << 16 |
		     (uint32_t)p.data[6] << 8 | p.data[7]))
			abort();
		st->have_released = true;
		st->last_ext_seq = p.ext_seq;
		st->released++;
		before = drops(st);
		vtp_depack_push(st->depack, &p);
		drain_frames(st, before);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run st;
	uint64_t pushed = 0, accounted, finished;
	size_t off = 1;

	if (size < 1)
		return 0;
	memset(&st, 0, sizeof(st));
	st.codec = (vtp_codec)(data[0] % 3);
	st.reorder = vtp_reorder_new((size_t)(data[0] >> 2 & 0x0f));
	st.depack = vtp_depack_new(st.codec);
	st.need_keyframe = st.codec != VTP_CODEC_OPUS;
	while (off < size) {
		size_t len = (size_t)data[off] << 8;
		uint8_t *copy;

		if (size - off < 2)
			break;
		len |= data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		copy = malloc(len ? len : 1);
		if (!copy)
			abort();
		memcpy(copy, data + off, len);
		vtp_reorder_push(st.reorder, copy, len, off);
		free(copy);
		pushed++;
		off += len;
		drain_packets(&st);
	}
	vtp_reorder_end(st.reorder);
	drain_packets(&st);
	vtp_depack_end(st.depack);
	drain_frames(&st, drops(&st));

	accounted = st.released + vtp_reorder_duplicates(st.reorder) +
		    vtp_reorder_too_late(st.reorder) + vtp_reorder_malformed(st.reorder);
	if (accounted != pushed)
		abort();
	/* every video frame finished used at least one packet */
	finished = vtp_depack_frames(st.depack) +
		   vtp_depack_dropped_incomplete(st.depack) +
		   vtp_depack_skipped_until_keyframe(st.depack);
	if (finished > st.released)
		abort();
	if (st.codec == VTP_CODEC_OPUS &&
	    vtp_depack_dropped_incomplete(st.depack) + vtp_depack_skipped_until_keyframe(st.depack))
		abort();
	vtp_depack_free(st.depack);
	vtp_reorder_free(st.reorder);
	return 0;
}
