/* The composer's pass (see compose.h, and compose_int.h for how a driver
 * runs it): it walks the timeline at the output frame rate: each output
 * frame shows every present peer's latest decoded frame (or its name
 * tile), and the audio of every track is mixed sample-exactly beside it;
 * or, on the fast path, one track's frames are copied. Decoding runs on
 * one thread per video track ahead of the compositor; encoding runs on
 * its own threads behind it. It owns the output file from its temporary
 * name to its place, with its HLS and thumbnail. What needs the whole
 * timeline (the tracks scanned to their end, who speaks, the layout
 * ahead) is the driver's: compose_batch.c. */
#include "compose/compose_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

void vtp_compose_defaults(vtp_compose_opts *o)
{
	memset(o, 0, sizeof *o);
	o->format = "webm";
	o->video_codec = "vp8";
	o->audio_codec = "opus";
	o->width = 1280;
	o->height = 720;
	o->fps = 30;
	o->bitrate_kbps = 2000;
}

bool vtp_compose_layout_valid(const char *name)
{
	return name && vtp__layout_parse(name) >= 0;
}

/* ---- the job's state ---------------------------------------------------------- */

/* Encoder settings (bench/compose.sh gives the ffmpeg CLI the same). */
#define VP8_CPU_USED "-6" /* a fixed speed; 0..16 would be a wall-clock budget */
#define X264_PRESET "veryfast"

typedef struct vtp__cpackets {
	AVPacket **p;
	size_t n, cap;
} vtp__cpackets;

typedef struct vtp__cencoder {
	vtp__cjob *j;
	int idx;
	pthread_t th;
	AVCodecContext *ctx;
	AVPacket *pkt;
	int64_t local;         /* frames this encoder has taken */
} vtp__cencoder;

typedef struct vtp__cview {
	AVFrame *name_img;     /* the peer's name tile at the size it was drawn */
	AVFrame *label_img;    /* the peer's name label, for tiles label_h high */
	int label_h, label_max;
	struct SwsContext *sws;
	struct SwsContext *screen_sws; /* for its screen share */
	int64_t last_spoke;    /* tick, -1: not yet */
} vtp__cview;

static int vfail(vtp__cjob *j, int code, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&j->mux_mu);
	if (j->r->error[0] == '\0')
		vsnprintf(j->r->error, sizeof j->r->error, fmt, ap);
	pthread_mutex_unlock(&j->mux_mu);
	return code;
}

int vtp__cjob_fail(vtp__cjob *j, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(j, code, fmt, ap);
	va_end(ap);
	return rc;
}

/* This file's short name for vtp__cjob_fail(). */
static int fail(vtp__cjob *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(vtp__cjob *j, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(j, code, fmt, ap);
	va_end(ap);
	return rc;
}

static const char *averr(int rc)
{
	static __thread char buf[AV_ERROR_MAX_STRING_SIZE];
	return av_make_error_string(buf, sizeof buf, rc);
}

void vtp__cjob_init(vtp__cjob *j, const vtp_compose_opts *o, vtp_compose_result *r)
{
	/* libav's chatter (encoder banners) is not news; its warnings are. */
	if (av_log_get_level() > AV_LOG_WARNING)
		av_log_set_level(AV_LOG_WARNING);
	*j = (vtp__cjob){.o = o, .r = r, .last_pct = -1, .consumers = 1, .copied = -1};
	pthread_mutex_init(&j->mux_mu, NULL);
}

/* ---- options ---------------------------------------------------------------- */

int vtp__cjob_check_opts(vtp__cjob *j)
{
	const vtp_compose_opts *o = j->o;
	if (!o->tracks_dir || !o->out_path)
		return fail(j, VTP_COMPOSE_EINVAL, "tracks folder and output path are required");
	if (!o->format || (strcmp(o->format, "webm") != 0 && strcmp(o->format, "mp4") != 0))
		return fail(j, VTP_COMPOSE_EINVAL, "format must be webm or mp4");
	j->mp4 = strcmp(o->format, "mp4") == 0;
	if ((j->layout = vtp__layout_parse(o->layout)) < 0)
		return fail(j, VTP_COMPOSE_EINVAL,
			    "layout must be grid, speaker, presentation, screen or auto");
	const char *vc = o->video_codec ? o->video_codec : (j->mp4 ? "h264" : "vp8");
	const char *ac = o->audio_codec ? o->audio_codec : (j->mp4 ? "aac" : "opus");
	if (j->mp4 ? strcmp(vc, "h264") != 0 : strcmp(vc, "vp8") != 0)
		return fail(j, VTP_COMPOSE_EINVAL, "%s needs video codec %s", o->format,
			    j->mp4 ? "h264" : "vp8");
	if (j->mp4 ? strcmp(ac, "aac") != 0 : strcmp(ac, "opus") != 0)
		return fail(j, VTP_COMPOSE_EINVAL, "%s needs audio codec %s", o->format,
			    j->mp4 ? "aac" : "opus");
	if (o->width < 64 || o->width > 3840 || o->height < 64 || o->height > 2160 ||
	    (o->width & 1) || (o->height & 1))
		return fail(j, VTP_COMPOSE_EINVAL, "size must be even, 64x64 to 3840x2160");
	if (o->fps < 1 || o->fps > 60)
		return fail(j, VTP_COMPOSE_EINVAL, "fps must be 1..60");
	if (o->bitrate_kbps < 100 || o->bitrate_kbps > 20000)
		return fail(j, VTP_COMPOSE_EINVAL, "bitrate must be 100..20000 kbps");
	return 0;
}

int vtp__compose_threads(const vtp_compose_opts *o)
{
	if (o->threads > 0)
		return o->threads;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)(n > 16 ? 16 : n) : 1;
}

/* ---- output ----------------------------------------------------------------- */

int vtp__cjob_open_output(vtp__cjob *j)
{
	j->pkt = av_packet_alloc();
	j->mix = vtp_malloc(4096 * sizeof *j->mix);
	j->atmp = vtp_malloc(4096 * sizeof *j->atmp);
	snprintf(j->tmp, sizeof j->tmp, "%s.tmp-%ld", j->o->out_path, (long)getpid());
	int fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(j, VTP_COMPOSE_EIO, "cannot create the output: %s", strerror(errno));
	close(fd);
	int rc = avformat_alloc_output_context2(&j->oc, NULL, j->mp4 ? "mp4" : "webm", j->tmp);
	if (rc < 0)
		return fail(j, VTP_COMPOSE_ECODEC, "muxer: %s", averr(rc));
	rc = avio_open(&j->oc->pb, j->tmp, AVIO_FLAG_WRITE);
	if (rc < 0)
		return fail(j, VTP_COMPOSE_EIO, "cannot open the output: %s", averr(rc));
	return 0;
}

