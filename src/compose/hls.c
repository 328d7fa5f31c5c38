/* HLS for players: a VOD playlist of about 4 s fMP4 segments (H.264 +
 * AAC), written into a temporary folder beside the final one and renamed
 * into place when complete (files 0600, synced), so a crash never leaves a
 * half playlist where the server would serve it.
 *
 * Two ways to fill it: packets written while the recording is composed (a
 * second encoder in the same pass, for WebM), or vtp__hls_from_file, which
 * reads the finished file once: its H.264 and AAC are copied as they are
 * (MP4), or decoded and encoded when the file's codecs are not HLS's or its
 * keyframes are too far apart for 4 s segments; the thumbnail is taken
 * from the same decode when asked for. */
#include "compose/compose_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

#define HLS_SEGMENT_S "4"

struct vtp__hls {
	char final_dir[4096];
	char tmp_dir[4200];
	AVFormatContext *oc;
	AVRational in_tb[2];
	int index[2];           /* muxer stream of video, audio; -1 if none */
	pthread_mutex_t mu;
	bool header;
	bool failed;
	int64_t last_dts[2];
	/* The latest video packet waits for the next one, which gives its
	 * duration (the segmenter measures segments by it). */
	AVPacket *held;
	int64_t held_dur;
	/* libavformat's own opener, which hls_io_open calls */
	int (*default_io_open)(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
			       AVDictionary **options);
};

static const char *averr(int rc)
{
	static __thread char buf[AV_ERROR_MAX_STRING_SIZE];
	return av_make_error_string(buf, sizeof buf, rc);
}

/* Removes a folder's files and the folder (one level: what we write). */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char p[4600];
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* The HLS muxer takes hls_segment_filename as a template: "%<digits>d"
 * anywhere in it is the segment number, and "%%" stays two characters. The
 * folder is no part of it: an encoded room id is full of '%' ("Class 3d" is
 * "Class%203d"). So the muxer is given bare names and every file it opens
 * (playlist, init.mp4, segments) is put into the folder here. */
static int hls_io_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
		       AVDictionary **options)
{
	vtp__hls *h = s->opaque;
	const char *slash = strrchr(url, '/');
	char path[4600];

	snprintf(path, sizeof path, "%s/%s", h->tmp_dir, slash ? slash + 1 : url);
	return h->default_io_open(s, pb, path, flags, options);
}

vtp__hls *vtp__hls_open(const char *final_dir, const AVCodecParameters *v, AVRational vtb,
		      const AVCodecParameters *a, AVRational atb, char *err, size_t errlen)
{
	vtp__hls *h = vtp_calloc(1, sizeof *h);
	pthread_mutex_init(&h->mu, NULL);
	h->index[0] = h->index[1] = -1;
	h->last_dts[0] = h->last_dts[1] = INT64_MIN;
	snprintf(h->final_dir, sizeof h->final_dir, "%s", final_dir);
	snprintf(h->tmp_dir, sizeof h->tmp_dir, "%s.tmp-%ld", final_dir, (long)getpid());
	remove_dir(h->tmp_dir);
	if (mkdir(h->tmp_dir, 0700) != 0) {
		snprintf(err, errlen, "cannot create the HLS folder: %s", strerror(errno));
		vtp__hls_abort(h);
		return NULL;
	}
	int rc = avformat_alloc_output_context2(&h->oc, NULL, "hls", "index.m3u8");
	if (rc < 0) {
		snprintf(err, errlen, "HLS muxer: %s", averr(rc));
		vtp__hls_abort(h);
		return NULL;
	}
	h->default_io_open = h->oc->io_open;
	h->oc->io_open = hls_io_open;
	h->oc->opaque = h;
	const AVCodecParameters *par[2] = {v, a};
	AVRational tb[2] = {vtb, atb};
	for (int i = 0; i < 2; i++) {
		if (!par[i])
			continue;
		AVStream *st = avformat_new_stream(h->oc, NULL);
		if (!st || avcodec_parameters_copy(st->codecpar, par[i]) < 0) {
			snprintf(err, errlen, "out of memory");
			vtp__hls_abort(h);
			return NULL;
		}
		st->codecpar->codec_tag = 0;
		st->time_base = tb[i];
		h->in_tb[i] = tb[i];
		h->index[i] = st->index;
	}
	AVDictionary *d = NULL;
	av_dict_set(&d, "hls_time", HLS_SEGMENT_S, 0);
	av_dict_set(&d, "hls_playlist_type", "vod", 0);
	av_dict_set(&d, "hls_segment_type", "fmp4", 0);
	av_dict_set(&d, "hls_fmp4_init_filename", "init.mp4", 0);
	av_dict_set(&d, "hls_segment_filename", "seg_%05d.m4s", 0);
	av_dict_set(&d, "hls_flags", "independent_segments", 0);
	rc = avformat_write_header(h->oc, &d);
	av_dict_free(&d);
	if (rc < 0) {
		snprintf(err, errlen, "HLS header: %s", averr(rc));
		vtp__hls_abort(h);
		return NULL;
	}
	h->header = true;
	return h;
}

