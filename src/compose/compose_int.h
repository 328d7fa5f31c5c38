/* Inside the composer: tracks, their clocks, frame sources, video and audio
 * stages. Times are int64 nanoseconds; "recorder time" is the ingest
 * node's CLOCK_REALTIME at arrival, the clock every track is mapped to. */
#ifndef VTP_COMPOSE_INT_H
#define VTP_COMPOSE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/capture.h"
#include "compose/compose.h"
#include "compose/depack.h"

#include <libavutil/rational.h>

struct AVFrame;
struct SwsContext;

/* A piecewise-linear function through points (x ascending), constant
 * beyond its ends: the lower envelope of arrival - sender time. */
typedef struct vtp__envelope {
	int64_t *x, *y;
	size_t n;
} vtp__envelope;

typedef struct vtp__ctrack {
	char *path;
	char *track_id, *peer_id, *full_name;
	bool video;
	vtp_codec codec;
	int pt;               /* -1: any */
	uint32_t clock;       /* Hz */
	int peer;             /* index into vtp__cpeer list */
	int source;           /* VTP__SRC_* from the meta's "source" (default by kind) */
	bool instructor;      /* the meta's role is "instructor" */
	char *user_id;        /* the meta's userId: whose track it is (NULL: unknown) */

	/* scan (pass 1) */
	uint64_t rtp_packets, frames, keyframes;
	uint64_t first_ext_ts, last_ext_ts;
	int width, height;    /* of the first keyframe (video) */
	bool size_changed;    /* keyframes of more than one size */
	uint64_t min_step;    /* smallest timestamp step between frames (0: one frame) */
	uint64_t *kf_ts;      /* extended timestamps of the keyframes, in order (video) */
	size_t nkf;
	bool use_sr;          /* mapped through sender reports: */
	int64_t sr_offset;    /* sender NTP - RTP time (ns), median over its reports */
	vtp__envelope env;     /* sender time -> offset to recorder time */
	int64_t start_ns, end_ns; /* recorder time of first and last frame */
	int cap_end;          /* how the capture ended (VTP_CAPR_*) */
	uint32_t segments_missing, segments_cut; /* in the series of its packet log */
	void *scan;           /* scan samples, freed once mapped */
} vtp__ctrack;

typedef struct vtp__cpeer {
	char *peer_id, *full_name;
	int64_t start_ns, end_ns; /* union of its tracks */
	bool person;          /* has a camera or microphone track (not only a share) */
	bool instructor;
	bool starter;         /* one of its tracks is the user's who started the recording */
} vtp__cpeer;

/* ---- tracks.c ------------------------------------------------------------ */

/* Reads a capture's header and scans its packets: frame counts, sizes,
 * sender reports, the arrival samples for the clock map. 0 or -1 (err). */
int vtp__ctrack_scan(vtp__ctrack *t, const char *path, char *err, size_t errlen);
void vtp__ctrack_clear(vtp__ctrack *t);
/* Builds the clock maps: per track from its own samples, or per peer from
 * the samples of all its tracks in sender NTP time when every track of
 * the peer has sender reports. Fills start_ns/end_ns. */
int vtp__ctracks_map(vtp__ctrack *t, size_t n);
/* Sender time (ns) of an extended RTP timestamp. */
int64_t vtp__ctrack_sender_ns(const vtp__ctrack *t, uint64_t ext_ts);
/* Recorder time (ns) of an extended RTP timestamp. */
int64_t vtp__ctrack_map(const vtp__ctrack *t, uint64_t ext_ts);

/* Streams a track's frames in order (pass 2). */
typedef struct vtp__fsrc vtp__fsrc;
vtp__fsrc *vtp__fsrc_open(const vtp__ctrack *t);
void vtp__fsrc_close(vtp__fsrc *s);
/* Next frame (data valid until the next call); false at the end. */
bool vtp__fsrc_next(vtp__fsrc *s, vtp_frame *f);
uint64_t vtp__fsrc_dropped(const vtp__fsrc *s);

/* The Annex B parameter sets (SPS 7, PPS 8) of an H.264 access unit,
 * copied into out (at most cap bytes; out NULL: only measured); their
 * length, 0 when none. */
size_t vtp__h264_params(const uint8_t *p, size_t n, uint8_t *out, size_t cap);