static AVCodecContext *video_encoder(vtp__cjob *j, int kbps, int nthreads)
{
	const vtp_compose_opts *o = j->o;
	const AVCodec *c = avcodec_find_encoder_by_name(j->mp4 ? "libx264" : "libvpx");
	if (!c)
		return NULL;
	AVCodecContext *e = avcodec_alloc_context3(c);
	e->width = o->width;
	e->height = o->height;
	e->pix_fmt = AV_PIX_FMT_YUV420P;
	e->time_base = (AVRational){1, o->fps};
	e->framerate = (AVRational){o->fps, 1};
	e->bit_rate = (int64_t)kbps * 1000;
	e->gop_size = o->fps * 2;
	e->thread_count = nthreads;
	if (j->oc->oformat->flags & AVFMT_GLOBALHEADER)
		e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	AVDictionary *d = NULL;
	if (j->mp4) {
		av_dict_set(&d, "preset", X264_PRESET, 0);
	} else {
		av_dict_set(&d, "deadline", "realtime", 0);
		av_dict_set(&d, "cpu-used", VP8_CPU_USED, 0);
		av_dict_set(&d, "lag-in-frames", "0", 0);
	}
	int rc = avcodec_open2(e, c, &d);
	av_dict_free(&d);
	if (rc < 0) {
		VTP_ERROR("compose: video encoder: %s", averr(rc));
		avcodec_free_context(&e);
	}
	return e;
}

static AVCodecContext *audio_encoder(vtp__cjob *j)
{
	const AVCodec *c = avcodec_find_encoder_by_name(j->mp4 ? "aac" : "libopus");
	if (!c)
		return NULL;
	AVCodecContext *e = avcodec_alloc_context3(c);
	e->sample_rate = VTP_AUDIO_RATE;
	av_channel_layout_default(&e->ch_layout, 2);
	e->sample_fmt = j->mp4 ? AV_SAMPLE_FMT_FLTP : AV_SAMPLE_FMT_FLT;
	e->bit_rate = j->mp4 ? 128000 : 96000;
	e->time_base = (AVRational){1, VTP_AUDIO_RATE};
	if (j->oc->oformat->flags & AVFMT_GLOBALHEADER)
		e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	int rc = avcodec_open2(e, c, NULL);
	if (rc < 0) {
		VTP_ERROR("compose: audio encoder: %s", averr(rc));
		avcodec_free_context(&e);
		return NULL;
	}
	j->aframe = av_frame_alloc();
	j->aframe->format = e->sample_fmt;
	j->aframe->nb_samples = e->frame_size > 0 ? e->frame_size : 960;
	av_channel_layout_copy(&j->aframe->ch_layout, &e->ch_layout);
	j->aframe->sample_rate = VTP_AUDIO_RATE;
	if (av_frame_get_buffer(j->aframe, 0) < 0) {
		av_frame_free(&j->aframe);
		avcodec_free_context(&e);
	}
	return e;
}

static int write_packet(vtp__cjob *j, AVPacket *pkt)
{
	pthread_mutex_lock(&j->mux_mu);
	int rc = av_interleaved_write_frame(j->oc, pkt);
	pthread_mutex_unlock(&j->mux_mu);
	if (rc < 0)
		return fail(j, VTP_COMPOSE_EIO, "writing the output: %s", averr(rc));
	return 0;
}

static int write_packets(vtp__cjob *j, AVCodecContext *enc, AVStream *st, AVPacket *pkt)
{
	for (;;) {
		int rc = avcodec_receive_packet(enc, pkt);
		if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
			return 0;
		if (rc < 0)
			return fail(j, VTP_COMPOSE_ECODEC, "encoder: %s", averr(rc));
		av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
		pkt->stream_index = st->index;
		if ((rc = write_packet(j, pkt)) != 0)
			return rc;
	}
}

/* Soft clip above 0.9 (tanh knee), after 2 dB of headroom. */
static inline float soft(float x)
{
	x *= 0.794f;
	float a = fabsf(x);
	if (a <= 0.9f)
		return x;
	float y = 0.9f + 0.1f * tanhf((a - 0.9f) / 0.1f);
	return x < 0 ? -y : y;
}

/* The HLS encoder's packets to the HLS writer. */
/* An HLS step's failure (the writer's is I/O, the rest the codec's). */
static int hls_fail(vtp__cjob *j, int rc, const char *what)
{
	return fail(j, strcmp(what, "writing HLS") == 0 ? VTP_COMPOSE_EIO : VTP_COMPOSE_ECODEC,
		    "%s: %s", what, averr(rc));
}

static int hls_packets(vtp__cjob *j, AVCodecContext *e, AVPacket *pkt, int which)
{
	const char *what = NULL;
	int rc = vtp__hls_drain(j->hls, e, pkt, which, &what);
	return rc < 0 ? hls_fail(j, rc, what) : 0;
}

/* WebM's HLS: the same mixed audio (interleaved stereo) to AAC, in
 * 1024-sample frames; flush sends what is left. */
static int hls_audio(vtp__cjob *j, const float *lr, int n)
{
	if (n > 0) {
		for (int k = 0; k < n; k++)
			j->hbuf[k] = lr[2 * k];
		void *planes[2] = {j->hbuf, j->hbuf};
		if (av_audio_fifo_write(j->hfifo, planes, n) < n)
			return fail(j, VTP_COMPOSE_ECODEC, "out of memory");
	}
	const char *what = NULL;
	int rc = vtp__hls_aac(j->hls, j->haenc, j->hfifo, j->haframe, j->hapkt, &j->hapos, n == 0,
			     &what);
	return rc < 0 ? hls_fail(j, rc, what) : 0;
}

/* ---- speech ------------------------------------------------------------------ */

/* Adds the squares of n samples at timeline position pos to the track's
 * ticks. */
void vtp__cjob_energy_add(vtp__cjob *j, size_t ti, int64_t pos, const float *x, int n)
{
	float *e = j->esum[ti];
	for (int k = 0; k < n; k++) {
		int64_t tick = (pos + k) / VTP__TICK_SAMPLES;
		if (tick >= 0 && (size_t)tick < j->nticks)
			e[tick] += x[k] * x[k];
	}
}

