/* The control side of the ingest (see ingest.h for the threads): track
 * registration and its validation, UDP port allocation, the keeper thread
 * (log syncs and closes, participant events), the recording service's media
 * hooks, metrics and crash recovery. The packet path is in loop.c. */
#include "ingest_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "core/jsonval.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"

#define SYNC_INTERVAL_MS 1000
#define SYNCFS_MIN 16 /* open logs from which one syncfs replaces per-log fdatasync */
#define CAPTURE_BUFFER (32 * 1024)
#define DEFAULT_RCVBUF (4 * 1024 * 1024)

/* ---- small pieces ----------------------------------------------------------- */

void vtp__completion_init(completion *c, int pending)
{
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->pending = pending;
}

void vtp__completion_done(completion *c)
{
	pthread_mutex_lock(&c->mu);
	if (--c->pending <= 0)
		pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void vtp__completion_wait(completion *c)
{
	pthread_mutex_lock(&c->mu);
	while (c->pending > 0)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

void vtp__completion_destroy(completion *c)
{
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
}

void vtp__track_ref(track *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void vtp__track_unref(track *t)
{
	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (t->fd >= 0)
		close(t->fd);
	vtp_capw_close(t->cap); /* normally closed by the keeper already */
	if (t->whip)
		vtp__whip_unref(t->whip);
	vtp_srtp_free(t->srtp);
	vtp_free(t->pending);
	vtp_free(t->peer_id);
	vtp_free(t->full_name);
	vtp_free(t->user_id);
	vtp_free(t->role);
	vtp_free(t);
}

static const char *state_name(int s)
{
	switch (s) {
	case TRACK_WAITING: return "waiting";
	case TRACK_RECEIVING: return "receiving";
	case TRACK_IDLE: return "idle";
	case TRACK_ENDED: return "ended";
	default: return "failed";
	}
}

/* One entry of the Recording's `tracks`, from live counters or, after a
 * crash, from the packet log. Negative numbers (and NULL strings among the
 * optional ones) are left out: a log cannot tell duplicates, drops, jitter
 * or bitrate. */
typedef struct track_json {
	const char *id, *peer_id, *full_name, *kind, *source, *codec, *state;
	int64_t packets, bytes, lost, reordered, duplicates, dropped, bitrate;
	int64_t relatched, ssrc_changes; /* the track followed a new sender */
	int64_t keyframe_requests;
	const char *feedback_to;  /* optional: "ip:port" where feedback goes */
	const char *feedback_via; /* optional: why there */
	double jitter_ms;
	int64_t first_ms, last_ms;
	const char *error;   /* optional */
	const char *log_end; /* optional: how the log ended (recovery) */
	/* not written to the packet log (disk full): left out when nothing */
	int64_t not_written_packets;
	double not_written_seconds;
	const char *not_written_reason;
} track_json;

static void write_track_json(vtp_jw *w, const track_json *j)
{
	const struct {
		const char *key;
		int64_t v;
	} counts[] = {
		{"packets", j->packets}, {"bytes", j->bytes}, {"lost", j->lost},
		{"reordered", j->reordered}, {"duplicates", j->duplicates},
		{"dropped", j->dropped}, {"relatched", j->relatched},
		{"ssrcChanges", j->ssrc_changes}, {"keyframeRequests", j->keyframe_requests},
	};

	vtp_jw_object_begin(w);
	vtp_jw_key(w, "trackId");
	vtp_jw_string(w, j->id);
	vtp_jw_key(w, "peerId");
	vtp_jw_string(w, j->peer_id);
	vtp_jw_key(w, "fullName");
	vtp_jw_string(w, j->full_name);
	vtp_jw_key(w, "kind");
	vtp_jw_string(w, j->kind);
	vtp_jw_key(w, "source");
	vtp_jw_string(w, j->source);
	vtp_jw_key(w, "codec");
	vtp_jw_string(w, j->codec);
	vtp_jw_key(w, "state");
	vtp_jw_string(w, j->state);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		if (counts[i].v < 0)
			continue;
		vtp_jw_key(w, counts[i].key);
		vtp_jw_int(w, counts[i].v);
	}
	if (j->jitter_ms >= 0) {
		vtp_jw_key(w, "jitterMs");
		vtp_jw_double(w, j->jitter_ms);
	}
	if (j->bitrate >= 0) {
		vtp_jw_key(w, "bitrate");
		vtp_jw_int(w, j->bitrate);
	}
	vtp_jw_key(w, "firstPacketAt");
	vtp_jw_time(w, j->first_ms);
	vtp_jw_key(w, "lastPacketAt");
	vtp_jw_time(w, j->last_ms);
	if (j->feedback_to) {
		vtp_jw_key(w, "feedbackTo");
		vtp_jw_string(w, j->feedback_to);
		vtp_jw_key(w, "feedbackVia");
		vtp_jw_string(w, j->feedback_via);
	}
	if (j->error) {
		vtp_jw_key(w, "error");
		vtp_jw_string(w, j->error);
	}
	if (j->log_end) {
		vtp_jw_key(w, "logEnd");
		vtp_jw_string(w, j->log_end);
	}
	if (j->not_written_packets > 0) {
		vtp_jw_key(w, "notWrittenPackets");
		vtp_jw_int(w, j->not_written_packets);
		vtp_jw_key(w, "notWrittenSeconds");
		vtp_jw_double(w, j->not_written_seconds);
		vtp_jw_key(w, "notWrittenReason");
		vtp_jw_string(w, j->not_written_reason);
	}
	vtp_jw_object_end(w);
}

/* Why every recent packet was dropped, in the integrator's terms (the
 * registration to fix is theirs). NULL when the track has no such problem. */
static const char *problem_text(const track *t, int problem, char *buf, size_t len)
{
	uint32_t v = atomic_load_explicit(&t->a_problem_value, memory_order_relaxed);

	switch (problem) {
	case PROBLEM_PT:
		snprintf(buf, len, "payload type %u received, %d registered", (unsigned)v, t->pt);
		return buf;
	case PROBLEM_SSRC:
		if (t->ssrc_fixed)
			snprintf(buf, len, "SSRC %u received, %u registered", (unsigned)v,
				 (unsigned)t->ssrc_expected);
		else
			snprintf(buf, len, "SSRC %u received, %u expected (the sender's first)",
				 (unsigned)v,
				 (unsigned)atomic_load_explicit(&t->a_ssrc, memory_order_relaxed));
		return buf;
	case PROBLEM_SOURCE:
		return "RTP received from another address than the sender the track follows";
	case PROBLEM_SRTP:
		return "SRTP that does not authenticate with the track's key received";
	default:
		return NULL;
	}
}

static const char *const feedback_via_names[] = {
	[FEEDBACK_REGISTERED] = "registered", [FEEDBACK_KEEPALIVE] = "keepalive",
	[FEEDBACK_RTCP] = "rtcp", [FEEDBACK_RTP] = "rtp",
};

/* A live track's entry, from the counters the loop publishes. */
static void write_track(vtp_jw *w, track *t)
{
#define LOAD(f) ((int64_t)atomic_load_explicit(&t->f, memory_order_relaxed))
	int cap_errno = atomic_load_explicit(&t->a_cap_errno, memory_order_relaxed);
	int last_errno = atomic_load_explicit(&t->a_cap_last_errno, memory_order_relaxed);
	int state = atomic_load_explicit(&t->a_state, memory_order_relaxed);
	int problem = atomic_load_explicit(&t->a_problem, memory_order_relaxed);
	int via = atomic_load_explicit(&t->a_feedback_via, memory_order_relaxed);
	uint64_t fb = atomic_load_explicit(&t->a_feedback_to, memory_order_relaxed);
	char problem_buf[128], fb_text[32];
	track_json j = {
		.id = t->id, .peer_id = t->peer_id, .full_name = t->full_name,
		.kind = t->video ? "video" : "audio", .source = t->source, .codec = t->codec,
		.state = state_name(state),
		.packets = LOAD(a_packets), .bytes = LOAD(a_bytes), .lost = LOAD(a_lost),
		.reordered = LOAD(a_reordered), .duplicates = LOAD(a_duplicates),
		.dropped = LOAD(a_dropped), .bitrate = LOAD(a_bitrate),
		.relatched = LOAD(a_relatched), .ssrc_changes = LOAD(a_ssrc_changes),
		.keyframe_requests = t->video ? LOAD(a_keyframe_requests) : -1,
		.jitter_ms = (double)LOAD(a_jitter_us) / 1000.0,
		.first_ms = LOAD(a_first_ms), .last_ms = LOAD(a_last_ms),
		.error = cap_errno ? strerror(cap_errno) : NULL,
		.not_written_packets = LOAD(a_cap_lost_packets),
		.not_written_seconds = (double)LOAD(a_cap_lost_ms) / 1000.0,
		.not_written_reason = last_errno == ENOSPC || last_errno == EDQUOT ? "disk_full"
				      : "write_failed",
	};
#undef LOAD

	/* a packet log that cannot be written says so first; then a track
	 * that drops everything it gets, and why */
	if (!cap_errno && problem != PROBLEM_NONE) {
		j.error = problem_text(t, problem, problem_buf, sizeof(problem_buf));
		if (state == TRACK_WAITING || state == TRACK_RECEIVING || state == TRACK_IDLE)
			j.state = "misconfigured";
	}
	if (fb && via > FEEDBACK_NONE && via <= FEEDBACK_RTP) {
		snprintf(fb_text, sizeof(fb_text), "%u.%u.%u.%u:%u", (unsigned)(fb >> 40) & 255,
			 (unsigned)(fb >> 32) & 255, (unsigned)(fb >> 24) & 255,
			 (unsigned)(fb >> 16) & 255, (unsigned)fb & 0xffff);
		j.feedback_to = fb_text;
		j.feedback_via = feedback_via_names[via];
	}
	write_track_json(w, &j);
}

/* ---- keeper: syncs, closes, participants -------------------------------------- */

void vtp__keeper_post(vtp_ingest *ing, enum ev_type type, track *t, int64_t at_ms,
		      completion *done)
{
	ev *e = vtp_calloc(1, sizeof(*e));

	e->type = type;
	e->t = t;
	e->at_ms = at_ms;
	e->done = done;
	vtp__track_ref(t);
	pthread_mutex_lock(&ing->ev_mu);
	*ing->ev_tail = e;
	ing->ev_tail = &e->next;
	pthread_cond_signal(&ing->ev_cv);
	pthread_mutex_unlock(&ing->ev_mu);
}

/* A peer is present while any of its tracks is: one participant row per
 * stint, shared by the peer's audio and video. */
static track *peer_sibling_present(vtp_ingest *ing, track *t)
{
	track *found = NULL;

	pthread_mutex_lock(&ing->reg_mu);
	for (track *o = ing->tracks; o; o = o->reg_next) {
		if (o != t && o->participant_id[0] && strcmp(o->recording_id, t->recording_id) == 0 &&
		    strcmp(o->peer_id, t->peer_id) == 0) {
			found = o;
			break;
		}
	}
	pthread_mutex_unlock(&ing->reg_mu);
	return found;
}

static void on_event(vtp_ingest *ing, ev *e)
{
	track *t = e->t, *sib;
	int rc;

	switch (e->type) {
	case EV_JOINED:
		if (t->participant_id[0])
			break;
		sib = peer_sibling_present(ing, t);
		if (sib) {
			memcpy(t->participant_id, sib->participant_id, sizeof(t->participant_id));
			break;
		}
		rc = vtp_recordings_participant_joined(ing->cfg.recordings, t->recording_id,
						       t->peer_id, t->full_name, t->user_id,
						       t->role, e->at_ms, t->participant_id);
		if (rc) {
			t->participant_id[0] = '\0';
			VTP_ERROR("recording %s: participant %s not recorded: %s", t->recording_id,
				  t->peer_id, vtp_strerror(rc));
		}
		break;
	case EV_LEFT:
		if (!t->participant_id[0])
			break;
		sib = peer_sibling_present(ing, t);
		if (!sib || strcmp(sib->participant_id, t->participant_id) != 0) {
			rc = vtp_recordings_participant_left(ing->cfg.recordings, t->participant_id,
							     e->at_ms);
			if (rc)
				VTP_ERROR("recording %s: participant %s leaving not recorded: %s",
					  t->recording_id, t->peer_id, vtp_strerror(rc));
		}
		t->participant_id[0] = '\0';
		break;
	case EV_CLOSE: {
		vtp_cap_loss loss;

		/* a last retry of a failing log; what it could not write counts */
		rc = vtp_capw_close_loss(t->cap, &loss);
		t->cap = NULL;
		atomic_store_explicit(&t->a_cap_lost_packets, loss.records, memory_order_relaxed);
		atomic_store_explicit(&t->a_cap_lost_ms, loss.lost_ns / 1000000ULL,
				      memory_order_relaxed);
		atomic_store_explicit(&t->a_cap_last_errno, loss.last_errno, memory_order_relaxed);
		if (rc == 0 && atomic_load_explicit(&t->a_state, memory_order_relaxed) == TRACK_FAILED) {
			atomic_store_explicit(&t->a_cap_errno, 0, memory_order_relaxed);
			atomic_store_explicit(&t->a_state, TRACK_ENDED, memory_order_relaxed);
		}
		if (rc)
			VTP_ERROR("track %s of recording %s: packet log closed with an error: %s",
				  t->id, t->recording_id, vtp_strerror(rc));
		if (e->done)
			vtp__completion_done(e->done);
		break;
	}
	}
}

static void sync_all(vtp_ingest *ing)
{
	track **batch;
	int n = 0, cap;

	pthread_mutex_lock(&ing->reg_mu);
	cap = ing->ntracks;
	batch = vtp_calloc((size_t)(cap ? cap : 1), sizeof(*batch));
	for (track *t = ing->tracks; t && n < cap; t = t->reg_next) {
		if (t->cap) {
			vtp__track_ref(t);
			batch[n++] = t;
		}
	}
	pthread_mutex_unlock(&ing->reg_mu);
	/* Only the keeper closes logs, so each t->cap stays valid here. With
	 * many logs open, one syncfs per file system does what one fdatasync
	 * per log would, with one journal commit instead of hundreds. */
	bool covered = false;

	if (n >= SYNCFS_MIN) {
		uint64_t done_dev[8];
		int ndone = 0;

		covered = true;
		for (int i = 0; i < n && covered; i++) {
			uint64_t dev = vtp_capw_device(batch[i]->cap);
			bool seen = false;

			for (int k = 0; k < ndone; k++)
				seen = seen || done_dev[k] == dev;
			if (seen)
				continue;
			if (ndone == 8) { /* an odd layout: per-log syncs */
				covered = false;
				break;
			}
			done_dev[ndone++] = dev;
			if (vtp_capw_syncfs(batch[i]->cap) != 0)
				VTP_WARN("syncfs of the packet logs' file system failed: %s",
					 strerror(errno));
		}
	}
	for (int i = 0; i < n; i++) {
		if (!covered && vtp_capw_sync(batch[i]->cap) != 0)
			VTP_WARN("track %s: fdatasync failed: %s", batch[i]->id, strerror(errno));
		/* segments the loop closed since: synced, closed, announced */
		if (vtp_capw_commit(batch[i]->cap) != 0)
			VTP_WARN("track %s: a closed packet log segment did not sync: %s",
				 batch[i]->id, strerror(errno));
		vtp__track_unref(batch[i]);
	}
	vtp_free(batch);
}

static void *keeper_main(void *arg)
{
	vtp_ingest *ing = arg;
	int64_t next_sync = vtp_now_ms() + SYNC_INTERVAL_MS;

	pthread_setname_np(pthread_self(), "vtp-keeper");
	for (;;) {
		struct timespec until;
		ev *e, *next;
		bool quit;

		pthread_mutex_lock(&ing->ev_mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!ing->ev_head && !ing->keeper_quit && vtp_now_ms() < next_sync) {
			if (pthread_cond_timedwait(&ing->ev_cv, &ing->ev_mu, &until) != 0)
				break;
		}
		e = ing->ev_head;
		ing->ev_head = NULL;
		ing->ev_tail = &ing->ev_head;
		quit = ing->keeper_quit;
		pthread_mutex_unlock(&ing->ev_mu);
		for (; e; e = next) {
			next = e->next;
			on_event(ing, e);
			vtp__track_unref(e->t);
			vtp_free(e);
		}
		if (vtp_now_ms() >= next_sync) {
			sync_all(ing);
			next_sync = vtp_now_ms() + SYNC_INTERVAL_MS;
		}
		if (quit)
			break;
	}
	return NULL;
}

/* ---- registration ------------------------------------------------------------ */

const char *vtp__source_name(const char *name, bool video)
{
	static const char *const video_sources[] = {"camera", "screen"};
	static const char *const audio_sources[] = {"microphone", "screen_audio"};
	const char *const *list = video ? video_sources : audio_sources;

	if (!name)
		return list[0];
	for (int i = 0; i < 2; i++) {
		if (strcmp(name, list[i]) == 0)
			return list[i];
	}
	return NULL;
}

static const char *const kinds[] = {"audio", "video", NULL};
static const char *const codecs[] = {"opus", "vp8", "h264", NULL};
/* what a track shows or sounds (README "Sources"): the composer's layouts
 * put a screen share in the main area */
static const char *const sources[] = {"camera", "microphone", "screen", "screen_audio", NULL};

static const vtp_json_param track_params[] = {
	{"peerId", VTP_JV_STRING, true, 1, 255, NULL, true},
	{"fullName", VTP_JV_STRING, true, 1, 255, NULL, true},
	{"userId", VTP_JV_STRING, false, 1, 64, NULL, true},
	{"role", VTP_JV_STRING, false, 1, 50, NULL, true},
	{"kind", VTP_JV_STRING, true, 0, -1, kinds, false},
	{"codec", VTP_JV_STRING, true, 0, -1, codecs, false},
	{"payloadType", VTP_JV_INT, true, 0, 127, NULL, false},
	{"clockRate", VTP_JV_INT, false, 1, 1000000, NULL, false},
	{"ssrc", VTP_JV_INT, false, 0, 4294967295LL, NULL, false},
	{"source", VTP_JV_STRING, false, 0, -1, sources, false},
};

#define SRTP_SUITE "AES_CM_128_HMAC_SHA1_80"

/* "srtp": true (one key, ours, for both directions: ffmpeg, GStreamer,
 * Janus) or {"suite", "keyBase64"} with the sender's own key (mediasoup's
 * PlainTransport srtpParameters); then ours goes back for the sender to
 * decrypt our feedback. Absent or false: plain RTP. The keys are never
 * logged and never stored. */
static int parse_srtp(json_t *body, track *t, uint8_t our_key[VTP_SRTP_MASTER_LEN],
		      bool *want, vtp_fail *fail)
{
	json_t *v = json_object_get(body, "srtp");
	uint8_t peer_key[VTP_SRTP_MASTER_LEN + 3]; /* EVP_DecodeBlock writes whole triples */
	const char *suite, *b64;
	int rc = 0;

	*want = false;
	if (!v || json_is_false(v) || json_is_null(v))
		goto out;
	if (!json_is_true(v) && !json_is_object(v)) {
		rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "srtp",
				  "srtp must be true, false or {\"suite\",\"keyBase64\"}");
		goto out;
	}
	vtp_random_bytes(our_key, VTP_SRTP_MASTER_LEN);
	memcpy(peer_key, our_key, VTP_SRTP_MASTER_LEN);
	if (json_is_object(v)) {
		suite = json_string_value(json_object_get(v, "suite"));
		b64 = json_string_value(json_object_get(v, "keyBase64"));
		if (suite && strcmp(suite, SRTP_SUITE) != 0) {
			rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "srtp.suite",
					  "the only SRTP suite is " SRTP_SUITE);
			goto out;
		}
		/* 30 bytes are 40 base64 characters, without padding */
		if (!b64 || strlen(b64) != 40 || strchr(b64, '=') ||
		    EVP_DecodeBlock(peer_key, (const unsigned char *)b64, 40) != VTP_SRTP_MASTER_LEN) {
			rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "srtp.keyBase64",
					  "keyBase64 must be the base64 of 30 bytes "
					  "(16 of master key, 14 of salt)");
			goto out;
		}
	}
	t->srtp = vtp_srtp_new_keys(peer_key, our_key);
	if (!t->srtp) {
		rc = vtp_fail_set(fail, VTP_EINTERNAL, "internal_error", NULL,
				  "cannot set up SRTP for the track");
		goto out;
	}
	*want = true;