/* VP8 keyframe size from the frame bytes; false if not a keyframe. */
bool vtp__vp8_keyframe_size(const uint8_t *p, size_t n, int *w, int *h);

/* ---- video.c -------------------------------------------------------------- */

typedef struct vtp__tile {
	int x, y, w, h;
} vtp__tile;

/* Grid for n tiles on a w x h canvas: cols = ceil(sqrt(n)), rows =
 * ceil(n / cols), the last row centred; positions and sizes even. */
void vtp__layout(int n, int w, int h, vtp__tile *tiles);

/* A decoded frame and, when the decoder thread knew the tile it goes to,
 * the frame already scaled to fit that tile (aspect kept). */
typedef struct vtp__vframe {
	struct AVFrame *f;
	struct AVFrame *scaled; /* NULL, or fitted to tile_w x tile_h */
	int tile_w, tile_h;
} vtp__vframe;

/* A stretch of the output in which a track is on screen in one tile size,
 * in pts (ns from t0): the first output frame in it shows the latest
 * frame at or before `from`, the last one the latest at or before `to`. */
typedef struct vtp__vshow {
	int64_t from, to;
	int tile_w, tile_h;
} vtp__vshow;

/* A video track being decoded on its own thread, frames handed over in
 * recorder-time order through a short queue. Only what the stretches
 * in show (n, ascending, not overlapping) need is decoded: from the last
 * keyframe at or before each stretch, and only frames shown are queued,
 * already scaled for the stretch's tile. decode_all decodes every frame
 * all the same (to compare). show is copied. */
typedef struct vtp__vdec vtp__vdec;
vtp__vdec *vtp__vdec_start(const vtp__ctrack *t, int64_t t0, const vtp__vshow *show, size_t n,
			 bool decode_all);
void vtp__vdec_stop(vtp__vdec *d);
/* The frame to show at output time pts_ns (relative to t0): the latest
 * decoded frame at or before it; NULL before the first. Only called for
 * instants inside the track's stretches, in order. Owned by d, valid
 * until the next call. */
const vtp__vframe *vtp__vdec_at(vtp__vdec *d, int64_t pts_ns);
/* Frames decoded, and frames read but not decoded (not shown). */
uint64_t vtp__vdec_decoded(const vtp__vdec *d);
uint64_t vtp__vdec_skipped(const vtp__vdec *d);
uint64_t vtp__vdec_errors(const vtp__vdec *d);
uint64_t vtp__vdec_dropped(const vtp__vdec *d);

/* Canvas drawing (YUV 4:2:0). */
void vtp__canvas_fill(struct AVFrame *c, int x, int y, int w, int h,
		     uint8_t Y, uint8_t U, uint8_t V);
/* Puts src into tile (aspect kept, centred, background around it): a copy
 * when it was scaled for this tile already, else scaled here with *sws
 * (the caller's cached context). *drawn (may be NULL) gets the rectangle
 * the picture took. */
int vtp__canvas_blit(struct AVFrame *c, const vtp__tile *tile,
		    const vtp__vframe *src, struct SwsContext **sws, vtp__tile *drawn);
/* A name tile: a colour from the peer id, the name centred. */
void vtp__canvas_name(struct AVFrame *c, const vtp__tile *tile,
		     const char *peer_id, const char *name);
/* A name label: the name on a dark strip h high, as wide as the name
 * (at most max_w); NULL without a font or room. The caller frees. */
struct AVFrame *vtp__label_image(const char *name, int h, int max_w);
void vtp__font_cleanup(void);

/* ---- layout.c ------------------------------------------------------------- */

/* What a track carries (the meta's "source"). */
enum { VTP__SRC_CAMERA, VTP__SRC_MICROPHONE, VTP__SRC_SCREEN, VTP__SRC_SCREEN_AUDIO };
/* The source named s; NULL, unknown or not matching the kind: the kind's
 * default (camera for video, microphone for audio). */
int vtp__source_parse(const char *s, bool video);

enum { VTP__LAYOUT_GRID, VTP__LAYOUT_SPEAKER, VTP__LAYOUT_PRESENTATION, VTP__LAYOUT_SCREEN,
       VTP__LAYOUT_AUTO };
