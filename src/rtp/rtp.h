/* RTP and RTCP on the wire (RFC 3550, RFC 5761 muxing, RFC 4585 PLI,
 * RFC 5104 FIR): parsing that checks every length, per-source receive
 * statistics (RFC 3550 A.1, A.3, A.8), and the feedback packets the
 * recorder sends. Pure functions over byte buffers: no sockets, no locks. */
#ifndef VTP_RTP_RTP_H
#define VTP_RTP_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VTP_RTP_MIN_HEADER 12

/* ---- classification ------------------------------------------------------ */

enum {
	VTP_PKT_GARBAGE = 0, /* neither (too short, version != 2, ...) */
	VTP_PKT_RTP = 1,
	VTP_PKT_RTCP = 2,
};

/* RFC 5761 §4: version 2 and a second byte of 192..223 is RTCP; other
 * version-2 datagrams of at least 12 bytes are RTP candidates. Only looks
 * at the first two bytes and the length. */
int vtp_pkt_classify(const uint8_t *p, size_t n);

/* ---- RTP ------------------------------------------------------------------ */

typedef struct vtp_rtp {
	bool marker;
	uint8_t pt;
	uint16_t seq;
	uint32_t ts;
	uint32_t ssrc;
	uint8_t csrc_count;
	bool has_extension;
	uint16_t ext_profile;     /* when has_extension */
	const uint8_t *ext;       /* extension data (ext_len bytes) */
	size_t ext_len;
	const uint8_t *payload;   /* after header, CSRCs and extension */
	size_t payload_len;       /* padding removed */
	size_t header_len;
	uint8_t padding_len;      /* 0 when no padding */
} vtp_rtp;

/* 0, or VTP_EINVAL when the packet is not a well-formed RTP packet: version
 * != 2, shorter than its header + CSRCs + extension, padding count 0 or
 * larger than what follows the header. A packet may carry an empty payload
 * (payload_len 0). */
int vtp_rtp_parse(const uint8_t *p, size_t n, vtp_rtp *out);

/* Whether an RTP payload starts a keyframe, for the ingest's keyframe
 * requests (the composer's depacketizer judges whole frames; this looks
 * at one packet). VP8 (RFC 7741): the first packet of a frame (S=1, PID 0)
 * whose payload header has P=0. H.264 (RFC 6184): an IDR slice (5), alone,
 * in a STAP-A or at the start of an FU-A. Never reads past n. */
bool vtp_rtp_vp8_keyframe(const uint8_t *payload, size_t n);
bool vtp_rtp_h264_keyframe(const uint8_t *payload, size_t n);

/* ---- RTCP ----------------------------------------------------------------- */

enum {
	VTP_RTCP_SR = 200,
	VTP_RTCP_RR = 201,
	VTP_RTCP_SDES = 202,
	VTP_RTCP_BYE = 203,
	VTP_RTCP_APP = 204,
	VTP_RTCP_RTPFB = 205,
	VTP_RTCP_PSFB = 206,
};

typedef struct vtp_rtcp_sr {
	uint32_t ssrc;
	uint64_t ntp;       /* 32.32 fixed point */
	uint32_t rtp_ts;
	uint32_t packet_count;
	uint32_t octet_count;
} vtp_rtcp_sr;

/* What a compound RTCP packet says that the recorder uses. */
typedef struct vtp_rtcp_info {
	int packets;          /* sub-packets in the compound */
	bool has_sr;
	vtp_rtcp_sr sr;       /* the first SR */
	bool has_bye;
	uint32_t bye_ssrc;    /* first SSRC of the first BYE (0 if none listed) */
} vtp_rtcp_info;

/* Walks a compound packet: every sub-packet must be version 2, have a
 * length that fits, and padding only on the last one; an SR must be at
 * least 28 bytes. 0, or VTP_EINVAL with nothing trusted. */
int vtp_rtcp_parse(const uint8_t *p, size_t n, vtp_rtcp_info *out);

/* ---- receive statistics (one per source) ----------------------------------- */