/* Mixes and encodes audio up to timeline sample `until`. */
static int audio_until(vtp__cjob *j, int64_t until)
{
	int fs = j->aenc->frame_size > 0 ? j->aenc->frame_size : 960;
	while (j->apos + fs <= until) {
		memset(j->mix, 0, (size_t)fs * sizeof *j->mix);
		for (size_t i = 0; i < j->nt; i++) {
			if (!j->adec[i])
				continue;
			if (!j->esum || !j->esum[i]) {
				vtp__adec_mix(j->adec[i], j->apos, j->mix, fs);
				continue;
			}
			/* A microphone measured in this pass (grid): its own
			 * samples first, then into the mix. */
			memset(j->atmp, 0, (size_t)fs * sizeof *j->atmp);
			vtp__adec_mix(j->adec[i], j->apos, j->atmp, fs);
			vtp__cjob_energy_add(j, i, j->apos, j->atmp, fs);
			for (int k = 0; k < fs; k++)
				j->mix[k] += j->atmp[k];
		}
		int rc = av_frame_make_writable(j->aframe);
		if (rc < 0)
			return fail(j, VTP_COMPOSE_ECODEC, "audio frame: %s", averr(rc));
		j->aframe->nb_samples = fs;
		if (j->aenc->sample_fmt == AV_SAMPLE_FMT_FLTP) {
			float *l = (float *)j->aframe->data[0], *r = (float *)j->aframe->data[1];
			for (int k = 0; k < fs; k++)
				l[k] = r[k] = soft(j->mix[k]);
		} else {
			float *lr = (float *)j->aframe->data[0];
			for (int k = 0; k < fs; k++)
				lr[2 * k] = lr[2 * k + 1] = soft(j->mix[k]);
			if (j->haenc && (rc = hls_audio(j, lr, fs)) != 0)
				return rc;
		}
		j->aframe->pts = j->apos;
		rc = avcodec_send_frame(j->aenc, j->aframe);
		if (rc < 0)
			return fail(j, VTP_COMPOSE_ECODEC, "audio encoder: %s", averr(rc));
		if ((rc = write_packets(j, j->aenc, j->as, j->pkt)) != 0)
			return rc;
		j->apos += fs;
	}
	return 0;
}

static void progress(vtp__cjob *j, int64_t done_ns)
{
	int64_t len = j->t1 - j->t0;
	int pct = len > 0 ? (int)(done_ns * 100 / len) : 100;
	if (pct > 99)
		pct = 99; /* 100 once the file is in place */
	if (pct > j->last_pct && j->o->progress) {
		j->last_pct = pct;
		j->o->progress(j->o->ud, pct);
	}
}

/* ---- composed video ------------------------------------------------------- */

static int peer_track_at(vtp__cjob *j, int peer, int64_t at_ns)
{
	/* The peer's video track covering at (the latest started), else -1. */
	int best = -1;
	for (size_t i = 0; i < j->nt; i++) {
		const vtp__ctrack *t = &j->t[i];
		if (!t->video || t->peer != peer || t->frames == 0 || t->source != VTP__SRC_CAMERA)
			continue;
		if (t->start_ns <= at_ns && at_ns < t->end_ns &&
		    (best < 0 || t->start_ns > j->t[best].start_ns))
			best = (int)i;
	}
	return best;
}

static void copy_rect(AVFrame *dst, const vtp__tile *t, const AVFrame *src)
{
	for (int y = 0; y < t->h; y++)
		memcpy(dst->data[0] + (size_t)(t->y + y) * dst->linesize[0] + t->x,
		       src->data[0] + (size_t)y * src->linesize[0], (size_t)t->w);
	for (int p = 1; p < 3; p++)
		for (int y = 0; y < t->h / 2; y++)
			memcpy(dst->data[p] + (size_t)(t->y / 2 + y) * dst->linesize[p] + t->x / 2,
			       src->data[p] + (size_t)y * src->linesize[p], (size_t)t->w / 2);
}

static void name_tile(vtp__cjob *j, AVFrame *canvas, int peer, const vtp__tile *tile)
{
	vtp__cview *v = &j->pv[peer];
	if (!v->name_img || v->name_img->width != tile->w || v->name_img->height != tile->h) {
		av_frame_free(&v->name_img);
		v->name_img = av_frame_alloc();
		v->name_img->width = tile->w;
		v->name_img->height = tile->h;
		v->name_img->format = AV_PIX_FMT_YUV420P;
		if (av_frame_get_buffer(v->name_img, 0) < 0) {
			av_frame_free(&v->name_img);
			vtp__canvas_fill(canvas, tile->x, tile->y, tile->w, tile->h, 16, 128, 128);
			return;
		}
		vtp__tile local = {0, 0, tile->w, tile->h};
		vtp__canvas_name(v->name_img, &local, j->p[peer].peer_id, j->p[peer].full_name);
	}
	copy_rect(canvas, tile, v->name_img);
}

/* Writes every finished chunk whose predecessors are written. Under
 * enc_mu. */
static int write_chunks(vtp__cjob *j)
{
	int rc = 0;
	while (j->next_chunk < j->nchunks && j->chunk_done[j->next_chunk]) {
		vtp__cpackets *l = &j->chunk[j->next_chunk];
		for (size_t i = 0; i < l->n; i++) {
			if (rc == 0) {
				av_packet_rescale_ts(l->p[i], j->enc[0].ctx->time_base, j->vs->time_base);
				l->p[i]->stream_index = j->vs->index;
				rc = write_packet(j, l->p[i]);
			}
			av_packet_free(&l->p[i]);
		}
		vtp_free(l->p);
		memset(l, 0, sizeof *l);
		j->next_chunk++;
	}
	return rc;
}

/* Moves the encoder's packets into chunk c, their pts made global
 * (first frame of the chunk = k0, its local count then = base). */
static int collect_packets(vtp__cjob *j, vtp__cencoder *w, int64_t c, int64_t k0, int64_t base)
{
	for (;;) {
		int rc = avcodec_receive_packet(w->ctx, w->pkt);
		if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
			return 0;
		if (rc < 0)
			return fail(j, VTP_COMPOSE_ECODEC, "video encoder: %s", averr(rc));
		AVPacket *p = av_packet_clone(w->pkt);
		av_packet_unref(w->pkt);
		if (!p)
			return fail(j, VTP_COMPOSE_ECODEC, "out of memory");
		p->pts = k0 + (p->pts - base);
		p->dts = p->dts == AV_NOPTS_VALUE ? p->pts : k0 + (p->dts - base);
		pthread_mutex_lock(&j->enc_mu);
		vtp__cpackets *l = &j->chunk[c];
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 64;
			l->p = vtp_realloc(l->p, l->cap * sizeof *l->p);
		}
		l->p[l->n++] = p;
		pthread_mutex_unlock(&j->enc_mu);
	}
}

/* Frame k from slot s, when it is there: a reference of the consumer's own
 * (its pts and type are the consumer's to set). NULL when an encoder
 * failed (or out of memory: then failed is set). */
