/* WHIP sessions, the control side (RFC 9725; the packet path is
 * whip_loop.c): creating a session from a publisher's offer (its own UDP
 * port from the media range, ICE credentials, the SDP answer), ending it
 * (DELETE, timeout, DTLS failure, shutdown), and the WHIP thread that ties
 * sessions to recordings.
 *
 * A session belongs to a room, not to a recording: while the room has an
 * active recording, each of the session's streams is captured as a track
 * of that recording (the same packet logs, statistics and participants as
 * plain-RTP tracks); a Stop ends those tracks (the recording service's
 * end_recording hook) and the session goes on, ready for the next Start.
 * The WHIP thread attaches sessions when a recording starts (the service's
 * recording_started hook wakes it) and re-checks every two seconds, which
 * also picks up recordings started on other nodes. It also ends the
 * sessions the loop gave up on: ending waits for the loop and the keeper,
 * which the loop itself cannot do. */
#include "ingest_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/error.h"
#include "core/jsonval.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "sdp.h"

#define WHIP_RECHECK_MS 2000
#define WHIP_MAX_PER_USER 16
#define WHIP_CREATES_PER_MINUTE 30

static const char *const end_names[] = {
	"alive", "deleted", "no media", "consent expired", "DTLS failed", "DTLS closed",
	"server stopping", "replaced by a new screen share",
};

void vtp__whip_ref(whip_session *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void vtp__whip_unref(whip_session *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->fd >= 0)
		close(s->fd);
	vtp_srtp_free(s->srtp);
	vtp_dtls_free(s->dtls);
	vtp_free(s->room_id);
	vtp_free(s->full_name);
	vtp_free(s->username);
	vtp_free(s);
}

void vtp__whip_kick(vtp_ingest *ing)
{
	pthread_mutex_lock(&ing->whip_mu);
	ing->whip_kick = true;
	pthread_cond_signal(&ing->whip_cv);
	pthread_mutex_unlock(&ing->whip_mu);
}

/* The publisher as the access log's actor. */
static void session_actor(const whip_session *s, vtp_actor *who)
{
	memset(who, 0, sizeof(*who));
	memcpy(who->user_id, s->user_id, sizeof(who->user_id));
	snprintf(who->role, sizeof(who->role), "%s", s->role);
	who->ip = s->ip;
}

/* ---- attaching to recordings -------------------------------------------------- */

static track *stream_track(whip_session *s, int i, const vtp_recording *rec,
			   const char *peer_id)
{
	const whip_stream *st = &s->streams[i];
	track *t = vtp_calloc(1, sizeof(*t));

	t->src_kind = SRC_TRACK;
	atomic_init(&t->refs, 1); /* the registry's */
	t->fd = -1;
	vtp__whip_ref(s);
	t->whip = s;
	t->stream = i;
	t->video = st->video;
	t->source = vtp__source_name(!s->screen ? NULL : st->video ? "screen" : "screen_audio",
				     st->video);
	snprintf(t->codec, sizeof(t->codec), "%s", st->codec);
	t->pt = st->pt;
	t->clock_rate = st->clock_rate;
	t->peer_id = vtp_strdup(peer_id);
	t->full_name = vtp_strdup(s->full_name);
	t->user_id = vtp_strdup(s->user_id);
	t->role = vtp_strdup(s->role);
	vtp_uuid_v4(t->id);
	memcpy(t->recording_id, rec->id, sizeof(t->recording_id));
	t->created_ms = vtp_now_ms();
	return t;
}

/* The peerId of a session's tracks (reg_mu held): its own id, but a screen
 * share's tracks belong to the person who shares, so they take the id of
 * the same user's camera session in the room when there is one (the oldest
 * live one): one participant with camera and screen, as over plain RTP. */
static void session_peer_id(vtp_ingest *ing, const whip_session *s, char out[VTP_UUID_BUFLEN])
{
	const whip_session *camera = NULL;

	memcpy(out, s->id, VTP_UUID_BUFLEN);
	if (!s->screen)
		return;
	for (const whip_session *o = ing->sessions; o; o = o->reg_next) {
		if (o->ending || o->screen || strcmp(o->user_id, s->user_id) != 0 ||
		    strcmp(o->room_id, s->room_id) != 0)
			continue;
		if (!camera || o->created_ms <= camera->created_ms)
			camera = o;
	}
	if (camera)
		memcpy(out, camera->id, VTP_UUID_BUFLEN);
}

