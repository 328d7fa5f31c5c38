/* RTP and RTCP wire code. Every parser checks a length before it reads a
 * byte, and either fills its whole output or returns VTP_EINVAL leaving the
 * output untouched. Receive statistics follow RFC 3550 A.1 (sequence
 * validation), A.3 (loss) and A.8 (jitter) with two changes for a recorder:
 * the first packet is accepted at once (probation 0: the SSRC is learnt from
 * it), and a 128-packet window behind the highest sequence number tells late
 * packets from duplicates. A confirmed restart resets the A.1 state and the
 * counters that feed expected/lost (received, the report priors); bytes,
 * duplicates, reordered and the jitter estimate run for the source's life. */
#include "rtp.h"

#include <string.h>

#include "core/bytes.h"
#include "core/error.h"

#define RTP_VERSION 2
#define RTP_SEQ_MOD 65536u
#define MAX_DROPOUT 3000u
#define MAX_MISORDER 100u
#define SEEN_WINDOW 128u /* bits in vtp_rtp_stats.seen */

#define RTCP_HEADER 4
#define RTCP_PT_FIRST 192    /* RFC 5761 §4: 192..223 is RTCP */
#define RTCP_PT_LAST 223
#define RTCP_SR_MIN 28       /* header 8 + sender info 20 */
#define RTCP_RR_MIN 8        /* header 4 + reporter SSRC */
#define RTCP_REPORT_BLOCK 24
#define RTCP_FB_MIN 12       /* header 4 + sender SSRC + media SSRC */
#define RTCP_RR_LEN 32       /* what we send: one report block */
#define RTCP_PLI_LEN 12
#define RTCP_FIR_LEN 20
#define PSFB_FMT_PLI 1
#define PSFB_FMT_FIR 4
#define PSFB_FMT_AFB 15       /* application layer feedback: REMB */
#define RTPFB_FMT_NACK 1

#define CUMULATIVE_LOST_MAX 0x7fffffu /* 24-bit signed field */
#define NS_PER_S 1000000000u

/* Two's complement reading of a 32-bit difference, without relying on the
 * implementation-defined unsigned-to-signed conversion. */
static int32_t as_signed32(uint32_t v)
{
	return v < 0x80000000u ? (int32_t)v : -(int32_t)~v - 1;
}

/* ---- classification ------------------------------------------------------ */

int vtp_pkt_classify(const uint8_t *p, size_t n)
{
	if (n < 2 || p[0] >> 6 != RTP_VERSION)
		return VTP_PKT_GARBAGE;
	if (p[1] >= RTCP_PT_FIRST && p[1] <= RTCP_PT_LAST)
		return n >= RTCP_HEADER ? VTP_PKT_RTCP : VTP_PKT_GARBAGE;
	return n >= VTP_RTP_MIN_HEADER ? VTP_PKT_RTP : VTP_PKT_GARBAGE;
}

/* ---- RTP ------------------------------------------------------------------ */

int vtp_rtp_parse(const uint8_t *p, size_t n, vtp_rtp *out)
{
	vtp_rtp r;
	size_t hl;

	if (n < VTP_RTP_MIN_HEADER || p[0] >> 6 != RTP_VERSION)
		return VTP_EINVAL;
	memset(&r, 0, sizeof(r));
	r.csrc_count = p[0] & 0x0f;
	r.marker = p[1] >> 7;
	r.pt = p[1] & 0x7f;
	r.seq = vtp_get_be16(p + 2);
	r.ts = vtp_get_be32(p + 4);
	r.ssrc = vtp_get_be32(p + 8);
	hl = VTP_RTP_MIN_HEADER + 4 * (size_t)r.csrc_count;
	if (n < hl)
		return VTP_EINVAL;
	if (p[0] & 0x10) {
		if (n - hl < 4)
			return VTP_EINVAL;
		r.has_extension = true;
		r.ext_profile = vtp_get_be16(p + hl);
		r.ext_len = 4 * (size_t)vtp_get_be16(p + hl + 2);
		hl += 4;
		if (n - hl < r.ext_len)
			return VTP_EINVAL;
		r.ext = p + hl;
		hl += r.ext_len;
	}
	if (p[0] & 0x20) {
		/* the count byte is the packet's last, so it must lie after
		 * the header: a count of at least 1 covers it */
		r.padding_len = p[n - 1];
		if (r.padding_len == 0 || r.padding_len > n - hl)
			return VTP_EINVAL;
	}
	r.header_len = hl;
	r.payload = p + hl;
	r.payload_len = n - hl - r.padding_len;
	*out = r;
	return 0;
}