static AVFrame *take_slot(vtp__cjob *j, int s, int64_t k)
{
	AVFrame *f = NULL;
	pthread_mutex_lock(&j->enc_mu);
	while (j->slot_frame[s] != k && !j->enc_failed)
		pthread_cond_wait(&j->enc_cv, &j->enc_mu);
	if (!j->enc_failed && !(f = av_frame_clone(j->slot[s]))) {
		j->enc_failed = true;
		pthread_cond_broadcast(&j->enc_cv);
	}
	pthread_mutex_unlock(&j->enc_mu);
	return f;
}

/* A consumer is done with slot s's frame; the last one frees the slot. */
static void release_slot(vtp__cjob *j, int s)
{
	pthread_mutex_lock(&j->enc_mu);
	if (--j->slot_refs[s] <= 0)
		j->slot_frame[s] = -1;
	pthread_cond_broadcast(&j->enc_cv);
	pthread_mutex_unlock(&j->enc_mu);
}

/* WebM: every composed frame also goes to x264 for HLS, in order. */
static void *hls_main(void *arg)
{
	vtp__cjob *j = arg;
	int rc = 0;
	for (int64_t k = 0; k < j->frames && rc == 0; k++) {
		int s = (int)(k % j->nslot);
		AVFrame *ref = take_slot(j, s, k);
		if (!ref)
			return NULL;
		ref->pts = k;
		ref->pict_type = AV_PICTURE_TYPE_NONE;
		/* x264 copies the picture in: the slot is free once it returns. */
		int sr = avcodec_send_frame(j->hvenc, ref);
		av_frame_free(&ref);
		if (sr < 0)
			rc = fail(j, VTP_COMPOSE_ECODEC, "HLS video encoder: %s", averr(sr));
		else
			rc = hls_packets(j, j->hvenc, j->hpkt, 0);
		release_slot(j, s);
	}
	if (rc == 0) {
		int sr = avcodec_send_frame(j->hvenc, NULL);
		rc = sr < 0 && sr != AVERROR_EOF ? fail(j, VTP_COMPOSE_ECODEC, "HLS flush: %s", averr(sr))
						 : hls_packets(j, j->hvenc, j->hpkt, 0);
	}
	if (rc != 0) {
		pthread_mutex_lock(&j->enc_mu);
		j->enc_failed = true;
		pthread_cond_broadcast(&j->enc_cv);
		pthread_mutex_unlock(&j->enc_mu);
	}
	return NULL;
}

static void *encoder_main(void *arg)
{
	vtp__cencoder *w = arg;
	vtp__cjob *j = w->j;
	int rc = 0;
	for (int64_t c = w->idx; c < j->nchunks && rc == 0; c += j->nenc) {
		int64_t k0 = c * j->gop, k1 = k0 + j->gop < j->frames ? k0 + j->gop : j->frames;
		int64_t base = w->local;
		for (int64_t k = k0; k < k1 && rc == 0; k++) {
			int s = (int)(k % j->nslot);
			AVFrame *f = take_slot(j, s, k);
			if (!f)
				return NULL;
			f->pts = w->local++;
			f->pict_type = (k == k0 && j->nenc > 1) ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
			int sr = avcodec_send_frame(w->ctx, f);
			av_frame_free(&f);
			if (sr < 0)
				rc = fail(j, VTP_COMPOSE_ECODEC, "video encoder: %s", averr(sr));
			else
				rc = collect_packets(j, w, c, k0, base);
			release_slot(j, s);
		}
		if (rc == 0 && k1 == j->frames) {
			/* The last chunk: whatever the encoder still holds. */
			int sr = avcodec_send_frame(w->ctx, NULL);
			if (sr < 0 && sr != AVERROR_EOF)
				rc = fail(j, VTP_COMPOSE_ECODEC, "encoder flush: %s", averr(sr));
			else
				rc = collect_packets(j, w, c, k0, base);
		}
		pthread_mutex_lock(&j->enc_mu);
		if (rc == 0) {
			j->chunk_done[c] = true;
			rc = write_chunks(j);
		}
		if (rc != 0)
			j->enc_failed = true;
		pthread_cond_broadcast(&j->enc_cv);
		pthread_mutex_unlock(&j->enc_mu);
	}
	return NULL;
}

/* A free slot for output frame k (its buffer writable). NULL when an
 * encoder failed. */
static AVFrame *canvas_for(vtp__cjob *j, int64_t k)
{
	int s = (int)(k % j->nslot);
	pthread_mutex_lock(&j->enc_mu);
	while (j->slot_frame[s] != -1 && !j->enc_failed)
		pthread_cond_wait(&j->enc_cv, &j->enc_mu);
	bool failed = j->enc_failed;
	pthread_mutex_unlock(&j->enc_mu);
	if (failed)
		return NULL;
	if (!j->slot[s]) {
		AVFrame *c = av_frame_alloc();
		c->width = j->o->width;
		c->height = j->o->height;
		c->format = AV_PIX_FMT_YUV420P;
		if (av_frame_get_buffer(c, 0) < 0) {
			av_frame_free(&c);
			fail(j, VTP_COMPOSE_ECODEC, "out of memory");
			return NULL;
		}
		j->slot[s] = c;
	}
	if (av_frame_make_writable(j->slot[s]) < 0) {
		fail(j, VTP_COMPOSE_ECODEC, "out of memory");
		return NULL;
	}
	return j->slot[s];
}

static void canvas_done(vtp__cjob *j, int64_t k)
{
	pthread_mutex_lock(&j->enc_mu);
	j->slot_frame[k % j->nslot] = k;
	j->slot_refs[k % j->nslot] = j->consumers;
	pthread_cond_broadcast(&j->enc_cv);
	pthread_mutex_unlock(&j->enc_mu);
}

static int start_encoders(vtp__cjob *j, int vkbps)
{
	const vtp_compose_opts *o = j->o;
	int nt = vtp__compose_threads(o);
	j->nenc = j->mp4 ? 1 : nt;
	j->gop = (int64_t)o->fps * 2;
	j->nchunks = (j->frames + j->gop - 1) / j->gop;
	/* Encoders work on consecutive chunks in lockstep: the compositor
	 * needs to run (nenc - 1) chunks ahead of the slowest. */
	j->nslot = j->nenc > 1 ? (int)(j->gop * (j->nenc - 1)) + 8 : 4;
	j->slot = vtp_calloc((size_t)j->nslot, sizeof *j->slot);
	j->slot_frame = vtp_malloc((size_t)j->nslot * sizeof *j->slot_frame);
	j->slot_refs = vtp_calloc((size_t)j->nslot, sizeof *j->slot_refs);
	for (int i = 0; i < j->nslot; i++)
		j->slot_frame[i] = -1;
	j->chunk = vtp_calloc((size_t)(j->nchunks ? j->nchunks : 1), sizeof *j->chunk);
	j->chunk_done = vtp_calloc((size_t)(j->nchunks ? j->nchunks : 1), sizeof *j->chunk_done);
	pthread_mutex_init(&j->enc_mu, NULL);
	pthread_cond_init(&j->enc_cv, NULL);
	j->enc_init = true;
	j->enc = vtp_calloc((size_t)j->nenc, sizeof *j->enc);
	for (int i = 0; i < j->nenc; i++) {
		j->enc[i].j = j;
		j->enc[i].idx = i;
		j->enc[i].pkt = av_packet_alloc();
		j->enc[i].ctx = video_encoder(j, vkbps, j->nenc > 1 ? 1 : nt);
		if (!j->enc[i].ctx)
			return fail(j, VTP_COMPOSE_ECODEC, "cannot open the video encoder");
	}
	j->venc = j->enc[0].ctx;
	return 0;
}