/* Captures the session's streams for the room's active recording, unless
 * they already are (ctl_mu serialises this against a Stop, as for plain
 * tracks: either the Stop sees these tracks or this sees the Stop). */
static void attach(vtp_ingest *ing, whip_session *s, const char *recording_id)
{
	track *ts[WHIP_MAX_STREAMS] = {NULL};
	char path[4200];
	vtp_recording rec;
	vtp_actor who;
	vtp_fail fail = VTP_FAIL_INIT;
	char peer_id[VTP_UUID_BUFLEN];
	int n = 0;

	pthread_mutex_lock(&ing->ctl_mu);
	if (strcmp(s->attached, recording_id) == 0)
		goto out_unlock;
	pthread_mutex_lock(&ing->reg_mu);
	if (s->ending) {
		pthread_mutex_unlock(&ing->reg_mu);
		goto out_unlock;
	}
	session_peer_id(ing, s, peer_id);
	pthread_mutex_unlock(&ing->reg_mu);
	if (vtp_recordings_active_in_room(ing->cfg.recordings, s->room_id, &rec) != 0)
		goto out_unlock;
	if (strcmp(rec.id, recording_id) != 0) {
		vtp_recording_clear(&rec);
		goto out_unlock;
	}
	for (int i = 0; i < s->nstreams; i++) {
		track *t = stream_track(s, i, &rec, peer_id);

		if (vtp__track_open_log(ing, &rec, t, path, sizeof(path), &fail) != 0) {
			VTP_ERROR("whip session %s: its %s is not captured for recording %s: %s",
				  s->id, t->video ? "video" : "audio", rec.id, fail.message);
			vtp__track_unref(t);
			vtp_fail_clear(&fail);
			continue;
		}
		ts[n++] = t;
	}
	pthread_mutex_lock(&ing->reg_mu);
	for (int i = 0; i < n; i++) {
		ts[i]->reg_next = ing->tracks;
		ing->tracks = ts[i];
		ts[i]->in_registry = true;
		ing->ntracks++;
	}
	pthread_mutex_unlock(&ing->reg_mu);
	for (int i = 0; i < n; i++)
		vtp__loop_post(ing, CMD_ADD, ts[i], NULL);
	if (n) /* when no log could be opened, the next pass tries again */
		memcpy(s->attached, rec.id, sizeof(s->attached));
	pthread_mutex_unlock(&ing->ctl_mu);

	session_actor(s, &who);
	for (int i = 0; i < n; i++) {
		vtp_recordings_audit_track(ing->cfg.recordings, &who, rec.id, "track_add",
					   json_pack("{ss ss ss ss ss ss}", "trackId", ts[i]->id,
						     "peerId", ts[i]->peer_id, "sessionId", s->id,
						     "kind", ts[i]->video ? "video" : "audio",
						     "source", ts[i]->source, "ingest", "whip"));
	}
	VTP_INFO("whip session %s: %d stream(s) captured for recording %s", s->id, n, rec.id);
	vtp_recording_clear(&rec);
	return;
out_unlock:
	pthread_mutex_unlock(&ing->ctl_mu);
}

/* The recording the session captured for is no longer the room's active
 * one (it stopped on another node: this node's own Stops end the tracks
 * through the service's hook): its captures here end too. */
static void detach_stale(vtp_ingest *ing, whip_session *s, const char *active_id)
{
	track **ts;
	int n, k = 0;

	pthread_mutex_lock(&ing->ctl_mu);
	if (!s->attached[0] || strcmp(s->attached, active_id) == 0) {
		pthread_mutex_unlock(&ing->ctl_mu);
		return;
	}
	ts = vtp__collect_whip(ing, s, &n);
	for (int i = 0; i < n; i++) {
		if (strcmp(ts[i]->recording_id, active_id) != 0)
			ts[k++] = ts[i];
		else
			vtp__track_unref(ts[i]);
	}
	/* kept with the ended tracks: when the recording ended on another node,
	 * their statistics go to it (vtp__end_stopped_elsewhere) */
	vtp_free(vtp__end_tracks(ing, ts, k, true));
	if (k)
		VTP_INFO("whip session %s: recording %s is no longer active; %d capture(s) ended",
			 s->id, s->attached, k);
	s->attached[0] = '\0';
	pthread_mutex_unlock(&ing->ctl_mu);
	vtp_free(ts);
}