int vtp__hls_write(vtp__hls *h, int which, const AVPacket *pkt)
{
	if (!h || h->index[which] < 0)
		return 0;
	AVPacket *p = av_packet_clone(pkt);
	if (!p)
		return AVERROR(ENOMEM);
	pthread_mutex_lock(&h->mu);
	int rc = 0;
	if (h->failed) {
		rc = AVERROR(EIO);
		goto out;
	}
	AVStream *st = h->oc->streams[h->index[which]];
	av_packet_rescale_ts(p, h->in_tb[which], st->time_base);
	p->stream_index = st->index;
	/* The fMP4 muxer wants strictly rising dts per stream. */
	if (p->dts != AV_NOPTS_VALUE) {
		if (p->dts <= h->last_dts[which])
			p->dts = h->last_dts[which] + 1;
		if (p->pts != AV_NOPTS_VALUE && p->pts < p->dts)
			p->pts = p->dts;
		h->last_dts[which] = p->dts;
	}
	if (which == 0) {
		AVPacket *prev = h->held;
		h->held = p;
		p = prev;
		if (!p)
			goto out;
		if (p->duration <= 0 && p->dts != AV_NOPTS_VALUE && h->held->dts != AV_NOPTS_VALUE)
			p->duration = h->held->dts - p->dts;
		if (p->duration > 0)
			h->held_dur = p->duration;
	}
	rc = av_interleaved_write_frame(h->oc, p);
	if (rc < 0)
		h->failed = true;
out:
	pthread_mutex_unlock(&h->mu);
	av_packet_free(&p);
	return rc;
}

static int count_and_seal(const char *dir, int *segments)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[4600];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		chmod(p, 0600);
		fsync_path(p, O_RDONLY);
		if (strncmp(e->d_name, "seg_", 4) == 0)
			n++;
	}
	closedir(d);
	*segments = n;
	return 0;
}

int vtp__hls_finish(vtp__hls *h, int *segments, char *err, size_t errlen)
{
	int rc = 0;
	if (h->held) {
		if (h->held->duration <= 0)
			h->held->duration = h->held_dur;
		rc = av_interleaved_write_frame(h->oc, h->held);
		av_packet_free(&h->held);
	}
	if (rc == 0)
		rc = av_write_trailer(h->oc);
	if (rc < 0 || h->failed) {
		snprintf(err, errlen, "writing HLS: %s", rc < 0 ? averr(rc) : "a packet was refused");
		vtp__hls_abort(h);
		return -1;
	}
	avformat_free_context(h->oc);
	h->oc = NULL;
	if (count_and_seal(h->tmp_dir, segments) != 0 || *segments == 0) {
		snprintf(err, errlen, "HLS wrote no segment");
		vtp__hls_abort(h);
		return -1;
	}
	fsync_path(h->tmp_dir, O_RDONLY | O_DIRECTORY);
	/* An older playlist (an earlier run) is replaced whole. */
	char old[4300];
	snprintf(old, sizeof old, "%s.old-%ld", h->final_dir, (long)getpid());
	bool had_old = rename(h->final_dir, old) == 0;
	if (rename(h->tmp_dir, h->final_dir) != 0) {
		snprintf(err, errlen, "cannot move HLS into place: %s", strerror(errno));
		if (had_old)
			rename(old, h->final_dir);
		vtp__hls_abort(h);
		return -1;
	}
	if (had_old)
		remove_dir(old);
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", h->final_dir);
	char *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		fsync_path(slash == parent ? "/" : parent, O_RDONLY | O_DIRECTORY);
	}
	pthread_mutex_destroy(&h->mu);
	vtp_free(h);
	return 0;
}

