/* Tests for src/rtp/rtp.c: RTP header parsing (CSRCs, extension,
 * padding) and its refusals, RFC 5761 demux boundaries, RTCP compound
 * walking and its refusals, the A.1/A.3/A.8 receive statistics (loss,
 * duplicates, reordering, wrap, restart, jitter), and byte-exact RR, PLI
 * and FIR that parse back. Packets are written as hex in the tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/error.h"
#include "rtp/rtp.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PKT_MAX 256

/* In table loops: a failure names the case (the loop variable `c`). */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			fail_msg("case \"%s\": %s", c->name, #cond); \
	} while (0)


/* ---- RTP parsing ------------------------------------------------------------ */

#define HDR "80 60 00 01 | 00 00 00 64 | 11 22 33 44"  /* PT 96, seq 1, ts 100 */

static void test_rtp_parse_valid(void **state)
{
	static const struct rtp_valid_case {
		const char *name;
		const char *hex;
		bool marker;
		uint8_t pt;
		uint8_t csrc_count;
		bool has_extension;
		uint16_t ext_profile;
		size_t ext_len;
		size_t header_len;
		size_t payload_len;
		uint8_t padding_len;
	} cases[] = {
		{"minimal", HDR "aa bb", false, 96, 0, false, 0, 0, 12, 2, 0},
		{"empty payload", HDR, false, 96, 0, false, 0, 0, 12, 0, 0},
		{"marker", "80 e0 00 01 00 00 00 64 11 22 33 44 aa", true, 96, 0,
		 false, 0, 0, 12, 1, 0},
		{"pt 0 no marker", "80 00 00 01 00 00 00 64 11 22 33 44 aa", false, 0,
		 0, false, 0, 0, 12, 1, 0},
		{"pt 127 marker", "80 ff 00 01 00 00 00 64 11 22 33 44", true, 127,
		 0, false, 0, 0, 12, 0, 0},
		{"two csrcs",
		 "82 60 00 01 00 00 00 64 11 22 33 44 | 00 00 00 01 | 00 00 00 02 | aa bb cc",
		 false, 96, 2, false, 0, 0, 20, 3, 0},
		{"fifteen csrcs, no payload",
		 "8f 60 00 01 00 00 00 64 11 22 33 44"
		 "000000010000000200000003000000040000000500000006000000070000000800000009"
		 "0000000a0000000b0000000c0000000d0000000e0000000f",
		 false, 96, 15, false, 0, 0, 72, 0, 0},
		{"one-byte extension",
		 "90 60 00 01 00 00 00 64 11 22 33 44 | be de 00 01 | 12 34 56 78 | aa",
		 false, 96, 0, true, 0xbede, 4, 20, 1, 0},
		{"empty extension",
		 "90 60 00 01 00 00 00 64 11 22 33 44 | 10 00 00 00 | aa",
		 false, 96, 0, true, 0x1000, 0, 16, 1, 0},
		{"extension, no payload",
		 "90 60 00 01 00 00 00 64 11 22 33 44 | be de 00 02 | 00000000 00000000",
		 false, 96, 0, true, 0xbede, 8, 24, 0, 0},
		{"padding 3", "a0 60 00 01 00 00 00 64 11 22 33 44 | aa bb | 00 00 03",
		 false, 96, 0, false, 0, 0, 12, 2, 3},
		{"padding 1", "a0 60 00 01 00 00 00 64 11 22 33 44 | aa | 01",
		 false, 96, 0, false, 0, 0, 12, 1, 1},
		{"padding only", "a0 60 00 01 00 00 00 64 11 22 33 44 | 00 00 00 04",
		 false, 96, 0, false, 0, 0, 12, 0, 4},
		{"csrc + extension + padding + marker",
		 "b1 e0 00 01 00 00 00 64 11 22 33 44 | 00 00 00 07 | be de 00 01 | 11 22 33 44"
		 "| aa bb cc dd | 00 00 00 00 00 00 00 08",
		 true, 96, 1, true, 0xbede, 4, 24, 4, 8},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct rtp_valid_case *c = &cases[i];
		uint8_t p[PKT_MAX];
		size_t n = vtp_test_unhex(c->hex, p, PKT_MAX);
		vtp_rtp r;

		CHECK(vtp_rtp_parse(p, n, &r) == 0);
		CHECK(vtp_pkt_classify(p, n) == VTP_PKT_RTP);
		CHECK(r.marker == c->marker);
		CHECK(r.pt == c->pt);
		CHECK(r.seq == 1);
		CHECK(r.ts == 100);
		CHECK(r.ssrc == 0x11223344);
		CHECK(r.csrc_count == c->csrc_count);
		CHECK(r.has_extension == c->has_extension);
		if (r.has_extension) {
			CHECK(r.ext_profile == c->ext_profile);
			CHECK(r.ext_len == c->ext_len);
			CHECK(r.ext == p + r.header_len - r.ext_len);
		}
		CHECK(r.header_len == c->header_len);
		CHECK(r.payload_len == c->payload_len);
		CHECK(r.padding_len == c->padding_len);
		CHECK(r.payload == p + r.header_len);
		CHECK(r.header_len + r.payload_len + r.padding_len == n);
	}
}

static void test_rtp_parse_fields(void **state)
{
	uint8_t p[PKT_MAX];
	size_t n = vtp_test_unhex("80 e1 ff fe | fe dc ba 98 | 01 02 03 04 | de ad | be ef", p, PKT_MAX);
	vtp_rtp r;

	assert_int_equal(vtp_rtp_parse(p, n, &r), 0);
	assert_true(r.marker);
	assert_int_equal(r.pt, 97);
	assert_int_equal(r.seq, 0xfffe);
	assert_int_equal(r.ts, 0xfedcba98);
	assert_int_equal(r.ssrc, 0x01020304);
	assert_int_equal(r.payload_len, 4);
	assert_memory_equal(r.payload, "\xde\xad\xbe\xef", 4);
	assert_null(r.ext);
}