/* The room's active recording, if any, into id (empty when none). */
static void active_recording(vtp_ingest *ing, const char *room_id, char id[VTP_UUID_BUFLEN])
{
	vtp_recording rec;

	id[0] = '\0';
	if (vtp_recordings_active_in_room(ing->cfg.recordings, room_id, &rec) == 0) {
		memcpy(id, rec.id, VTP_UUID_BUFLEN);
		vtp_recording_clear(&rec);
	}
}

/* ---- ending ----------------------------------------------------------------------- */

/* Ends a session: its captures end (logs synced and closed), the loop
 * lets go of its socket, and it leaves the registry. Once per session. */
static void end_session(vtp_ingest *ing, whip_session *s, enum whip_end_reason why)
{
	completion done;
	uint64_t audio = 0, video = 0;
	track **ts;
	char *stats;
	int n, expected = WHIP_ALIVE;

	atomic_compare_exchange_strong(&s->a_end, &expected, (int)why);
	why = (enum whip_end_reason)atomic_load(&s->a_end);
	pthread_mutex_lock(&ing->ctl_mu);
	pthread_mutex_lock(&ing->reg_mu);
	if (s->ending) {
		pthread_mutex_unlock(&ing->reg_mu);
		pthread_mutex_unlock(&ing->ctl_mu);
		return;
	}
	s->ending = true;
	pthread_mutex_unlock(&ing->reg_mu);
	ts = vtp__collect_whip(ing, s, &n);
	stats = vtp__end_tracks(ing, ts, n, true);
	vtp_free(ts);
	vtp_free(stats);
	vtp__completion_init(&done, 1);
	vtp__loop_post_whip(ing, CMD_WHIP_END, NULL, s, &done);
	vtp__completion_wait(&done);
	vtp__completion_destroy(&done);
	pthread_mutex_lock(&ing->reg_mu);
	for (whip_session **pp = &ing->sessions; *pp; pp = &(*pp)->reg_next) {
		if (*pp == s) {
			*pp = s->reg_next;
			ing->nsessions--;
			break;
		}
	}
	ing->port_used[s->port - ing->cfg.port_min] = 0;
	pthread_mutex_unlock(&ing->reg_mu);
	pthread_mutex_unlock(&ing->ctl_mu);
	for (int i = 0; i < s->nstreams; i++) {
		uint64_t p = atomic_load(&s->streams[i].a_packets);

		if (s->streams[i].video)
			video += p;
		else
			audio += p;
	}
	atomic_fetch_add(&ing->whip_ended, 1);
	VTP_INFO("whip session %s ended (%s): %llu audio and %llu video packets, %llu dropped",
		 s->id, end_names[why], (unsigned long long)audio, (unsigned long long)video,
		 (unsigned long long)atomic_load(&s->a_drops));
	if (ing->cfg.whip_ended)
		ing->cfg.whip_ended(ing->cfg.whip_ended_ctx, s->id);
	vtp__whip_unref(s); /* the registry's */
}

/* ---- the WHIP thread ---------------------------------------------------------------- */

/* References to every registered session (reg_mu taken here). */
static whip_session **snapshot(vtp_ingest *ing, int *n)
{
	whip_session **out;
	int k = 0;

	pthread_mutex_lock(&ing->reg_mu);
	out = vtp_calloc((size_t)ing->nsessions + 1, sizeof(*out));
	for (whip_session *s = ing->sessions; s; s = s->reg_next) {
		if (s->ending)
			continue;
		vtp__whip_ref(s);
		out[k++] = s;
	}
	pthread_mutex_unlock(&ing->reg_mu);
	*n = k;
	return out;
}

