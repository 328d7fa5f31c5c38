/* WHIP load generator and probe: N publishers that each do what a browser
 * does against the recorder (POST an offer, ICE connectivity checks as
 * the controlling agent, a DTLS-SRTP handshake as the client, then SRTP
 * audio at 50 packets/s and video at a set bitrate, consent checks every
 * 5 s, DELETE at the end), all in one thread over epoll.
 *
 *   whipgen --url http://127.0.0.1:8080/whip/rooms/ROOM --token JWT
 *           [--sessions N] [--seconds S] [--video-kbps K] [--profile gcm|cm]
 *           [--tamper N] [--bad-stun N] [--lose N] [--keep]
 *
 * Media is synthetic: random payloads in VP8 and Opus framing (the
 * recorder captures packets; it does not decode them). --tamper sends
 * N extra SRTP packets with a flipped byte after the first second, and
 * --bad-stun N Binding requests with a wrong password: the server must drop
 * and count both. --lose N skips every Nth video packet (its sequence
 * number is used up), as a lossy network would: the server must NACK it
 * and, as it never comes, ask for a keyframe. Prints one JSON line: sessions set up and connected, the
 * median set-up time (POST to SRTP keys), packets sent, RTCP feedback
 * received by type, and each session's Location (--keep leaves the sessions
 * running for the caller to end). Exits 1 when a session fails to connect. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/bytes.h"
#include "core/random.h"
#include "ingest/dtls.h"
#include "rtp/rtp.h"
#include "ingest/stun.h"

#define PKT 1500
#define AUDIO_PT 111
#define VIDEO_PT 96

typedef struct sess {
	int fd;
	char ufrag[9], pwd[33];
	char srv_ufrag[257], srv_pwd[257];
	char location[1024];
	struct sockaddr_in to;
	vtp_dtls *dtls;
	vtp_srtp *srtp;
	bool checked, connected, failed;
	bool dtls_server;       /* the answer said a=setup:active (a full ICE answerer) */
	uint64_t t_post, t_connected, next_check, next_audio, next_video, start;
	uint32_t assrc, vssrc;
	uint16_t aseq, vseq;
	uint32_t ats, vts;
	int tampered, bad_stun_sent;
} sess;

static struct {
	const char *url, *token, *profile;
	int sessions, seconds, video_kbps, tamper, bad_stun, lose;
	bool keep;
	uint64_t sent_pkts, sent_bytes;
	uint64_t fb_rr, fb_pli, fb_fir, fb_nack, fb_remb, fb_other, stun_errors;
} g;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct http_out {
	vtp_buf body;
	char location[1024];
} http_out;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	http_out *o = arg;

	vtp_buf_append(&o->body, p, size * n);
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	http_out *o = arg;
	size_t len = size * n;

	if (len > 10 && strncasecmp(p, "Location:", 9) == 0) {
		size_t k = 9;

		while (k < len && p[k] == ' ')
			k++;
		size_t e = len;
		while (e > k && (p[e - 1] == '\r' || p[e - 1] == '\n'))
			e--;
		snprintf(o->location, sizeof(o->location), "%.*s", (int)(e - k), p + k);
	}
	return len;
}

static long http(const char *method, const char *url, const char *body, http_out *o)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char auth[4096];
	long status = 0;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", g.token);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/sdp");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, o);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, o);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

/* ---- one session ------------------------------------------------------------- */

static void send_raw(sess *s, const uint8_t *p, size_t n)
{
	if (send(s->fd, p, n, MSG_DONTWAIT) == (ssize_t)n) {
		g.sent_pkts++;
		g.sent_bytes += n;
	}
}

static void dtls_out(void *arg, const uint8_t *p, size_t n)
{
	send_raw(arg, p, n);
}

static void send_check(sess *s, bool wrong_pwd)
{
	uint8_t out[640], txid[12];
	char user[600];
	size_t n;
	uint64_t tie;

	vtp_random_bytes(txid, sizeof(txid));
	vtp_random_bytes(&tie, sizeof(tie));
	snprintf(user, sizeof(user), "%s:%s", s->srv_ufrag, s->ufrag);
	n = vtp_stun_build_request(out, sizeof(out), txid, user,
				   wrong_pwd ? "not-the-password-at-all" : s->srv_pwd,
				   wrong_pwd ? 23 : strlen(s->srv_pwd), 0x6e7f00ff, tie, true);
	send_raw(s, out, n);
}

