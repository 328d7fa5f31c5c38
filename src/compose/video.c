/* Video for the composer: the grid geometry, drawing on a YUV 4:2:0 canvas
 * (fills, scaled blits straight into a tile, name tiles rendered with
 * FreeType, name labels), and per-track decoder threads that run ahead of the
 * compositor through a short queue. */
#include "compose/compose_int.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/utf8.h"

/* ---- layout --------------------------------------------------------------- */

void vtp__layout(int n, int w, int h, vtp__tile *tiles)
{
	if (n <= 0)
		return;
	int cols = (int)ceil(sqrt((double)n));
	int rows = (n + cols - 1) / cols;
	int tw = (w / cols) & ~1, th = (h / rows) & ~1;
	for (int i = 0; i < n; i++) {
		int row = i / cols, col = i % cols;
		int in_row = (row == rows - 1) ? n - row * cols : cols;
		int x0 = ((w - in_row * tw) / 2) & ~1; /* centre a short last row */
		int y0 = ((h - rows * th) / 2) & ~1;
		tiles[i].x = x0 + col * tw;
		tiles[i].y = y0 + row * th;
		tiles[i].w = tw;
		tiles[i].h = th;
	}
}

/* ---- canvas --------------------------------------------------------------- */

void vtp__canvas_fill(AVFrame *c, int x, int y, int w, int h, uint8_t Y, uint8_t U, uint8_t V)
{
	for (int j = 0; j < h; j++)
		memset(c->data[0] + (size_t)(y + j) * c->linesize[0] + x, Y, (size_t)w);
	for (int j = 0; j < h / 2; j++) {
		memset(c->data[1] + (size_t)(y / 2 + j) * c->linesize[1] + x / 2, U, (size_t)w / 2);
		memset(c->data[2] + (size_t)(y / 2 + j) * c->linesize[2] + x / 2, V, (size_t)w / 2);
	}
}

#define BG_Y 16
#define BG_UV 128

/* The size src takes in a tw x th tile (aspect kept, even). false when
 * it would be degenerate. */
static bool fit(const AVFrame *src, int tw, int th, int *dw, int *dh)
{
	if (src->width <= 0 || src->height <= 0 || tw < 2 || th < 2)
		return false;
	double sar = 1.0;
	if (src->sample_aspect_ratio.num > 0 && src->sample_aspect_ratio.den > 0)
		sar = (double)src->sample_aspect_ratio.num / src->sample_aspect_ratio.den;
	double sw = src->width * sar, sh = src->height;
	double k = fmin(tw / sw, th / sh);
	*dw = ((int)(sw * k + 0.5)) & ~1;
	*dh = ((int)(sh * k + 0.5)) & ~1;
	if (*dw > tw)
		*dw = tw;
	if (*dh > th)
		*dh = th;
	return *dw >= 2 && *dh >= 2;
}

/* Tiles are mostly smaller than the pictures (a 640x360 camera in a
 * 212x120 grid tile): an area average is the right filter for that, and
 * cheaper than bilinear's, which widens to the downscale (0.12 against 0.27
 * ms a frame there); going up it is bilinear. bench/compose.sh gives the
 * ffmpeg CLI the same (SCALE_FLAGS). */
static int scale_into(struct SwsContext **sws, const AVFrame *src, uint8_t *const dst[4],
		      const int dls[4], int dw, int dh)
{
	*sws = sws_getCachedContext(*sws, src->width, src->height, src->format, dw, dh,
				    AV_PIX_FMT_YUV420P, SWS_AREA, NULL, NULL, NULL);
	if (!*sws)
		return -1;
	sws_scale(*sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
		  dst, dls);
	return 0;
}

