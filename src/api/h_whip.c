/* WHIP endpoints (RFC 9725, README "WebRTC (WHIP)"): POST an SDP offer to a room,
 * DELETE the session's URL to end it. The server is ICE-lite with all its
 * candidates in the answer, so trickle ICE and ICE restarts (PATCH) are
 * answered 405. The answers carry CORS headers (server.c) so that pages of
 * other origins can publish with a Bearer token. */
#include "api_int.h"

#include <string.h>

#include "core/mem.h"

static void reply_and_clear(vtp_req *r, vtp_fail *fail)
{
	vtp__reply_fail(r, fail);
	vtp_fail_clear(fail);
}

/* RFC 3986 unreserved characters stay, everything else is %XX. */
static void url_encode(vtp_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			vtp_buf_append(b, p, 1);
		else
			vtp_buf_appendf(b, "%%%02X", c);
	}
}

void vtp__h_whip_create(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	char session_id[VTP_UUID_BUFLEN];
	vtp_whip_publisher pub;
	struct MHD_Response *resp;
	vtp_buf answer, loc;
	const char *source;
	char *text;
	size_t len;

	if (!r->api->cfg.ingest) {
		vtp__reply_error(r, 503, "unavailable", NULL, "media ingest is not running");
		return;
	}
	pub.who = &r->actor;
	pub.full_name = r->user.full_name;
	source = vtp__query(r, "source");
	if (source && strcmp(source, "screen") != 0 && strcmp(source, "camera") != 0) {
		vtp__reply_error(r, 400, "invalid_input", "source",
				 "source must be camera (the default) or screen");
		return;
	}
	pub.screen = source && strcmp(source, "screen") == 0;
	vtp_buf_init(&answer, 64 * 1024);
	if (vtp_ingest_whip_create(r->api->cfg.ingest, &pub, r->params[0], r->body.data,
				   r->body.len, &answer, session_id, &fail)) {
		vtp_buf_free(&answer);
		reply_and_clear(r, &fail);
		return;
	}
	vtp_buf_init(&loc, 4096);
	vtp_buf_appends(&loc, "/whip/rooms/");
	url_encode(&loc, r->params[0]);
	vtp_buf_appendf(&loc, "/sessions/%s", session_id);
	text = vtp_buf_steal(&answer, &len);
	resp = MHD_create_response_from_buffer_with_free_callback(len, text, vtp_free);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc.data);
	vtp_buf_free(&loc);
	vtp__reply_response(r, 201, resp, "application/sdp", "no-store");
}

void vtp__h_whip_delete(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;

	if (!r->api->cfg.ingest) {
		vtp__reply_error(r, 503, "unavailable", NULL, "media ingest is not running");
		return;
	}
	if (vtp_ingest_whip_delete(r->api->cfg.ingest, &r->actor, r->params[0], r->params[1],
				   &fail)) {
		reply_and_clear(r, &fail);
		return;
	}
	vtp__reply_json(r, 200, json_pack("{sb ss}", "success", 1, "sessionId", r->params[1]));
}

void vtp__h_whip_patch(vtp_req *r)
{
	snprintf(r->allow, sizeof(r->allow), "DELETE, OPTIONS");
	vtp__reply_error(r, 405, "method_not_allowed", NULL,
			 "trickle ICE and ICE restarts (PATCH) are not supported: this server is "
			 "ICE-lite and its answer carries all its candidates; to reconnect, DELETE "
			 "the session and POST a new offer");
}

/* CORS preflight (and RFC 9725's OPTIONS): what may be sent. */
void vtp__h_whip_options(vtp_req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	bool session = r->params[1] != NULL;

	MHD_add_response_header(resp, "Access-Control-Allow-Methods",
				session ? "DELETE, PATCH, OPTIONS" : "POST, OPTIONS");
	MHD_add_response_header(resp, "Access-Control-Allow-Headers",
				"Authorization, Content-Type, If-Match");
	MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
	if (!session)
		MHD_add_response_header(resp, "Accept-Post", "application/sdp");
	snprintf(r->allow, sizeof(r->allow), "%s", session ? "DELETE, OPTIONS" : "POST, OPTIONS");
	vtp__reply_response(r, 204, resp, NULL, "no-store");
}