static int run_encoders(vtp__cjob *j)
{
	for (int i = 0; i < j->nenc; i++) {
		if (pthread_create(&j->enc[i].th, NULL, encoder_main, &j->enc[i]) != 0)
			return fail(j, VTP_COMPOSE_ECODEC, "cannot start an encoder thread");
		j->running++;
	}
	if (j->hvenc) {
		if (pthread_create(&j->hth, NULL, hls_main, j) != 0)
			return fail(j, VTP_COMPOSE_ECODEC, "cannot start the HLS encoder thread");
		j->hls_running = true;
	}
	return 0;
}

/* Waits for the encoder threads (after the last frame, or to abandon). */
static int stop_encoders(vtp__cjob *j, bool abandon)
{
	if (abandon && j->enc_init) {
		pthread_mutex_lock(&j->enc_mu);
		j->enc_failed = true;
		pthread_cond_broadcast(&j->enc_cv);
		pthread_mutex_unlock(&j->enc_mu);
	}
	for (int i = 0; i < j->running; i++)
		pthread_join(j->enc[i].th, NULL);
	j->running = 0;
	if (j->hls_running)
		pthread_join(j->hth, NULL);
	j->hls_running = false;
	if (j->enc_failed)
		return VTP_COMPOSE_ECODEC;
	return j->next_chunk == j->nchunks ? 0 : fail(j, VTP_COMPOSE_ECODEC, "video chunks missing");
}

static void free_encoders(vtp__cjob *j)
{
	for (int i = 0; j->enc && i < j->nenc; i++) {
		avcodec_free_context(&j->enc[i].ctx);
		av_packet_free(&j->enc[i].pkt);
	}
	j->venc = NULL;
	vtp_free(j->enc);
	for (int i = 0; j->slot && i < j->nslot; i++)
		av_frame_free(&j->slot[i]);
	vtp_free(j->slot);
	vtp_free(j->slot_frame);
	vtp_free(j->slot_refs);
	for (int64_t c = 0; j->chunk && c < j->nchunks; c++) {
		for (size_t i = 0; i < j->chunk[c].n; i++)
			av_packet_free(&j->chunk[c].p[i]);
		vtp_free(j->chunk[c].p);
	}
	vtp_free(j->chunk);
	vtp_free(j->chunk_done);
	if (j->enc_init) {
		pthread_mutex_destroy(&j->enc_mu);
		pthread_cond_destroy(&j->enc_cv);
	}
}

/* The screen share live at abs (the latest started), or -1. */
static int live_screen(vtp__cjob *j, int64_t abs_at)
{
	int best = -1;
	for (size_t i = 0; i < j->nt; i++) {
		const vtp__ctrack *t = &j->t[i];
		if (!t->video || t->frames == 0 || t->source != VTP__SRC_SCREEN)
			continue;
		if (t->start_ns <= abs_at && abs_at < t->end_ns &&
		    (best < 0 || t->start_ns > j->t[best].start_ns))
			best = (int)i;
	}
	return best;
}

/* A name label at the bottom left of a tile showing a picture; the
 * label is rendered once per peer and tile height, then only copied. */
static void label_tile(vtp__cjob *j, AVFrame *canvas, int peer, const vtp__tile *tile)
{
	vtp__cview *v = &j->pv[peer];
	/* an eighth of the tile: 14 px (9 px letters) in a 31-tile grid */
	int lh = (tile->h / 8) & ~1;
	if (lh > 36)
		lh = 36;
	if (lh < 14 || tile->w < 64)
		return;
	int max = tile->w - 8;
	if (v->label_h != lh || v->label_max != max) {
		av_frame_free(&v->label_img);
		v->label_img = vtp__label_image(j->p[peer].full_name, lh, max);
		v->label_h = lh;
		v->label_max = max;
	}
	if (!v->label_img)
		return;
	vtp__tile at = {tile->x + 4, tile->y + tile->h - lh - 4, v->label_img->width,
			v->label_img->height};
	copy_rect(canvas, &at, v->label_img);
}

/* The tiles of one instant in a layout other than grid. */
static int scene_tiles(vtp__cjob *j, int64_t at, int64_t abs_at, vtp__lperson *people, vtp__ltile *tiles)
{
	const vtp_compose_opts *o = j->o;
	size_t tick = (size_t)(at / VTP__TICK_NS);
	if (tick >= j->nticks)
		tick = j->nticks - 1;
	int mp = j->main_of_tick ? j->main_of_tick[tick] : -1;
	vtp__lscene sc = {.layout = j->layout, .w = o->width, .h = o->height, .people = people,
			  .main = -1, .screen = -1, .screen_peer = -1};
	for (size_t i = 0; i < j->np; i++) {
		int p = j->join[i];
		if (j->speaking && j->speaking[(size_t)p * j->nticks + tick])
			j->pv[p].last_spoke = (int64_t)tick;
		if (!j->p[p].person || !(j->p[p].start_ns <= abs_at && abs_at < j->p[p].end_ns))
			continue;
		if (p == mp)
			sc.main = sc.n;
		people[sc.n++] = (vtp__lperson){p, peer_track_at(j, p, abs_at), j->pv[p].last_spoke};
	}
	sc.screen = live_screen(j, abs_at);
	if (sc.screen >= 0) {
		const vtp__ctrack *t = &j->t[sc.screen];
		sc.screen_peer = t->peer;
		sc.screen_w = t->width;
		sc.screen_h = t->height;
	}
	int used;
	return vtp__layout_scene(&sc, tiles, &used);
}

void vtp__cframe_layout_init(const vtp__cjob *j, vtp__cframe_layout *fs)
{
	size_t cap = j->np + 1;
	fs->present = vtp_malloc(cap * sizeof *fs->present);
	fs->people = vtp_malloc(cap * sizeof *fs->people);
	fs->grid = vtp_malloc(cap * sizeof *fs->grid);
	fs->tiles = vtp_malloc(cap * sizeof *fs->tiles);
	fs->prev_n = -1;
}