int vtp__canvas_blit(AVFrame *c, const vtp__tile *tile, const vtp__vframe *vf, struct SwsContext **sws,
		     vtp__tile *drawn)
{
	const AVFrame *src = vf->f;
	int dw, dh;
	if (!fit(src, tile->w, tile->h, &dw, &dh))
		return -1;
	int dx = tile->x + (((tile->w - dw) / 2) & ~1);
	int dy = tile->y + (((tile->h - dh) / 2) & ~1);
	if (drawn)
		*drawn = (vtp__tile){dx, dy, dw, dh};
	if (dw < tile->w || dh < tile->h)
		vtp__canvas_fill(c, tile->x, tile->y, tile->w, tile->h, BG_Y, BG_UV, BG_UV);
	const AVFrame *s = vf->scaled;
	if (s && vf->tile_w == tile->w && vf->tile_h == tile->h && s->width == dw &&
	    s->height == dh) {
		for (int y = 0; y < dh; y++)
			memcpy(c->data[0] + (size_t)(dy + y) * c->linesize[0] + dx,
			       s->data[0] + (size_t)y * s->linesize[0], (size_t)dw);
		for (int p = 1; p < 3; p++)
			for (int y = 0; y < dh / 2; y++)
				memcpy(c->data[p] + (size_t)(dy / 2 + y) * c->linesize[p] + dx / 2,
				       s->data[p] + (size_t)y * s->linesize[p], (size_t)dw / 2);
		return 0;
	}
	uint8_t *dst[4] = {
		c->data[0] + (size_t)dy * c->linesize[0] + dx,
		c->data[1] + (size_t)(dy / 2) * c->linesize[1] + dx / 2,
		c->data[2] + (size_t)(dy / 2) * c->linesize[2] + dx / 2,
		NULL,
	};
	int dls[4] = {c->linesize[0], c->linesize[1], c->linesize[2], 0};
	return scale_into(sws, src, dst, dls, dw, dh);
}

/* ---- name tiles --------------------------------------------------------- */

static const char *font_paths[] = {
	"/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
	"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
	"/usr/share/fonts/truetype/freefont/FreeSansBold.ttf",
	"/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
};

static pthread_mutex_t font_lock = PTHREAD_MUTEX_INITIALIZER;
static FT_Library ft_lib;
static FT_Face ft_face;
static bool ft_tried;

static FT_Face font(void)
{
	if (ft_tried)
		return ft_face;
	ft_tried = true;
	if (FT_Init_FreeType(&ft_lib) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof font_paths / sizeof *font_paths; i++)
		if (FT_New_Face(ft_lib, font_paths[i], 0, &ft_face) == 0)
			return ft_face;
	ft_face = NULL;
	VTP_WARN("compose: no font found (install fonts-dejavu-core); name tiles without names");
	return NULL;
}

void vtp__font_cleanup(void)
{
	pthread_mutex_lock(&font_lock);
	if (ft_face)
		FT_Done_Face(ft_face);
	if (ft_lib)
		FT_Done_FreeType(ft_lib);
	ft_face = NULL;
	ft_lib = NULL;
	ft_tried = false;
	pthread_mutex_unlock(&font_lock);
}

/* Width in pixels of s at the face's current size. */
static int text_width(FT_Face f, const uint32_t *cps, size_t n)
{
	int w = 0;
	for (size_t i = 0; i < n; i++)
		if (FT_Load_Char(f, cps[i], FT_LOAD_DEFAULT) == 0)
			w += (int)(f->glyph->advance.x >> 6);
	return w;
}

static void draw_text(AVFrame *c, const vtp__tile *t, FT_Face f, const uint32_t *cps,
		      size_t n, int px)
{
	FT_Set_Pixel_Sizes(f, 0, (FT_UInt)px);
	int w = text_width(f, cps, n);
	int pen_x = t->x + (t->w - w) / 2;
	int base = t->y + t->h / 2 + px / 3;
	for (size_t i = 0; i < n; i++) {
		if (FT_Load_Char(f, cps[i], FT_LOAD_RENDER) != 0)
			continue;
		FT_GlyphSlot g = f->glyph;
		int gx = pen_x + g->bitmap_left, gy = base - g->bitmap_top;
		for (unsigned r = 0; r < g->bitmap.rows; r++) {
			int y = gy + (int)r;
			if (y < t->y || y >= t->y + t->h)
				continue;
			const uint8_t *row = g->bitmap.buffer + (ptrdiff_t)r * g->bitmap.pitch;
			for (unsigned col = 0; col < g->bitmap.width; col++) {
				int x = gx + (int)col;
				if (x < t->x || x >= t->x + t->w || row[col] == 0)
					continue;
				uint8_t *py = c->data[0] + (size_t)y * c->linesize[0] + x;
				*py = (uint8_t)(*py + ((235 - *py) * row[col]) / 255);
				if ((x & 1) == 0 && (y & 1) == 0) {
					uint8_t *pu = c->data[1] + (size_t)(y / 2) * c->linesize[1] + x / 2;
					uint8_t *pv = c->data[2] + (size_t)(y / 2) * c->linesize[2] + x / 2;
					*pu = (uint8_t)(*pu + ((128 - *pu) * row[col]) / 255);
					*pv = (uint8_t)(*pv + ((128 - *pv) * row[col]) / 255);
				}
			}
		}
		pen_x += (int)(g->advance.x >> 6);
	}
}

/* The name as code points (at most 64, control characters left out);
 * the caller frees. */