static bool line_value(const char *sdp, const char *key, char *out, size_t outlen)
{
	const char *p = strstr(sdp, key);
	size_t k = 0;

	if (!p)
		return false;
	p += strlen(key);
	while (*p && *p != '\r' && *p != '\n' && k + 1 < outlen)
		out[k++] = *p++;
	out[k] = '\0';
	return k > 0;
}

/* "AB:CD:..." into bytes; the count, 0 when malformed. */
static size_t parse_fp(const char *text, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*text && n < cap) {
		unsigned v;

		if (sscanf(text, "%2x", &v) != 1)
			return 0;
		out[n++] = (uint8_t)v;
		text += 2;
		if (*text == ':')
			text++;
		else if (*text)
			return 0;
	}
	return n;
}

/* The first UDP candidate of the answer: "<addr> <port>" into ip, port. */
static bool udp_candidate(const char *sdp, char *ip, size_t iplen, int *port)
{
	for (const char *p = strstr(sdp, "a=candidate:"); p; p = strstr(p + 1, "a=candidate:")) {
		char proto[16], addr[64];
		int prt;

		if (sscanf(p, "a=candidate:%*s %*s %15s %*s %63s %d", proto, addr, &prt) == 3 &&
		    strcasecmp(proto, "udp") == 0 && strchr(addr, ':') == NULL) {
			snprintf(ip, iplen, "%s", addr);
			*port = prt;
			return true;
		}
	}
	return false;
}

static int setup(sess *s, vtp_dtls_ctx *ctx, const char *fp)
{
	char offer[4096], cand[256], ip[64], srv_fp[256], role[32];
	uint8_t fpb[64];
	size_t fplen;
	http_out o;
	long st;
	int port;

	vtp_random_hex(s->ufrag, 4);
	vtp_random_hex(s->pwd, 16);
	vtp_random_bytes(&s->assrc, 4);
	vtp_random_bytes(&s->vssrc, 4);
	snprintf(offer, sizeof(offer),
		 "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
		 "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n"
		 "m=audio 9 UDP/TLS/RTP/SAVPF %d\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
		 "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\n"
		 "a=fingerprint:sha-256 %s\r\na=setup:actpass\r\na=mid:0\r\na=sendonly\r\n"
		 "a=rtcp-mux\r\na=rtpmap:%d opus/48000/2\r\na=rtcp-fb:%d transport-cc\r\n"
		 "a=fmtp:%d minptime=10;useinbandfec=1\r\na=ssrc:%u cname:whipgen\r\n"
		 "m=video 9 UDP/TLS/RTP/SAVPF %d\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
		 "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\n"
		 "a=fingerprint:sha-256 %s\r\na=setup:actpass\r\na=mid:1\r\na=sendonly\r\n"
		 "a=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:%d VP8/90000\r\na=rtcp-fb:%d goog-remb\r\n"
		 "a=rtcp-fb:%d ccm fir\r\na=rtcp-fb:%d nack\r\na=rtcp-fb:%d nack pli\r\n"
		 "a=ssrc:%u cname:whipgen\r\n",
		 AUDIO_PT, s->ufrag, s->pwd, fp, AUDIO_PT, AUDIO_PT, AUDIO_PT, s->assrc, VIDEO_PT,
		 s->ufrag, s->pwd, fp, VIDEO_PT, VIDEO_PT, VIDEO_PT, VIDEO_PT, VIDEO_PT, s->vssrc);
	vtp_buf_init(&o.body, 65536);
	o.location[0] = '\0';
	s->t_post = now_ns();
	st = http("POST", g.url, offer, &o);
	if (st != 201 || !o.body.data) {
		fprintf(stderr, "whipgen: POST answered %ld: %s\n", st, o.body.data ? o.body.data : "");
		vtp_buf_free(&o.body);
		return -1;
	}
	snprintf(s->location, sizeof(s->location), "%s", o.location);
	if (!line_value(o.body.data, "a=ice-ufrag:", s->srv_ufrag, sizeof(s->srv_ufrag)) ||
	    !line_value(o.body.data, "a=ice-pwd:", s->srv_pwd, sizeof(s->srv_pwd)) ||
	    !line_value(o.body.data, "a=candidate:", cand, sizeof(cand)) ||
	    !udp_candidate(o.body.data, ip, sizeof(ip), &port) ||
	    !line_value(o.body.data, "a=fingerprint:sha-256 ", srv_fp, sizeof(srv_fp)) ||
	    (fplen = parse_fp(srv_fp, fpb, sizeof(fpb))) != 32) {
		fprintf(stderr, "whipgen: the answer lacks ICE credentials or a candidate\n");
		vtp_buf_free(&o.body);
		return -1;
	}
	s->dtls_server = line_value(o.body.data, "a=setup:", role, sizeof(role)) &&
			 strcmp(role, "active") == 0;
	vtp_buf_free(&o.body);
	s->to.sin_family = AF_INET;
	s->to.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &s->to.sin_addr);
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&s->to, sizeof(s->to)) != 0) {
		perror("whipgen: socket");
		return -1;
	}
	s->dtls = vtp_dtls_new(ctx, s->dtls_server ? VTP_DTLS_SERVER : VTP_DTLS_CLIENT, "sha-256",
			       fpb, fplen);
	if (!s->dtls)
		return -1;
	send_check(s, false);
	s->next_check = now_ns() + 200000000ULL;
	return 0;
}