static void test_rtp_parse_malformed(void **state)
{
	static const struct rtp_malformed_case {
		const char *name;
		const char *hex;
	} cases[] = {
		{"empty", ""},
		{"one byte", "80"},
		{"eleven bytes", "80 60 00 01 00 00 00 64 11 22 33"},
		{"version 0", "00 60 00 01 00 00 00 64 11 22 33 44 aa"},
		{"version 1", "40 60 00 01 00 00 00 64 11 22 33 44 aa"},
		{"version 3", "c0 60 00 01 00 00 00 64 11 22 33 44 aa"},
		{"csrc count 1, none present", "81 60 00 01 00 00 00 64 11 22 33 44"},
		{"csrc count 2, one and a half present",
		 "82 60 00 01 00 00 00 64 11 22 33 44 | 00 00 00 01 | 00 00"},
		{"csrc count 15, 14 present",
		 "8f 60 00 01 00 00 00 64 11 22 33 44"
		 "000000010000000200000003000000040000000500000006000000070000000800000009"
		 "0000000a0000000b0000000c0000000d0000000e"},
		{"extension header missing", "90 60 00 01 00 00 00 64 11 22 33 44"},
		{"extension header cut", "90 60 00 01 00 00 00 64 11 22 33 44 be de 00"},
		{"extension header after csrc missing",
		 "91 60 00 01 00 00 00 64 11 22 33 44 | 00 00 00 07"},
		{"extension data overflow",
		 "90 60 00 01 00 00 00 64 11 22 33 44 | be de 00 02 | 12 34 56 78"},
		{"extension length 0xffff",
		 "90 60 00 01 00 00 00 64 11 22 33 44 | be de ff ff | 12 34 56 78"},
		{"padding count 0", "a0 60 00 01 00 00 00 64 11 22 33 44 | aa bb 00"},
		{"padding larger than after header",
		 "a0 60 00 01 00 00 00 64 11 22 33 44 | aa bb 04"},
		{"padding 255", "a0 60 00 01 00 00 00 64 11 22 33 44 | aa bb ff"},
		{"padding bit, header only", "a0 60 00 01 00 00 00 64 11 22 33 01"},
		{"padding reaching into extension",
		 "b0 60 00 01 00 00 00 64 11 22 33 44 | be de 00 01 | 12 34 56 78 | 00 03"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct rtp_malformed_case *c = &cases[i];
		uint8_t p[PKT_MAX];
		size_t n = vtp_test_unhex(c->hex, p, PKT_MAX);
		vtp_rtp r, before;

		memset(&r, 0xab, sizeof(r));
		memset(&before, 0xab, sizeof(before));
		CHECK(vtp_rtp_parse(p, n, &r) == VTP_EINVAL);
		CHECK(memcmp(&r, &before, sizeof(r)) == 0);
	}
}

/* ---- classification ----------------------------------------------------------- */

static void test_classify(void **state)
{
	static const struct classify_case {
		const char *name;
		const char *hex;
		int kind;
	} cases[] = {
		{"empty", "", VTP_PKT_GARBAGE},
		{"one byte", "80", VTP_PKT_GARBAGE},
		{"rtcp, 3 bytes", "80 c8 00", VTP_PKT_GARBAGE},
		{"rtcp 192, 4 bytes", "80 c0 00 00", VTP_PKT_RTCP},
		{"rtcp 200 (SR)", "80 c8 00 06", VTP_PKT_RTCP},
		{"rtcp 201 (RR)", "80 c9 00 01 11 22 33 44", VTP_PKT_RTCP},
		{"rtcp 206 (PSFB)", "81 ce 00 02 00 00 00 01 00 00 00 02", VTP_PKT_RTCP},
		{"rtcp 223", "80 df 00 00", VTP_PKT_RTCP},
		{"191 = marker + PT 63 is RTP", "80 bf 00 01 00 00 00 64 11 22 33 44",
		 VTP_PKT_RTP},
		{"224 = marker + PT 96 is RTP", "80 e0 00 01 00 00 00 64 11 22 33 44",
		 VTP_PKT_RTP},
		{"191 but 11 bytes", "80 bf 00 01 00 00 00 64 11 22 33", VTP_PKT_GARBAGE},
		{"224 but 4 bytes", "80 e0 00 01", VTP_PKT_GARBAGE},
		{"PT 96", "80 60 00 01 00 00 00 64 11 22 33 44", VTP_PKT_RTP},
		{"PT 0", "80 00 00 01 00 00 00 64 11 22 33 44", VTP_PKT_RTP},
		{"rtp, 11 bytes", "80 60 00 01 00 00 00 64 11 22 33", VTP_PKT_GARBAGE},
		{"version 0", "00 60 00 01 00 00 00 64 11 22 33 44", VTP_PKT_GARBAGE},
		{"version 1 rtcp", "40 c8 00 06 00 00 00 64 11 22 33 44", VTP_PKT_GARBAGE},
		{"version 3", "c0 c9 00 01 11 22 33 44", VTP_PKT_GARBAGE},
		{"STUN binding request", "00 01 00 00 21 12 a4 42 00 00 00 00 00 00 00 00",
		 VTP_PKT_GARBAGE},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct classify_case *c = &cases[i];
		uint8_t p[PKT_MAX];
		size_t n = vtp_test_unhex(c->hex, p, PKT_MAX);

		CHECK(vtp_pkt_classify(p, n) == c->kind);
	}
}

/* ---- RTCP parsing ----------------------------------------------------------- */

/* SR from 0x11223344: NTP e54c2f1a.80000000, RTP ts 123456, 10 packets,
 * 1600 octets, no report block. */
#define SR "80 c8 00 06 | 11 22 33 44 | e5 4c 2f 1a 80 00 00 00 | 00 01 e2 40 | 00 00 00 0a | 00 00 06 40"
/* SDES, one chunk: CNAME "abcd" + end + pad. */
#define SDES "81 ca 00 03 | 11 22 33 44 | 01 04 61 62 63 64 00 00"
/* RR from 0x55667788 with one report block. */
#define RR "81 c9 00 07 | 55 66 77 88 | 11 22 33 44 | 00 00 00 00 | 00 00 10 00 | 00 00 00 05 | 00 00 00 00 | 00 00 00 00"
#define RR_EMPTY "80 c9 00 01 | 55 66 77 88"
#define BYE "81 cb 00 01 | 11 22 33 44"
#define PLI "81 ce 00 02 | 55 66 77 88 | 11 22 33 44"

static void test_rtcp_parse_valid(void **state)
{
	static const struct rtcp_valid_case {
		const char *name;
		const char *hex;
		int packets;
		bool has_sr;
		bool has_bye;
		uint32_t bye_ssrc;
	} cases[] = {
		{"SR + SDES", SR SDES, 2, true, false, 0},
		{"SR alone", SR, 1, true, false, 0},
		{"SR with a report block",
		 "81 c8 00 0c | 11 22 33 44 | e5 4c 2f 1a 80 00 00 00 | 00 01 e2 40 | 00 00 00 0a"
		 "| 00 00 06 40 | 55 66 77 88 00 00 00 00 00 00 10 00 00 00 00 05 00 00 00 00 00 00 00 00",
		 1, true, false, 0},
		{"SR with profile extension", "80 c8 00 07 | 11 22 33 44 | e5 4c 2f 1a 80 00 00 00"
		 "| 00 01 e2 40 | 00 00 00 0a | 00 00 06 40 | ff ff ff ff", 1, true, false, 0},
		{"RR alone", RR, 1, false, false, 0},
		{"RR without blocks", RR_EMPTY, 1, false, false, 0},
		{"SR + SDES + BYE", SR SDES BYE, 3, true, true, 0x11223344},
		{"RR + BYE", RR BYE, 2, false, true, 0x11223344},
		{"BYE alone", BYE, 1, false, true, 0x11223344},
		{"BYE without SSRC", "80 cb 00 00", 1, false, true, 0},
		{"BYE two SSRCs", "82 cb 00 02 | 11 22 33 44 | 99 88 77 66", 1, false, true,
		 0x11223344},
		{"BYE with reason", "81 cb 00 02 | 11 22 33 44 | 03 62 79 65", 1, false, true,
		 0x11223344},
		{"BYE with reason and trailing pad",
		 "81 cb 00 03 | 11 22 33 44 | 04 71 75 69 74 00 00 00", 1, false, true,
		 0x11223344},
		{"RR + BYE + BYE: first BYE counts",
		 RR_EMPTY BYE "81 cb 00 01 99 88 77 66", 3, false, true, 0x11223344},
		{"APP", "80 cc 00 02 | 11 22 33 44 | 6e 61 6d 65", 1, false, false, 0},
		{"RR + APP", RR_EMPTY "81 cc 00 03 | 11 22 33 44 | 6e 61 6d 65 | 01 02 03 04",
		 2, false, false, 0},
		{"PSFB PLI", PLI, 1, false, false, 0},
		{"RR + PSFB PLI", RR PLI, 2, false, false, 0},
		{"RTPFB generic NACK", "81 cd 00 03 | 55 66 77 88 | 11 22 33 44 | 00 10 00 00",
		 1, false, false, 0},
		{"unassigned 192 and 223 skipped", RR_EMPTY "80 c0 00 00 80 df 00 01 01 02 03 04",
		 3, false, false, 0},
		{"padding on the last", RR_EMPTY "a1 cb 00 02 | 11 22 33 44 | 00 00 00 04", 2,
		 false, true, 0x11223344},
		{"SR with padding", "a0 c8 00 07 | 11 22 33 44 | e5 4c 2f 1a 80 00 00 00"
		 "| 00 01 e2 40 | 00 00 00 0a | 00 00 06 40 | 00 00 00 04", 1, true, false, 0},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct rtcp_valid_case *c = &cases[i];
		uint8_t p[PKT_MAX];
		size_t n = vtp_test_unhex(c->hex, p, PKT_MAX);
		vtp_rtcp_info info;

		CHECK(vtp_pkt_classify(p, n) == VTP_PKT_RTCP);
		CHECK(vtp_rtcp_parse(p, n, &info) == 0);
		CHECK(info.packets == c->packets);
		CHECK(info.has_sr == c->has_sr);
		CHECK(info.has_bye == c->has_bye);
		CHECK(info.bye_ssrc == c->bye_ssrc);
		if (info.has_sr) {
			CHECK(info.sr.ssrc == 0x11223344);
			CHECK(info.sr.ntp == 0xe54c2f1a80000000ULL);
			CHECK(info.sr.rtp_ts == 123456);
			CHECK(info.sr.packet_count == 10);
			CHECK(info.sr.octet_count == 1600);
		}
	}
}

static void test_rtcp_parse_first_sr_wins(void **state)
{
	uint8_t p[PKT_MAX];
	size_t n = vtp_test_unhex(SR "80 c8 00 06 | 99 99 99 99 | 00 00 00 01 00 00 00 02 | 00 00 00 03"
			 "| 00 00 00 04 | 00 00 00 05", p, PKT_MAX);
	vtp_rtcp_info info;

	assert_int_equal(vtp_rtcp_parse(p, n, &info), 0);
	assert_int_equal(info.packets, 2);
	assert_int_equal(info.sr.ssrc, 0x11223344);
}

static void test_rtcp_parse_malformed(void **state)
{
	static const struct rtcp_malformed_case {
		const char *name;
		const char *hex;
	} cases[] = {
		{"empty", ""},
		{"three bytes", "80 cb 00"},
		{"version 0", "00 c9 00 01 55 66 77 88"},
		{"version 1", "40 c9 00 01 55 66 77 88"},
		{"version 3", "c0 c9 00 01 55 66 77 88"},
		{"version 1 in the second", RR_EMPTY "41 cb 00 01 11 22 33 44"},
		{"length overflow", "81 c9 00 07 | 55 66 77 88"},
		{"length 0xffff", "80 cb ff ff 11 22 33 44"},
		{"length overflow in the second", RR_EMPTY "81 cb 00 02 11 22 33 44"},
		{"trailing 2 bytes", RR_EMPTY "00 00"},
		{"trailing 3 bytes", RR_EMPTY "80 cb 00"},
		{"trailing zero word", RR_EMPTY "00 00 00 00"},
		{"RTP-range type in the compound", RR_EMPTY "80 60 00 00"},
		{"type 191 in the compound", RR_EMPTY "80 bf 00 00"},
		{"type 224 in the compound", RR_EMPTY "80 e0 00 00"},
		{"padding in a middle packet", "a0 c9 00 01 55 66 77 88" BYE},
		{"padding count 0", "a1 cb 00 02 | 11 22 33 44 | 00 00 00 00"},
		{"padding over the header", "a0 cb 00 01 | 11 22 33 08"},
		{"padding eating the BYE SSRC", "a1 cb 00 01 | 11 22 33 04"},
		{"SR too short (24 bytes)",
		 "80 c8 00 05 | 11 22 33 44 | e5 4c 2f 1a 80 00 00 00 | 00 01 e2 40 | 00 00 00 0a"},
		{"SR header only", "80 c8 00 00"},
		{"SR short after padding", "a0 c8 00 06 | 11 22 33 44 | e5 4c 2f 1a 80 00 00 00"
		 "| 00 01 e2 40 | 00 00 00 0a | 00 00 06 04"},
		{"SR RC overflow", "81 c8 00 06 | 11 22 33 44 | e5 4c 2f 1a 80 00 00 00 | 00 01 e2 40"
		 "| 00 00 00 0a | 00 00 06 40"},
		{"RR header only", "80 c9 00 00"},
		{"RR RC overflow", "81 c9 00 01 | 55 66 77 88"},
		{"RR RC 31", "9f c9 00 07 | 55 66 77 88 | 11 22 33 44 | 00 00 00 00 | 00 00 10 00"
		 "| 00 00 00 05 | 00 00 00 00 | 00 00 00 00"},
		{"BYE count overflow", "82 cb 00 01 | 11 22 33 44"},
		{"BYE reason overflow", "81 cb 00 02 | 11 22 33 44 | 04 71 75 69"},
		{"PSFB too short", "81 ce 00 01 | 55 66 77 88"},
		{"RTPFB too short", "81 cd 00 00"},
		{"good SR then broken RR", SR "81 c9 00 01 | 55 66 77 88"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct rtcp_malformed_case *c = &cases[i];
		uint8_t p[PKT_MAX];
		size_t n = vtp_test_unhex(c->hex, p, PKT_MAX);
		vtp_rtcp_info info, before;

		memset(&info, 0xab, sizeof(info));
		memset(&before, 0xab, sizeof(before));
		CHECK(vtp_rtcp_parse(p, n, &info) == VTP_EINVAL);
		CHECK(memcmp(&info, &before, sizeof(info)) == 0);
	}
}

/* ---- receive statistics ---------------------------------------------------- */

/* Feeds seq with a constant transit (no jitter) and 100-byte payloads. */
static int feed(vtp_rtp_stats *s, uint16_t seq)
{
	uint32_t ts = (uint32_t)seq * 160;

	return vtp_rtp_stats_update(s, seq, ts, ts + 5000, 100);
}

static void test_stats_in_order(void **state)
{
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	assert_false(s.started);
	assert_int_equal(vtp_rtp_stats_expected(&s), 0);
	assert_int_equal(vtp_rtp_stats_lost(&s), 0);
	for (uint16_t seq = 1000; seq < 1100; seq++)
		assert_int_equal(feed(&s, seq), VTP_SEQ_OK);
	assert_true(s.started);
	assert_int_equal(s.base_seq, 1000);
	assert_int_equal(s.max_seq, 1099);
	assert_int_equal(vtp_rtp_stats_ext_max(&s), 1099);
	assert_int_equal(s.received, 100);
	assert_int_equal(s.bytes, 10000);
	assert_int_equal(vtp_rtp_stats_expected(&s), 100);
	assert_int_equal(vtp_rtp_stats_lost(&s), 0);
	assert_int_equal(s.duplicates, 0);
	assert_int_equal(s.reordered, 0);
	assert_true(s.jitter == 0.0);
}

static void test_stats_first_packet(void **state)
{
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	assert_int_equal(vtp_rtp_stats_update(&s, 40000, 1, 2, 7), VTP_SEQ_OK);
	assert_true(s.started);
	assert_int_equal(s.base_seq, 40000);
	assert_int_equal(s.max_seq, 40000);
	assert_int_equal(s.received, 1);
	assert_int_equal(s.bytes, 7);
	assert_int_equal(vtp_rtp_stats_expected(&s), 1);
	assert_true(s.have_transit);
	assert_true(s.jitter == 0.0);
}

static void test_stats_loss(void **state)
{
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	for (uint16_t seq = 0; seq < 10; seq++)
		if (seq != 3 && seq != 7)
			assert_int_equal(feed(&s, seq), VTP_SEQ_OK);
	assert_int_equal(s.received, 8);
	assert_int_equal(vtp_rtp_stats_expected(&s), 10);
	assert_int_equal(vtp_rtp_stats_lost(&s), 2);
	/* a gap of 2998 missing packets is still "in order" */
	assert_int_equal(feed(&s, 9 + 2999), VTP_SEQ_OK);
	assert_int_equal(vtp_rtp_stats_expected(&s), 3009);
	assert_int_equal(vtp_rtp_stats_lost(&s), 3000);
}

static void test_stats_duplicates(void **state)
{
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	assert_int_equal(feed(&s, 10), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 10), VTP_SEQ_DUPLICATE);
	assert_int_equal(feed(&s, 11), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 11), VTP_SEQ_DUPLICATE);
	assert_int_equal(s.received, 2);
	assert_int_equal(s.bytes, 200);
	assert_int_equal(s.duplicates, 2);
	for (uint16_t seq = 12; seq <= 70; seq++)
		if (seq != 20)
			assert_int_equal(feed(&s, seq), VTP_SEQ_OK);
	/* 60 back: seen, and duplicates are not counted */
	assert_int_equal(feed(&s, 10), VTP_SEQ_DUPLICATE);
	/* 50 back, seen */
	assert_int_equal(feed(&s, 20 + 1), VTP_SEQ_DUPLICATE);
	/* 50 back, never seen: late but new, then a duplicate */
	assert_int_equal(feed(&s, 20), VTP_SEQ_REORDERED);
	assert_int_equal(feed(&s, 20), VTP_SEQ_DUPLICATE);
	assert_int_equal(s.duplicates, 5);
	assert_int_equal(s.reordered, 1);
	assert_int_equal(s.received, 61);
	assert_int_equal(s.bytes, 6100);
	assert_int_equal(vtp_rtp_stats_expected(&s), 61);
	assert_int_equal(vtp_rtp_stats_lost(&s), 0);
}

