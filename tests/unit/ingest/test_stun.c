/* Tests for src/ingest/stun.c: the RFC 5769 sample request and IPv4/IPv6
 * responses (parse, MESSAGE-INTEGRITY, FINGERPRINT), the §14.5 length rule
 * with attributes after MESSAGE-INTEGRITY, unknown comprehension-required
 * attributes, the builders round-tripped through the parser (and one error
 * response byte for byte), and table-driven refusals: malformed framing,
 * bad attribute values, wrong fingerprints, wrong passwords and tampering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <zlib.h>

#include "testutil.h"

#include "core/error.h"
#include "ingest/stun.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MSG_MAX 2048

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			fail_msg("case \"%s\": %s", c->name, #cond); \
	} while (0)

/* ---- RFC 5769 test vectors ------------------------------------------------ */

#define RFC_PWD "VOkJxbRl1RmTxUk/WvJxBt"
#define RFC_TXID "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"

#define RFC_REQUEST \
	"00 01 00 58 21 12 a4 42" RFC_TXID \
	"80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74" \
	"00 24 00 04 6e 00 01 ff" \
	"80 29 00 08 93 2f f9 b1 51 26 3b 36" \
	"00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20" \
	"00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2" \
	"80 28 00 04 e5 7a 3b cf"
#define RFC_REQUEST_INTEGRITY_AT 76

#define RFC_RESPONSE_V4 \
	"01 01 00 3c 21 12 a4 42" RFC_TXID \
	"80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20" \
	"00 20 00 08 00 01 a1 47 e1 12 a6 43" \
	"00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7" \
	"80 28 00 04 c0 7d 4c 96"
#define RFC_XOR_V4 "00 20 00 08 00 01 a1 47 e1 12 a6 43"

#define RFC_RESPONSE_V6 \
	"01 01 00 48 21 12 a4 42" RFC_TXID \
	"80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20" \
	"00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9" \
	"00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41" \
	"80 28 00 04 c8 fb 0b 4c"
#define RFC_XOR_V6 \
	"00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"

static const uint8_t rfc_txid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
				     0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

/* ---- helpers ---------------------------------------------------------------- */

/* A message of type with the RFC txid and the attributes in attrs (hex);
 * the length field is computed. */
static size_t message(uint16_t type, const char *attrs, uint8_t *out, size_t cap)
{
	size_t n = vtp_test_unhex(attrs, out + VTP_STUN_HEADER, cap - VTP_STUN_HEADER);

	out[0] = (uint8_t)(type >> 8);
	out[1] = (uint8_t)type;
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	out[4] = 0x21;
	out[5] = 0x12;
	out[6] = 0xa4;
	out[7] = 0x42;
	memcpy(out + 8, rfc_txid, 12);
	return VTP_STUN_HEADER + n;
}

/* Rewrites the header length for n bytes and every FINGERPRINT's value as
 * if it were the last attribute, so a case fails for its stated reason and
 * not for a stale CRC. The walk trusts the test's own bytes. */
static void fix_lengths(uint8_t *p, size_t n)
{
	size_t off = VTP_STUN_HEADER;

	p[2] = (uint8_t)((n - VTP_STUN_HEADER) >> 8);
	p[3] = (uint8_t)(n - VTP_STUN_HEADER);
	while (off + 4 <= n) {
		uint16_t type = (uint16_t)(p[off] << 8 | p[off + 1]);
		size_t vlen = (size_t)(p[off + 2] << 8 | p[off + 3]);

		if (type == 0x8028 && vlen == 4 && off + 8 <= n) {
			uint32_t crc = (uint32_t)crc32(0L, p, (uInt)off) ^ 0x5354554eu;

			p[off + 4] = (uint8_t)(crc >> 24);
			p[off + 5] = (uint8_t)(crc >> 16);
			p[off + 6] = (uint8_t)(crc >> 8);
			p[off + 7] = (uint8_t)crc;
		}
		off += 4 + ((vlen + 3) & ~(size_t)3);
	}
}

static void make_v4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
}

static void make_v6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port &&
		       memcmp(&x->sin_addr, &y->sin_addr, 4) == 0;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

static bool contains(const uint8_t *p, size_t n, const char *hex)
{
	uint8_t want[64];
	size_t k = vtp_test_unhex(hex, want, sizeof(want));

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(p + i, want, k) == 0)
			return true;
	return false;
}

/* ---- RFC 5769 ---------------------------------------------------------------- */

