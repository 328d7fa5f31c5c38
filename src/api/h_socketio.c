/* GET /socket.io/: the Socket.IO endpoint (README "Real-time events"). Engine.IO 4 over
 * WebSocket only: this checks the WebSocket handshake (RFC 6455 §4.2),
 * answers 101 and hands the connection to the events thread
 * (src/events/socketio.c). The HTTP long-polling transport, other
 * Engine.IO versions and resumed sessions get a clear 400. */
#include "api_int.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

static void eio_error(vtp_req *r, int status, int code, const char *message)
{
	vtp__reply_json(r, status, json_pack("{si ss}", "code", code, "message", message));
}

/* Does a comma-separated header value list contain token (any case)? */
static bool has_token(const char *list, const char *token)
{
	size_t n = strlen(token);

	while (list && *list) {
		while (*list == ' ' || *list == ',' || *list == '\t')
			list++;
		if (strncasecmp(list, token, n) == 0 &&
		    (list[n] == '\0' || list[n] == ',' || list[n] == ' ' || list[n] == '\t'))
			return true;
		list = strchr(list, ',');
	}
	return false;
}

static const char *header(vtp_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Sec-WebSocket-Key: base64 of 16 bytes (24 characters, "==" at the end). */
static bool key_valid(const char *key)
{
	unsigned char raw[20];

	if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
		return false;
	return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

static void release(void *arg)
{
	MHD_upgrade_action(arg, MHD_UPGRADE_ACTION_CLOSE);
}

static void on_upgraded(void *cls, struct MHD_Connection *conn, void *req_cls,
			const char *extra_in, size_t extra_in_size, MHD_socket sock,
			struct MHD_UpgradeResponseHandle *urh)
{
	vtp_api *api = cls;
	vtp_req *r = req_cls;

	(void)conn;
	vtp_events_adopt(api->cfg.events, sock, extra_in, extra_in_size, r ? r->ip : "",
			 r ? r->user_agent : NULL, release, urh);
}

void vtp__h_socketio(vtp_req *r)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	const char *eio = vtp__query(r, "EIO"), *transport = vtp__query(r, "transport");
	const char *key = header(r, "Sec-WebSocket-Key");
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char buf[64], accept[64];
	struct MHD_Response *resp;

	if (!eio || strcmp(eio, "4") != 0) {
		eio_error(r, 400, 5, "unsupported protocol version: this server speaks Engine.IO 4 "
				     "(Socket.IO v4 clients); send EIO=4");
		return;
	}
	if (!transport || strcmp(transport, "websocket") != 0) {
		eio_error(r, 400, 0, "transport unknown: this server speaks Socket.IO over WebSocket "
				     "only; connect with transports: [\"websocket\"]");
		return;
	}
	if (vtp__query(r, "sid")) {
		eio_error(r, 400, 1, "session id unknown: there is no polling session to upgrade; "
				     "connect with transports: [\"websocket\"]");
		return;
	}
	if (strcmp(r->method, "GET") != 0 || !has_token(header(r, "Upgrade"), "websocket") ||
	    !has_token(header(r, "Connection"), "upgrade")) {
		eio_error(r, 400, 3, "bad request: a WebSocket upgrade (GET with Upgrade: websocket) "
				     "is expected here");
		return;
	}
	if (!header(r, "Sec-WebSocket-Version") ||
	    strcmp(header(r, "Sec-WebSocket-Version"), "13") != 0) {
		/* RFC 6455 §4.4: 426 with the version spoken here */
		static const char body[] =
			"{\"code\":3,\"message\":\"bad request: WebSocket version 13 is required\"}";

		resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
						       MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
		vtp__reply_response(r, 426, resp, "application/json; charset=utf-8", "no-store");
		return;
	}
	if (!key_valid(key)) {
		eio_error(r, 400, 3, "bad request: a valid Sec-WebSocket-Key is required");
		return;
	}
	if (!r->api->cfg.events) {
		eio_error(r, 503, 3, "real-time events are not served by this process");
		return;
	}
	snprintf(buf, sizeof(buf), "%s%s", key, guid);
	EVP_Digest(buf, strlen(buf), digest, &dlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)accept, digest, (int)dlen);
	resp = MHD_create_response_for_upgrade(on_upgraded, r->api);
	if (!resp) {
		eio_error(r, 500, 3, "could not upgrade the connection");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	vtp__reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp, NULL, "no-store");
}