static void test_stats_window_edges(void **state)
{
	vtp_rtp_stats s;

	/* jump forward by 64 and by 127: the bits move across the two words */
	vtp_rtp_stats_init(&s);
	assert_int_equal(feed(&s, 1000), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 1064), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 1000), VTP_SEQ_DUPLICATE);
	assert_int_equal(feed(&s, 1001), VTP_SEQ_REORDERED);
	assert_int_equal(feed(&s, 1063), VTP_SEQ_REORDERED);
	assert_int_equal(feed(&s, 1063), VTP_SEQ_DUPLICATE);
	assert_int_equal(feed(&s, 1065), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 1001), VTP_SEQ_DUPLICATE);
	/* 99 back is the furthest A.1 treats as late */
	assert_int_equal(feed(&s, 1065 - 99), VTP_SEQ_REORDERED);
	assert_int_equal(feed(&s, 1065 - 99), VTP_SEQ_DUPLICATE);
	/* a jump of 200 forgets everything but the new max */
	assert_int_equal(feed(&s, 1265), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 1265), VTP_SEQ_DUPLICATE);
	assert_int_equal(feed(&s, 1264), VTP_SEQ_REORDERED);
	assert_int_equal(feed(&s, 1166), VTP_SEQ_REORDERED);
	/* 100 back is a large jump in A.1 terms */
	assert_int_equal(feed(&s, 1165), VTP_SEQ_PROBATION);
}

