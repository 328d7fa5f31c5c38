/* WHIP offer parsing and answer writing (sdp.h). The offer is read one line
 * at a time through a length-checked span; every attribute is checked
 * against its grammar where it is read, then the section choices and the
 * transport checks (ICE, DTLS, BUNDLE) run over the whole offer. Nothing
 * from the offer reaches the answer unless it passed a character-set check
 * first (mids, m= tokens, fmtp parameters), so an offer cannot inject lines
 * into the answer; the 400 reasons quote the offer only through excerpt(). */
#include "sdp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/mem.h"

#define SDP_LINE_MAX 4096   /* bytes, line end included */
#define PT_COUNT 128        /* RTP payload types 0..127 */
#define MID_MAX 32          /* vtp_sdp_media.mid holds 32 characters */
#define ICE_UFRAG_MIN 4     /* RFC 8839 §5.4 */
#define ICE_PWD_MIN 22
#define ICE_CHARS_MAX 256
#define EXCERPT_MAX 24      /* offer text quoted in a reason */

/* The host candidate's priority: type preference 126, local preference
 * 65535, component 1 (RFC 8445 §5.1.2.1). */
#define HOST_PRIORITY 2130706431u

typedef struct span {
	const char *p;
	size_t n;
} span;

/* The ICE and DTLS attributes of one scope: the session or one section. */
typedef struct transport {
	char ufrag[ICE_CHARS_MAX + 1];
	char pwd[ICE_CHARS_MAX + 1];
	char fp_alg[16];
	uint8_t fp[64];
	size_t fp_len;
	int fp_rank;              /* 0: none; the strongest supported hash wins */
	char fp_unsupported[EXCERPT_MAX + 4]; /* the first unsupported hash */
	char setup[16];
} transport;

/* What the section's lines say about one payload type before the codecs
 * are put in m= order. */
typedef struct pt_slot {
	bool listed;              /* on the current m= line */
	bool mapped;              /* a=rtpmap seen */
	vtp_sdp_codec codec;
} pt_slot;

typedef struct parser {
	vtp_sdp_offer *o;
	char *why;
	size_t whylen;
	int lineno;               /* 0 once the lines are read */
	bool seen_v, seen_o, seen_s, seen_t, have_bundle;
	int session_direction;    /* -1: not given */
	transport session;
	transport media[VTP_SDP_MAX_MEDIA];
	/* the current section's payload types, in m= order */
	int listed[PT_COUNT];
	int nlisted;
	pt_slot pts[PT_COUNT];
	bool any_nack, any_nack_pli, any_ccm_fir, any_goog_remb, any_transport_cc;
} parser;