/* The layout named s (NULL: auto), -1 when unknown. */
int vtp__layout_parse(const char *s);

/* Speaker activity is decided on 20 ms ticks of the timeline. */
#define VTP__TICK_NS 20000000LL
#define VTP__TICK_SAMPLES (VTP_AUDIO_RATE / 50)

/* Voice activity of one person from the energy (dBFS) of each tick of its
 * microphone: above the person's noise floor by a margin and above an
 * absolute floor, gaps under 300 ms inside speech bridged, blips under
 * 60 ms dropped. speaking[i] is 0 or 1. */
void vtp__voice_activity(const float *db, size_t n, uint8_t *speaking);
/* Its two halves, for a composer that sees the ticks as they come: the
 * noise floor (the 10th percentile of the energies; n > 0), and the
 * marking against a floor (the margins, the bridging, the blips). */
float vtp__voice_floor(const float *db, size_t n);
void vtp__voice_mark(const float *db, size_t n, float floor_db, uint8_t *speaking);

/* Voice activity as the ticks come. With a fixed floor, a tick's mark is
 * final once VTP__VOICE_LOOKAHEAD more ticks have come (a pause is only
 * bridged, a blip only dropped, within that), and equals what
 * vtp__voice_mark() gives on the whole timeline. Without one (NAN), the
 * floor is the 10th percentile of the ticks so far, from a histogram of
 * 0.5 dB bins, and each tick is marked against the floor of its push. */
#define VTP__VOICE_LOOKAHEAD 16
typedef struct vtp__voice_stream vtp__voice_stream;
vtp__voice_stream *vtp__voice_stream_new(float floor_db);
void vtp__voice_stream_free(vtp__voice_stream *s);
/* Appends n ticks' energies (dBFS); returns how many ticks (from the
 * first) are final now. */
size_t vtp__voice_stream_push(vtp__voice_stream *s, const float *db, size_t n);
/* The track ended: every tick is final; returns their number. */
size_t vtp__voice_stream_end(vtp__voice_stream *s);
/* The marks (0 or 1) of the final ticks; valid until the next push. */
const uint8_t *vtp__voice_stream_marks(const vtp__voice_stream *s);
/* The floor the last push marked against. */
float vtp__voice_stream_floor(const vtp__voice_stream *s);

/* Who is in the main area at each tick (index of a person, -1: nobody
 * present), with hysteresis: speaking[p * nticks + t], presence [from[p],
 * to[p]) in ticks, first: whom to show before anyone has spoken (the
 * instructor or the first to join; -1: the first present). A person takes
 * the main area after 1 s of speech (so within 2 s of starting unless
 * the 3 s hold delays it), never sooner than 3 s after the last switch;
 * the person in the main area leaving is replaced at once. */
void vtp__speaker_decide(const uint8_t *speaking, int np, size_t nticks, const int64_t *from,
			 const int64_t *to, int first, int *main_person);

/* The same decision a tick at a time (vtp__speaker_decide() is a loop
 * over it): the state carried from one tick to the next. */
typedef struct vtp__speaker_state {
	int np, first;
	int64_t *run;          /* per person: the start of its current speech, -1 */
	int64_t *last;         /* per person: the last tick it spoke, -1 */
	int cur;               /* in the main area, -1: nobody yet */
	bool by_speech;        /* cur was chosen for speaking, not by default */
	int64_t switched;      /* the tick of the last switch between speakers */
} vtp__speaker_state;
void vtp__speaker_init(vtp__speaker_state *st, int np, int first);
void vtp__speaker_free(vtp__speaker_state *st);
/* Tick t (each tick once, in order): speaking[p * stride] is whether
 * person p speaks then; presence as for vtp__speaker_decide(). Returns
 * who is in the main area at t. */
int vtp__speaker_step(vtp__speaker_state *st, const uint8_t *speaking, size_t stride,
		      const int64_t *from, const int64_t *to, int64_t t);

/* One instant to lay out: the present people (join order), their camera
 * track (or -1: a name tile), when each last spoke (tick, -1: never), the
 * person in the main area, and the live screen share. */
typedef struct vtp__lperson {
	int peer;
	int camera;
	int64_t last_spoke;
} vtp__lperson;

