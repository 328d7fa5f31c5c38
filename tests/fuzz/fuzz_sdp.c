/* Fuzz target: the WHIP offer parser and the answer writer (ingest/sdp.c).
 * The input is an offer. A refusal must come with a one-line printable
 * reason. An accepted offer must be consistent (choices in range, the
 * accepted count, at most one audio and one video, ICE credentials and the
 * fingerprint within their grammar), and its answer must be clean text
 * (printable ASCII, CRLF line ends only: nothing from the offer injects a
 * line), carry one m= per offered section and one a=recvonly per accepted
 * one, and parse back, turned into an offer, to the same choices.
 * Invariants abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "ingest/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const vtp_sdp_answer_params PARAMS = {
	.ip = "192.0.2.1",
	.port = 40000,
	.ice_ufrag = "vtpU",
	.ice_pwd = "vtpPasswordOf22Chars00",
	.fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
		       "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
	.session_id = 1,
};

static void check_reason(const char *why)
{
	if (why[0] == '\0')
		abort();
	for (const char *p = why; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

static bool ice_chars(const char *s, size_t min)
{
	size_t n = strlen(s);

	if (n < min || n > 256)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == '+' || *s == '/'))
			return false;
	return true;
}

static void check_offer(const vtp_sdp_offer *o)
{
	int accepted = 0, audio = 0, video = 0;
	size_t fp_len = 0;

	if (o->nmedia < 1 || o->nmedia > VTP_SDP_MAX_MEDIA)
		abort();
	for (int i = 0; i < o->nmedia; i++) {
		const vtp_sdp_media *m = &o->media[i];

		if (m->ncodecs < 0 || m->ncodecs > VTP_SDP_MAX_CODECS ||
		    m->nssrcs < 0 || m->nssrcs > VTP_SDP_MAX_SSRCS)
			abort();
		if (m->chosen < -1 || m->chosen >= m->ncodecs)
			abort();
		if ((m->chosen >= 0) == (m->reject_reason != NULL))
			abort();
		if (m->port < 0 || m->port > 65535 || m->fmts[0] == '\0')
			abort();
		for (int k = 0; k < m->ncodecs; k++)
			if (m->codecs[k].pt < 0 || m->codecs[k].pt > 127 || m->codecs[k].channels < 1)
				abort();
		if (m->chosen < 0)
			continue;
		accepted++;
		audio += m->kind == VTP_SDP_AUDIO;
		video += m->kind == VTP_SDP_VIDEO;
		if (m->kind == VTP_SDP_OTHER || m->direction == VTP_SDP_RECVONLY ||
		    m->direction == VTP_SDP_INACTIVE || !m->rtcp_mux)
			abort();
	}
	if (accepted != o->accepted || accepted < 1 || audio > 1 || video > 1)
		abort();
	if (!ice_chars(o->ice_ufrag, 4) || !ice_chars(o->ice_pwd, 22))
		abort();
	if (strcmp(o->fingerprint_alg, "sha-1") == 0)
		fp_len = 20;
	else if (strcmp(o->fingerprint_alg, "sha-256") == 0)
		fp_len = 32;
	else if (strcmp(o->fingerprint_alg, "sha-384") == 0)
		fp_len = 48;
	else if (strcmp(o->fingerprint_alg, "sha-512") == 0)
		fp_len = 64;
	if (fp_len == 0 || o->fingerprint_len != fp_len)
		abort();
	if (strcmp(o->setup, "actpass") && strcmp(o->setup, "active"))
		abort();
}

/* Clean text: printable ASCII lines, each ending in CRLF. Counts the lines
 * that start with "m=" and those that are "a=recvonly". */
static void check_answer_text(const char *a, size_t len, int *mlines, int *recvonly)
{
	size_t start = 0;

	*mlines = *recvonly = 0;
	if (len < 2 || a[len - 2] != '\r' || a[len - 1] != '\n' || strlen(a) != len)
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c == '\r') {
			if (i + 1 >= len || a[i + 1] != '\n')
				abort();
			if (i - start >= 2 && a[start] == 'm' && a[start + 1] == '=')
				(*mlines)++;
			if (i - start == 10 && memcmp(a + start, "a=recvonly", 10) == 0)
				(*recvonly)++;
			i++;
			start = i + 1;
		} else if (c < 0x20 || c > 0x7e) {
			abort();
		}
	}
}

static void check_parses_back(const vtp_sdp_offer *o, char *answer, size_t len)
{
	vtp_sdp_offer *back = vtp_calloc(1, sizeof(*back));
	char why[200], *p;

	/* same-length swaps turn the answer into an offer */
	while ((p = strstr(answer, "a=setup:passive")))
		memcpy(p, "a=setup:actpass", 15);
	while ((p = strstr(answer, "a=recvonly")))
		memcpy(p, "a=sendonly", 10);
	if (vtp_sdp_parse_offer(answer, len, back, why, sizeof(why)) != 0)
		abort();
	if (back->nmedia != o->nmedia || back->accepted != o->accepted || !back->ice_lite ||
	    strcmp(back->ice_ufrag, PARAMS.ice_ufrag) || strcmp(back->ice_pwd, PARAMS.ice_pwd))
		abort();
	for (int i = 0; i < o->nmedia; i++) {
		const vtp_sdp_media *a = &o->media[i], *b = &back->media[i];

		if (a->kind != b->kind || strcmp(a->mid, b->mid) || (a->chosen < 0) != (b->chosen < 0))
			abort();
		if (a->chosen >= 0 && (b->ncodecs != 1 || b->port != PARAMS.port ||
				       b->codecs[0].pt != a->codecs[a->chosen].pt ||
				       b->codecs[0].transport_cc))
			abort();
		if (a->chosen < 0 && b->port != 0)
			abort();
	}
	vtp_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vtp_sdp_offer *o = vtp_calloc(1, sizeof(*o));
	char why[200];
	vtp_buf out;
	int mlines, recvonly;

	vtp_buf_init(&out, VTP_SDP_MAX_BYTES);
	if (vtp_sdp_parse_offer((const char *)data, size, o, why, sizeof(why)) != 0) {
		check_reason(why);
		goto out;
	}
	if (why[0] != '\0')
		abort();
	check_offer(o);
	vtp_sdp_write_answer(o, &PARAMS, &out);
	check_answer_text(out.data, out.len, &mlines, &recvonly);
	if (mlines != o->nmedia || recvonly != o->accepted)
		abort();
	check_parses_back(o, out.data, out.len);
out:
	vtp_buf_free(&out);
	vtp_free(o);
	return 0;
}