static void test_stats_reordering(void **state)
{
	static const uint16_t order[] = {1, 2, 4, 3, 5, 8, 6, 7, 9};
	static const int want[] = {
		VTP_SEQ_OK, VTP_SEQ_OK, VTP_SEQ_OK, VTP_SEQ_REORDERED, VTP_SEQ_OK,
		VTP_SEQ_OK, VTP_SEQ_REORDERED, VTP_SEQ_REORDERED, VTP_SEQ_OK,
	};
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	for (size_t i = 0; i < ARRAY_LEN(order); i++)
		assert_int_equal(feed(&s, order[i]), want[i]);
	assert_int_equal(s.reordered, 3);
	assert_int_equal(s.received, 9);
	assert_int_equal(vtp_rtp_stats_ext_max(&s), 9);
	assert_int_equal(vtp_rtp_stats_lost(&s), 0);
}

static void test_stats_wrap(void **state)
{
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	for (uint16_t seq = 65530; seq != 2; seq++)
		if (seq != 65535)
			assert_int_equal(feed(&s, seq), VTP_SEQ_OK);
	assert_int_equal(s.cycles, 65536);
	assert_int_equal(s.max_seq, 1);
	/* the one before the wrap, late: no second cycle */
	assert_int_equal(feed(&s, 65535), VTP_SEQ_REORDERED);
	assert_int_equal(feed(&s, 65535), VTP_SEQ_DUPLICATE);
	for (uint16_t seq = 2; seq < 6; seq++)
		assert_int_equal(feed(&s, seq), VTP_SEQ_OK);
	assert_int_equal(s.cycles, 65536);
	assert_int_equal(vtp_rtp_stats_ext_max(&s), 65536 + 5);
	assert_int_equal(vtp_rtp_stats_expected(&s), 12);
	assert_int_equal(s.received, 12);
	assert_int_equal(vtp_rtp_stats_lost(&s), 0);

	/* many wraps */
	vtp_rtp_stats_init(&s);
	for (uint32_t i = 0; i < 3 * 65536 + 10; i += 1000)
		assert_int_equal(feed(&s, (uint16_t)(60000 + i)), VTP_SEQ_OK);
	assert_int_equal(s.cycles, 3 * 65536);
	assert_int_equal(vtp_rtp_stats_expected(&s),
			 vtp_rtp_stats_ext_max(&s) - 60000 + 1);
}