out:
	OPENSSL_cleanse(peer_key, sizeof(peer_key));
	return rc;
}

/* "feedback": {"ip", "port"}: where an SFU reads the feedback for this
 * track (Janus: the rtp_forward's rtcp_port socket, mediasoup without
 * rtcp-mux: the PlainTransport's rtcpTuple). A literal IPv4 address (the
 * media sockets are IPv4; no names, so nothing is resolved), unicast, port
 * 1..65535. The caller is one allowed to add tracks to the recording, and
 * the audit log keeps the address; the loop sends there only while the
 * track receives media, and only small paced packets (see loop.c). */
static int parse_feedback(json_t *body, track *t, vtp_fail *fail)
{
	json_t *v = json_object_get(body, "feedback");
	json_t *port;
	const char *ip;
	struct sockaddr_in *sa = (struct sockaddr_in *)(void *)&t->fb_fixed_addr;
	struct in6_addr ip6;
	uint32_t host;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "feedback",
				    "feedback must be {\"ip\", \"port\"}");
	ip = json_string_value(json_object_get(v, "ip"));
	port = json_object_get(v, "port");
	if (ip && inet_pton(AF_INET6, ip, &ip6) == 1)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "feedback.ip",
				    "feedback.ip must be an IPv4 address: this server's media "
				    "sockets are IPv4");
	memset(sa, 0, sizeof(*sa));
	if (!ip || strlen(ip) > 15 || inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "feedback.ip",
				    "feedback.ip must be an IPv4 address such as 192.0.2.10");
	host = ntohl(sa->sin_addr.s_addr);
	if ((host >> 24) == 0 || IN_MULTICAST(host) || host >= 0xf0000000u)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "feedback.ip",
				    "feedback.ip must be a unicast address (not 0.0.0.0/8, "
				    "multicast or broadcast)");
	if (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "feedback.port",
				    "feedback.port must be an integer 1..65535");
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)json_integer_value(port));
	t->fb_fixed_len = sizeof(*sa);
	t->fb_fixed = true;
	return 0;
}