static void pass(vtp_ingest *ing)
{
	whip_session **ss;
	char (*rec_ids)[VTP_UUID_BUFLEN];
	bool *looked;
	int n;

	ss = snapshot(ing, &n);
	rec_ids = vtp_calloc((size_t)n + 1, sizeof(*rec_ids));
	looked = vtp_calloc((size_t)n + 1, sizeof(*looked));
	for (int i = 0; i < n; i++) {
		whip_session *s = ss[i];
		int why = atomic_load(&s->a_end);
		bool found = false;

		if (why != WHIP_ALIVE) {
			end_session(ing, s, (enum whip_end_reason)why);
			continue;
		}
		/* one look-up per room and pass */
		for (int k = 0; k < i && !found; k++) {
			if (looked[k] && strcmp(ss[k]->room_id, s->room_id) == 0) {
				memcpy(rec_ids[i], rec_ids[k], sizeof(rec_ids[i]));
				found = true;
			}
		}
		if (!found)
			active_recording(ing, s->room_id, rec_ids[i]);
		looked[i] = true;
		detach_stale(ing, s, rec_ids[i]);
		if (rec_ids[i][0])
			attach(ing, s, rec_ids[i]); /* nothing when attached already */
	}
	vtp_free(looked);
	for (int i = 0; i < n; i++)
		vtp__whip_unref(ss[i]);
	vtp_free(rec_ids);
	vtp_free(ss);
}