static void test_stats_restart(void **state)
{
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	for (uint16_t seq = 100; seq <= 110; seq++)
		assert_int_equal(feed(&s, seq), VTP_SEQ_OK);
	/* a lone jump: kept on probation, not counted */
	assert_int_equal(feed(&s, 9000), VTP_SEQ_PROBATION);
	assert_int_equal(s.received, 11);
	assert_int_equal(s.max_seq, 110);
	/* the old sequence goes on */
	assert_int_equal(feed(&s, 111), VTP_SEQ_OK);
	/* a jump, then not the next one: still probation */
	assert_int_equal(feed(&s, 20000), VTP_SEQ_PROBATION);
	assert_int_equal(feed(&s, 20002), VTP_SEQ_PROBATION);
	assert_int_equal(s.received, 12);
	assert_int_equal(s.max_seq, 111);
	/* sequential to the last jump: restart from there */
	assert_int_equal(feed(&s, 20003), VTP_SEQ_RESTART);
	assert_int_equal(s.base_seq, 20003);
	assert_int_equal(s.max_seq, 20003);
	assert_int_equal(s.cycles, 0);
	assert_int_equal(s.received, 1);
	assert_int_equal(vtp_rtp_stats_expected(&s), 1);
	assert_int_equal(vtp_rtp_stats_lost(&s), 0);
	assert_int_equal(s.bytes, 1300); /* lifetime: 13 counted packets */
	assert_int_equal(feed(&s, 20004), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 20003), VTP_SEQ_DUPLICATE);
	assert_int_equal(vtp_rtp_stats_expected(&s), 2);

	/* A.1 boundaries: +2999 is in order, +3000 is a jump */
	vtp_rtp_stats_init(&s);
	assert_int_equal(feed(&s, 100), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 100 + 2999), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 100 + 2999 + 3000), VTP_SEQ_PROBATION);
	assert_int_equal(feed(&s, 100 + 2999 + 3001), VTP_SEQ_RESTART);

	/* a jump backwards restarts the same way */
	vtp_rtp_stats_init(&s);
	assert_int_equal(feed(&s, 10000), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 10001), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 500), VTP_SEQ_PROBATION);
	assert_int_equal(feed(&s, 501), VTP_SEQ_RESTART);
	assert_int_equal(s.base_seq, 501);
	assert_int_equal(vtp_rtp_stats_expected(&s), 1);

	/* a large jump across the wrap: no cycle counted after the restart */
	vtp_rtp_stats_init(&s);
	assert_int_equal(feed(&s, 65000), VTP_SEQ_OK);
	assert_int_equal(feed(&s, 5000), VTP_SEQ_PROBATION);
	assert_int_equal(feed(&s, 5001), VTP_SEQ_RESTART);
	assert_int_equal(s.cycles, 0);
	assert_int_equal(vtp_rtp_stats_ext_max(&s), 5001);
}

