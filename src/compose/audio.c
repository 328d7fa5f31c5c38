/* Audio for the composer: one decoder per track, its output (mono float,
 * 48 kHz) placed on the timeline where the clock map puts each frame.
 * Consecutive frames whose RTP timestamps follow each other continue
 * seamlessly; a gap (lost packets, a muted sender) stays silent, so what
 * comes after it is never shifted. */
#include "compose/compose_int.h"

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

/* Frames landing within this of where the previous one ended are joined
 * to it (clock-map rounding), anything further is a gap or an overlap. */
#define JOIN_SAMPLES 480 /* 10 ms, half a usual Opus frame */

struct vtp__adec {
	const vtp__ctrack *t;
	int64_t t0;
	vtp__fsrc *src;
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frame;
	bool eof;
	float *buf;          /* pending samples, buf[0] at position pos */
	int64_t pos;
	size_t len, cap;
	int64_t cursor;      /* where the next frame continues; -1 before the first */
	int64_t consumed;    /* the mixer has taken everything before this */
	uint64_t concealed, errors;
};

vtp__adec *vtp__adec_open(const vtp__ctrack *t, int64_t t0)
{
	vtp__adec *a = vtp_calloc(1, sizeof *a);
	a->t = t;
	a->t0 = t0;
	a->cursor = -1;
	a->consumed = INT64_MIN;
	const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_OPUS);
	a->ctx = codec ? avcodec_alloc_context3(codec) : NULL;
	a->src = vtp__fsrc_open(t);
	a->pkt = av_packet_alloc();
	a->frame = av_frame_alloc();
	if (a->ctx) {
		a->ctx->sample_rate = VTP_AUDIO_RATE;
		av_channel_layout_default(&a->ctx->ch_layout, 1);
		a->ctx->pkt_timebase = (AVRational){1, VTP_AUDIO_RATE};
	}
	if (!a->ctx || !a->src || !a->pkt || !a->frame || avcodec_open2(a->ctx, codec, NULL) < 0) {
		VTP_ERROR("compose: cannot decode audio track %s", t->track_id ? t->track_id : "?");
		a->eof = true;
	}
	return a;
}

void vtp__adec_close(vtp__adec *a)
{
	if (!a)
		return;
	vtp__fsrc_close(a->src);
	avcodec_free_context(&a->ctx);
	av_packet_free(&a->pkt);
	av_frame_free(&a->frame);
	vtp_free(a->buf);
	vtp_free(a);
}

static float *reserve(vtp__adec *a, size_t more)
{
	if (a->len + more > a->cap) {
		size_t nc = a->cap ? a->cap : 4096;
		while (nc < a->len + more)
			nc *= 2;
		a->buf = vtp_realloc(a->buf, nc * sizeof *a->buf);
		a->cap = nc;
	}
	return a->buf + a->len;
}

/* Puts n mono samples at timeline position at. */
static void place(vtp__adec *a, int64_t at, const float *s, size_t n)
{
	if (a->cursor >= 0 && at - a->cursor <= JOIN_SAMPLES && a->cursor - at <= JOIN_SAMPLES)
		at = a->cursor;
	else if (a->cursor >= 0 && at > a->cursor)
		a->concealed += (uint64_t)(at - a->cursor);
	a->cursor = at + (int64_t)n;
	/* Skip what the mixer has already passed. */
	if (at < a->consumed) {
		int64_t skip = a->consumed - at;
		if (skip >= (int64_t)n)
			return;
		s += skip;
		n -= (size_t)skip;
		at = a->consumed;
	}
	if (a->len == 0) {
		a->pos = at;
	} else if (at < a->pos + (int64_t)a->len) {
		/* Overlap (the sender's clock stepped back): the newer frame
		 * wins from where it starts. */
		a->len = at > a->pos ? (size_t)(at - a->pos) : 0;
		if (a->len == 0)
			a->pos = at;
	} else if (at > a->pos + (int64_t)a->len) {
		size_t gap = (size_t)(at - (a->pos + (int64_t)a->len));
		if (gap > (size_t)VTP_AUDIO_RATE * 10) {
			/* A long silence: nothing pending before it matters to
			 * memory; the mixer reads silence for it anyway. */
			if (a->len == 0 || a->pos + (int64_t)a->len <= a->consumed) {
				a->len = 0;
				a->pos = at;
			}
		}
		if (at > a->pos + (int64_t)a->len) {
			gap = (size_t)(at - (a->pos + (int64_t)a->len));
			memset(reserve(a, gap), 0, gap * sizeof(float));
			a->len += gap;
		}
	}
	memcpy(reserve(a, n), s, n * sizeof(float));
	a->len += n;
}

