/* libmicrohttpd glue: one vtp_req per request, created on the first callback
 * (framing, route, method, auth, content type and declared size are checked
 * there, so bad requests are refused before their body is read), the body collected in
 * a capped buffer, the handler run on the last callback, and the request
 * logged and counted when MHD reports completion. */
#include "api_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"
#include "core/utf8.h"

static void client_ip(struct MHD_Connection *conn, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(out, len, "unknown");
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

static bool set_actor(vtp_req *r);

/* Bearer token -> user. Replies 401 itself and returns false on failure. */
static bool authenticate(vtp_req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	char sub[VTP_UUID_BUFLEN];
	const char *reason = NULL;
	int64_t now, exp = 0;
	int rc;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		vtp__reply_error(r, 401, "unauthorized", NULL,
				 "missing bearer token (Authorization: Bearer <token>)");
		return false;
	}
	h += 7;
	while (*h == ' ')
		h++;
	now = vtp_now_ms();
	if (vtp__authcache_get(r->api->authcache, h, now, &r->user) == 0)
		goto authed;
	rc = vtp_jwt_verify(r->api->cfg.jwt_key, r->api->cfg.jwt_key_len, h,
			    now / 1000, sub, &exp, &reason);
	if (rc) {
		vtp__reply_error(r, 401, "unauthorized", NULL, "%s",
				 reason && strcmp(reason, "expired") == 0 ? "the token has expired"
				 : reason && strcmp(reason, "not_yet_valid") == 0
					 ? "the token is not valid yet (nbf)"
					 : "invalid token");
		return false;
	}
	rc = vtp_store_user_by_id(r->api->cfg.store, sub, &r->user);
	if (rc == VTP_ENOTFOUND) {
		vtp__reply_error(r, 401, "unauthorized", NULL, "the token's user no longer exists");
		return false;
	}
	if (rc) {
		vtp__reply_error(r, rc == VTP_EUNAVAIL ? 503 : 500, NULL, NULL,
				 "could not check the token's user");
		return false;
	}
	vtp__authcache_put(r->api->authcache, h, exp, now, &r->user);
authed:
	return set_actor(r);
}

static bool set_actor(vtp_req *r)
{
	r->authed = true;
	snprintf(r->actor.user_id, sizeof(r->actor.user_id), "%s", r->user.id);
	snprintf(r->actor.role, sizeof(r->actor.role), "%s", r->user.role);
	r->actor.ip = r->ip;
	r->actor.user_agent = r->user_agent;
	return true;
}

/* Media routes: the Authorization header when there is one, else the
 * signed ?token= of this recording and this kind of media. Either way the
 * user must still exist; the handler checks the permission itself. */
static bool authenticate_media(vtp_req *r)
{
	const char *tok = vtp__query(r, "token"), *reason = NULL;
	vtp_media_scope want = r->route->auth == AUTH_MEDIA_DOWNLOAD ? VTP_MEDIA_DOWNLOAD
								     : VTP_MEDIA_VIEW;
	vtp_media_scope got;
	char sub[VTP_UUID_BUFLEN];
	int rc;

	if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION) ||
	    !tok)
		return authenticate(r);
	rc = vtp_media_token_verify(r->api->cfg.jwt_key, r->api->cfg.jwt_key_len, tok,
				    r->params[0], vtp_now_ms() / 1000, sub, &got, &reason);
	if (rc == 0 && got != want) {
		vtp__reply_error(r, 403, "forbidden", NULL, "this link is for %s, not for %s",
				 got == VTP_MEDIA_DOWNLOAD ? "the download" : "playback",
				 want == VTP_MEDIA_DOWNLOAD ? "the download" : "playback");
		return false;
	}
	if (rc) {
		vtp__reply_error(r, 401, "unauthorized", NULL, "%s",
				 reason && strcmp(reason, "expired") == 0
					 ? "the link has expired; fetch the recording again for a new one"
					 : "invalid media link");
		return false;
	}
	rc = vtp_store_user_by_id(r->api->cfg.store, sub, &r->user);
	if (rc == VTP_ENOTFOUND) {
		vtp__reply_error(r, 401, "unauthorized", NULL, "the link's user no longer exists");
		return false;
	}
	if (rc) {
		vtp__reply_error(r, rc == VTP_EUNAVAIL ? 503 : 500, NULL, NULL,
				 "could not check the link's user");
		return false;
	}
	return set_actor(r);
}

