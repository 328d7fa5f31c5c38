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

#include "capture/capture.h"
#include "ingest.h"
#include "rtp.h"

enum track_state {
	TRACK_WAITING = 0, /* registered, no packet yet */
	TRACK_RECEIVING,
	TRACK_IDLE,        /* no packet for idle_seconds */
	TRACK_ENDED,
	TRACK_FAILED,      /* its packet log could not be written */
};

enum drop_reason {
	DROP_GARBAGE = 0,  /* neither RTP nor RTCP, or malformed */
	DROP_SOURCE,       /* from another address than the latched one */
	DROP_PT,           /* RTP with another payload type */
	DROP_SSRC,         /* RTP with another SSRC */
	DROP_OVERSIZE,     /* datagram larger than the receive buffer */
	DROP_DUPLICATE,    /* RTP sequence number seen already */
	DROP_CAPTURE,      /* the packet log failed (disk full, I/O error) */
	DROP_COUNT
};

extern const char *const vtp__drop_names[DROP_COUNT];

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

typedef struct track {
	_Atomic int refs;
	char id[VTP_UUID_BUFLEN];
	char recording_id[VTP_UUID_BUFLEN];
	char *peer_id, *full_name, *user_id, *role; /* user_id, role may be NULL */
	bool video;
	char codec[8];
	int pt;
	uint32_t clock_rate;
	bool ssrc_fixed;        /* the registration named the SSRC */
	uint32_t ssrc_expected;
	int port;
	int fd;                 /* the UDP socket; closed by the loop at end */
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
	uint64_t window_start_ns, window_bytes;
	uint64_t drops;
	bool failed;

	/* published */
	_Atomic uint64_t a_packets, a_bytes, a_lost, a_reordered, a_duplicates,
		a_dropped, a_rtcp, a_feedback;
	_Atomic int64_t a_first_ms, a_last_ms;
	_Atomic uint64_t a_bitrate;   /* bits per second over the last window */
	_Atomic uint64_t a_jitter_us;
	_Atomic int a_state;
	_Atomic int a_cap_errno;
	_Atomic uint32_t a_ssrc;

	/* keeper */
	char participant_id[VTP_UUID_BUFLEN];
} track;

void vtp__track_ref(track *t);
void vtp__track_unref(track *t);

/* ---- loop <- control ---------------------------------------------------- */

enum cmd_type { CMD_ADD, CMD_END, CMD_QUIT };

typedef struct cmd {
	struct cmd *next;
	enum cmd_type type;
	track *t;          /* a reference travels with the command */
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
	uint8_t *port_used;     /* port_max - port_min + 1 entries (reg_mu) */
	int port_cursor;

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

	/* totals (published by the loop) */
	_Atomic uint64_t rx_datagrams, rx_bytes;
	_Atomic uint64_t drops[DROP_COUNT];
	_Atomic uint64_t feedback_sent;
};

/* loop.c */
int vtp__loop_start(vtp_ingest *ing, char *err, size_t errlen);
void vtp__loop_post(vtp_ingest *ing, enum cmd_type type, track *t, completion *done);
void vtp__loop_join(vtp_ingest *ing);
/* keeper side: queue an event (called by the loop) */
void vtp__keeper_post(vtp_ingest *ing, enum ev_type type, track *t, int64_t at_ms,
		      completion *done);

#endif
