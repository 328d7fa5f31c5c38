/* Internals shared by the files of src/ingest: the track object, the
 * command queue into the loop and the event queue out of it. Not included
 * outside src/ingest. Ownership rules:
 * - fields under "loop" are touched only by the loop thread;
 * - fields under "published" are relaxed atomics written by the loop and
 *   read by anyone holding a reference;
 * - the registry list and port table are under ing->reg_mu, which the loop
 *   never takes on the packet path;
 * - the packet log (cap) is appended and flushed by the loop, synced by the
 *   keeper, and closed by the keeper after the loop has let go of it. */
#ifndef VTP_INGEST_INT_H
#define VTP_INGEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "capture/capture.h"
#include "dtls.h"
#include "ingest.h"
#include "rtp/rtp.h"
#include "storage/storage.h"

/* What an epoll entry of the loop points at: each object starts with one
 * of these tags. */
enum { SRC_TRACK = 1, SRC_WHIP = 2 };

struct whip_session;

enum track_state {
	TRACK_WAITING = 0, /* registered, no packet yet */
	TRACK_RECEIVING,
	TRACK_IDLE,        /* no packet for idle_seconds */
	TRACK_ENDED,
	TRACK_FAILED,      /* its packet log could not be written */
};

/* Why every recent packet of a track was dropped (its Recording shows the
 * track "misconfigured" with the reason, see ingest.c write_track). */
enum track_problem {
	PROBLEM_NONE = 0,
	PROBLEM_PT,        /* value: the payload type received */
	PROBLEM_SSRC,      /* value: the SSRC received */
	PROBLEM_SOURCE,    /* RTP from another address than the followed sender */
	PROBLEM_SRTP,      /* SRTP that does not authenticate with the track's key */
};

enum drop_reason {
	DROP_GARBAGE = 0,  /* neither RTP nor RTCP, or malformed */
	DROP_SOURCE,       /* from another address than the latched one */
	DROP_PT,           /* RTP with another payload type */
	DROP_SSRC,         /* RTP with another SSRC */
	DROP_OVERSIZE,     /* datagram larger than the receive buffer */
	DROP_DUPLICATE,    /* RTP sequence number seen already */
	DROP_CAPTURE,      /* the packet log failed (disk full, I/O error) */
	DROP_STUN,         /* WHIP: malformed, unauthenticated or unexpected STUN */
	DROP_DTLS,         /* WHIP: DTLS records after the handshake failed or ended */
	DROP_NOT_READY,    /* WHIP: SRTP before the DTLS handshake finished */
	DROP_SRTP_AUTH,    /* WHIP: SRTP/SRTCP authentication failed */
	DROP_SRTP_REPLAY,  /* WHIP: SRTP replayed or too old */
	DROP_COUNT
};

extern const char *const vtp__drop_names[DROP_COUNT];

/* The static name of a track's source: the kind's default (camera,
 * microphone) for NULL, name itself when it is a source of that kind
 * (video: camera, screen; audio: microphone, screen_audio), else NULL. */
const char *vtp__source_name(const char *name, bool video);

/* Waits for n pieces of work finished by other threads. */
typedef struct completion {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending;
} completion;

void vtp__completion_init(completion *c, int pending);
void vtp__completion_done(completion *c);
void vtp__completion_wait(completion *c);
void vtp__completion_destroy(completion *c);

/* Generic NACKs waiting for an answer (WHIP video): lost packets asked for
 * again once, then given up with a PLI. */
#define NACK_PENDING 64

/* RTCP that arrived before the track knew its sender (senders send a
 * sender report before their first RTP packet; a restarted one too): held
 * until RTP chooses the source, then kept if it came from that host. */
#define PENDING_RTCP 4
#define PENDING_RTCP_MAX 512     /* larger early RTCP is not held */

typedef struct pending_rtcp {
	uint64_t at;
	struct sockaddr_storage from;
	socklen_t fromlen;
	uint16_t len;
	uint8_t data[PENDING_RTCP_MAX];
} pending_rtcp;