static void test_stats_jitter(void **state)
{
	/* transit alternates 1000 and 1080 timestamp units: |D| = 80 for
	 * every packet after the first, so J(k) = 80 (1 - (15/16)^k) after k
	 * differences. */
	vtp_rtp_stats s;
	double want = 0.0;
	uint32_t ts = 0xfffff000; /* both clocks wrap during the run */

	vtp_rtp_stats_init(&s);
	for (int i = 0; i < 200; i++, ts += 160) {
		uint32_t arrival = ts + 1000 + (i % 2 ? 80 : 0);

		assert_int_equal(vtp_rtp_stats_update(&s, (uint16_t)i, ts, arrival, 160),
				 VTP_SEQ_OK);
		if (i > 0)
			want += (80.0 - want) / 16.0;
		assert_true(s.jitter > want - 1e-9 && s.jitter < want + 1e-9);
	}
	/* closed form and convergence */
	want = 1.0;
	for (int k = 0; k < 199; k++)
		want *= 15.0 / 16.0;
	want = 80.0 * (1.0 - want);
	assert_true(s.jitter > want - 1e-9 && s.jitter < want + 1e-9);
	assert_true(s.jitter > 79.99 && s.jitter <= 80.0);
	assert_true(vtp_rtp_stats_jitter_seconds(&s, 8000) > 0.0099 &&
		    vtp_rtp_stats_jitter_seconds(&s, 8000) <= 0.01);
	assert_true(vtp_rtp_stats_jitter_seconds(&s, 0) == 0.0);
}

static void test_stats_jitter_negative_transit(void **state)
{
	/* a transit that reads as negative in 32 bits, with the arrival clock
	 * wrapping: constant transit means no jitter */
	vtp_rtp_stats s;

	vtp_rtp_stats_init(&s);
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t ts = 0x7ffff000u + i * 160;

		vtp_rtp_stats_update(&s, (uint16_t)i, ts, ts + 0x80000800u, 10);
	}
	assert_true(s.last_transit < 0);
	assert_true(s.jitter == 0.0);
	/* one packet 32 units late: |D| = 32, J = 2 */
	vtp_rtp_stats_update(&s, 100, 0x7ffff000u + 100 * 160,
			     0x7ffff000u + 100 * 160 + 0x80000800u + 32, 10);
	assert_true(s.jitter == 2.0);
	/* duplicates and probation packets do not touch it */
	vtp_rtp_stats_update(&s, 100, 0, 123456, 10);
	vtp_rtp_stats_update(&s, 30000, 0, 123456, 10);
	assert_true(s.jitter == 2.0);
}

/* ---- packets the recorder sends ----------------------------------------- */

static void assert_rtcp_roundtrip(const uint8_t *p, size_t n)
{
	vtp_rtcp_info info;

	assert_int_equal(vtp_pkt_classify(p, n), VTP_PKT_RTCP);
	assert_int_equal(vtp_rtcp_parse(p, n, &info), 0);
	assert_int_equal(info.packets, 1);
	assert_false(info.has_sr);
	assert_false(info.has_bye);
}