static int parse_track(json_t *body, track *t, vtp_fail *fail)
{
	const char *kind, *codec, *user_id;
	uint32_t want_rate;
	int rc;

	rc = vtp_json_validate(body, track_params, sizeof(track_params) / sizeof(track_params[0]),
			       fail);
	if (rc)
		return rc;
	kind = vtp_json_str(body, "kind");
	codec = vtp_json_str(body, "codec");
	t->video = strcmp(kind, "video") == 0;
	if (t->video == (strcmp(codec, "opus") == 0))
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "codec",
				    "codec %s is not a%s codec (audio: opus; video: vp8, h264)",
				    codec, t->video ? " video" : "n audio");
	snprintf(t->codec, sizeof(t->codec), "%s", codec);
	t->source = vtp__source_name(vtp_json_str(body, "source"), t->video);
	if (!t->source)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "source",
				    "source %s is not a%s source (video: camera, screen; "
				    "audio: microphone, screen_audio)",
				    vtp_json_str(body, "source"), t->video ? " video" : "n audio");
	t->pt = (int)vtp_json_int(body, "payloadType", -1);
	/* RFC 5761 §4: with RTP and RTCP on one port, these payload types
	 * would be read as RTCP packet types 192..223 */
	if (t->pt >= 64 && t->pt <= 95)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "payloadType",
				    "payloadType %d collides with RTCP on a muxed port (RFC 5761); "
				    "use 0..63 or 96..127", t->pt);
	want_rate = t->video ? 90000 : 48000;
	t->clock_rate = (uint32_t)vtp_json_int(body, "clockRate", want_rate);
	if (t->clock_rate != want_rate)
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "clockRate",
				    "clockRate of %s RTP is %u Hz", codec, want_rate);
	if (json_is_integer(json_object_get(body, "ssrc"))) {
		t->ssrc_fixed = true;
		t->ssrc_expected = (uint32_t)vtp_json_int(body, "ssrc", 0);
	}
	user_id = vtp_json_str(body, "userId");
	if (user_id) {
		char uid[VTP_UUID_BUFLEN];

		if (!vtp_uuid_parse(user_id, uid))
			return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "userId",
					    "userId must be a user's UUID");
		t->user_id = vtp_strdup(uid);
	}
	t->peer_id = vtp_strdup(vtp_json_str(body, "peerId"));
	t->full_name = vtp_strdup(vtp_json_str(body, "fullName"));
	if (vtp_json_str(body, "role"))
		t->role = vtp_strdup(vtp_json_str(body, "role"));
	return 0;
}