void vtp__cframe_layout_free(vtp__cframe_layout *fs)
{
	vtp_free(fs->present);
	vtp_free(fs->people);
	vtp_free(fs->grid);
	vtp_free(fs->tiles);
}

int vtp__cjob_frame_tiles(vtp__cjob *j, int64_t at, vtp__cframe_layout *fs)
{
	int64_t abs_at = j->t0 + at;
	if (j->layout != VTP__LAYOUT_GRID)
		return scene_tiles(j, at, abs_at, fs->people, fs->tiles);
	/* Present people in join order; the geometry only changes with
	 * their number. */
	int n = 0;
	for (size_t i = 0; i < j->np; i++) {
		int p = j->join[i];
		if (j->p[p].person && j->p[p].start_ns <= abs_at && abs_at < j->p[p].end_ns)
			fs->present[n++] = p;
	}
	if (n != fs->prev_n) {
		vtp__layout(n, j->o->width, j->o->height, fs->grid);
		fs->prev_n = n;
	}
	for (int i = 0; i < n; i++) {
		int ti = peer_track_at(j, fs->present[i], abs_at);
		fs->tiles[i] = (vtp__ltile){fs->grid[i], fs->present[i], ti, ti >= 0};
	}
	return n;
}

void vtp__cjob_reset_layout(vtp__cjob *j)
{
	for (size_t k = 0; k < j->np; k++)
		j->pv[k].last_spoke = -1;
}

/* Composes output frame k (instant at, relative to t0) into its slot for
 * the encoders, then the audio up to the frame's end. */
static int compose_frame(vtp__cjob *j, int64_t k, int64_t at)
{
	const vtp_compose_opts *o = j->o;
	int64_t half = 500000000LL / o->fps;
	int n = vtp__cjob_frame_tiles(j, at, &j->fl);
	AVFrame *canvas = canvas_for(j, k);
	if (!canvas)
		return VTP_COMPOSE_ECODEC;
	vtp__canvas_fill(canvas, 0, 0, o->width, o->height, 16, 128, 128);
	/* Only the tracks on screen are asked for a frame: the others'
	 * decoders skip ahead to where they show next (the driver told
	 * each where, from the same layout). */
	for (int i = 0; i < n; i++) {
		const vtp__ltile *tl = &j->fl.tiles[i];
		int ti = tl->track;
		const vtp__vframe *f = ti >= 0 && j->vdec[ti] ? vtp__vdec_at(j->vdec[ti], at + half) : NULL;
		bool screen = ti >= 0 && j->t[ti].source == VTP__SRC_SCREEN;
		struct SwsContext **sws = screen ? &j->pv[j->t[ti].peer].screen_sws
						 : tl->peer >= 0 ? &j->pv[tl->peer].sws : NULL;
		vtp__tile pic; /* where the picture went: the label goes on it */
		bool drawn = f && sws && vtp__canvas_blit(canvas, &tl->r, f, sws, &pic) == 0;
		if (!drawn && screen)
			vtp__canvas_fill(canvas, tl->r.x, tl->r.y, tl->r.w, tl->r.h, 16, 128, 128);
		else if (!drawn && tl->peer >= 0)
			name_tile(j, canvas, tl->peer, &tl->r);
		else if (tl->label)
			label_tile(j, canvas, tl->peer, &pic);
	}
	if (vtp__thumb_wants(j->thumb, at))
		vtp__thumb_offer(j->thumb, canvas, at);
	canvas_done(j, k);
	j->r->frames_out++;
	int rc = audio_until(j, (at + 1000000000LL / o->fps) * VTP_AUDIO_RATE / 1000000000LL);
	progress(j, at);
	return rc;
}

int vtp__cjob_advance(vtp__cjob *j, int64_t until_ns)
{
	int rc = 0;
	while (rc == 0 && j->next_frame < j->frames) {
		int64_t k = j->next_frame;
		int64_t at = k * 1000000000LL / j->o->fps; /* relative to t0 */
		if (at >= until_ns)
			break;
		rc = compose_frame(j, k, at);
		j->next_frame = k + 1;
	}
	return rc;
}

/* Adds the audio stream (after the video one) and writes the header. */
static int write_header(vtp__cjob *j)
{
	if (!(j->as = avformat_new_stream(j->oc, NULL)))
		return fail(j, VTP_COMPOSE_ECODEC, "out of memory");
	avcodec_parameters_from_context(j->as->codecpar, j->aenc);
	j->as->time_base = j->aenc->time_base;
	AVDictionary *d = NULL;
	if (j->mp4)
		av_dict_set(&d, "movflags", "+faststart", 0);
	int rc = avformat_write_header(j->oc, &d);
	av_dict_free(&d);
	return rc < 0 ? fail(j, VTP_COMPOSE_ECODEC, "muxer header: %s", averr(rc)) : 0;
}

/* ---- fast path: one video track copied ----------------------------------- */

/* The sender's frame rate when it is whole (from the smallest timestamp
 * step between frames, which loss cannot make smaller), else 0. */
int vtp__whole_fps(const vtp__ctrack *t)
{
	if (t->min_step == 0)
		return 0;
	double fps = (double)t->clock / (double)t->min_step, r = floor(fps + 0.5);
	return r >= 1 && r <= 120 && fabs(fps - r) < 0.01 * r ? (int)r : 0;
}

static int fast_video_stream(vtp__cjob *j, const vtp__ctrack *t, vtp__fsrc *src, vtp_frame *first)
{
	j->vs = avformat_new_stream(j->oc, NULL);
	if (!j->vs)
		return fail(j, VTP_COMPOSE_ECODEC, "out of memory");
	AVCodecParameters *cp = j->vs->codecpar;
	cp->codec_type = AVMEDIA_TYPE_VIDEO;
	cp->codec_id = t->codec == VTP_CODEC_VP8 ? AV_CODEC_ID_VP8 : AV_CODEC_ID_H264;
	cp->width = t->width;
	cp->height = t->height;
	cp->format = AV_PIX_FMT_YUV420P;
	j->vs->time_base = (AVRational){1, 90000};
	/* The sender's frame rate, when whole (players show it; WebM writes
	 * it as DefaultDuration). */
	int fps = vtp__whole_fps(t);
	if (fps)
		j->vs->avg_frame_rate = (AVRational){fps, 1};
	/* The first keyframe (the depacketizer starts at one). */
	while (vtp__fsrc_next(src, first))
		if (first->keyframe)
			break;
	if (t->codec == VTP_CODEC_H264) {
		uint8_t buf[1024];
		size_t n = vtp__h264_params(first->data, first->len, buf, sizeof buf);
		if (n == 0)
			return fail(j, VTP_COMPOSE_ECODEC, "no SPS/PPS in the first keyframe");
		cp->extradata = av_mallocz(n + AV_INPUT_BUFFER_PADDING_SIZE);
		memcpy(cp->extradata, buf, n);
		cp->extradata_size = (int)n;
	}
	return 0;
}

