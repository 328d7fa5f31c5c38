/* STUN wire code for the ICE-lite agent: the attribute walk of a received
 * message (every length checked against the message before a byte is read,
 * at most ATTR_COUNT_MAX attributes, the output filled only on success),
 * MESSAGE-INTEGRITY with the short-term password (HMAC-SHA1, RFC 8489
 * §14.5), FINGERPRINT (§14.7), and the builders of Binding requests and
 * responses. Attribute values are not required to be valid UTF-8 here: the
 * caller compares USERNAME bytes with what it expects. */
#include "stun.h"

#include <limits.h>
#include <netinet/in.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include "core/bytes.h"
#include "core/error.h"

#define ATTR_MAPPED_ADDRESS 0x0001
#define ATTR_USERNAME 0x0006
#define ATTR_MESSAGE_INTEGRITY 0x0008
#define ATTR_ERROR_CODE 0x0009
#define ATTR_UNKNOWN_ATTRIBUTES 0x000a
#define ATTR_XOR_MAPPED_ADDRESS 0x0020
#define ATTR_PRIORITY 0x0024
#define ATTR_USE_CANDIDATE 0x0025
#define ATTR_FINGERPRINT 0x8028
#define ATTR_ICE_CONTROLLED 0x8029
#define ATTR_ICE_CONTROLLING 0x802a
#define ATTR_OPTIONAL_FIRST 0x8000 /* below: comprehension-required */

#define ATTR_HEADER 4
#define INTEGRITY_LEN 20 /* HMAC-SHA1 */
#define INTEGRITY_ATTR (ATTR_HEADER + INTEGRITY_LEN)
#define FINGERPRINT_ATTR (ATTR_HEADER + 4)
#define FINGERPRINT_XOR 0x5354554eu

/* A Binding request from a browser has 6 to 8 attributes; the cap bounds
 * the work a hostile datagram can ask for. */
#define ATTR_COUNT_MAX 64
#define USERNAME_MAX 513 /* ufrag:ufrag, 256 bytes each at most (RFC 8839) */
#define REASON_MAX 763   /* RFC 8489 §14.8 */
/* What the error builder writes at most, so 256 bytes always suffice:
 * 20 + (8 + 128) + (4 + 32) + 24 + 8 = 224. */
#define REASON_BUILD_MAX 128
#define UNKNOWN_BUILD_MAX 16

#define FAMILY_IPV4 0x01
#define FAMILY_IPV6 0x02
#define IPV4_VALUE 8
#define IPV6_VALUE 20