void vtp__hls_abort(vtp__hls *h)
{
	if (!h)
		return;
	av_packet_free(&h->held);
	if (h->oc) {
		if (h->header)
			av_write_trailer(h->oc);
		avformat_free_context(h->oc);
	}
	remove_dir(h->tmp_dir);
	pthread_mutex_destroy(&h->mu);
	vtp_free(h);
}

/* ---- encoders for HLS ------------------------------------------------------ */

int vtp__hls_drain(vtp__hls *h, AVCodecContext *e, AVPacket *pkt, int which, const char **what)
{
	for (;;) {
		int rc = avcodec_receive_packet(e, pkt);
		if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
			return 0;
		if (rc < 0) {
			*what = "HLS encoder";
			return rc;
		}
		rc = vtp__hls_write(h, which, pkt);
		av_packet_unref(pkt);
		if (rc < 0) {
			*what = "writing HLS";
			return rc;
		}
	}
}

int vtp__hls_aac(vtp__hls *h, AVCodecContext *enc, AVAudioFifo *fifo, AVFrame *frame,
		AVPacket *pkt, int64_t *pts, bool flush, const char **what)
{
	int fs = enc->frame_size, rc;
	while (av_audio_fifo_size(fifo) >= fs || (flush && av_audio_fifo_size(fifo) > 0)) {
		int n = av_audio_fifo_size(fifo) < fs ? av_audio_fifo_size(fifo) : fs;
		if (av_frame_make_writable(frame) < 0) {
			*what = "HLS audio frame";
			return AVERROR(ENOMEM);
		}
		frame->nb_samples = n;
		av_audio_fifo_read(fifo, (void **)frame->data, n);
		frame->pts = *pts;
		*pts += n;
		if ((rc = avcodec_send_frame(enc, frame)) < 0) {
			*what = "HLS audio encoder";
			return rc;
		}
		if ((rc = vtp__hls_drain(h, enc, pkt, 1, what)) < 0)
			return rc;
	}
	if (!flush)
		return 0;
	rc = avcodec_send_frame(enc, NULL);
	if (rc < 0 && rc != AVERROR_EOF) {
		*what = "HLS audio flush";
		return rc;
	}
	return vtp__hls_drain(h, enc, pkt, 1, what);
}

AVCodecContext *vtp__hls_video_encoder(int width, int height, AVRational time_base, int fps,
				      int kbps, int threads)
{
	const AVCodec *c = avcodec_find_encoder_by_name("libx264");
	if (!c)
		return NULL;
	AVCodecContext *e = avcodec_alloc_context3(c);
	e->width = width & ~1;
	e->height = height & ~1;
	e->pix_fmt = AV_PIX_FMT_YUV420P;
	e->time_base = time_base;
	e->framerate = (AVRational){fps, 1};
	e->bit_rate = (int64_t)kbps * 1000;
	e->gop_size = fps * 2; /* segments of two GOPs */
	e->thread_count = threads;
	e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	AVDictionary *d = NULL;
	av_dict_set(&d, "preset", "veryfast", 0);
	/* Memory beside the file's own encoders (9 peers stay under 400 MiB):
	 * a 5-frame lookahead and one B-frame instead of veryfast's 10 and 3
	 * hold fewer frames, and cost little on classroom video. */
	av_dict_set(&d, "rc-lookahead", "5", 0);
	e->max_b_frames = 1;
	int rc = avcodec_open2(e, c, &d);
	av_dict_free(&d);
	if (rc < 0) {
		VTP_ERROR("compose: HLS video encoder: %s", averr(rc));
		avcodec_free_context(&e);
	}
	return e;
}

