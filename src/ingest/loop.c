/* The ingest loop: one thread, one epoll set with every track's UDP socket,
 * an eventfd for commands and a 100 ms timerfd. Each readable socket is
 * drained with recvmmsg in batches of BATCH datagrams; the kernel stamps
 * each datagram's arrival (SO_TIMESTAMPNS, CLOCK_REALTIME), which is what
 * the packet log keeps. Per datagram: SRTP (when the track has a key) must
 * authenticate, RTP must carry the registered payload type and the given
 * SSRC before it may choose the source, the source must be the latched one
 * (see source_ok), the learned SSRC must match, duplicates are dropped, and
 * everything dropped is counted by reason. RTCP from the source (sender
 * reports above all: they tie the RTP clock to the sender's NTP clock for
 * lip sync) is kept in the log too.
 *
 * Feedback: a video track gets a PLI and a FIR as soon as its first packet
 * arrives, so that the capture starts at a keyframe, and a PLI after loss
 * or a pause (at most every PLI_MIN_NS), repeated with back-off until a
 * keyframe arrives; with keyframe_interval_ms, a live video sender that sent
 * no keyframe for that long gets a PLI too (WebRTC encoders send one only
 * when asked, and the composer decodes an off-screen track only from its
 * last keyframe before it appears; one the sender sends on its own resets
 * the timer); every track with a known SSRC gets a receiver report
 * every second. It goes where feedback_dest says: an SFU may read it on
 * another socket than the one it sends from (a registered address, or one
 * learned from Janus's keep-alives, see on_keepalive). A track whose
 * packets are all dropped for a reason the integrator can fix publishes
 * it (misfit). Timer ticks flush each log's buffer to
 * the kernel every FLUSH_NS (so a kill -9 loses at most that), publish
 * bitrates, and notice peers silent for idle_seconds.
 *
 * Cost: with thousands of tracks most CPU time is the kernel's per-call
 * receive work, so the loop naps between polls in proportion to how many
 * sockets it found ready (see loop_main) and reads several packets per
 * recvmmsg; with a few tracks the nap is microseconds. */
#include "ingest_int.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

#define BATCH LOOP_BATCH
#define PKT_MAX LOOP_PKT_MAX
#define TICK_NS (100 * 1000000ULL)
#define FLUSH_NS (500 * 1000000ULL)
#define RR_NS (1000 * 1000000ULL)
#define PLI_MIN_NS (500 * 1000000ULL)
#define PAUSE_NS (1000 * 1000000ULL)     /* a pause this long asks for a keyframe */
#define WINDOW_NS (1000 * 1000000ULL)    /* bitrate window */
#define MAX_EVENTS 1024
#define NAP_PER_READY_NS 100000L        /* nap 100 us per socket found ready... */
#define NAP_MAX_NS 100000000L            /* ...up to 100 ms between polls */

const char *const vtp__drop_names[DROP_COUNT] = {
	"garbage", "wrong_source", "wrong_payload_type", "wrong_ssrc",
	"oversize", "duplicate", "capture_failed", "stun", "dtls", "not_ready",
	"srtp_auth", "srtp_replay",
};

#define KEYFRAME_RETRY_FIRST_NS (250 * 1000000ULL)
#define KEYFRAME_RETRY_MAX_NS (2000 * 1000000ULL)
#define MISFIT_MIN 5                           /* dropped packets before a track says why */
#define MISFIT_QUIET_NS (1000 * 1000000ULL)    /* ...with no good one for this long */
#define NACK_WAIT_NS (250 * 1000000ULL)  /* a NACKed packet still missing: PLI */
/* A latched sender silent this long may be replaced by a new one. Shorter
 * than any idle timeout, longer than any pause a live sender makes. */
#define RELATCH_SILENCE_NS (2000 * 1000000ULL)

uint64_t vtp__now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void vtp__drop(vtp_ingest *ing, track *t, enum drop_reason why)
{
	atomic_fetch_add_explicit(&ing->drops[why], 1, memory_order_relaxed);
	t->drops++;
	atomic_store_explicit(&t->a_dropped, t->drops, memory_order_relaxed);
}

bool vtp__same_addr(const struct sockaddr_storage *a, socklen_t alen,
		    const struct sockaddr_storage *b, socklen_t blen)
{
	if (alen != blen || a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* "1.2.3.4" / "::1" and the port of an address, for the log and the
 * packet log's notes. */
void vtp__addr_text(const struct sockaddr_storage *a, char *host, size_t hostlen, int *port)
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a;

		inet_ntop(AF_INET, &x->sin_addr, host, (socklen_t)hostlen);
		*port = ntohs(x->sin_port);
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a;

		inet_ntop(AF_INET6, &x->sin6_addr, host, (socklen_t)hostlen);
		*port = ntohs(x->sin6_port);
	}
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
		      sizeof(struct in6_addr)) == 0;
}

/* Where feedback goes: the address the registration named (an SFU that
 * reads feedback on a socket of its own), else the SFU socket its
 * keep-alives revealed (Janus's rtcp_port), else where the sender's RTCP
 * comes from (ffmpeg and GStreamer listen there), else its RTP source
 * (rtcp-mux). */
static enum feedback_via feedback_dest(const track *t, const struct sockaddr_storage **to,
				       socklen_t *tolen)
{
	if (t->fb_fixed) {
		*to = &t->fb_fixed_addr;
		*tolen = t->fb_fixed_len;
		return FEEDBACK_REGISTERED;
	}
	if (t->fb_learned) {
		*to = &t->fb_addr;
		*tolen = t->fb_len;
		return FEEDBACK_KEEPALIVE;
	}
	if (t->rtcp_latched) {
		*to = &t->rtcp_src;
		*tolen = t->rtcp_srclen;
		return FEEDBACK_RTCP;
	}
	if (t->latched) {
		*to = &t->src;
		*tolen = t->srclen;
		return FEEDBACK_RTP;
	}
	return FEEDBACK_NONE;
}

/* For the Recording's tracks: where feedback goes now (the sockets are
 * IPv4, so address and port fit one atomic). */