#define CLASS_MASK 0x0110
#define CLASS_SUCCESS 0x0100
#define CLASS_ERROR 0x0110

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)vtp_get_be32(p) << 32 | vtp_get_be32(p + 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	vtp_put_be32(p, (uint32_t)(v >> 32));
	vtp_put_be32(p + 4, (uint32_t)v);
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* CRC-32 of the message before the FINGERPRINT attribute at off, whose
 * length field already covers the attribute (it is the last). */
static uint32_t fingerprint(const uint8_t *p, size_t off)
{
	return (uint32_t)crc32(0L, p, (uInt)off) ^ FINGERPRINT_XOR;
}

/* HMAC-SHA1 of the message before the MESSAGE-INTEGRITY attribute at off,
 * with the header's length field set to end with that attribute whatever
 * follows it (§14.5). Works on a copy: p is const and may be a received
 * datagram. */
static bool integrity(const uint8_t *p, size_t off, const char *pwd, size_t pwd_len,
		      uint8_t mac[INTEGRITY_LEN])
{
	uint8_t buf[VTP_STUN_MAX];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (off < VTP_STUN_HEADER || off > VTP_STUN_MAX - INTEGRITY_ATTR)
		return false;
	if ((!pwd && pwd_len) || pwd_len > INT_MAX)
		return false;
	memcpy(buf, p, off);
	vtp_put_be16(buf + 2, (uint16_t)(off - VTP_STUN_HEADER + INTEGRITY_ATTR));
	/* HMAC() with a NULL key means "no key given", not an empty one */
	if (!HMAC(EVP_sha1(), pwd_len ? pwd : "", (int)pwd_len, buf, off, md, &md_len) ||
	    md_len != INTEGRITY_LEN)
		return false;
	memcpy(mac, md, INTEGRITY_LEN);
	return true;
}

/* ---- classification -------------------------------------------------------- */

bool vtp_stun_is(const uint8_t *p, size_t n)
{
	size_t len;

	/* RFC 7983 §7: 0..3 is STUN; also the two zero bits of RFC 8489 §5 */
	if (n < VTP_STUN_HEADER || p[0] > 3)
		return false;
	if (vtp_get_be32(p + 4) != VTP_STUN_MAGIC)
		return false;
	len = vtp_get_be16(p + 2);
	return len % 4 == 0 && VTP_STUN_HEADER + len == n;
}

/* ---- parsing --------------------------------------------------------------- */

/* Keeps the first few distinct unknown types for a 420 answer; a repeat of
 * a kept type is not counted again. */
static void note_unknown(vtp_stun_msg *m, uint16_t type)
{
	size_t kept = (size_t)m->unknown_required;

	if (kept > ARRAY_LEN(m->unknown))
		kept = ARRAY_LEN(m->unknown);
	for (size_t i = 0; i < kept; i++)
		if (m->unknown[i] == type)
			return;
	if (kept < ARRAY_LEN(m->unknown))
		m->unknown[kept] = type;
	m->unknown_required++;
}

/* XOR-MAPPED-ADDRESS (§14.2): the port is xored with the cookie's top half,
 * the address with the cookie (IPv4) or the cookie and txid (IPv6), which
 * are the header's bytes 4..19 in that order. */
static int take_xor_address(vtp_stun_msg *m, const uint8_t *p, const uint8_t *v,
			    size_t vlen)
{
	struct sockaddr_storage ss;
	uint16_t port;
	uint8_t addr[16];

	if (vlen < 4)
		return VTP_EINVAL;
	port = vtp_get_be16(v + 2) ^ (uint16_t)(VTP_STUN_MAGIC >> 16);
	memset(&ss, 0, sizeof(ss));
	if (v[1] == FAMILY_IPV4 && vlen == IPV4_VALUE) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		for (size_t i = 0; i < 4; i++)
			addr[i] = v[4 + i] ^ p[4 + i];
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, 4);
	} else if (v[1] == FAMILY_IPV6 && vlen == IPV6_VALUE) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		for (size_t i = 0; i < 16; i++)
			addr[i] = v[4 + i] ^ p[4 + i];
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
	} else {
		return VTP_EINVAL;
	}
	if ((m->type & CLASS_MASK) == CLASS_SUCCESS && !m->has_mapped) {
		m->has_mapped = true;
		m->mapped = ss;
	}
	return 0;
}

/* One attribute before MESSAGE-INTEGRITY (or without one). Of a repeated
 * attribute the first counts (§14); a known attribute with a malformed value
 * makes the message malformed. */