/* Binds a UDP socket on a free port of the range (reg_mu held), probing
 * from a random one: a port cannot be guessed from the previous
 * registration, so a stray sender has to find it first. Returns the
 * socket, or -1 with errno EADDRINUSE when every port is taken, or the
 * errno of socket() (EMFILE: the descriptor limit). */
int vtp__bind_port(vtp_ingest *ing, int *port_out)
{
	int span = ing->cfg.port_max - ing->cfg.port_min + 1;
	uint32_t start;

	vtp_random_bytes(&start, sizeof(start));
	start %= (uint32_t)span;
	for (int i = 0; i < span; i++) {
		int idx = (int)((start + (uint32_t)i) % (uint32_t)span);
		int port = ing->cfg.port_min + idx;
		struct sockaddr_in sa;
		int fd, one = 1, buf = ing->cfg.rcvbuf;

		if (ing->port_used[idx])
			continue;
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1; /* errno from socket() */
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ing->bind_ip, &sa.sin_addr);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(fd);
			continue; /* taken by another program */
		}
		/* A keyframe is a burst of dozens of packets: the default buffer
		 * overflows on it. FORCE passes rmem_max when privileged. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) != 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
		ing->port_used[idx] = 1;
		*port_out = port;
		return fd;
	}
	errno = EADDRINUSE;
	return -1;
}

char *vtp__track_meta(const track *t)
{
	char created[VTP_TIME_BUFLEN];
	json_t *m;
	char *s;

	vtp_time_format(t->created_ms, created);
	m = json_pack("{si ss ss ss ss ss ss ss si si ss}", "version", 1, "trackId", t->id,
		      "recordingId", t->recording_id, "peerId", t->peer_id,
		      "fullName", t->full_name, "kind", t->video ? "video" : "audio",
		      "source", t->source, "codec", t->codec, "payloadType", t->pt, "clockRate", (int)t->clock_rate,
		      "createdAt", created);
	if (t->user_id)
		json_object_set_new(m, "userId", json_string(t->user_id));
	if (t->role)
		json_object_set_new(m, "role", json_string(t->role));
	if (t->ssrc_fixed)
		json_object_set_new(m, "ssrc", json_integer(t->ssrc_expected));
	if (t->whip) /* how it came in; "source" is what it shows */
		json_object_set_new(m, "ingest", json_string("whip"));
	s = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return s;
}

/* A segment of a packet log is closed, synced and will never change: the
 * spool commits it to storage (spool.c). Keeper thread. */
static void segment_closed(void *ctx, const char *path, uint32_t segment, bool last)
{
	vtp_ingest *ing = ctx;

	VTP_DEBUG("packet log segment %u closed%s: %s", (unsigned)segment,
		  last ? " (the track's last)" : "", path);
	vtp__spool_add(ing->spool, path, segment, last);
}

int vtp__track_open_log(vtp_ingest *ing, const vtp_recording *rec, track *t, char *path,
			size_t pathlen, vtp_fail *fail)
{
	char dir[4096];
	vtp_capw_opts opts;
	char *meta;
	int rc, err_no = 0;

	if (vtp_recordings_tracks_dir(ing->cfg.recordings, rec, dir, sizeof(dir)) != 0) {
		int e = errno;

		VTP_ERROR("recording %s: cannot create its tracks folder: %s", rec->id, strerror(e));
		if (e == ENOSPC || e == EDQUOT)
			return vtp_fail_set(fail, VTP_EUNAVAIL, "disk_full", NULL,
					    "the recordings disk is full; try again when space is freed");
		return vtp_fail_set(fail, VTP_EIO, "storage_error", NULL,
				    "cannot create the recording's tracks folder");
	}
	snprintf(path, pathlen, "%s/%s.vtpcap", dir, t->id);
	meta = vtp__track_meta(t);
	opts = (vtp_capw_opts){
		.buffer_bytes = CAPTURE_BUFFER,
		.segment_ns = (uint64_t)ing->cfg.segment_seconds * 1000000000ULL,
		.on_segment = segment_closed,
		.ctx = ing,
	};
	rc = vtp_capw_open_opts(path, meta, &opts, &t->cap, &err_no);
	free(meta);
	if (rc == 0) {
		int rrc;

		/* the database knows the track before its first segment closes: a
		 * job waits for it, and a restart finds it (spool.c) */
		if (ing->spool &&
		    (rrc = vtp_store_track_register(vtp_recordings_store(ing->cfg.recordings),
						    rec->id, t->id,
						    ing->node_id[0] ? ing->node_id : "local")) != 0)
			VTP_WARN("recording %s: track %s not registered for storage (%s); its "
				 "segments register as they commit", rec->id, t->id,
				 vtp_strerror(rrc));
		return 0;
	}
	VTP_ERROR("recording %s: cannot create packet log: %s", rec->id, strerror(err_no));
	if (err_no == ENOSPC || err_no == EDQUOT)
		return vtp_fail_set(fail, VTP_EUNAVAIL, "disk_full", NULL,
				    "the recordings disk is full; try again when space is freed");
	if (err_no == EMFILE || err_no == ENFILE)
		return vtp_fail_set(fail, VTP_EUNAVAIL, "no_capacity", NULL,
				    "this server cannot open more files (%s); try again later",
				    strerror(err_no));
	return vtp_fail_set(fail, VTP_EIO, "storage_error", NULL,
			    "cannot create the track's capture file");
}

/* The audit entry of a registration: a registered feedback address is
 * where this server will send packets, so it is kept with who asked. */
static json_t *track_audit(const track *t, bool srtp)
{
	json_t *a = json_pack("{ss ss ss ss si sb}", "trackId", t->id, "peerId", t->peer_id, "kind",
			      t->video ? "video" : "audio", "source", t->source, "port", t->port,
			      "srtp", srtp);

	if (t->fb_fixed) {
		char host[64] = "?";
		int port = 0;

		vtp__addr_text(&t->fb_fixed_addr, host, sizeof(host), &port);
		json_object_set_new(a, "feedback", json_pack("{ss si}", "ip", host, "port", port));
	}
	return a;
}