static void publish_feedback_dest(track *t)
{
	const struct sockaddr_storage *to = NULL;
	socklen_t tolen = 0;
	enum feedback_via via = feedback_dest(t, &to, &tolen);
	uint64_t packed = 0;

	if (via != FEEDBACK_NONE && to->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)to;

		packed = (uint64_t)ntohl(a->sin_addr.s_addr) << 16 | ntohs(a->sin_port);
	}
	atomic_store_explicit(&t->a_feedback_to, packed, memory_order_relaxed);
	atomic_store_explicit(&t->a_feedback_via, (int)via, memory_order_relaxed);
}

static void send_rtcp(vtp_ingest *ing, track *t, const uint8_t *p, size_t n)
{
	const struct sockaddr_storage *to = NULL;
	socklen_t tolen = 0;
	enum feedback_via via;
	uint8_t protected_buf[12 + 4 * NACK_PENDING + VTP_SRTP_MAX_TRAILER];

	if (t->whip) {
		vtp__whip_send_rtcp(ing, t->whip, p, n);
		return;
	}
	via = feedback_dest(t, &to, &tolen);
	if (!n || via == FEEDBACK_NONE)
		return;
	/* Not a reflector: an address that is not the sender's own gets
	 * feedback only while the sender sends (present), and feedback is
	 * small and paced (an RR a second, keyframe requests with back-off). */
	if ((via == FEEDBACK_REGISTERED || via == FEEDBACK_KEEPALIVE) && !t->present)
		return;
	if (t->srtp) {
		/* an SRTP sender takes only SRTCP; what we cannot protect
		 * (too big for the copy) is not sent in the clear */
		if (n > sizeof(protected_buf) - VTP_SRTP_MAX_TRAILER)
			return;
		memcpy(protected_buf, p, n);
		if (vtp_srtp_protect_rtcp(t->srtp, protected_buf, &n) != VTP_SRTP_OK)
			return;
		p = protected_buf;
	}
	/* non-blocking: feedback that does not fit the socket buffer is
	 * simply not sent, never waited for */
	if (sendto(t->fd, p, n, MSG_DONTWAIT, (const struct sockaddr *)to, tolen) ==
	    (ssize_t)n) {
		atomic_fetch_add_explicit(&ing->feedback_sent, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->a_feedback, 1, memory_order_relaxed);
	}
}

/* Asks for a keyframe (at most every PLI_MIN_NS) and remembers that one
 * is wanted: until a keyframe arrives, the tick asks again after
 * KEYFRAME_RETRY_FIRST_NS, then twice as long each time up to
 * KEYFRAME_RETRY_MAX_NS (a request can be lost, or reach an SFU that
 * forwards it only when its publisher is ready). Returns whether a PLI
 * went out (none within PLI_MIN_NS of the last). */
static bool ask_keyframe(vtp_ingest *ing, track *t, uint64_t now, bool with_fir)
{
	uint8_t buf[64];
	size_t n;

	if (!t->video || !t->have_ssrc)
		return false;
	if (!t->want_keyframe) {
		t->want_keyframe = true;
		t->keyframe_wait_ns = KEYFRAME_RETRY_FIRST_NS;
	}
	if (t->last_pli_ns && now - t->last_pli_ns < PLI_MIN_NS)
		return false;
	t->last_pli_ns = now;
	atomic_fetch_add_explicit(&t->a_keyframe_requests, 1, memory_order_relaxed);
	n = vtp_rtcp_build_pli(buf, sizeof(buf), t->our_ssrc, t->ssrc);
	send_rtcp(ing, t, buf, n);
	if (with_fir && !t->no_fir) {
		n = vtp_rtcp_build_fir(buf, sizeof(buf), t->our_ssrc, t->ssrc, t->fir_seq++);
		send_rtcp(ing, t, buf, n);
	}
	return true;
}

/* The tick: a keyframe asked for and still not come is asked for again,
 * with back-off, while the sender sends. */
static void ask_keyframe_again(vtp_ingest *ing, track *t, uint64_t now)
{
	if (!t->want_keyframe || !t->present || t->failed || now < t->last_pli_ns ||
	    now - t->last_pli_ns < t->keyframe_wait_ns)
		return;
	t->keyframe_wait_ns *= 2;
	if (t->keyframe_wait_ns > KEYFRAME_RETRY_MAX_NS)
		t->keyframe_wait_ns = KEYFRAME_RETRY_MAX_NS;
	t->last_pli_ns = 0;
	ask_keyframe(ing, t, now, false);
}

/* The tick: a video sender that sent no keyframe for keyframe_interval_ms
 * is asked for one. Only while it sends (a packet within PAUSE_NS: one
 * that stopped is not asked, though it counts as present until
 * idle_seconds, and one that resumes is asked by the pause rule), and not
 * while a request is pending
 * (ask_keyframe_again repeats that one with its own back-off), so an
 * unanswered sender is not asked every tick. */
static void ask_keyframe_on_interval(vtp_ingest *ing, track *t, uint64_t now)
{
	uint64_t interval_ns = (uint64_t)ing->cfg.keyframe_interval_ms * 1000000ULL;

	if (!interval_ns || !t->video || !t->have_ssrc || !t->present || t->failed ||
	    t->want_keyframe || now < t->last_ns || now - t->last_ns >= PAUSE_NS ||
	    now < t->last_keyframe_ns || now - t->last_keyframe_ns < interval_ns)
		return;
	if (ask_keyframe(ing, t, now, false))
		atomic_fetch_add_explicit(&ing->keyframe_interval_requests, 1,
					  memory_order_relaxed);
}

static bool starts_keyframe(const track *t, const vtp_rtp *rtp)
{
	if (strcmp(t->codec, "vp8") == 0)
		return vtp_rtp_vp8_keyframe(rtp->payload, rtp->payload_len);
	return vtp_rtp_h264_keyframe(rtp->payload, rtp->payload_len);
}

/* Every recent packet of the track was dropped for one of the reasons an
 * integrator can fix (payload type, SSRC, address, key): after
 * MISFIT_MIN of them with no good packet for MISFIT_QUIET_NS (or ever),
 * the track says why. A good packet clears it (see vtp__on_rtp). */