static void *whip_main(void *arg)
{
	vtp_ingest *ing = arg;

	pthread_setname_np(pthread_self(), "vtp-whip");
	for (;;) {
		struct timespec until;
		bool quit;

		pthread_mutex_lock(&ing->whip_mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WHIP_RECHECK_MS / 1000;
		while (!ing->whip_kick && !ing->whip_quit) {
			if (pthread_cond_timedwait(&ing->whip_cv, &ing->whip_mu, &until) != 0)
				break;
		}
		ing->whip_kick = false;
		quit = ing->whip_quit;
		pthread_mutex_unlock(&ing->whip_mu);
		if (quit)
			break;
		pass(ing);
		vtp__end_stopped_elsewhere(ing);
	}
	return NULL;
}

void vtp__whip_start(vtp_ingest *ing)
{
	if (pthread_create(&ing->whip_thread, NULL, whip_main, ing) == 0)
		ing->whip_started = true;
	else
		VTP_ERROR("ingest: cannot start the WHIP thread; WHIP sessions will not capture");
}

void vtp__whip_stop(vtp_ingest *ing)
{
	whip_session **ss;
	int n;

	if (ing->whip_started) {
		pthread_mutex_lock(&ing->whip_mu);
		ing->whip_quit = true;
		pthread_cond_signal(&ing->whip_cv);
		pthread_mutex_unlock(&ing->whip_mu);
		pthread_join(ing->whip_thread, NULL);
		ing->whip_started = false;
	}
	if (!ing->loop_started)
		return;
	ss = snapshot(ing, &n);
	for (int i = 0; i < n; i++) {
		end_session(ing, ss[i], WHIP_SHUTDOWN);
		vtp__whip_unref(ss[i]);
	}
	vtp_free(ss);
}

/* ---- the API ------------------------------------------------------------------------ */

static bool room_ok(const char *room_id)
{
	return room_id && *room_id && vtp_utf8_valid(room_id, true) &&
	       vtp_utf8_length(room_id) <= 255;
}

static int count_user_sessions(vtp_ingest *ing, const char *user_id)
{
	int n = 0;

	for (whip_session *s = ing->sessions; s; s = s->reg_next)
		n += !s->ending && strcmp(s->user_id, user_id) == 0;
	return n;
}

/* Counts a session created by user_id; false past WHIP_CREATES_PER_MINUTE
 * in the current minute (each session leaves capture files behind, so
 * publish/delete churn must not be free). The table keeps the 64 most
 * recent users (reg_mu held). */
static bool creation_allowed(vtp_ingest *ing, const char *user_id, int64_t now)
{
	struct whip_rate *slot = NULL, *oldest = &ing->whip_rate[0];
	size_t n = sizeof(ing->whip_rate) / sizeof(ing->whip_rate[0]);

	for (size_t i = 0; i < n && !slot; i++) {
		if (strcmp(ing->whip_rate[i].user_id, user_id) == 0)
			slot = &ing->whip_rate[i];
		else if (ing->whip_rate[i].start_ms < oldest->start_ms)
			oldest = &ing->whip_rate[i];
	}
	if (!slot) {
		slot = oldest;
		snprintf(slot->user_id, sizeof(slot->user_id), "%s", user_id);
		slot->start_ms = now;
		slot->count = 0;
	}
	if (now - slot->start_ms >= 60000) {
		slot->start_ms = now;
		slot->count = 0;
	}
	return ++slot->count <= WHIP_CREATES_PER_MINUTE;
}

int vtp_ingest_whip_create(vtp_ingest *ing, const vtp_whip_publisher *pub, const char *room_id,
			   const char *sdp, size_t sdp_len, vtp_buf *answer,
			   char session_id[VTP_UUID_BUFLEN], vtp_fail *fail)
{
	vtp_sdp_offer *o = NULL;
	vtp_sdp_answer_params ap;
	whip_session *s = NULL;
	whip_session *replaced[WHIP_MAX_PER_USER];
	char why[200], rec_id[VTP_UUID_BUFLEN];
	int rc = 0, e, nreplaced = 0;

	if (!room_ok(room_id))
		return vtp_fail_set(fail, VTP_EINVAL, "invalid_input", "roomId",
				    "roomId must be 1..255 characters of UTF-8 text");
	o = vtp_calloc(1, sizeof(*o));
	if (vtp_sdp_parse_offer(sdp, sdp_len, o, why, sizeof(why)) != 0) {
		rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_sdp", NULL, "%s", why);
		goto out;
	}
	if (o->ice_lite) {
		rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_sdp", NULL,
				  "the offer is ICE-lite, like this server: one side must be a full "
				  "ICE agent");
		goto out;
	}
	s = vtp_calloc(1, sizeof(*s));
	s->src_kind = SRC_WHIP;
	atomic_init(&s->refs, 1); /* the registry's */
	s->fd = -1;
	vtp_uuid_v4(s->id);
	s->room_id = vtp_strdup(room_id);
	s->screen = pub->screen;
	memcpy(s->user_id, pub->who->user_id, sizeof(s->user_id));
	snprintf(s->role, sizeof(s->role), "%s", pub->who->role);
	s->full_name = vtp_strdup(pub->full_name && *pub->full_name ? pub->full_name : "publisher");
	snprintf(s->ip, sizeof(s->ip), "%s", pub->who->ip ? pub->who->ip : "");
	vtp_random_hex(s->ufrag, 4);  /* 8 ice-chars */
	vtp_random_hex(s->pwd, 16);   /* 32 ice-chars: 128 bits */
	s->username = vtp_calloc(1, strlen(s->ufrag) + 1 + strlen(o->ice_ufrag) + 1);
	memcpy(s->username, s->ufrag, strlen(s->ufrag));
	s->username[strlen(s->ufrag)] = ':';
	memcpy(s->username + strlen(s->ufrag) + 1, o->ice_ufrag, strlen(o->ice_ufrag));
	snprintf(s->fp_alg, sizeof(s->fp_alg), "%s", o->fingerprint_alg);
	memcpy(s->fp, o->fingerprint, o->fingerprint_len);
	s->fp_len = o->fingerprint_len;
	s->created_ms = vtp_now_ms();
	for (int i = 0; i < o->nmedia && s->nstreams < WHIP_MAX_STREAMS; i++) {
		const vtp_sdp_media *m = &o->media[i];
		const vtp_sdp_codec *c;
		whip_stream *st;

		if (m->chosen < 0)
			continue;
		c = &m->codecs[m->chosen];
		st = &s->streams[s->nstreams++];
		st->video = m->kind == VTP_SDP_VIDEO;
		snprintf(st->codec, sizeof(st->codec), "%s",
			 !st->video ? "opus" : strcasecmp(c->name, "VP8") == 0 ? "vp8" : "h264");
		st->pt = c->pt;
		if (st->pt >= 64 && st->pt <= 95) { /* RFC 5761 §4 */
			rc = vtp_fail_set(fail, VTP_EINVAL, "invalid_sdp", NULL,
					  "payload type %d collides with RTCP on one port (RFC 5761); "
					  "use 96..127", st->pt);
			goto out;
		}
		st->clock_rate = st->video ? 90000 : 48000;
		st->nack = st->video && c->nack;
		st->fir = c->ccm_fir;
		st->remb = c->goog_remb;
	}

	pthread_mutex_lock(&ing->reg_mu);
	/* a person publishes a camera or two; gateways (role service) and
	 * admins publish for many */
	if (!vtp_role_is(s->role, VTP_ROLE_SERVICE) && !vtp_role_is(s->role, VTP_ROLE_ADMIN)) {
		if (count_user_sessions(ing, s->user_id) >= WHIP_MAX_PER_USER) {
			pthread_mutex_unlock(&ing->reg_mu);
			rc = vtp_fail_set(fail, VTP_ELIMIT, "too_many_sessions", NULL,
					  "this user already publishes %d WHIP sessions; end one first",
					  WHIP_MAX_PER_USER);
			goto out;
		}
		if (!creation_allowed(ing, s->user_id, s->created_ms)) {
			pthread_mutex_unlock(&ing->reg_mu);
			rc = vtp_fail_set(fail, VTP_ELIMIT, "too_many_sessions", NULL,
					  "more than %d WHIP sessions a minute from this user; "
					  "try again in a minute", WHIP_CREATES_PER_MINUTE);
			goto out;
		}
	}
	s->fd = vtp__bind_port(ing, &s->port);
	if (s->fd < 0) {
		e = errno;
		pthread_mutex_unlock(&ing->reg_mu);
		if (e == EADDRINUSE) {
			VTP_WARN("whip: no free UDP port in %d..%d for a new session",
				 ing->cfg.port_min, ing->cfg.port_max);
			rc = vtp_fail_set(fail, VTP_EUNAVAIL, "no_ports", NULL,
					  "no free media port on this server; try again later");
		} else {
			VTP_ERROR("whip: cannot open a media socket: %s", strerror(e));
			rc = vtp_fail_set(fail, VTP_EUNAVAIL, "no_capacity", NULL,
					  "this server cannot open more media sockets (%s); try again later",
					  strerror(e));
		}
		goto out;
	}
	/* One screen share per person and room: a new one replaces the old
	 * (a reload or a re-pick of the window must not wait for the old
	 * session's timeout). Gateways and admins publish for many. */
	if (s->screen && !vtp_role_is(s->role, VTP_ROLE_SERVICE) &&
	    !vtp_role_is(s->role, VTP_ROLE_ADMIN)) {
		for (whip_session *old = ing->sessions; old && nreplaced < WHIP_MAX_PER_USER;
		     old = old->reg_next) {
			if (!old->ending && old->screen && strcmp(old->user_id, s->user_id) == 0 &&
			    strcmp(old->room_id, s->room_id) == 0) {
				vtp__whip_ref(old);
				replaced[nreplaced++] = old;
			}
		}
	}
	s->reg_next = ing->sessions;
	ing->sessions = s;
	ing->nsessions++;
	vtp__whip_ref(s); /* ours, until the end of this function */
	pthread_mutex_unlock(&ing->reg_mu);
	for (int i = 0; i < nreplaced; i++) {
		VTP_INFO("whip session %s: replaced by screen share %s", replaced[i]->id, s->id);
		end_session(ing, replaced[i], WHIP_REPLACED);
		vtp__whip_unref(replaced[i]);
	}
	vtp__loop_post_whip(ing, CMD_WHIP_ADD, NULL, s, NULL);
	atomic_fetch_add(&ing->whip_created, 1);

	ap.ip = ing->public_ip;
	ap.port = s->port;
	ap.ice_ufrag = s->ufrag;
	ap.ice_pwd = s->pwd;
	ap.fingerprint = vtp_dtls_ctx_fingerprint(ing->dtls);
	vtp_random_bytes(&ap.session_id, sizeof(ap.session_id));
	ap.session_id &= 0x7fffffffffffffffULL; /* RFC 8866: fits a signed 64-bit */
	vtp_sdp_write_answer(o, &ap, answer);
	if (answer->len == 0) { /* cannot happen within 64 KiB; never answer empty */
		atomic_store(&s->a_end, WHIP_SHUTDOWN);
		vtp__whip_kick(ing);
		vtp__whip_unref(s);
		s = NULL;
		rc = vtp_fail_set(fail, VTP_EINTERNAL, "internal", NULL,
				  "the SDP answer could not be written");
		goto out;
	}
	memcpy(session_id, s->id, VTP_UUID_BUFLEN);
	VTP_INFO("whip session %s: user %s publishes %s%d stream(s) (%s%s%s) in a room of %zu "
		 "chars on port %d", s->id, s->user_id, s->screen ? "a screen share, " : "",
		 s->nstreams, s->streams[0].codec,
		 s->nstreams > 1 ? " + " : "", s->nstreams > 1 ? s->streams[1].codec : "",
		 vtp_utf8_length(room_id), s->port);
	/* publishing while a recording runs: captured from now on */
	active_recording(ing, s->room_id, rec_id);
	if (rec_id[0])
		attach(ing, s, rec_id);
	vtp__whip_unref(s);
	s = NULL;
out:
	if (s)
		vtp__whip_unref(s);
	vtp_free(o);
	return rc;
}

