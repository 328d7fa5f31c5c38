/* Socket.IO v4 / Engine.IO 4 over WebSocket; see events.h.
 *
 * Wire format, as the stock socket.io-client speaks it with
 * transports: ["websocket"]: every WebSocket text message is one Engine.IO
 * packet, a type digit and data: 0 open (server: sid, pingInterval, ...),
 * 1 close, 2 ping (the server's), 3 pong (the client's), 4 message. A
 * message carries one Socket.IO packet: a type digit (0 CONNECT,
 * 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5/6 binary), an optional
 * "/namespace,", an optional ack id and JSON: `42["join-room",{...}]`,
 * `421["recording-start",{...}]` answered by `431[{...}]`.
 *
 * Everything a client sends is hostile: a message is at most 64 KiB (wslay
 * closes the connection above it), packets are read by sio_packet.c (JSON by
 * jansson, which refuses invalid UTF-8), anything malformed is counted and dropped or
 * answered with an error, and a client that reads too slowly is dropped
 * rather than buffered without bound. */
#include "events.h"
#include "sio_packet.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "auth/auth.h"
#include "core/error.h"
#include "core/fail.h"
#include "core/hash.h"
#include "core/jsonval.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"
#include "core/utf8.h"

#define MAX_MESSAGE (64 * 1024)        /* one Engine.IO packet */
#define MAX_QUEUED (256u << 10)        /* unsent bytes before a client is dropped */
#define TURN_MESSAGES 16               /* read per connection per turn of the loop */
#define MAX_ROOMS_PER_SOCKET 32
#define MEMBERS_LISTED 50             /* names in room-members; count has all */
#define ROOM_BUCKETS 1024
#define CONNECT_TIMEOUT_MS 20000       /* from open to a Socket.IO CONNECT */
#define USER_RECHECK_MS 2000           /* as REST's token cache (src/api/authcache.c) */
#define RECHECKS_PER_TICK 64           /* user lookups per tick for idle connections */
#define POLL_MS 250                    /* room event journal */
#define DIRTY_POLL_MS 50               /* at most this often for local events */
#define JOURNAL_WINDOW_MS 5000         /* how far back each poll looks */
#define PRUNE_EVERY_MS 60000
#define JOURNAL_KEEP_MS (10 * 60000)
#define PRESENCE_BEAT_MS 5000          /* shared presence: rows refreshed */
#define PRESENCE_EXPIRE_MS 30000       /* rows of a node silent this long go */
#define PRESENCE_EVENT ".presence"     /* journal entry: a room's people changed */

enum { DROP_MALFORMED, DROP_BINARY, DROP_NOT_CONNECTED, DROP_SLOW, DROP_N };
static const char *const drop_names[DROP_N] = {"malformed", "binary", "not_connected",
						"slow_consumer"};

typedef struct conn conn;

typedef struct room {
	struct room *next; /* hash chain */
	char *id;
	conn **members;
	size_t n, cap;
	bool members_dirty;     /* room-members to send */
	int64_t members_sent_ms;
} room;

struct conn {
	conn *prev, *next;
	vtp_events *ev;
	int fd;
	void (*release)(void *);
	void *release_arg;
	wslay_event_context_ptr ws;
	unsigned char *pre; /* bytes read by the HTTP layer past the request */
	size_t pre_len, pre_off;
	char sid[21];
	char ip[64];
	char *ua;
	bool connected;     /* Socket.IO CONNECT accepted */
	bool dead;          /* to be closed after the current step */
	/* a close decided: sent once the messages queued before it are out
	 * (wslay sends control frames first) */
	uint16_t close_code;
	const char *close_reason;
	uint32_t interest;  /* current epoll events */
	int64_t opened_ms, ping_ms;
	bool awaiting_pong;
	int turn_messages;  /* handled in this turn of the loop */
	int64_t token_exp;  /* seconds */
	int64_t user_checked_ms; /* user last read from the store */
	vtp_user user;
	vtp_actor actor;
	room *rooms[MAX_ROOMS_PER_SOCKET];
	bool watching[MAX_ROOMS_PER_SOCKET]; /* rooms[i] joined with watch: not a member */
	int nrooms;
};

typedef struct adoption {
	struct adoption *next;
	int fd;
	unsigned char *extra;
	size_t extra_len;
	char ip[64];
	char *ua;
	void (*release)(void *);
	void *arg;
} adoption;

typedef struct seen_ids {
	char (*ids)[VTP_UUID_BUFLEN];
	size_t n, cap;
} seen_ids;

struct vtp_events {
	vtp_events_config cfg;
	pthread_t thread;
	bool started;
	int epfd, wakefd;
	pthread_mutex_t mu; /* adoptions, stopping */
	adoption *pending;
	int npending;
	bool stopping;
	atomic_bool journal_dirty; /* vtp_events_notify: poll now */
	conn *conns;
	int nconns;
	room *rooms[ROOM_BUCKETS];
	int nrooms;
	/* journal */
	int64_t floor_ms; /* events older than this are history, never sent */
	seen_ids seen, next_seen;
	int64_t last_poll_ms, last_prune_ms;
	/* shared presence */
	int64_t last_beat_ms;
	char presence_payload[VTP_UUID_BUFLEN + 16]; /* our PRESENCE_EVENT payload */
	bool presence_off; /* stopping: rows went in one statement */
	/* metrics */
	atomic_int_fast64_t m_connections, m_rooms;
	atomic_uint_fast64_t m_opened, m_broadcasts, m_commands, m_auth_failed;
	atomic_uint_fast64_t m_dropped[DROP_N];
};

/* ---- sending -------------------------------------------------------------- */

static void drop(conn *c, int reason)
{
	atomic_fetch_add(&c->ev->m_dropped[reason], 1);
}

/* Closes c with a WebSocket close frame once what is queued so far has been
 * sent (an error ack or a reason just queued must not be overtaken by the
 * close, which wslay would send first); nothing more is read from c. */
static void close_after_queue(conn *c, uint16_t code, const char *reason)
{
	if (!c->close_code) {
		c->close_code = code;
		c->close_reason = reason;
	}
	wslay_event_shutdown_read(c->ws);
}

/* A packet no Socket.IO client sends: counted, and the connection closed
 * (WebSocket close 1003 for binary, 1008 for the rest), as the reference
 * server does; nothing after it is read. */
static void reject(conn *c, int reason)
{
	drop(c, reason);
	if (c->dead)
		return;
	if (reason == DROP_BINARY)
		close_after_queue(c, WSLAY_CODE_UNSUPPORTED_DATA, "binary packets are not spoken here");
	else
		close_after_queue(c, WSLAY_CODE_POLICY_VIOLATION, "malformed packet");
}

