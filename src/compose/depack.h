/* From packet-log records to codec frames, for the composer: put a track's
 * RTP packets back in sequence order (dropping duplicates, bounded
 * reordering window), then reassemble frames per codec:
 * - VP8, RFC 7741: payload descriptor (X/N/S/PID, I/L/T/K extensions, 7- and
 *   15-bit PictureID); a frame starts at S=1, PID=0 and ends at the marker
 *   bit or a timestamp change; keyframe = P bit 0 in the VP8 payload header;
 * - H.264, RFC 6184 packetization-mode 1: single NAL units (1..23), STAP-A
 *   (24), FU-A (28); frames (access units) are emitted in Annex B form
 *   (00 00 00 01 start codes); keyframe = contains an IDR slice (type 5);
 *   SPS/PPS (7/8) are kept in the access unit they arrived with;
 * - Opus, RFC 7587: one packet is one frame.
 * A video frame with a missing packet is never emitted, and after one, no
 * frame is emitted until the next keyframe (a decoder fed a broken
 * reference shows green or frozen tiles). Audio frames are emitted as they
 * come; gaps show as jumps in rtp_ts, which the composer fills (PLC or
 * silence). No I/O, no libav: bytes in, bytes out. */
#ifndef VTP_COMPOSE_DEPACK_H
#define VTP_COMPOSE_DEPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtp/rtp.h"

typedef enum vtp_codec { VTP_CODEC_OPUS = 0, VTP_CODEC_VP8, VTP_CODEC_H264 } vtp_codec;

/* "opus" | "vp8" | "h264" -> 0, or -1 when unknown. */
int vtp_codec_parse(const char *name, vtp_codec *out);

/* ---- reordering -------------------------------------------------------- */

typedef struct vtp_reorder vtp_reorder;

typedef struct vtp_ordered_pkt {
	uint64_t ext_seq;      /* sequence number extended over wraps */
	uint64_t ext_ts;       /* RTP timestamp extended over wraps */
	uint64_t arrival_ns;
	const uint8_t *data;   /* the whole RTP packet, valid until the next pop */
	size_t len;
} vtp_ordered_pkt;

/* window: packets held back to let late ones take their place (e.g. 512). */
vtp_reorder *vtp_reorder_new(size_t window);
void vtp_reorder_free(vtp_reorder *r);
/* Takes one RTP packet (copied) in arrival order. Packets that fail
 * vtp_rtp_parse, duplicates of a sequence number already taken, and
 * packets older than what was already released are dropped and counted. */
void vtp_reorder_push(vtp_reorder *r, const uint8_t *pkt, size_t len, uint64_t arrival_ns);
/* Releases the lowest packet once the window is full (or always after
 * vtp_reorder_end). false when nothing is ready. */
bool vtp_reorder_pop(vtp_reorder *r, vtp_ordered_pkt *out);
/* No more input: everything held can be released. */
void vtp_reorder_end(vtp_reorder *r);
/* Counters. */
uint64_t vtp_reorder_duplicates(const vtp_reorder *r);
uint64_t vtp_reorder_too_late(const vtp_reorder *r);
uint64_t vtp_reorder_malformed(const vtp_reorder *r);

/* ---- frames ------------------------------------------------------------- */

typedef struct vtp_depack vtp_depack;

typedef struct vtp_frame {
	const uint8_t *data;   /* valid until the next call on the depacketizer */
	size_t len;
	uint64_t ext_ts;       /* RTP timestamp (extended) of the frame */
	uint64_t arrival_ns;   /* arrival of the frame's first packet */
	bool keyframe;
} vtp_frame;

vtp_depack *vtp_depack_new(vtp_codec codec);
void vtp_depack_free(vtp_depack *d);
/* Feeds the next packet in sequence order (as vtp_reorder_pop gives them;
 * a jump in ext_seq is a loss). */
void vtp_depack_push(vtp_depack *d, const vtp_ordered_pkt *p);
/* Next complete frame, if any. */
bool vtp_depack_pop(vtp_depack *d, vtp_frame *out);
/* End of input: a frame still being assembled is emitted if complete
 * (marker seen, or the codec needs none), else dropped. */
void vtp_depack_end(vtp_depack *d);
/* Counters: frames emitted, incomplete frames dropped, frames skipped
 * while waiting for a keyframe. */
uint64_t vtp_depack_frames(const vtp_depack *d);
uint64_t vtp_depack_dropped_incomplete(const vtp_depack *d);
uint64_t vtp_depack_skipped_until_keyframe(const vtp_depack *d);

#endif