typedef struct vtp__lscene {
	int layout;            /* VTP__LAYOUT_* */
	int w, h;
	const vtp__lperson *people;
	int n;
	int main;              /* index into people, -1: none */
	int screen;            /* the share's track, -1: none live */
	int screen_peer;       /* whose share (peer index), -1 */
	int screen_w, screen_h;
} vtp__lscene;

typedef struct vtp__ltile {
	vtp__tile r;
	int peer;              /* -1: the screen share */
	int track;             /* video track shown, -1: the peer's name tile */
	bool label;            /* a name label over the picture */
} vtp__ltile;

#define VTP__STRIP_MAX 8

/* The tiles of one instant (at most n + 1 into out); returns how many.
 * *used gets the layout applied (auto resolved; presentation and screen
 * without a live share are speaker). Pure: same scene, same tiles. */
int vtp__layout_scene(const vtp__lscene *s, vtp__ltile *out, int *used);

/* ---- audio.c -------------------------------------------------------------- */

#define VTP_AUDIO_RATE 48000

/* An audio track decoded to mono float at 48 kHz, placed on the recorder
 * timeline (sample 0 = t0). Gaps are silence; a frame is placed where the
 * clock map puts it unless it is within 20 ms of where the previous one
 * ended (then it continues seamlessly). */
typedef struct vtp__adec vtp__adec;
vtp__adec *vtp__adec_open(const vtp__ctrack *t, int64_t t0);
void vtp__adec_close(vtp__adec *a);
/* Adds (mixes) samples [pos, pos + n) of this track into out. */
void vtp__adec_mix(vtp__adec *a, int64_t pos, float *out, int n);
uint64_t vtp__adec_concealed_ms(const vtp__adec *a);
uint64_t vtp__adec_errors(const vtp__adec *a);

/* ---- thumb.c --------------------------------------------------------------- */

/* Chooses the thumbnail frame: offered frames from target_ns (media time)
 * on; a black frame is passed over and another tried 0.5 s later. */
typedef struct vtp__thumb vtp__thumb;
vtp__thumb *vtp__thumb_new(int64_t target_ns);
void vtp__thumb_free(vtp__thumb *t);
/* Whether a frame at at_ns would be looked at (cheap; NULL: false). */
bool vtp__thumb_wants(const vtp__thumb *t, int64_t at_ns);
/* Looks at f (YUV 4:2:0) and keeps a 640x360 copy when it is the best so
 * far; done once a frame that is not black is kept. */
void vtp__thumb_offer(vtp__thumb *t, const struct AVFrame *f, int64_t at_ns);
bool vtp__thumb_done(const vtp__thumb *t);
/* Media time of the kept frame, -1 when none. */
double vtp__thumb_at_seconds(const vtp__thumb *t);
/* Writes the kept frame as a JPEG (temp + fsync + rename, 0600). */
int vtp__thumb_write(vtp__thumb *t, const char *path, char *err, size_t errlen);

/* ---- hls.c ------------------------------------------------------------------ */

struct AVCodecContext;
struct AVCodecParameters;
struct AVPacket;
typedef struct vtp__hls vtp__hls;
/* Opens an HLS writer into <final_dir>.tmp-PID for a video stream (and an
 * audio stream when a is non-NULL) whose packets come in the given time
 * bases. NULL with err on failure. */
vtp__hls *vtp__hls_open(const char *final_dir, const struct AVCodecParameters *v, AVRational vtb,
		      const struct AVCodecParameters *a, AVRational atb, char *err, size_t errlen);
/* One packet of stream which (0 video, 1 audio); thread-safe; the packet is
 * not consumed. <0 (AVERROR) on failure. */
int vtp__hls_write(vtp__hls *h, int which, const struct AVPacket *pkt);
/* Ends the playlist, seals the files and renames the folder into place
 * (replacing an older one); frees h either way. */
int vtp__hls_finish(vtp__hls *h, int *segments, char *err, size_t errlen);
void vtp__hls_abort(vtp__hls *h);
/* H.264 (x264 veryfast, a keyframe every 2 s at fps) and AAC encoders with
 * global headers, as HLS wants them. */
struct AVCodecContext *vtp__hls_video_encoder(int width, int height, AVRational time_base, int fps,
					     int kbps, int threads);