#define SEC_NS ((uint64_t)1000000000)

static void test_build_rr(void **state)
{
	vtp_rtp_stats s;
	uint8_t out[64], want[64];
	size_t n;

	/* 6 of 8 (2 and 6 lost); the last packet arrives 320 units late:
	 * J = 320 / 16 = 20 */
	vtp_rtp_stats_init(&s);
	for (uint16_t seq = 0; seq < 8; seq++) {
		uint32_t ts = seq * 160u;

		if (seq == 2 || seq == 6)
			continue;
		vtp_rtp_stats_update(&s, seq, ts, ts + (seq == 7 ? 320 : 0), 100);
	}
	assert_true(s.jitter == 20.0);
	vtp_rtp_stats_on_sr(&s, 0xe54c2f1a12345678ULL, 1 * SEC_NS);
	assert_int_equal(s.last_sr_mid, 0x2f1a1234);

	n = vtp_rtcp_build_rr(out, sizeof(out), 0x0a0b0c0d, 0x11223344, &s,
			      1 * SEC_NS + 1500000000);
	assert_int_equal(n, 32);
	vtp_test_unhex("81 c9 00 07 | 0a 0b 0c 0d | 11 22 33 44 | 40 00 00 02 | 00 00 00 07"
	      "| 00 00 00 14 | 2f 1a 12 34 | 00 01 80 00", want, PKT_MAX);
	assert_memory_equal(out, want, 32);
	assert_rtcp_roundtrip(out, n);
	assert_int_equal(s.expected_prior, 8);
	assert_int_equal(s.received_prior, 6);

	/* nothing new: fraction 0, cumulative still 2 */
	n = vtp_rtcp_build_rr(out, sizeof(out), 0x0a0b0c0d, 0x11223344, &s,
			      3 * SEC_NS);
	assert_int_equal(n, 32);
	vtp_test_unhex("81 c9 00 07 | 0a 0b 0c 0d | 11 22 33 44 | 00 00 00 02 | 00 00 00 07"
	      "| 00 00 00 14 | 2f 1a 12 34 | 00 02 00 00", want, PKT_MAX);
	assert_memory_equal(out, want, 32);

	/* 8..15 with 9 and 10 lost, then 10 late: 1 of 8 lost = 32/256 */
	for (uint16_t seq = 8; seq < 16; seq++)
		if (seq != 9 && seq != 10)
			feed(&s, seq);
	feed(&s, 10);
	n = vtp_rtcp_build_rr(out, sizeof(out), 0x0a0b0c0d, 0x11223344, &s,
			      3 * SEC_NS);
	assert_int_equal(n, 32);
	assert_memory_equal(out + 12, "\x20\x00\x00\x03\x00\x00\x00\x0f", 8);
}

static void test_build_rr_no_sr_and_clamps(void **state)
{
	vtp_rtp_stats s;
	uint8_t out[32];
	uint16_t seq = 0;

	/* 3001 packets 2999 apart: 8,994,000 lost clamps the 24-bit field,
	 * and 255.9/256 of the interval lost is 255 */
	vtp_rtp_stats_init(&s);
	for (int i = 0; i <= 3000; i++, seq += 2999)
		assert_int_equal(vtp_rtp_stats_update(&s, seq, 0, 0, 1), VTP_SEQ_OK);
	assert_int_equal(vtp_rtp_stats_lost(&s), 3000ULL * 2998);
	assert_int_equal(vtp_rtcp_build_rr(out, sizeof(out), 1, 2, &s, 5 * SEC_NS), 32);
	assert_memory_equal(out + 12, "\xff\x7f\xff\xff", 4);
	assert_int_equal(((uint32_t)out[16] << 24 | (uint32_t)out[17] << 16 |
			  (uint32_t)out[18] << 8 | out[19]),
			 vtp_rtp_stats_ext_max(&s));
	/* no SR yet: LSR and DLSR 0 */
	assert_memory_equal(out + 24, "\0\0\0\0\0\0\0\0", 8);
	assert_rtcp_roundtrip(out, 32);

	/* SR arriving "after" now, and an hour-old SR, saturating at 2^32-1 */
	vtp_rtp_stats_on_sr(&s, 0x0000000100010000ULL, 10 * SEC_NS);
	assert_int_equal(vtp_rtcp_build_rr(out, sizeof(out), 1, 2, &s, 5 * SEC_NS), 32);
	assert_memory_equal(out + 24, "\x00\x01\x00\x01\0\0\0\0", 8);
	assert_int_equal(vtp_rtcp_build_rr(out, sizeof(out), 1, 2, &s,
					   10 * SEC_NS + 3600 * SEC_NS), 32);
	assert_memory_equal(out + 28, "\x0e\x10\x00\x00", 4);
	assert_int_equal(vtp_rtcp_build_rr(out, sizeof(out), 1, 2, &s,
					   10 * SEC_NS + 70000 * SEC_NS), 32);
	assert_memory_equal(out + 28, "\xff\xff\xff\xff", 4);

	/* a source never heard from: an all-zero block */
	vtp_rtp_stats_init(&s);
	assert_int_equal(vtp_rtcp_build_rr(out, sizeof(out), 1, 2, &s, 0), 32);
	assert_memory_equal(out + 12, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
}

static void test_build_pli_fir(void **state)
{
	uint8_t out[32], want[32];
	size_t n;

	n = vtp_rtcp_build_pli(out, sizeof(out), 0x0a0b0c0d, 0x11223344);
	assert_int_equal(n, 12);
	vtp_test_unhex("81 ce 00 02 | 0a 0b 0c 0d | 11 22 33 44", want, PKT_MAX);
	assert_memory_equal(out, want, n);
	assert_rtcp_roundtrip(out, n);

	n = vtp_rtcp_build_fir(out, sizeof(out), 0x0a0b0c0d, 0x11223344, 7);
	assert_int_equal(n, 20);
	vtp_test_unhex("84 ce 00 04 | 0a 0b 0c 0d | 00 00 00 00 | 11 22 33 44 | 07 00 00 00", want, PKT_MAX);
	assert_memory_equal(out, want, n);
	assert_rtcp_roundtrip(out, n);
}

static void test_build_small_cap(void **state)
{
	vtp_rtp_stats s;
	uint8_t out[32];

	vtp_rtp_stats_init(&s);
	feed(&s, 1);
	feed(&s, 3);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(vtp_rtcp_build_rr(out, 31, 1, 2, &s, 0), 0);
	assert_int_equal(vtp_rtcp_build_rr(out, 0, 1, 2, &s, 0), 0);
	/* the report priors are untouched */
	assert_int_equal(s.expected_prior, 0);
	assert_int_equal(s.received_prior, 0);
	assert_int_equal(vtp_rtcp_build_pli(out, 11, 1, 2), 0);
	assert_int_equal(vtp_rtcp_build_fir(out, 19, 1, 2, 0), 0);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xee);
	/* and exactly enough */
	assert_int_equal(vtp_rtcp_build_rr(out, 32, 1, 2, &s, 0), 32);
	assert_int_equal(vtp_rtcp_build_pli(out, 12, 1, 2), 12);
	assert_int_equal(vtp_rtcp_build_fir(out, 20, 1, 2, 0), 20);
}