int vtp_ingest_add_track(vtp_ingest *ing, const vtp_actor *who, const char *recording_id,
			 json_t *body, vtp_buf *info_json, vtp_fail *fail)
{
	char path[4200];
	vtp_recording rec;
	track *t;
	int rc;
	vtp_jw w;
	uint8_t our_key[VTP_SRTP_MASTER_LEN];
	char key_b64[44];
	bool want_srtp = false;

	rc = vtp_recordings_for_tracks(ing->cfg.recordings, who, recording_id, &rec, fail);
	if (rc)
		return rc;
	t = vtp_calloc(1, sizeof(*t));
	t->src_kind = SRC_TRACK;
	atomic_init(&t->refs, 1); /* the registry's */
	t->fd = -1;
	rc = parse_track(body, t, fail);
	if (rc)
		goto out;
	/* a service account (or anyone) credits tracks to real users only */
	if (t->user_id) {
		rc = vtp_recordings_user_exists(ing->cfg.recordings, t->user_id, fail);
		if (rc)
			goto out;
	}
	rc = parse_feedback(body, t, fail);
	if (rc)
		goto out;
	rc = parse_srtp(body, t, our_key, &want_srtp, fail);
	if (rc)
		goto out;
	vtp_uuid_v4(t->id);
	memcpy(t->recording_id, rec.id, sizeof(t->recording_id));
	t->created_ms = vtp_now_ms();
	/* Serialised against end_recording: either the stop sees this track,
	 * or this sees the stop. */
	pthread_mutex_lock(&ing->ctl_mu);
	vtp_recording_clear(&rec);
	rc = vtp_recordings_for_tracks(ing->cfg.recordings, who, recording_id, &rec, fail);
	if (rc) {
		pthread_mutex_unlock(&ing->ctl_mu);
		goto out;
	}
	rc = vtp__track_open_log(ing, &rec, t, path, sizeof(path), fail);
	if (rc) {
		pthread_mutex_unlock(&ing->ctl_mu);
		goto out;
	}
	pthread_mutex_lock(&ing->reg_mu);
	t->fd = vtp__bind_port(ing, &t->port);
	if (t->fd < 0) {
		int e = errno;

		pthread_mutex_unlock(&ing->reg_mu);
		pthread_mutex_unlock(&ing->ctl_mu);
		vtp_capw_close(t->cap);
		t->cap = NULL;
		unlink(path);
		if (e == EADDRINUSE) {
			VTP_WARN("recording %s: no free UDP port in %d..%d for a new track", rec.id,
				 ing->cfg.port_min, ing->cfg.port_max);
			rc = vtp_fail_set(fail, VTP_EUNAVAIL, "no_ports", NULL,
					  "no free media port on this server; try again later");
		} else {
			VTP_ERROR("recording %s: cannot open a media socket: %s", rec.id, strerror(e));
			rc = vtp_fail_set(fail, VTP_EUNAVAIL, "no_capacity", NULL,
					  "this server cannot open more media sockets (%s); try again later",
					  strerror(e));
		}
		goto out;
	}
	t->reg_next = ing->tracks;
	ing->tracks = t;
	t->in_registry = true;
	ing->ntracks++;
	pthread_mutex_unlock(&ing->reg_mu);
	vtp__loop_post(ing, CMD_ADD, t, NULL);
	pthread_mutex_unlock(&ing->ctl_mu);

	vtp_recordings_audit_track(ing->cfg.recordings, who, rec.id, "track_add",
				   track_audit(t, want_srtp));
	VTP_INFO("recording %s: track %s (%s %s, pt %d) of peer registered on port %d", rec.id,
		 t->id, t->video ? "video" : "audio", t->codec, t->pt, t->port);
	vtp_jw_init(&w, info_json);
	vtp_jw_object_begin(&w);
	vtp_jw_key(&w, "trackId");
	vtp_jw_string(&w, t->id);
	vtp_jw_key(&w, "ip");
	vtp_jw_string(&w, ing->public_ip);
	vtp_jw_key(&w, "port");
	vtp_jw_int(&w, t->port);
	vtp_jw_key(&w, "rtcpMux");
	vtp_jw_bool(&w, true);
	if (want_srtp) {
		EVP_EncodeBlock((unsigned char *)key_b64, our_key, VTP_SRTP_MASTER_LEN);
		vtp_jw_key(&w, "srtp");
		vtp_jw_object_begin(&w);
		vtp_jw_key(&w, "suite");
		vtp_jw_string(&w, SRTP_SUITE);
		vtp_jw_key(&w, "keyBase64");
		vtp_jw_string(&w, key_b64);
		vtp_jw_object_end(&w);
		OPENSSL_cleanse(key_b64, sizeof(key_b64));
	}
	vtp_jw_object_end(&w);
	vtp_recording_clear(&rec);
	OPENSSL_cleanse(our_key, sizeof(our_key));
	return 0;
out:
	vtp_recording_clear(&rec);
	vtp__track_unref(t);
	OPENSSL_cleanse(our_key, sizeof(our_key));
	return rc;
}

/* Removes tracks from the registry and frees their ports (reg_mu held). */
static void unregister(vtp_ingest *ing, track *t)
{
	for (track **pp = &ing->tracks; *pp; pp = &(*pp)->reg_next) {
		if (*pp == t) {
			*pp = t->reg_next;
			t->in_registry = false;
			ing->ntracks--;
			if (t->port)
				ing->port_used[t->port - ing->cfg.port_min] = 0;
			return;
		}
	}
}

/* The tracks' statistics as a JSON array (vtp_malloc'd): first a, then b,
 * each in registration order (the lists are newest first). */
static char *tracks_json(track **a, int na, track **b, int nb)
{
	vtp_buf buf;
	vtp_jw w;

	vtp_buf_init(&buf, 1 << 24);
	vtp_jw_init(&w, &buf);
	vtp_jw_array_begin(&w);
	for (int i = na - 1; i >= 0; i--)
		write_track(&w, a[i]);
	for (int i = nb - 1; i >= 0; i--)
		write_track(&w, b[i]);
	vtp_jw_array_end(&w);
	return vtp_buf_steal(&buf, NULL);
}

/* Ends the given tracks and waits until each log is synced and closed;
 * drops the caller's references. With keep, the tracks go on the ended
 * list, so that the recording's statistics still show them until it
 * stops. Returns their statistics as a JSON array (NULL when n == 0). */
char *vtp__end_tracks(vtp_ingest *ing, track **ts, int n, bool keep)
{
	completion done;
	char *stats;

	if (n == 0)
		return NULL;
	vtp__completion_init(&done, n);
	for (int i = 0; i < n; i++)
		vtp__loop_post(ing, CMD_END, ts[i], &done);
	vtp__completion_wait(&done);
	vtp__completion_destroy(&done);
	stats = tracks_json(ts, n, NULL, 0);
	pthread_mutex_lock(&ing->reg_mu);
	for (int i = 0; i < n; i++) {
		unregister(ing, ts[i]);
		if (keep) { /* the registry's reference moves to the ended list */
			ts[i]->reg_next = ing->ended;
			ing->ended = ts[i];
		}
	}
	pthread_mutex_unlock(&ing->reg_mu);
	for (int i = 0; i < n; i++) {
		vtp__track_unref(ts[i]); /* the collector's */
		if (!keep)
			vtp__track_unref(ts[i]); /* the registry's */
	}
	return stats;
}

/* References to the ended tracks of a recording; with take, they leave
 * the ended list (the list's reference becomes the caller's second one). */
static track **collect_ended(vtp_ingest *ing, const char *recording_id, bool take, int *n)
{
	track **out;
	int k = 0, cap = 0;

	pthread_mutex_lock(&ing->reg_mu);
	for (track *t = ing->ended; t; t = t->reg_next)
		cap++;
	out = vtp_calloc((size_t)cap + 1, sizeof(*out));
	for (track **pp = &ing->ended; *pp;) {
		track *t = *pp;

		if (strcmp(t->recording_id, recording_id) != 0) {
			pp = &t->reg_next;
			continue;
		}
		vtp__track_ref(t);
		out[k++] = t;
		if (take)
			*pp = t->reg_next;
		else
			pp = &t->reg_next;
	}
	pthread_mutex_unlock(&ing->reg_mu);
	*n = k;
	return out;
}

static void unref_all(track **ts, int n, int times)
{
	for (int i = 0; i < n; i++)
		for (int k = 0; k < times; k++)
			vtp__track_unref(ts[i]);
	vtp_free(ts);
}

/* References to the tracks of one recording (all when id is NULL). */
static track **collect(vtp_ingest *ing, const char *recording_id, const char *track_id, int *n)
{
	track **out;
	int k = 0;

	pthread_mutex_lock(&ing->reg_mu);
	out = vtp_calloc((size_t)ing->ntracks + 1, sizeof(*out));
	for (track *t = ing->tracks; t; t = t->reg_next) {
		if (recording_id && strcmp(t->recording_id, recording_id) != 0)
			continue;
		if (track_id && strcmp(t->id, track_id) != 0)
			continue;
		vtp__track_ref(t);
		out[k++] = t;
	}
	pthread_mutex_unlock(&ing->reg_mu);
	*n = k;
	return out;
}

track **vtp__collect_whip(vtp_ingest *ing, whip_session *s, int *n)
{
	track **out;
	int k = 0;

	pthread_mutex_lock(&ing->reg_mu);
	out = vtp_calloc((size_t)ing->ntracks + 1, sizeof(*out));
	for (track *t = ing->tracks; t; t = t->reg_next) {
		if (t->whip != s)
			continue;
		vtp__track_ref(t);
		out[k++] = t;
	}
	pthread_mutex_unlock(&ing->reg_mu);
	*n = k;
	return out;
}