/* ---- RTCP ----------------------------------------------------------------- */

/* Checks one sub-packet whose length (padding removed) is len, and takes
 * what the recorder uses from it. */
static int rtcp_subpacket(const uint8_t *p, size_t len, vtp_rtcp_info *info)
{
	size_t count = p[0] & 0x1f;
	size_t need;

	switch (p[1]) {
	case VTP_RTCP_SR:
		if (len < RTCP_SR_MIN + count * RTCP_REPORT_BLOCK)
			return VTP_EINVAL;
		if (!info->has_sr) {
			info->has_sr = true;
			info->sr.ssrc = vtp_get_be32(p + 4);
			info->sr.ntp = (uint64_t)vtp_get_be32(p + 8) << 32 | vtp_get_be32(p + 12);
			info->sr.rtp_ts = vtp_get_be32(p + 16);
			info->sr.packet_count = vtp_get_be32(p + 20);
			info->sr.octet_count = vtp_get_be32(p + 24);
		}
		break;
	case VTP_RTCP_RR:
		if (len < RTCP_RR_MIN + count * RTCP_REPORT_BLOCK)
			return VTP_EINVAL;
		break;
	case VTP_RTCP_BYE:
		need = RTCP_HEADER + 4 * count;
		if (len < need)
			return VTP_EINVAL;
		/* an optional reason: length byte, then text */
		if (len > need && 1 + (size_t)p[need] > len - need)
			return VTP_EINVAL;
		if (!info->has_bye) {
			info->has_bye = true;
			info->bye_ssrc = count ? vtp_get_be32(p + RTCP_HEADER) : 0;
		}
		break;
	case VTP_RTCP_RTPFB:
	case VTP_RTCP_PSFB:
		if (len < RTCP_FB_MIN)
			return VTP_EINVAL;
		break;
	default:
		/* SDES, APP and unassigned types: only their length matters */
		break;
	}
	return 0;
}

int vtp_rtcp_parse(const uint8_t *p, size_t n, vtp_rtcp_info *out)
{
	vtp_rtcp_info info;
	size_t off = 0;

	if (n < RTCP_HEADER)
		return VTP_EINVAL;
	memset(&info, 0, sizeof(info));
	while (off < n) {
		const uint8_t *sub = p + off;
		size_t len, body;

		if (n - off < RTCP_HEADER)
			return VTP_EINVAL;
		/* a type outside 192..223 would have been demuxed as RTP, so
		 * it cannot be part of an RTCP compound */
		if (sub[0] >> 6 != RTP_VERSION || sub[1] < RTCP_PT_FIRST ||
		    sub[1] > RTCP_PT_LAST)
			return VTP_EINVAL;
		len = 4 * ((size_t)vtp_get_be16(sub + 2) + 1);
		if (len > n - off)
			return VTP_EINVAL;
		body = len;
		if (sub[0] & 0x20) {
			size_t pad = sub[len - 1];

			if (len != n - off || pad == 0 || pad > len - RTCP_HEADER)
				return VTP_EINVAL;
			body -= pad;
		}
		if (rtcp_subpacket(sub, body, &info) != 0)
			return VTP_EINVAL;
		info.packets++;
		off += len;
	}
	*out = info;
	return 0;
}

/* ---- receive statistics --------------------------------------------------- */

void vtp_rtp_stats_init(vtp_rtp_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->bad_seq = RTP_SEQ_MOD + 1; /* matches no sequence number */
}

/* A.1 init_seq, plus the state that only makes sense within one sequence. */
static void start_sequence(vtp_rtp_stats *s, uint16_t seq)
{
	s->base_seq = seq;
	s->max_seq = seq;
	s->bad_seq = RTP_SEQ_MOD + 1;
	s->cycles = 0;
	s->received = 0;
	s->expected_prior = 0;
	s->received_prior = 0;
	s->seen[0] = 1; /* seq itself */
	s->seen[1] = 0;
	/* a restarted sender has most likely a new timestamp base too */
	s->have_transit = false;
}