int vtp_ingest_whip_delete(vtp_ingest *ing, const vtp_actor *who, const char *room_id,
			   const char *session_id, vtp_fail *fail)
{
	whip_session *found = NULL;
	char sid[VTP_UUID_BUFLEN];

	if (!vtp_uuid_parse(session_id, sid) || !room_ok(room_id))
		return vtp_fail_set(fail, VTP_ENOTFOUND, "not_found", NULL, "no such WHIP session");
	pthread_mutex_lock(&ing->reg_mu);
	for (whip_session *s = ing->sessions; s; s = s->reg_next) {
		if (!s->ending && strcmp(s->id, sid) == 0 && strcmp(s->room_id, room_id) == 0 &&
		    (strcmp(s->user_id, who->user_id) == 0 || vtp_role_is(who->role, VTP_ROLE_ADMIN))) {
			vtp__whip_ref(s);
			found = s;
			break;
		}
	}
	pthread_mutex_unlock(&ing->reg_mu);
	if (!found)
		return vtp_fail_set(fail, VTP_ENOTFOUND, "not_found", NULL, "no such WHIP session");
	end_session(ing, found, WHIP_DELETED);
	vtp__whip_unref(found);
	return 0;
}

bool vtp_ingest_whip_exists(vtp_ingest *ing, const char *room_id, const char *session_id)
{
	char sid[VTP_UUID_BUFLEN];
	bool found = false;

	if (!vtp_uuid_parse(session_id, sid))
		return false;
	pthread_mutex_lock(&ing->reg_mu);
	for (whip_session *s = ing->sessions; s && !found; s = s->reg_next)
		found = !s->ending && strcmp(s->id, sid) == 0 && strcmp(s->room_id, room_id) == 0;
	pthread_mutex_unlock(&ing->reg_mu);
	return found;
}