static void send_text(conn *c, const char *text, size_t len)
{
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};

	if (c->dead)
		return;
	if (wslay_event_get_queued_msg_length(c->ws) + len > MAX_QUEUED) {
		VTP_WARN("socket.io %s (%s): dropped, it reads too slowly", c->sid, c->ip);
		drop(c, DROP_SLOW);
		c->dead = true;
		return;
	}
	if (wslay_event_queue_msg(c->ws, &m) != 0)
		c->dead = true;
}

static void send_str(conn *c, const char *text)
{
	send_text(c, text, strlen(text));
}

/* prefix ("42", "43<ack>", "44") and the JSON of value; consumes value. */
static void send_packet(conn *c, const char *prefix, json_t *value)
{
	char *body = json_dumps(value, JSON_COMPACT);
	vtp_buf b;

	json_decref(value);
	if (!body)
		return;
	vtp_buf_init(&b, MAX_QUEUED);
	if (vtp_buf_appends(&b, prefix) == 0 && vtp_buf_appends(&b, body) == 0)
		send_text(c, b.data, b.len);
	vtp_buf_free(&b);
	free(body);
}

static void send_ack(conn *c, long ack, json_t *value)
{
	char prefix[32];

	if (ack < 0) {
		json_decref(value);
		return;
	}
	snprintf(prefix, sizeof(prefix), "43%ld", ack);
	send_packet(c, prefix, json_pack("[o]", value));
}