static void misfit(track *t, enum track_problem why, uint32_t value, uint64_t at)
{
	t->misfits++;
	if (t->misfits < MISFIT_MIN || (t->last_ns && at > t->last_ns &&
					at - t->last_ns < MISFIT_QUIET_NS))
		return;
	if (t->problem == (int)why &&
	    atomic_load_explicit(&t->a_problem_value, memory_order_relaxed) == value)
		return;
	if (t->problem == PROBLEM_NONE)
		VTP_WARN("track %s of recording %s: every packet is dropped (%s %u); "
			 "see the track's error", t->id, t->recording_id,
			 why == PROBLEM_PT ? "payload type" : why == PROBLEM_SSRC ? "ssrc"
			 : why == PROBLEM_SOURCE ? "source" : "srtp", (unsigned)value);
	t->problem = (int)why;
	atomic_store_explicit(&t->a_problem_value, value, memory_order_relaxed);
	atomic_store_explicit(&t->a_problem, (int)why, memory_order_relaxed);
}

/* What the packet log could not write so far, for the Recording's tracks
 * and warnings. */
static void publish_loss(track *t)
{
	vtp_cap_loss loss;

	vtp_capw_loss(t->cap, &loss);
	atomic_store_explicit(&t->a_cap_lost_packets, loss.records, memory_order_relaxed);
	atomic_store_explicit(&t->a_cap_lost_ms, loss.lost_ns / 1000000ULL, memory_order_relaxed);
	atomic_store_explicit(&t->a_cap_last_errno, loss.last_errno, memory_order_relaxed);
}

/* The packet log could not be written (disk full, I/O error): packets are
 * counted as lost until the writer's retry goes through, visibly. */
static void capture_failed(track *t)
{
	int e = vtp_capw_errno(t->cap);

	t->failed = true;
	atomic_store_explicit(&t->a_cap_errno, e, memory_order_relaxed);
	atomic_store_explicit(&t->a_state, TRACK_FAILED, memory_order_relaxed);
	publish_loss(t);
	VTP_ERROR("track %s of recording %s: packet log write failed: %s; "
		  "packets are lost until a retry succeeds",
		  t->id, t->recording_id, strerror(e));
}

/* A retry went through (space came back): capture goes on, from a keyframe. */
static void capture_resumed(vtp_ingest *ing, track *t, uint64_t at)
{
	t->failed = false;
	atomic_store_explicit(&t->a_cap_errno, 0, memory_order_relaxed);
	atomic_store_explicit(&t->a_state, t->present ? TRACK_RECEIVING : TRACK_IDLE,
			      memory_order_relaxed);
	publish_loss(t);
	t->last_pli_ns = 0;
	ask_keyframe(ing, t, at, true);
	VTP_WARN("track %s of recording %s: packet log writable again; %llu packets "
		 "(%.1f s) were not written",
		 t->id, t->recording_id,
		 (unsigned long long)atomic_load_explicit(&t->a_cap_lost_packets, memory_order_relaxed),
		 (double)atomic_load_explicit(&t->a_cap_lost_ms, memory_order_relaxed) / 1000.0);
}

/* After every write attempt: the track follows the writer's state. */
static void capture_state(vtp_ingest *ing, track *t, uint64_t at)
{
	bool failing = vtp_capw_failing(t->cap);

	if (failing && !t->failed)
		capture_failed(t);
	else if (!failing && t->failed)
		capture_resumed(ing, t, at);
}

/* Loss and jitter, which the statistics derive rather than count (loss
 * adds up over every source the track has latched onto). */
static void publish_quality(track *t)
{
	atomic_store_explicit(&t->a_lost, t->past_lost + vtp_rtp_stats_lost(&t->st),
			      memory_order_relaxed);
	atomic_store_explicit(&t->a_jitter_us,
			      (uint64_t)(vtp_rtp_stats_jitter_seconds(&t->st, t->clock_rate) * 1e6),
			      memory_order_relaxed);
}

/* The relatch note goes into the log before the next record, the new
 * sender's first packet: the composer re-bases the sender's numbering only
 * where it finds the note. While writes fail it waits (appended then it
 * would only be counted as lost) and goes in after the gap record, once a
 * retry, tried here when due, goes through. */
static void write_held_note(track *t)
{
	if (vtp_capw_failing(t->cap))
		vtp_capw_flush(t->cap);
	if (vtp_capw_failing(t->cap))
		return;
	if (vtp_capw_append(t->cap, VTP_CAP_NOTE, t->held_note_at, (const uint8_t *)t->held_note,
			    t->held_note_len) == 0) {
		t->held_note_len = 0;
		t->dirty = true;
	}
}

static void capture(vtp_ingest *ing, track *t, int kind, uint64_t at, const uint8_t *p,
		    size_t n)
{
	int rc;

	if (t->held_note_len)
		write_held_note(t);
	/* while failing, the writer counts the packet as lost and retries
	 * after its back-off */
	rc = vtp_capw_append(t->cap, kind, at, p, n);
	capture_state(ing, t, at);
	if (rc == 0) {
		t->dirty = true;
		return;
	}
	vtp__drop(ing, t, DROP_CAPTURE);
}

/* A peer is present from its first packet until idle_seconds of silence. */
static void mark_present(vtp_ingest *ing, track *t, uint64_t at)
{
	if (t->present)
		return;
	t->present = true;
	if (!t->failed)
		atomic_store_explicit(&t->a_state, TRACK_RECEIVING, memory_order_relaxed);
	vtp__keeper_post(ing, EV_JOINED, t, (int64_t)(at / 1000000ULL), NULL);
}

/* A WHIP video stream lost packets: ask for them once (the publisher
 * keeps a history for NACKs); the tick asks for a keyframe if they do not
 * come within NACK_WAIT_NS. */
static void ask_again(vtp_ingest *ing, track *t, uint32_t from, uint32_t to, uint64_t now)
{
	uint16_t seqs[NACK_PENDING];
	uint8_t buf[12 + 4 * NACK_PENDING];
	size_t n = 0;

	if (to - from > NACK_PENDING) { /* too much at once: a keyframe is cheaper */
		ask_keyframe(ing, t, now, false);
		return;
	}
	for (uint32_t seq = from; seq < to && t->nnack < NACK_PENDING; seq++) {
		t->nack_seq[t->nnack] = seq;
		t->nack_at[t->nnack++] = now;
		seqs[n++] = (uint16_t)seq;
	}
	send_rtcp(ing, t, buf, vtp_rtcp_build_nack(buf, sizeof(buf), t->our_ssrc, t->ssrc, seqs, n));
}