AVCodecContext *vtp__hls_audio_encoder(void)
{
	const AVCodec *c = avcodec_find_encoder_by_name("aac");
	if (!c)
		return NULL;
	AVCodecContext *e = avcodec_alloc_context3(c);
	e->sample_rate = VTP_AUDIO_RATE;
	av_channel_layout_default(&e->ch_layout, 2);
	e->sample_fmt = AV_SAMPLE_FMT_FLTP;
	e->bit_rate = 128000;
	e->time_base = (AVRational){1, VTP_AUDIO_RATE};
	e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	if (avcodec_open2(e, c, NULL) < 0) {
		avcodec_free_context(&e);
		return NULL;
	}
	return e;
}

/* ---- from the finished file ------------------------------------------------ */

typedef struct fpass {
	AVFormatContext *ic;
	int vi, ai;                  /* input streams, -1 if none */
	AVCodecContext *vdec, *adec; /* NULL when not decoded */
	AVCodecContext *venc, *aenc; /* NULL when copied */
	SwrContext *swr;
	AVAudioFifo *fifo;
	int64_t apts;                /* AAC samples sent */
	AVFrame *frame, *aframe;
	AVPacket *pkt;
	vtp__hls *hls;
	vtp__thumb *thumb;
	int64_t start_pts;           /* video: first pts (thumbnail clock) */
	char *err;
	size_t errlen;
} fpass;

static int ferr(fpass *f, const char *what, int rc)
{
	snprintf(f->err, f->errlen, "%s: %s", what, averr(rc));
	return -1;
}

static AVCodecContext *open_decoder(const AVStream *st, int threads)
{
	const AVCodec *c = avcodec_find_decoder(st->codecpar->codec_id);
	if (!c)
		return NULL;
	AVCodecContext *d = avcodec_alloc_context3(c);
	if (avcodec_parameters_to_context(d, st->codecpar) < 0) {
		avcodec_free_context(&d);
		return NULL;
	}
	d->pkt_timebase = st->time_base;
	d->thread_count = threads;
	if (avcodec_open2(d, c, NULL) < 0)
		avcodec_free_context(&d);
	return d;
}

static int drain_encoder(fpass *f, AVCodecContext *e, int which)
{
	const char *what = NULL;
	int rc = vtp__hls_drain(f->hls, e, f->pkt, which, &what);
	return rc < 0 ? ferr(f, what, rc) : 0;
}

static int video_frames(fpass *f, const AVStream *st)
{
	for (;;) {
		int rc = avcodec_receive_frame(f->vdec, f->frame);
		if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
			return 0;
		if (rc < 0)
			return 0; /* a damaged frame: skip it */
		int64_t pts = f->frame->best_effort_timestamp;
		if (f->thumb && pts != AV_NOPTS_VALUE) {
			int64_t at = av_rescale_q(pts - f->start_pts, st->time_base,
						  (AVRational){1, 1000000000});
			vtp__thumb_offer(f->thumb, f->frame, at);
		}
		if (f->venc) {
			if (f->frame->width != f->venc->width || f->frame->height != f->venc->height ||
			    f->frame->format != AV_PIX_FMT_YUV420P) {
				av_frame_unref(f->frame);
				continue; /* the fast path's stream keeps one size */
			}
			f->frame->pts = pts;
			f->frame->pict_type = AV_PICTURE_TYPE_NONE;
			rc = avcodec_send_frame(f->venc, f->frame);
			av_frame_unref(f->frame);
			if (rc < 0)
				return ferr(f, "HLS video encoder", rc);
			if (drain_encoder(f, f->venc, 0) != 0)
				return -1;
		} else {
			av_frame_unref(f->frame);
		}
	}
}

/* Sends whole AAC frames from the FIFO; flushing, all of it and the
 * encoder too. */
static int aac_from_fifo(fpass *f, bool flush)
{
	const char *what = NULL;
	int rc = vtp__hls_aac(f->hls, f->aenc, f->fifo, f->aframe, f->pkt, &f->apts, flush, &what);
	return rc < 0 ? ferr(f, what, rc) : 0;
}