static void take_frame(vtp__adec *a, int64_t at)
{
	AVFrame *f = a->frame;
	int ch = f->ch_layout.nb_channels > 0 ? f->ch_layout.nb_channels : 1;
	size_t n = (size_t)f->nb_samples;
	float *mono = vtp_malloc((n ? n : 1) * sizeof *mono);
	if (f->format == AV_SAMPLE_FMT_FLTP) {
		for (size_t i = 0; i < n; i++) {
			float s = 0;
			for (int c = 0; c < ch; c++)
				s += ((const float *)f->extended_data[c])[i];
			mono[i] = s / (float)ch;
		}
	} else if (f->format == AV_SAMPLE_FMT_FLT) {
		const float *p = (const float *)f->data[0];
		for (size_t i = 0; i < n; i++) {
			float s = 0;
			for (int c = 0; c < ch; c++)
				s += p[i * (size_t)ch + (size_t)c];
			mono[i] = s / (float)ch;
		}
	} else if (f->format == AV_SAMPLE_FMT_S16) {
		const int16_t *p = (const int16_t *)f->data[0];
		for (size_t i = 0; i < n; i++) {
			float s = 0;
			for (int c = 0; c < ch; c++)
				s += p[i * (size_t)ch + (size_t)c] / 32768.0f;
			mono[i] = s / (float)ch;
		}
	} else {
		memset(mono, 0, n * sizeof *mono);
		a->errors++;
	}
	place(a, at, mono, n);
	vtp_free(mono);
}

/* Decodes one more frame. false at the end. */
static bool decode_more(vtp__adec *a)
{
	while (!a->eof) {
		vtp_frame fr;
		if (!vtp__fsrc_next(a->src, &fr)) {
			a->eof = true;
			return false;
		}
		int64_t ns = vtp__ctrack_map(a->t, fr.ext_ts) - a->t0;
		int64_t at = (ns * VTP_AUDIO_RATE + (ns >= 0 ? 500000000 : -500000000)) / 1000000000;
		if (av_new_packet(a->pkt, (int)fr.len) < 0)
			return false;
		memcpy(a->pkt->data, fr.data, fr.len);
		a->pkt->pts = at;
		int rc = avcodec_send_packet(a->ctx, a->pkt);
		av_packet_unref(a->pkt);
		if (rc < 0) {
			a->errors++;
			continue;
		}
		bool got = false;
		while (avcodec_receive_frame(a->ctx, a->frame) == 0) {
			take_frame(a, at);
			at += a->frame->nb_samples;
			av_frame_unref(a->frame);
			got = true;
		}
		if (got)
			return true;
	}
	return false;
}

void vtp__adec_mix(vtp__adec *a, int64_t pos, float *out, int n)
{
	int64_t end = pos + n;
	while (!a->eof && (a->len == 0 || a->pos + (int64_t)a->len < end))
		if (!decode_more(a))
			break;
	if (a->len > 0) {
		int64_t from = a->pos > pos ? a->pos : pos;
		int64_t to = a->pos + (int64_t)a->len < end ? a->pos + (int64_t)a->len : end;
		for (int64_t i = from; i < to; i++)
			out[i - pos] += a->buf[i - a->pos];
		/* Drop what is now behind the mixer. */
		if (end > a->pos) {
			size_t drop = (size_t)(end - a->pos) < a->len ? (size_t)(end - a->pos) : a->len;
			memmove(a->buf, a->buf + drop, (a->len - drop) * sizeof *a->buf);
			a->len -= drop;
			a->pos += (int64_t)drop;
		}
	}
	a->consumed = end;
}

uint64_t vtp__adec_concealed_ms(const vtp__adec *a)
{
	return a->concealed * 1000 / VTP_AUDIO_RATE;
}

uint64_t vtp__adec_errors(const vtp__adec *a)
{
	return a->errors;
}