/* Where a plain-RTP track's feedback goes, in this order of preference. */
enum feedback_via {
	FEEDBACK_NONE = 0,
	FEEDBACK_REGISTERED, /* the registration's "feedback" address */
	FEEDBACK_KEEPALIVE,  /* learned from an SFU's keep-alives */
	FEEDBACK_RTCP,       /* where the sender's RTCP comes from */
	FEEDBACK_RTP,        /* the RTP source (rtcp-mux) */
};

typedef struct track {
	int src_kind;           /* SRC_TRACK */
	_Atomic int refs;
	char id[VTP_UUID_BUFLEN];
	char recording_id[VTP_UUID_BUFLEN];
	char *peer_id, *full_name, *user_id, *role; /* user_id, role may be NULL */
	bool video;
	const char *source;     /* camera|microphone|screen|screen_audio (a static string) */
	char codec[8];
	int pt;
	uint32_t clock_rate;
	bool ssrc_fixed;        /* the registration named the SSRC */
	uint32_t ssrc_expected;
	int port;               /* 0 for a WHIP stream (the session owns the port) */
	int fd;                 /* the UDP socket; closed by the loop at end; -1 for WHIP */
	struct whip_session *whip; /* WHIP: the session this stream belongs to (a reference) */
	int stream;             /* WHIP: index of the session's stream */
	vtp_srtp *srtp;         /* plain RTP with "srtp": the sender's key (inbound) and
				 * ours for feedback (outbound); NULL otherwise */
	bool no_fir;            /* WHIP: the peer did not offer ccm fir */
	bool use_nack;          /* WHIP: the peer retransmits on generic NACK */
	bool fb_fixed;          /* the registration named where feedback goes */
	struct sockaddr_storage fb_fixed_addr;
	socklen_t fb_fixed_len;
	vtp_capw *cap;
	int64_t created_ms;
	struct track *reg_next; /* registry list (reg_mu) */
	bool in_registry;       /* reg_mu */

	/* loop */
	struct track *loop_next;
	bool latched;           /* src: where RTP comes from */
	struct sockaddr_storage src;
	socklen_t srclen;
	bool rtcp_latched;      /* rtcp_src: where RTCP comes from (the same
				 * address with rtcp-mux; ffmpeg and GStreamer
				 * send it from a second port) */
	struct sockaddr_storage rtcp_src;
	socklen_t rtcp_srclen;
	bool have_ssrc;
	uint32_t ssrc;
	uint32_t our_ssrc;      /* sender SSRC of our feedback */
	vtp_rtp_stats st;
	uint64_t first_ns, last_ns;
	bool present;
	uint64_t last_rr_ns, last_pli_ns, last_flush_ns;
	uint8_t fir_seq;
	bool dirty;
	uint32_t nack_seq[NACK_PENDING]; /* extended sequence numbers */
	uint64_t nack_at[NACK_PENDING];  /* when first asked for */
	int nnack;
	uint64_t window_start_ns, window_bytes;
	uint64_t drops;
	bool failed;
	/* the relatch note, until the packet log takes it (write_held_note) */
	char held_note[160];
	size_t held_note_len;
	uint64_t held_note_at;
	uint64_t relatches, ssrc_changes; /* new senders followed; new SSRCs they brought */
	uint64_t past_received, past_lost; /* of the senders before the current one */
	pending_rtcp *pending;  /* PENDING_RTCP entries, allocated when first needed */
	int npending;
	bool fb_learned;        /* fb_addr: an SFU's feedback socket, known by its
				 * keep-alives (Janus's rtp_forward rtcp_port) */
	struct sockaddr_storage fb_addr;
	socklen_t fb_len;
	bool keepalive_held;    /* a keep-alive came before the media: its address
				 * becomes fb_addr if the media comes from its host */
	struct sockaddr_storage keepalive_addr;
	socklen_t keepalive_len;
	bool want_keyframe;     /* asked for one and none came yet */
	uint64_t keyframe_wait_ns; /* until the next request (back-off) */
	uint64_t last_keyframe_ns; /* arrival of the last keyframe's first packet
				    * (before any: of the first packet) */
	uint64_t misfits;       /* packets dropped as misconfigured since the last good one */
	int problem;            /* enum track_problem, as published */

	/* published */
	_Atomic uint64_t a_packets, a_bytes, a_lost, a_reordered, a_duplicates,
		a_dropped, a_rtcp, a_feedback;
	_Atomic int64_t a_first_ms, a_last_ms;
	_Atomic uint64_t a_bitrate;   /* bits per second over the last window */
	_Atomic uint64_t a_jitter_us;
	_Atomic int a_state;
	_Atomic int a_cap_errno;       /* of the current write failure, 0 while writing */
	_Atomic uint64_t a_cap_lost_packets, a_cap_lost_ms; /* not written (vtp_cap_loss) */
	_Atomic int a_cap_last_errno;  /* of the last write failure, kept after recovery */
	_Atomic uint32_t a_ssrc;
	_Atomic uint64_t a_relatched, a_ssrc_changes;
	_Atomic int a_problem;         /* enum track_problem */
	_Atomic uint32_t a_problem_value;
	_Atomic uint64_t a_keyframe_requests;
	_Atomic uint64_t a_feedback_to; /* IPv4 << 16 | port, 0 while unknown */
	_Atomic int a_feedback_via;     /* enum feedback_via */

	/* keeper */
	char participant_id[VTP_UUID_BUFLEN];
} track;