static void test_rfc5769_request(void **state)
{
	uint8_t p[MSG_MAX];
	size_t n = vtp_test_unhex(RFC_REQUEST, p, sizeof(p));
	vtp_stun_msg m;

	assert_int_equal(n, 108);
	assert_true(vtp_stun_is(p, n));
	assert_int_equal(vtp_stun_parse(p, n, &m), 0);
	assert_int_equal(m.type, VTP_STUN_BINDING_REQUEST);
	assert_memory_equal(m.txid, rfc_txid, 12);
	assert_int_equal(m.len, 108);
	assert_int_equal(m.username_len, 9);
	assert_memory_equal(m.username, "evtj:h6vY", 9);
	assert_true(m.username >= p && m.username + m.username_len <= p + n);
	assert_true(m.has_priority);
	assert_int_equal(m.priority, 0x6e0001ff);
	assert_false(m.use_candidate);
	assert_true(m.ice_controlled);
	assert_false(m.ice_controlling);
	assert_true(m.tiebreaker == 0x932ff9b151263b36ULL);
	assert_int_equal(m.integrity_at, RFC_REQUEST_INTEGRITY_AT);
	assert_true(m.has_fingerprint);
	assert_int_equal(m.unknown_required, 0); /* SOFTWARE is optional */
	assert_false(m.has_mapped);
	assert_int_equal(m.error_code, 0);
	assert_true(vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
}

static void test_rfc5769_responses(void **state)
{
	static const struct response_case {
		const char *name;
		const char *hex;
		size_t len;
		int family;
		const char *ip;
	} cases[] = {
		{"IPv4", RFC_RESPONSE_V4, 80, AF_INET, "192.0.2.1"},
		{"IPv6", RFC_RESPONSE_V6, 92, AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct response_case *c = &cases[i];
		uint8_t p[MSG_MAX];
		size_t n = vtp_test_unhex(c->hex, p, sizeof(p));
		struct sockaddr_storage want;
		vtp_stun_msg m;

		if (c->family == AF_INET)
			make_v4(&want, c->ip, 32853);
		else
			make_v6(&want, c->ip, 32853);
		CHECK(n == c->len);
		CHECK(vtp_stun_is(p, n));
		CHECK(vtp_stun_parse(p, n, &m) == 0);
		CHECK(m.type == VTP_STUN_BINDING_SUCCESS);
		CHECK(memcmp(m.txid, rfc_txid, 12) == 0);
		CHECK(m.has_mapped);
		CHECK(same_address(&m.mapped, &want));
		CHECK(m.integrity_at == n - 32);
		CHECK(m.has_fingerprint);
		CHECK(m.username == NULL && m.username_len == 0);
		CHECK(m.error_code == 0);
		CHECK(vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
		CHECK(!vtp_stun_check_integrity(p, &m, "VOkJxbRl1RmTxUk/WvJxBT", strlen(RFC_PWD)));
	}
}

/* §14.5: attributes between MESSAGE-INTEGRITY and FINGERPRINT are ignored,
 * and the HMAC's length field ends with MESSAGE-INTEGRITY. */
static void test_attributes_after_integrity(void **state)
{
	uint8_t p[MSG_MAX];
	size_t n = vtp_test_unhex(RFC_REQUEST, p, sizeof(p));
	size_t fp = n - 8;
	vtp_stun_msg m;

	/* insert an unknown comprehension-required attribute and a second
	 * USERNAME before the FINGERPRINT */
	memmove(p + fp + 16, p + fp, 8);
	vtp_test_unhex("00 31 00 04 de ad be ef | 00 06 00 03 61 62 63 00", p + fp, 16);
	n += 16;
	fix_lengths(p, n);
	assert_int_equal(vtp_stun_parse(p, n, &m), 0);
	assert_int_equal(m.unknown_required, 0);
	assert_int_equal(m.username_len, 9);
	assert_int_equal(m.integrity_at, RFC_REQUEST_INTEGRITY_AT);
	assert_true(m.has_fingerprint);
	assert_true(vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
}

/* ---- classification ------------------------------------------------------ */

static void test_is(void **state)
{
	static const struct is_case {
		const char *name;
		const char *hex;
		bool is;
	} cases[] = {
		{"empty", "", false},
		{"header only", "00 01 00 00 21 12 a4 42" RFC_TXID, true},
		{"19 bytes", "00 01 00 00 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df", false},
		{"first byte 3", "03 01 00 00 21 12 a4 42" RFC_TXID, true},
		{"first byte 4", "04 01 00 00 21 12 a4 42" RFC_TXID, false},
		{"RTP", "80 60 00 01 00 00 00 64 11 22 33 44 00 00 00 00 00 00 00 00", false},
		{"DTLS", "16 fe fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", false},
		{"RFC 3489 (no cookie)", "00 01 00 00 00 00 00 00" RFC_TXID, false},
		{"length 4, no attribute", "00 01 00 04 21 12 a4 42" RFC_TXID, false},
		{"length 2", "00 01 00 02 21 12 a4 42" RFC_TXID "00 00", false},
		{"length 4", "00 01 00 04 21 12 a4 42" RFC_TXID "80 22 00 00", true},
		{"trailing bytes", "00 01 00 00 21 12 a4 42" RFC_TXID "00 00 00 00", false},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct is_case *c = &cases[i];
		uint8_t p[MSG_MAX];
		size_t n = vtp_test_unhex(c->hex, p, sizeof(p));

		CHECK(vtp_stun_is(p, n) == c->is);
	}
}

/* ---- parsing ----------------------------------------------------------------- */

static void test_parse_attributes(void **state)
{
	static const struct attrs_case {
		const char *name;
		uint16_t type;
		const char *attrs;
		int unknown_required;
		uint16_t unknown0, unknown1;
		bool use_candidate, controlling;
		int error_code;
	} cases[] = {
		{"no attributes", 0x0001, "", 0, 0, 0, false, false, 0},
		{"unknown required, optional ignored", 0x0001,
		 "00 31 00 02 01 02 00 00 | c0 01 00 00", 1, 0x0031, 0, false, false, 0},
		{"two unknown, a repeat not counted", 0x0001,
		 "00 31 00 00 | 7f ff 00 01 aa 00 00 00 | 00 31 00 00", 2, 0x0031, 0x7fff,
		 false, false, 0},
		{"unknown after integrity not counted", 0x0001,
		 "00 08 00 14 00000000 00000000 00000000 00000000 00000000 | 00 31 00 00",
		 0, 0, 0, false, false, 0},
		{"use-candidate and controlling", 0x0001,
		 "00 25 00 00 | 80 2a 00 08 01 02 03 04 05 06 07 08", 0, 0, 0, true, true, 0},
		{"error 487", 0x0111, "00 09 00 08 00 00 04 57 52 6f 6c 65", 0, 0, 0, false,
		 false, 487},
		{"error 699, bits above the class ignored", 0x0111, "00 09 00 04 00 00 fe 63",
		 0, 0, 0, false, false, 699},
		{"error code in a request ignored", 0x0001, "00 09 00 04 00 00 04 00", 0, 0,
		 0, false, false, 0},
		{"mapped and unknown-attributes understood", 0x0111,
		 "00 09 00 04 00 00 04 14 | 00 0a 00 02 00 31 00 00 | 00 01 00 08 00 01 00 50 7f 00 00 01",
		 0, 0, 0, false, false, 420},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct attrs_case *c = &cases[i];
		uint8_t p[MSG_MAX];
		size_t n = message(c->type, c->attrs, p, sizeof(p));
		vtp_stun_msg m;

		CHECK(vtp_stun_parse(p, n, &m) == 0);
		CHECK(m.type == c->type);
		CHECK(m.len == n);
		CHECK(m.unknown_required == c->unknown_required);
		if (c->unknown_required > 0)
			CHECK(m.unknown[0] == c->unknown0);
		if (c->unknown_required > 1)
			CHECK(m.unknown[1] == c->unknown1);
		CHECK(m.use_candidate == c->use_candidate);
		CHECK(m.ice_controlling == c->controlling);
		if (c->controlling)
			CHECK(m.tiebreaker == 0x0102030405060708ULL);
		CHECK(m.error_code == c->error_code);
		CHECK(!m.has_fingerprint);
	}
}

static void test_parse_first_occurrence_wins(void **state)
{
	uint8_t p[MSG_MAX];
	size_t n = message(0x0001,
			   "00 06 00 01 61 00 00 00 | 00 06 00 01 62 00 00 00"
			   "| 00 24 00 04 00 00 00 01 | 00 24 00 04 00 00 00 02"
			   "| 80 29 00 08 00 00 00 00 00 00 00 01 | 80 29 00 08 00 00 00 00 00 00 00 02",
			   p, sizeof(p));
	vtp_stun_msg m;

	assert_int_equal(vtp_stun_parse(p, n, &m), 0);
	assert_int_equal(m.username_len, 1);
	assert_int_equal(m.username[0], 'a');
	assert_int_equal(m.priority, 1);
	assert_true(m.ice_controlled);
	assert_true(m.tiebreaker == 1);
	assert_int_equal(m.integrity_at, 0);
	assert_false(vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
}

static void test_parse_malformed(void **state)
{
	/* type 0 means: hex is the whole message; else hex is the attributes */
	static const struct malformed_case {
		const char *name;
		uint16_t type;
		const char *hex;
		bool fix;  /* recompute the length field and fingerprints */
	} cases[] = {
		{"empty", 0, "", false},
		{"truncated header", 0, "00 01 00 00 21 12 a4 42 b7 e7 a7 01", false},
		{"truncated message", 0,
		 "00 01 00 08 21 12 a4 42" RFC_TXID "00 24 00 04", false},
		{"trailing bytes", 0, "00 01 00 00 21 12 a4 42" RFC_TXID "00 00 00 00", false},
		{"bad cookie", 0, "00 01 00 00 21 12 a4 43" RFC_TXID, false},
		{"top bits set", 0, "40 01 00 00 21 12 a4 42" RFC_TXID, false},
		{"length not a multiple of 4", 0,
		 "00 01 00 06 21 12 a4 42" RFC_TXID "80 22 00 02 61 62", false},
		{"attribute overrunning", 0x0001, "80 22 00 08 61 62 63 64", false},
		{"attribute length 0xffff", 0x0001, "80 22 ff ff 61 62 63 64", false},
		{"padding missing", 0x0001, "80 22 00 09 61 62 63 64 65 66 67 68", false},
		{"priority length 3", 0x0001, "00 24 00 03 00 00 01 00", false},
		{"priority length 8", 0x0001, "00 24 00 08 00 00 01 00 00 00 00 00", false},
		{"use-candidate with a value", 0x0001, "00 25 00 04 00 00 00 00", false},
		{"controlling length 4", 0x0001, "80 2a 00 04 00 00 00 01", false},
		{"controlled length 12", 0x0001,
		 "80 29 00 0c 00 00 00 01 00 00 00 01 00 00 00 01", false},
		{"both roles", 0x0001,
		 "80 2a 00 08 00 00 00 00 00 00 00 01 | 80 29 00 08 00 00 00 00 00 00 00 02",
		 false},
		{"integrity length 16", 0x0001,
		 "00 08 00 10 00000000 00000000 00000000 00000000", false},
		{"integrity length 32 (SHA-256 size)", 0x0001,
		 "00 08 00 20 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000",
		 false},
		{"error code length 3", 0x0111, "00 09 00 03 00 00 04 00", false},
		{"error code class 2", 0x0111, "00 09 00 04 00 00 02 00", false},
		{"error code class 7", 0x0111, "00 09 00 04 00 00 07 00", false},
		{"error code number 100", 0x0111, "00 09 00 04 00 00 04 64", false},
		{"xor address family 3", 0x0101, "00 20 00 08 00 03 a1 47 e1 12 a6 43", false},
		{"xor address IPv4 length 20", 0x0101,
		 "00 20 00 14 00 01 a1 47 e1 12 a6 43 00000000 00000000 00000000", false},
		{"xor address IPv6 length 8", 0x0101, "00 20 00 08 00 02 a1 47 e1 12 a6 43",
		 false},
		{"xor address length 2", 0x0101, "00 20 00 02 00 01 00 00", false},
		{"wrong fingerprint", 0,
		 "00 01 00 58 21 12 a4 42" RFC_TXID
		 "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
		 "00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36"
		 "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"
		 "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
		 "80 28 00 04 e5 7a 3b ce", false},
		{"fingerprint not xored", 0x0001, "80 28 00 04 00 00 00 00", false},
		{"fingerprint not last", 0x0001,
		 "80 28 00 04 00 00 00 00 | 80 22 00 04 61 62 63 64", true},
		{"two fingerprints", 0x0001,
		 "80 28 00 04 00 00 00 00 | 80 28 00 04 00 00 00 00", true},
		{"fingerprint length 8", 0x0001, "80 28 00 08 00 00 00 00 00 00 00 00", false},
		{"fingerprint length 0", 0x0001, "80 28 00 00", false},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct malformed_case *c = &cases[i];
		uint8_t p[MSG_MAX];
		size_t n;
		vtp_stun_msg m, before;

		if (c->type)
			n = message(c->type, c->hex, p, sizeof(p));
		else
			n = vtp_test_unhex(c->hex, p, sizeof(p));
		if (c->fix)
			fix_lengths(p, n);
		memset(&m, 0xab, sizeof(m));
		memset(&before, 0xab, sizeof(before));
		CHECK(vtp_stun_parse(p, n, &m) == VTP_EINVAL);
		CHECK(memcmp(&m, &before, sizeof(m)) == 0);
	}
}

/* The fixed cases above with a correct fingerprint parse: the refusals
 * were for the order, not for the CRC. */
static void test_fingerprint_fixed_up_parses(void **state)
{
	uint8_t p[MSG_MAX];
	size_t n = message(0x0001, "80 22 00 04 61 62 63 64 | 80 28 00 04 00 00 00 00", p,
			   sizeof(p));
	vtp_stun_msg m;

	fix_lengths(p, n);
	assert_int_equal(vtp_stun_parse(p, n, &m), 0);
	assert_true(m.has_fingerprint);
}

/* A message of total length n made of optional attributes: one big one, or
 * count empty ones. */
static size_t padded_message(uint8_t *p, size_t n, size_t count)
{
	size_t off = VTP_STUN_HEADER;

	message(0x0001, "", p, MSG_MAX);
	if (count == 0) {
		size_t vlen = n - VTP_STUN_HEADER - 4;

		p[off] = 0x80;
		p[off + 1] = 0x22;
		p[off + 2] = (uint8_t)(vlen >> 8);
		p[off + 3] = (uint8_t)vlen;
		memset(p + off + 4, 'x', vlen);
	} else {
		for (size_t i = 0; i < count; i++, off += 4) {
			p[off] = 0xc0;
			p[off + 1] = (uint8_t)i;
			p[off + 2] = 0;
			p[off + 3] = 0;
		}
		n = off;
	}
	fix_lengths(p, n);
	return n;
}

static void test_parse_limits(void **state)
{
	static const struct limit_case {
		const char *name;
		size_t len;
		size_t count;
		int result;
	} cases[] = {
		{"1280 bytes", VTP_STUN_MAX, 0, 0},
		{"1284 bytes", VTP_STUN_MAX + 4, 0, VTP_EINVAL},
		{"2044 bytes", 2044, 0, VTP_EINVAL},
		{"64 attributes", 0, 64, 0},
		{"65 attributes", 0, 65, VTP_EINVAL},
		{"300 attributes", 0, 300, VTP_EINVAL},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct limit_case *c = &cases[i];
		uint8_t p[MSG_MAX];
		size_t n = padded_message(p, c->len, c->count);
		vtp_stun_msg m;

		CHECK(vtp_stun_is(p, n));
		CHECK(vtp_stun_parse(p, n, &m) == c->result);
	}
}

static void test_parse_username_limit(void **state)
{
	uint8_t p[MSG_MAX];
	size_t n;
	vtp_stun_msg m;

	for (size_t len = 512; len <= 514; len++) {
		message(0x0001, "", p, sizeof(p));
		p[20] = 0x00;
		p[21] = 0x06;
		p[22] = (uint8_t)(len >> 8);
		p[23] = (uint8_t)len;
		memset(p + 24, 'u', (len + 3) & ~(size_t)3);
		n = 24 + ((len + 3) & ~(size_t)3);
		fix_lengths(p, n);
		assert_int_equal(vtp_stun_parse(p, n, &m), len <= 513 ? 0 : VTP_EINVAL);
	}
}

/* ---- integrity ----------------------------------------------------------------- */

static void test_integrity_refusals(void **state)
{
	static const struct integrity_case {
		const char *name;
		const char *pwd;
		size_t pwd_len;
		int tamper_at;  /* -1: none; the fingerprint is recomputed */
	} cases[] = {
		{"right", RFC_PWD, sizeof(RFC_PWD) - 1, -1},
		{"wrong password", "VOkJxbRl1RmTxUk/WvJxBT", sizeof(RFC_PWD) - 1, -1},
		{"password prefix", RFC_PWD, sizeof(RFC_PWD) - 2, -1},
		{"password longer", RFC_PWD "x", sizeof(RFC_PWD), -1},
		{"empty password", "", 0, -1},
		{"NULL password", NULL, 0, -1},
		{"tampered type", RFC_PWD, sizeof(RFC_PWD) - 1, 1},
		{"tampered txid", RFC_PWD, sizeof(RFC_PWD) - 1, 19},
		{"tampered software", RFC_PWD, sizeof(RFC_PWD) - 1, 24},
		{"tampered priority", RFC_PWD, sizeof(RFC_PWD) - 1, 46},
		{"tampered tiebreaker", RFC_PWD, sizeof(RFC_PWD) - 1, 55},
		{"tampered username", RFC_PWD, sizeof(RFC_PWD) - 1, 64},
		{"tampered username padding", RFC_PWD, sizeof(RFC_PWD) - 1, 73},
		{"tampered MAC", RFC_PWD, sizeof(RFC_PWD) - 1, RFC_REQUEST_INTEGRITY_AT + 4},
		{"tampered MAC end", RFC_PWD, sizeof(RFC_PWD) - 1, RFC_REQUEST_INTEGRITY_AT + 23},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct integrity_case *c = &cases[i];
		uint8_t p[MSG_MAX];
		size_t n = vtp_test_unhex(RFC_REQUEST, p, sizeof(p));
		vtp_stun_msg m;
		bool want = c->tamper_at < 0 && c->pwd && c->pwd_len == sizeof(RFC_PWD) - 1 &&
			    memcmp(c->pwd, RFC_PWD, c->pwd_len) == 0;

		CHECK(vtp_stun_parse(p, n, &m) == 0);
		if (c->tamper_at >= 0) {
			/* checked again after a byte changed: the fingerprint no
			 * longer matches, and once recomputed (anyone can) the
			 * message parses but fails the integrity check */
			p[c->tamper_at] ^= 0x01;
			CHECK(!vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
			CHECK(vtp_stun_parse(p, n, &m) == VTP_EINVAL);
			fix_lengths(p, n);
			CHECK(vtp_stun_parse(p, n, &m) == 0);
		}
		CHECK(vtp_stun_check_integrity(p, &m, c->pwd, c->pwd_len) == want);
	}
}

static void test_integrity_inconsistent_msg(void **state)
{
	uint8_t p[MSG_MAX];
	size_t n = vtp_test_unhex(RFC_REQUEST, p, sizeof(p));
	vtp_stun_msg m, bad;

	assert_int_equal(vtp_stun_parse(p, n, &m), 0);
	bad = m;
	bad.integrity_at = 0;
	assert_false(vtp_stun_check_integrity(p, &bad, RFC_PWD, strlen(RFC_PWD)));
	bad = m;
	bad.integrity_at = m.len - 20; /* the attribute would run past the end */
	assert_false(vtp_stun_check_integrity(p, &bad, RFC_PWD, strlen(RFC_PWD)));
	bad = m;
	bad.len = VTP_STUN_MAX + 4;
	assert_false(vtp_stun_check_integrity(p, &bad, RFC_PWD, strlen(RFC_PWD)));
}

/* ---- building ------------------------------------------------------------------ */

static void test_build_request_roundtrip(void **state)
{
	static const struct request_case {
		const char *name;
		const char *username;
		uint32_t priority;
		uint64_t tiebreaker;
		bool use_candidate;
	} cases[] = {
		{"plain", "abcd:efgh", 0x6e0001ff, 0x0102030405060708ULL, false},
		{"use-candidate", "a:b", 1, UINT64_MAX, true},
		{"username multiple of 4", "abcd:efg", 0x7effffff, 0, true},
		{"empty username", "", 0, 42, false},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct request_case *c = &cases[i];
		uint8_t p[640];
		size_t n = vtp_stun_build_request(p, sizeof(p), rfc_txid, c->username, RFC_PWD,
						  strlen(RFC_PWD), c->priority, c->tiebreaker,
						  c->use_candidate);
		vtp_stun_msg m;

		CHECK(n > 0 && n % 4 == 0);
		CHECK(vtp_stun_is(p, n));
		CHECK(vtp_stun_parse(p, n, &m) == 0);
		CHECK(m.type == VTP_STUN_BINDING_REQUEST);
		CHECK(memcmp(m.txid, rfc_txid, 12) == 0);
		CHECK(m.username_len == strlen(c->username));
		CHECK(memcmp(m.username, c->username, m.username_len) == 0);
		CHECK(m.has_priority && m.priority == c->priority);
		CHECK(m.ice_controlling && !m.ice_controlled);
		CHECK(m.tiebreaker == c->tiebreaker);
		CHECK(m.use_candidate == c->use_candidate);
		CHECK(m.unknown_required == 0);
		CHECK(m.has_fingerprint);
		CHECK(m.integrity_at == n - 32);
		CHECK(vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
		CHECK(!vtp_stun_check_integrity(p, &m, "other", 5));
		/* exactly enough, and one byte short leaves out untouched */
		CHECK(vtp_stun_build_request(p, n, rfc_txid, c->username, RFC_PWD,
					     strlen(RFC_PWD), c->priority, c->tiebreaker,
					     c->use_candidate) == n);
		memset(p, 0xee, sizeof(p));
		CHECK(vtp_stun_build_request(p, n - 1, rfc_txid, c->username, RFC_PWD,
					     strlen(RFC_PWD), c->priority, c->tiebreaker,
					     c->use_candidate) == 0);
		for (size_t k = 0; k < sizeof(p); k++)
			CHECK(p[k] == 0xee);
	}
}

static void test_build_request_limits(void **state)
{
	char username[520];
	uint8_t p[640];
	size_t n;
	vtp_stun_msg m;

	memset(username, 'u', sizeof(username));
	username[513] = '\0';
	n = vtp_stun_build_request(p, sizeof(p), rfc_txid, username, RFC_PWD,
				   strlen(RFC_PWD), 1, 2, true);
	assert_true(n > 0);
	assert_int_equal(vtp_stun_parse(p, n, &m), 0);
	assert_int_equal(m.username_len, 513);
	assert_true(vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));

	username[513] = 'u';
	username[514] = '\0';
	assert_int_equal(vtp_stun_build_request(p, sizeof(p), rfc_txid, username, RFC_PWD,
						strlen(RFC_PWD), 1, 2, true), 0);
	assert_int_equal(vtp_stun_build_request(p, sizeof(p), rfc_txid, NULL, RFC_PWD,
						strlen(RFC_PWD), 1, 2, true), 0);
	assert_int_equal(vtp_stun_build_request(p, sizeof(p), rfc_txid, "a:b", NULL, 0, 1, 2,
						true), 0);
}

static void test_build_success_roundtrip(void **state)
{
	static const struct success_case {
		const char *name;
		int family;
		const char *ip;
		uint16_t port;
		const char *xor_hex;  /* the attribute as on the wire, or NULL */
	} cases[] = {
		{"RFC 5769 IPv4", AF_INET, "192.0.2.1", 32853, RFC_XOR_V4},
		{"RFC 5769 IPv6", AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", 32853,
		 RFC_XOR_V6},
		{"IPv4 port 0", AF_INET, "0.0.0.0", 0, NULL},
		{"IPv4 broadcast", AF_INET, "255.255.255.255", 65535, NULL},
		{"IPv6 loopback", AF_INET6, "::1", 9, NULL},
		{"IPv4-mapped IPv6", AF_INET6, "::ffff:10.0.0.1", 50000, NULL},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct success_case *c = &cases[i];
		struct sockaddr_storage from;
		uint8_t p[160];
		size_t n;
		vtp_stun_msg m;

		if (c->family == AF_INET)
			make_v4(&from, c->ip, c->port);
		else
			make_v6(&from, c->ip, c->port);
		memset(p, 0xee, sizeof(p));
		n = vtp_stun_build_success(p, sizeof(p), rfc_txid, (struct sockaddr *)&from,
					   RFC_PWD, strlen(RFC_PWD));
		CHECK(n == (c->family == AF_INET ? 64u : 76u));
		CHECK(vtp_stun_is(p, n));
		CHECK(vtp_stun_parse(p, n, &m) == 0);
		CHECK(m.type == VTP_STUN_BINDING_SUCCESS);
		CHECK(memcmp(m.txid, rfc_txid, 12) == 0);
		CHECK(m.has_mapped);
		CHECK(same_address(&m.mapped, &from));
		CHECK(m.has_fingerprint);
		CHECK(m.integrity_at == n - 32);
		CHECK(vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
		CHECK(!vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD) - 1));
		if (c->xor_hex)
			CHECK(contains(p, n, c->xor_hex));
		CHECK(vtp_stun_build_success(p, n, rfc_txid, (struct sockaddr *)&from, RFC_PWD,
					     strlen(RFC_PWD)) == n);
		memset(p, 0xee, sizeof(p));
		CHECK(vtp_stun_build_success(p, n - 1, rfc_txid, (struct sockaddr *)&from,
					     RFC_PWD, strlen(RFC_PWD)) == 0);
		for (size_t k = 0; k < sizeof(p); k++)
			CHECK(p[k] == 0xee);
	}
}

static void test_build_success_refusals(void **state)
{
	struct sockaddr_storage from;
	uint8_t p[160];

	make_v4(&from, "192.0.2.1", 1);
	assert_int_equal(vtp_stun_build_success(p, sizeof(p), rfc_txid, NULL, RFC_PWD, 3), 0);
	assert_int_equal(vtp_stun_build_success(p, sizeof(p), rfc_txid,
						(struct sockaddr *)&from, NULL, 0), 0);
	from.ss_family = AF_UNIX;
	assert_int_equal(vtp_stun_build_success(p, sizeof(p), rfc_txid,
						(struct sockaddr *)&from, RFC_PWD, 3), 0);
}

static void test_build_error_exact(void **state)
{
	uint8_t want[64], p[256];
	size_t wn = vtp_test_unhex("01 11 00 1c 21 12 a4 42" RFC_TXID
				   "00 09 00 0f 00 00 04 00 42 61 64 20 52 65 71 75 65 73 74 00"
				   "80 28 00 04 79 47 9e 54", want, sizeof(want));
	size_t n = vtp_stun_build_error(p, sizeof(p), rfc_txid, 400, "Bad Request", NULL, 0,
					NULL, 0);

	assert_int_equal(n, wn);
	assert_memory_equal(p, want, wn);
	/* NULL reason: the standard phrase */
	n = vtp_stun_build_error(p, sizeof(p), rfc_txid, 400, NULL, NULL, 0, NULL, 0);
	assert_int_equal(n, wn);
	assert_memory_equal(p, want, wn);
}

static void test_build_error_roundtrip(void **state)
{
	static const uint16_t unknown[20] = {0x0031, 0x7fff, 0x0000, 0x0123, 0x0005};
	static const char long_reason[] =
		"0123456789012345678901234567890123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789012345678901234567890123456789";
	static const struct error_case {
		const char *name;
		int code;
		const char *reason;
		int nunknown;
		const char *pwd;
		size_t reason_len;     /* as written */
		const char *unknown_hex; /* the UNKNOWN-ATTRIBUTES attribute, or NULL */
	} cases[] = {
		{"420, two unknown", 420, NULL, 2, RFC_PWD, 17,
		 "00 0a 00 04 00 31 7f ff"},
		{"420, three unknown, padded", 420, "Unknown", 3, RFC_PWD, 7,
		 "00 0a 00 06 00 31 7f ff 00 00 00 00"},
		{"420, five unknown", 420, "", 5, NULL, 0,
		 "00 0a 00 0a 00 31 7f ff 00 00 01 23 00 05 00 00"},
		{"420, twenty asked, sixteen written", 420, "x", 20, RFC_PWD, 1, NULL},
		{"420 without a list", 420, "x", 0, RFC_PWD, 1, NULL},
		{"401 ignores the list", 401, NULL, 2, NULL, 12, NULL},
		{"487", 487, NULL, 0, RFC_PWD, 13, NULL},
		{"300", 300, "", 0, RFC_PWD, 0, NULL},
		{"699, no standard phrase", 699, NULL, 0, RFC_PWD, 0, NULL},
		{"long reason cut to 128", 500, long_reason, 0, RFC_PWD, 128, NULL},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct error_case *c = &cases[i];
		uint8_t p[256];
		size_t n = vtp_stun_build_error(p, sizeof(p), rfc_txid, c->code, c->reason,
						unknown, c->nunknown, c->pwd,
						c->pwd ? strlen(c->pwd) : 0);
		vtp_stun_msg m;

		CHECK(n > 0);
		CHECK(vtp_stun_is(p, n));
		CHECK(vtp_stun_parse(p, n, &m) == 0);
		CHECK(m.type == VTP_STUN_BINDING_ERROR);
		CHECK(memcmp(m.txid, rfc_txid, 12) == 0);
		CHECK(m.error_code == c->code);
		CHECK(m.unknown_required == 0); /* UNKNOWN-ATTRIBUTES is understood */
		CHECK(m.has_fingerprint);
		/* ERROR-CODE first, its length says how much reason went in */
		CHECK(p[20] == 0x00 && p[21] == 0x09);
		CHECK((size_t)(p[22] << 8 | p[23]) == 4 + c->reason_len);
		if (c->unknown_hex)
			CHECK(contains(p, n, c->unknown_hex));
		if (c->nunknown == 20)
			CHECK(contains(p, n, "00 0a 00 20"));
		if (c->pwd) {
			CHECK(m.integrity_at == n - 32);
			CHECK(vtp_stun_check_integrity(p, &m, c->pwd, strlen(c->pwd)));
			CHECK(!vtp_stun_check_integrity(p, &m, "x", 1));
		} else {
			CHECK(m.integrity_at == 0);
			CHECK(!vtp_stun_check_integrity(p, &m, RFC_PWD, strlen(RFC_PWD)));
		}
		CHECK(vtp_stun_build_error(p, n - 1, rfc_txid, c->code, c->reason, unknown,
					   c->nunknown, c->pwd, c->pwd ? strlen(c->pwd) : 0) == 0);
	}
}

static void test_build_error_from_parse(void **state)
{
	uint8_t req[MSG_MAX], p[256];
	size_t n = message(0x0001, "00 31 00 00 | 00 32 00 00 | 00 33 00 00 | 00 34 00 00"
			   "| 00 35 00 00 | 00 06 00 03 61 3a 62 00", req, sizeof(req));
	vtp_stun_msg m, e;
	int kept;

	assert_int_equal(vtp_stun_parse(req, n, &m), 0);
	assert_int_equal(m.unknown_required, 5);
	kept = m.unknown_required < 4 ? m.unknown_required : 4;
	n = vtp_stun_build_error(p, sizeof(p), m.txid, 420, NULL, m.unknown, kept, RFC_PWD,
				 strlen(RFC_PWD));
	assert_true(n > 0);
	assert_int_equal(vtp_stun_parse(p, n, &e), 0);
	assert_int_equal(e.error_code, 420);
	assert_true(contains(p, n, "00 0a 00 08 00 31 00 32 00 33 00 34"));
	assert_true(vtp_stun_check_integrity(p, &e, RFC_PWD, strlen(RFC_PWD)));
}

static void test_build_error_limits(void **state)
{
	static const uint16_t unknown[64] = {1, 2, 3};
	char reason[800];
	uint8_t p[256];
	size_t n;
	vtp_stun_msg m;

	/* the worst case fits in 256 */
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	n = vtp_stun_build_error(p, sizeof(p), rfc_txid, 420, reason, unknown, 64, RFC_PWD,
				 strlen(RFC_PWD));
	assert_true(n > 0 && n <= 256);
	assert_int_equal(vtp_stun_parse(p, n, &m), 0);

	/* a cut never splits a UTF-8 character: "é" is c3 a9, the cut at
	 * 128 falls between them */
	memset(reason, 'r', 127);
	reason[127] = (char)0xc3;
	reason[128] = (char)0xa9;
	reason[129] = '\0';
	n = vtp_stun_build_error(p, sizeof(p), rfc_txid, 500, reason, NULL, 0, NULL, 0);
	assert_true(n > 0);
	assert_int_equal(p[23], 4 + 127);

	assert_int_equal(vtp_stun_build_error(p, sizeof(p), rfc_txid, 299, "x", NULL, 0, NULL, 0), 0);
	assert_int_equal(vtp_stun_build_error(p, sizeof(p), rfc_txid, 700, "x", NULL, 0, NULL, 0), 0);
	assert_int_equal(vtp_stun_build_error(p, sizeof(p), rfc_txid, -420, "x", NULL, 0, NULL, 0), 0);
	assert_int_equal(vtp_stun_build_error(p, 19, rfc_txid, 400, "", NULL, 0, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5769_request),
		cmocka_unit_test(test_rfc5769_responses),
		cmocka_unit_test(test_attributes_after_integrity),
		cmocka_unit_test(test_is),
		cmocka_unit_test(test_parse_attributes),
		cmocka_unit_test(test_parse_first_occurrence_wins),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_fingerprint_fixed_up_parses),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_username_limit),
		cmocka_unit_test(test_integrity_refusals),
		cmocka_unit_test(test_integrity_inconsistent_msg),
		cmocka_unit_test(test_build_request_roundtrip),
		cmocka_unit_test(test_build_request_limits),
		cmocka_unit_test(test_build_success_roundtrip),
		cmocka_unit_test(test_build_success_refusals),
		cmocka_unit_test(test_build_error_exact),
		cmocka_unit_test(test_build_error_roundtrip),
		cmocka_unit_test(test_build_error_from_parse),
		cmocka_unit_test(test_build_error_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