static bool is_type(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static size_t body_limit(const vtp_req *r)
{
	return r->route && r->route->body == BODY_SDP ? VTP_API_SDP_LIMIT : VTP_API_JSON_LIMIT;
}

/* ---- message framing (RFC 9112 §6) ----------------------------------------
 * Where one request's body ends decides where the next request starts, so a
 * request whose framing two parsers could read differently (a proxy in front
 * and libmicrohttpd here) is refused before its body is read, and the
 * connection closed: nothing after it is ever run as a request. Refused:
 * Content-Length together with Transfer-Encoding, two different
 * Content-Length values, Transfer-Encoding on HTTP/1.0, a Transfer-Encoding
 * list that is not exactly "chunked" (an unknown coding is 501: it would
 * otherwise be read to the end of the connection), and header lines that
 * parsers split differently (whitespace before the colon or anything else
 * that is not a token in a name, a CR or LF inside a value). */

typedef struct framing {
	const char *content_length; /* the first one */
	bool conflicting_length;
	int te_lines;               /* Transfer-Encoding header lines */
	int chunked;                /* of which exactly "chunked" */
	bool te_unknown, te_malformed;
	bool bad_field;
} framing;

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* One Transfer-Encoding field value. libmicrohttpd reads a body as chunked
 * only when the (first) value is exactly "chunked"; anything else is
 * classified here to choose the refusal: a well-formed list naming a coding
 * other than chunked is 501, the rest ("chunked, chunked", stray
 * characters, an empty value) 400. */
static void scan_transfer_encoding(framing *f, const char *v)
{
	bool any = false;

	f->te_lines++;
	if (strcasecmp(v, "chunked") == 0) {
		f->chunked++;
		return;
	}
	while (*v) {
		const char *start;
		size_t n;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (!*v)
			break;
		start = v;
		while (is_tchar((unsigned char)*v))
			v++;
		n = (size_t)(v - start);
		while (*v == ' ' || *v == '\t')
			v++;
		if (n == 0 || (*v && *v != ',' && *v != ';')) {
			f->te_malformed = true;
			return;
		}
		any = true;
		if (n != 7 || strncasecmp(start, "chunked", 7) != 0 || *v == ';')
			f->te_unknown = true; /* "chunked;x=y" is no coding we know either */
		while (*v && *v != ',') /* parameters */
			v++;
	}
	if (!any)
		f->te_malformed = true;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	framing *f = cls;

	(void)kind;
	if (!key || !*key) {
		f->bad_field = true;
		return MHD_YES;
	}
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (!is_tchar(*p))
			f->bad_field = true;
	/* a CR or LF inside a value ends the line for some parsers and not for
	 * others; other control bytes are only text (and cleaned where kept) */
	if (value && strpbrk(value, "\r\n"))
		f->bad_field = true;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (!f->content_length)
			f->content_length = value ? value : "";
		else if (strcmp(f->content_length, value ? value : "") != 0)
			f->conflicting_length = true;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		scan_transfer_encoding(f, value ? value : "");
	}
	return MHD_YES;
}

/* Replies (and marks the connection to be closed) when the framing is
 * unsafe; false then. */
static bool framing_ok(vtp_req *r)
{
	framing f;
	const char *why = NULL;
	int status = 400;

	memset(&f, 0, sizeof(f));
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_header, &f);
	if (f.bad_field)
		why = "a header line is malformed (a name must be a token right before the colon, "
		      "a value must not hold a CR or LF)";
	else if (f.conflicting_length)
		why = "the request has several different Content-Length values";
	else if (f.te_lines && f.content_length)
		why = "the request has both Content-Length and Transfer-Encoding";
	else if (f.te_lines && r->version && strcmp(r->version, MHD_HTTP_VERSION_1_1) != 0)
		why = "Transfer-Encoding is only allowed on HTTP/1.1 requests";
	else if (f.te_lines && f.te_unknown && !f.te_malformed) {
		status = 501;
		why = "the only transfer coding understood here is chunked";
	} else if (f.te_lines && (f.te_lines != 1 || f.chunked != 1))
		why = "the Transfer-Encoding header must be exactly \"chunked\"";
	if (!why)
		return true;
	r->close_connection = true;
	vtp__reply_error(r, status, status == 501 ? "not_implemented" : "bad_framing", NULL, "%s",
			 why);
	return false;
}