static int audio_frames(fpass *f)
{
	for (;;) {
		int rc = avcodec_receive_frame(f->adec, f->frame);
		if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
			return 0;
		if (rc < 0)
			return 0;
		if (!f->swr) {
			AVChannelLayout out = AV_CHANNEL_LAYOUT_STEREO;
			if (swr_alloc_set_opts2(&f->swr, &out, AV_SAMPLE_FMT_FLTP, VTP_AUDIO_RATE,
						&f->frame->ch_layout, f->frame->format,
						f->frame->sample_rate, 0, NULL) < 0 ||
			    swr_init(f->swr) < 0)
				return ferr(f, "audio resampler", AVERROR(EINVAL));
		}
		uint8_t **out = NULL;
		int cap = swr_get_out_samples(f->swr, f->frame->nb_samples);
		if (av_samples_alloc_array_and_samples(&out, NULL, 2, cap, AV_SAMPLE_FMT_FLTP, 0) < 0)
			return ferr(f, "audio", AVERROR(ENOMEM));
		int n = swr_convert(f->swr, out, cap, (const uint8_t **)f->frame->extended_data,
				    f->frame->nb_samples);
		av_frame_unref(f->frame);
		if (n > 0)
			av_audio_fifo_write(f->fifo, (void **)out, n);
		av_freep(&out[0]);
		av_freep(&out);
		if (n < 0)
			return ferr(f, "audio resampler", n);
		if (aac_from_fifo(f, false) != 0)
			return -1;
	}
}