void vtp__track_ref(track *t);
void vtp__track_unref(track *t);

/* ---- loop <- control ---------------------------------------------------- */

enum cmd_type { CMD_ADD, CMD_END, CMD_WHIP_ADD, CMD_WHIP_END, CMD_QUIT };

typedef struct cmd {
	struct cmd *next;
	enum cmd_type type;
	track *t;          /* a reference travels with the command */
	struct whip_session *s; /* CMD_WHIP_*: a reference travels with it */
	completion *done;  /* CMD_END: finished when the log is closed */
} cmd;

/* ---- loop -> keeper ------------------------------------------------------- */

enum ev_type { EV_JOINED, EV_LEFT, EV_CLOSE };

typedef struct ev {
	struct ev *next;
	enum ev_type type;
	track *t;          /* a reference travels with the event */
	int64_t at_ms;
	completion *done;  /* EV_CLOSE */
} ev;

/* ---- WHIP sessions ------------------------------------------------------ */

#define WHIP_MAX_STREAMS 2

enum whip_end_reason {
	WHIP_ALIVE = 0, WHIP_DELETED, WHIP_TIMEOUT, WHIP_CONSENT, WHIP_DTLS_FAILED,
	WHIP_DTLS_CLOSED, WHIP_SHUTDOWN, WHIP_REPLACED,
};

typedef struct whip_stream {
	bool video;
	char codec[8];
	int pt;
	uint32_t clock_rate;
	bool nack, fir, remb;      /* feedback the answer agreed on (PLI: always) */
	/* loop */
	track *t;                  /* the capture while a recording is active */
	bool have_ssrc;
	uint32_t ssrc;
	_Atomic uint64_t a_packets, a_bytes; /* published */
} whip_stream;