/* Pending NACKs: answered ones are forgotten; one unanswered too long asks
 * for a keyframe (the decoder cannot go on without it). */
static void check_nacks(vtp_ingest *ing, track *t, uint64_t now)
{
	bool late = false;
	int k = 0;

	for (int i = 0; i < t->nnack; i++) {
		if (vtp_rtp_stats_seen(&t->st, t->nack_seq[i]))
			continue;
		if (now - t->nack_at[i] >= NACK_WAIT_NS) {
			late = true;
			continue;
		}
		t->nack_seq[k] = t->nack_seq[i];
		t->nack_at[k++] = t->nack_at[i];
	}
	t->nnack = k;
	if (late)
		ask_keyframe(ing, t, now, false);
}

void vtp__on_rtp(vtp_ingest *ing, track *t, const vtp_rtp *parsed, const uint8_t *p, size_t n,
		 uint64_t at)
{
	const vtp_rtp rtp = *parsed;
	uint32_t arrival_ts;
	uint32_t prev_max;
	bool first;
	int res;

	if (rtp.pt != t->pt) {
		vtp__drop(ing, t, DROP_PT);
		misfit(t, PROBLEM_PT, rtp.pt, at);
		return;
	}
	if (t->have_ssrc && rtp.ssrc != t->ssrc) {
		vtp__drop(ing, t, DROP_SSRC);
		misfit(t, PROBLEM_SSRC, rtp.ssrc, at);
		return;
	}
	if (!t->have_ssrc) {
		if (t->ssrc_fixed && rtp.ssrc != t->ssrc_expected) {
			vtp__drop(ing, t, DROP_SSRC);
			misfit(t, PROBLEM_SSRC, rtp.ssrc, at);
			return;
		}
		if (t->relatches && rtp.ssrc != t->ssrc) {
			/* a restarted sender: the packet log's note before this
			 * packet tells the composer to re-base its timeline */
			t->ssrc_changes++;
			atomic_store_explicit(&t->a_ssrc_changes, t->ssrc_changes,
					      memory_order_relaxed);
			atomic_fetch_add_explicit(&ing->ssrc_changes, 1, memory_order_relaxed);
		}
		t->have_ssrc = true;
		t->ssrc = rtp.ssrc;
		atomic_store_explicit(&t->a_ssrc, rtp.ssrc, memory_order_relaxed);
	}
	first = !t->st.started;
	if (first)
		t->first_ns = at;
	arrival_ts = (uint32_t)((at - t->first_ns) / 1000ULL * t->clock_rate / 1000000ULL);
	prev_max = vtp_rtp_stats_ext_max(&t->st);
	res = vtp_rtp_stats_update(&t->st, rtp.seq, rtp.ts, arrival_ts, rtp.payload_len);
	if (res == VTP_SEQ_DUPLICATE) {
		atomic_store_explicit(&t->a_duplicates, t->st.duplicates, memory_order_relaxed);
		vtp__drop(ing, t, DROP_DUPLICATE);
		return;
	}
	capture(ing, t, VTP_CAP_RTP, at, p, n);
	if (t->failed) {
		/* Not written, but the sender is alive: it stays present and
		 * latched (its silence would let a stranger take the track after
		 * RELATCH_SILENCE_NS, and end the participant after idle_seconds).
		 * No feedback: the resumed capture asks for its own keyframe. */
		t->last_ns = at;
		mark_present(ing, t, at);
		return;
	}
	t->misfits = 0;
	if (t->problem != PROBLEM_NONE) {
		t->problem = PROBLEM_NONE;
		atomic_store_explicit(&t->a_problem, PROBLEM_NONE, memory_order_relaxed);
	}
	/* present before any feedback: see send_rtcp */
	mark_present(ing, t, at);
	if (first) {
		if (!atomic_load_explicit(&t->a_first_ms, memory_order_relaxed))
			atomic_store_explicit(&t->a_first_ms, (int64_t)(at / 1000000ULL),
					      memory_order_relaxed);
		t->last_pli_ns = 0; /* a new source needs its keyframe now */
		t->last_keyframe_ns = at; /* the interval counts from here until one comes */
		ask_keyframe(ing, t, at, true);
	} else if (t->use_nack && res == VTP_SEQ_OK &&
		   vtp_rtp_stats_ext_max(&t->st) > prev_max + 1) {
		ask_again(ing, t, prev_max + 1, vtp_rtp_stats_ext_max(&t->st), at);
	} else if ((res == VTP_SEQ_OK && vtp_rtp_stats_ext_max(&t->st) > prev_max + 1) ||
		   res == VTP_SEQ_RESTART || (t->last_ns && at - t->last_ns > PAUSE_NS)) {
		ask_keyframe(ing, t, at, false); /* a gap: the decoder needs a keyframe */
	}
	if (t->video && starts_keyframe(t, &rtp)) {
		t->want_keyframe = false;
		t->last_keyframe_ns = at;
	}
	t->last_ns = at;
	t->window_bytes += n;
	atomic_store_explicit(&t->a_packets, t->past_received + t->st.received,
			      memory_order_relaxed);
	atomic_store_explicit(&t->a_bytes, t->st.bytes, memory_order_relaxed);
	atomic_store_explicit(&t->a_reordered, t->st.reordered, memory_order_relaxed);
	atomic_store_explicit(&t->a_last_ms, (int64_t)(at / 1000000ULL), memory_order_relaxed);
}

void vtp__on_rtcp(vtp_ingest *ing, track *t, const uint8_t *p, size_t n, uint64_t at)
{
	vtp_rtcp_info info;

	if (vtp_rtcp_parse(p, n, &info) != 0) {
		vtp__drop(ing, t, DROP_GARBAGE);
		return;
	}
	if (info.has_sr) {
		if (t->have_ssrc && info.sr.ssrc != t->ssrc) {
			vtp__drop(ing, t, DROP_SSRC);
			return;
		}
		vtp_rtp_stats_on_sr(&t->st, info.sr.ntp, at);
	}
	capture(ing, t, VTP_CAP_RTCP, at, p, n);
	if (!t->failed)
		atomic_fetch_add_explicit(&t->a_rtcp, 1, memory_order_relaxed);
}

