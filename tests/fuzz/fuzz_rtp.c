/* Fuzz target: the RTP/RTCP wire code. The whole input is classified and
 * parsed as RTP and as RTCP. Then it is read as a stream (each packet is
 * one length byte and that many bytes, the last one possibly cut short):
 * every packet is copied to a buffer of its exact size, so a read past its
 * end is caught, and goes through demux, parsing and one receive-statistics
 * object, with a receiver report built after each; its payload is also
 * read as the start of a VP8 and of an H.264 keyframe (the ingest's
 * keyframe check). Invariants abort(): a
 * parse stays inside its input and accounts for every byte, the demux
 * agrees with the parsers, and whatever the builders write parses back. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtp/rtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rtp(const uint8_t *p, size_t n, const vtp_rtp *r)
{
	if (r->header_len < VTP_RTP_MIN_HEADER + 4 * (size_t)r->csrc_count ||
	    r->header_len > n || r->csrc_count > 15)
		abort();
	if (r->header_len + r->payload_len + r->padding_len != n)
		abort();
	if (r->payload != p + r->header_len || r->payload_len > n - r->header_len)
		abort();
	if (r->has_extension) {
		if (r->ext < p + VTP_RTP_MIN_HEADER + 4 ||
		    r->ext + r->ext_len != p + r->header_len)
			abort();
	} else if (r->ext || r->ext_len) {
		abort();
	}
	if (vtp_pkt_classify(p, n) == VTP_PKT_GARBAGE)
		abort();
}

static void check_rtcp(const uint8_t *p, size_t n, const vtp_rtcp_info *info)
{
	if (info->packets < 1 || (size_t)info->packets > n / 4 || n % 4)
		abort();
	if (vtp_pkt_classify(p, n) != VTP_PKT_RTCP)
		abort();
	if (!info->has_bye && info->bye_ssrc)
		abort();
}

/* A builder's output: one sub-packet that demuxes and parses as RTCP. */
static void check_built(const uint8_t *p, size_t n, size_t want)
{
	vtp_rtcp_info info;

	if (n != want)
		abort();
	if (vtp_rtcp_parse(p, n, &info) != 0)
		abort();
	check_rtcp(p, n, &info);
	if (info.packets != 1 || info.has_sr || info.has_bye)
		abort();
}

static void check_stats(const vtp_rtp_stats *s, int result, uint64_t received_before)
{
	uint64_t expected = vtp_rtp_stats_expected(s);
	uint64_t lost = vtp_rtp_stats_lost(s);

	if (result < VTP_SEQ_OK || result > VTP_SEQ_PROBATION)
		abort();
	if (lost > expected || !s->started || expected == 0)
		abort();
	if ((result == VTP_SEQ_DUPLICATE || result == VTP_SEQ_PROBATION) &&
	    s->received != received_before)
		abort();
	if (result == VTP_SEQ_RESTART && (s->received != 1 || expected != 1))
		abort();
	if (!isfinite(s->jitter) || s->jitter < 0)
		abort();
	if ((s->seen[0] & 1) == 0) /* max_seq itself is always seen */
		abort();
}

static void whole_input(const uint8_t *p, size_t n)
{
	vtp_rtp r;
	vtp_rtcp_info info;

	(void)vtp_pkt_classify(p, n);
	if (vtp_rtp_parse(p, n, &r) == 0)
		check_rtp(p, n, &r);
	if (vtp_rtcp_parse(p, n, &info) == 0)
		check_rtcp(p, n, &info);
}

typedef struct stream {
	vtp_rtp_stats stats;
	uint32_t media_ssrc;
	uint64_t now_ns;
	uint8_t fir_seq;
} stream;

static void report(stream *st)
{
	uint8_t out[32];
	size_t n;

	if (vtp_rtcp_build_rr(out, sizeof(out) - 1, 1, st->media_ssrc,
			      &st->stats, st->now_ns) != 0)
		abort();
	n = vtp_rtcp_build_rr(out, sizeof(out), 1, st->media_ssrc, &st->stats,
			      st->now_ns);
	check_built(out, n, 32);
	/* the cumulative-lost field is the clamped total */
	if ((out[13] << 16 | out[14] << 8 | out[15]) !=
	    (int)(vtp_rtp_stats_lost(&st->stats) > 0x7fffff ?
		  0x7fffff : vtp_rtp_stats_lost(&st->stats)))
		abort();
	n = vtp_rtcp_build_pli(out, sizeof(out), 1, st->media_ssrc);
	check_built(out, n, 12);
	n = vtp_rtcp_build_fir(out, sizeof(out), 1, st->media_ssrc, st->fir_seq++);
	check_built(out, n, 20);
}

static void one_packet(stream *st, const uint8_t *p, size_t n)
{
	int kind = vtp_pkt_classify(p, n);
	vtp_rtp r;
	vtp_rtcp_info info;

	st->now_ns += 20000000;
	if (vtp_rtp_parse(p, n, &r) == 0) {
		uint64_t before = st->stats.received;
		/* arrival = timestamp + a delay taken from the packet, so the
		 * fuzzer steers the jitter too */
		uint32_t delay = r.payload_len ? r.payload[0] * 40u : 0;
		int result;

		check_rtp(p, n, &r);
		/* the answer does not matter; reading past the payload does */
		(void)vtp_rtp_vp8_keyframe(r.payload, r.payload_len);
		(void)vtp_rtp_h264_keyframe(r.payload, r.payload_len);
		st->media_ssrc = r.ssrc;
		result = vtp_rtp_stats_update(&st->stats, r.seq, r.ts, r.ts + delay,
					      r.payload_len);
		check_stats(&st->stats, result, before);
		if (kind != VTP_PKT_RTP && kind != VTP_PKT_RTCP)
			abort();
	}
	if (vtp_rtcp_parse(p, n, &info) == 0) {
		check_rtcp(p, n, &info);
		if (info.has_sr)
			vtp_rtp_stats_on_sr(&st->stats, info.sr.ntp, st->now_ns);
	}
	report(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	stream st;
	size_t off = 0;

	whole_input(data, size);

	memset(&st, 0, sizeof(st));
	vtp_rtp_stats_init(&st.stats);
	while (off < size) {
		size_t len = data[off++];
		uint8_t *copy;

		if (len > size - off)
			len = size - off;
		copy = malloc(len ? len : 1);
		if (!copy)
			abort();
		memcpy(copy, data + off, len);
		one_packet(&st, copy, len);
		free(copy);
		off += len;
	}
	return 0;
}