static uint32_t *code_points(const char *name, size_t *count)
{
	size_t len = strlen(name), n = 0;
	uint32_t *cps = vtp_malloc((len + 1) * sizeof *cps);
	for (size_t i = 0; i < len && n < 64;) {
		uint32_t cp;
		size_t k = vtp_utf8_next((const unsigned char *)name + i, len - i, &cp);
		if (k == 0)
			break;
		i += k;
		if (cp >= 0x20)
			cps[n++] = cp;
	}
	*count = n;
	return cps;
}

AVFrame *vtp__label_image(const char *name, int h, int max_w)
{
	AVFrame *img = NULL;
	size_t n;
	uint32_t *cps = code_points(name, &n);
	pthread_mutex_lock(&font_lock);
	FT_Face f = font();
	int px = h * 2 / 3;
	if (!f || n == 0 || px < 8 || max_w < 2 * h)
		goto out;
	FT_Set_Pixel_Sizes(f, 0, (FT_UInt)px);
	int w = (text_width(f, cps, n) + h / 2 + 1) & ~1;
	if (w > (max_w & ~1))
		w = max_w & ~1;
	img = av_frame_alloc();
	img->width = w;
	img->height = h & ~1;
	img->format = AV_PIX_FMT_YUV420P;
	if (av_frame_get_buffer(img, 0) < 0) {
		av_frame_free(&img);
		goto out;
	}
	vtp__tile t = {0, 0, img->width, img->height};
	vtp__canvas_fill(img, 0, 0, t.w, t.h, 32, 128, 128);
	draw_text(img, &t, f, cps, n, px);
out:
	pthread_mutex_unlock(&font_lock);
	vtp_free(cps);
	return img;
}

void vtp__canvas_name(AVFrame *c, const vtp__tile *t, const char *peer_id, const char *name)
{
	/* A muted colour from the peer id: Y 60..90, U/V around the centre. */
	uint64_t h = vtp_fnv1a(peer_id, strlen(peer_id));
	uint8_t Y = (uint8_t)(60 + h % 31), U = (uint8_t)(128 + (int)((h >> 8) % 41) - 20),
		V = (uint8_t)(128 + (int)((h >> 16) % 41) - 20);
	vtp__canvas_fill(c, t->x, t->y, t->w, t->h, Y, U, V);

	size_t n;
	uint32_t *cps = code_points(name, &n);
	pthread_mutex_lock(&font_lock);
	FT_Face f = font();
	if (f && n > 0) {
		/* As large as fits: a sixth of the tile height, shrunk to 90 % of
		 * its width. */
		int px = t->h / 6;
		if (px > 8) {
			FT_Set_Pixel_Sizes(f, 0, (FT_UInt)px);
			int w = text_width(f, cps, n);
			if (w > t->w * 9 / 10)
				px = px * (t->w * 9 / 10) / w;
			if (px >= 8)
				draw_text(c, t, f, cps, n, px);
		}
	}
	pthread_mutex_unlock(&font_lock);
	vtp_free(cps);
}

/* ---- decoder threads ----------------------------------------------------- *
 *
 * What a track costs follows what is shown. The compositor gives each
 * decoder the stretches of output time its track is on screen (the layout
 * is a pure function of the timeline, so they are known before the first
 * frame). The thread reads the whole packet log, but feeds the decoder only
 * from the last keyframe at or before a stretch to its end; a track never
 * shown is only read. Of what it decodes it queues the frames the output
 * shows: the latest at or before the stretch's start (held until a later
 * one proves it is the one), then every frame up to the stretch's end. */

#define VQ 3
#define H264_PARAMS_MAX 1024

struct vtp__vdec {
	const vtp__ctrack *t;
	int64_t t0;
	vtp__vshow *show;
	size_t nshow;
	int64_t *warm;        /* per stretch: pts to start decoding from */
	bool decode_all;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	vtp__vframe q[VQ];
	int head, count;
	bool eof, quit;
	vtp__vframe cur;
	struct SwsContext *sws; /* the decoder thread's */
	uint64_t errors, dropped, decoded, skipped;
	/* the thread's own */
	size_t ci;            /* the stretch frames are decoded for */
	vtp__vframe held;     /* latest decoded frame at or before show[ci].from */
	uint8_t params[H264_PARAMS_MAX]; /* H.264: the latest SPS/PPS seen */
	size_t nparams;
};

static void vframe_clear(vtp__vframe *v)
{
	av_frame_free(&v->f);
	av_frame_free(&v->scaled);
	v->tile_w = v->tile_h = 0;
}