uint64_t vtp__msg_arrival(struct msghdr *mh, uint64_t fallback)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		}
	}
	return fallback;
}

/* A packet the track would drop anyway never chooses its source: RTP must
 * parse, carry the registered payload type and, when the registration
 * named one, the SSRC. (The SSRC learned from the latched source is checked
 * later, in vtp__on_rtp, so that a stray one is counted as such.) *rtp is
 * the parse, handed on to vtp__on_rtp: once per packet is enough. */
static bool rtp_acceptable(vtp_ingest *ing, track *t, const uint8_t *p, size_t n, vtp_rtp *rtp,
			   uint64_t at)
{
	if (vtp_rtp_parse(p, n, rtp) != 0) {
		vtp__drop(ing, t, DROP_GARBAGE);
		return false;
	}
	if (rtp->pt != t->pt) {
		vtp__drop(ing, t, DROP_PT);
		misfit(t, PROBLEM_PT, rtp->pt, at);
		return false;
	}
	if (t->ssrc_fixed && rtp->ssrc != t->ssrc_expected) {
		vtp__drop(ing, t, DROP_SSRC);
		misfit(t, PROBLEM_SSRC, rtp->ssrc, at);
		return false;
	}
	return true;
}

/* Janus, when a forward has an rtcp_port, first sends two empty RTP
 * packets (version 2, everything else zero) from the socket where it
 * reads feedback for that forward; nothing else sends those. */
static bool is_sfu_keepalive(const uint8_t *p, size_t n)
{
	static const uint8_t keepalive[12] = {0x80};

	return n == sizeof(keepalive) && memcmp(p, keepalive, n) == 0;
}

static void learn_feedback(track *t, const struct sockaddr_storage *from, socklen_t len)
{
	char host[64] = "?";
	int port = 0;

	if (t->fb_learned && vtp__same_addr(&t->fb_addr, t->fb_len, from, len))
		return;
	memcpy(&t->fb_addr, from, sizeof(t->fb_addr));
	t->fb_len = len;
	t->fb_learned = true;
	publish_feedback_dest(t);
	vtp__addr_text(from, host, sizeof(host), &port);
	VTP_INFO("track %s of recording %s: an SFU's keep-alives come from %s:%d; "
		 "feedback goes there", t->id, t->recording_id, host, port);
}

/* An SFU's keep-alive: never media, never the track's source, but the
 * address where the SFU listens for our feedback, if it is the media
 * sender's host (before the media, it waits for it; see latch_feedback). */
static void on_keepalive(vtp_ingest *ing, track *t, const struct sockaddr_storage *from,
			 socklen_t len)
{
	if (!t->latched) {
		memcpy(&t->keepalive_addr, from, sizeof(t->keepalive_addr));
		t->keepalive_len = len;
		t->keepalive_held = true;
		return;
	}
	if (!same_host(&t->src, from)) {
		vtp__drop(ing, t, DROP_SOURCE);
		return;
	}
	if (!vtp__same_addr(&t->src, t->srclen, from, len))
		learn_feedback(t, from, len);
}

/* RTP chose (or changed) the source: a keep-alive held from its host names
 * the feedback socket; one learned from another host no longer does. */
static void latch_feedback(track *t)
{
	if (t->fb_learned && !same_host(&t->src, &t->fb_addr))
		t->fb_learned = false;
	if (t->keepalive_held && same_host(&t->src, &t->keepalive_addr) &&
	    !vtp__same_addr(&t->src, t->srclen, &t->keepalive_addr, t->keepalive_len))
		learn_feedback(t, &t->keepalive_addr, t->keepalive_len);
	t->keepalive_held = false;
	publish_feedback_dest(t);
}

/* The latched sender went silent and another one sends valid RTP (an SFU
 * restarted its transport, a sender came back on another port): the track
 * follows the new one. Its sequence numbers and timestamps are a new
 * space, and a note in the packet log says where it begins. */
static void relatch(vtp_ingest *ing, track *t, const struct sockaddr_storage *from,
		    socklen_t len, uint64_t at)
{
	char host[64] = "?";
	int port = 0;
	size_t n;

	vtp__addr_text(from, host, sizeof(host), &port);
	n = (size_t)snprintf(t->held_note, sizeof(t->held_note),
			     "{\"event\":\"relatch\",\"previousSsrc\":%u,\"silentMs\":%llu,"
			     "\"from\":\"%s:%d\"}",
			     (unsigned)t->ssrc, (unsigned long long)((at - t->last_ns) / 1000000ULL),
			     host, port);
	/* written by capture() before the packet that chose the new sender */
	t->held_note_len = n < sizeof(t->held_note) ? n : 0;
	t->held_note_at = at;
	VTP_INFO("track %s of recording %s: sender silent for %llu ms; following the new "
		 "sender %s:%d", t->id, t->recording_id,
		 (unsigned long long)((at - t->last_ns) / 1000000ULL), host, port);
	memcpy(&t->src, from, sizeof(t->src));
	t->srclen = len;
	t->rtcp_latched = false;
	if (!t->ssrc_fixed)
		t->have_ssrc = false;
	t->past_received += t->st.received;
	t->past_lost += vtp_rtp_stats_lost(&t->st);
	t->st.started = false; /* the next packet starts a new sequence */
	t->st.have_transit = false;
	t->nnack = 0;
	t->relatches++;
	atomic_store_explicit(&t->a_relatched, t->relatches, memory_order_relaxed);
	atomic_fetch_add_explicit(&ing->relatched, 1, memory_order_relaxed);
}

/* Latching: RTP is taken from the first address that sends RTP the track
 * accepts (see rtp_acceptable), and from another one only once that has
 * been silent for RELATCH_SILENCE_NS. RTCP is judged only once RTP is
 * latched (until then it waits, see hold_rtcp), and only from the RTP
 * sender's host: from the first of its ports that sends RTCP (ffmpeg and
 * GStreamer send it from a second port; that is also where they listen for
 * feedback). */