static bool seen_test(const vtp_rtp_stats *s, unsigned behind)
{
	return s->seen[behind / 64] >> (behind % 64) & 1;
}

static void seen_set(vtp_rtp_stats *s, unsigned behind)
{
	s->seen[behind / 64] |= (uint64_t)1 << (behind % 64);
}

/* max_seq moved forward by k: bit i becomes bit i + k. */
static void seen_advance(vtp_rtp_stats *s, unsigned k)
{
	if (k >= SEEN_WINDOW) {
		s->seen[1] = 0;
		s->seen[0] = 0;
	} else if (k >= 64) {
		s->seen[1] = s->seen[0] << (k - 64);
		s->seen[0] = 0;
	} else {
		s->seen[1] = s->seen[1] << k | s->seen[0] >> (64 - k);
		s->seen[0] <<= k;
	}
	s->seen[0] |= 1;
}

/* A.8: transit times in timestamp units, as 32-bit differences so clock
 * wraps cancel out. */
static void jitter_update(vtp_rtp_stats *s, uint32_t rtp_ts, uint32_t arrival_ts)
{
	int32_t transit = as_signed32(arrival_ts - rtp_ts);

	if (s->have_transit) {
		int64_t d = as_signed32((uint32_t)transit - (uint32_t)s->last_transit);

		if (d < 0)
			d = -d;
		s->jitter += ((double)d - s->jitter) / 16.0;
	}
	s->last_transit = transit;
	s->have_transit = true;
}

int vtp_rtp_stats_update(vtp_rtp_stats *s, uint16_t seq, uint32_t rtp_ts,
			 uint32_t arrival_ts, size_t payload_len)
{
	uint16_t udelta = (uint16_t)(seq - s->max_seq);
	int result;

	if (!s->started) {
		s->started = true;
		start_sequence(s, seq);
		result = VTP_SEQ_OK;
	} else if (udelta == 0 || udelta > RTP_SEQ_MOD - MAX_MISORDER) {
		/* late (or a repeat of max_seq): behind < MAX_MISORDER */
		unsigned behind = (uint16_t)(s->max_seq - seq);

		if (behind < SEEN_WINDOW) {
			if (seen_test(s, behind)) {
				s->duplicates++;
				return VTP_SEQ_DUPLICATE;
			}
			seen_set(s, behind);
		}
		s->reordered++;
		result = VTP_SEQ_REORDERED;
	} else if (udelta < MAX_DROPOUT) {
		if (seq < s->max_seq)
			s->cycles += RTP_SEQ_MOD;
		seen_advance(s, udelta);
		s->max_seq = seq;
		result = VTP_SEQ_OK;
	} else if (seq == s->bad_seq) {
		/* two sequential packets after a jump: the sender restarted */
		start_sequence(s, seq);
		result = VTP_SEQ_RESTART;
	} else {
		s->bad_seq = (uint16_t)(seq + 1);
		return VTP_SEQ_PROBATION;
	}
	s->received++;
	s->bytes += payload_len;
	jitter_update(s, rtp_ts, arrival_ts);
	return result;
}

uint32_t vtp_rtp_stats_ext_max(const vtp_rtp_stats *s)
{
	return s->cycles + s->max_seq;
}

uint64_t vtp_rtp_stats_expected(const vtp_rtp_stats *s)
{
	if (!s->started)
		return 0;
	return (uint64_t)(uint32_t)(vtp_rtp_stats_ext_max(s) - s->base_seq) + 1;
}

uint64_t vtp_rtp_stats_lost(const vtp_rtp_stats *s)
{
	uint64_t expected = vtp_rtp_stats_expected(s);

	return expected > s->received ? expected - s->received : 0;
}

double vtp_rtp_stats_jitter_seconds(const vtp_rtp_stats *s, uint32_t clock_rate)
{
	return clock_rate ? s->jitter / clock_rate : 0.0;
}

void vtp_rtp_stats_on_sr(vtp_rtp_stats *s, uint64_t ntp, uint64_t arrival_ns)
{
	s->last_sr_mid = (uint32_t)(ntp >> 16);
	s->last_sr_arrival_ns = arrival_ns;
}