static int fpass_setup(fpass *f, const char *media, const char *hls_dir, bool transcode,
		       int fps, int kbps, int threads)
{
	int rc = avformat_open_input(&f->ic, media, NULL, NULL);
	if (rc < 0)
		return ferr(f, "reopening the output", rc);
	if ((rc = avformat_find_stream_info(f->ic, NULL)) < 0)
		return ferr(f, "reading the output", rc);
	f->vi = av_find_best_stream(f->ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	f->ai = av_find_best_stream(f->ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
	if (f->vi < 0) {
		snprintf(f->err, f->errlen, "the output has no video");
		return -1;
	}
	const AVStream *vs = f->ic->streams[f->vi];
	f->start_pts = vs->start_time != AV_NOPTS_VALUE ? vs->start_time : 0;
	if (!hls_dir) {
		/* the thumbnail only */
		f->ai = -1;
		if (!(f->vdec = open_decoder(vs, threads))) {
			snprintf(f->err, f->errlen, "no decoder for the output's video");
			return -1;
		}
		return 0;
	}
	if (vs->codecpar->codec_id != AV_CODEC_ID_H264)
		transcode = true;
	if (transcode || f->thumb) {
		if (!(f->vdec = open_decoder(vs, threads))) {
			snprintf(f->err, f->errlen, "no decoder for the output's video");
			return -1;
		}
	}
	AVCodecParameters *vpar = vs->codecpar, *apar = NULL;
	AVRational vtb = vs->time_base, atb = {1, VTP_AUDIO_RATE};
	AVCodecParameters *tmp_v = NULL, *tmp_a = NULL;
	if (transcode) {
		f->venc = vtp__hls_video_encoder(vs->codecpar->width, vs->codecpar->height,
						vs->time_base, fps, kbps, threads);
		if (!f->venc) {
			snprintf(f->err, f->errlen, "cannot open the HLS video encoder");
			return -1;
		}
		tmp_v = avcodec_parameters_alloc();
		avcodec_parameters_from_context(tmp_v, f->venc);
		vpar = tmp_v;
		vtb = f->venc->time_base;
	}
	if (f->ai >= 0) {
		const AVStream *as = f->ic->streams[f->ai];
		if (as->codecpar->codec_id == AV_CODEC_ID_AAC) {
			apar = as->codecpar;
			atb = as->time_base;
		} else {
			f->adec = open_decoder(as, 1);
			f->aenc = vtp__hls_audio_encoder();
			f->fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, 2, 4096);
			f->aframe = av_frame_alloc();
			if (!f->adec || !f->aenc || !f->fifo || !f->aframe) {
				snprintf(f->err, f->errlen, "cannot open the HLS audio encoder");
				avcodec_parameters_free(&tmp_v);
				return -1;
			}
			f->aframe->format = AV_SAMPLE_FMT_FLTP;
			f->aframe->nb_samples = f->aenc->frame_size;
			f->aframe->sample_rate = VTP_AUDIO_RATE;
			av_channel_layout_copy(&f->aframe->ch_layout, &f->aenc->ch_layout);
			if (av_frame_get_buffer(f->aframe, 0) < 0) {
				avcodec_parameters_free(&tmp_v);
				return ferr(f, "audio", AVERROR(ENOMEM));
			}
			/* AAC starts where the file's audio starts. */
			if (as->start_time != AV_NOPTS_VALUE)
				f->apts = av_rescale_q(as->start_time, as->time_base, atb);
			tmp_a = avcodec_parameters_alloc();
			avcodec_parameters_from_context(tmp_a, f->aenc);
			apar = tmp_a;
		}
	}
	f->hls = vtp__hls_open(hls_dir, vpar, vtb, apar, atb, f->err, f->errlen);
	avcodec_parameters_free(&tmp_v);
	avcodec_parameters_free(&tmp_a);
	return f->hls ? 0 : -1;
}

int vtp__hls_from_file(const char *media, const char *hls_dir, bool transcode, int fps, int kbps,
		      int threads, vtp__thumb *thumb, int *segments, char *err, size_t errlen)
{
	fpass f = {.vi = -1, .ai = -1, .thumb = thumb, .err = err, .errlen = errlen};
	f.frame = av_frame_alloc();
	f.pkt = av_packet_alloc();
	AVPacket *in = av_packet_alloc();
	int rc = fpass_setup(&f, media, hls_dir, transcode, fps, kbps, threads);
	while (rc == 0) {
		if (!hls_dir && (!f.thumb || vtp__thumb_done(f.thumb)))
			break;
		int r = av_read_frame(f.ic, in);
		if (r == AVERROR_EOF)
			break;
		if (r < 0) {
			rc = ferr(&f, "reading the output", r);
			break;
		}
		if (in->stream_index == f.vi) {
			bool need_decode = f.venc || (f.thumb && !vtp__thumb_done(f.thumb));
			if (!f.venc && f.hls && vtp__hls_write(f.hls, 0, in) < 0)
				rc = ferr(&f, "HLS muxer", AVERROR(EIO));
			else if (need_decode && avcodec_send_packet(f.vdec, in) >= 0)
				rc = video_frames(&f, f.ic->streams[f.vi]);
		} else if (in->stream_index == f.ai) {
			if (!f.aenc) {
				if (vtp__hls_write(f.hls, 1, in) < 0)
					rc = ferr(&f, "HLS muxer", AVERROR(EIO));
			} else if (avcodec_send_packet(f.adec, in) >= 0) {
				rc = audio_frames(&f);
			}
		}
		av_packet_unref(in);
	}
	/* Flush: decoders, then encoders. */
	if (rc == 0 && f.vdec && (f.venc || (f.thumb && !vtp__thumb_done(f.thumb)))) {
		avcodec_send_packet(f.vdec, NULL);
		rc = video_frames(&f, f.ic->streams[f.vi]);
	}
	if (rc == 0 && f.venc) {
		avcodec_send_frame(f.venc, NULL);
		rc = drain_encoder(&f, f.venc, 0);
	}
	if (rc == 0 && f.aenc) {
		avcodec_send_packet(f.adec, NULL);
		rc = audio_frames(&f);
		if (rc == 0)
			rc = aac_from_fifo(&f, true);
	}
	if (f.hls) {
		if (rc == 0)
			rc = vtp__hls_finish(f.hls, segments, err, errlen);
		else
			vtp__hls_abort(f.hls);
	}
	av_packet_free(&in);
	av_packet_free(&f.pkt);
	av_frame_free(&f.frame);
	av_frame_free(&f.aframe);
	av_audio_fifo_free(f.fifo);
	swr_free(&f.swr);
	avcodec_free_context(&f.vdec);
	avcodec_free_context(&f.adec);
	avcodec_free_context(&f.venc);
	avcodec_free_context(&f.aenc);
	avformat_close_input(&f.ic);
	return rc;
}
