/* DTLS-SRTP (RFC 5763, RFC 5764) for WebRTC ingest, on OpenSSL 3 and
 * libsrtp2.
 *
 * vtp_dtls_ctx: one per process. An ECDSA P-256 key and a self-signed
 * certificate generated at start (never written to disk), its SHA-256
 * fingerprint for the SDP answer, and the SSL_CTX: DTLS 1.2 only,
 * use_srtp offering SRTP_AEAD_AES_128_GCM then SRTP_AES128_CM_SHA1_80, the
 * peer's certificate required and checked against the fingerprint from its
 * SDP (self-signed certificates are the norm: the fingerprint is the
 * trust).
 *
 * vtp_dtls: one handshake, without sockets. Datagrams from the peer go in
 * through vtp_dtls_input; datagrams to send come out through a callback
 * (memory BIOs, MTU 1200). The server role answers a browser
 * (a=setup:passive); the client role exists for the tests and the
 * benchmark client. Once connected, the SRTP keying material is exported
 * ("EXTRACTOR-dtls_srtp").
 *
 * vtp_srtp: the libsrtp2 sessions built from those keys: inbound
 * (unprotect the peer's SRTP and SRTCP) and outbound (protect our RTCP
 * feedback; RTP too, for the test client). Not thread-safe: one thread
 * (the ingest loop) owns each object. */
#ifndef VTP_INGEST_DTLS_H
#define VTP_INGEST_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vtp_dtls_ctx vtp_dtls_ctx;
typedef struct vtp_dtls vtp_dtls;
typedef struct vtp_srtp vtp_srtp;

/* Generates the key and certificate (valid from an hour ago for 30 days,
 * random serial, CN "vtp-recorder") and builds the SSL_CTX. Also
 * initialises libsrtp2 once per process. NULL with a reason in err. */
vtp_dtls_ctx *vtp_dtls_ctx_new(char *err, size_t errlen);
/* The same, offering only srtp_profiles (OpenSSL's colon-separated names,
 * e.g. "SRTP_AES128_CM_SHA1_80"; NULL: the default offer above), for tests
 * and benchmarks. NULL with a reason in err if OpenSSL knows none of them. */
vtp_dtls_ctx *vtp_dtls_ctx_new_with(const char *srtp_profiles, char *err, size_t errlen);
void vtp_dtls_ctx_free(vtp_dtls_ctx *ctx);
/* The certificate's SHA-256 fingerprint, "AB:CD:...": 95 characters. */
const char *vtp_dtls_ctx_fingerprint(const vtp_dtls_ctx *ctx);

enum {
	VTP_DTLS_SERVER = 0, /* we are setup:passive: the peer connects */
	VTP_DTLS_CLIENT = 1, /* tests and benchmarks */
};

/* The peer's expected certificate fingerprint: alg "sha-1", "sha-256",
 * "sha-384" or "sha-512" (lower case) and its digest bytes. NULL when the
 * algorithm is unknown or fp_len does not match it. */
vtp_dtls *vtp_dtls_new(vtp_dtls_ctx *ctx, int role, const char *fp_alg,
		       const uint8_t *fp, size_t fp_len);
void vtp_dtls_free(vtp_dtls *d);

/* Where outgoing datagrams go (the caller sends them to the peer). */
typedef void (*vtp_dtls_send_fn)(void *arg, const uint8_t *p, size_t n);
/* send is called only during the call it is given to, once per whole
 * datagram (records packed up to the MTU, 1200 bytes); NULL drops them.
 * Do not free d from inside it. A vtp_dtls does not need its ctx after
 * vtp_dtls_new (OpenSSL keeps a reference). */

enum {
	VTP_DTLS_HANDSHAKING = 0,
	VTP_DTLS_CONNECTED = 1, /* the handshake finished and keys are ready */
	VTP_DTLS_FAILED = 2,    /* alert, bad certificate or fingerprint, no SRTP profile */
	VTP_DTLS_CLOSED = 3,    /* the peer sent close_notify */
};