/* ---- packets the recorder sends -------------------------------------------- */

/* A.3: the loss fraction since the previous report, in 1/256. */
static uint8_t fraction_lost(vtp_rtp_stats *s)
{
	uint64_t expected = vtp_rtp_stats_expected(s);
	int64_t expected_interval = (int64_t)(expected - s->expected_prior);
	int64_t received_interval = (int64_t)(s->received - s->received_prior);
	int64_t lost_interval = expected_interval - received_interval;
	int64_t fraction;

	s->expected_prior = expected;
	s->received_prior = s->received;
	if (expected_interval <= 0 || lost_interval <= 0)
		return 0;
	fraction = lost_interval * 256 / expected_interval;
	return fraction > 255 ? 255 : (uint8_t)fraction;
}

/* Delay since the last SR in 1/65536 s, saturating. */
static uint32_t delay_since_sr(const vtp_rtp_stats *s, uint64_t now_ns)
{
	uint64_t delta, units;

	if (s->last_sr_mid == 0 || now_ns <= s->last_sr_arrival_ns)
		return 0;
	delta = now_ns - s->last_sr_arrival_ns;
	if (delta / NS_PER_S > UINT32_MAX >> 16)
		return UINT32_MAX;
	units = (delta / NS_PER_S << 16) + (delta % NS_PER_S << 16) / NS_PER_S;
	return units > UINT32_MAX ? UINT32_MAX : (uint32_t)units;
}

size_t vtp_rtcp_build_rr(uint8_t *out, size_t cap, uint32_t our_ssrc,
			 uint32_t media_ssrc, vtp_rtp_stats *s, uint64_t now_ns)
{
	uint64_t lost;
	double jitter = s->jitter;

	if (cap < RTCP_RR_LEN)
		return 0;
	lost = vtp_rtp_stats_lost(s);
	if (lost > CUMULATIVE_LOST_MAX)
		lost = CUMULATIVE_LOST_MAX;
	if (!(jitter >= 0.0))
		jitter = 0.0;
	else if (jitter > (double)UINT32_MAX)
		jitter = (double)UINT32_MAX;

	out[0] = RTP_VERSION << 6 | 1;
	out[1] = VTP_RTCP_RR;
	vtp_put_be16(out + 2, RTCP_RR_LEN / 4 - 1);
	vtp_put_be32(out + 4, our_ssrc);
	vtp_put_be32(out + 8, media_ssrc);
	vtp_put_be32(out + 12, (uint32_t)fraction_lost(s) << 24 | (uint32_t)lost);
	vtp_put_be32(out + 16, vtp_rtp_stats_ext_max(s));
	vtp_put_be32(out + 20, (uint32_t)jitter);
	vtp_put_be32(out + 24, s->last_sr_mid);
	vtp_put_be32(out + 28, delay_since_sr(s, now_ns));
	return RTCP_RR_LEN;
}

size_t vtp_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t our_ssrc,
			  uint32_t media_ssrc)
{
	if (cap < RTCP_PLI_LEN)
		return 0;
	out[0] = RTP_VERSION << 6 | PSFB_FMT_PLI;
	out[1] = VTP_RTCP_PSFB;
	vtp_put_be16(out + 2, RTCP_PLI_LEN / 4 - 1);
	vtp_put_be32(out + 4, our_ssrc);
	vtp_put_be32(out + 8, media_ssrc);
	return RTCP_PLI_LEN;
}

size_t vtp_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t our_ssrc,
			  uint32_t media_ssrc, uint8_t seq_nr)
{
	if (cap < RTCP_FIR_LEN)
		return 0;
	out[0] = RTP_VERSION << 6 | PSFB_FMT_FIR;
	out[1] = VTP_RTCP_PSFB;
	vtp_put_be16(out + 2, RTCP_FIR_LEN / 4 - 1);
	vtp_put_be32(out + 4, our_ssrc);
	vtp_put_be32(out + 8, 0); /* RFC 5104 §4.3.1.2: media source unused */
	vtp_put_be32(out + 12, media_ssrc);
	out[16] = seq_nr;
	out[17] = 0;
	out[18] = 0;
	out[19] = 0;
	return RTCP_FIR_LEN;
}