static bool source_ok(vtp_ingest *ing, track *t, int kind, const struct sockaddr_storage *from,
		      socklen_t len, uint64_t at)
{
	if (kind == VTP_PKT_RTP) {
		if (t->latched && vtp__same_addr(&t->src, t->srclen, from, len))
			return true;
		if (t->latched && (at < t->last_ns || at - t->last_ns < RELATCH_SILENCE_NS))
			return false;
		if (t->latched) {
			relatch(ing, t, from, len, at);
			latch_feedback(t);
			return true;
		}
		memcpy(&t->src, from, sizeof(t->src));
		t->srclen = len;
		t->latched = true;
		latch_feedback(t);
		return true;
	}
	if (!t->latched || !same_host(&t->src, from))
		return false;
	if (t->rtcp_latched)
		return vtp__same_addr(&t->rtcp_src, t->rtcp_srclen, from, len);
	memcpy(&t->rtcp_src, from, sizeof(t->rtcp_src));
	t->rtcp_srclen = len;
	t->rtcp_latched = true;
	publish_feedback_dest(t);
	return true;
}

/* RTCP that cannot be judged yet: nothing is latched, or it comes from a
 * new address while the latched sender is silent enough to be replaced. */
static bool rtcp_must_wait(const track *t, const struct sockaddr_storage *from, socklen_t len,
			   uint64_t at)
{
	if (!t->latched)
		return true;
	if (vtp__same_addr(&t->src, t->srclen, from, len) ||
	    (t->rtcp_latched && vtp__same_addr(&t->rtcp_src, t->rtcp_srclen, from, len)))
		return false;
	return at >= t->last_ns && at - t->last_ns >= RELATCH_SILENCE_NS;
}

static void hold_rtcp(vtp_ingest *ing, track *t, const uint8_t *p, size_t n,
		      const struct sockaddr_storage *from, socklen_t len, uint64_t at)
{
	vtp_rtcp_info info;
	pending_rtcp *e;

	if (vtp_rtcp_parse(p, n, &info) != 0) {
		vtp__drop(ing, t, DROP_GARBAGE);
		return;
	}
	if (n > PENDING_RTCP_MAX) {
		vtp__drop(ing, t, DROP_SOURCE);
		return;
	}
	if (!t->pending)
		t->pending = vtp_calloc(PENDING_RTCP, sizeof(*t->pending));
	if (t->npending == PENDING_RTCP) { /* the oldest goes */
		vtp__drop(ing, t, DROP_SOURCE);
		memmove(&t->pending[0], &t->pending[1], (PENDING_RTCP - 1) * sizeof(*t->pending));
		t->npending--;
	}
	e = &t->pending[t->npending++];
	e->at = at;
	memcpy(&e->from, from, sizeof(e->from));
	e->fromlen = len;
	e->len = (uint16_t)n;
	memcpy(e->data, p, n);
}

/* RTP has chosen (or confirmed) the source: held RTCP from its host is
 * kept (after the RTP packet, so that it can be tied to its SSRC), the
 * rest was someone else's. */
static void release_rtcp(vtp_ingest *ing, track *t)
{
	for (int i = 0; i < t->npending; i++) {
		pending_rtcp *e = &t->pending[i];

		if (source_ok(ing, t, VTP_PKT_RTCP, &e->from, e->fromlen, e->at))
			vtp__on_rtcp(ing, t, e->data, e->len, e->at);
		else
			vtp__drop(ing, t, DROP_SOURCE);
	}
	t->npending = 0;
}

/* SRTP tracks: the datagram is authenticated and decrypted in place
 * before anything else looks at it, so a sender without the key can
 * neither latch nor be captured. */
static bool srtp_open(vtp_ingest *ing, track *t, int kind, uint8_t *p, size_t *n, uint64_t at)
{
	int rc;

	if (!t->srtp)
		return true;
	rc = kind == VTP_PKT_RTP ? vtp_srtp_unprotect_rtp(t->srtp, p, n)
				 : vtp_srtp_unprotect_rtcp(t->srtp, p, n);
	if (rc == VTP_SRTP_OK)
		return true;
	vtp__drop(ing, t, rc == VTP_SRTP_AUTH ? DROP_SRTP_AUTH
			  : rc == VTP_SRTP_REPLAY ? DROP_SRTP_REPLAY : DROP_GARBAGE);
	if (rc == VTP_SRTP_AUTH && kind == VTP_PKT_RTP)
		misfit(t, PROBLEM_SRTP, 0, at);
	return false;
}

static void on_readable(loop_state *ls, track *t)
{
	vtp_ingest *ing = ls->ing;

	for (;;) {
		uint64_t now;
		int got;

		got = recvmmsg(t->fd, ls->msgs, BATCH, MSG_DONTWAIT, NULL);
		if (got <= 0) {
			if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				VTP_WARN("track %s: receive failed: %s", t->id, strerror(errno));
			return;
		}
		now = vtp__now_realtime_ns();
		for (int i = 0; i < got; i++) {
			struct msghdr *mh = &ls->msgs[i].msg_hdr;
			size_t n = ls->msgs[i].msg_len;
			uint8_t *p = ls->bufs[i];
			uint64_t at = vtp__msg_arrival(mh, now);
			vtp_rtp rtp;
			int kind;

			atomic_fetch_add_explicit(&ing->rx_datagrams, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&ing->rx_bytes, n, memory_order_relaxed);
			if (mh->msg_flags & MSG_TRUNC) {
				vtp__drop(ing, t, DROP_OVERSIZE);
				continue;
			}
			kind = vtp_pkt_classify(p, n);
			if (kind == VTP_PKT_GARBAGE) {
				vtp__drop(ing, t, DROP_GARBAGE);
				continue;
			}
			/* before SRTP: a 12-byte datagram cannot be SRTP */
			if (kind == VTP_PKT_RTP && is_sfu_keepalive(p, n)) {
				on_keepalive(ing, t, &ls->addrs[i], mh->msg_namelen);
				continue;
			}
			if (!srtp_open(ing, t, kind, p, &n, at))
				continue;
			if (kind == VTP_PKT_RTP && !rtp_acceptable(ing, t, p, n, &rtp, at))
				continue;
			if (kind == VTP_PKT_RTCP &&
			    rtcp_must_wait(t, &ls->addrs[i], mh->msg_namelen, at)) {
				hold_rtcp(ing, t, p, n, &ls->addrs[i], mh->msg_namelen, at);
				continue;
			}
			if (!source_ok(ing, t, kind, &ls->addrs[i], mh->msg_namelen, at)) {
				vtp__drop(ing, t, DROP_SOURCE);
				if (kind == VTP_PKT_RTP)
					misfit(t, PROBLEM_SOURCE, 0, at);
				continue;
			}
			if (kind == VTP_PKT_RTP) {
				vtp__on_rtp(ing, t, &rtp, p, n, at);
				if (t->npending)
					release_rtcp(ing, t);
			} else {
				vtp__on_rtcp(ing, t, p, n, at);
			}
		}
		/* the kernel shortened these; the rest are still as set up */
		for (int i = 0; i < got; i++) {
			ls->msgs[i].msg_hdr.msg_namelen = sizeof(ls->addrs[i]);
			ls->msgs[i].msg_hdr.msg_controllen = sizeof(ls->ctrl[i]);
		}
		if (got < BATCH)
			return;
	}
}