typedef struct whip_session {
	int src_kind;              /* SRC_WHIP */
	_Atomic int refs;
	char id[VTP_UUID_BUFLEN];
	char *room_id;
	char user_id[VTP_UUID_BUFLEN];
	char role[16];
	char *full_name;
	char ip[64];               /* the publisher's HTTP address, for the access log */
	char ufrag[9], pwd[33];    /* ours (ICE-lite) */
	char *username;            /* "<ours>:<theirs>" as STUN requests carry it */
	char fp_alg[16];           /* the peer's certificate fingerprint */
	uint8_t fp[64];
	size_t fp_len;
	int fd, port;
	bool screen;               /* ?source=screen: its video is screen, its audio screen_audio */
	int nstreams;
	whip_stream streams[WHIP_MAX_STREAMS];
	int64_t created_ms;
	/* registry (reg_mu) */
	struct whip_session *reg_next;
	bool ending;
	/* the WHIP thread and end_session (ctl_mu) */
	char attached[VTP_UUID_BUFLEN]; /* recording its streams last captured for */
	/* loop */
	struct whip_session *loop_next;
	vtp_dtls *dtls;
	vtp_srtp *srtp;
	bool latched;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint64_t created_ns, last_media_ns, last_stun_ns, last_remb_ns;
	uint32_t our_ssrc;
	/* published */
	_Atomic int a_end;          /* enum whip_end_reason: set once */
	_Atomic uint64_t a_drops;
} whip_session;

void vtp__whip_ref(whip_session *s);
void vtp__whip_unref(whip_session *s);

typedef struct vtp__spool vtp__spool;

struct vtp_ingest {
	vtp_ingest_config cfg;
	char *public_ip;
	char *node_id;
	char bind_ip[64];      /* where sockets are bound */

	/* control path */
	pthread_mutex_t ctl_mu; /* serialises add_track against end_recording */
	pthread_mutex_t reg_mu;
	track *tracks;          /* registry (reg_mu) */
	int ntracks;
	track *ended;           /* ended before their recording stopped (reg_mu) */
	/* recordings seen ended elsewhere on the last pass, sorted (WHIP thread) */
	char (*stopped_seen)[VTP_UUID_BUFLEN];
	int nstopped_seen;
	uint8_t *port_used;     /* port_max - port_min + 1 entries (reg_mu) */

	/* command queue into the loop */
	pthread_mutex_t cmd_mu;
	cmd *cmd_head, **cmd_tail;
	int evfd;               /* eventfd: commands waiting */

	/* event queue out of the loop */
	pthread_mutex_t ev_mu;
	pthread_cond_t ev_cv;
	ev *ev_head, **ev_tail;
	bool keeper_quit;

	pthread_t loop_thread, keeper_thread;
	bool loop_started, keeper_started;
	int epfd, timerfd;

	vtp__spool *spool;      /* NULL without storage */

	/* WHIP */
	vtp_dtls_ctx *dtls;
	whip_session *sessions;  /* registry (reg_mu) */
	int nsessions;
	pthread_t whip_thread;
	bool whip_started;
	pthread_mutex_t whip_mu;
	pthread_cond_t whip_cv;
	bool whip_quit, whip_kick;
	_Atomic uint64_t whip_created, whip_connected, whip_failed, whip_ended;
	struct whip_rate {         /* sessions created per user and minute (reg_mu) */
		char user_id[VTP_UUID_BUFLEN];
		int64_t start_ms;
		int count;
	} whip_rate[64];

	/* totals (published by the loop) */
	_Atomic uint64_t rx_datagrams, rx_bytes;
	_Atomic uint64_t drops[DROP_COUNT];
	_Atomic uint64_t feedback_sent;
	_Atomic uint64_t relatched, ssrc_changes;
	_Atomic uint64_t keyframe_interval_requests; /* PLIs for keyframe_interval_ms */
};

/* Loop state (loop.c, whip_loop.c): the receive batch. */
#define LOOP_BATCH 64
#define LOOP_PKT_MAX 4096                  /* larger datagrams are dropped */

typedef struct loop_state {
	vtp_ingest *ing;
	track *tracks;               /* every live track (loop list) */
	whip_session *sessions;      /* every live WHIP session (loop list) */
	struct mmsghdr msgs[LOOP_BATCH];
	struct iovec iov[LOOP_BATCH];
	struct sockaddr_storage addrs[LOOP_BATCH];
	char ctrl[LOOP_BATCH][CMSG_SPACE(sizeof(struct timespec))];
	uint8_t bufs[LOOP_BATCH][LOOP_PKT_MAX + VTP_SRTP_MAX_TRAILER];
} loop_state;