size_t vtp_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t our_ssrc, uint32_t media_ssrc,
			   const uint16_t *seqs, size_t nseqs)
{
	size_t len = 12, i = 0;

	if (nseqs == 0 || cap < 16)
		return 0;
	out[0] = RTP_VERSION << 6 | RTPFB_FMT_NACK;
	out[1] = VTP_RTCP_RTPFB;
	vtp_put_be32(out + 4, our_ssrc);
	vtp_put_be32(out + 8, media_ssrc);
	/* each FCI entry: a lost packet id and a bitmask of the 16 after it */
	while (i < nseqs && len + 4 <= cap) {
		uint16_t pid = seqs[i++], blp = 0;

		while (i < nseqs) {
			uint16_t d = (uint16_t)(seqs[i] - pid);

			if (d == 0 || d > 16)
				break;
			blp |= (uint16_t)(1u << (d - 1));
			i++;
		}
		vtp_put_be16(out + len, pid);
		vtp_put_be16(out + len + 2, blp);
		len += 4;
	}
	vtp_put_be16(out + 2, (uint16_t)(len / 4 - 1));
	return len;
}

size_t vtp_rtcp_build_remb(uint8_t *out, size_t cap, uint32_t our_ssrc,
			   const uint32_t *media_ssrcs, size_t nssrcs, uint64_t bitrate)
{
	size_t len = 20 + 4 * nssrcs;
	uint32_t exp = 0;

	if (nssrcs == 0 || nssrcs > 255 || cap < len)
		return 0;
	while (bitrate > 0x3ffff) { /* 18-bit mantissa, 6-bit exponent */
		bitrate >>= 1;
		exp++;
	}
	out[0] = RTP_VERSION << 6 | PSFB_FMT_AFB;
	out[1] = VTP_RTCP_PSFB;
	vtp_put_be16(out + 2, (uint16_t)(len / 4 - 1));
	vtp_put_be32(out + 4, our_ssrc);
	vtp_put_be32(out + 8, 0); /* draft-alvestrand-rmcat-remb: media source unused */
	memcpy(out + 12, "REMB", 4);
	vtp_put_be32(out + 16, (uint32_t)nssrcs << 24 | exp << 18 | (uint32_t)bitrate);
	for (size_t k = 0; k < nssrcs; k++)
		vtp_put_be32(out + 20 + 4 * k, media_ssrcs[k]);
	return len;
}

bool vtp_rtp_stats_seen(const vtp_rtp_stats *s, uint32_t ext_seq)
{
	uint32_t max = vtp_rtp_stats_ext_max(s), back;

	if (ext_seq > max)
		return false;
	back = max - ext_seq;
	if (back >= 128)
		return true; /* beyond the window: no longer knowable, stop asking */
	return seen_test(s, back);
}

bool vtp_rtp_vp8_keyframe(const uint8_t *p, size_t n)
{
	size_t off = 1;

	if (n < 2 || !(p[0] & 0x10) || (p[0] & 0x07) != 0) /* S, PID 0 */
		return false;
	if (p[0] & 0x80) { /* X: an extension byte, then I/L/T/K fields */
		uint8_t x = p[1];

		off = 2;
		if (x & 0x80) { /* I: a 7- or 15-bit PictureID */
			if (off >= n)
				return false;
			off += (p[off] & 0x80) ? 2 : 1;
		}
		if (x & 0x40) /* L: TL0PICIDX */
			off++;
		if (x & (0x20 | 0x10)) /* T or K: one byte */
			off++;
	}
	return off < n && (p[off] & 0x01) == 0;
}

bool vtp_rtp_h264_keyframe(const uint8_t *p, size_t n)
{
	uint8_t type;

	if (n < 1)
		return false;
	type = p[0] & 0x1f;
	if (type == 5)
		return true;
	if (type == 28) /* FU-A: the start fragment of an IDR slice */
		return n >= 2 && (p[1] & 0x80) && (p[1] & 0x1f) == 5;
	if (type == 24) { /* STAP-A: 16-bit sizes, then the NAL units */
		size_t off = 1;

		while (off + 2 < n) {
			size_t len = (size_t)p[off] << 8 | p[off + 1];

			off += 2;
			if (len == 0 || len > n - off)
				return false;
			if ((p[off] & 0x1f) == 5)
				return true;
			off += len;
		}
	}
	return false;
}