static int take_attribute(vtp_stun_msg *m, const uint8_t *p, size_t off,
			  uint16_t type, const uint8_t *v, size_t vlen)
{
	switch (type) {
	case ATTR_USERNAME:
		if (vlen > USERNAME_MAX)
			return VTP_EINVAL;
		if (!m->username) {
			m->username = v;
			m->username_len = vlen;
		}
		break;
	case ATTR_PRIORITY:
		if (vlen != 4)
			return VTP_EINVAL;
		if (!m->has_priority) {
			m->has_priority = true;
			m->priority = vtp_get_be32(v);
		}
		break;
	case ATTR_USE_CANDIDATE:
		if (vlen != 0)
			return VTP_EINVAL;
		m->use_candidate = true;
		break;
	case ATTR_ICE_CONTROLLING:
	case ATTR_ICE_CONTROLLED: {
		bool controlling = type == ATTR_ICE_CONTROLLING;

		if (vlen != 8)
			return VTP_EINVAL;
		/* both roles in one request leave the tiebreaker ambiguous */
		if (controlling ? m->ice_controlled : m->ice_controlling)
			return VTP_EINVAL;
		if (!m->ice_controlling && !m->ice_controlled)
			m->tiebreaker = get64(v);
		if (controlling)
			m->ice_controlling = true;
		else
			m->ice_controlled = true;
		break;
	}
	case ATTR_MESSAGE_INTEGRITY:
		if (vlen != INTEGRITY_LEN)
			return VTP_EINVAL;
		m->integrity_at = off;
		break;
	case ATTR_ERROR_CODE: {
		unsigned class_digit, number;

		if (vlen < 4 || vlen > 4 + REASON_MAX)
			return VTP_EINVAL;
		class_digit = v[2] & 0x07;
		number = v[3];
		if (class_digit < 3 || class_digit > 6 || number > 99)
			return VTP_EINVAL;
		if ((m->type & CLASS_MASK) == CLASS_ERROR && !m->error_code)
			m->error_code = (int)(class_digit * 100 + number);
		break;
	}
	case ATTR_XOR_MAPPED_ADDRESS:
		return take_xor_address(m, p, v, vlen);
	case ATTR_MAPPED_ADDRESS:
	case ATTR_UNKNOWN_ATTRIBUTES:
		/* understood but unused: only their length matters */
		break;
	default:
		if (type < ATTR_OPTIONAL_FIRST)
			note_unknown(m, type);
		break;
	}
	return 0;
}

int vtp_stun_parse(const uint8_t *p, size_t n, vtp_stun_msg *out)
{
	vtp_stun_msg m;
	size_t off = VTP_STUN_HEADER;
	int count = 0;

	if (n > VTP_STUN_MAX || !vtp_stun_is(p, n))
		return VTP_EINVAL;
	memset(&m, 0, sizeof(m));
	m.type = vtp_get_be16(p);
	memcpy(m.txid, p + 8, sizeof(m.txid));
	m.len = n;
	while (off < n) {
		const uint8_t *v = p + off + ATTR_HEADER;
		uint16_t type;
		size_t vlen, span;

		if (++count > ATTR_COUNT_MAX || n - off < ATTR_HEADER)
			return VTP_EINVAL;
		type = vtp_get_be16(p + off);
		vlen = vtp_get_be16(p + off + 2);
		/* the padding must be there too; its bytes may be anything
		 * (RFC 5769's vectors pad with spaces) */
		span = ATTR_HEADER + pad4(vlen);
		if (span > n - off)
			return VTP_EINVAL;
		if (type == ATTR_FINGERPRINT) {
			if (vlen != 4 || span != n - off)
				return VTP_EINVAL;
			if (vtp_get_be32(v) != fingerprint(p, off))
				return VTP_EINVAL;
			m.has_fingerprint = true;
		} else if (m.integrity_at == 0) {
			if (take_attribute(&m, p, off, type, v, vlen) != 0)
				return VTP_EINVAL;
		}
		/* after MESSAGE-INTEGRITY only FINGERPRINT counts (§14.5) */
		off += span;
	}
	*out = m;
	return 0;
}

bool vtp_stun_check_integrity(const uint8_t *p, const vtp_stun_msg *m,
			      const char *pwd, size_t pwd_len)
{
	uint8_t mac[INTEGRITY_LEN];
	size_t at = m->integrity_at;

	if (at < VTP_STUN_HEADER || m->len > VTP_STUN_MAX ||
	    at > m->len || m->len - at < INTEGRITY_ATTR)
		return false;
	if (!integrity(p, at, pwd, pwd_len, mac))
		return false;
	return CRYPTO_memcmp(mac, p + at + ATTR_HEADER, INTEGRITY_LEN) == 0;
}

/* ---- building -------------------------------------------------------------- */

/* The builders check the whole size first, so a too-small cap leaves out
 * untouched; the writer checks again and keeps the header's length field
 * covering every attribute written, which is what MESSAGE-INTEGRITY and
 * FINGERPRINT are computed with. */