static void ack_error(conn *c, long ack, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void ack_error(conn *c, long ack, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_ack(c, ack, json_pack("{s{ssss}}", "error", "code", code, "message", msg));
}

static void ack_fail(conn *c, long ack, vtp_fail *fail)
{
	if (strcmp(vtp_fail_reason(fail), "internal") == 0)
		VTP_ERROR("socket.io %s: command failed: %s", c->sid,
			  fail->message[0] ? fail->message : vtp_strerror(fail->code));
	send_ack(c, ack, json_pack("{so}", "error", vtp_fail_json(fail)));
	vtp_fail_clear(fail);
}

static void update_interest(conn *c)
{
	uint32_t want = 0;
	struct epoll_event e;

	if (wslay_event_want_read(c->ws))
		want |= EPOLLIN;
	if (wslay_event_want_write(c->ws))
		want |= EPOLLOUT;
	if (want == c->interest)
		return;
	e.events = want | (want & EPOLLIN ? EPOLLRDHUP : 0);
	e.data.ptr = c;
	epoll_ctl(c->ev->epfd, EPOLL_CTL_MOD, c->fd, &e);
	c->interest = want;
}

/* ---- rooms ---------------------------------------------------------------- */

static room **room_slot(vtp_events *ev, const char *id)
{
	room **p = &ev->rooms[vtp_fnv1a(id, strlen(id)) % ROOM_BUCKETS];

	while (*p && strcmp((*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

static room *room_find(vtp_events *ev, const char *id)
{
	return *room_slot(ev, id);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int conn_room_index(conn *c, room *rm)
{
	for (int i = 0; i < c->nrooms; i++)
		if (c->rooms[i] == rm)
			return i;
	return -1;
}

/* Joined only to watch (a library following progress): hears the room,
 * is not one of the people in it. */
static bool is_watcher(conn *c, room *rm)
{
	int k = conn_room_index(c, rm);

	return k >= 0 && c->watching[k];
}

/* How many different users are in the room. */
static size_t distinct_users(room *rm)
{
	const char **ids = vtp_malloc((rm->n ? rm->n : 1) * sizeof(*ids));
	size_t n = 0, k = 0;

	for (size_t i = 0; i < rm->n; i++)
		if (!is_watcher(rm->members[i], rm))
			ids[k++] = rm->members[i]->user.id;
	qsort(ids, k, sizeof(*ids), cmp_str);
	for (size_t i = 0; i < k; i++)
		n += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
	vtp_free(ids);
	return n;
}

/* {roomId, count, members}: the first MEMBERS_LISTED different users, in
 * the order they came, and how many there are in all. A lecture hall of a
 * thousand is a count and a page, not a thousand names to everyone. */
static json_t *members_json_local(room *rm)
{
	json_t *arr = json_array();
	const char *listed[MEMBERS_LISTED];
	size_t nl = 0;

	for (size_t i = 0; i < rm->n && nl < MEMBERS_LISTED; i++) {
		conn *m = rm->members[i];
		bool dup = is_watcher(m, rm);

		for (size_t j = 0; j < nl && !dup; j++)
			dup = strcmp(listed[j], m->user.id) == 0;
		if (dup)
			continue;
		listed[nl++] = m->user.id;
		json_array_append_new(arr, json_pack("{ssssss}", "userId", m->user.id, "fullName",
						     m->user.full_name ? m->user.full_name : "",
						     "role", m->user.role ? m->user.role : ""));
	}
	return json_pack("{sssIso}", "roomId", rm->id, "count", (json_int_t)distinct_users(rm),
			 "members", arr);
}

static int add_member(void *ctx, const char *user_id, const char *full_name, const char *role)
{
	json_array_append_new(ctx, json_pack("{ssssss}", "userId", user_id, "fullName",
					     full_name ? full_name : "", "role", role ? role : ""));
	return 0;
}

/* With shared presence the people of every node, from the database; this
 * node's own when the database does not answer. */
static json_t *members_json(vtp_events *ev, room *rm)
{
	json_t *arr;
	int64_t count;

	if (!ev->cfg.shared_presence)
		return members_json_local(rm);
	arr = json_array();
	if (vtp_store_presence_members(ev->cfg.store, rm->id, MEMBERS_LISTED, &count, add_member,
				       arr) != 0) {
		json_decref(arr);
		VTP_WARN("socket.io: room presence not read; room-members shows this node's only");
		return members_json_local(rm);
	}
	return json_pack("{sssIso}", "roomId", rm->id, "count", (json_int_t)count, "members", arr);
}

/* Shared presence: c's row in rm (member) or none (left, or a watcher),
 * and a journal entry so that the other nodes' clients in the room hear
 * the new list. Failures are logged: the heartbeat puts rows back. */
static void presence_set(conn *c, room *rm, bool member)
{
	vtp_events *ev = c->ev;
	int rc;

	if (!ev->cfg.shared_presence || ev->presence_off)
		return;
	rc = member ? vtp_store_presence_put(ev->cfg.store, ev->cfg.node_id, c->sid, rm->id,
					     c->user.id, c->user.full_name, c->user.role)
		    : vtp_store_presence_drop(ev->cfg.store, ev->cfg.node_id, c->sid, rm->id);
	if (rc == 0)
		rc = vtp_store_room_event_add(ev->cfg.store, rm->id, PRESENCE_EVENT,
					      ev->presence_payload);
	if (rc)
		VTP_WARN("socket.io: room presence not written: %s", vtp_strerror(rc));
}

static void broadcast(room *rm, const char *event, json_t *payload) /* consumes */
{
	char *body;
	vtp_buf b;

	json_t *arr = json_pack("[so]", event, payload);

	body = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!body)
		return;
	vtp_buf_init(&b, MAX_QUEUED);
	if (vtp_buf_appends(&b, "42") == 0 && vtp_buf_appends(&b, body) == 0) {
		for (size_t i = 0; i < rm->n; i++) {
			send_text(rm->members[i], b.data, b.len);
			update_interest(rm->members[i]);
		}
	}
	vtp_buf_free(&b);
	free(body);
}

/* Someone came or went: the room hears it at the next tick (at most once a
 * second for big rooms), so a join storm costs one list per tick, not one
 * per join. */
static void members_changed(room *rm)
{
	rm->members_dirty = true;
}

static void members_flush(vtp_events *ev, int64_t now)
{
	for (int b = 0; b < ROOM_BUCKETS; b++) {
		for (room *rm = ev->rooms[b]; rm; rm = rm->next) {
			if (!rm->members_dirty ||
			    (rm->n > MEMBERS_LISTED && now - rm->members_sent_ms < 1000))
				continue;
			rm->members_dirty = false;
			rm->members_sent_ms = now;
			broadcast(rm, "room-members", members_json(ev, rm));
		}
	}
}

/* Puts c into room id (as a watcher or one of the people); *changed: the
 * room's people changed. */
static room *room_join(conn *c, const char *id, bool watch, bool *changed)
{
	vtp_events *ev = c->ev;
	room **slot = room_slot(ev, id), *rm = *slot;
	int k;

	if (!rm) {
		rm = vtp_calloc(1, sizeof(*rm));
		rm->id = vtp_strdup(id);
		*slot = rm;
		ev->nrooms++;
		atomic_store(&ev->m_rooms, ev->nrooms);
	}
	k = conn_room_index(c, rm);
	if (k >= 0) {
		*changed = c->watching[k] != watch;
		c->watching[k] = watch;
		if (*changed)
			presence_set(c, rm, !watch);
		return rm;
	}
	*changed = !watch;
	if (rm->n == rm->cap) {
		rm->cap = rm->cap ? rm->cap * 2 : 4;
		rm->members = vtp_realloc(rm->members, rm->cap * sizeof(*rm->members));
	}
	rm->members[rm->n++] = c;
	c->watching[c->nrooms] = watch;
	c->rooms[c->nrooms++] = rm;
	if (!watch)
		presence_set(c, rm, true);
	return rm;
}

/* Takes c out of rm; frees rm when empty, else tells the others. */
static void room_leave(conn *c, room *rm, bool announce)
{
	vtp_events *ev = c->ev;
	int k = conn_room_index(c, rm);
	bool watcher;

	if (k < 0)
		return;
	watcher = c->watching[k];
	c->nrooms--;
	c->rooms[k] = c->rooms[c->nrooms];
	c->watching[k] = c->watching[c->nrooms];
	for (size_t i = 0; i < rm->n; i++) {
		if (rm->members[i] == c) {
			rm->members[i] = rm->members[--rm->n];
			break;
		}
	}
	if (!watcher)
		presence_set(c, rm, false);
	if (rm->n == 0) {
		room **slot = room_slot(ev, rm->id);

		*slot = rm->next;
		vtp_free(rm->members);
		vtp_free(rm->id);
		vtp_free(rm);
		ev->nrooms--;
		atomic_store(&ev->m_rooms, ev->nrooms);
		return;
	}
	if (announce && !watcher)
		members_changed(rm);
}

/* ---- commands ------------------------------------------------------------- */

/* A room id as REST takes it: 1..255 characters of UTF-8 text. */
static const char *room_arg(conn *c, long ack, json_t *arg)
{
	json_t *v = json_is_object(arg) ? json_object_get(arg, "roomId") : NULL;
	const char *id = json_string_value(v);

	if (!id || !*id || !vtp_utf8_valid(id, true) || vtp_utf8_length(id) > 255) {
		send_ack(c, ack, json_pack("{s{ssssss}}", "error", "code", "invalid_input", "message",
					   "roomId must be 1..255 characters of UTF-8 text",
					   "field", "roomId"));
		return NULL;
	}
	return id;
}

static json_t *active_json(vtp_events *ev, const char *room_id)
{
	vtp_recording r;
	char t[VTP_TIME_BUFLEN];
	json_t *j;

	if (vtp_recordings_active_in_room(ev->cfg.recordings, room_id, &r) != 0)
		return json_null();
	vtp_time_format(r.created_at, t);
	j = json_pack("{ssssssssss}", "recordingId", r.id, "title", r.title ? r.title : "",
		      "startedBy", r.started_by, "startedAt", t, "status", r.status);
	vtp_recording_clear(&r);
	return j;
}

static void cmd_join(conn *c, long ack, json_t *arg)
{
	const char *id = room_arg(c, ack, arg);
	bool watch = json_is_true(json_object_get(arg, "watch")), changed;
	json_t *reply;
	room *rm;

	if (!id)
		return;
	rm = room_find(c->ev, id);
	if ((!rm || conn_room_index(c, rm) < 0) && c->nrooms >= MAX_ROOMS_PER_SOCKET) {
		ack_error(c, ack, "too_many_rooms", "a connection may be in at most %d rooms",
			  MAX_ROOMS_PER_SOCKET);
		return;
	}
	rm = room_join(c, id, watch, &changed);
	reply = members_json(c->ev, rm);
	json_object_set_new(reply, "recording", active_json(c->ev, id));
	send_ack(c, ack, reply);
	if (changed)
		members_changed(rm);
}

static void cmd_leave(conn *c, long ack, json_t *arg)
{
	const char *id = room_arg(c, ack, arg);
	room *rm;

	if (!id)
		return;
	rm = room_find(c->ev, id);
	if (rm)
		room_leave(c, rm, true);
	send_ack(c, ack, json_pack("{ss}", "roomId", id));
}

/* The session's authority is gone (user deleted, token expired): it says
 * why (a session-ended event, then a Socket.IO DISCONNECT, after which the
 * stock client does not reconnect by itself), leaves its rooms at once and
 * closes. */
static void end_session(conn *c, const char *code, const char *message)
{
	if (!c->connected)
		return;
	VTP_INFO("socket.io %s (%s): session ended: %s", c->sid, c->ip, code);
	send_packet(c, "42", json_pack("[s{ssss}]", "session-ended", "code", code, "message",
				       message));
	send_str(c, "41");
	c->connected = false;
	while (c->nrooms > 0)
		room_leave(c, c->rooms[c->nrooms - 1], true);
	close_after_queue(c, WSLAY_CODE_POLICY_VIOLATION, code);
}

/* Before every command, and every USER_RECHECK_MS for an idle connection:
 * the token unexpired and its user still there, re-read from the store at
 * least every USER_RECHECK_MS (force: now), as REST checks them. A changed
 * role or name is taken over (and the rooms hear the new member list); a
 * deleted user or an expired token ends the session, after an error ack to
 * the command (ack >= 0) that found it. */
static bool session_valid(conn *c, long ack, bool force)
{
	int64_t now = vtp_now_ms();
	bool changed;
	vtp_user u;
	int rc;

	if (c->token_exp && now / 1000 >= c->token_exp) {
		ack_error(c, ack, "unauthorized", "the token has expired; connect again with a new one");
		end_session(c, "token_expired", "the token has expired; connect again with a new one");
		return false;
	}
	if (!force && now >= c->user_checked_ms && now - c->user_checked_ms < USER_RECHECK_MS)
		return true;
	rc = vtp_store_user_by_id(c->ev->cfg.store, c->user.id, &u);
	if (rc == VTP_ENOTFOUND) {
		ack_error(c, ack, "unauthorized", "the token's user no longer exists");
		end_session(c, "user_deleted", "the user of this session no longer exists");
		return false;
	}
	if (rc) { /* the store's trouble, not the user's: try again later */
		ack_error(c, ack, "unavailable", "could not check the token's user");
		return false;
	}
	c->user_checked_ms = now;
	changed = strcmp(u.role ? u.role : "", c->user.role ? c->user.role : "") != 0 ||
		  strcmp(u.full_name ? u.full_name : "", c->user.full_name ? c->user.full_name : "") != 0;
	vtp_user_clear(&c->user);
	c->user = u;
	snprintf(c->actor.role, sizeof(c->actor.role), "%s", u.role ? u.role : "");
	for (int i = 0; changed && i < c->nrooms; i++) {
		if (!c->watching[i]) {
			presence_set(c, c->rooms[i], true);
			members_changed(c->rooms[i]);
		}
	}
	return true;
}

static void cmd_start(conn *c, long ack, json_t *arg)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_start_request req;
	vtp_recording rec;
	char started[VTP_TIME_BUFLEN];

	if (!session_valid(c, ack, true))
		return;
	if (!json_is_object(arg)) {
		ack_error(c, ack, "invalid_json", "recording-start takes an object like the REST body");
		return;
	}
	if (vtp_start_request_parse(arg, &req, &fail) ||
	    vtp_recordings_start(c->ev->cfg.recordings, &c->actor, &req, &rec, &fail)) {
		ack_fail(c, ack, &fail);
		return;
	}
	vtp_time_format(rec.created_at, started);
	send_ack(c, ack, json_pack("{ss ss ss ss so}", "recordingId", rec.id, "status", rec.status,
				   "startedAt", started, "title", rec.title, "recording",
				   vtp_recording_json(&rec)));
	vtp_recording_clear(&rec);
}

static void cmd_stop(conn *c, long ack, json_t *arg)
{
	vtp_fail fail = VTP_FAIL_INIT;
	const char *id = json_string_value(json_is_object(arg) ? json_object_get(arg, "recordingId")
							       : NULL);
	vtp_recording rec;

	if (!session_valid(c, ack, true))
		return;
	if (!id || !*id) {
		send_ack(c, ack, json_pack("{s{ssssss}}", "error", "code", "invalid_input", "message",
					   "recordingId is required", "field", "recordingId"));
		return;
	}
	if (vtp_recordings_stop(c->ev->cfg.recordings, &c->actor, id, &rec, &fail)) {
		ack_fail(c, ack, &fail);
		return;
	}
	send_ack(c, ack, vtp_recording_json(&rec));
	vtp_recording_clear(&rec);
}

static void on_event(conn *c, long ack, json_t *data)
{
	const char *name = json_string_value(json_array_get(data, 0));
	json_t *arg = json_array_get(data, 1);

	atomic_fetch_add(&c->ev->m_commands, 1);
	if (!name) {
		reject(c, DROP_MALFORMED);
		return;
	}
	/* start and stop re-read the user themselves, always */
	if (strcmp(name, "recording-start") != 0 && strcmp(name, "recording-stop") != 0 &&
	    !session_valid(c, ack, false))
		return;
	if (strcmp(name, "join-room") == 0)
		cmd_join(c, ack, arg);
	else if (strcmp(name, "leave-room") == 0)
		cmd_leave(c, ack, arg);
	else if (strcmp(name, "recording-start") == 0)
		cmd_start(c, ack, arg);
	else if (strcmp(name, "recording-stop") == 0)
		cmd_stop(c, ack, arg);
	else
		ack_error(c, ack, "unknown_event",
			  "unknown event; this server takes join-room, leave-room, "
			  "recording-start and recording-stop");
}

/* Socket.IO CONNECT to "/" with {token}: the token's user must exist. A
 * second CONNECT on a connected socket may only renew the token of the same
 * user (a later expiry); one that fails, or names another user, ends the
 * connection: a socket never changes whose it is. */
static void on_connect(conn *c, json_t *auth)
{
	const char *token = json_string_value(json_object_get(auth, "token"));
	const char *reason = NULL, *why;
	char sub[VTP_UUID_BUFLEN], sid[21], reply[160];
	int64_t exp = 0;
	vtp_user u;
	int rc;

	if (!token) {
		why = "unauthorized: auth.token is required";
		goto refuse;
	}
	rc = vtp_jwt_verify(c->ev->cfg.jwt_key, c->ev->cfg.jwt_key_len, token,
			    vtp_now_ms() / 1000, sub, &exp, &reason);
	if (rc) {
		why = reason && strcmp(reason, "expired") == 0 ? "unauthorized: the token has expired"
		      : reason && strcmp(reason, "not_yet_valid") == 0
			      ? "unauthorized: the token is not valid yet (nbf)"
			      : "unauthorized: invalid token";
		goto refuse;
	}
	if (c->connected && strcmp(sub, c->user.id) != 0) {
		why = "unauthorized: this connection belongs to another user";
		goto refuse;
	}
	rc = vtp_store_user_by_id(c->ev->cfg.store, sub, &u);
	if (rc) {
		why = rc == VTP_ENOTFOUND ? "unauthorized: the token's user no longer exists"
					  : "unavailable: could not check the token's user";
		goto refuse;
	}
	vtp_user_clear(&c->user);
	c->user = u;
	c->user_checked_ms = vtp_now_ms();
	c->token_exp = exp;
	snprintf(c->actor.user_id, sizeof(c->actor.user_id), "%s", u.id);
	snprintf(c->actor.role, sizeof(c->actor.role), "%s", u.role ? u.role : "");
	c->actor.ip = c->ip;
	c->actor.user_agent = c->ua;
	c->connected = true;
	vtp_random_hex(sid, 10);
	snprintf(reply, sizeof(reply), "40{\"sid\":\"%s\"}", sid);
	send_str(c, reply);
	return;
refuse:
	atomic_fetch_add(&c->ev->m_auth_failed, 1);
	send_packet(c, "44", json_pack("{ss}", "message", why)); /* CONNECT_ERROR */
	if (c->connected) /* a second CONNECT that fails: nobody's connection any more */
		reject(c, DROP_NOT_CONNECTED);
}

/* One Socket.IO packet (after the Engine.IO "4"), parsed. */
static void on_sio(conn *c, vtp__sio_packet *pk)
{
	switch (pk->type) {
	case '0': /* CONNECT */
		if (pk->other_ns) {
			char reply[160];

			snprintf(reply, sizeof(reply),
				 "44%.*s,{\"message\":\"Invalid namespace: this server has only /\"}",
				 (int)pk->ns_len, pk->ns);
			send_str(c, reply);
		} else {
			on_connect(c, pk->data);
		}
		break;
	case '1': /* DISCONNECT */
		if (!pk->other_ns)
			c->dead = true;
		break;
	case '2': /* EVENT */
		if (pk->other_ns) {
			drop(c, DROP_NOT_CONNECTED); /* never connected there */
		} else if (!c->connected) {
			drop(c, DROP_NOT_CONNECTED);
			ack_error(c, pk->ack, "unauthorized", "connect to / with auth.token first");
		} else if (!json_is_array(pk->data) || json_array_size(pk->data) < 1) {
			ack_error(c, pk->ack, "invalid_input", "an event is [name, argument]");
			reject(c, DROP_MALFORMED);
		} else {
			on_event(c, pk->ack, pk->data);
		}
		break;
	default: /* '3' ACK: we never ask for one */
		break;
	}
}

/* One Engine.IO packet (one WebSocket text message). */
static void on_eio(conn *c, const uint8_t *msg, size_t len)
{
	vtp__sio_packet pk;
	int rc = vtp__sio_parse((const char *)msg, len, &pk);

	if (rc == VTP__SIO_BINARY) {
		reject(c, DROP_BINARY);
		return;
	}
	if (rc == VTP__SIO_BAD_JSON) {
		ack_error(c, pk.ack, "invalid_json", "not valid JSON: %s", pk.json_error);
		reject(c, DROP_MALFORMED);
		return;
	}
	if (rc != VTP__SIO_OK) {
		reject(c, DROP_MALFORMED);
		return;
	}
	switch (pk.eio_type) {
	case '2': /* a client's ping (Engine.IO 3 habit): answer */
		send_str(c, "3");
		break;
	case '3': /* pong */
		c->awaiting_pong = false;
		break;
	case '4':
		on_sio(c, &pk);
		break;
	case '1': /* close */
		c->dead = true;
		break;
	default: /* 5 upgrade, 6 noop */
		break;
	}
	vtp__sio_packet_clear(&pk);
}

/* ---- wslay callbacks ------------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user)
{
	conn *c = user;
	ssize_t n;

	(void)flags;
	/* A client that sends faster than its commands run must not keep the
	 * thread from everyone else: after its share, the rest of its bytes
	 * wait in the socket (epoll is level-triggered) for the next turn. */
	if (c->dead || c->turn_messages >= TURN_MESSAGES) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (c->pre_off < c->pre_len) {
		size_t k = c->pre_len - c->pre_off;

		if (k > len)
			k = len;
		memcpy(buf, c->pre + c->pre_off, k);
		c->pre_off += k;
		return (ssize_t)k;
	}
	do
		n = recv(c->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	conn *c = user;
	ssize_t n;

	/* wslay says when more frames follow: one segment for a burst */
	do
		n = send(c->fd, data, len, MSG_NOSIGNAL | (flags & WSLAY_MSG_MORE ? MSG_MORE : 0));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
						   ? WSLAY_ERR_WOULDBLOCK
						   : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return n;
}

static void ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		   void *user)
{
	conn *c = user;

	(void)ctx;
	if (c->dead)
		return;
	c->turn_messages++;
	if (arg->opcode == WSLAY_TEXT_FRAME)
		on_eio(c, arg->msg, arg->msg_length);
	else if (arg->opcode == WSLAY_BINARY_FRAME)
		reject(c, DROP_BINARY);
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(conn *c)
{
	vtp_events *ev = c->ev;

	while (c->nrooms > 0)
		room_leave(c, c->rooms[c->nrooms - 1], true);
	epoll_ctl(ev->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else
		ev->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ev->nconns--;
	atomic_store(&ev->m_connections, ev->nconns);
	wslay_event_context_free(c->ws);
	c->release(c->release_arg); /* the fd is the HTTP layer's to close */
	vtp_user_clear(&c->user);
	vtp_free(c->pre);
	vtp_free(c->ua);
	vtp_free(c);
}

/* After any step on c: send what is queued, close when finished. */
static void conn_settle(conn *c)
{
	if (!c->dead && wslay_event_send(c->ws) != 0)
		c->dead = true;
	if (!c->dead && c->close_code && wslay_event_get_queued_msg_count(c->ws) == 0) {
		if (wslay_event_queue_close(c->ws, c->close_code, (const uint8_t *)c->close_reason,
					    strlen(c->close_reason)) != 0 ||
		    wslay_event_send(c->ws) != 0)
			c->dead = true;
		c->close_code = 0;
	}
	if (c->dead || (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws))) {
		conn_close(c);
		return;
	}
	update_interest(c);
}

static void conn_open(vtp_events *ev, adoption *a)
{
	static const struct wslay_event_callbacks cb = {ws_recv, ws_send, NULL, NULL,
							NULL,    NULL,    ws_msg};
	char open[200];
	struct epoll_event e;
	conn *c = vtp_calloc(1, sizeof(*c));
	int fl;

	c->ev = ev;
	c->fd = a->fd;
	c->release = a->release;
	c->release_arg = a->arg;
	c->pre = a->extra;
	c->pre_len = a->extra_len;
	snprintf(c->ip, sizeof(c->ip), "%s", a->ip);
	c->ua = a->ua;
	c->opened_ms = c->ping_ms = vtp_now_ms();
	vtp_random_hex(c->sid, 10);
	fl = fcntl(c->fd, F_GETFL);
	if (fl >= 0)
		fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
	/* small messages, each awaited: no Nagle delay (the HTTP server may
	 * have left the socket corked or delaying) */
	setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &(int){0}, sizeof(int));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if (wslay_event_context_server_init(&c->ws, &cb, c) != 0) {
		c->release(c->release_arg);
		vtp_free(c->pre);
		vtp_free(c->ua);
		vtp_free(c);
		return;
	}
	wslay_event_config_set_max_recv_msg_length(c->ws, MAX_MESSAGE);
	c->next = ev->conns;
	if (ev->conns)
		ev->conns->prev = c;
	ev->conns = c;
	if (ev->nconns++ == 0)
		ev->floor_ms = vtp_now_ms(); /* the journal is read from now on */
	atomic_store(&ev->m_connections, ev->nconns);
	atomic_fetch_add(&ev->m_opened, 1);
	e.events = EPOLLIN | EPOLLRDHUP;
	e.data.ptr = c;
	c->interest = EPOLLIN;
	if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, c->fd, &e) != 0) {
		c->dead = true;
		conn_close(c);
		return;
	}
	snprintf(open, sizeof(open),
		 "0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":%d,\"pingTimeout\":%d,"
		 "\"maxPayload\":%d}",
		 c->sid, ev->cfg.ping_interval_ms, ev->cfg.ping_interval_ms, MAX_MESSAGE);
	send_str(c, open);
	/* the client may have sent its first frames with the request */
	if (c->pre_len && wslay_event_recv(c->ws) != 0)
		c->dead = true;
	conn_settle(c);
}

/* ---- the room event journal ---------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool seen_has(const seen_ids *s, const char *id)
{
	return s->n && bsearch(id, s->ids, s->n, VTP_UUID_BUFLEN, cmp_id) != NULL;
}

static void seen_add(seen_ids *s, const char *id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->ids = vtp_realloc(s->ids, s->cap * VTP_UUID_BUFLEN);
	}
	snprintf(s->ids[s->n++], VTP_UUID_BUFLEN, "%s", id);
}

/* An event is new when the previous poll (same window, a little earlier)
 * did not return it: late commits are caught as long as they are younger
 * than the window. */
typedef struct pending_event {
	char *room_id, *event, *payload;
} pending_event;

typedef struct journal_read {
	vtp_events *ev;
	int64_t skew; /* the database's clock minus ours */
	pending_event *items;
	size_t n, cap;
} journal_read;

/* Collects the new events of rooms with clients here; they are sent only
 * once the whole read succeeded, so a failed read sends nothing twice. */
static int on_journal(void *ctx, const vtp_room_event *e)
{
	journal_read *jr = ctx;
	vtp_events *ev = jr->ev;
	pending_event *pe;

	seen_add(&ev->next_seen, e->id);
	if (seen_has(&ev->seen, e->id) || e->created_at - jr->skew < ev->floor_ms ||
	    !room_find(ev, e->room_id))
		return 0;
	if (strcmp(e->event, PRESENCE_EVENT) == 0) {
		/* another node's people changed: ours hear the new list */
		if (strcmp(e->payload, ev->presence_payload) != 0)
			members_changed(room_find(ev, e->room_id));
		return 0;
	}
	if (jr->n == jr->cap) {
		jr->cap = jr->cap ? jr->cap * 2 : 16;
		jr->items = vtp_realloc(jr->items, jr->cap * sizeof(*jr->items));
	}
	pe = &jr->items[jr->n++];
	pe->room_id = vtp_strdup(e->room_id);
	pe->event = vtp_strdup(e->event);
	pe->payload = vtp_strdup(e->payload);
	return 0;
}

static void poll_journal(vtp_events *ev, int64_t now)
{
	journal_read jr = {ev, 0, NULL, 0, 0};
	int64_t db_now = now;
	seen_ids t;
	int rc;

	ev->last_poll_ms = now;
	/* every server prunes, clients or not */
	if (now - ev->last_prune_ms >= PRUNE_EVERY_MS) {
		ev->last_prune_ms = now;
		rc = vtp_store_room_events_prune(ev->cfg.store, now - JOURNAL_KEEP_MS);
		if (rc)
			VTP_WARN("socket.io: old room events not pruned: %s", vtp_strerror(rc));
	}
	if (ev->nconns == 0) {
		ev->seen.n = 0;
		return;
	}
	ev->next_seen.n = 0;
	/* the journal is stamped by the database's clock (vtp_store_clock),
	 * which may not be ours: the window is by its clock */
	rc = vtp_store_clock(ev->cfg.store, &db_now);
	jr.skew = db_now - now;
	if (rc == 0)
		rc = vtp_store_room_events_since(ev->cfg.store, db_now - JOURNAL_WINDOW_MS,
						 on_journal, &jr);
	if (rc) {
		VTP_WARN("socket.io: room events not read: %s", vtp_strerror(rc));
	} else {
		if (ev->next_seen.n > 1)
			qsort(ev->next_seen.ids, ev->next_seen.n, VTP_UUID_BUFLEN, cmp_id);
		t = ev->seen;
		ev->seen = ev->next_seen;
		ev->next_seen = t;
	}
	for (size_t i = 0; i < jr.n; i++) {
		pending_event *pe = &jr.items[i];
		json_t *payload = rc ? NULL : json_loads(pe->payload, 0, NULL);
		room *rm = payload ? room_find(ev, pe->room_id) : NULL;

		if (rm) {
			atomic_fetch_add(&ev->m_broadcasts, 1);
			broadcast(rm, pe->event, payload);
		} else {
			json_decref(payload);
		}
		vtp_free(pe->room_id);
		vtp_free(pe->event);
		vtp_free(pe->payload);
	}
	vtp_free(jr.items);
	for (conn *c = ev->conns, *next; c; c = next) {
		next = c->next;
		conn_settle(c);
	}
}

/* Pings, pong deadlines, connections that never said CONNECT or whose
 * token expired or user is gone, bytes that came with the upgrade still to
 * read. Users are re-read RECHECKS_PER_TICK at a time at most (256 store
 * reads a second): up to about 500 idle connections each is re-checked
 * every USER_RECHECK_MS, beyond that proportionally less often (every 40 s
 * with ten thousand), while a command always re-checks its own. */
/* Shared presence: this node's rows refreshed, the rows of nodes gone
 * silent expired (their rooms, on every node, hear the new list), and ours put back
 * when someone expired them (the database was away longer than the
 * expiry). */
typedef struct expired_rooms {
	vtp_events *ev;
	char **ids;
	size_t n, cap;
} expired_rooms;

static int on_expired(void *ctx, const char *room_id)
{
	expired_rooms *er = ctx;

	for (size_t i = 0; i < er->n; i++)
		if (strcmp(er->ids[i], room_id) == 0)
			return 0;
	if (er->n == er->cap) {
		er->cap = er->cap ? er->cap * 2 : 8;
		er->ids = vtp_realloc(er->ids, er->cap * sizeof(*er->ids));
	}
	er->ids[er->n++] = vtp_strdup(room_id);
	return 0;
}

static void presence_beat(vtp_events *ev, int64_t now)
{
	expired_rooms er = {ev, NULL, 0, 0};
	int64_t kept, mine = 0;
	int rc;

	if (!ev->cfg.shared_presence || now - ev->last_beat_ms < PRESENCE_BEAT_MS)
		return;
	ev->last_beat_ms = now;
	rc = vtp_store_presence_heartbeat(ev->cfg.store, ev->cfg.node_id, PRESENCE_EXPIRE_MS,
					  &kept, on_expired, &er);
	/* whoever expires a dead node's rows tells every node with people in
	 * those rooms (this one included: the payload is not ours) */
	for (size_t i = 0; i < er.n; i++) {
		if (rc == 0 &&
		    vtp_store_room_event_add(ev->cfg.store, er.ids[i], PRESENCE_EVENT,
					     "\"expired\"") != 0)
			VTP_WARN("socket.io: expired room presence not announced");
		vtp_free(er.ids[i]);
	}
	vtp_free(er.ids);
	if (rc) {
		VTP_WARN("socket.io: room presence heartbeat failed: %s", vtp_strerror(rc));
		return;
	}
	for (conn *c = ev->conns; c; c = c->next)
		for (int i = 0; i < c->nrooms; i++)
			mine += !c->watching[i];
	if (kept != mine) {
		/* rows lost (expired while the database was away) or left over
		 * (a drop that failed): write ours again from what is here */
		if (vtp_store_presence_drop(ev->cfg.store, ev->cfg.node_id, NULL, NULL) != 0)
			return;
		for (conn *c = ev->conns; c; c = c->next)
			for (int i = 0; i < c->nrooms; i++)
				if (!c->watching[i])
					presence_set(c, c->rooms[i], true);
	}
	if (kept != mine)
		for (int b = 0; b < ROOM_BUCKETS; b++)
			for (room *rm = ev->rooms[b]; rm; rm = rm->next)
				members_changed(rm);
}

static void tick(vtp_events *ev, int64_t now)
{
	int rechecks = 0;

	for (conn *c = ev->conns, *next; c; c = next) {
		next = c->next;
		/* a deleted user is noticed without waiting for a command */
		if (c->connected && !c->dead && rechecks < RECHECKS_PER_TICK &&
		    (now < c->user_checked_ms || now - c->user_checked_ms >= USER_RECHECK_MS)) {
			rechecks++;
			session_valid(c, -1, false);
		}
		if (c->pre_off < c->pre_len && !c->dead) {
			c->turn_messages = 0;
			if (wslay_event_recv(c->ws) != 0)
				c->dead = true;
		}
		if (!c->connected && now - c->opened_ms > CONNECT_TIMEOUT_MS) {
			c->dead = true;
		} else if (c->connected && c->token_exp && now / 1000 >= c->token_exp) {
			/* as REST: an expired token is no longer anyone's */
			session_valid(c, -1, false);
		} else if (c->awaiting_pong) {
			if (now - c->ping_ms > ev->cfg.ping_interval_ms) {
				VTP_INFO("socket.io %s (%s): no pong, closed", c->sid, c->ip);
				c->dead = true;
			}
		} else if (now - c->ping_ms >= ev->cfg.ping_interval_ms) {
			send_str(c, "2");
			c->awaiting_pong = true;
			c->ping_ms = now;
		}
		conn_settle(c);
	}
}

/* ---- the thread ----------------------------------------------------------- */

static void take_adoptions(vtp_events *ev)
{
	adoption *a, *rev = NULL, *next;

	pthread_mutex_lock(&ev->mu);
	a = ev->pending;
	ev->pending = NULL;
	ev->npending = 0;
	pthread_mutex_unlock(&ev->mu);
	for (; a; a = next) { /* pushed newest first: reverse */
		next = a->next;
		a->next = rev;
		rev = a;
	}
	for (a = rev; a; a = next) {
		next = a->next;
		conn_open(ev, a);
		vtp_free(a);
	}
}

static void *events_main(void *arg)
{
	vtp_events *ev = arg;
	struct epoll_event evs[64];
	int64_t next_tick = vtp_now_ms() + POLL_MS;

	pthread_setname_np(pthread_self(), "vtp-events");
	/* rows a previous run of this node left (it was killed) */
	if (ev->cfg.shared_presence &&
	    vtp_store_presence_drop(ev->cfg.store, ev->cfg.node_id, NULL, NULL) != 0)
		VTP_WARN("socket.io: this node's old room presence not cleared");
	for (;;) {
		int64_t now = vtp_now_ms();
		int64_t due = next_tick;
		int n, timeout;
		bool stop;

		if (atomic_load(&ev->journal_dirty) && ev->last_poll_ms + DIRTY_POLL_MS < due)
			due = ev->last_poll_ms + DIRTY_POLL_MS;
		timeout = due > now ? (int)(due - now) : 0;

		n = epoll_wait(ev->epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++) {
			conn *c = evs[i].data.ptr;

			if (!c) { /* the wake eventfd */
				uint64_t v;

				if (read(ev->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					VTP_WARN("socket.io: wake read failed: %s", strerror(errno));
				continue;
			}
			c->turn_messages = 0;
			if (!wslay_event_want_read(c->ws)) {
				/* not reading (closing): a hangup or error ends it */
				if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					c->dead = true;
			} else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				if (wslay_event_recv(c->ws) != 0)
					c->dead = true;
			}
			conn_settle(c);
			/* c may be gone: later entries never point at it, since
			 * one fd appears once per epoll_wait */
		}
		pthread_mutex_lock(&ev->mu);
		stop = ev->stopping;
		pthread_mutex_unlock(&ev->mu);
		if (stop)
			break;
		take_adoptions(ev);
		now = vtp_now_ms();
		if (now >= next_tick) {
			atomic_store(&ev->journal_dirty, false);
			tick(ev, now);
			presence_beat(ev, now);
			members_flush(ev, now);
			poll_journal(ev, now);
			next_tick = now + POLL_MS;
		} else if (now - ev->last_poll_ms >= DIRTY_POLL_MS &&
			   atomic_exchange(&ev->journal_dirty, false)) {
			poll_journal(ev, now);
		}
	}
	/* shared presence: this node's people leave at once, in one statement
	 * rather than one per socket and room; every room hears it */
	if (ev->cfg.shared_presence) {
		ev->presence_off = true;
		if (vtp_store_presence_drop(ev->cfg.store, ev->cfg.node_id, NULL, NULL) != 0)
			VTP_WARN("socket.io: room presence not cleared; it expires in %d s",
				 PRESENCE_EXPIRE_MS / 1000);
		for (int b = 0; b < ROOM_BUCKETS; b++)
			for (room *rm = ev->rooms[b]; rm; rm = rm->next)
				vtp_store_room_event_add(ev->cfg.store, rm->id, PRESENCE_EVENT,
							 ev->presence_payload);
	}
	while (ev->conns) {
		conn *c = ev->conns;

		wslay_event_queue_close(c->ws, WSLAY_CODE_GOING_AWAY, NULL, 0);
		wslay_event_send(c->ws);
		c->dead = true;
		conn_close(c);
	}
	/* none can arrive any more: release those that came meanwhile unread */
	pthread_mutex_lock(&ev->mu);
	for (adoption *a = ev->pending, *next; a; a = next) {
		next = a->next;
		a->release(a->arg);
		vtp_free(a->extra);
		vtp_free(a->ua);
		vtp_free(a);
	}
	ev->pending = NULL;
	pthread_mutex_unlock(&ev->mu);
	return NULL;
}

vtp_events *vtp_events_start(const vtp_events_config *cfg, char *err, size_t errlen)
{
	vtp_events *ev = vtp_calloc(1, sizeof(*ev));
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};

	ev->cfg = *cfg;
	if (ev->cfg.shared_presence && !ev->cfg.node_id)
		ev->cfg.shared_presence = false;
	snprintf(ev->presence_payload, sizeof(ev->presence_payload), "\"%s\"",
		 ev->cfg.node_id ? ev->cfg.node_id : "");
	if (ev->cfg.ping_interval_ms <= 0)
		ev->cfg.ping_interval_ms = 25000;
	if (ev->cfg.max_connections <= 0)
		ev->cfg.max_connections = 10000;
	pthread_mutex_init(&ev->mu, NULL);
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	ev->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ev->epfd < 0 || ev->wakefd < 0 || epoll_ctl(ev->epfd, EPOLL_CTL_ADD, ev->wakefd, &e)) {
		snprintf(err, errlen, "events: cannot set up epoll: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&ev->thread, NULL, events_main, ev) != 0) {
		snprintf(err, errlen, "events: cannot start the thread");
		goto fail;
	}
	ev->started = true;
	return ev;
fail:
	if (ev->epfd >= 0)
		close(ev->epfd);
	if (ev->wakefd >= 0)
		close(ev->wakefd);
	pthread_mutex_destroy(&ev->mu);
	vtp_free(ev);
	return NULL;
}

static void wake(vtp_events *ev)
{
	uint64_t one = 1;

	if (write(ev->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VTP_WARN("socket.io: wake failed: %s", strerror(errno));
}

int vtp_events_adopt(vtp_events *ev, int fd, const void *extra, size_t extra_len,
		     const char *ip, const char *user_agent, void (*release)(void *arg),
		     void *arg)
{
	adoption *a;

	pthread_mutex_lock(&ev->mu);
	if (ev->stopping || atomic_load(&ev->m_connections) + ev->npending >= ev->cfg.max_connections) {
		pthread_mutex_unlock(&ev->mu);
		release(arg);
		return -1;
	}
	a = vtp_calloc(1, sizeof(*a));
	a->fd = fd;
	if (extra_len) {
		a->extra = vtp_malloc(extra_len);
		memcpy(a->extra, extra, extra_len);
		a->extra_len = extra_len;
	}
	snprintf(a->ip, sizeof(a->ip), "%s", ip ? ip : "");
	a->ua = user_agent ? vtp_strdup(user_agent) : NULL;
	a->release = release;
	a->arg = arg;
	a->next = ev->pending;
	ev->pending = a;
	ev->npending++;
	pthread_mutex_unlock(&ev->mu);
	wake(ev);
	return 0;
}

void vtp_events_notify(void *arg)
{
	vtp_events *ev = arg;

	if (ev && !atomic_exchange(&ev->journal_dirty, true))
		wake(ev);
}

void vtp_events_stop(vtp_events *ev)
{
	if (!ev || !ev->started)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->stopping = true;
	pthread_mutex_unlock(&ev->mu);
	wake(ev);
	pthread_join(ev->thread, NULL);
	ev->started = false;
}

void vtp_events_free(vtp_events *ev)
{
	if (!ev)
		return;
	vtp_events_stop(ev);
	close(ev->epfd);
	close(ev->wakefd);
	pthread_mutex_destroy(&ev->mu);
	vtp_free(ev->seen.ids);
	vtp_free(ev->next_seen.ids);
	vtp_free(ev);
}

void vtp_events_metrics(vtp_events *ev, vtp_buf *out)
{
	if (!ev)
		return;
	vtp_buf_appendf(out,
			"# HELP vtp_events_connections Socket.IO connections open on this node.\n"
			"# TYPE vtp_events_connections gauge\n"
			"vtp_events_connections %lld\n"
			"# HELP vtp_events_rooms Rooms with at least one Socket.IO client here.\n"
			"# TYPE vtp_events_rooms gauge\n"
			"vtp_events_rooms %lld\n"
			"# HELP vtp_events_connections_total Socket.IO connections accepted.\n"
			"# TYPE vtp_events_connections_total counter\n"
			"vtp_events_connections_total %llu\n"
			"# HELP vtp_events_broadcasts_total Room events sent to rooms.\n"
			"# TYPE vtp_events_broadcasts_total counter\n"
			"vtp_events_broadcasts_total %llu\n"
			"# HELP vtp_events_commands_total Events received from clients.\n"
			"# TYPE vtp_events_commands_total counter\n"
			"vtp_events_commands_total %llu\n"
			"# HELP vtp_events_auth_failed_total Socket.IO CONNECTs refused.\n"
			"# TYPE vtp_events_auth_failed_total counter\n"
			"vtp_events_auth_failed_total %llu\n"
			"# HELP vtp_events_dropped_total Client packets dropped, and clients dropped for reading too slowly.\n"
			"# TYPE vtp_events_dropped_total counter\n",
			(long long)atomic_load(&ev->m_connections), (long long)atomic_load(&ev->m_rooms),
			(unsigned long long)atomic_load(&ev->m_opened),
			(unsigned long long)atomic_load(&ev->m_broadcasts),
			(unsigned long long)atomic_load(&ev->m_commands),
			(unsigned long long)atomic_load(&ev->m_auth_failed));
	for (int i = 0; i < DROP_N; i++)
		vtp_buf_appendf(out, "vtp_events_dropped_total{reason=\"%s\"} %llu\n", drop_names[i],
				(unsigned long long)atomic_load(&ev->m_dropped[i]));
}
