/* The thumbnail: a 640x360 JPEG of the composed video near 10 % of its
 * length. Frames are offered from the target time on; a frame that is
 * (almost) all black is passed over, and another is tried half a second
 * later, so a camera that starts dark or a slide of black does not become
 * the picture of the recording. When nothing but black comes, the
 * brightest frame seen is used. */
#include "compose/compose_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"

#define THUMB_W 640
#define THUMB_H 360
#define RETRY_NS 500000000LL
/* A luma sample brighter than this (TV range: black is 16) counts as lit;
 * a frame with fewer than 1 % lit samples is black. */
#define LIT_Y 40

struct vtp__thumb {
	int64_t next_ns;        /* next time a frame is wanted */
	bool done;              /* a frame that is not black is kept */
	AVFrame *keep;          /* the chosen frame, 640x360 full-range 4:2:0 */
	int keep_lit;           /* its lit samples per 1000, -1 when none yet */
	int64_t keep_at;        /* its media time */
	struct SwsContext *sws;
};

vtp__thumb *vtp__thumb_new(int64_t target_ns)
{
	vtp__thumb *t = vtp_calloc(1, sizeof *t);
	t->next_ns = target_ns > 0 ? target_ns : 0;
	t->keep_lit = -1;
	return t;
}

void vtp__thumb_free(vtp__thumb *t)
{
	if (!t)
		return;
	av_frame_free(&t->keep);
	sws_freeContext(t->sws);
	vtp_free(t);
}

bool vtp__thumb_wants(const vtp__thumb *t, int64_t at_ns)
{
	return t && !t->done && at_ns >= t->next_ns;
}

bool vtp__thumb_done(const vtp__thumb *t)
{
	return t && t->done;
}

double vtp__thumb_at_seconds(const vtp__thumb *t)
{
	return t && t->keep ? (double)t->keep_at / 1e9 : -1.0;
}

/* Lit luma samples per 1000, on a grid of about 64x36 points. */
static int lit_permille(const AVFrame *f)
{
	int sx = f->width / 64 > 0 ? f->width / 64 : 1, sy = f->height / 36 > 0 ? f->height / 36 : 1;
	int lit = 0, all = 0;
	for (int y = sy / 2; y < f->height; y += sy) {
		const uint8_t *row = f->data[0] + (size_t)y * f->linesize[0];
		for (int x = sx / 2; x < f->width; x += sx) {
			lit += row[x] > LIT_Y;
			all++;
		}
	}
	return all ? (int)((int64_t)lit * 1000 / all) : 0;
}

/* f scaled to fit 640x360 (aspect kept, black bars), full range. */
static int keep_frame(vtp__thumb *t, const AVFrame *f)
{
	if (!t->keep) {
		t->keep = av_frame_alloc();
		t->keep->width = THUMB_W;
		t->keep->height = THUMB_H;
		t->keep->format = AV_PIX_FMT_YUVJ420P;
		if (!t->keep || av_frame_get_buffer(t->keep, 0) < 0)
			return -1;
	}
	AVFrame *k = t->keep;
	for (int y = 0; y < THUMB_H; y++)
		memset(k->data[0] + (size_t)y * k->linesize[0], 0, THUMB_W);
	for (int y = 0; y < THUMB_H / 2; y++) {
		memset(k->data[1] + (size_t)y * k->linesize[1], 128, THUMB_W / 2);
		memset(k->data[2] + (size_t)y * k->linesize[2], 128, THUMB_W / 2);
	}
	double sar = 1.0;
	if (f->sample_aspect_ratio.num > 0 && f->sample_aspect_ratio.den > 0)
		sar = (double)f->sample_aspect_ratio.num / f->sample_aspect_ratio.den;
	double sw = f->width * sar, sh = f->height;
	double s = THUMB_W / sw < THUMB_H / sh ? THUMB_W / sw : THUMB_H / sh;
	int dw = ((int)(sw * s + 0.5)) & ~1, dh = ((int)(sh * s + 0.5)) & ~1;
	if (dw < 2 || dh < 2 || dw > THUMB_W || dh > THUMB_H)
		return -1;
	int x0 = ((THUMB_W - dw) / 2) & ~1, y0 = ((THUMB_H - dh) / 2) & ~1;
	/* TV range in, full range out (JPEG's), without the deprecated
	 * YUVJ formats on the scaler's side. */
	bool full_in = f->format == AV_PIX_FMT_YUVJ420P || f->color_range == AVCOL_RANGE_JPEG;
	t->sws = sws_getCachedContext(t->sws, f->width, f->height, AV_PIX_FMT_YUV420P, dw, dh,
				      AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
	if (!t->sws)
		return -1;
	const int *coefs = sws_getCoefficients(SWS_CS_ITU601);
	sws_setColorspaceDetails(t->sws, coefs, full_in, coefs, 1, 0, 1 << 16, 1 << 16);
	uint8_t *dst[4] = {k->data[0] + (size_t)y0 * k->linesize[0] + x0,
			   k->data[1] + (size_t)(y0 / 2) * k->linesize[1] + x0 / 2,
			   k->data[2] + (size_t)(y0 / 2) * k->linesize[2] + x0 / 2, NULL};
	int dls[4] = {k->linesize[0], k->linesize[1], k->linesize[2], 0};
	sws_scale(t->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dls);
	return 0;
}

void vtp__thumb_offer(vtp__thumb *t, const AVFrame *f, int64_t at_ns)
{
	if (!vtp__thumb_wants(t, at_ns) || !f || f->width < 2 || f->height < 2)
		return;
	if (f->format != AV_PIX_FMT_YUV420P && f->format != AV_PIX_FMT_YUVJ420P)
		return;
	int lit = lit_permille(f);
	t->next_ns = at_ns + RETRY_NS;
	if (lit <= t->keep_lit)
		return;
	if (keep_frame(t, f) != 0)
		return;
	t->keep_lit = lit;
	t->keep_at = at_ns;
	if (lit >= 10)
		t->done = true;
}

int vtp__thumb_write(vtp__thumb *t, const char *path, char *err, size_t errlen)
{
	if (!t->keep) {
		snprintf(err, errlen, "no video frame for the thumbnail");
		return -1;
	}
	const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
	AVCodecContext *e = c ? avcodec_alloc_context3(c) : NULL;
	AVPacket *pkt = av_packet_alloc();
	int rc = -1;
	if (!e || !pkt) {
		snprintf(err, errlen, "no JPEG encoder");
		goto out;
	}
	e->width = THUMB_W;
	e->height = THUMB_H;
	e->pix_fmt = AV_PIX_FMT_YUVJ420P;
	e->time_base = (AVRational){1, 25};
	e->flags |= AV_CODEC_FLAG_QSCALE;
	e->global_quality = FF_QP2LAMBDA * 3;
	if (avcodec_open2(e, c, NULL) < 0) {
		snprintf(err, errlen, "cannot open the JPEG encoder");
		goto out;
	}
	t->keep->pts = 0;
	t->keep->quality = e->global_quality;
	if (avcodec_send_frame(e, t->keep) < 0 || avcodec_send_frame(e, NULL) < 0 ||
	    avcodec_receive_packet(e, pkt) < 0) {
		snprintf(err, errlen, "JPEG encoding failed");
		goto out;
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create the thumbnail: %s", strerror(errno));
		goto out;
	}
	bool ok = write(fd, pkt->data, (size_t)pkt->size) == pkt->size && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write the thumbnail: %s", strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	av_packet_free(&pkt);
	avcodec_free_context(&e);
	return rc;
}
