/* SDP (RFC 8866) as WHIP (RFC 9725) needs it: parsing a publisher's offer
 * (what Chrome, Firefox, OBS and GStreamer's webrtcbin send) and writing
 * the recorder's answer (RFC 8829 §5.3 shapes, RFC 3264 rules): ICE-lite,
 * one host candidate, DTLS fingerprint, setup:passive, recvonly, BUNDLE,
 * rtcp-mux, one codec per media section.
 *
 * The recorder takes at most one audio section (Opus) and one video
 * section (VP8, else H.264 with packetization-mode=1); every other section
 * is answered with port 0 (rejected), as RFC 3264 §6 wants. Codec and
 * attribute names compare case-insensitively. Every line is read through a
 * length-checked cursor; the offer is untrusted. */
#ifndef VTP_INGEST_SDP_H
#define VTP_INGEST_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define VTP_SDP_MAX_BYTES (64 * 1024)
#define VTP_SDP_MAX_MEDIA 16
#define VTP_SDP_MAX_CODECS 32
#define VTP_SDP_MAX_SSRCS 8

enum { VTP_SDP_AUDIO = 1, VTP_SDP_VIDEO = 2, VTP_SDP_OTHER = 3 };
enum { VTP_SDP_SENDRECV = 0, VTP_SDP_SENDONLY, VTP_SDP_RECVONLY, VTP_SDP_INACTIVE };

typedef struct vtp_sdp_codec {
	int pt;                 /* 0..127 */
	char name[32];          /* as written (e.g. "VP8", "opus") */
	uint32_t clock_rate;
	int channels;           /* audio; 1 when not given */
	char fmtp[512];         /* a=fmtp parameters, "" when none, or when they hold a
				 * character outside A-Z a-z 0-9 -_.;=,/+:* and space
				 * (the answer may echo them) */
	bool nack, nack_pli, ccm_fir, goog_remb, transport_cc;  /* a=rtcp-fb */
} vtp_sdp_codec;

typedef struct vtp_sdp_media {
	int kind;               /* VTP_SDP_AUDIO / VIDEO / OTHER */
	char media[16];         /* the m= media name ("audio", "application", ...) */
	char proto[40];         /* "UDP/TLS/RTP/SAVPF", ... */
	char fmts[256];         /* the m= line's format list, as written (token
				 * characters, single spaces; formats past 255
				 * characters are left out) */
	int port;
	char mid[33];           /* "" when absent */
	int direction;          /* VTP_SDP_SENDRECV when absent */
	bool rtcp_mux;
	bool bundle_only;
	vtp_sdp_codec codecs[VTP_SDP_MAX_CODECS]; /* from a=rtpmap, in m= order */
	int ncodecs;
	uint32_t ssrcs[VTP_SDP_MAX_SSRCS];        /* a=ssrc ids, first seen first */
	int nssrcs;
	/* The recorder's choice: index into codecs, -1 when the section is
	 * rejected (reject_reason says why, for the log). */
	int chosen;
	const char *reject_reason;
} vtp_sdp_media;

typedef struct vtp_sdp_offer {
	vtp_sdp_media media[VTP_SDP_MAX_MEDIA];
	int nmedia;
	/* ICE and DTLS parameters: media-level values win over session-level
	 * ones; all accepted sections must agree (BUNDLE: one transport). */
	char ice_ufrag[257];    /* 4..256 ice-chars (RFC 8839 §5.4) */
	char ice_pwd[257];      /* 22..256 ice-chars */
	bool ice_lite;          /* the offerer is lite too (then we cannot pair) */
	char fingerprint_alg[16]; /* lower case: "sha-256", "sha-1", "sha-384", "sha-512" */
	uint8_t fingerprint[64];
	size_t fingerprint_len; /* matches the algorithm */
	char setup[16];         /* "actpass", "active" (passive is refused; absent
				 * means active, RFC 4145 §4) */
	/* a=group:BUNDLE mids, as written, space separated ("" when none) */
	char bundle[512];
	int accepted;           /* sections with chosen >= 0 */
} vtp_sdp_offer;

/* Parses an offer of len bytes (no NUL needed; CRLF or LF line ends) and
 * makes the recorder's choices. 0, or VTP_EINVAL with a one-line reason in
 * why (for the 400 answer) when: it is not SDP (v=0 first, o=, s=, t=,
 * m= shapes), a line is malformed or too long, ICE credentials or a DTLS
 * fingerprint are missing or malformed, setup is passive, the proto is not
 * UDP/TLS/RTP/SAVP(F), no section carries an acceptable codec from a
 * sending peer (sendonly or sendrecv), or several accepted sections are not
 * in one BUNDLE group. */
int vtp_sdp_parse_offer(const char *sdp, size_t len, vtp_sdp_offer *o, char *why, size_t whylen);

typedef struct vtp_sdp_answer_params {
	const char *ip;          /* the host candidate's address (IPv4 text) */
	int port;                /* its UDP port */
	const char *ice_ufrag;   /* ours: 4+ ice-chars */
	const char *ice_pwd;     /* ours: 22+ ice-chars */
	const char *fingerprint; /* ours, SHA-256 as "AB:CD:..." (95 chars) */
	uint64_t session_id;     /* o= session id */
} vtp_sdp_answer_params;

/* Writes the answer into out (appended whole, or nothing when out's max has
 * no room for it; text with CRLF line ends): for each
 * offered section, in order, either the accepted codec with its fmtp and
 * the rtcp-fb the recorder uses (nack, nack pli, ccm fir, goog-remb when
 * offered for it), or port 0 and the offered formats. Every accepted
 * section carries a=mid, the ICE credentials, the fingerprint,
 * a=setup:passive, a=recvonly, a=rtcp-mux, the candidate and
 * a=end-of-candidates; the session carries a=ice-lite and a=group:BUNDLE of
 * the accepted mids. */
void vtp_sdp_write_answer(const vtp_sdp_offer *o, const vtp_sdp_answer_params *p, vtp_buf *out);

#endif