struct AVCodecContext *vtp__hls_audio_encoder(void);
/* Everything the encoder has ready to the writer (stream which). 0, or an
 * AVERROR with *what naming the step that failed. */
int vtp__hls_drain(vtp__hls *h, struct AVCodecContext *e, struct AVPacket *pkt, int which,
		  const char **what);
/* Whole AAC frames from fifo (stereo float planar) through enc to the
 * writer, pts counting samples; with flush, the rest of the fifo and of
 * the encoder too. 0, or an AVERROR with *what. */
struct AVAudioFifo;
int vtp__hls_aac(vtp__hls *h, struct AVCodecContext *enc, struct AVAudioFifo *fifo,
		struct AVFrame *frame, struct AVPacket *pkt, int64_t *pts, bool flush,
		const char **what);
/* HLS from a finished file: its H.264 copied (unless transcode, or it is
 * not H.264: then decoded and encoded at its own size), its AAC copied or
 * its other audio encoded to AAC. When thumb is non-NULL the video is
 * decoded until the thumbnail is chosen; with hls_dir NULL, only that.
 * 0 or -1 with err. */
int vtp__hls_from_file(const char *media, const char *hls_dir, bool transcode, int fps, int kbps,
		      int threads, vtp__thumb *thumb, int *segments, char *err, size_t errlen);

/* ---- compose.c: the pass ----------------------------------------------------- */

/* The pass both composers share: the output file and its encoders, every
 * output frame drawn from the decoders' frames, the audio mixed beside it.
 * A driver (compose_batch.c) loads the tracks and peers, sets the timeline,
 * opens the decoders and decides who speaks (the inputs below), then
 * opens the pass, advances it along the timeline and finishes it. The
 * batch composer advances it once, to the end, with inputs that know the
 * whole timeline; nothing in the pass looks further ahead than the frame
 * it draws (the encoders' chunks aside: j->frames is fixed at open). */
struct vtp__cencoder;
struct vtp__cpackets;
struct vtp__cview;

/* The tiles of one output instant, and the scratch to work them out. */
typedef struct vtp__cframe_layout {
	int *present;
	vtp__lperson *people;
	vtp__tile *grid;
	vtp__ltile *tiles;
	int prev_n;
} vtp__cframe_layout;

typedef struct vtp__cjob {
	const vtp_compose_opts *o;
	vtp_compose_result *r;
	/* Inputs, the driver's: tracks and peers, the timeline, the decoders
	 * (per track, NULL where none), the thumbnail chooser (NULL: none). */
	vtp__ctrack *t;
	size_t nt;
	vtp__cpeer *p;
	size_t np;
	int *join;             /* peer indices in join order */
	int64_t t0, t1;        /* timeline, recorder ns */
	vtp__vdec **vdec;       /* per track (NULL for audio) */
	vtp__adec **adec;
	vtp__thumb *thumb;
	char **scan_names, **scan_err; /* while the tracks are scanned */
	/* Layout and speech: the layout asked for (VTP__LAYOUT_*); per track
	 * the sum of squares of its samples per tick (microphones, while it is
	 * being measured: the pass adds to it as it mixes); per peer and tick
	 * whether it speaks; per tick the person in the main area (layouts
	 * other than grid). */
	int layout;
	size_t nticks;
	float **esum;
	uint8_t *speaking;
	int *main_of_tick;
	/* The pass's own. */
	char tmp[4096];
	struct AVFormatContext *oc;
	struct AVStream *vs, *as;
	struct AVCodecContext *venc, *aenc;
	struct AVPacket *pkt;
	struct vtp__cview *pv;    /* per peer: its name tile, label, scalers */
	int64_t apos;          /* audio samples written */
	float *mix;
	float *atmp;           /* a measured microphone's samples, before the mix */
	struct AVFrame *aframe;
	int last_pct;
	bool mp4;
	int copied;            /* the track copied (the fast path), -1: composed */
	int64_t next_frame;    /* the next output frame to compose */
	vtp__cframe_layout fl; /* for the frame being composed */
	pthread_mutex_t mux_mu;   /* the muxer and r->error, shared with the encoder threads */
	/* Video encoding. The timeline is cut into chunks of one GOP; with
	 * VP8, chunk c goes to encoder c % nenc, each single-threaded and
	 * starting its chunks on a keyframe, so whole cores encode in
	 * parallel (libvpx's own threads spin-wait on each other and lose
	 * to the decoders for the same cores). x264 threads well by itself:
	 * one encoder. Frames wait in a ring of slots (frame k in slot
	 * k % nslot); packets wait per chunk until every earlier chunk is
	 * written. */
	int nenc;
	struct vtp__cencoder *enc;
	int64_t gop, frames, nchunks;
	int nslot;
	struct AVFrame **slot;
	int64_t *slot_frame;   /* frame held, -1 when free */
	pthread_mutex_t enc_mu;
	pthread_cond_t enc_cv;
	bool enc_init, enc_failed;
	struct vtp__cpackets *chunk;
	bool *chunk_done;
	int64_t next_chunk;    /* next chunk to write */
	int running;           /* encoder threads started */
	int *slot_refs;        /* consumers still to take the slot's frame */
	int consumers;         /* of each frame: its video encoder, the HLS one */
	/* HLS (WebM: the same pass encodes H.264/AAC) */
	vtp__hls *hls;
	struct AVCodecContext *hvenc, *haenc;
	struct AVPacket *hpkt, *hapkt;
	struct AVAudioFifo *hfifo;
	struct AVFrame *haframe;
	float *hbuf;
	int64_t hapos;
	pthread_t hth;
	bool hls_running;
} vtp__cjob;