/* ---- spans and character classes ---------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 8866 token-char: printable ASCII but for space and ()"',/:;<=>?@[\]. */
static bool is_token_char(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`{|}~", c) != NULL);
}

/* ice-char (RFC 8839 §5.4). */
static bool is_ice_char(char c)
{
	return is_alnum(c) || c == '+' || c == '/';
}

/* What an a=fmtp may hold to be kept (and perhaps echoed): parameter
 * names, numbers, base64, lists. Anything else drops the fmtp. */
static bool is_fmtp_char(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("-_.;=,/+:* ", c) != NULL);
}

static bool is_proto_char(char c)
{
	return is_token_char(c) || c == '/';
}

static bool all_chars(span s, bool (*ok)(char))
{
	for (size_t i = 0; i < s.n; i++)
		if (!ok(s.p[i]))
			return false;
	return true;
}

static span span_trim(span s)
{
	while (s.n && is_blank(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n && is_blank(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* The next blank-separated word of s into tok; false at the end. */
static bool next_word(span *s, span *tok)
{
	size_t i = 0;

	while (i < s->n && is_blank(s->p[i]))
		i++;
	if (i == s->n) {
		s->p += i;
		s->n = 0;
		return false;
	}
	tok->p = s->p + i;
	while (i < s->n && !is_blank(s->p[i]))
		i++;
	tok->n = (size_t)(s->p + i - tok->p);
	s->p += i;
	s->n -= i;
	return true;
}

/* Splits s at the first sep: head before it, tail after. false when there
 * is no sep (then head is s and tail empty). */
static bool split_at(span s, char sep, span *head, span *tail)
{
	const char *at = s.n ? memchr(s.p, sep, s.n) : NULL;

	if (!at) {
		*head = s;
		tail->p = s.p + s.n;
		tail->n = 0;
		return false;
	}
	head->p = s.p;
	head->n = (size_t)(at - s.p);
	tail->p = at + 1;
	tail->n = s.n - head->n - 1;
	return true;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool span_ieq(span s, const char *lit)
{
	size_t n = strlen(lit);

	if (s.n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(s.p[i]) != lower(lit[i]))
			return false;
	return true;
}

static bool str_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower(*a) != lower(*b))
			return false;
	return *a == *b;
}

/* A decimal number of 1..10 digits, no sign, at most max. */
static bool span_uint(span s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (s.n == 0 || s.n > 10)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Copies s as a C string; false (dst untouched) when it does not fit. */
static bool span_copy(span s, char *dst, size_t cap)
{
	if (s.n >= cap)
		return false;
	memcpy(dst, s.p, s.n);
	dst[s.n] = '\0';
	return true;
}

/* Offer text made fit to quote in a reason: token characters only, cut at
 * EXCERPT_MAX. buf holds EXCERPT_MAX + 4 bytes. */
static const char *excerpt(span s, char buf[EXCERPT_MAX + 4])
{
	size_t n = 0;

	for (size_t i = 0; i < s.n; i++) {
		if (n == EXCERPT_MAX) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		buf[n++] = is_proto_char(s.p[i]) ? s.p[i] : '?';
	}
	buf[n] = '\0';
	return buf;
}

static span cstr(const char *s)
{
	span r = {s, strlen(s)};

	return r;
}

/* ---- reasons ---------------------------------------------------------------- */

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!ps->why || ps->whylen == 0)
		return VTP_EINVAL;
	if (ps->lineno > 0)
		n = snprintf(ps->why, ps->whylen, "line %d: ", ps->lineno);
	if (n >= 0 && (size_t)n < ps->whylen) {
		va_start(ap, fmt);
		vsnprintf(ps->why + n, ps->whylen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return VTP_EINVAL;
}

/* ---- fmtp parameters ---------------------------------------------------------- */

/* The value of parameter key (case-insensitive) in a stored fmtp
 * ("a=1;b=2", blanks allowed around ';'); false when absent. */
static bool fmtp_value(const char *fmtp, const char *key, span *value)
{
	span rest = cstr(fmtp), param, name, val;

	while (rest.n) {
		split_at(rest, ';', &param, &rest);
		if (!split_at(span_trim(param), '=', &name, &val))
			continue;
		if (span_ieq(span_trim(name), key)) {
			*value = span_trim(val);
			return true;
		}
	}
	return false;
}

static bool fmtp_is(const char *fmtp, const char *key, const char *want)
{
	span v;

	return fmtp_value(fmtp, key, &v) && span_ieq(v, want);
}

/* ---- attributes ------------------------------------------------------------- */

static vtp_sdp_media *current(parser *ps)
{
	return ps->o->nmedia ? &ps->o->media[ps->o->nmedia - 1] : NULL;
}

static transport *current_transport(parser *ps)
{
	return ps->o->nmedia ? &ps->media[ps->o->nmedia - 1] : &ps->session;
}

static int ice_credential(parser *ps, span v, char *dst, size_t min, const char *attr)
{
	if (v.n < min || v.n > ICE_CHARS_MAX)
		return fail(ps, "a=%s: %zu characters, needs %zu to %d", attr, v.n, min,
			    ICE_CHARS_MAX);
	if (!all_chars(v, is_ice_char))
		return fail(ps, "a=%s: characters other than A-Z a-z 0-9 + /", attr);
	if (dst[0] == '\0')
		span_copy(v, dst, ICE_CHARS_MAX + 1);
	return 0;
}

static const struct fingerprint_alg {
	const char *name;
	size_t len;
} FINGERPRINT_ALGS[] = {
	/* weakest first: the index + 1 is the rank */
	{"sha-1", 20}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64},
};

static int fingerprint(parser *ps, span v, transport *t)
{
	span alg, hex, extra;
	uint8_t bytes[64];
	size_t n = 0, want = 0;
	int rank = 0;
	char ex[EXCERPT_MAX + 4];

	if (!next_word(&v, &alg) || !next_word(&v, &hex) || next_word(&v, &extra))
		return fail(ps, "a=fingerprint: expected <hash> <XX:XX:...>");
	for (size_t i = 0; i < sizeof(FINGERPRINT_ALGS) / sizeof(FINGERPRINT_ALGS[0]); i++) {
		if (span_ieq(alg, FINGERPRINT_ALGS[i].name)) {
			rank = (int)i + 1;
			want = FINGERPRINT_ALGS[i].len;
		}
	}
	if (rank == 0) {
		/* only an error if no supported fingerprint comes with it */
		if (t->fp_unsupported[0] == '\0')
			excerpt(alg, t->fp_unsupported);
		return 0;
	}
	/* XX:XX:...:XX, exactly want bytes */
	for (size_t i = 0; i < hex.n; i += 3) {
		int hi, lo;

		if (n == want || hex.n - i < 2)
			goto bad;
		hi = vtp_hex_value(hex.p[i]);
		lo = vtp_hex_value(hex.p[i + 1]);
		if (hi < 0 || lo < 0 || (i + 2 < hex.n && hex.p[i + 2] != ':'))
			goto bad;
		bytes[n++] = (uint8_t)(hi << 4 | lo);
	}
	if (n != want || hex.p[hex.n - 1] == ':')
		goto bad;
	if (rank > t->fp_rank) {
		t->fp_rank = rank;
		snprintf(t->fp_alg, sizeof(t->fp_alg), "%s", FINGERPRINT_ALGS[rank - 1].name);
		memcpy(t->fp, bytes, n);
		t->fp_len = n;
	}
	return 0;
bad:
	return fail(ps, "a=fingerprint: %s needs %zu bytes written XX:XX:...",
		    excerpt(alg, ex), want);
}

static int setup(parser *ps, span v, transport *t)
{
	const char *role = NULL;

	if (span_ieq(v, "actpass"))
		role = "actpass";
	else if (span_ieq(v, "active"))
		role = "active";
	else if (span_ieq(v, "passive"))
		return fail(ps, "a=setup:passive offers are not supported; offer actpass");
	else if (span_ieq(v, "holdconn"))
		return fail(ps, "a=setup:holdconn offers are not supported; offer actpass");
	else
		return fail(ps, "a=setup: unknown role (expected actpass)");
	if (t->setup[0] == '\0')
		snprintf(t->setup, sizeof(t->setup), "%s", role);
	return 0;
}

static bool valid_mid(span s)
{
	return s.n >= 1 && s.n <= MID_MAX && all_chars(s, is_token_char);
}

/* a=group:BUNDLE <mid>...: the first BUNDLE group is the one (a recorder
 * has one transport); other semantics (LS, FID) are ignored. */
static int group(parser *ps, span v)
{
	vtp_sdp_offer *o = ps->o;
	span semantics, mid;
	size_t len = 0;

	if (!next_word(&v, &semantics) || !span_ieq(semantics, "BUNDLE") || ps->have_bundle)
		return 0;
	while (next_word(&v, &mid)) {
		if (!valid_mid(mid))
			return fail(ps, "a=group:BUNDLE: a mid is not 1 to %d token characters",
				    MID_MAX);
		if (len + (len ? 1 : 0) + mid.n >= sizeof(o->bundle))
			return fail(ps, "a=group:BUNDLE: longer than %zu characters",
				    sizeof(o->bundle) - 1);
		if (len)
			o->bundle[len++] = ' ';
		memcpy(o->bundle + len, mid.p, mid.n);
		len += mid.n;
		o->bundle[len] = '\0';
	}
	ps->have_bundle = len > 0;
	return 0;
}

static bool in_bundle(const vtp_sdp_offer *o, const char *mid)
{
	span rest = cstr(o->bundle), tok;
	span want = cstr(mid);

	if (want.n == 0)
		return false;
	while (next_word(&rest, &tok))
		if (tok.n == want.n && memcmp(tok.p, want.p, want.n) == 0)
			return true;
	return false;
}

static int mid(parser *ps, span v, vtp_sdp_media *m)
{
	vtp_sdp_offer *o = ps->o;

	if (!valid_mid(v))
		return fail(ps, "a=mid: not 1 to %d token characters", MID_MAX);
	if (m->mid[0])
		return fail(ps, "a second a=mid in one m= section");
	span_copy(v, m->mid, sizeof(m->mid));
	for (int i = 0; i < o->nmedia - 1; i++)
		if (strcmp(o->media[i].mid, m->mid) == 0)
			return fail(ps, "a=mid:%s is used by two m= sections", m->mid);
	return 0;
}

/* The payload type an attribute starts with ("96 ..."); false if it is not
 * one of the current section's. */
static pt_slot *listed_pt(parser *ps, span *v)
{
	span tok;
	uint32_t pt;

	if (!next_word(v, &tok) || !span_uint(tok, PT_COUNT - 1, &pt) || !ps->pts[pt].listed)
		return NULL;
	return &ps->pts[pt];
}

static int rtpmap(parser *ps, span v)
{
	span pt_tok, encoding, name, rate, rest, channels;
	uint32_t pt, clock_rate, nch = 1;
	pt_slot *slot;

	if (!next_word(&v, &pt_tok) || !span_uint(pt_tok, PT_COUNT - 1, &pt) ||
	    !next_word(&v, &encoding))
		goto bad;
	split_at(encoding, '/', &name, &rest);
	split_at(rest, '/', &rate, &channels);
	if (name.n == 0 || name.n >= sizeof(slot->codec.name) || !all_chars(name, is_token_char) ||
	    !span_uint(rate, UINT32_MAX, &clock_rate) || clock_rate == 0)
		goto bad;
	if (channels.n && (!span_uint(channels, 255, &nch) || nch == 0))
		goto bad;
	slot = &ps->pts[pt];
	if (!slot->listed || slot->mapped)
		return 0; /* not on the m= line, or a repeat: first wins */
	slot->mapped = true;
	slot->codec.pt = (int)pt;
	span_copy(name, slot->codec.name, sizeof(slot->codec.name));
	slot->codec.clock_rate = clock_rate;
	slot->codec.channels = (int)nch;
	return 0;
bad:
	return fail(ps, "a=rtpmap: expected <pt 0-127> <name>/<clock rate>[/<channels>]");
}

/* a=fmtp: kept only when it is made of is_fmtp_char and fits (it may be
 * echoed in the answer); otherwise the codec simply has no parameters. */
static void fmtp(parser *ps, span v)
{
	pt_slot *slot = listed_pt(ps, &v);

	v = span_trim(v);
	if (!slot || slot->codec.fmtp[0] || !all_chars(v, is_fmtp_char))
		return;
	span_copy(v, slot->codec.fmtp, sizeof(slot->codec.fmtp));
}

static void rtcp_fb(parser *ps, span v)
{
	span pt_tok, type, param;
	bool nack = false, nack_pli = false, ccm_fir = false, remb = false, twcc = false;
	bool has_param;
	span probe = v;
	pt_slot *slot = NULL;
	bool any = next_word(&probe, &pt_tok) && pt_tok.n == 1 && pt_tok.p[0] == '*';

	if (any)
		v = probe;
	else if (!(slot = listed_pt(ps, &v)))
		return;
	if (!next_word(&v, &type))
		return;
	has_param = next_word(&v, &param);
	if (span_ieq(type, "nack") && !has_param)
		nack = true;
	else if (span_ieq(type, "nack") && span_ieq(param, "pli"))
		nack_pli = true;
	else if (span_ieq(type, "ccm") && has_param && span_ieq(param, "fir"))
		ccm_fir = true;
	else if (span_ieq(type, "goog-remb"))
		remb = true;
	else if (span_ieq(type, "transport-cc"))
		twcc = true;
	if (any) {
		ps->any_nack |= nack;
		ps->any_nack_pli |= nack_pli;
		ps->any_ccm_fir |= ccm_fir;
		ps->any_goog_remb |= remb;
		ps->any_transport_cc |= twcc;
	} else {
		slot->codec.nack |= nack;
		slot->codec.nack_pli |= nack_pli;
		slot->codec.ccm_fir |= ccm_fir;
		slot->codec.goog_remb |= remb;
		slot->codec.transport_cc |= twcc;
	}
}

static int ssrc(parser *ps, span v, vtp_sdp_media *m)
{
	span tok;
	uint32_t id;

	if (!next_word(&v, &tok) || !span_uint(tok, UINT32_MAX, &id))
		return fail(ps, "a=ssrc: the id is not a number 0-4294967295");
	for (int i = 0; i < m->nssrcs; i++)
		if (m->ssrcs[i] == id)
			return 0;
	if (m->nssrcs < VTP_SDP_MAX_SSRCS)
		m->ssrcs[m->nssrcs++] = id;
	return 0;
}

static int direction_of(span name)
{
	static const char *const names[] = {
		[VTP_SDP_SENDRECV] = "sendrecv", [VTP_SDP_SENDONLY] = "sendonly",
		[VTP_SDP_RECVONLY] = "recvonly", [VTP_SDP_INACTIVE] = "inactive",
	};

	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (span_ieq(name, names[i]))
			return i;
	return -1;
}

static int attribute(parser *ps, span line)
{
	vtp_sdp_media *m = current(ps);
	transport *t = current_transport(ps);
	span name, v;
	int dir;

	split_at(line, ':', &name, &v);
	v = span_trim(v);
	if (name.n == 0 || !all_chars(name, is_token_char))
		return fail(ps, "a= line without an attribute name");
	if (span_ieq(name, "ice-ufrag"))
		return ice_credential(ps, v, t->ufrag, ICE_UFRAG_MIN, "ice-ufrag");
	if (span_ieq(name, "ice-pwd"))
		return ice_credential(ps, v, t->pwd, ICE_PWD_MIN, "ice-pwd");
	if (span_ieq(name, "fingerprint"))
		return fingerprint(ps, v, t);
	if (span_ieq(name, "setup"))
		return setup(ps, v, t);
	if ((dir = direction_of(name)) >= 0) {
		if (m)
			m->direction = dir;
		else
			ps->session_direction = dir;
		return 0;
	}
	if (!m) {
		if (span_ieq(name, "group"))
			return group(ps, v);
		if (span_ieq(name, "ice-lite"))
			ps->o->ice_lite = true;
		return 0;
	}
	if (span_ieq(name, "mid"))
		return mid(ps, v, m);
	if (span_ieq(name, "rtcp-mux") || span_ieq(name, "rtcp-mux-only"))
		m->rtcp_mux = true;
	else if (span_ieq(name, "bundle-only"))
		m->bundle_only = true;
	else if (span_ieq(name, "rtpmap"))
		return rtpmap(ps, v);
	else if (span_ieq(name, "fmtp"))
		fmtp(ps, v);
	else if (span_ieq(name, "rtcp-fb"))
		rtcp_fb(ps, v);
	else if (span_ieq(name, "ssrc"))
		return ssrc(ps, v, m);
	return 0;
}

/* ---- m= sections -------------------------------------------------------------- */

/* rtx, red, FEC, comfort noise and DTMF are never chosen: past
 * VTP_SDP_MAX_CODECS they give way to the codecs that could be. */
static bool is_auxiliary(const char *name)
{
	static const char *const names[] = {
		"rtx", "red", "ulpfec", "flexfec", "flexfec-03", "CN", "telephone-event",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_ieq(name, names[i]))
			return true;
	return false;
}

/* Puts the current section's mapped payload types into codecs[], in m=
 * order, capped (extra codecs are ignored, auxiliary ones first). */
static void end_section(parser *ps)
{
	vtp_sdp_media *m = current(ps);
	int primary = 0, aux_room, aux = 0;

	if (!m)
		return;
	for (int i = 0; i < ps->nlisted; i++) {
		pt_slot *s = &ps->pts[ps->listed[i]];

		if (s->mapped && !is_auxiliary(s->codec.name))
			primary++;
	}
	aux_room = VTP_SDP_MAX_CODECS - (primary < VTP_SDP_MAX_CODECS ? primary : VTP_SDP_MAX_CODECS);
	for (int i = 0; i < ps->nlisted && m->ncodecs < VTP_SDP_MAX_CODECS; i++) {
		pt_slot *s = &ps->pts[ps->listed[i]];
		vtp_sdp_codec *c;

		if (!s->mapped)
			continue;
		if (is_auxiliary(s->codec.name) && aux++ >= aux_room)
			continue;
		c = &m->codecs[m->ncodecs++];
		*c = s->codec;
		c->nack |= ps->any_nack;
		c->nack_pli |= ps->any_nack_pli;
		c->ccm_fir |= ps->any_ccm_fir;
		c->goog_remb |= ps->any_goog_remb;
		c->transport_cc |= ps->any_transport_cc;
	}
}

static bool is_dtls_srtp(span proto)
{
	return span_ieq(proto, "UDP/TLS/RTP/SAVPF") || span_ieq(proto, "UDP/TLS/RTP/SAVP");
}

/* m=<media> <port>[/<count>] <proto> <fmt>... */
static int media_line(parser *ps, span v)
{
	vtp_sdp_offer *o = ps->o;
	vtp_sdp_media *m;
	span media, port_tok, port, count, proto, fmt;
	uint32_t port_num, n;
	size_t len = 0;
	char ex[EXCERPT_MAX + 4];

	end_section(ps);
	if (o->nmedia == VTP_SDP_MAX_MEDIA)
		return fail(ps, "more than %d m= sections", VTP_SDP_MAX_MEDIA);
	if (!ps->seen_o || !ps->seen_s || !ps->seen_t)
		return fail(ps, "m= before the o=, s= and t= lines");
	m = &o->media[o->nmedia++];
	m->chosen = -1;
	m->direction = ps->session_direction >= 0 ? ps->session_direction : VTP_SDP_SENDRECV;
	for (int i = 0; i < ps->nlisted; i++)
		memset(&ps->pts[ps->listed[i]], 0, sizeof(ps->pts[0]));
	ps->nlisted = 0;
	ps->any_nack = ps->any_nack_pli = ps->any_ccm_fir = false;
	ps->any_goog_remb = ps->any_transport_cc = false;

	if (!next_word(&v, &media) || !all_chars(media, is_token_char) ||
	    !span_copy(media, m->media, sizeof(m->media)))
		return fail(ps, "m=: the media is not 1 to %zu token characters",
			    sizeof(m->media) - 1);
	if (!next_word(&v, &port_tok))
		return fail(ps, "m=%s: no port", m->media);
	if ((split_at(port_tok, '/', &port, &count) && !span_uint(count, 65535, &n)) ||
	    !span_uint(port, 65535, &port_num))
		return fail(ps, "m=%s: the port is not a number 0-65535", m->media);
	m->port = (int)port_num;
	if (!next_word(&v, &proto) || !all_chars(proto, is_proto_char) ||
	    !span_copy(proto, m->proto, sizeof(m->proto)))
		return fail(ps, "m=%s: no usable proto", m->media);
	m->kind = span_ieq(media, "audio") ? VTP_SDP_AUDIO :
		  span_ieq(media, "video") ? VTP_SDP_VIDEO : VTP_SDP_OTHER;
	if (m->kind != VTP_SDP_OTHER && !is_dtls_srtp(proto))
		return fail(ps, "m=%s: proto %s is not supported; offer UDP/TLS/RTP/SAVPF",
			    m->media, m->proto);
	while (next_word(&v, &fmt)) {
		uint32_t pt;

		if (!all_chars(fmt, is_token_char) || fmt.n >= sizeof(m->fmts))
			return fail(ps, "m=%s: a format is not 1 to %zu token characters", m->media,
				    sizeof(m->fmts) - 1);
		if (m->kind != VTP_SDP_OTHER) {
			if (!span_uint(fmt, PT_COUNT - 1, &pt))
				return fail(ps, "m=%s: format %s is not a payload type 0-127",
					    m->media, excerpt(fmt, ex));
			if (!ps->pts[pt].listed) {
				ps->pts[pt].listed = true;
				ps->listed[ps->nlisted++] = (int)pt;
			}
		}
		/* the list is kept as written while it fits; the answer needs
		 * it only for a rejected section, where one format is enough */
		if (len + (len ? 1 : 0) + fmt.n < sizeof(m->fmts)) {
			if (len)
				m->fmts[len++] = ' ';
			memcpy(m->fmts + len, fmt.p, fmt.n);
			len += fmt.n;
			m->fmts[len] = '\0';
		}
	}
	if (len == 0)
		return fail(ps, "m=%s: no formats", m->media);
	return 0;
}

/* ---- lines ------------------------------------------------------------------ */

static int origin_line(parser *ps, span v)
{
	span tok;
	int words = 0;

	while (next_word(&v, &tok))
		words++;
	if (words != 6)
		return fail(ps, "o= needs 6 fields: <user> <id> <version> IN IP4 <address>");
	return 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int timing_line(parser *ps, span v)
{
	span start, stop, extra;

	if (!next_word(&v, &start) || !next_word(&v, &stop) || next_word(&v, &extra) ||
	    start.n > 20 || stop.n > 20 || !all_chars(start, is_digit) ||
	    !all_chars(stop, is_digit))
		return fail(ps, "t= needs <start> <stop> (t=0 0)");
	return 0;
}

static int one_line(parser *ps, span line)
{
	span v;

	for (size_t i = 0; i < line.n; i++) {
		unsigned char c = (unsigned char)line.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(ps, "control character 0x%02x", c);
	}
	if (line.n == 0)
		return 0; /* a stray blank line, often the last: harmless */
	if (!ps->seen_v) {
		if (line.n != 3 || memcmp(line.p, "v=0", 3) != 0)
			return fail(ps, "not SDP: the first line must be v=0");
		ps->seen_v = true;
		return 0;
	}
	if (line.n < 2 || line.p[1] != '=' || line.p[0] < 'a' || line.p[0] > 'z')
		return fail(ps, "not a <type>=<value> line");
	v.p = line.p + 2;
	v.n = line.n - 2;
	v = span_trim(v);
	switch (line.p[0]) {
	case 'v':
		return fail(ps, "a second v= line");
	case 'o':
	case 's':
	case 't':
		if (ps->o->nmedia)
			return fail(ps, "%c= inside an m= section", line.p[0]);
		if (line.p[0] == 'o') {
			if (ps->seen_o)
				return fail(ps, "a second o= line");
			ps->seen_o = true;
			return origin_line(ps, v);
		}
		if (line.p[0] == 's') {
			if (ps->seen_s)
				return fail(ps, "a second s= line");
			ps->seen_s = true;
			return 0;
		}
		/* several t= lines are legal (RFC 8866 §5.9); they do not matter */
		ps->seen_t = true;
		return timing_line(ps, v);
	case 'm':
		return media_line(ps, v);
	case 'a':
		return attribute(ps, v);
	default:
		return 0; /* c=, b=, i=, k=, ...: nothing the recorder needs */
	}
}

static int read_lines(parser *ps, const char *sdp, size_t len)
{
	size_t pos = 0;
	int rc;

	if (!sdp || len == 0)
		return fail(ps, "empty offer");
	if (len > VTP_SDP_MAX_BYTES)
		return fail(ps, "the offer is larger than %d bytes", VTP_SDP_MAX_BYTES);
	if (memchr(sdp, '\0', len))
		return fail(ps, "NUL byte in the offer");
	while (pos < len) {
		const char *start = sdp + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		span line = {start, n};

		pos += n + (nl ? 1 : 0);
		ps->lineno++;
		if (n + (nl ? 1 : 0) > SDP_LINE_MAX)
			return fail(ps, "longer than %d bytes", SDP_LINE_MAX);
		if (line.n && line.p[line.n - 1] == '\r')
			line.n--;
		rc = one_line(ps, line);
		if (rc)
			return rc;
	}
	end_section(ps);
	ps->lineno = 0;
	if (!ps->seen_v)
		return fail(ps, "not SDP: the first line must be v=0");
	if (!ps->seen_o || !ps->seen_s || !ps->seen_t)
		return fail(ps, "not SDP: o=, s= and t= are required");
	if (ps->o->nmedia == 0)
		return fail(ps, "no m= sections");
	return 0;
}

/* ---- choices ------------------------------------------------------------------ */

static int pick_opus(const vtp_sdp_media *m)
{
	for (int i = 0; i < m->ncodecs; i++) {
		const vtp_sdp_codec *c = &m->codecs[i];

		if (str_ieq(c->name, "opus") && c->clock_rate == 48000 && c->channels == 2)
			return i;
	}
	return -1;
}

/* H.264 preference: 0 for 42e01f (constrained baseline 3.1, what every
 * browser decodes), 1 for other baseline profiles (42xxxx, or no
 * profile-level-id: the default is 42000a), 2 for the rest. */
static int h264_rank(const vtp_sdp_codec *c)
{
	span plid;

	if (!fmtp_value(c->fmtp, "profile-level-id", &plid))
		return 1;
	if (span_ieq(plid, "42e01f"))
		return 0;
	if (plid.n == 6 && plid.p[0] == '4' && plid.p[1] == '2')
		return 1;
	return 2;
}

static int pick_video(const vtp_sdp_media *m)
{
	int best = -1, best_rank = 3;

	for (int i = 0; i < m->ncodecs; i++) {
		const vtp_sdp_codec *c = &m->codecs[i];

		if (c->clock_rate != 90000)
			continue;
		if (str_ieq(c->name, "VP8"))
			return i;
		if (str_ieq(c->name, "H264") && fmtp_is(c->fmtp, "packetization-mode", "1") &&
		    h264_rank(c) < best_rank) {
			best = i;
			best_rank = h264_rank(c);
		}
	}
	return best;
}

/* Sets m->chosen, or returns why the section is rejected. */
static const char *choose_section(const vtp_sdp_offer *o, vtp_sdp_media *m, bool *have_audio,
				  bool *have_video)
{
	int pick;

	if (m->kind == VTP_SDP_OTHER)
		return "not audio or video";
	if (m->port == 0 && !m->bundle_only)
		return "port 0 in the offer";
	if (m->direction == VTP_SDP_RECVONLY || m->direction == VTP_SDP_INACTIVE)
		return "the offerer does not send (recvonly or inactive)";
	if (!m->rtcp_mux)
		return "no a=rtcp-mux";
	if (m->bundle_only && !in_bundle(o, m->mid))
		return "bundle-only outside a=group:BUNDLE";
	if (m->kind == VTP_SDP_AUDIO) {
		if (*have_audio)
			return "a second audio section";
		if ((pick = pick_opus(m)) < 0)
			return "no opus/48000/2";
		*have_audio = true;
	} else {
		if (*have_video)
			return "a second video section";
		if ((pick = pick_video(m)) < 0)
			return "no VP8, nor H264 with packetization-mode=1";
		*have_video = true;
	}
	m->chosen = pick;
	return NULL;
}

static int choose(parser *ps)
{
	vtp_sdp_offer *o = ps->o;
	bool have_audio = false, have_video = false;
	const vtp_sdp_media *first_rejected = NULL;
	int first_rejected_index = 0;

	for (int i = 0; i < o->nmedia; i++) {
		vtp_sdp_media *m = &o->media[i];

		m->reject_reason = choose_section(o, m, &have_audio, &have_video);
		if (m->chosen >= 0)
			o->accepted++;
		else if (!first_rejected && m->kind != VTP_SDP_OTHER) {
			first_rejected = m;
			first_rejected_index = i + 1;
		}
	}
	if (o->accepted == 0 && !first_rejected)
		return fail(ps, "nothing to record: no audio or video m= section");
	if (o->accepted == 0)
		return fail(ps, "nothing to record: m=%s (section %d): %s", first_rejected->media,
			    first_rejected_index, first_rejected->reject_reason);
	if (o->accepted < 2)
		return 0;
	/* one transport: every accepted section bundled together */
	for (int i = 0; i < o->nmedia; i++) {
		const vtp_sdp_media *m = &o->media[i];

		if (m->chosen >= 0 && !in_bundle(o, m->mid))
			return fail(ps, "audio and video must be in one a=group:BUNDLE "
					"(bundle policy max-bundle)");
	}
	return 0;
}

/* ---- transport ---------------------------------------------------------------- */

/* The accepted sections' ICE and DTLS parameters, media level over session
 * level, which must be the same for all of them. */
static int check_transport(parser *ps)
{
	vtp_sdp_offer *o = ps->o;
	const transport *s = &ps->session;
	bool first = true;

	for (int i = 0; i < o->nmedia; i++) {
		const transport *t = &ps->media[i];
		const char *ufrag = t->ufrag[0] ? t->ufrag : s->ufrag;
		const char *pwd = t->pwd[0] ? t->pwd : s->pwd;
		const transport *fp = t->fp_rank ? t : s;
		/* RFC 4145 §4: no a=setup means active */
		const char *role = t->setup[0] ? t->setup : s->setup[0] ? s->setup : "active";

		if (o->media[i].chosen < 0)
			continue;
		if (!ufrag[0])
			return fail(ps, "no a=ice-ufrag");
		if (!pwd[0])
			return fail(ps, "no a=ice-pwd");
		if (!fp->fp_rank && (t->fp_unsupported[0] || s->fp_unsupported[0]))
			return fail(ps, "a=fingerprint: unsupported hash %s",
				    t->fp_unsupported[0] ? t->fp_unsupported : s->fp_unsupported);
		if (!fp->fp_rank)
			return fail(ps, "no a=fingerprint");
		if (first) {
			snprintf(o->ice_ufrag, sizeof(o->ice_ufrag), "%s", ufrag);
			snprintf(o->ice_pwd, sizeof(o->ice_pwd), "%s", pwd);
			snprintf(o->fingerprint_alg, sizeof(o->fingerprint_alg), "%s", fp->fp_alg);
			memcpy(o->fingerprint, fp->fp, fp->fp_len);
			o->fingerprint_len = fp->fp_len;
			snprintf(o->setup, sizeof(o->setup), "%s", role);
			first = false;
			continue;
		}
		if (strcmp(ufrag, o->ice_ufrag) || strcmp(pwd, o->ice_pwd))
			return fail(ps, "the bundled sections carry different ICE credentials");
		if (strcmp(fp->fp_alg, o->fingerprint_alg) ||
		    memcmp(fp->fp, o->fingerprint, fp->fp_len))
			return fail(ps, "the bundled sections carry different fingerprints");
		if (strcmp(role, o->setup))
			return fail(ps, "the bundled sections carry different a=setup roles");
	}
	return 0;
}

int vtp_sdp_parse_offer(const char *sdp, size_t len, vtp_sdp_offer *o, char *why, size_t whylen)
{
	parser *ps;
	int rc;

	memset(o, 0, sizeof(*o));
	if (why && whylen)
		why[0] = '\0';
	ps = vtp_calloc(1, sizeof(*ps));
	ps->o = o;
	ps->why = why;
	ps->whylen = whylen;
	ps->session_direction = -1;
	rc = read_lines(ps, sdp, len);
	if (rc)
		goto out;
	rc = choose(ps);
	if (rc)
		goto out;
	rc = check_transport(ps);
out:
	vtp_free(ps);
	return rc;
}

/* ---- the answer --------------------------------------------------------------- */

/* Appends to a private buffer and remembers the first failure, so the
 * answer reaches the caller whole or not at all. */
typedef struct writer {
	vtp_buf b;
	int rc;
} writer;

static void put(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(writer *w, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (w->rc)
		return;
	va_start(ap, fmt);
	rc = vtp_buf_vappendf(&w->b, fmt, ap);
	va_end(ap);
	w->rc = rc;
}

static const vtp_sdp_media *accepted_mid(const vtp_sdp_offer *o, span mid)
{
	for (int i = 0; i < o->nmedia; i++) {
		const vtp_sdp_media *m = &o->media[i];

		if (m->chosen >= 0 && strlen(m->mid) == mid.n && memcmp(m->mid, mid.p, mid.n) == 0)
			return m;
	}
	return NULL;
}

/* RFC 8843 §7.3.1: the offer's group order, less what was rejected, so
 * the first mid (the answerer BUNDLE-tag) is an accepted section. */
static void put_bundle(writer *w, const vtp_sdp_offer *o)
{
	span rest = cstr(o->bundle), mid;
	bool any = false;

	while (next_word(&rest, &mid)) {
		if (!accepted_mid(o, mid))
			continue;
		put(w, "%s%.*s", any ? " " : "a=group:BUNDLE ", (int)mid.n, mid.p);
		any = true;
	}
	if (any)
		put(w, "\r\n");
}

static void put_codec(writer *w, const vtp_sdp_media *m)
{
	const vtp_sdp_codec *c = &m->codecs[m->chosen];

	if (m->kind == VTP_SDP_AUDIO) {
		/* stereo=1 tells the sender we take the stereo it offers */
		bool stereo = fmtp_is(c->fmtp, "stereo", "1") || fmtp_is(c->fmtp, "sprop-stereo", "1");

		put(w, "a=rtpmap:%d opus/48000/2\r\n", c->pt);
		put(w, "a=fmtp:%d minptime=10;useinbandfec=1%s\r\n", c->pt, stereo ? ";stereo=1" : "");
	} else {
		put(w, "a=rtpmap:%d %s/90000\r\n", c->pt, str_ieq(c->name, "VP8") ? "VP8" : "H264");
		if (c->fmtp[0])
			put(w, "a=fmtp:%d %s\r\n", c->pt, c->fmtp);
	}
	if (c->nack)
		put(w, "a=rtcp-fb:%d nack\r\n", c->pt);
	if (c->nack_pli)
		put(w, "a=rtcp-fb:%d nack pli\r\n", c->pt);
	if (c->ccm_fir)
		put(w, "a=rtcp-fb:%d ccm fir\r\n", c->pt);
	if (c->goog_remb)
		put(w, "a=rtcp-fb:%d goog-remb\r\n", c->pt);
}

void vtp_sdp_write_answer(const vtp_sdp_offer *o, const vtp_sdp_answer_params *p, vtp_buf *out)
{
	writer w;

	vtp_buf_init(&w.b, VTP_SDP_MAX_BYTES);
	w.rc = 0;
	put(&w, "v=0\r\no=- %" PRIu64 " 1 IN IP4 %s\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n",
	    p->session_id, p->ip);
	put_bundle(&w, o);
	for (int i = 0; i < o->nmedia; i++) {
		const vtp_sdp_media *m = &o->media[i];

		if (m->chosen < 0) {
			/* RFC 3264 §6, RFC 8829 §5.3.1: port 0, the offered
			 * formats, and the mid so the section stays matched */
			put(&w, "m=%s 0 %s %s\r\nc=IN IP4 %s\r\n", m->media, m->proto, m->fmts, p->ip);
			if (m->mid[0])
				put(&w, "a=mid:%s\r\n", m->mid);
			continue;
		}
		put(&w, "m=%s %d %s %d\r\nc=IN IP4 %s\r\n",
		    m->kind == VTP_SDP_AUDIO ? "audio" : "video", p->port,
		    str_ieq(m->proto, "UDP/TLS/RTP/SAVP") ? "UDP/TLS/RTP/SAVP" : "UDP/TLS/RTP/SAVPF",
		    m->codecs[m->chosen].pt, p->ip);
		if (m->mid[0])
			put(&w, "a=mid:%s\r\n", m->mid);
		put(&w, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\n"
			"a=setup:passive\r\na=recvonly\r\na=rtcp-mux\r\n",
		    p->ice_ufrag, p->ice_pwd, p->fingerprint);
		put_codec(&w, m);
		put(&w, "a=candidate:1 1 udp %u %s %d typ host\r\na=end-of-candidates\r\n",
		    HOST_PRIORITY, p->ip, p->port);
	}
	if (w.rc == 0)
		vtp_buf_append(out, w.b.data, w.b.len);
	vtp_buf_free(&w.b);
}