/* First callback: everything that can be decided from the headers. */
static void begin(vtp_req *r)
{
	const char *cl, *te, *ct;
	int status;

	if (!framing_ok(r))
		return;
	/* WHIP is called from pages of other origins (RFC 9725 §4.2) */
	r->cors = strncmp(r->path, "/whip/", 6) == 0;
	r->route = vtp__route_match(r->method, r->path_segments, r->params,
				    &r->route_index, &status, r->allow, sizeof(r->allow));
	if (!r->route) {
		if (status == 405) {
			char *method = vtp_utf8_sanitize(r->method, 32);

			vtp__reply_error(r, 405, "method_not_allowed", NULL,
					 "%s is not allowed here (allowed: %s)", method, r->allow);
			vtp_free(method);
		} else {
			r->allow[0] = '\0';
			vtp__reply_error(r, 404, "not_found", NULL, "no such endpoint");
		}
		return;
	}
	if (r->route->auth == AUTH_USER && !authenticate(r))
		return;
	if ((r->route->auth == AUTH_MEDIA_VIEW || r->route->auth == AUTH_MEDIA_DOWNLOAD) &&
	    !authenticate_media(r))
		return;
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (r->route->body == BODY_JSON) {
		bool has_body = te != NULL || (cl && strcmp(cl, "0") != 0);

		if (has_body && !is_type(ct, "application/json")) {
			vtp__reply_error(r, 415, "unsupported_media_type", NULL,
					 "the body must be application/json");
			return;
		}
	}
	if (r->route->body == BODY_SDP) {
		if (!is_type(ct, "application/sdp")) {
			vtp__reply_error(r, 415, "unsupported_media_type", NULL,
					 "the body must be an SDP offer (Content-Type: application/sdp)");
			return;
		}
		r->body.max = VTP_API_SDP_LIMIT;
	}
	if (cl) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (!errno && *end == '\0' && n > body_limit(r)) {
			vtp__reply_error(r, 413, "payload_too_large", NULL,
					 "the body is larger than %zu bytes", body_limit(r));
			return;
		}
	}
}

static void finish(vtp_req *r)
{
	json_error_t jerr;

	if (r->body_too_big) {
		vtp__reply_error(r, 413, "payload_too_large", NULL,
				 "the body is larger than %zu bytes", body_limit(r));
		return;
	}
	if (r->route->body == BODY_SDP && r->body.len == 0) {
		vtp__reply_error(r, 400, "invalid_sdp", NULL, "an SDP offer is required");
		return;
	}
	if (r->route->body == BODY_JSON) {
		if (r->body.len == 0) {
			vtp__reply_error(r, 400, "invalid_json", NULL, "a JSON body is required");
			return;
		}
		r->json = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
		if (!r->json) {
			vtp__reply_error(r, 400, "invalid_json", NULL,
					 "the body is not valid JSON (line %d, column %d: %s)",
					 jerr.line, jerr.column, jerr.text);
			return;
		}
		if (!json_is_object(r->json)) {
			vtp__reply_error(r, 400, "invalid_json", NULL,
					 "the body must be a JSON object");
			return;
		}
	}
	r->route->handler(r);
	if (r->deferred) /* a worker owns the request until it resumes it */
		return;
	if (!r->responded) {
		VTP_ERROR("handler %s sent no response", r->route->name);
		vtp__reply_error(r, 500, "internal", NULL, "internal error");
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	vtp_api *api = cls;
	vtp_req *r = *con_cls;

	if (r && r->parked) { /* a deferred worker finished: send its reply */
		if (MHD_queue_response(conn, (unsigned)r->parked_status, r->parked) != MHD_YES)
			VTP_WARN("could not queue the response of request %s", r->request_id);
		MHD_destroy_response(r->parked);
		r->parked = NULL;
		return MHD_YES;
	}
	if (!r) {
		/* cut off as too slow while MHD finished the head: drop it */
		if (!vtp__headwatch_head_done(api->headwatch, conn))
			return MHD_NO;
		r = vtp_calloc(1, sizeof(*r));
		*con_cls = r;
		r->api = api;
		r->conn = conn;
		r->method = method;
		r->version = version;
		r->start_us = vtp_mono_us();
		r->route_index = -1;
		vtp_random_hex(r->request_id, 8);
		client_ip(conn, r->ip, sizeof(r->ip));
		/* stored in the access log: valid UTF-8, no controls, capped */
		r->user_agent = vtp_utf8_sanitize(
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_USER_AGENT),
			512);
		r->path = vtp_strdup(url);
		r->path_segments = vtp_strdup(url);
		vtp_buf_init(&r->body, VTP_API_JSON_LIMIT);
		begin(r);
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->responded && !r->body_too_big &&
		    vtp_buf_append(&r->body, upload_data, *upload_data_size) != 0) {
			r->body_too_big = true;
			vtp_buf_free(&r->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!r->responded && !r->deferred)
		finish(r);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	vtp_api *api = cls;
	vtp_req *r = *con_cls;
	int64_t us;

	if (!r)
		return;
	/* a kept-alive connection's next head is timed from here (after the
	 * idle allowance); an upgraded one (101) speaks WebSocket from now on
	 * and has no head */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status != 101)
		vtp__headwatch_rearm(api->headwatch, conn);
	us = vtp_mono_us() - r->start_us;
	vtp__metrics_observe(r->route_index, r->status, us);
	if (vtp__log_level <= VTP_LOG_INFO) {
		vtp_log_kv kv[8] = {
			{"rid", r->request_id, 0},
			{"method", r->method, 0},
			{"path", r->path, 0},
			{"user", r->authed ? r->user.id : "-", 0},
			{"status", NULL, r->status},
			{"us", NULL, us},
			{"ip", r->ip, 0},
			{"aborted", "true", 0},
		};

		vtp_log_kv(VTP_LOG_INFO, "http", kv,
			   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 7 : 8);
	}
	if (r->parked)
		MHD_destroy_response(r->parked);
	json_decref(r->json);
	vtp_buf_free(&r->body);
	vtp_user_clear(&r->user);
	vtp_free(r->path);
	vtp_free(r->path_segments);
	vtp_free(r->user_agent);
	vtp_free(r);
	*con_cls = NULL;
}