static void flush_track(vtp_ingest *ing, track *t, uint64_t now)
{
	t->last_flush_ns = now;
	/* with nothing new, the flush still closes a segment that is due, so
	 * a silent track's last packets are committed too */
	t->dirty = false;
	vtp_capw_flush(t->cap); /* while failing: a retry when due */
	capture_state(ing, t, now);
	if (t->failed)
		publish_loss(t);
}

static void tick(loop_state *ls)
{
	vtp_ingest *ing = ls->ing;
	uint64_t now = vtp__now_realtime_ns();
	uint64_t idle_ns = (uint64_t)ing->cfg.idle_seconds * 1000000000ULL;
	uint8_t buf[64];

	for (track *t = ls->tracks; t; t = t->loop_next) {
		if (now - t->last_flush_ns >= FLUSH_NS)
			flush_track(ing, t, now);
		if (t->nnack)
			check_nacks(ing, t, now);
		ask_keyframe_again(ing, t, now);
		ask_keyframe_on_interval(ing, t, now);
		if (t->have_ssrc && now - t->last_rr_ns >= RR_NS) {
			t->last_rr_ns = now;
			send_rtcp(ing, t, buf,
				  vtp_rtcp_build_rr(buf, sizeof(buf), t->our_ssrc, t->ssrc, &t->st, now));
			publish_quality(t);
		}
		if (now - t->window_start_ns >= WINDOW_NS) {
			uint64_t span = now - t->window_start_ns;

			atomic_store_explicit(&t->a_bitrate,
					      t->window_start_ns ? t->window_bytes * 8ULL * 1000000000ULL / span : 0,
					      memory_order_relaxed);
			t->window_start_ns = now;
			t->window_bytes = 0;
		}
		if (t->present && now > t->last_ns && now - t->last_ns >= idle_ns) {
			t->present = false;
			if (!t->failed)
				atomic_store_explicit(&t->a_state, TRACK_IDLE, memory_order_relaxed);
			vtp__keeper_post(ing, EV_LEFT, t, (int64_t)(t->last_ns / 1000000ULL), NULL);
		}
	}
	vtp__whip_tick(ls, now);
}

static void add_track(loop_state *ls, track *t)
{
	struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.ptr = t}; /* drained each time */

	if (t->whip) {
		vtp__whip_track_added(t);
	} else if (epoll_ctl(ls->ing->epfd, EPOLL_CTL_ADD, t->fd, &e) != 0) {
		VTP_ERROR("track %s: cannot watch its socket: %s", t->id, strerror(errno));
		atomic_store_explicit(&t->a_state, TRACK_FAILED, memory_order_relaxed);
	}
	vtp_random_bytes(&t->our_ssrc, sizeof(t->our_ssrc));
	publish_feedback_dest(t);
	t->last_flush_ns = vtp__now_realtime_ns();
	t->window_start_ns = t->last_flush_ns;
	t->loop_next = ls->tracks;
	ls->tracks = t; /* the command's reference is now the loop's */
}

/* Ends a track: what the kernel still holds is read and kept, the log is
 * flushed, and the keeper closes (fdatasync) it and signals done. */
void vtp__end_track(loop_state *ls, track *t, completion *done)
{
	vtp_ingest *ing = ls->ing;
	track **pp;

	for (pp = &ls->tracks; *pp && *pp != t; pp = &(*pp)->loop_next)
		;
	if (!*pp) { /* already ended */
		if (done)
			vtp__completion_done(done);
		vtp__track_unref(t); /* the command's reference */
		return;
	}
	*pp = t->loop_next;
	if (t->whip) {
		vtp__whip_track_ended(t);
	} else {
		on_readable(ls, t);
		epoll_ctl(ing->epfd, EPOLL_CTL_DEL, t->fd, NULL);
		close(t->fd);
		t->fd = -1;
	}
	flush_track(ing, t, vtp__now_realtime_ns());
	publish_quality(t);
	if (t->present) {
		t->present = false;
		vtp__keeper_post(ing, EV_LEFT, t, (int64_t)(vtp__now_realtime_ns() / 1000000ULL), NULL);
	}
	if (!t->failed)
		atomic_store_explicit(&t->a_state, TRACK_ENDED, memory_order_relaxed);
	vtp__keeper_post(ing, EV_CLOSE, t, 0, done);
	vtp__track_unref(t); /* the loop's reference */
	vtp__track_unref(t); /* the command's reference */
}