int vtp_ingest_end_track(vtp_ingest *ing, const vtp_actor *who, const char *recording_id,
			 const char *track_id, vtp_fail *fail)
{
	char tid[VTP_UUID_BUFLEN];
	vtp_recording rec;
	track **ts;
	char *stats;
	int n, rc;

	rc = vtp_recordings_for_tracks(ing->cfg.recordings, who, recording_id, &rec, fail);
	if (rc) /* a stopped recording's tracks ended with it: 409 */
		return rc;
	if (!vtp_uuid_parse(track_id, tid)) {
		vtp_recording_clear(&rec);
		return vtp_fail_set(fail, VTP_ENOTFOUND, "not_found", NULL, "no such track");
	}
	pthread_mutex_lock(&ing->ctl_mu);
	ts = collect(ing, rec.id, tid, &n);
	stats = vtp__end_tracks(ing, ts, n, true);
	pthread_mutex_unlock(&ing->ctl_mu);
	vtp_free(ts);
	if (n == 0) {
		vtp_recording_clear(&rec);
		return vtp_fail_set(fail, VTP_ENOTFOUND, "not_found", NULL, "no such track");
	}
	vtp_recordings_audit_track(ing->cfg.recordings, who, rec.id, "track_end",
				   json_pack("{ss}", "trackId", tid));
	VTP_INFO("recording %s: track %s ended: %s", rec.id, tid, stats);
	vtp_free(stats);
	vtp_recording_clear(&rec);
	return 0;
}

/* ---- media hooks ------------------------------------------------------------- */

static char *hook_end_recording(void *ctx, const char *recording_id)
{
	vtp_ingest *ing = ctx;
	track **ts, **ended;
	char *stats;
	int n, ne;

	pthread_mutex_lock(&ing->ctl_mu);
	ts = collect(ing, recording_id, NULL, &n);
	vtp_free(vtp__end_tracks(ing, ts, n, true));
	pthread_mutex_unlock(&ing->ctl_mu);
	vtp_free(ts);
	/* every track of the recording, those that ended before included */
	ended = collect_ended(ing, recording_id, true, &ne);
	stats = ne ? tracks_json(ended, ne, NULL, 0) : NULL;
	unref_all(ended, ne, 2);
	return stats;
}

/* A recording just started: WHIP sessions in its room start capturing. */
static void hook_recording_started(void *ctx, const char *recording_id, const char *room_id)
{
	vtp_ingest *ing = ctx;

	(void)recording_id;
	(void)room_id;
	vtp__whip_kick(ing);
}

static char *hook_live_tracks(void *ctx, const char *recording_id)
{
	vtp_ingest *ing = ctx;
	track **ts, **ended;
	char *stats = NULL;
	int n, ne;

	ended = collect_ended(ing, recording_id, false, &ne);
	ts = collect(ing, recording_id, NULL, &n);
	if (n + ne)
		stats = tracks_json(ended, ne, ts, n);
	unref_all(ended, ne, 1);
	unref_all(ts, n, 1);
	return stats;
}

/* Recordings stopped on another node: the stop there ended only that
 * node's tracks. Each pass of the WHIP thread (every two seconds) looks
 * up the recordings this node still has tracks of, every one of them: a
 * node may hold tracks of hundreds of classes, and one it never looked at
 * would keep its tracks open and the job waiting VTP_JOB_SEGMENT_WAIT.
 * One seen ended on two passes in a row (the stopping node ends its own
 * at once) gets this node's tracks ended, their last segments committed
 * and their final statistics merged into the recording. */
static int compare_recording_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

void vtp__end_stopped_elsewhere(vtp_ingest *ing)
{
	char (*ids)[VTP_UUID_BUFLEN] = NULL, (*now_seen)[VTP_UUID_BUFLEN] = NULL;
	int nids = 0, nall = 0, nseen = 0;
	vtp_store *store = vtp_recordings_store(ing->cfg.recordings);

	pthread_mutex_lock(&ing->reg_mu);
	for (int pass = 0; pass < 2; pass++)
		for (track *t = pass ? ing->ended : ing->tracks; t; t = t->reg_next)
			nall++;
	ids = vtp_calloc((size_t)nall + 1, sizeof(*ids));
	for (int pass = 0; pass < 2; pass++)
		for (track *t = pass ? ing->ended : ing->tracks; t; t = t->reg_next)
			memcpy(ids[nids++], t->recording_id, VTP_UUID_BUFLEN);
	pthread_mutex_unlock(&ing->reg_mu);
	/* one look per recording however many tracks it has here; sorted, so
	 * that the next pass finds what this one saw by bisection */
	qsort(ids, (size_t)nids, sizeof(*ids), compare_recording_ids);
	nall = nids;
	nids = 0;
	for (int i = 0; i < nall; i++)
		if (nids == 0 || strcmp(ids[nids - 1], ids[i]) != 0)
			memmove(ids[nids++], ids[i], VTP_UUID_BUFLEN);
	now_seen = vtp_calloc((size_t)nids + 1, sizeof(*now_seen));
	for (int i = 0; i < nids; i++) {
		vtp_recording rec;
		bool ended, before;
		char *stats;
		int rc;

		memset(&rec, 0, sizeof(rec));
		rc = vtp_store_recording_get(store, ids[i], &rec);
		ended = rc == VTP_ENOTFOUND || (rc == 0 && !vtp_recording_is_active(&rec));
		vtp_recording_clear(&rec);
		if (!ended)
			continue;
		before = ing->stopped_seen &&
			 bsearch(ids[i], ing->stopped_seen, (size_t)ing->nstopped_seen,
				 sizeof(*ing->stopped_seen), compare_recording_ids) != NULL;
		if (!before) {
			memcpy(now_seen[nseen++], ids[i], VTP_UUID_BUFLEN);
			continue;
		}
		stats = hook_end_recording(ing, ids[i]);
		VTP_INFO("recording %s ended on another node: this node's tracks of it ended",
			 ids[i]);
		if (stats && rc == 0 &&
		    (rc = vtp_store_recording_merge_tracks(store, ids[i], stats)) != 0)
			VTP_ERROR("recording %s: statistics of this node's tracks not saved: %s", ids[i],
				  vtp_strerror(rc));
		vtp_free(stats);
	}
	vtp_free(ing->stopped_seen);
	ing->stopped_seen = now_seen; /* in order: a subsequence of the sorted ids */
	ing->nstopped_seen = nseen;
	vtp_free(ids);
}

/* ---- metrics ----------------------------------------------------------------- */