static void test_build_compound_roundtrip(void **state)
{
	vtp_rtp_stats s;
	uint8_t out[64];
	vtp_rtcp_info info;
	size_t n;

	vtp_rtp_stats_init(&s);
	feed(&s, 1);
	n = vtp_rtcp_build_rr(out, sizeof(out), 1, 2, &s, 0);
	n += vtp_rtcp_build_pli(out + n, sizeof(out) - n, 1, 2);
	n += vtp_rtcp_build_fir(out + n, sizeof(out) - n, 1, 2, 3);
	assert_int_equal(n, 64);
	assert_int_equal(vtp_pkt_classify(out, n), VTP_PKT_RTCP);
	assert_int_equal(vtp_rtcp_parse(out, n, &info), 0);
	assert_int_equal(info.packets, 3);
}

/* Keyframe starts, table-driven: each payload and whether it starts one. */
static void test_keyframe_detection(void **state)
{
	static const struct {
		const char *name;
		bool h264;
		uint8_t p[12];
		size_t n;
		bool key;
	} cases[] = {
		{"vp8 key, no X", false, {0x10, 0x00}, 2, true},
		{"vp8 delta, no X", false, {0x10, 0x01}, 2, false},
		{"vp8 continuation (S=0)", false, {0x00, 0x00}, 2, false},
		{"vp8 other partition (PID 1)", false, {0x11, 0x00}, 2, false},
		{"vp8 key, 15-bit picture id", false, {0x90, 0x80, 0x81, 0x23, 0x9c}, 5, true},
		{"vp8 delta, 7-bit picture id", false, {0x90, 0x80, 0x05, 0x9d}, 4, false},
		{"vp8 key, I L T", false, {0x90, 0xe0, 0x05, 0x01, 0x02, 0x00}, 6, true},
		{"vp8 truncated after extensions", false, {0x90, 0xe0, 0x05, 0x01, 0x02}, 5, false},
		{"vp8 only a descriptor byte", false, {0x10}, 1, false},
		{"vp8 empty", false, {0}, 0, false},
		{"h264 idr", true, {0x65, 0x88}, 2, true},
		{"h264 non-idr", true, {0x41, 0x9a}, 2, false},
		{"h264 fu-a idr start", true, {0x7c, 0x85, 0x88}, 3, true},
		{"h264 fu-a idr middle", true, {0x7c, 0x05, 0x88}, 3, false},
		{"h264 stap-a sps pps idr", true,
		 {0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68, 0x00, 0x01, 0x65}, 11, true},
		{"h264 stap-a length past end", true, {0x78, 0x00, 0x09, 0x65, 0x00}, 5, false},
		{"h264 stap-a zero length", true, {0x78, 0x00, 0x00, 0x65}, 4, false},
		{"h264 empty", true, {0}, 0, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = cases[i].h264 ? vtp_rtp_h264_keyframe(cases[i].p, cases[i].n)
					 : vtp_rtp_vp8_keyframe(cases[i].p, cases[i].n);

		if (got != cases[i].key)
			fail_msg("%s: got %d", cases[i].name, got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtp_parse_valid),
		cmocka_unit_test(test_rtp_parse_fields),
		cmocka_unit_test(test_rtp_parse_malformed),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_rtcp_parse_valid),
		cmocka_unit_test(test_rtcp_parse_first_sr_wins),
		cmocka_unit_test(test_rtcp_parse_malformed),
		cmocka_unit_test(test_stats_in_order),
		cmocka_unit_test(test_stats_first_packet),
		cmocka_unit_test(test_stats_loss),
		cmocka_unit_test(test_stats_duplicates),
		cmocka_unit_test(test_stats_window_edges),
		cmocka_unit_test(test_stats_reordering),
		cmocka_unit_test(test_stats_wrap),
		cmocka_unit_test(test_stats_restart),
		cmocka_unit_test(test_stats_jitter),
		cmocka_unit_test(test_stats_jitter_negative_transit),
		cmocka_unit_test(test_build_rr),
		cmocka_unit_test(test_build_rr_no_sr_and_clamps),
		cmocka_unit_test(test_build_pli_fir),
		cmocka_unit_test(test_build_small_cap),
		cmocka_unit_test(test_build_compound_roundtrip),
		cmocka_unit_test(test_keyframe_detection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