/* Scales v->f for tile w x h, on this thread. */
static void prescale(vtp__vdec *d, vtp__vframe *v, int tw, int th)
{
	int dw, dh;
	if (!fit(v->f, tw, th, &dw, &dh))
		return;
	AVFrame *s = av_frame_alloc();
	if (!s)
		return;
	s->width = dw;
	s->height = dh;
	s->format = AV_PIX_FMT_YUV420P;
	if (av_frame_get_buffer(s, 0) < 0 ||
	    scale_into(&d->sws, v->f, s->data, s->linesize, dw, dh) != 0) {
		av_frame_free(&s);
		return;
	}
	v->scaled = s;
	v->tile_w = tw;
	v->tile_h = th;
}

/* Queues v (taken) for stretch ci, scaled for its tile; false when told
 * to quit. */
static bool put(vtp__vdec *d, vtp__vframe *v, size_t ci)
{
	if (ci < d->nshow)
		prescale(d, v, d->show[ci].tile_w, d->show[ci].tile_h);
	pthread_mutex_lock(&d->mu);
	while (d->count == VQ && !d->quit)
		pthread_cond_wait(&d->cv, &d->mu);
	bool ok = !d->quit;
	if (ok) {
		d->q[(d->head + d->count) % VQ] = *v;
		d->count++;
		pthread_cond_broadcast(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	if (!ok)
		vframe_clear(v);
	memset(v, 0, sizeof *v);
	return ok;
}

/* The held frame, if any, goes to the queue. */
static bool put_held(vtp__vdec *d)
{
	return !d->held.f || put(d, &d->held, d->ci);
}

/* A decoded frame: held while it may still be overtaken before the
 * stretch begins, queued inside it, dropped after it (or with no stretch
 * left). */
static bool got_frame(vtp__vdec *d, vtp__vframe *v)
{
	int64_t pts = v->f->pts;
	if (d->ci >= d->nshow || pts > d->show[d->ci].to) {
		vframe_clear(v);
		return true;
	}
	if (pts <= d->show[d->ci].from) {
		vframe_clear(&d->held);
		d->held = *v;
		memset(v, 0, sizeof *v);
		return true;
	}
	return put_held(d) && put(d, v, d->ci);
}

static bool drain(vtp__vdec *d, AVCodecContext *ctx)
{
	for (;;) {
		vtp__vframe v = {av_frame_alloc(), NULL, 0, 0};
		if (!v.f || avcodec_receive_frame(ctx, v.f) != 0) {
			vframe_clear(&v);
			return true;
		}
		d->decoded++;
		if (v.f->best_effort_timestamp != AV_NOPTS_VALUE)
			v.f->pts = v.f->best_effort_timestamp;
		if (!got_frame(d, &v))
			return false;
	}
}

/* Frames past the current stretch: it is over (its held frame is the one
 * it shows throughout, if no later came), on to the next. */
static bool advance(vtp__vdec *d, int64_t pts)
{
	while (d->ci < d->nshow && pts > d->show[d->ci].to) {
		if (!put_held(d))
			return false;
		d->ci++;
	}
	return true;
}

/* The pts decoding must start from for each stretch: its last keyframe
 * at or before the stretch's start (none: the first one after). */
static void warm_points(vtp__vdec *d)
{
	const vtp__ctrack *t = d->t;
	d->warm = vtp_malloc((d->nshow ? d->nshow : 1) * sizeof *d->warm);
	size_t k = 0;
	int64_t last = INT64_MIN;
	for (size_t i = 0; i < d->nshow; i++) {
		while (k < t->nkf && vtp__ctrack_map(t, t->kf_ts[k]) - d->t0 <= d->show[i].from)
			last = vtp__ctrack_map(t, t->kf_ts[k++]) - d->t0;
		d->warm[i] = last;
	}
}

static void *vdec_main(void *arg)
{
	vtp__vdec *d = arg;
	const AVCodec *codec = avcodec_find_decoder(d->t->codec == VTP_CODEC_VP8 ? AV_CODEC_ID_VP8
										: AV_CODEC_ID_H264);
	AVCodecContext *ctx = codec ? avcodec_alloc_context3(codec) : NULL;
	vtp__fsrc *src = vtp__fsrc_open(d->t);
	AVPacket *pkt = av_packet_alloc();
	bool h264 = d->t->codec == VTP_CODEC_H264;
	if (ctx) {
		ctx->thread_count = 1;
		ctx->pkt_timebase = (AVRational){1, 1000000000};
	}
	if (!ctx || !src || !pkt || avcodec_open2(ctx, codec, NULL) < 0) {
		VTP_ERROR("compose: cannot decode track %s", d->t->track_id ? d->t->track_id : "?");
		goto out;
	}
	vtp_frame fr;
	int64_t last = INT64_MIN;
	bool on = false;  /* the decoder is being fed */
	while (vtp__fsrc_next(src, &fr)) {
		int64_t pts = vtp__ctrack_map(d->t, fr.ext_ts) - d->t0;
		if (pts <= last)
			pts = last + 1; /* decoders want increasing pts */
		last = pts;
		if (!advance(d, pts))
			goto out;
		bool want = d->decode_all || (d->ci < d->nshow && pts >= d->warm[d->ci]);
		if (h264 && fr.keyframe && (!want || !on)) {
			size_t n = vtp__h264_params(fr.data, fr.len, d->params, sizeof d->params);
			if (n > 0)
				d->nparams = n;
		}
		if (want && !on && !fr.keyframe)
			want = false; /* a decoder starts at a keyframe */
		if (!want) {
			on = false;
			d->skipped++;
			continue;
		}
		/* After a stretch of frames not fed, the decoder starts afresh at
		 * this keyframe (H.264: with the parameter sets it may lack). */
		bool fresh = !on;
		size_t pre = fresh && h264 && vtp__h264_params(fr.data, fr.len, NULL, 0) == 0 ? d->nparams : 0;
		if (fresh)
			avcodec_flush_buffers(ctx);
		on = true;
		if (av_new_packet(pkt, (int)(pre + fr.len)) < 0)
			break;
		memcpy(pkt->data, d->params, pre);
		memcpy(pkt->data + pre, fr.data, fr.len);
		pkt->pts = pkt->dts = pts;
		if (fr.keyframe)
			pkt->flags |= AV_PKT_FLAG_KEY;
		int rc = avcodec_send_packet(ctx, pkt);
		av_packet_unref(pkt);
		if (rc < 0 && rc != AVERROR(EAGAIN))
			d->errors++;
		if (!drain(d, ctx))
			goto out;
	}
	avcodec_send_packet(ctx, NULL);
	if (!drain(d, ctx) || !put_held(d))
		goto out;
	d->dropped = vtp__fsrc_dropped(src);
out:
	vframe_clear(&d->held);
	pthread_mutex_lock(&d->mu);
	d->eof = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	av_packet_free(&pkt);
	avcodec_free_context(&ctx);
	vtp__fsrc_close(src);
	return NULL;
}

vtp__vdec *vtp__vdec_start(const vtp__ctrack *t, int64_t t0, const vtp__vshow *show, size_t n,
			 bool decode_all)
{
	vtp__vdec *d = vtp_calloc(1, sizeof *d);
	d->t = t;
	d->t0 = t0;
	d->decode_all = decode_all;
	d->show = vtp_malloc((n ? n : 1) * sizeof *d->show);
	if (n)
		memcpy(d->show, show, n * sizeof *show);
	d->nshow = n;
	warm_points(d);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (pthread_create(&d->th, NULL, vdec_main, d) != 0) {
		pthread_mutex_destroy(&d->mu);
		pthread_cond_destroy(&d->cv);
		vtp_free(d->show);
		vtp_free(d->warm);
		vtp_free(d);
		return NULL;
	}
	return d;
}

void vtp__vdec_stop(vtp__vdec *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->quit = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->th, NULL);
	for (int i = 0; i < d->count; i++)
		vframe_clear(&d->q[(d->head + i) % VQ]);
	vframe_clear(&d->cur);
	sws_freeContext(d->sws);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	vtp_free(d->show);
	vtp_free(d->warm);
	vtp_free(d);
}

const vtp__vframe *vtp__vdec_at(vtp__vdec *d, int64_t pts_ns)
{
	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (d->count == 0 && !d->eof)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->count == 0 || d->q[d->head].f->pts > pts_ns)
			break;
		vframe_clear(&d->cur);
		d->cur = d->q[d->head];
		d->head = (d->head + 1) % VQ;
		d->count--;
		pthread_cond_broadcast(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	return d->cur.f ? &d->cur : NULL;
}

uint64_t vtp__vdec_errors(const vtp__vdec *d)
{
	return d->errors;
}

uint64_t vtp__vdec_dropped(const vtp__vdec *d)
{
	return d->dropped;
}

uint64_t vtp__vdec_decoded(const vtp__vdec *d)
{
	return d->decoded;
}

uint64_t vtp__vdec_skipped(const vtp__vdec *d)
{
	return d->skipped;
}