void vtp_ingest_metrics(vtp_ingest *ing, vtp_buf *out)
{
	track **ts;
	int n;
	vtp_spool_state sp;

	vtp__spool_state(ing->spool, &sp);
	vtp_buf_appendf(out,
			"# HELP vtp_spool_pending Closed track segments waiting to be committed to "
			"storage.\n# TYPE vtp_spool_pending gauge\nvtp_spool_pending %d\n"
			"# HELP vtp_spool_oldest_seconds How long the oldest waiting segment has "
			"waited.\n# TYPE vtp_spool_oldest_seconds gauge\n"
			"vtp_spool_oldest_seconds %.3f\n"
			"# HELP vtp_spool_committed_total Track segments committed to storage.\n"
			"# TYPE vtp_spool_committed_total counter\nvtp_spool_committed_total %llu\n"
			"# HELP vtp_spool_failures_total Failed attempts to commit a segment.\n"
			"# TYPE vtp_spool_failures_total counter\nvtp_spool_failures_total %llu\n"
			"# HELP vtp_spool_uploaded_bytes_total Segment bytes uploaded (s3 storage).\n"
			"# TYPE vtp_spool_uploaded_bytes_total counter\n"
			"vtp_spool_uploaded_bytes_total %llu\n",
			sp.pending, (double)sp.oldest_ms / 1000.0, (unsigned long long)sp.committed,
			(unsigned long long)sp.failures, (unsigned long long)sp.bytes);

	vtp_buf_appendf(out,
			"# HELP vtp_ingest_datagrams_total UDP datagrams received on media ports.\n"
			"# TYPE vtp_ingest_datagrams_total counter\n"
			"vtp_ingest_datagrams_total %llu\n"
			"# HELP vtp_ingest_bytes_total Bytes received on media ports.\n"
			"# TYPE vtp_ingest_bytes_total counter\n"
			"vtp_ingest_bytes_total %llu\n"
			"# HELP vtp_ingest_feedback_sent_total RTCP packets sent (RR, PLI, FIR).\n"
			"# TYPE vtp_ingest_feedback_sent_total counter\n"
			"vtp_ingest_feedback_sent_total %llu\n"
			"# HELP vtp_ingest_relatched_total Plain-RTP tracks that followed a new sender "
			"after the latched one went silent.\n"
			"# TYPE vtp_ingest_relatched_total counter\n"
			"vtp_ingest_relatched_total %llu\n"
			"# HELP vtp_ingest_ssrc_changes_total New SSRCs taken after a relatch.\n"
			"# TYPE vtp_ingest_ssrc_changes_total counter\n"
			"vtp_ingest_ssrc_changes_total %llu\n"
			"# HELP vtp_ingest_keyframe_interval_requests_total PLIs sent because a video "
			"sender sent no keyframe for VTP_KEYFRAME_INTERVAL.\n"
			"# TYPE vtp_ingest_keyframe_interval_requests_total counter\n"
			"vtp_ingest_keyframe_interval_requests_total %llu\n"
			"# HELP vtp_ingest_dropped_total Datagrams dropped, by reason.\n"
			"# TYPE vtp_ingest_dropped_total counter\n",
			(unsigned long long)atomic_load(&ing->rx_datagrams),
			(unsigned long long)atomic_load(&ing->rx_bytes),
			(unsigned long long)atomic_load(&ing->feedback_sent),
			(unsigned long long)atomic_load(&ing->relatched),
			(unsigned long long)atomic_load(&ing->ssrc_changes),
			(unsigned long long)atomic_load(&ing->keyframe_interval_requests));
	for (int i = 0; i < DROP_COUNT; i++)
		vtp_buf_appendf(out, "vtp_ingest_dropped_total{reason=\"%s\"} %llu\n",
				vtp__drop_names[i], (unsigned long long)atomic_load(&ing->drops[i]));
	vtp__whip_metrics(ing, out);
	ts = collect(ing, NULL, NULL, &n);
	vtp_buf_appendf(out,
			"# HELP vtp_ingest_tracks Tracks registered on this node.\n"
			"# TYPE vtp_ingest_tracks gauge\n"
			"vtp_ingest_tracks %d\n"
			"# HELP vtp_track_packets_total RTP packets captured per track.\n"
			"# TYPE vtp_track_packets_total counter\n"
			"# HELP vtp_track_bytes_total RTP payload bytes captured per track.\n"
			"# TYPE vtp_track_bytes_total counter\n"
			"# HELP vtp_track_lost_total RTP packets lost per track.\n"
			"# TYPE vtp_track_lost_total counter\n"
			"# HELP vtp_track_jitter_seconds Interarrival jitter per track.\n"
			"# TYPE vtp_track_jitter_seconds gauge\n"
			"# HELP vtp_track_bitrate_bits Receive bitrate per track.\n"
			"# TYPE vtp_track_bitrate_bits gauge\n"
			"# HELP vtp_track_reordered_total RTP packets that arrived late but new.\n"
			"# TYPE vtp_track_reordered_total counter\n"
			"# HELP vtp_track_duplicates_total RTP packets received twice (dropped).\n"
			"# TYPE vtp_track_duplicates_total counter\n",
			n);
	for (int i = 0; i < n; i++) {
		track *t = ts[i];
		char labels[160];

		snprintf(labels, sizeof(labels), "recording=\"%s\",track=\"%s\",kind=\"%s\"",
			 t->recording_id, t->id, t->video ? "video" : "audio");
		vtp_buf_appendf(out,
				"vtp_track_packets_total{%s} %llu\n"
				"vtp_track_bytes_total{%s} %llu\n"
				"vtp_track_lost_total{%s} %llu\n"
				"vtp_track_jitter_seconds{%s} %.6f\n"
				"vtp_track_bitrate_bits{%s} %llu\n"
				"vtp_track_reordered_total{%s} %llu\n"
				"vtp_track_duplicates_total{%s} %llu\n",
				labels, (unsigned long long)atomic_load(&t->a_packets), labels,
				(unsigned long long)atomic_load(&t->a_bytes), labels,
				(unsigned long long)atomic_load(&t->a_lost), labels,
				(double)atomic_load(&t->a_jitter_us) / 1e6, labels,
				(unsigned long long)atomic_load(&t->a_bitrate), labels,
				(unsigned long long)atomic_load(&t->a_reordered), labels,
				(unsigned long long)atomic_load(&t->a_duplicates));
		vtp__track_unref(t);
	}
	vtp_free(ts);
}

/* ---- recovery ------------------------------------------------------------------- */

/* Statistics of one packet log read back from disk (after a crash). */
static void write_summary(vtp_jw *w, const char *path, int64_t *last_ms)
{
	vtp_cap_summary s;
	track_json j;
	char err[256];
	json_t *meta;

	if (vtp_cap_summarize(path, &s, err, sizeof(err)) != 0) {
		VTP_WARN("recovery: %s unreadable: %s", path, err);
		return;
	}
	meta = json_loads(s.meta ? s.meta : "{}", 0, NULL);
	j = (track_json){
		.id = json_string_value(json_object_get(meta, "trackId")),
		.peer_id = json_string_value(json_object_get(meta, "peerId")),
		.full_name = json_string_value(json_object_get(meta, "fullName")),
		.kind = json_string_value(json_object_get(meta, "kind")),
		.codec = json_string_value(json_object_get(meta, "codec")),
		.state = "interrupted",
		.packets = (int64_t)s.rtp_packets, .bytes = (int64_t)s.rtp_bytes,
		.lost = (int64_t)s.seq_missing, .reordered = (int64_t)s.reordered_or_dup,
		.duplicates = -1, .dropped = -1, .bitrate = -1, .jitter_ms = -1,
		.relatched = (int64_t)s.relatches, .ssrc_changes = -1, .keyframe_requests = -1,
		.first_ms = (int64_t)(s.first_arrival_ns / 1000000ULL),
		.last_ms = (int64_t)(s.last_arrival_ns / 1000000ULL),
		.log_end = s.end == VTP_CAPR_END ? "clean" : s.end == VTP_CAPR_TORN ? "torn" : "corrupt",
		.not_written_packets = (int64_t)s.gap_records,
		.not_written_seconds = s.gap_seconds,
		.not_written_reason = s.gap_errno == ENOSPC || s.gap_errno == EDQUOT ? "disk_full"
									    : "write_failed",
	};
	/* logs from before sources named the ingest path there ("whip"):
	 * those are the defaults */
	j.source = j.kind ? vtp__source_name(json_string_value(json_object_get(meta, "source")),
					     strcmp(j.kind, "video") == 0)
			  : NULL;
	if (!j.source)
		j.source = vtp__source_name(NULL, j.kind && strcmp(j.kind, "video") == 0);
	write_track_json(w, &j);
	if (j.last_ms > *last_ms)
		*last_ms = j.last_ms;
	json_decref(meta);
	vtp_cap_summary_clear(&s);
}

/* Whether another node still captures tracks of the recording: it goes on
 * there, and this node's restart must not end it for everyone. */
typedef struct elsewhere_ctx {
	const char *me;
	int64_t now, timeout_ms;
	int live;
} elsewhere_ctx;

static int live_elsewhere(void *ctx, const vtp_track_state *t)
{
	elsewhere_ctx *c = ctx;

	if (strcmp(t->node_id, c->me) != 0 && t->last_segment == 0 && t->node_seen_ms &&
	    c->now - t->node_seen_ms <= c->timeout_ms)
		c->live++;
	return 0;
}