/* loop.c */
uint64_t vtp__now_realtime_ns(void);
uint64_t vtp__msg_arrival(struct msghdr *mh, uint64_t fallback);
bool vtp__same_addr(const struct sockaddr_storage *a, socklen_t alen,
		    const struct sockaddr_storage *b, socklen_t blen);
void vtp__addr_text(const struct sockaddr_storage *a, char *host, size_t hostlen, int *port);
void vtp__drop(vtp_ingest *ing, track *t, enum drop_reason why);
/* rtp: p parsed by the caller (once per packet: the caller needs it first) */
void vtp__on_rtp(vtp_ingest *ing, track *t, const vtp_rtp *rtp, const uint8_t *p, size_t n,
		 uint64_t at);
void vtp__on_rtcp(vtp_ingest *ing, track *t, const uint8_t *p, size_t n, uint64_t at);
void vtp__end_track(loop_state *ls, track *t, completion *done);

/* whip_loop.c: the packet path of WHIP sessions */
void vtp__whip_loop_add(loop_state *ls, whip_session *s);
void vtp__whip_loop_end(loop_state *ls, whip_session *s);
void vtp__whip_readable(loop_state *ls, whip_session *s);
void vtp__whip_tick(loop_state *ls, uint64_t now);
/* RTCP feedback for a track of a session (protected, to the peer) */
void vtp__whip_send_rtcp(vtp_ingest *ing, whip_session *s, const uint8_t *p, size_t n);
/* A track joins or leaves its session's stream (loop). */
void vtp__whip_track_added(track *t);
void vtp__whip_track_ended(track *t);
/* whip.c: wakes the WHIP thread (a session's a_end was set by the loop, or
 * a recording started) */
void vtp__whip_kick(vtp_ingest *ing);

/* ingest.c, shared with whip.c */
int vtp__bind_port(vtp_ingest *ing, int *port_out);
char *vtp__track_meta(const track *t);
int vtp__track_open_log(vtp_ingest *ing, const vtp_recording *rec, track *t, char *path,
			size_t pathlen, vtp_fail *fail);
char *vtp__end_tracks(vtp_ingest *ing, track **ts, int n, bool keep);
track **vtp__collect_whip(vtp_ingest *ing, whip_session *s, int *n);
void vtp__whip_start(vtp_ingest *ing);
/* ends this node's tracks of recordings stopped elsewhere (WHIP thread) */
void vtp__end_stopped_elsewhere(vtp_ingest *ing);
void vtp__whip_stop(vtp_ingest *ing);
void vtp__whip_metrics(vtp_ingest *ing, vtp_buf *out);
int vtp__loop_start(vtp_ingest *ing, char *err, size_t errlen);
void vtp__loop_post(vtp_ingest *ing, enum cmd_type type, track *t, completion *done);
void vtp__loop_post_whip(vtp_ingest *ing, enum cmd_type type, track *t, struct whip_session *s,
			 completion *done);
void vtp__loop_join(vtp_ingest *ing);
/* spool.c: closed segments to storage, in order (see the file) */
vtp__spool *vtp__spool_start(vtp_storage *storage, vtp_recordings *recs, const char *node_id,
			     int alert_seconds);
void vtp__spool_stop(vtp__spool *sp);
void vtp__spool_add(vtp__spool *sp, const char *path, uint32_t segment, bool last);
int vtp__spool_recover(vtp__spool *sp, int *queued);
void vtp__spool_state(vtp__spool *sp, vtp_spool_state *out);
/* keeper side: queue an event (called by the loop) */
void vtp__keeper_post(vtp_ingest *ing, enum ev_type type, track *t, int64_t at_ms,
		      completion *done);

#endif
