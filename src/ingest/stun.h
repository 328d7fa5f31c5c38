/* STUN (RFC 8489) as an ICE-lite agent needs it (RFC 8445 §2.5, §7.3):
 * parsing a Binding request with every length checked, checking its
 * MESSAGE-INTEGRITY (HMAC-SHA1 with the short-term password) and
 * FINGERPRINT (CRC-32 xor 0x5354554e), and building the responses. Also
 * builds Binding requests, for the tests and the benchmark client that act
 * as the full ICE agent. Pure functions over byte buffers: no sockets. */
#ifndef VTP_INGEST_STUN_H
#define VTP_INGEST_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define VTP_STUN_HEADER 20
#define VTP_STUN_MAGIC 0x2112A442u
#define VTP_STUN_MAX 1280 /* larger messages are not ICE's and are rejected */

enum {
	VTP_STUN_BINDING_REQUEST = 0x0001,
	VTP_STUN_BINDING_INDICATION = 0x0011,
	VTP_STUN_BINDING_SUCCESS = 0x0101,
	VTP_STUN_BINDING_ERROR = 0x0111,
};

typedef struct vtp_stun_msg {
	uint16_t type;              /* method and class, as on the wire */
	uint8_t txid[12];
	size_t len;                 /* the whole message: 20 + header length */
	const uint8_t *username;    /* USERNAME value, NULL when absent */
	size_t username_len;
	bool has_priority;
	uint32_t priority;
	bool use_candidate;
	bool ice_controlling, ice_controlled;
	uint64_t tiebreaker;
	/* MESSAGE-INTEGRITY: offset of the attribute's header in the message,
	 * 0 when absent. Attributes after it other than FINGERPRINT are
	 * ignored (RFC 8489 §14.5). */
	size_t integrity_at;
	bool has_fingerprint;       /* present and right (a wrong one fails parse) */
	/* Unknown comprehension-required attributes (type < 0x8000) seen
	 * before MESSAGE-INTEGRITY; the first few kept for a 420 answer. */
	int unknown_required;
	uint16_t unknown[4];
	/* XOR-MAPPED-ADDRESS of a success response (for the client side) */
	bool has_mapped;
	struct sockaddr_storage mapped;
	int error_code;             /* ERROR-CODE of an error response, else 0 */
} vtp_stun_msg;

/* RFC 7983 first-byte test plus the magic cookie: true when the datagram is
 * STUN (first byte 0..3, at least a header, cookie right, length a
 * multiple of 4 that matches the datagram). */
bool vtp_stun_is(const uint8_t *p, size_t n);

/* Parses a whole STUN message: header, every attribute's length and
 * padding inside the message, the values of the attributes above, and the
 * FINGERPRINT when present (it must be last and right). 0, or VTP_EINVAL
 * when malformed. Pointers in m point into p. */
int vtp_stun_parse(const uint8_t *p, size_t n, vtp_stun_msg *m);

/* True when m carries MESSAGE-INTEGRITY and it is right for the
 * short-term credential pwd (RFC 8489 §14.5: HMAC-SHA1 over the message up
 * to the attribute, with the length field covering it). p is the parsed
 * message's bytes. Constant-time comparison. */
bool vtp_stun_check_integrity(const uint8_t *p, const vtp_stun_msg *m,
			      const char *pwd, size_t pwd_len);

/* A Binding success response to txid: XOR-MAPPED-ADDRESS of from (IPv4 or
 * IPv6), MESSAGE-INTEGRITY with pwd, FINGERPRINT. Returns its length, or 0
 * when cap is too small (160 bytes always suffice). */
size_t vtp_stun_build_success(uint8_t *out, size_t cap, const uint8_t txid[12],
			      const struct sockaddr *from, const char *pwd, size_t pwd_len);

/* A Binding error response: ERROR-CODE (code 300..699 with reason),
 * UNKNOWN-ATTRIBUTES when code is 420 and unknown != NULL, then
 * MESSAGE-INTEGRITY when pwd is not NULL, and FINGERPRINT. 0 when cap is
 * too small (256 bytes always suffice). */
size_t vtp_stun_build_error(uint8_t *out, size_t cap, const uint8_t txid[12], int code,
			    const char *reason, const uint16_t *unknown, int nunknown,
			    const char *pwd, size_t pwd_len);

/* A Binding request as a full, controlling ICE agent sends it: USERNAME
 * (NUL-terminated, at most 513 bytes), PRIORITY, ICE-CONTROLLING with
 * tiebreaker, USE-CANDIDATE when asked, MESSAGE-INTEGRITY with pwd,
 * FINGERPRINT. 0 when cap is too small (640 bytes always suffice). */
size_t vtp_stun_build_request(uint8_t *out, size_t cap, const uint8_t txid[12],
			      const char *username, const char *pwd, size_t pwd_len,
			      uint32_t priority, uint64_t tiebreaker, bool use_candidate);

#endif