/* Percent-decoding of the path and the query values, except that "%00"
 * stays as it is: a decoded NUL would silently cut the C string short
 * ("init.mp4%00.txt" read as "init.mp4"), so it is kept visible and fails
 * validation like any other odd character. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *w = s;
	const char *p = s;

	(void)cls;
	(void)conn;
	while (*p) {
		int hi, lo;

		if (p[0] == '%' && (hi = vtp_hex_value(p[1])) >= 0 && (lo = vtp_hex_value(p[2])) >= 0 &&
		    (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			p += 3;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* libmicrohttpd's own messages can quote the request (a decoded URL): they
 * go into a field, which the logger escapes, never into the message. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;
	vtp_log_kv kv[1];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	kv[0] = (vtp_log_kv){"detail", msg, 0};
	vtp_log_kv(VTP_LOG_WARN, "libmicrohttpd", kv, 1);
}

vtp_api *vtp_api_start(const vtp_api_config *cfg, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	const union MHD_DaemonInfo *info;
	char port[16];
	vtp_api *api;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", cfg->port);
	rc = getaddrinfo(cfg->host, port, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(err, errlen, "cannot resolve listen address %s: %s", cfg->host,
			 gai_strerror(rc));
		return NULL;
	}
	api = vtp_calloc(1, sizeof(*api));
	api->cfg = *cfg;
	api->throttle = vtp_throttle_new(5);
	api->ip_throttle = vtp_throttle_new(50);
	api->account_throttle = vtp_throttle_new(5);
	api->authcache = vtp__authcache_new();
	/* on PostgreSQL the pages are kept only while the store follows the
	 * other nodes' writes (vtp_store_watch): its generation is 0 else */
	if (cfg->response_cache)
		api->listcache = vtp_gencache_new(VTP__LIST_SLOTS, VTP__LIST_BODY_MAX);
	api->deferq = vtp__deferq_new();
	api->headwatch = vtp__headwatch_new(cfg->header_timeout_seconds, VTP__HTTP_IDLE_TIMEOUT);
	api->dlseen = vtp__dlseen_new();
	api->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
			MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
			(ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		(uint16_t)cfg->port, NULL, NULL, on_request, api,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 0 ? cfg->threads : 1),
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
		MHD_OPTION_NOTIFY_CONNECTION, vtp__headwatch_notify, api->headwatch,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)VTP__HTTP_IDLE_TIMEOUT,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)0,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
		MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!api->daemon) {
		bool v6 = strchr(cfg->host, ':') != NULL;

		snprintf(err, errlen, "cannot listen on %s%s%s:%d (%s)", v6 ? "[" : "", cfg->host,
			 v6 ? "]" : "", cfg->port,
			 errno ? strerror(errno) : "address in use or not available");
		vtp_throttle_free(api->throttle);
		vtp_throttle_free(api->ip_throttle);
		vtp_throttle_free(api->account_throttle);
		vtp__deferq_drain(api->deferq);
		vtp__deferq_free(api->deferq);
		vtp__authcache_free(api->authcache);
		vtp_gencache_free(api->listcache);
		vtp__dlseen_free(api->dlseen);
		vtp__headwatch_free(api->headwatch);
		vtp_free(api);
		return NULL;
	}
	info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
	api->port = info ? info->port : cfg->port;
	return api;
}

int vtp_api_port(const vtp_api *api)
{
	return api->port;
}

void vtp_api_stop(vtp_api *api)
{
	if (!api)
		return;
	/* Deferred requests are suspended connections, which MHD cannot stop
	 * with: finish them first (new ones get 503 meanwhile). */
	vtp__deferq_drain(api->deferq);
	MHD_stop_daemon(api->daemon);
	vtp__deferq_free(api->deferq);
	vtp_throttle_free(api->throttle);
	vtp_throttle_free(api->ip_throttle);
	vtp_throttle_free(api->account_throttle);
	vtp__authcache_free(api->authcache);
	vtp_gencache_free(api->listcache);
	vtp__dlseen_free(api->dlseen);
	vtp__headwatch_free(api->headwatch); /* MHD has reported every connection closed */
	vtp_free(api);
}
