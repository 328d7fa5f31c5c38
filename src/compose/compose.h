/* The composer: a recording's per-track packet logs in, one media file out.
 *
 * Reads every *.vtpcap in a folder (each a track, its later segments
 * <track>.vtpcap.NNNNNN read with it by the capture reader), puts each track's packets back in order,
 * reassembles frames (depack.h), maps every track's RTP clock to the
 * recorder clock (lower envelope of arrival - RTP time; RTCP sender reports
 * tie a peer's audio and video together), decodes, lays the video out in a
 * grid that re-flows when peers join or leave (audio-only peers get a name
 * tile; other layouts: speaker, presentation, screen, auto, chosen per
 * instant from who is present, who shares a screen and who speaks),
 * mixes the audio at 48 kHz, encodes and muxes (WebM VP8/Opus or MP4
 * H.264/AAC with faststart). The file is written to a temporary name beside
 * the output and renamed into place only when complete.
 *
 * Fast path: when exactly one participant sends video and its resolution
 * never changes, the video frames are copied without re-encoding.
 *
 * HLS (when asked for): with MP4, the file's H.264/AAC packets are copied
 * into the segments once the file is written; with WebM, a second encoder
 * (x264, AAC) takes the same composed frames and mixed audio in the same
 * pass. The thumbnail comes from the composed frames (or, on the fast
 * path, from decoding the copied stream).
 *
 * No database, no HTTP: the caller passes paths and settings and hears
 * progress through a callback. Runs in the `compose` child process. */
#ifndef VTP_COMPOSE_COMPOSE_H
#define VTP_COMPOSE_COMPOSE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct vtp_compose_opts {
	const char *tracks_dir;   /* folder holding the *.vtpcap files */
	const char *out_path;     /* final output file */
	const char *format;       /* "webm" | "mp4" */
	const char *video_codec;  /* "vp8" | "h264" */
	const char *audio_codec;  /* "opus" | "aac" */
	int width, height, fps;   /* output video (1280, 720, 30) */
	int bitrate_kbps;         /* total, video gets most of it */
	int threads;              /* worker threads, 0 = number of cores */
	bool no_fast_path;        /* always re-encode (benchmarks, tests) */
	/* Decode every video frame, shown or not (to compare: the output is
	 * the same; by default a track is decoded only from its last keyframe
	 * before it is shown). */
	bool decode_all;
	/* "grid" | "speaker" | "presentation" | "screen" | "auto"; NULL: auto.
	 * The job sets it from the recording's stored layout. */
	const char *layout;
	/* The user who started the recording (the job sets it; NULL: unknown):
	 * before anyone speaks, the layouts that follow the speaker show the
	 * instructor, else this user's tracks, else the first to join. */
	const char *starter_user_id;
	/* HLS for players: a folder (index.m3u8, init.mp4, seg_NNNNN.m4s;
	 * about 4 s fMP4 segments of H.264/AAC) and a 640x360 JPEG near 10 %
	 * of the media, avoiding black frames. NULL: not made. Both are
	 * written beside their final names and renamed into place. */
	const char *hls_dir;
	const char *thumb_path;
	/* Called with 0..100 as the timeline is composed (at most once per
	 * percent); may be NULL. */
	void (*progress)(void *ud, int percent);
	void *ud;
} vtp_compose_opts;

/* A track that gave the file nothing: no picture (a video track without a
 * keyframe, or without packets) or no sound. */
#define VTP_COMPOSE_MAX_UNDECODED 16

typedef struct vtp_compose_undecoded {
	char track_id[40], peer_id[256], full_name[256];
	bool video;
	uint64_t rtp_packets;   /* received and kept; 0: nothing arrived */
} vtp_compose_undecoded;

#define VTP_COMPOSE_MAX_TALK 64

typedef struct vtp_compose_result {
	double duration_seconds;  /* of the media written */
	int64_t file_size;
	char sha256[65];          /* hex of the output file */
	bool fast_path;
	int tracks;               /* tracks read */
	int video_tracks, audio_tracks;
	int peers;
	uint64_t frames_out;      /* video frames encoded or copied */
	uint64_t frames_dropped;  /* incomplete / waiting for a keyframe */
	uint64_t audio_concealed_ms;
	uint64_t decode_errors;
	uint64_t frames_decoded;  /* video frames decoded, of all tracks */
	uint64_t frames_skipped;  /* read but not decoded: not shown */
	int hls_segments;         /* 0 when no HLS was asked for */
	bool hls_copied;          /* HLS reuses the file's H.264 */
	double thumb_at_seconds;  /* where the thumbnail was taken, -1: none */
	/* tracks that gave nothing decodable (the first MAX of them; the
	 * count is of all) */
	vtp_compose_undecoded undecoded[VTP_COMPOSE_MAX_UNDECODED];
	int nundecoded;
	/* Talk time: seconds each person spoke (microphone tracks, voice
	 * activity over the noise floor), the first MAX_TALK people. */
	struct {
		char peer_id[256];
		double seconds;
	} talk[VTP_COMPOSE_MAX_TALK];
	int ntalk;
	char error[256];          /* when the call fails: what went wrong */
} vtp_compose_result;

enum {
	VTP_COMPOSE_OK = 0,
	VTP_COMPOSE_NO_MEDIA = 1,  /* no track carried any decodable media */
	VTP_COMPOSE_EINVAL = 2,    /* bad options */
	VTP_COMPOSE_EIO = 3,       /* could not read the tracks or write the file */
	VTP_COMPOSE_ECODEC = 4,    /* an encoder/muxer refused */
};

/* Composes; on success the output exists at out_path. On failure nothing
 * is left at out_path (nor the temporary file) and r->error says why. */
int vtp_compose_run(const vtp_compose_opts *o, vtp_compose_result *r);

/* Whether name is a layout the composer knows (NULL: no). */
bool vtp_compose_layout_valid(const char *name);

/* Defaults (1280x720, 30 fps, 2000 kbps, webm/vp8/opus) into o. */
void vtp_compose_defaults(vtp_compose_opts *o);

#endif