int vtp__cjob_copy(vtp__cjob *j, int ti)
{
	const vtp__ctrack *t = &j->t[ti];
	j->copied = ti;
	vtp__fsrc *src = vtp__fsrc_open(t);
	if (!src)
		return fail(j, VTP_COMPOSE_EIO, "cannot reopen track");
	vtp_frame f;
	int rc = fast_video_stream(j, t, src, &f);
	if (rc == 0 && !(j->aenc = audio_encoder(j)))
		rc = fail(j, VTP_COMPOSE_ECODEC, "no audio encoder");
	if (rc == 0) {
		rc = write_header(j);
	}
	/* Timestamps on one straight line from the first frame's recorder
	 * time to the last one's: the sender's own spacing, drift included,
	 * none of the clock map's small steps (players and muxers guess the
	 * frame rate from them). In the stream's time base, strictly rising. */
	int64_t m0 = vtp__ctrack_map(t, t->first_ext_ts), m1 = vtp__ctrack_map(t, t->last_ext_ts);
	long double slope = t->last_ext_ts > t->first_ext_ts
				    ? (long double)(m1 - m0) / (long double)(t->last_ext_ts - t->first_ext_ts)
				    : 1e9L / t->clock;
	int64_t last = INT64_MIN;
	bool have = rc == 0;
	while (have && rc == 0) {
		int64_t ns = m0 + (int64_t)(slope * (long double)(f.ext_ts - t->first_ext_ts)) - j->t0;
		int64_t pts = av_rescale_q(ns, (AVRational){1, 1000000000}, j->vs->time_base);
		if (pts <= last)
			pts = last + 1;
		last = pts;
		if ((rc = audio_until(j, ns * VTP_AUDIO_RATE / 1000000000LL)) != 0)
			break;
		AVPacket *pk = j->pkt;
		if (av_new_packet(pk, (int)f.len) < 0) {
			rc = fail(j, VTP_COMPOSE_ECODEC, "out of memory");
			break;
		}
		memcpy(pk->data, f.data, f.len);
		pk->pts = pk->dts = pts;
		pk->stream_index = j->vs->index;
		if (f.keyframe)
			pk->flags |= AV_PKT_FLAG_KEY;
		rc = write_packet(j, pk);
		j->r->frames_out++;
		progress(j, ns);
		have = vtp__fsrc_next(src, &f);
	}
	j->r->frames_dropped += vtp__fsrc_dropped(src);
	vtp__fsrc_close(src);
	j->r->fast_path = true;
	return rc;
}

/* ---- finishing ---------------------------------------------------------------- */

static int flush_encoder_pkt(vtp__cjob *j, AVCodecContext *e, AVStream *st, AVPacket *pkt)
{
	if (!e)
		return 0;
	int rc = avcodec_send_frame(e, NULL);
	if (rc < 0 && rc != AVERROR_EOF)
		return fail(j, VTP_COMPOSE_ECODEC, "encoder flush: %s", averr(rc));
	return write_packets(j, e, st, pkt);
}

static int sha256_file(const char *path, char hex[65], int64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	static __thread unsigned char buf[1 << 16];
	ssize_t n;
	int64_t total = 0;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		total += n;
	}
	unsigned char dig[32];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(md, dig, &dl);
	EVP_MD_CTX_free(md);
	int rc = n < 0 ? -1 : 0;
	if (rc == 0 && fsync(fd) != 0)
		rc = -1;
	close(fd);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	*size = total;
	return rc;
}

static int finish_file(vtp__cjob *j)
{
	char hex[65];
	int64_t size;
	if (sha256_file(j->tmp, hex, &size) != 0)
		return fail(j, VTP_COMPOSE_EIO, "cannot read back the output: %s", strerror(errno));
	if (rename(j->tmp, j->o->out_path) != 0)
		return fail(j, VTP_COMPOSE_EIO, "cannot move the output into place: %s", strerror(errno));
	/* The rename itself must survive a crash. */
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", j->o->out_path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		int dfd = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	memcpy(j->r->sha256, hex, sizeof hex);
	j->r->file_size = size;
	return 0;
}

/* WebM: the HLS writer and its own H.264/AAC encoders, fed in this pass
 * (the video encoder by its own thread, from the same frame slots). */
static int hls_in_pass(vtp__cjob *j, int vkbps)
{
	const vtp_compose_opts *o = j->o;
	char err[200];
	j->hvenc = vtp__hls_video_encoder(o->width, o->height, (AVRational){1, o->fps}, o->fps, vkbps,
					 vtp__compose_threads(o));
	j->haenc = vtp__hls_audio_encoder();
	if (!j->hvenc || !j->haenc)
		return fail(j, VTP_COMPOSE_ECODEC, "cannot open the HLS encoders");
	AVCodecParameters *vp = avcodec_parameters_alloc(), *ap = avcodec_parameters_alloc();
	avcodec_parameters_from_context(vp, j->hvenc);
	avcodec_parameters_from_context(ap, j->haenc);
	j->hls = vtp__hls_open(o->hls_dir, vp, j->hvenc->time_base, ap, j->haenc->time_base, err,
			      sizeof err);
	avcodec_parameters_free(&vp);
	avcodec_parameters_free(&ap);
	if (!j->hls)
		return fail(j, VTP_COMPOSE_EIO, "%s", err);
	j->hpkt = av_packet_alloc();
	j->hapkt = av_packet_alloc();
	j->hfifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, 2, 4096);
	j->hbuf = vtp_malloc(4096 * sizeof *j->hbuf);
	j->haframe = av_frame_alloc();
	if (!j->hpkt || !j->hapkt || !j->hfifo || !j->haframe)
		return fail(j, VTP_COMPOSE_ECODEC, "out of memory");
	j->haframe->format = AV_SAMPLE_FMT_FLTP;
	j->haframe->nb_samples = j->haenc->frame_size;
	j->haframe->sample_rate = VTP_AUDIO_RATE;
	av_channel_layout_copy(&j->haframe->ch_layout, &j->haenc->ch_layout);
	if (av_frame_get_buffer(j->haframe, 0) < 0)
		return fail(j, VTP_COMPOSE_ECODEC, "out of memory");
	j->consumers = 2;
	return 0;
}

/* Whether a copied H.264 track keeps keyframes close enough together for
 * segments of about 4 s (on average at most 4 s apart). */
