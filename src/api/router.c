/* The route table and path matching. The most specific pattern (most literal
 * segments) that matches a path wins regardless of method, so that
 * GET /api/v1/recordings/start is 405 (POST only), not a lookup of a
 * recording called "start". */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

const vtp_route vtp__routes[] = {
	{"GET", "/healthz", vtp__h_healthz, AUTH_NONE, BODY_NONE, "healthz"},
	{"GET", "/metrics", vtp__h_metrics, AUTH_NONE, BODY_NONE, "metrics"},
	{"GET", "/", vtp__h_web_root, AUTH_NONE, BODY_NONE, "web"},
	{"GET", "/web/{}", vtp__h_web, AUTH_NONE, BODY_NONE, "web"},
	{"GET", "/web/vendor/{}", vtp__h_web_vendor, AUTH_NONE, BODY_NONE, "web"},
	{"POST", "/api/v1/auth/login", vtp__h_login, AUTH_NONE, BODY_JSON, "login"},
	{"GET", "/api/v1/users/me", vtp__h_me, AUTH_USER, BODY_NONE, "users_me"},
	{"POST", "/api/v1/recordings/start", vtp__h_start, AUTH_USER, BODY_JSON, "recordings_start"},
	{"POST", "/api/v1/recordings/stop", vtp__h_stop_alias, AUTH_USER, BODY_NONE, "recordings_stop"},
	{"GET", "/api/v1/recordings/get", vtp__h_get_alias, AUTH_USER, BODY_NONE, "recordings_get"},
	{"DELETE", "/api/v1/recordings/delete", vtp__h_delete_alias, AUTH_USER, BODY_NONE, "recordings_delete"},
	{"GET", "/api/v1/recordings", vtp__h_list, AUTH_USER, BODY_NONE, "recordings_list"},
	{"GET", "/api/v1/recordings/{}", vtp__h_get, AUTH_USER, BODY_NONE, "recordings_get"},
	{"DELETE", "/api/v1/recordings/{}", vtp__h_delete, AUTH_USER, BODY_NONE, "recordings_delete"},
	{"POST", "/api/v1/recordings/{}/stop", vtp__h_stop, AUTH_USER, BODY_NONE, "recordings_stop"},
	{"POST", "/api/v1/recordings/{}/restore", vtp__h_restore, AUTH_USER, BODY_NONE, "recordings_restore"},
	{"POST", "/api/v1/recordings/{}/retry", vtp__h_retry, AUTH_USER, BODY_NONE, "recordings_retry"},
	{"GET", "/api/v1/recordings/{}/participants", vtp__h_participants, AUTH_USER, BODY_NONE, "recordings_participants"},
	{"GET", "/api/v1/recordings/{}/shares", vtp__h_shares_list, AUTH_USER, BODY_NONE, "recordings_shares"},
	{"POST", "/api/v1/recordings/{}/shares", vtp__h_share_create, AUTH_USER, BODY_JSON, "recordings_shares"},
	{"DELETE", "/api/v1/recordings/{}/shares/{}", vtp__h_share_delete, AUTH_USER, BODY_NONE, "recordings_shares"},
	{"GET", "/api/v1/recordings/{}/access-log", vtp__h_access_log, AUTH_USER, BODY_NONE, "recordings_access_log"},
	{"POST", "/api/v1/recordings/{}/tracks", vtp__h_track_add, AUTH_USER, BODY_JSON, "recordings_tracks"},
	{"DELETE", "/api/v1/recordings/{}/tracks/{}", vtp__h_track_end, AUTH_USER, BODY_NONE, "recordings_tracks"},
	{"GET", "/api/v1/recordings/{}/download", vtp__h_download, AUTH_MEDIA_DOWNLOAD, BODY_NONE, "recordings_download"},
	{"GET", "/api/v1/recordings/{}/hls/{}", vtp__h_hls, AUTH_MEDIA_VIEW, BODY_NONE, "recordings_hls"},
	{"GET", "/api/v1/recordings/{}/thumbnail", vtp__h_thumbnail, AUTH_MEDIA_VIEW, BODY_NONE, "recordings_thumbnail"},
	{"GET", "/socket.io/", vtp__h_socketio, AUTH_NONE, BODY_NONE, "socketio"},
	{"POST", "/socket.io/", vtp__h_socketio, AUTH_NONE, BODY_NONE, "socketio"},
	{"POST", "/whip/rooms/{}", vtp__h_whip_create, AUTH_USER, BODY_SDP, "whip"},
	{"OPTIONS", "/whip/rooms/{}", vtp__h_whip_options, AUTH_NONE, BODY_NONE, "whip"},
	{"DELETE", "/whip/rooms/{}/sessions/{}", vtp__h_whip_delete, AUTH_USER, BODY_NONE, "whip_session"},
	{"PATCH", "/whip/rooms/{}/sessions/{}", vtp__h_whip_patch, AUTH_NONE, BODY_NONE, "whip_session"},
	{"OPTIONS", "/whip/rooms/{}/sessions/{}", vtp__h_whip_options, AUTH_NONE, BODY_NONE, "whip_session"},
};