typedef struct vtp_rtp_stats {
	/* RFC 3550 A.1 */
	bool started;
	uint16_t max_seq;
	uint32_t cycles;         /* shifted count of seq wraps (multiples of 65536) */
	uint32_t base_seq;
	uint32_t bad_seq;
	uint32_t probation;
	/* counters */
	uint64_t received;       /* distinct packets accepted (duplicates excluded) */
	uint64_t bytes;          /* payload bytes of those */
	uint64_t duplicates;
	uint64_t reordered;      /* arrived after a higher seq, not duplicates */
	/* duplicate detection: bit i = seq (max_seq - i) seen, i < 128 */
	uint64_t seen[2];
	/* RFC 3550 A.8, in timestamp units */
	double jitter;
	int64_t last_transit;
	bool have_transit;
	/* RFC 3550 A.3: receiver report bookkeeping */
	uint64_t expected_prior;
	uint64_t received_prior;
	/* last SR, for LSR/DLSR in reports */
	uint32_t last_sr_mid;    /* middle 32 bits of its NTP time */
	uint64_t last_sr_arrival_ns;
} vtp_rtp_stats;

/* Result of vtp_rtp_stats_update. */
enum {
	VTP_SEQ_OK = 0,        /* in order or a forward jump */
	VTP_SEQ_REORDERED = 1, /* late but new */
	VTP_SEQ_DUPLICATE = 2, /* seen before: drop it */
	VTP_SEQ_RESTART = 3,   /* a large jump confirmed: the sequence restarted */
	VTP_SEQ_PROBATION = 4, /* a large jump not yet confirmed: keep, don't trust */
};

void vtp_rtp_stats_init(vtp_rtp_stats *s);
/* Accounts one RTP packet. arrival_ts: the arrival time converted to the
 * stream's clock (timestamp units) for jitter. */
int vtp_rtp_stats_update(vtp_rtp_stats *s, uint16_t seq, uint32_t rtp_ts,
			 uint32_t arrival_ts, size_t payload_len);
/* Extended highest sequence number received. */
uint32_t vtp_rtp_stats_ext_max(const vtp_rtp_stats *s);
/* Packets expected since the first; lost = expected - received (may be
 * negative with duplicates from the sender's side, clamped at 0 here). */
uint64_t vtp_rtp_stats_expected(const vtp_rtp_stats *s);
uint64_t vtp_rtp_stats_lost(const vtp_rtp_stats *s);
/* Jitter in seconds for a clock rate. */
double vtp_rtp_stats_jitter_seconds(const vtp_rtp_stats *s, uint32_t clock_rate);
/* Remembers an SR for the LSR/DLSR fields of later reports. */
void vtp_rtp_stats_on_sr(vtp_rtp_stats *s, uint64_t ntp, uint64_t arrival_ns);

/* True when the packet with extended sequence number ext_seq arrived, or
 * is too far behind the highest one (128) to tell: asking for it again
 * would be pointless. */
bool vtp_rtp_stats_seen(const vtp_rtp_stats *s, uint32_t ext_seq);

/* ---- packets the recorder sends -------------------------------------------- */

/* Each writes into out (cap bytes) and returns the length, or 0 when cap is
 * too small. */

/* RR with one report block for `s` (fraction lost and cumulative lost per
 * RFC 3550 A.3, updating s's prior counters; LSR/DLSR from the last SR). */
size_t vtp_rtcp_build_rr(uint8_t *out, size_t cap, uint32_t our_ssrc,
			 uint32_t media_ssrc, vtp_rtp_stats *s, uint64_t now_ns);
/* RFC 4585 PLI. */
size_t vtp_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t our_ssrc,
			  uint32_t media_ssrc);
/* RFC 5104 FIR with one FCI entry; seq_nr increments per new request. */
size_t vtp_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t our_ssrc,
			  uint32_t media_ssrc, uint8_t seq_nr);

/* RFC 4585 §6.2.1 generic NACK for the given sequence numbers (in
 * ascending order, modulo 2^16): as many FCI entries as cap allows. */
size_t vtp_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t our_ssrc, uint32_t media_ssrc,
			   const uint16_t *seqs, size_t nseqs);
/* REMB (draft-alvestrand-rmcat-remb): the most the sender should send, in
 * bits per second, for the listed SSRCs (1..255). */
size_t vtp_rtcp_build_remb(uint8_t *out, size_t cap, uint32_t our_ssrc,
			   const uint32_t *media_ssrcs, size_t nssrcs, uint64_t bitrate);

#endif