/* Client role: sends the first flight. Server role: nothing to do. */
int vtp_dtls_start(vtp_dtls *d, vtp_dtls_send_fn send, void *arg);
/* (vtp_dtls_start: 0, or VTP_EINVAL without d, or VTP_EINTERNAL when the
 * first flight failed and the state is FAILED.) */
/* One datagram from the peer (a DTLS record, first byte 20..63). Returns
 * the state after it. Application data is not expected and is ignored. */
int vtp_dtls_input(vtp_dtls *d, const uint8_t *p, size_t n, vtp_dtls_send_fn send, void *arg);
/* Retransmissions (DTLSv1_handle_timeout); call every 100 ms or so while
 * handshaking. Returns the state. */
int vtp_dtls_tick(vtp_dtls *d, vtp_dtls_send_fn send, void *arg);
int vtp_dtls_state(const vtp_dtls *d);
/* Why it failed, for the log: a short static or internal string. */
const char *vtp_dtls_error(const vtp_dtls *d);
/* ("" until something fails; never key material.) */
/* Sends close_notify (when connected). */
void vtp_dtls_close(vtp_dtls *d, vtp_dtls_send_fn send, void *arg);
/* (Once. The state stays CONNECTED, and our SRTP sessions valid, until the
 * peer's own close_notify.) */

enum {
	VTP_SRTP_AES128_CM_SHA1_80 = 1,
	VTP_SRTP_AEAD_AES_128_GCM = 7,
};

/* The negotiated SRTP protection profile's name ("SRTP_AEAD_AES_128_GCM",
 * ...) or NULL before CONNECTED. */
const char *vtp_dtls_srtp_profile(const vtp_dtls *d);

/* The SRTP sessions from a connected handshake: inbound keyed with the
 * peer's write key, outbound with ours (RFC 5764 §4.2 key layout).
 * Replay window 1024 packets (late retransmissions still pass). NULL when
 * not connected or libsrtp refuses. */
vtp_srtp *vtp_srtp_new(const vtp_dtls *d);
/* Plain-RTP tracks with SRTP (keys exchanged out of band, SDES-style):
 * AES_CM_128_HMAC_SHA1_80 sessions from two 30-byte master keys (16 key
 * then 14 salt bytes), inbound for the sender's SRTP/SRTCP, outbound for
 * our SRTCP feedback (they may be the same key: the SSRCs differ). The
 * keys are copied. NULL when libsrtp refuses (not initialised: create a
 * vtp_dtls_ctx first). */
#define VTP_SRTP_MASTER_LEN 30
vtp_srtp *vtp_srtp_new_keys(const uint8_t inbound[VTP_SRTP_MASTER_LEN],
			   const uint8_t outbound[VTP_SRTP_MASTER_LEN]);
void vtp_srtp_free(vtp_srtp *s);

enum {
	VTP_SRTP_OK = 0,
	VTP_SRTP_AUTH = 1,   /* authentication failed (tampered, wrong key) */
	VTP_SRTP_REPLAY = 2, /* seen already or too old */
	VTP_SRTP_BAD = 3,    /* too short or otherwise refused */
};

/* In place: *n is the protected length on entry, the plain length on
 * return (OK only). */
int vtp_srtp_unprotect_rtp(vtp_srtp *s, uint8_t *p, size_t *n);
int vtp_srtp_unprotect_rtcp(vtp_srtp *s, uint8_t *p, size_t *n);
/* In place: p must have room for *n + VTP_SRTP_MAX_TRAILER bytes. */
#define VTP_SRTP_MAX_TRAILER 148
int vtp_srtp_protect_rtp(vtp_srtp *s, uint8_t *p, size_t *n);
int vtp_srtp_protect_rtcp(vtp_srtp *s, uint8_t *p, size_t *n);

#endif