static bool run_commands(loop_state *ls)
{
	vtp_ingest *ing = ls->ing;
	uint64_t v;
	cmd *c, *next;
	bool quit = false;

	if (read(ing->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		VTP_WARN("ingest: eventfd read failed: %s", strerror(errno));
	pthread_mutex_lock(&ing->cmd_mu);
	c = ing->cmd_head;
	ing->cmd_head = NULL;
	ing->cmd_tail = &ing->cmd_head;
	pthread_mutex_unlock(&ing->cmd_mu);
	for (; c; c = next) {
		next = c->next;
		switch (c->type) {
		case CMD_ADD:
			add_track(ls, c->t);
			break;
		case CMD_END:
			vtp__end_track(ls, c->t, c->done);
			break;
		case CMD_WHIP_ADD:
			vtp__whip_loop_add(ls, c->s);
			break;
		case CMD_WHIP_END:
			vtp__whip_loop_end(ls, c->s);
			if (c->done)
				vtp__completion_done(c->done);
			break;
		case CMD_QUIT:
			quit = true;
			break;
		}
		vtp_free(c);
	}
	return quit;
}

static void *loop_main(void *arg)
{
	vtp_ingest *ing = arg;
	loop_state *ls = vtp_calloc(1, sizeof(*ls));
	struct epoll_event evs[MAX_EVENTS];
	bool quit = false, commands = false;

	ls->ing = ing;
	pthread_setname_np(pthread_self(), "vtp-ingest");
	for (int i = 0; i < BATCH; i++) {
		ls->iov[i].iov_base = ls->bufs[i];
		ls->iov[i].iov_len = PKT_MAX;
		ls->msgs[i].msg_hdr.msg_iov = &ls->iov[i];
		ls->msgs[i].msg_hdr.msg_iovlen = 1;
		ls->msgs[i].msg_hdr.msg_name = &ls->addrs[i];
		ls->msgs[i].msg_hdr.msg_namelen = sizeof(ls->addrs[i]);
		ls->msgs[i].msg_hdr.msg_control = ls->ctrl[i];
		ls->msgs[i].msg_hdr.msg_controllen = sizeof(ls->ctrl[i]);
	}
	while (!quit) {
		int n = epoll_wait(ing->epfd, evs, MAX_EVENTS, 1000);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			VTP_ERROR("ingest: epoll_wait failed: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &ing->evfd) {
				commands = true; /* after this batch, see below */
			} else if (p == &ing->timerfd) {
				uint64_t expirations;

				if (read(ing->timerfd, &expirations, sizeof(expirations)) < 0 &&
				    errno != EAGAIN)
					VTP_WARN("ingest: timerfd read failed: %s", strerror(errno));
				tick(ls);
			} else if (*(int *)p == SRC_WHIP) {
				vtp__whip_readable(ls, p);
			} else {
				on_readable(ls, p);
			}
		}
		/* Commands run after the batch: ending a track or a session
		 * closes its socket and may free it, and a later entry of this
		 * batch could still point at it. */
		if (commands) {
			commands = false;
			quit = run_commands(ls) || quit;
		}
		/* Under load, packets trickle in on many sockets: waking up and
		 * calling recvmmsg for each costs more than reading it (the
		 * kernel's per-call work is most of the CPU time). A nap that
		 * grows with the number of sockets found ready lets each gather
		 * a few packets (their buffers hold seconds), so one wake-up and
		 * one call serve many; a small room naps microseconds. Arrival
		 * times are the kernel's stamps, so they stay exact. */
		if (n > 0 && ls->tracks) {
			long ns = (long)n * NAP_PER_READY_NS;
			struct timespec nap = {0, ns < NAP_MAX_NS ? ns : NAP_MAX_NS};

			nanosleep(&nap, NULL);
		}
	}
	/* every session still live ends (normally the WHIP thread ended
	 * them already), and every track with its log closed */
	while (ls->sessions) {
		whip_session *s = ls->sessions;

		vtp__whip_ref(s); /* vtp__whip_loop_end drops a command's reference */
		vtp__whip_loop_end(ls, s);
	}
	while (ls->tracks) {
		track *t = ls->tracks;

		vtp__track_ref(t); /* end_track drops a command's reference */
		vtp__end_track(ls, t, NULL);
	}
	vtp_free(ls);
	return NULL;
}

void vtp__loop_post(vtp_ingest *ing, enum cmd_type type, track *t, completion *done)
{
	vtp__loop_post_whip(ing, type, t, NULL, done);
}

void vtp__loop_post_whip(vtp_ingest *ing, enum cmd_type type, track *t, whip_session *s,
			 completion *done)
{
	cmd *c = vtp_calloc(1, sizeof(*c));
	uint64_t one = 1;

	c->type = type;
	c->t = t;
	c->done = done;
	c->s = s;
	if (t)
		vtp__track_ref(t);
	if (s)
		vtp__whip_ref(s);
	pthread_mutex_lock(&ing->cmd_mu);
	*ing->cmd_tail = c;
	ing->cmd_tail = &c->next;
	pthread_mutex_unlock(&ing->cmd_mu);
	if (write(ing->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VTP_ERROR("ingest: eventfd write failed: %s", strerror(errno));
}

int vtp__loop_start(vtp_ingest *ing, char *err, size_t errlen)
{
	struct epoll_event e = {.events = EPOLLIN};
	struct itimerspec its = {
		.it_interval = {0, (long)TICK_NS},
		.it_value = {0, (long)TICK_NS},
	};

	ing->epfd = epoll_create1(EPOLL_CLOEXEC);
	ing->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ing->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ing->epfd < 0 || ing->evfd < 0 || ing->timerfd < 0 ||
	    timerfd_settime(ing->timerfd, 0, &its, NULL) != 0) {
		snprintf(err, errlen, "ingest: cannot create its event descriptors: %s",
			 strerror(errno));
		return VTP_EIO;
	}
	e.data.ptr = &ing->evfd;
	epoll_ctl(ing->epfd, EPOLL_CTL_ADD, ing->evfd, &e);
	e.data.ptr = &ing->timerfd;
	epoll_ctl(ing->epfd, EPOLL_CTL_ADD, ing->timerfd, &e);
	if (pthread_create(&ing->loop_thread, NULL, loop_main, ing) != 0) {
		snprintf(err, errlen, "ingest: cannot start the loop thread");
		return VTP_EINTERNAL;
	}
	ing->loop_started = true;
	return 0;
}

void vtp__loop_join(vtp_ingest *ing)
{
	if (!ing->loop_started)
		return;
	vtp__loop_post(ing, CMD_QUIT, NULL, NULL);
	pthread_join(ing->loop_thread, NULL);
	ing->loop_started = false;
}
