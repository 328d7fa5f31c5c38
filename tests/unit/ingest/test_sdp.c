/* Tests for src/ingest/sdp.c. Real offers live in tests/unit/ingest/sdp/
 * (found next to this file through __FILE__, which CMake makes absolute):
 * chrome*.sdp were captured from Chromium 156 (fake devices, sendonly
 * transceivers; _h264 with codec preferences, _extra with a recvonly audio
 * and a data channel), gstreamer*.sdp from GStreamer 1.22 webrtcbin
 * (max-bundle, and the default policy: no BUNDLE); firefox.sdp (Firefox
 * 128) and obs.sdp (OBS' libdatachannel) are written from their known
 * shapes. Each is parsed with CRLF and with LF; the choices are checked,
 * the answer line by line, and the answer parses back (turned into an
 * offer) to the same choices. Then the H.264 preference, rejected sections,
 * caps, and a table of refused offers with their reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "ingest/sdp.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WHY_LEN 200 /* what the WHIP handler gives */

/* In table loops: a failure names the case (the loop variable `c`). */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			fail_msg("case \"%s\": %s", c->name, #cond); \
	} while (0)

#define OUR_FP "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:" \
	       "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

static const vtp_sdp_answer_params PARAMS = {
	.ip = "192.0.2.1",
	.port = 40000,
	.ice_ufrag = "vtpU",
	.ice_pwd = "vtpPasswordOf22Chars00",
	.fingerprint = OUR_FP,
	.session_id = 4242,
};

/* ---- helpers ---------------------------------------------------------------- */

/* The fixture file's bytes (NUL-terminated for convenience), vtp_free. */
static char *load_fixture(const char *name, size_t *len)
{
	const char *file = __FILE__;
	const char *slash = strrchr(file, '/');
	char path[1024];
	FILE *f;
	char *data;
	long n;

	snprintf(path, sizeof(path), "%.*ssdp/%s", slash ? (int)(slash - file + 1) : 0, file, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open fixture %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0 && n < VTP_SDP_MAX_BYTES);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	data = vtp_malloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	data[n] = '\0';
	*len = (size_t)n;
	return data;
}

/* A copy with every CRLF made LF. */
static char *to_lf(const char *s, size_t *len)
{
	char *out = vtp_malloc(strlen(s) + 1);
	size_t n = 0;

	for (; *s; s++)
		if (!(s[0] == '\r' && s[1] == '\n'))
			out[n++] = *s;
	out[n] = '\0';
	*len = n;
	return out;
}