void vtp__whip_metrics(vtp_ingest *ing, vtp_buf *out)
{
	int n;

	pthread_mutex_lock(&ing->reg_mu);
	n = ing->nsessions;
	pthread_mutex_unlock(&ing->reg_mu);
	vtp_buf_appendf(out,
			"# HELP vtp_whip_sessions WHIP sessions on this node.\n"
			"# TYPE vtp_whip_sessions gauge\n"
			"vtp_whip_sessions %d\n"
			"# HELP vtp_whip_sessions_created_total WHIP sessions created.\n"
			"# TYPE vtp_whip_sessions_created_total counter\n"
			"vtp_whip_sessions_created_total %llu\n"
			"# HELP vtp_whip_sessions_connected_total WHIP sessions whose DTLS handshake finished.\n"
			"# TYPE vtp_whip_sessions_connected_total counter\n"
			"vtp_whip_sessions_connected_total %llu\n"
			"# HELP vtp_whip_handshakes_failed_total WHIP DTLS handshakes that failed.\n"
			"# TYPE vtp_whip_handshakes_failed_total counter\n"
			"vtp_whip_handshakes_failed_total %llu\n"
			"# HELP vtp_whip_sessions_ended_total WHIP sessions ended.\n"
			"# TYPE vtp_whip_sessions_ended_total counter\n"
			"vtp_whip_sessions_ended_total %llu\n",
			n, (unsigned long long)atomic_load(&ing->whip_created),
			(unsigned long long)atomic_load(&ing->whip_connected),
			(unsigned long long)atomic_load(&ing->whip_failed),
			(unsigned long long)atomic_load(&ing->whip_ended));
}
