/* The request-head deadline: a request's line and headers must arrive within
 * VTP_HTTP_HEADER_TIMEOUT seconds of the connection opening, or on a
 * kept-alive connection within that much more than the idle time it may
 * wait for its next request (MHD's connection timeout) after the previous
 * response. libmicrohttpd's own connection timeout restarts on every byte,
 * so a client sending its head one byte at a time would otherwise hold a
 * connection (and a slot of the connection limit) for as long as it likes.
 *
 * libmicrohttpd offers no overall bound and no way to close a connection
 * from outside its threads, so a sweep thread does it: each connection is
 * registered when MHD opens it (MHD_OPTION_NOTIFY_CONNECTION), leaves the
 * "head" phase at the first access-handler call, re-enters it when its
 * request completes, and is unregistered when MHD closes it. The sweep
 * answers an overdue connection 408 and shuts its socket down; MHD then sees
 * the end of the stream and closes it the usual way. This is safe because
 * MHD reports a connection closed before it closes the descriptor, and both
 * the report and the sweep hold the registry lock: a descriptor in the
 * registry is open and still that connection's. Nothing is written to a
 * connection that has begun its handler (the flip happens under the lock),
 * nor to a kept-alive one (it may be idle: it is just closed), and an
 * upgraded (WebSocket) connection is never in the head phase. */
#include "api_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"

typedef struct head_conn {
	struct head_conn *prev, *next;
	int fd;
	int64_t since_us;   /* the head phase began */
	bool in_head;
	bool kept_alive;    /* a request was answered before: the next may not have begun */
	bool timed_out;     /* socket shut down */
} head_conn;

struct vtp__headwatch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started, stopping;
	int64_t timeout_us;
	int64_t idle_us;    /* a kept-alive connection's allowance before its next head */
	head_conn *conns;
	atomic_uint_fast64_t timeouts;
};

static head_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void sweep(vtp__headwatch *w, int64_t now_us)
{
	static const char timeout_reply[] =
		"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
		"Content-Type: application/json; charset=utf-8\r\nContent-Length: 81\r\n\r\n"
		"{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request head came too slowly\"}}";

	pthread_mutex_lock(&w->mu);
	for (head_conn *c = w->conns; c; c = c->next) {
		if (!c->in_head || c->timed_out || now_us - c->since_us < w->timeout_us)
			continue;
		/* A kept-alive connection may just be idle: it is closed without a
		 * word, since a 408 there could be read as the answer to a request
		 * the client sends at that moment. A first head gets its 408, best
		 * effort (the client may not be reading; it must not stall us). */
		if (!c->kept_alive && send(c->fd, timeout_reply, sizeof(timeout_reply) - 1,
					   MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing to do: the shutdown below ends it either way */
		}
		shutdown(c->fd, SHUT_RDWR);
		c->timed_out = true;
		atomic_fetch_add(&w->timeouts, 1);
	}
	pthread_mutex_unlock(&w->mu);
}

static void *sweeper_main(void *arg)
{
	vtp__headwatch *w = arg;
	int64_t period_us = w->timeout_us / 4;

	if (period_us > 1000000)
		period_us = 1000000;
	if (period_us < 100000)
		period_us = 100000;
	pthread_setname_np(pthread_self(), "vtp-headwatch");
	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(period_us / 1000000);
		ts.tv_nsec += (long)(period_us % 1000000) * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		if (w->stopping)
			break;
		pthread_mutex_unlock(&w->mu);
		sweep(w, vtp_mono_us());
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

vtp__headwatch *vtp__headwatch_new(int timeout_seconds, int idle_seconds)
{
	vtp__headwatch *w = vtp_calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	w->timeout_us = (int64_t)(timeout_seconds > 0 ? timeout_seconds : 10) * 1000000;
	w->idle_us = (int64_t)(idle_seconds > 0 ? idle_seconds : 0) * 1000000;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->thread, NULL, sweeper_main, w) == 0)
		w->started = true;
	else
		VTP_WARN("could not start the request-head watch: slow request heads are not cut off");
	return w;
}

void vtp__headwatch_stop(vtp__headwatch *w)
{
	if (!w || !w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->started = false;
}

void vtp__headwatch_free(vtp__headwatch *w)
{
	if (!w)
		return;
	vtp__headwatch_stop(w);
	while (w->conns) { /* none are left once MHD has stopped */
		head_conn *c = w->conns;

		w->conns = c->next;
		vtp_free(c);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	vtp_free(w);
}

void vtp__headwatch_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			   enum MHD_ConnectionNotificationCode code)
{
	vtp__headwatch *w = cls;
	head_conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (!ci)
			return;
		c = vtp_calloc(1, sizeof(*c));
		c->fd = ci->connect_fd;
		c->since_us = vtp_mono_us();
		c->in_head = true;
		pthread_mutex_lock(&w->mu);
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		pthread_mutex_unlock(&w->mu);
		*socket_context = c;
		return;
	}
	if (!c) /* MHD_CONNECTION_NOTIFY_CLOSED of one never registered */
		return;
	pthread_mutex_lock(&w->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->mu);
	vtp_free(c);
	*socket_context = NULL;
}

bool vtp__headwatch_head_done(vtp__headwatch *w, struct MHD_Connection *conn)
{
	head_conn *c = conn_of(conn);
	bool ok = true;

	if (!c)
		return true;
	pthread_mutex_lock(&w->mu);
	c->in_head = false;
	ok = !c->timed_out;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

void vtp__headwatch_rearm(vtp__headwatch *w, struct MHD_Connection *conn)
{
	head_conn *c = conn_of(conn);

	if (!c)
		return;
	pthread_mutex_lock(&w->mu);
	c->in_head = true;
	c->kept_alive = true;
	/* idle first (MHD ends a connection idle that long), then the head */
	c->since_us = vtp_mono_us() + w->idle_us;
	pthread_mutex_unlock(&w->mu);
}

uint64_t vtp__headwatch_timeouts(vtp__headwatch *w)
{
	return w ? atomic_load(&w->timeouts) : 0;
}