static int parse(const char *sdp, size_t len, vtp_sdp_offer *o, char *why)
{
	int rc = vtp_sdp_parse_offer(sdp, len, o, why, WHY_LEN);

	if (rc) {
		/* a reason is one line, printable, for a 400 */
		assert_true(why[0] != '\0');
		for (const char *p = why; *p; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
	}
	return rc;
}

static char *answer_of(const vtp_sdp_offer *o)
{
	vtp_buf b;
	size_t len;

	vtp_buf_init(&b, VTP_SDP_MAX_BYTES);
	vtp_sdp_write_answer(o, &PARAMS, &b);
	assert_true(b.len > 0);
	return vtp_buf_steal(&b, &len);
}

/* How many lines of text are exactly line; every line must end in CRLF. */
static int count_lines(const char *text, const char *line)
{
	size_t want = strlen(line);
	int n = 0;

	while (*text) {
		const char *end = strstr(text, "\r\n");

		assert_non_null(end);
		if ((size_t)(end - text) == want && memcmp(text, line, want) == 0)
			n++;
		text = end + 2;
	}
	return n;
}

/* How many lines start with prefix. */
static int count_prefix(const char *text, const char *prefix)
{
	size_t want = strlen(prefix);
	int n = 0;

	while (*text) {
		const char *end = strstr(text, "\r\n");

		assert_non_null(end);
		if ((size_t)(end - text) >= want && memcmp(text, prefix, want) == 0)
			n++;
		text = end + 2;
	}
	return n;
}

/* The answer's m= section i (0-based), from its m= line to the next. */
static char *answer_section(const char *answer, int i)
{
	const char *p = strstr(answer, "\r\nm="), *end;

	for (int k = 0; k < i && p; k++)
		p = strstr(p + 2, "\r\nm=");
	assert_non_null(p);
	p += 2;
	end = strstr(p, "\r\nm=");
	return vtp_strndup(p, end ? (size_t)(end - p) + 2 : strlen(p));
}

/* The answer read as an offer again (same length swaps: passive ->
 * actpass, recvonly -> sendonly) must give the same choices. */
static void check_parses_back(const vtp_sdp_offer *o, const char *answer)
{
	char *copy = vtp_strdup(answer), *p;
	vtp_sdp_offer *back = vtp_calloc(1, sizeof(*back));
	char why[WHY_LEN];

	while ((p = strstr(copy, "a=setup:passive")))
		memcpy(p, "a=setup:actpass", 15);
	while ((p = strstr(copy, "a=recvonly")))
		memcpy(p, "a=sendonly", 10);
	if (vtp_sdp_parse_offer(copy, strlen(copy), back, why, sizeof(why)) != 0)
		fail_msg("the answer does not parse back: %s\n%s", why, answer);
	assert_int_equal(back->nmedia, o->nmedia);
	assert_int_equal(back->accepted, o->accepted);
	assert_string_equal(back->ice_ufrag, PARAMS.ice_ufrag);
	assert_string_equal(back->ice_pwd, PARAMS.ice_pwd);
	assert_true(back->ice_lite);
	for (int i = 0; i < o->nmedia; i++) {
		const vtp_sdp_media *a = &o->media[i], *b = &back->media[i];

		assert_int_equal(b->kind, a->kind);
		assert_string_equal(b->mid, a->mid);
		assert_int_equal(b->chosen >= 0, a->chosen >= 0);
		if (a->chosen < 0) {
			assert_int_equal(b->port, 0);
			continue;
		}
		assert_int_equal(b->port, PARAMS.port);
		assert_int_equal(b->ncodecs, 1);
		assert_int_equal(b->codecs[0].pt, a->codecs[a->chosen].pt);
		assert_false(b->codecs[0].transport_cc);
	}
	vtp_free(back);
	vtp_free(copy);
}

/* ---- the fixtures ------------------------------------------------------------- */

struct fixture_case {
	const char *name;
	int nmedia;
	int audio, audio_pt;     /* section index, -1: none */
	int video, video_pt;
	const char *bundle;
	const char *answer_bundle; /* the a=group line, NULL: none */
	const char *ufrag;
	const char *audio_fmtp;  /* the answer's a=fmtp for the audio */
	const char *video_lines[4]; /* lines the video section must have */
	int audio_ssrcs, video_ssrcs;
};

static const struct fixture_case FIXTURES[] = {
	{"chrome.sdp", 2, 0, 111, 1, 96, "0 1", "a=group:BUNDLE 0 1", "KcXp",
	 "a=fmtp:111 minptime=10;useinbandfec=1",
	 {"a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli",
	  "a=rtcp-fb:96 goog-remb"}, 1, 2},
	{"chrome_h264.sdp", 2, 0, 111, 1, 108, "0 1", "a=group:BUNDLE 0 1", "HVwQ",
	 "a=fmtp:111 minptime=10;useinbandfec=1",
	 {"a=rtpmap:108 H264/90000",
	  "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	  "a=rtcp-fb:108 ccm fir", "a=rtcp-fb:108 nack pli"}, 1, 2},
	{"chrome_extra.sdp", 4, 0, 111, 1, 96, "0 1 2 3", "a=group:BUNDLE 0 1", "OJeU",
	 "a=fmtp:111 minptime=10;useinbandfec=1",
	 {"a=rtpmap:96 VP8/90000", "a=mid:1", "a=rtcp-fb:96 nack", "a=rtcp-mux"}, 1, 2},
	{"gstreamer.sdp", 2, 1, 111, 0, 96, "video0 audio1", "a=group:BUNDLE video0 audio1",
	 "PIETmemmMjHUdfq1wBV1J1FsWhXLJiTu", "a=fmtp:111 minptime=10;useinbandfec=1",
	 {"a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack pli", "a=rtcp-fb:96 ccm fir",
	  "a=mid:video0"}, 1, 1},
	{"firefox.sdp", 2, 0, 109, 1, 120, "0 1", "a=group:BUNDLE 0 1", "4f1b9c2e",
	 "a=fmtp:109 minptime=10;useinbandfec=1;stereo=1",
	 {"a=rtpmap:120 VP8/90000", "a=fmtp:120 max-fs=12288;max-fr=60",
	  "a=rtcp-fb:120 goog-remb", "a=rtcp-fb:120 ccm fir"}, 1, 2},
	{"obs.sdp", 2, 0, 111, 1, 96, "0 1", "a=group:BUNDLE 0 1", "Ue/j",
	 "a=fmtp:111 minptime=10;useinbandfec=1;stereo=1",
	 {"a=rtpmap:96 H264/90000",
	  "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
	  "a=rtcp-fb:96 nack", "a=rtcp-fb:96 goog-remb"}, 1, 1},
};

static void check_answer(const struct fixture_case *c, const vtp_sdp_offer *o, const char *ans)
{
	static const char session[] =
		"v=0\r\no=- 4242 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n";
	char line[512];

	CHECK(strncmp(ans, session, strlen(session)) == 0);
	CHECK(count_lines(ans, c->answer_bundle) == 1);
	CHECK(count_prefix(ans, "a=group:") == 1);
	/* one m= per offered section, each accepted one complete */
	CHECK(count_prefix(ans, "m=") == c->nmedia);
	CHECK(count_lines(ans, "a=recvonly") == o->accepted);
	CHECK(count_lines(ans, "a=setup:passive") == o->accepted);
	CHECK(count_lines(ans, "a=rtcp-mux") == o->accepted);
	CHECK(count_lines(ans, "a=ice-ufrag:vtpU") == o->accepted);
	CHECK(count_lines(ans, "a=ice-pwd:vtpPasswordOf22Chars00") == o->accepted);
	CHECK(count_lines(ans, "a=fingerprint:sha-256 " OUR_FP) == o->accepted);
	CHECK(count_lines(ans, "a=candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host") ==
	      o->accepted);
	CHECK(count_lines(ans, "a=end-of-candidates") == o->accepted);
	CHECK(count_lines(ans, "c=IN IP4 192.0.2.1") == c->nmedia);
	/* what the recorder never answers */
	CHECK(!strstr(ans, "transport-cc") && !strstr(ans, "extmap") && !strstr(ans, "rtx") &&
	      !strstr(ans, "ssrc") && !strstr(ans, "simulcast") && !strstr(ans, "rid") &&
	      !strstr(ans, "sendonly") && !strstr(ans, "sendrecv") && !strstr(ans, "actpass"));
	for (int i = 0; i < c->nmedia; i++) {
		char *sec = answer_section(ans, i);
		const vtp_sdp_media *m = &o->media[i];

		if (i == c->audio) {
			snprintf(line, sizeof(line), "m=audio 40000 UDP/TLS/RTP/SAVPF %d\r\n",
				 c->audio_pt);
			CHECK(strncmp(sec, line, strlen(line)) == 0);
			snprintf(line, sizeof(line), "a=rtpmap:%d opus/48000/2", c->audio_pt);
			CHECK(count_lines(sec, line) == 1);
			CHECK(count_lines(sec, c->audio_fmtp) == 1);
			CHECK(count_prefix(sec, "a=rtcp-fb:") == 0); /* Chrome: only transport-cc */
		} else if (i == c->video) {
			snprintf(line, sizeof(line), "m=video 40000 UDP/TLS/RTP/SAVPF %d\r\n",
				 c->video_pt);
			CHECK(strncmp(sec, line, strlen(line)) == 0);
			for (size_t k = 0; k < ARRAY_LEN(c->video_lines); k++)
				CHECK(count_lines(sec, c->video_lines[k]) == 1);
			CHECK(count_prefix(sec, "a=rtpmap:") == 1);
		} else {
			snprintf(line, sizeof(line), "m=%s 0 %s %s\r\nc=IN IP4 192.0.2.1\r\na=mid:%s\r\n",
				 m->media, m->proto, m->fmts, m->mid);
			CHECK(strcmp(sec, line) == 0);
		}
		if (m->mid[0]) {
			snprintf(line, sizeof(line), "a=mid:%s", m->mid);
			CHECK(count_lines(sec, line) == 1);
		}
		vtp_free(sec);
	}
}

static void check_fixture(const struct fixture_case *c, const char *sdp, size_t len)
{
	vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
	char why[WHY_LEN];
	char *ans;

	if (parse(sdp, len, o, why) != 0)
		fail_msg("case \"%s\": %s", c->name, why);
	CHECK(o->nmedia == c->nmedia);
	CHECK(o->accepted == 2);
	CHECK(strcmp(o->bundle, c->bundle) == 0);
	CHECK(strcmp(o->ice_ufrag, c->ufrag) == 0);
	CHECK(strlen(o->ice_pwd) >= 22);
	CHECK(strcmp(o->fingerprint_alg, "sha-256") == 0 && o->fingerprint_len == 32);
	CHECK(strcmp(o->setup, "actpass") == 0);
	CHECK(!o->ice_lite);
	for (int i = 0; i < o->nmedia; i++) {
		const vtp_sdp_media *m = &o->media[i];

		CHECK((m->chosen >= 0) == (i == c->audio || i == c->video));
		CHECK((m->reject_reason == NULL) == (m->chosen >= 0));
		CHECK(m->rtcp_mux || m->kind == VTP_SDP_OTHER);
	}
	CHECK(o->media[c->audio].kind == VTP_SDP_AUDIO);
	CHECK(o->media[c->audio].codecs[o->media[c->audio].chosen].pt == c->audio_pt);
	CHECK(o->media[c->audio].nssrcs == c->audio_ssrcs);
	CHECK(o->media[c->video].kind == VTP_SDP_VIDEO);
	CHECK(o->media[c->video].codecs[o->media[c->video].chosen].pt == c->video_pt);
	CHECK(o->media[c->video].nssrcs == c->video_ssrcs);
	ans = answer_of(o);
	check_answer(c, o, ans);
	check_parses_back(o, ans);
	vtp_free(ans);
	vtp_free(o);
}

static void test_fixtures(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(FIXTURES); i++) {
		const struct fixture_case *c = &FIXTURES[i];
		size_t len, lf_len;
		char *sdp = load_fixture(c->name, &len);
		char *lf = to_lf(sdp, &lf_len);

		CHECK(strstr(sdp, "\r\n") != NULL); /* as captured */
		check_fixture(c, sdp, len);
		CHECK(lf_len < len);
		check_fixture(c, lf, lf_len);
		vtp_free(lf);
		vtp_free(sdp);
	}
}

/* Details of the real Chrome offer beyond the choices. */
static void test_chrome_details(void **state)
{
	size_t len;
	char *sdp = load_fixture("chrome.sdp", &len);
	vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
	char why[WHY_LEN];
	const vtp_sdp_media *a, *v;
	static const uint8_t fp_start[] = {0x00, 0x33, 0x49, 0x68};

	assert_int_equal(parse(sdp, len, o, why), 0);
	a = &o->media[0];
	v = &o->media[1];
	assert_string_equal(a->proto, "UDP/TLS/RTP/SAVPF");
	assert_string_equal(a->fmts, "111 63 9 0 8 13 110 126");
	assert_int_equal(a->direction, VTP_SDP_SENDONLY);
	assert_int_equal(a->port, 37882);
	assert_int_equal(a->ncodecs, 8);
	assert_string_equal(a->codecs[0].name, "opus");
	assert_int_equal(a->codecs[0].clock_rate, 48000);
	assert_int_equal(a->codecs[0].channels, 2);
	assert_string_equal(a->codecs[0].fmtp, "minptime=10;useinbandfec=1");
	assert_true(a->codecs[0].transport_cc);
	assert_false(a->codecs[0].nack);
	assert_int_equal(a->codecs[3].pt, 0);
	assert_string_equal(a->codecs[3].name, "PCMU");
	assert_int_equal(a->codecs[3].channels, 1);
	assert_int_equal(a->ssrcs[0], 1635801907u);
	/* all 23 video formats have an rtpmap; codecs follow the m= order */
	assert_int_equal(v->ncodecs, 23);
	assert_int_equal(v->codecs[0].pt, 96);
	assert_int_equal(v->codecs[1].pt, 97);
	assert_string_equal(v->codecs[1].name, "rtx");
	assert_string_equal(v->codecs[1].fmtp, "apt=96");
	assert_int_equal(v->codecs[12].pt, 39);
	assert_int_equal(v->codecs[22].pt, 120);
	assert_true(v->codecs[0].nack && v->codecs[0].nack_pli && v->codecs[0].ccm_fir &&
		    v->codecs[0].goog_remb && v->codecs[0].transport_cc);
	assert_false(v->codecs[1].nack);
	assert_int_equal(v->ssrcs[0], 463389550u);
	assert_int_equal(v->ssrcs[1], 1132413339u);
	assert_memory_equal(o->fingerprint, fp_start, sizeof(fp_start));
	vtp_free(o);
	vtp_free(sdp);
}

/* webrtcbin's max-bundle offer: the audio is bundle-only with port 0 and
 * still taken; its default policy offers no BUNDLE: refused. */
static void test_gstreamer(void **state)
{
	size_t len;
	char *sdp = load_fixture("gstreamer.sdp", &len);
	vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
	char why[WHY_LEN];

	assert_int_equal(parse(sdp, len, o, why), 0);
	assert_int_equal(o->media[1].port, 0);
	assert_true(o->media[1].bundle_only);
	assert_int_equal(o->media[1].chosen, 0);
	assert_string_equal(o->media[1].codecs[0].name, "OPUS");
	assert_int_equal(o->media[0].direction, VTP_SDP_SENDRECV);
	vtp_free(sdp);

	sdp = load_fixture("gstreamer_nobundle.sdp", &len);
	assert_int_equal(parse(sdp, len, o, why), VTP_EINVAL);
	assert_non_null(strstr(why, "a=group:BUNDLE"));
	vtp_free(sdp);
	vtp_free(o);
}

/* ---- synthetic offers ------------------------------------------------------------ */

#define FP32 "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
	     "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
#define V0 "v=0\r\n"
#define OST "o=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
#define ICE "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"
#define FP "a=fingerprint:sha-256 " FP32 "\r\n"
#define SETUP "a=setup:actpass\r\n"
#define SESSION V0 OST "a=group:BUNDLE 0 1\r\n" ICE FP SETUP
#define MEDIA(kind, mid, fmts) \
	"m=" kind " 9 UDP/TLS/RTP/SAVPF " fmts "\r\nc=IN IP4 0.0.0.0\r\na=mid:" mid \
	"\r\na=sendonly\r\na=rtcp-mux\r\n"
#define AUDIO MEDIA("audio", "0", "111") "a=rtpmap:111 opus/48000/2\r\n"
#define VIDEO MEDIA("video", "1", "96") "a=rtpmap:96 VP8/90000\r\n"
#define GOOD SESSION AUDIO VIDEO

static vtp_sdp_offer *parse_ok(const char *sdp)
{
	vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
	char why[WHY_LEN];

	if (parse(sdp, strlen(sdp), o, why) != 0)
		fail_msg("%s\n%s", why, sdp);
	return o;
}

static int chosen_pt(const vtp_sdp_media *m)
{
	return m->chosen >= 0 ? m->codecs[m->chosen].pt : -1;
}

static void test_good_synthetic(void **state)
{
	vtp_sdp_offer *o = parse_ok(GOOD);
	char *ans = answer_of(o);

	assert_int_equal(o->accepted, 2);
	assert_int_equal(chosen_pt(&o->media[0]), 111);
	assert_int_equal(chosen_pt(&o->media[1]), 96);
	/* session-level transport applies to both */
	assert_string_equal(o->ice_ufrag, "abcd");
	assert_int_equal(o->fingerprint[10], 0xaa);
	check_parses_back(o, ans);
	vtp_free(ans);
	vtp_free(o);
}

static void test_h264_preference(void **state)
{
	static const struct h264_case {
		const char *name;
		const char *fmts;
		const char *lines;
		int pt; /* -1: the video is rejected */
	} cases[] = {
		{"42e01f mode 1 over 42001f and mode 0", "100 101 102",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=42e01f;packetization-mode=0\r\n"
		 "a=rtpmap:101 H264/90000\r\na=fmtp:101 profile-level-id=42001f;packetization-mode=1\r\n"
		 "a=rtpmap:102 H264/90000\r\na=fmtp:102 profile-level-id=42e01f;packetization-mode=1\r\n",
		 102},
		{"baseline over main", "100 101",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=4d001f;packetization-mode=1\r\n"
		 "a=rtpmap:101 H264/90000\r\na=fmtp:101 profile-level-id=42c01f;packetization-mode=1\r\n",
		 101},
		{"high when alone", "100",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=640032;packetization-mode=1\r\n",
		 100},
		{"no profile-level-id is baseline", "100 101",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=640032;packetization-mode=1\r\n"
		 "a=rtpmap:101 H264/90000\r\na=fmtp:101 packetization-mode=1\r\n",
		 101},
		{"first of a tier wins", "100 101",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=42001f;packetization-mode=1\r\n"
		 "a=rtpmap:101 H264/90000\r\na=fmtp:101 profile-level-id=42e00a;packetization-mode=1\r\n",
		 100},
		{"case-insensitive names and keys", "100",
		 "a=rtpmap:100 h264/90000\r\na=FMTP:100 Profile-Level-Id=42E01F; PACKETIZATION-MODE=1\r\n",
		 100},
		{"fmtp before rtpmap", "100",
		 "a=fmtp:100 packetization-mode=1\r\na=rtpmap:100 H264/90000\r\n", 100},
		{"VP8 over an earlier H264", "100 101",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=42e01f;packetization-mode=1\r\n"
		 "a=rtpmap:101 vp8/90000\r\n",
		 101},
		{"mode 0 only", "100",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=42e01f;packetization-mode=0\r\n",
		 -1},
		{"no fmtp: mode 0", "100", "a=rtpmap:100 H264/90000\r\n", -1},
		{"wrong clock", "100",
		 "a=rtpmap:100 H264/8000\r\na=fmtp:100 packetization-mode=1\r\n", -1},
		{"unsafe fmtp is dropped", "100",
		 "a=rtpmap:100 H264/90000\r\na=fmtp:100 packetization-mode=1;x=\"<a>\"\r\n", -1},
		{"VP9 and AV1 only", "98 45", "a=rtpmap:98 VP9/90000\r\na=rtpmap:45 AV1/90000\r\n", -1},
		{"rtpmap for a pt not on the m= line", "100",
		 "a=rtpmap:101 VP8/90000\r\na=rtpmap:100 H264/90000\r\n", -1},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct h264_case *c = &cases[i];
		char sdp[2048];
		vtp_sdp_offer *o;
		char *ans;

		snprintf(sdp, sizeof(sdp), "%s%s%s%s", SESSION, AUDIO,
			 "m=video 9 UDP/TLS/RTP/SAVPF ", c->fmts);
		snprintf(sdp + strlen(sdp), sizeof(sdp) - strlen(sdp),
			 "\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\n%s", c->lines);
		o = parse_ok(sdp);
		CHECK(chosen_pt(&o->media[1]) == c->pt);
		CHECK(o->accepted == (c->pt >= 0 ? 2 : 1));
		ans = answer_of(o);
		if (c->pt >= 0 && o->media[1].codecs[o->media[1].chosen].fmtp[0]) {
			char want[600];

			/* the offered fmtp is echoed as it was */
			snprintf(want, sizeof(want), "a=fmtp:%d %s", c->pt,
				 o->media[1].codecs[o->media[1].chosen].fmtp);
			CHECK(count_lines(ans, want) == 1);
		}
		if (c->pt < 0)
			CHECK(strstr(ans, "m=video 0 UDP/TLS/RTP/SAVPF ") != NULL);
		check_parses_back(o, ans);
		vtp_free(ans);
		vtp_free(o);
	}
}

/* Sections the recorder does not take are answered with port 0, in their
 * place, keeping their mid and formats. */
static void test_rejected_sections(void **state)
{
	static const char sdp[] =
		V0 OST "a=group:BUNDLE d a1 v1 a2 v2 a3\r\n" ICE FP SETUP
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:d\r\n"
		"a=sctp-port:5000\r\n"
		MEDIA("audio", "a1", "0 8") "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:v1\r\na=recvonly\r\n"
		"a=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
		MEDIA("audio", "a2", "111") "a=rtpmap:111 opus/48000/2\r\n"
		MEDIA("video", "v2", "96 97") "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n"
		"a=fmtp:97 apt=96\r\n"
		MEDIA("audio", "a3", "111") "a=rtpmap:111 opus/48000/2\r\n"
		"m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\n"
		"a=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n";
	static const char *const want[] = {
		"m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 192.0.2.1\r\na=mid:d\r\n",
		"m=audio 0 UDP/TLS/RTP/SAVPF 0 8\r\nc=IN IP4 192.0.2.1\r\na=mid:a1\r\n",
		"m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 192.0.2.1\r\na=mid:v1\r\n",
		NULL,
		NULL,
		"m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 192.0.2.1\r\na=mid:a3\r\n",
		"m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 192.0.2.1\r\n",
	};
	static const char *const reasons[] = {
		"not audio or video", "no opus/48000/2",
		"the offerer does not send (recvonly or inactive)", NULL, NULL,
		"a second audio section", "port 0 in the offer",
	};
	vtp_sdp_offer *o = parse_ok(sdp);
	char *ans = answer_of(o);

	assert_int_equal(o->nmedia, 7);
	assert_int_equal(o->accepted, 2);
	assert_int_equal(chosen_pt(&o->media[3]), 111);
	assert_int_equal(chosen_pt(&o->media[4]), 96);
	assert_int_equal(count_lines(ans, "a=group:BUNDLE a2 v2"), 1);
	for (int i = 0; i < o->nmedia; i++) {
		char *sec = answer_section(ans, i);

		if (want[i])
			assert_string_equal(sec, want[i]);
		else
			assert_non_null(strstr(sec, " 40000 UDP/TLS/RTP/SAVPF "));
		if (reasons[i])
			assert_string_equal(o->media[i].reject_reason, reasons[i]);
		else
			assert_null(o->media[i].reject_reason);
		vtp_free(sec);
	}
	check_parses_back(o, ans);
	vtp_free(ans);
	vtp_free(o);
}

/* One section alone needs no BUNDLE; the answer then has no group. */
static void test_single_section(void **state)
{
	static const char *const offers[] = {
		V0 OST ICE FP SETUP AUDIO,
		V0 OST ICE FP SETUP VIDEO,
		V0 OST ICE FP SETUP MEDIA("audio", "0", "111") "a=rtpmap:111 opus/48000/2\r\n"
			"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=inactive\r\n"
			"a=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n",
		/* RFC 8858's rtcp-mux-only alone is taken as rtcp-mux */
		V0 OST ICE FP SETUP "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n"
			"a=rtcp-mux-only\r\na=rtpmap:111 opus/48000/2\r\n",
	};

	for (size_t i = 0; i < ARRAY_LEN(offers); i++) {
		vtp_sdp_offer *o = parse_ok(offers[i]);
		char *ans = answer_of(o);

		assert_int_equal(o->accepted, 1);
		assert_string_equal(o->bundle, "");
		assert_null(strstr(ans, "a=group"));
		check_parses_back(o, ans);
		vtp_free(ans);
		vtp_free(o);
	}
}

/* LF line ends, upper-case attribute names and values, blanks, session-level
 * direction, wildcard feedback, several fingerprints, blank lines. */
static void test_lenient(void **state)
{
	static const char sdp[] =
		"v=0\n"
		"o=- 1 1 IN IP4 0.0.0.0\n"
		"s=\n"
		"t=0 0\n"
		"a=group:BUNDLE a v\n"
		"a=SENDONLY\n"
		"a=x-unknown-attribute:with:colons and spaces\n"
		"b=AS:2000\n"
		"a=Fingerprint:SHA-1 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33\n"
		"a=fingerprint:md5 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n"
		"a=fingerprint:sha-256 " FP32 "\n"
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 \n"
		"c=IN IP4 0.0.0.0\n"
		"a=MID:a\n"
		"a=ICE-UFRAG:ab+/\n"
		"a=ice-pwd:ABCDEFGHIJKLMNOPQRSTUV\n"
		"a=Setup:ACTIVE\n"
		"a=RTCP-MUX\n"
		"a=RTPMAP:111 OPUS/48000/2\n"
		"a=fmtp:111 sprop-stereo=1\n"
		"\n"
		"m=video 9 UDP/TLS/RTP/SAVPF 96\n"
		"c=IN IP4 0.0.0.0\n"
		"a=mid:v\n"
		"a=ice-ufrag:ab+/\n"
		"a=ice-pwd:ABCDEFGHIJKLMNOPQRSTUV\n"
		"a=setup:active\n"
		"a=rtcp-mux\n"
		"a=rtpmap:96  VP8/90000\n"
		"a=rtcp-fb:* nack\n"
		"a=rtcp-fb:* CCM FIR\n"
		"a=rtcp-fb:96 nack PLI\n"
		"a=rtcp-fb:96 nack sli\n"
		"\n";
	vtp_sdp_offer *o = parse_ok(sdp);
	char *ans = answer_of(o);
	const vtp_sdp_codec *v;

	assert_int_equal(o->accepted, 2);
	assert_int_equal(o->media[0].direction, VTP_SDP_SENDONLY);
	assert_string_equal(o->ice_ufrag, "ab+/");
	assert_string_equal(o->setup, "active");
	/* the strongest supported hash */
	assert_string_equal(o->fingerprint_alg, "sha-256");
	assert_int_equal(o->fingerprint_len, 32);
	v = &o->media[1].codecs[0];
	assert_true(v->nack && v->nack_pli && v->ccm_fir && !v->goog_remb);
	assert_int_equal(count_lines(ans, "a=fmtp:111 minptime=10;useinbandfec=1;stereo=1"), 1);
	assert_int_equal(count_lines(ans, "a=rtcp-fb:96 nack"), 1);
	assert_int_equal(count_lines(ans, "a=rtcp-fb:96 nack pli"), 1);
	assert_int_equal(count_lines(ans, "a=rtcp-fb:96 ccm fir"), 1);
	assert_int_equal(count_prefix(ans, "a=rtcp-fb:"), 3);
	check_parses_back(o, ans);
	vtp_free(ans);
	vtp_free(o);
}

/* a=ssrc: distinct ids, first seen first, at most VTP_SDP_MAX_SSRCS. */
static void test_ssrcs(void **state)
{
	char sdp[4096];
	vtp_sdp_offer *o;
	size_t n;

	n = (size_t)snprintf(sdp, sizeof(sdp), "%s", GOOD);
	for (unsigned i = 0; i < 12; i++)
		for (int k = 0; k < 2; k++)
			n += (size_t)snprintf(sdp + n, sizeof(sdp) - n, "a=ssrc:%u %s\r\n",
					      i == 0 ? 4294967295u : 1000 + i,
					      k ? "msid:x y" : "cname:c");
	o = parse_ok(sdp);
	assert_int_equal(o->media[1].nssrcs, VTP_SDP_MAX_SSRCS);
	assert_int_equal(o->media[1].ssrcs[0], 4294967295u);
	assert_int_equal(o->media[1].ssrcs[1], 1001);
	assert_int_equal(o->media[1].ssrcs[7], 1007);
	assert_int_equal(o->media[0].nssrcs, 0);
	vtp_free(o);
}

/* Past VTP_SDP_MAX_CODECS codecs are ignored, not refused; codecs that are
 * never chosen (rtx, red, fec, CN, DTMF) give way first. */
static void test_codec_cap(void **state)
{
	char sdp[16384], fmts[1024] = "", maps[12288] = "";
	size_t f = 0, m = 0;
	vtp_sdp_offer *o;

	/* 60 rtx, then VP8 */
	for (int pt = 30; pt < 90; pt++) {
		f += (size_t)snprintf(fmts + f, sizeof(fmts) - f, "%d ", pt);
		m += (size_t)snprintf(maps + m, sizeof(maps) - m,
				      "a=rtpmap:%d rtx/90000\r\na=fmtp:%d apt=96\r\n", pt, pt);
	}
	snprintf(sdp, sizeof(sdp), "%s%s%s%s96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
		 "a=rtcp-mux\r\n%sa=rtpmap:96 VP8/90000\r\n", SESSION, AUDIO,
		 "m=video 9 UDP/TLS/RTP/SAVPF ", fmts, maps);
	o = parse_ok(sdp);
	assert_int_equal(o->media[1].ncodecs, VTP_SDP_MAX_CODECS);
	assert_int_equal(chosen_pt(&o->media[1]), 96);
	assert_int_equal(o->media[1].codecs[0].pt, 30);                     /* m= order */
	assert_int_equal(o->media[1].codecs[VTP_SDP_MAX_CODECS - 1].pt, 96);
	vtp_free(o);

	/* 60 codecs that could be chosen, VP8 the 61st: beyond the cap */
	f = m = 0;
	for (int pt = 30; pt < 90; pt++) {
		f += (size_t)snprintf(fmts + f, sizeof(fmts) - f, "%d ", pt);
		m += (size_t)snprintf(maps + m, sizeof(maps) - m, "a=rtpmap:%d VP9/90000\r\n", pt);
	}
	snprintf(sdp, sizeof(sdp), "%s%s%s%s96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
		 "a=rtcp-mux\r\n%sa=rtpmap:96 VP8/90000\r\n", SESSION, AUDIO,
		 "m=video 9 UDP/TLS/RTP/SAVPF ", fmts, maps);
	o = parse_ok(sdp);
	assert_int_equal(o->media[1].ncodecs, VTP_SDP_MAX_CODECS);
	assert_int_equal(o->media[1].chosen, -1);
	assert_int_equal(o->accepted, 1);
	vtp_free(o);
}

/* ---- refused offers --------------------------------------------------------------- */

#define NO_BUNDLE V0 OST ICE FP SETUP

static void test_bad_offers(void **state)
{
	static const struct bad_case {
		const char *name;
		const char *sdp;
		const char *why; /* a part of the reason */
	} cases[] = {
		{"garbage", "hello, world\r\n", "not SDP: the first line must be v=0"},
		{"no v=", OST AUDIO, "not SDP: the first line must be v=0"},
		{"v=1", "v=1\r\n" OST AUDIO, "not SDP"},
		{"only v=", "v=0\r\n", "o=, s= and t= are required"},
		{"no o=", V0 "s=-\r\nt=0 0\r\n" ICE FP SETUP AUDIO, "m= before the o=, s= and t="},
		{"no t=", V0 "o=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n" ICE FP SETUP AUDIO,
		 "m= before the o=, s= and t="},
		{"short o=", V0 "o=- 1 1 IN IP4\r\ns=-\r\nt=0 0\r\n" AUDIO, "o= needs 6 fields"},
		{"bad t=", V0 "o=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=now\r\n" AUDIO, "t= needs"},
		{"second v=", GOOD "v=0\r\n", "a second v= line"},
		{"o= in a section", GOOD "o=- 1 1 IN IP4 0.0.0.0\r\n", "o= inside an m= section"},
		{"not type=value", V0 OST "hello\r\n" AUDIO, "line 5: not a <type>=<value> line"},
		{"no m=", V0 OST ICE FP SETUP, "no m= sections"},
		{"no ice-ufrag", V0 OST "a=group:BUNDLE 0 1\r\na=ice-pwd:0123456789012345678901\r\n"
		 FP SETUP AUDIO VIDEO, "no a=ice-ufrag"},
		{"no ice-pwd", V0 OST "a=group:BUNDLE 0 1\r\na=ice-ufrag:abcd\r\n" FP SETUP AUDIO VIDEO,
		 "no a=ice-pwd"},
		{"short ice-ufrag", V0 OST "a=ice-ufrag:abc\r\n" AUDIO,
		 "line 5: a=ice-ufrag: 3 characters, needs 4 to 256"},
		{"short ice-pwd", V0 OST "a=ice-pwd:012345678901234567890\r\n" AUDIO,
		 "a=ice-pwd: 21 characters, needs 22 to 256"},
		{"bad ice-pwd characters", V0 OST "a=ice-pwd:0123456789012345678901-!\r\n" AUDIO,
		 "a=ice-pwd: characters other than A-Z a-z 0-9 + /"},
		{"bad ice-ufrag characters", V0 OST "a=ice-ufrag:ab:cd\r\n" AUDIO,
		 "a=ice-ufrag: characters other than"},
		{"passive", V0 OST ICE FP "a=setup:passive\r\n" AUDIO,
		 "a=setup:passive offers are not supported; offer actpass"},
		{"passive in a section", GOOD "a=setup:passive\r\n", "a=setup:passive"},
		{"holdconn", V0 OST ICE FP "a=setup:holdconn\r\n" AUDIO, "a=setup:holdconn"},
		{"unknown setup", V0 OST ICE FP "a=setup:both\r\n" AUDIO, "a=setup: unknown role"},
		{"no fingerprint", V0 OST ICE SETUP AUDIO, "no a=fingerprint"},
		{"md5 fingerprint", V0 OST ICE SETUP
		 "a=fingerprint:md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" AUDIO,
		 "a=fingerprint: unsupported hash md5"},
		{"short fingerprint", V0 OST ICE SETUP "a=fingerprint:sha-256 00:11:22\r\n" AUDIO,
		 "a=fingerprint: sha-256 needs 32 bytes"},
		{"long fingerprint", V0 OST ICE SETUP "a=fingerprint:sha-256 " FP32 ":00\r\n" AUDIO,
		 "needs 32 bytes"},
		{"fingerprint bad hex", V0 OST ICE SETUP
		 "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:GG\r\n"
		 AUDIO, "a=fingerprint: sha-1 needs 20 bytes"},
		{"fingerprint trailing colon", V0 OST ICE SETUP
		 "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:\r\n"
		 AUDIO, "needs 20 bytes"},
		{"fingerprint without digest", V0 OST ICE SETUP "a=fingerprint:sha-256\r\n" AUDIO,
		 "a=fingerprint: expected"},
		{"audio with only PCMU", NO_BUNDLE MEDIA("audio", "0", "0") "a=rtpmap:0 PCMU/8000\r\n",
		 "nothing to record: m=audio (section 1): no opus/48000/2"},
		{"opus mono", NO_BUNDLE MEDIA("audio", "0", "111") "a=rtpmap:111 opus/48000\r\n",
		 "no opus/48000/2"},
		{"multiple sections without BUNDLE", NO_BUNDLE AUDIO VIDEO,
		 "audio and video must be in one a=group:BUNDLE"},
		{"video outside the BUNDLE group",
		 V0 OST "a=group:BUNDLE 0\r\n" ICE FP SETUP AUDIO VIDEO, "one a=group:BUNDLE"},
		{"bundled sections with different ufrags", V0 OST "a=group:BUNDLE 0 1\r\n" FP SETUP
		 AUDIO "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"
		 VIDEO "a=ice-ufrag:efgh\r\na=ice-pwd:0123456789012345678901\r\n",
		 "different ICE credentials"},
		{"bundled sections with different fingerprints", V0 OST "a=group:BUNDLE 0 1\r\n" ICE
		 SETUP AUDIO FP VIDEO "a=fingerprint:sha-1 "
		 "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33\r\n",
		 "different fingerprints"},
		{"only recvonly", NO_BUNDLE "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n"
		 "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n", "does not send"},
		{"session-level inactive", V0 OST ICE FP SETUP "a=inactive\r\n"
		 "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n",
		 "does not send"},
		{"no rtcp-mux", NO_BUNDLE "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n"
		 "a=rtpmap:111 opus/48000/2\r\n", "no a=rtcp-mux"},
		{"port 0", NO_BUNDLE "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n"
		 "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n", "port 0 in the offer"},
		{"bundle-only outside a group", NO_BUNDLE "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n"
		 "a=mid:0\r\na=bundle-only\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n",
		 "bundle-only outside a=group:BUNDLE"},
		{"datachannel only", NO_BUNDLE "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
		 "nothing to record: no audio or video m= section"},
		{"plain RTP", NO_BUNDLE "m=audio 9 RTP/AVP 111\r\n",
		 "m=audio: proto RTP/AVP is not supported; offer UDP/TLS/RTP/SAVPF"},
		{"SDES-SRTP", NO_BUNDLE "m=video 9 RTP/SAVPF 96\r\n", "proto RTP/SAVPF"},
		{"format not a payload type", NO_BUNDLE "m=video 9 UDP/TLS/RTP/SAVPF 96 vp8\r\n",
		 "m=video: format vp8 is not a payload type 0-127"},
		{"payload type 128", NO_BUNDLE "m=video 9 UDP/TLS/RTP/SAVPF 128\r\n",
		 "not a payload type"},
		{"no formats", NO_BUNDLE "m=video 9 UDP/TLS/RTP/SAVPF\r\n", "m=video: no formats"},
		{"no proto", NO_BUNDLE "m=video 9\r\n", "m=video: no usable proto"},
		{"port 65536", NO_BUNDLE "m=video 65536 UDP/TLS/RTP/SAVPF 96\r\n",
		 "the port is not a number 0-65535"},
		{"negative port", NO_BUNDLE "m=video -1 UDP/TLS/RTP/SAVPF 96\r\n", "the port"},
		{"port count garbage", NO_BUNDLE "m=video 9/x UDP/TLS/RTP/SAVPF 96\r\n", "the port"},
		{"media name too long", NO_BUNDLE "m=audioaudioaudioaudio 9 RTP/AVP 0\r\n",
		 "m=: the media is not"},
		{"duplicate mid", GOOD MEDIA("video", "1", "96"), "a=mid:1 is used by two m= sections"},
		{"second mid", GOOD "a=mid:2\r\n", "a second a=mid"},
		{"mid with a quote", NO_BUNDLE "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\"b\r\n",
		 "a=mid: not 1 to 32 token characters"},
		{"mid too long", NO_BUNDLE "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
		 "a=mid:0123456789012345678901234567890123\r\n", "a=mid: not 1 to 32"},
		{"bad mid in BUNDLE", V0 OST "a=group:BUNDLE 0 <1>\r\n" AUDIO, "a=group:BUNDLE: a mid"},
		{"rtpmap without clock", NO_BUNDLE MEDIA("video", "1", "96") "a=rtpmap:96 VP8\r\n",
		 "a=rtpmap: expected"},
		{"rtpmap clock 0", NO_BUNDLE MEDIA("video", "1", "96") "a=rtpmap:96 VP8/0\r\n",
		 "a=rtpmap: expected"},
		{"rtpmap pt 300", NO_BUNDLE MEDIA("video", "1", "96") "a=rtpmap:300 VP8/90000\r\n",
		 "a=rtpmap: expected"},
		{"rtpmap channels 0", NO_BUNDLE MEDIA("audio", "0", "111")
		 "a=rtpmap:111 opus/48000/0\r\n", "a=rtpmap: expected"},
		{"ssrc too big", GOOD "a=ssrc:4294967296 cname:x\r\n",
		 "a=ssrc: the id is not a number 0-4294967295"},
		{"ssrc not a number", GOOD "a=ssrc:abc cname:x\r\n", "a=ssrc:"},
		{"attribute without a name", GOOD "a=:x\r\n", "a= line without an attribute name"},
		{"control character", V0 OST "s=a\x01" "b\r\n" AUDIO, "control character 0x01"},
		{"bare CR inside a line", V0 OST "a=tool:x\ry\r\n" AUDIO, "control character 0x0d"},
		{"DEL", V0 OST "a=tool:x\x7f\r\n" AUDIO, "control character 0x7f"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct bad_case *c = &cases[i];
		vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
		char why[WHY_LEN];
		int rc = parse(c->sdp, strlen(c->sdp), o, why);

		if (rc != VTP_EINVAL)
			fail_msg("case \"%s\": rc %d", c->name, rc);
		if (!strstr(why, c->why))
			fail_msg("case \"%s\": reason \"%s\", expected \"%s\"", c->name, why, c->why);
		vtp_free(o);
	}
}

static void expect_refused(const char *sdp, size_t len, const char *reason)
{
	vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
	char why[WHY_LEN];

	assert_int_equal(parse(sdp, len, o, why), VTP_EINVAL);
	if (!strstr(why, reason))
		fail_msg("reason \"%s\", expected \"%s\"", why, reason);
	vtp_free(o);
}

static int lines_in(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_limits(void **state)
{
	char *big = vtp_malloc(VTP_SDP_MAX_BYTES + 2);
	char why[64];
	size_t n;
	vtp_buf b;

	/* NUL bytes, anywhere */
	expect_refused(GOOD, sizeof(GOOD), "NUL byte in the offer");
	expect_refused("v=0\0\r\n", 6, "NUL byte");
	expect_refused("", 0, "empty offer");
	expect_refused(NULL, 0, "empty offer");

	/* a line of 4096 bytes with its CRLF is fine, one more is not */
	n = (size_t)snprintf(big, VTP_SDP_MAX_BYTES, "%s", GOOD "a=x-long:");
	memset(big + n, 'x', 4096 - 2 - strlen("a=x-long:"));
	n += 4096 - 2 - strlen("a=x-long:");
	memcpy(big + n, "\r\n", 3);
	vtp_free(parse_ok(big));
	memcpy(big + n, "x\r\n", 4);
	snprintf(why, sizeof(why), "line %d: longer than 4096 bytes", lines_in(GOOD) + 1);
	expect_refused(big, n + 3, why);
	/* the last line, without a line end */
	memset(big + n, 'x', 3);
	expect_refused(big, n + 3, "longer than 4096 bytes");

	/* the whole offer */
	vtp_buf_init(&b, VTP_SDP_MAX_BYTES + 100);
	assert_int_equal(vtp_buf_appends(&b, GOOD), 0);
	while (b.len <= VTP_SDP_MAX_BYTES)
		assert_int_equal(vtp_buf_appends(&b, "a=x-filler:0123456789012345678901234567\r\n"), 0);
	expect_refused(b.data, b.len, "larger than 65536 bytes");
	vtp_buf_reset(&b);

	/* VTP_SDP_MAX_MEDIA sections are fine, one more is not */
	assert_int_equal(vtp_buf_appends(&b, GOOD), 0);
	for (int i = 2; i < VTP_SDP_MAX_MEDIA; i++)
		assert_int_equal(vtp_buf_appendf(&b, "m=application 0 UDP/DTLS/SCTP x\r\na=mid:m%d\r\n",
						 i), 0);
	vtp_free(parse_ok(b.data));
	assert_int_equal(vtp_buf_appends(&b, "m=text 0 UDP/TLS/RTP/SAVPF 96\r\n"), 0);
	expect_refused(b.data, b.len, "more than 16 m= sections");
	vtp_buf_free(&b);
	vtp_free(big);
}

/* The reason always fits the buffer it is given, even a tiny one. */
static void test_reason_buffer(void **state)
{
	vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
	char why[8];

	memset(why, 'z', sizeof(why));
	assert_int_equal(vtp_sdp_parse_offer("x", 1, o, why, sizeof(why)), VTP_EINVAL);
	assert_string_equal(why, "line 1:");
	assert_int_equal(vtp_sdp_parse_offer("x", 1, o, why, 1), VTP_EINVAL);
	assert_string_equal(why, "");
	assert_int_equal(vtp_sdp_parse_offer("x", 1, o, NULL, 0), VTP_EINVAL);
	memset(why, 'z', sizeof(why));
	assert_int_equal(vtp_sdp_parse_offer(GOOD, strlen(GOOD), o, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	vtp_free(o);
}

/* Nothing but checked tokens travels from the offer into the answer. */
static void test_no_injection(void **state)
{
	static const char sdp[] =
		V0 OST "a=group:BUNDLE 0 1\r\n" ICE FP SETUP AUDIO
		"a=fmtp:111 stereo=1;x=<script>\r\n"
		MEDIA("video", "1", "100") "a=rtpmap:100 H264/90000\r\n"
		"a=fmtp:100 packetization-mode=1;sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==\r\n"
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:{x|y}\r\n";
	vtp_sdp_offer *o = parse_ok(sdp);
	char *ans = answer_of(o);

	/* the audio fmtp had a '<': dropped, so no stereo either */
	assert_string_equal(o->media[0].codecs[0].fmtp, "");
	assert_int_equal(count_lines(ans, "a=fmtp:111 minptime=10;useinbandfec=1"), 1);
	assert_int_equal(count_lines(ans, "a=fmtp:100 packetization-mode=1;"
				     "sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA=="), 1);
	assert_int_equal(count_lines(ans, "a=mid:{x|y}"), 1);
	for (const char *p = ans; *p; p++)
		assert_true((*p >= 0x20 && *p < 0x7f) || (*p == '\r' && p[1] == '\n') ||
			    (*p == '\n' && p > ans && p[-1] == '\r'));
	vtp_free(ans);
	vtp_free(o);
}

/* The answer reaches the caller's buffer whole or not at all. */
static void test_answer_all_or_nothing(void **state)
{
	vtp_sdp_offer *o = parse_ok(GOOD);
	vtp_buf b;

	vtp_buf_init(&b, 200);
	assert_int_equal(vtp_buf_appends(&b, "kept"), 0);
	vtp_sdp_write_answer(o, &PARAMS, &b);
	assert_int_equal(b.len, 4);
	vtp_buf_free(&b);
	vtp_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_chrome_details),
		cmocka_unit_test(test_gstreamer),
		cmocka_unit_test(test_good_synthetic),
		cmocka_unit_test(test_h264_preference),
		cmocka_unit_test(test_rejected_sections),
		cmocka_unit_test(test_single_section),
		cmocka_unit_test(test_lenient),
		cmocka_unit_test(test_ssrcs),
		cmocka_unit_test(test_codec_cap),
		cmocka_unit_test(test_bad_offers),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_reason_buffer),
		cmocka_unit_test(test_no_injection),
		cmocka_unit_test(test_answer_all_or_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