typedef struct writer {
	uint8_t *out;
	size_t cap;
	size_t len;
	bool failed;
} writer;

static void begin_message(writer *w, uint8_t *out, size_t cap, uint16_t type,
			  const uint8_t txid[12])
{
	w->out = out;
	w->cap = cap;
	w->len = VTP_STUN_HEADER;
	w->failed = cap < VTP_STUN_HEADER;
	if (w->failed)
		return;
	vtp_put_be16(out, type);
	vtp_put_be16(out + 2, 0);
	vtp_put_be32(out + 4, VTP_STUN_MAGIC);
	memcpy(out + 8, txid, 12);
}

/* Appends an attribute with zeroed padding; returns where its value goes,
 * NULL when it does not fit. */
static uint8_t *add_attribute(writer *w, uint16_t type, size_t vlen)
{
	size_t span = ATTR_HEADER + pad4(vlen);
	uint8_t *a;

	if (w->failed || vlen > UINT16_MAX || span > w->cap - w->len ||
	    w->len + span > VTP_STUN_MAX) {
		w->failed = true;
		return NULL;
	}
	a = w->out + w->len;
	vtp_put_be16(a, type);
	vtp_put_be16(a + 2, (uint16_t)vlen);
	memset(a + ATTR_HEADER + vlen, 0, span - ATTR_HEADER - vlen);
	w->len += span;
	vtp_put_be16(w->out + 2, (uint16_t)(w->len - VTP_STUN_HEADER));
	return a + ATTR_HEADER;
}

static void add_integrity(writer *w, const char *pwd, size_t pwd_len)
{
	size_t at = w->len;
	uint8_t *v = add_attribute(w, ATTR_MESSAGE_INTEGRITY, INTEGRITY_LEN);

	if (v && !integrity(w->out, at, pwd, pwd_len, v))
		w->failed = true;
}

/* Adds FINGERPRINT and returns the message's length, 0 on failure. */
static size_t finish_message(writer *w)
{
	size_t at = w->len;
	uint8_t *v = add_attribute(w, ATTR_FINGERPRINT, 4);

	if (!v)
		return 0;
	vtp_put_be32(v, fingerprint(w->out, at));
	return w->failed ? 0 : w->len;
}

size_t vtp_stun_build_success(uint8_t *out, size_t cap, const uint8_t txid[12],
			      const struct sockaddr *from, const char *pwd, size_t pwd_len)
{
	writer w;
	uint8_t *v;
	size_t vlen;

	if (!from || !pwd)
		return 0;
	if (from->sa_family == AF_INET)
		vlen = IPV4_VALUE;
	else if (from->sa_family == AF_INET6)
		vlen = IPV6_VALUE;
	else
		return 0;
	if (cap < VTP_STUN_HEADER + ATTR_HEADER + vlen + INTEGRITY_ATTR + FINGERPRINT_ATTR)
		return 0;
	begin_message(&w, out, cap, VTP_STUN_BINDING_SUCCESS, txid);
	v = add_attribute(&w, ATTR_XOR_MAPPED_ADDRESS, vlen);
	if (!v)
		return 0;
	v[0] = 0;
	if (vlen == IPV4_VALUE) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)from;

		v[1] = FAMILY_IPV4;
		vtp_put_be16(v + 2, ntohs(sin->sin_port) ^ (uint16_t)(VTP_STUN_MAGIC >> 16));
		memcpy(v + 4, &sin->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)from;

		v[1] = FAMILY_IPV6;
		vtp_put_be16(v + 2, ntohs(sin6->sin6_port) ^ (uint16_t)(VTP_STUN_MAGIC >> 16));
		memcpy(v + 4, &sin6->sin6_addr, 16);
	}
	/* cookie, then txid: the header's bytes 4.. */
	for (size_t i = 4; i < vlen; i++)
		v[i] ^= out[i];
	add_integrity(&w, pwd, pwd_len);
	return finish_message(&w);
}