static bool keyframes_dense(const vtp__ctrack *t)
{
	if (t->keyframes == 0 || t->end_ns <= t->start_ns)
		return false;
	return (t->end_ns - t->start_ns) / (int64_t)t->keyframes <= 4000000000LL;
}

/* After the file is complete (still under its temporary name): HLS that
 * was not made in the pass, then the thumbnail. */
static int finish_extras(vtp__cjob *j, int ft)
{
	const vtp_compose_opts *o = j->o;
	int nthreads = vtp__compose_threads(o);
	char err[256];
	if (j->hls) {
		vtp__hls *h = j->hls;
		j->hls = NULL;
		if (vtp__hls_finish(h, &j->r->hls_segments, err, sizeof err) != 0)
			return fail(j, VTP_COMPOSE_EIO, "%s", err);
	} else if (o->hls_dir) {
		/* MP4 (its H.264 copied, unless a copied sender's keyframes are
		 * too sparse) or the fast path's VP8 (encoded). */
		bool transcode = !j->mp4 || (ft >= 0 && !keyframes_dense(&j->t[ft]));
		int fps = ft >= 0 && vtp__whole_fps(&j->t[ft]) ? vtp__whole_fps(&j->t[ft]) : o->fps;
		int vkbps = o->bitrate_kbps > 228 ? o->bitrate_kbps - 128 : 100;
		vtp__thumb *th = ft >= 0 ? j->thumb : NULL;
		if (vtp__hls_from_file(j->tmp, o->hls_dir, transcode, fps, vkbps, nthreads, th,
				      &j->r->hls_segments, err, sizeof err) != 0)
			return fail(j, VTP_COMPOSE_ECODEC, "HLS: %s", err);
		j->r->hls_copied = !transcode;
	} else if (ft >= 0 && j->thumb) {
		/* No HLS: decode the copied stream for the thumbnail only. */
		int none = 0;
		if (vtp__hls_from_file(j->tmp, NULL, false, o->fps, 0, nthreads, j->thumb, &none, err,
				      sizeof err) != 0)
			return fail(j, VTP_COMPOSE_ECODEC, "thumbnail: %s", err);
	}
	if (j->thumb) {
		if (vtp__thumb_write(j->thumb, o->thumb_path, err, sizeof err) != 0)
			return fail(j, VTP_COMPOSE_EIO, "%s", err);
		j->r->thumb_at_seconds = vtp__thumb_at_seconds(j->thumb);
	}
	return 0;
}

/* ---- the pass: open, advance (above), finish -------------------------------- */

int vtp__cjob_open(vtp__cjob *j)
{
	int abr = j->mp4 ? 128 : 96;
	int vkbps = j->o->bitrate_kbps - abr > 100 ? j->o->bitrate_kbps - abr : 100;
	int rc;
	j->pv = vtp_calloc(j->np ? j->np : 1, sizeof *j->pv);
	for (size_t k = 0; k < j->np; k++)
		j->pv[k].last_spoke = -1;
	vtp__cframe_layout_init(j, &j->fl);
	if ((rc = start_encoders(j, vkbps)) != 0)
		return rc;
	if (!(j->aenc = audio_encoder(j)))
		return fail(j, VTP_COMPOSE_ECODEC, "cannot open the audio encoder");
	if (!(j->vs = avformat_new_stream(j->oc, NULL)))
		return fail(j, VTP_COMPOSE_ECODEC, "out of memory");
	avcodec_parameters_from_context(j->vs->codecpar, j->venc);
	j->vs->time_base = j->venc->time_base;
	j->vs->avg_frame_rate = j->venc->framerate;
	if ((rc = write_header(j)) != 0)
		return rc;
	if (!j->mp4 && j->o->hls_dir && (rc = hls_in_pass(j, vkbps)) != 0)
		return rc;
	return run_encoders(j);
}

int vtp__cjob_finish(vtp__cjob *j)
{
	int rc = 0;
	if (j->copied < 0) {
		/* Whatever the driver left, then the encoders drain. */
		rc = vtp__cjob_advance(j, INT64_MAX);
		int erc = stop_encoders(j, rc != 0);
		if (rc == 0)
			rc = erc;
	}
	if (!j->aenc)
		return rc;
	if (rc == 0) {
		/* The rest of the audio, to the end of the timeline. */
		rc = audio_until(j, (j->t1 - j->t0) * VTP_AUDIO_RATE / 1000000000LL);
	}
	if (rc == 0)
		rc = flush_encoder_pkt(j, j->aenc, j->as, j->pkt);
	if (rc == 0 && j->haenc)
		rc = hls_audio(j, NULL, 0);
	if (rc == 0) {
		int wr = av_write_trailer(j->oc);
		if (wr < 0)
			rc = fail(j, VTP_COMPOSE_EIO, "writing the output: %s", averr(wr));
	}
	if (rc == 0 && avio_closep(&j->oc->pb) < 0)
		rc = fail(j, VTP_COMPOSE_EIO, "closing the output failed");
	if (rc == 0)
		rc = finish_extras(j, j->copied);
	if (rc == 0)
		rc = finish_file(j);
	if (rc == 0)
		j->r->duration_seconds = (double)(j->t1 - j->t0) / 1e9;
	return rc;
}

void vtp__cjob_close(vtp__cjob *j, int rc)
{
	stop_encoders(j, true);
	free_encoders(j);
	for (size_t k = 0; j->pv && k < j->np; k++) {
		av_frame_free(&j->pv[k].name_img);
		av_frame_free(&j->pv[k].label_img);
		sws_freeContext(j->pv[k].sws);
		sws_freeContext(j->pv[k].screen_sws);
	}
	vtp_free(j->pv);
	j->pv = NULL;
	if (j->fl.tiles)
		vtp__cframe_layout_free(&j->fl);
	avcodec_free_context(&j->aenc);
	av_frame_free(&j->aframe);
	vtp__hls_abort(j->hls);
	j->hls = NULL;
	avcodec_free_context(&j->hvenc);
	avcodec_free_context(&j->haenc);
	av_packet_free(&j->hpkt);
	av_packet_free(&j->hapkt);
	av_audio_fifo_free(j->hfifo);
	j->hfifo = NULL;
	av_frame_free(&j->haframe);
	vtp_free(j->hbuf);
	j->hbuf = NULL;
	av_packet_free(&j->pkt);
	if (j->oc) {
		if (j->oc->pb)
			avio_closep(&j->oc->pb);
		avformat_free_context(j->oc);
		j->oc = NULL;
	}
	if (rc != 0 && j->tmp[0])
		unlink(j->tmp);
	vtp_free(j->mix);
	j->mix = NULL;
	vtp_free(j->atmp);
	j->atmp = NULL;
	vtp__font_cleanup();
	pthread_mutex_destroy(&j->mux_mu);
}