static void on_feedback(uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off + 4 <= n) {
		size_t len = ((size_t)(p[off + 2] << 8 | p[off + 3]) + 1) * 4;
		int pt = p[off + 1], fmt = p[off] & 31;

		if (off + len > n)
			break;
		if (pt == VTP_RTCP_RR)
			g.fb_rr++;
		else if (pt == VTP_RTCP_PSFB && fmt == 1)
			g.fb_pli++;
		else if (pt == VTP_RTCP_PSFB && fmt == 4)
			g.fb_fir++;
		else if (pt == VTP_RTCP_PSFB && fmt == 15)
			g.fb_remb++;
		else if (pt == VTP_RTCP_RTPFB && fmt == 1)
			g.fb_nack++;
		else
			g.fb_other++;
		off += len;
	}
}

static void on_datagram(sess *s, uint8_t *p, size_t n)
{
	if (n && p[0] <= 3) {
		vtp_stun_msg m;

		if (vtp_stun_parse(p, n, &m) != 0)
			return;
		if (m.type == VTP_STUN_BINDING_ERROR) {
			g.stun_errors++;
			return;
		}
		if (m.type == VTP_STUN_BINDING_REQUEST && m.integrity_at &&
		    vtp_stun_check_integrity(p, &m, s->pwd, strlen(s->pwd))) {
			/* a full ICE answerer checks us too (triggered checks) */
			uint8_t out[256];
			size_t len = vtp_stun_build_success(out, sizeof(out), m.txid,
							    (const struct sockaddr *)&s->to, s->pwd,
							    strlen(s->pwd));

			send_raw(s, out, len);
			return;
		}
		if (m.type == VTP_STUN_BINDING_SUCCESS &&
		    vtp_stun_check_integrity(p, &m, s->srv_pwd, strlen(s->srv_pwd)) && !s->checked) {
			s->checked = true;
			if (!s->dtls_server)
				vtp_dtls_start(s->dtls, dtls_out, s);
		}
		return;
	}
	if (n && p[0] >= 20 && p[0] <= 63) {
		int st = vtp_dtls_input(s->dtls, p, n, dtls_out, s);

		if (st == VTP_DTLS_CONNECTED && !s->connected) {
			s->srtp = vtp_srtp_new(s->dtls);
			s->connected = s->srtp != NULL;
			s->t_connected = now_ns();
			s->start = s->t_connected;
			s->next_audio = s->next_video = s->start;
		} else if (st == VTP_DTLS_FAILED) {
			fprintf(stderr, "whipgen: DTLS failed: %s\n", vtp_dtls_error(s->dtls));
			s->failed = true;
		}
		return;
	}
	if (n >= 8 && s->srtp && p[0] >= 128 && p[0] <= 191) {
		size_t len = n;

		if (vtp_srtp_unprotect_rtcp(s->srtp, p, &len) == VTP_SRTP_OK)
			on_feedback(p, len);
	}
}

static void send_srtp(sess *s, uint8_t *pkt, size_t n, bool tamper)
{
	if (vtp_srtp_protect_rtp(s->srtp, pkt, &n) != VTP_SRTP_OK)
		return;
	if (tamper)
		pkt[n - 1] ^= 0x5a; /* the last byte of the tag (or of GCM's) */
	send_raw(s, pkt, n);
}