/* An empty job for o and r (libav's chatter quietened). */
void vtp__cjob_init(vtp__cjob *j, const vtp_compose_opts *o, vtp_compose_result *r);
/* Checks the options; sets mp4 and layout. 0 or VTP_COMPOSE_EINVAL. */
int vtp__cjob_check_opts(vtp__cjob *j);
/* Records the first failure in r->error; returns code. Thread-safe. */
int vtp__cjob_fail(vtp__cjob *j, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Worker threads: the option, else the cores (at most 16). */
int vtp__compose_threads(const vtp_compose_opts *o);
/* The sender's frame rate when it is whole, else 0. */
int vtp__whole_fps(const vtp__ctrack *t);

/* The output file, under a temporary name beside out_path, and its muxer;
 * after the timeline is set (t0 may still move back: the fast path). */
int vtp__cjob_open_output(vtp__cjob *j);
/* Adds the squares of n samples at timeline position pos to track ti's
 * ticks (j->esum[ti]). */
void vtp__cjob_energy_add(vtp__cjob *j, size_t ti, int64_t pos, const float *x, int n);
/* The fast path: track ti's frames copied, the audio mixed beside them,
 * to the end of the timeline. Then vtp__cjob_finish(). */
int vtp__cjob_copy(vtp__cjob *j, int ti);
/* The composed path: encoders for j->frames output frames (set by the
 * driver), the streams and header, HLS in the pass (WebM). The decoders
 * may start after it (the layout ahead needs its peer views). */
int vtp__cjob_open(vtp__cjob *j);
/* Composes the output frames before until_ns (relative to t0; at most
 * j->frames in all) and the audio beside them, in order, from where the
 * last call stopped. Each frame shows the tracks on screen at its
 * instant, asking their decoders for the frame then. */
int vtp__cjob_advance(vtp__cjob *j, int64_t until_ns);
/* The frames left (if any), the audio to t1, the trailer; then HLS made
 * from the file, the thumbnail, the SHA-256, and the file renamed into
 * place. The driver's inputs stay its own. */
int vtp__cjob_finish(vtp__cjob *j);
/* Stops the encoder threads and frees what the pass opened; on failure
 * (rc != 0) the temporary file goes. Not the driver's inputs. */
void vtp__cjob_close(vtp__cjob *j, int rc);

void vtp__cframe_layout_init(const vtp__cjob *j, vtp__cframe_layout *fl);
void vtp__cframe_layout_free(vtp__cframe_layout *fl);
/* The tiles of output instant at (relative to t0) into fl->tiles; their
 * number. Called for every frame in order: speaker layouts keep who spoke
 * last (vtp__cjob_reset_layout() starts over). */
int vtp__cjob_frame_tiles(vtp__cjob *j, int64_t at, vtp__cframe_layout *fl);
void vtp__cjob_reset_layout(vtp__cjob *j);

#endif