static const char *default_reason(int code)
{
	static const struct {
		int code;
		const char *reason;
	} reasons[] = {
		{300, "Try Alternate"}, {400, "Bad Request"}, {401, "Unauthorized"},
		{420, "Unknown Attribute"}, {438, "Stale Nonce"}, {487, "Role Conflict"},
		{500, "Server Error"},
	};

	for (size_t i = 0; i < ARRAY_LEN(reasons); i++)
		if (reasons[i].code == code)
			return reasons[i].reason;
	return "";
}

/* The reason's length, cut to REASON_BUILD_MAX on a UTF-8 character
 * boundary. */
static size_t reason_length(const char *reason)
{
	size_t n = strnlen(reason, REASON_BUILD_MAX + 1);

	if (n > REASON_BUILD_MAX) {
		n = REASON_BUILD_MAX;
		while (n > 0 && ((uint8_t)reason[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

size_t vtp_stun_build_error(uint8_t *out, size_t cap, const uint8_t txid[12], int code,
			    const char *reason, const uint16_t *unknown, int nunknown,
			    const char *pwd, size_t pwd_len)
{
	writer w;
	uint8_t *v;
	size_t reason_len, count = 0, need;

	if (code < 300 || code > 699)
		return 0;
	if (!reason)
		reason = default_reason(code);
	reason_len = reason_length(reason);
	if (code == 420 && unknown && nunknown > 0)
		count = nunknown > UNKNOWN_BUILD_MAX ? UNKNOWN_BUILD_MAX : (size_t)nunknown;
	need = VTP_STUN_HEADER + ATTR_HEADER + pad4(4 + reason_len) + FINGERPRINT_ATTR;
	if (count)
		need += ATTR_HEADER + pad4(2 * count);
	if (pwd)
		need += INTEGRITY_ATTR;
	if (cap < need)
		return 0;

	begin_message(&w, out, cap, VTP_STUN_BINDING_ERROR, txid);
	v = add_attribute(&w, ATTR_ERROR_CODE, 4 + reason_len);
	if (!v)
		return 0;
	v[0] = 0;
	v[1] = 0;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	memcpy(v + 4, reason, reason_len);
	if (count) {
		v = add_attribute(&w, ATTR_UNKNOWN_ATTRIBUTES, 2 * count);
		if (!v)
			return 0;
		for (size_t i = 0; i < count; i++)
			vtp_put_be16(v + 2 * i, unknown[i]);
	}
	if (pwd)
		add_integrity(&w, pwd, pwd_len);
	return finish_message(&w);
}

size_t vtp_stun_build_request(uint8_t *out, size_t cap, const uint8_t txid[12],
			      const char *username, const char *pwd, size_t pwd_len,
			      uint32_t priority, uint64_t tiebreaker, bool use_candidate)
{
	writer w;
	uint8_t *v;
	size_t username_len, need;

	if (!username || !pwd)
		return 0;
	username_len = strnlen(username, USERNAME_MAX + 1);
	if (username_len > USERNAME_MAX)
		return 0;
	need = VTP_STUN_HEADER + ATTR_HEADER + pad4(username_len) + ATTR_HEADER + 4 +
	       ATTR_HEADER + 8 + INTEGRITY_ATTR + FINGERPRINT_ATTR;
	if (use_candidate)
		need += ATTR_HEADER;
	if (cap < need)
		return 0;

	begin_message(&w, out, cap, VTP_STUN_BINDING_REQUEST, txid);
	v = add_attribute(&w, ATTR_USERNAME, username_len);
	if (v)
		memcpy(v, username, username_len);
	v = add_attribute(&w, ATTR_PRIORITY, 4);
	if (v)
		vtp_put_be32(v, priority);
	v = add_attribute(&w, ATTR_ICE_CONTROLLING, 8);
	if (v)
		put64(v, tiebreaker);
	if (use_candidate)
		(void)add_attribute(&w, ATTR_USE_CANDIDATE, 0);
	add_integrity(&w, pwd, pwd_len);
	return finish_message(&w);
}