const int vtp__route_count = (int)(sizeof(vtp__routes) / sizeof(vtp__routes[0]));

#define MAX_SEGMENTS 16

static int split(char *s, char **seg)
{
	int n = 0;

	if (*s != '/')
		return -1;
	s++;
	while (n < MAX_SEGMENTS) {
		char *slash = strchr(s, '/');

		seg[n++] = s;
		if (!slash)
			return n;
		*slash = '\0';
		s = slash + 1;
	}
	return -1;
}

/* Number of literal segments when pattern matches, else -1. A pattern splits
 * like a path, so "/" and "/socket.io/" (an empty last segment) match
 * exactly themselves. */
static int match(const char *pattern, char **seg, int nseg, const char **params)
{
	char copy[128];
	char *pseg[MAX_SEGMENTS];
	int n, literal = 0, np = 0;

	if ((size_t)snprintf(copy, sizeof(copy), "%s", pattern) >= sizeof(copy))
		return -1;
	n = split(copy, pseg);
	if (n != nseg)
		return -1;
	for (int i = 0; i < n; i++) {
		if (strcmp(pseg[i], "{}") == 0) {
			if (!*seg[i])
				return -1;
			if (np < VTP_API_MAX_PARAMS)
				params[np++] = seg[i];
		} else {
			if (strcmp(pseg[i], seg[i]) != 0)
				return -1;
			literal++;
		}
	}
	return literal;
}

const vtp_route *vtp__route_match(const char *method, char *segments_copy,
				  const char **params,
				  int *route_index, int *status, char *allow,
				  size_t allow_len)
{
	char *seg[MAX_SEGMENTS];
	const char *tmp[VTP_API_MAX_PARAMS];
	int nseg, best = -1, chosen = -1;
	const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
	const char *best_pattern = NULL;
	size_t used = 0;

	*route_index = -1;
	*status = 404;
	nseg = split(segments_copy, seg);
	if (nseg < 0)
		return NULL;
	for (int i = 0; i < vtp__route_count; i++) {
		int lit = match(vtp__routes[i].pattern, seg, nseg, tmp);

		if (lit > best) {
			best = lit;
			best_pattern = vtp__routes[i].pattern;
		}
	}
	if (!best_pattern)
		return NULL;
	allow[0] = '\0';
	for (int i = 0; i < vtp__route_count; i++) {
		int w;

		if (strcmp(vtp__routes[i].pattern, best_pattern) != 0)
			continue;
		if (strcmp(vtp__routes[i].method, m) == 0) {
			chosen = i;
			break;
		}
		w = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
			     vtp__routes[i].method);
		if (w > 0 && (size_t)w < allow_len - used)
			used += (size_t)w;
		if (strcmp(vtp__routes[i].method, "GET") == 0) {
			w = snprintf(allow + used, allow_len - used, ", HEAD");
			if (w > 0 && (size_t)w < allow_len - used)
				used += (size_t)w;
		}
	}
	if (chosen < 0) {
		*status = 405;
		return NULL;
	}
	match(vtp__routes[chosen].pattern, seg, nseg, params);
	*route_index = chosen;
	*status = 0;
	allow[0] = '\0';
	return &vtp__routes[chosen];
}