int vtp_ingest_recover(vtp_ingest *ing, int *recovered)
{
	vtp_recording *arr = NULL;
	size_t n = 0;
	int rc;

	*recovered = 0;
	rc = vtp_recordings_interrupted(ing->cfg.recordings, &arr, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char dir[4096], path[4400], when[VTP_TIME_BUFLEN], note[160];
		int64_t last_ms = 0;
		struct dirent *de;
		vtp_buf b;
		vtp_jw w;
		DIR *d;

		vtp_buf_init(&b, 1 << 24);
		vtp_jw_init(&w, &b);
		vtp_jw_array_begin(&w);
		if (vtp_recordings_tracks_dir(ing->cfg.recordings, &arr[i], dir, sizeof(dir)) == 0 &&
		    (d = opendir(dir)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				size_t len = strlen(de->d_name);

				if (len < 8 || strcmp(de->d_name + len - 7, ".vtpcap") != 0)
					continue;
				snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
				write_summary(&w, path, &last_ms);
			}
			closedir(d);
		}
		vtp_jw_array_end(&w);
		{
			elsewhere_ctx ec = {
				.me = ing->node_id[0] ? ing->node_id : "local",
				.now = vtp_now_ms(),
				.timeout_ms = (int64_t)(ing->cfg.node_timeout_seconds > 0
								? ing->cfg.node_timeout_seconds
								: 30) * 1000,
			};
			vtp_store *store = vtp_recordings_store(ing->cfg.recordings);

			if (vtp_store_track_states(store, arr[i].id, live_elsewhere, &ec) == 0 &&
			    ec.live > 0) {
				/* this node's tracks ended with its crash; the class goes on
				 * on the others, which end it at its Stop */
				int mrc = vtp_store_recording_merge_tracks(store, arr[i].id, b.data);

				VTP_WARN("recording %s: this node stopped while capturing it, but %d "
					 "track(s) go on on other nodes: it stays recording (this node's "
					 "tracks kept up to their last packet)%s",
					 arr[i].id, ec.live, mrc ? "; their statistics not saved" : "");
				vtp_buf_free(&b);
				continue;
			}
		}
		vtp_time_format(vtp_now_ms(), when);
		snprintf(note, sizeof(note),
			 "the server stopped while recording; restarted at %s, "
			 "tracks kept up to their last packet", when);
		if (vtp_recordings_mark_interrupted(ing->cfg.recordings, &arr[i],
						    last_ms ? last_ms : arr[i].created_at, b.data,
						    note) == 0)
			(*recovered)++;
		vtp_buf_free(&b);
	}
	vtp_recording_free_array(arr, n);
	/* this node's segments that never reached storage (of any recording:
	 * another node may own it) are queued again */
	if (ing->spool) {
		int queued = 0;

		rc = vtp__spool_recover(ing->spool, &queued);
		if (rc)
			VTP_ERROR("segment spool: cannot list what the last run left: %s",
				  vtp_strerror(rc));
	}
	return 0;
}

void vtp_ingest_spool_state(vtp_ingest *ing, vtp_spool_state *out)
{
	vtp__spool_state(ing ? ing->spool : NULL, out);
}

/* ---- lifecycle ------------------------------------------------------------------ */

/* Binds to the public address when it is one of this machine's; else to
 * every address (behind NAT the public one is not local). */
static void choose_bind_ip(vtp_ingest *ing)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(ing->bind_ip, sizeof(ing->bind_ip), "0.0.0.0");
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	if (fd >= 0 && inet_pton(AF_INET, ing->public_ip, &sa.sin_addr) == 1 &&
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		snprintf(ing->bind_ip, sizeof(ing->bind_ip), "%s", ing->public_ip);
	else
		VTP_INFO("ingest: %s is not an address of this machine; media ports listen on all "
			 "addresses", ing->public_ip);
	if (fd >= 0)
		close(fd);
}

vtp_ingest *vtp_ingest_start(const vtp_ingest_config *cfg, char *err, size_t errlen)
{
	vtp_ingest *ing;
	vtp_media_hooks hooks;

	if (cfg->port_min < 1 || cfg->port_max > 65535 || cfg->port_min > cfg->port_max) {
		snprintf(err, errlen, "ingest: bad media port range %d..%d", cfg->port_min,
			 cfg->port_max);
		return NULL;
	}
	ing = vtp_calloc(1, sizeof(*ing));
	ing->cfg = *cfg;
	if (ing->cfg.idle_seconds <= 0)
		ing->cfg.idle_seconds = 10;
	if (ing->cfg.rcvbuf <= 0)
		ing->cfg.rcvbuf = DEFAULT_RCVBUF;
	if (ing->cfg.whip_timeout_seconds <= 0)
		ing->cfg.whip_timeout_seconds = 30;
	if (ing->cfg.whip_max_bitrate <= 0)
		ing->cfg.whip_max_bitrate = 2500000;
	if (ing->cfg.segment_seconds <= 0)
		ing->cfg.segment_seconds = 10;
	ing->public_ip = vtp_strdup(cfg->public_ip ? cfg->public_ip : "127.0.0.1");
	ing->node_id = vtp_strdup(cfg->node_id ? cfg->node_id : "");
	ing->cfg.public_ip = ing->public_ip;
	ing->cfg.node_id = ing->node_id;
	ing->port_used = vtp_calloc((size_t)(cfg->port_max - cfg->port_min + 1), 1);
	ing->evfd = ing->epfd = ing->timerfd = -1;
	pthread_mutex_init(&ing->ctl_mu, NULL);
	pthread_mutex_init(&ing->reg_mu, NULL);
	pthread_mutex_init(&ing->cmd_mu, NULL);
	pthread_mutex_init(&ing->ev_mu, NULL);
	pthread_cond_init(&ing->ev_cv, NULL);
	ing->cmd_tail = &ing->cmd_head;
	ing->ev_tail = &ing->ev_head;
	pthread_mutex_init(&ing->whip_mu, NULL);
	pthread_cond_init(&ing->whip_cv, NULL);
	choose_bind_ip(ing);
	if (cfg->storage)
		ing->spool = vtp__spool_start(cfg->storage, cfg->recordings, ing->node_id,
					      cfg->spool_alert_seconds);
	ing->dtls = vtp_dtls_ctx_new(err, errlen);
	if (!ing->dtls) {
		vtp_ingest_stop(ing);
		return NULL;
	}
	if (vtp__loop_start(ing, err, errlen) != 0) {
		vtp_ingest_stop(ing);
		return NULL;
	}
	if (pthread_create(&ing->keeper_thread, NULL, keeper_main, ing) != 0) {
		snprintf(err, errlen, "ingest: cannot start the keeper thread");
		vtp_ingest_stop(ing);
		return NULL;
	}
	ing->keeper_started = true;
	vtp__whip_start(ing);
	hooks.ctx = ing;
	hooks.end_recording = hook_end_recording;
	hooks.live_tracks = hook_live_tracks;
	hooks.recording_started = hook_recording_started;
	vtp_recordings_set_media(cfg->recordings, &hooks);
	return ing;
}

void vtp_ingest_stop(vtp_ingest *ing)
{
	track **ts;
	int n;

	if (!ing)
		return;
	vtp_recordings_set_media(ing->cfg.recordings, NULL);
	/* WHIP sessions end first (their tracks with them), while the loop
	 * still runs */
	vtp__whip_stop(ing);
	/* the loop ends every live track on its way out; the keeper then
	 * closes their logs */
	vtp__loop_join(ing);
	if (ing->keeper_started) {
		pthread_mutex_lock(&ing->ev_mu);
		ing->keeper_quit = true;
		pthread_cond_signal(&ing->ev_cv);
		pthread_mutex_unlock(&ing->ev_mu);
		pthread_join(ing->keeper_thread, NULL);
	}
	ts = collect(ing, NULL, NULL, &n);
	pthread_mutex_lock(&ing->reg_mu);
	for (int i = 0; i < n; i++)
		unregister(ing, ts[i]);
	while (ing->ended) {
		track *t = ing->ended;

		ing->ended = t->reg_next;
		vtp__track_unref(t);
	}
	pthread_mutex_unlock(&ing->reg_mu);
	for (int i = 0; i < n; i++) {
		vtp__track_unref(ts[i]);
		vtp__track_unref(ts[i]);
	}
	vtp_free(ts);
	/* every log is closed: the spool commits what it still can */
	vtp__spool_stop(ing->spool);
	if (ing->epfd >= 0)
		close(ing->epfd);
	if (ing->evfd >= 0)
		close(ing->evfd);
	if (ing->timerfd >= 0)
		close(ing->timerfd);
	pthread_mutex_destroy(&ing->ctl_mu);
	pthread_mutex_destroy(&ing->reg_mu);
	pthread_mutex_destroy(&ing->cmd_mu);
	pthread_mutex_destroy(&ing->ev_mu);
	pthread_cond_destroy(&ing->ev_cv);
	pthread_mutex_destroy(&ing->whip_mu);
	pthread_cond_destroy(&ing->whip_cv);
	vtp_dtls_ctx_free(ing->dtls);
	vtp_free(ing->stopped_seen);
	vtp_free(ing->port_used);
	vtp_free(ing->public_ip);
	vtp_free(ing->node_id);
	vtp_free(ing);
}