static void rtp_header(uint8_t *p, int pt, bool marker, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
	p[0] = 0x80;
	p[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
	vtp_put_be16(p + 2, seq);
	vtp_put_be32(p + 4, ts);
	vtp_put_be32(p + 8, ssrc);
}


static void pump(sess *s, uint64_t now)
{
	uint8_t pkt[PKT + VTP_SRTP_MAX_TRAILER];

	if (!s->connected)
		return;
	while (now >= s->next_audio) { /* 20 ms of Opus: ~80 bytes at 32 kbit/s */
		rtp_header(pkt, AUDIO_PT, false, s->aseq++, s->ats, s->assrc);
		s->ats += 960;
		pkt[12] = 0xfc; /* TOC: CELT FB 20 ms, one frame */
		vtp_random_bytes(pkt + 13, 79);
		send_srtp(s, pkt, 92, false);
		s->next_audio += 20000000ULL;
	}
	while (now >= s->next_video) { /* one frame at 30 fps */
		size_t frame = (size_t)g.video_kbps * 1000 / 8 / 30, sent = 0;
		bool key = (s->vts / 3000) % 60 == 0;

		while (sent < frame) {
			size_t chunk = frame - sent > 1100 ? 1100 : frame - sent;

			rtp_header(pkt, VIDEO_PT, sent + chunk == frame, s->vseq++, s->vts, s->vssrc);
			pkt[12] = sent == 0 ? 0x10 : 0x00; /* VP8 descriptor: S bit on the first */
			vtp_random_bytes(pkt + 13, chunk);
			if (sent == 0)
				pkt[13] = key ? 0x00 : 0x01; /* VP8 header: keyframe bit */
			if (!g.lose || s->vseq % (uint16_t)g.lose != 0)
				send_srtp(s, pkt, 13 + chunk, false);
			sent += chunk;
		}
		s->vts += 3000;
		s->next_video += 33333333ULL;
	}
	if (s->tampered < g.tamper && now - s->start > 1000000000ULL) {
		for (; s->tampered < g.tamper; s->tampered++) {
			rtp_header(pkt, AUDIO_PT, false, s->aseq++, s->ats, s->assrc);
			s->ats += 960;
			memset(pkt + 12, 0xfc, 40);
			send_srtp(s, pkt, 52, true);
		}
	}
}

int main(int argc, char **argv)
{
	vtp_dtls_ctx *ctx;
	char err[256];
	sess *ss;
	int ep, connected = 0, failed = 0;
	uint64_t t0, deadline_connect, end;
	double *setup_ms;

	g.sessions = 1;
	g.seconds = 5;
	g.video_kbps = 1000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--keep")) {
			g.keep = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "whipgen: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--url"))
			g.url = v;
		else if (!strcmp(a, "--token"))
			g.token = v;
		else if (!strcmp(a, "--sessions"))
			g.sessions = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--seconds"))
			g.seconds = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--video-kbps"))
			g.video_kbps = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--profile"))
			g.profile = v;
		else if (!strcmp(a, "--tamper"))
			g.tamper = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--bad-stun"))
			g.bad_stun = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--lose"))
			g.lose = (int)strtol(v, NULL, 10);
		else {
			fprintf(stderr, "whipgen: unknown option %s\n", a);
			return 2;
		}
	}
	if (!g.url || !g.token || g.sessions < 1) {
		fprintf(stderr, "usage: whipgen --url URL --token JWT [--sessions N] [--seconds S] "
				"[--video-kbps K] [--profile gcm|cm] [--tamper N] [--bad-stun N] [--lose N] "
				"[--keep]\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ctx = !g.profile ? vtp_dtls_ctx_new(err, sizeof(err))
			 : vtp_dtls_ctx_new_with(!strcmp(g.profile, "cm") ? "SRTP_AES128_CM_SHA1_80"
									  : "SRTP_AEAD_AES_128_GCM",
						 err, sizeof(err));
	if (!ctx) {
		fprintf(stderr, "whipgen: %s\n", err);
		return 2;
	}
	ss = calloc((size_t)g.sessions, sizeof(*ss));
	setup_ms = calloc((size_t)g.sessions, sizeof(*setup_ms));
	ep = epoll_create1(EPOLL_CLOEXEC);
	t0 = now_ns();
	for (int i = 0; i < g.sessions; i++) {
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = &ss[i]};

		ss[i].fd = -1;
		if (setup(&ss[i], ctx, vtp_dtls_ctx_fingerprint(ctx)) != 0) {
			ss[i].failed = true;
			continue;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, ss[i].fd, &e);
	}
	deadline_connect = now_ns() + 15000000000ULL;
	end = 0;
	for (;;) {
		struct epoll_event evs[256];
		uint8_t buf[PKT + 64];
		uint64_t now;
		int n = epoll_wait(ep, evs, 256, 1);
		bool all = true;

		for (int i = 0; i < n; i++) {
			sess *s = evs[i].data.ptr;
			ssize_t got;

			while ((got = recv(s->fd, buf, PKT, MSG_DONTWAIT)) > 0)
				on_datagram(s, buf, (size_t)got);
		}
		now = now_ns();
		for (int i = 0; i < g.sessions; i++) {
			sess *s = &ss[i];

			if (s->failed || s->fd < 0)
				continue;
			if (!s->connected)
				all = false;
			if (now >= s->next_check) { /* retransmit until answered, then consent */
				send_check(s, false);
				s->next_check = now + (s->checked ? 5000000000ULL : 200000000ULL);
			}
			if (s->checked && !s->connected)
				vtp_dtls_tick(s->dtls, dtls_out, s);
			if (s->connected && s->bad_stun_sent < g.bad_stun) {
				for (; s->bad_stun_sent < g.bad_stun; s->bad_stun_sent++)
					send_check(s, true);
			}
			pump(s, now);
		}
		if (!end && (all || now > deadline_connect)) {
			end = now + (uint64_t)g.seconds * 1000000000ULL;
			fprintf(stderr, "whipgen: media phase (%s connected)\n", all ? "all" : "not all");
		}
		if (end && now >= end)
			break;
	}
	for (int i = 0; i < g.sessions; i++) {
		sess *s = &ss[i];

		if (s->connected) {
			setup_ms[connected++] = (double)(s->t_connected - s->t_post) / 1e6;
		} else {
			failed++;
		}
		if (s->location[0] && !g.keep) {
			char url[2048];
			const char *p = strstr(g.url, "/whip/");
			http_out o;

			snprintf(url, sizeof(url), "%.*s%s", p ? (int)(p - g.url) : 0, g.url, s->location);
			vtp_buf_init(&o.body, 65536);
			http("DELETE", url, NULL, &o);
			vtp_buf_free(&o.body);
		}
		if (s->fd >= 0)
			close(s->fd);
		vtp_srtp_free(s->srtp);
		vtp_dtls_free(s->dtls);
	}
	/* median set-up time */
	for (int i = 1; i < connected; i++)
		for (int k = i; k > 0 && setup_ms[k - 1] > setup_ms[k]; k--) {
			double t = setup_ms[k];

			setup_ms[k] = setup_ms[k - 1];
			setup_ms[k - 1] = t;
		}
	printf("{\"sessions\":%d,\"connected\":%d,\"failed\":%d,\"setupMsMedian\":%.1f,"
	       "\"setupMsMax\":%.1f,\"seconds\":%.1f,\"packetsSent\":%llu,\"bytesSent\":%llu,"
	       "\"stunErrors\":%llu,\"feedback\":{\"rr\":%llu,\"pli\":%llu,\"fir\":%llu,"
	       "\"nack\":%llu,\"remb\":%llu,\"other\":%llu},\"locations\":[",
	       g.sessions, connected, failed, connected ? setup_ms[connected / 2] : 0.0,
	       connected ? setup_ms[connected - 1] : 0.0, (double)(now_ns() - t0) / 1e9,
	       (unsigned long long)g.sent_pkts, (unsigned long long)g.sent_bytes,
	       (unsigned long long)g.stun_errors, (unsigned long long)g.fb_rr,
	       (unsigned long long)g.fb_pli, (unsigned long long)g.fb_fir,
	       (unsigned long long)g.fb_nack, (unsigned long long)g.fb_remb,
	       (unsigned long long)g.fb_other);
	/* each session's Location, so that a caller can reach it (--keep) */
	for (int i = 0; i < g.sessions; i++) {
		printf("%s\"", i ? "," : "");
		for (const char *p = ss[i].location; *p; p++)
			if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
				putchar(*p);
		putchar('"');
	}
	printf("]}\n");
	vtp_dtls_ctx_free(ctx);
	curl_global_cleanup();
	close(ep);
	free(ss);
	free(setup_ms);
	return failed ? 1 : 0;
}
