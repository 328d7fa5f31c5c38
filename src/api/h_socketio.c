/* GET /socket.io/: the Socket.IO endpoint (CONTRACT §6). Engine.IO 4 over
 * WebSocket only; the HTTP long-polling transport gets a clear 400. */
#include "api_int.h"

#include <string.h>

static void eio_error(vtp_req *r, int status, int code, const char *message)
{
	json_t *body = json_pack("{si ss}", "code", code, "message", message);

	vtp__reply_json(r, status, body);
}

void vtp__h_socketio(vtp_req *r)
{
	const char *eio = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "EIO");
	const char *transport =
		MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "transport");

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
	eio_error(r, 501, 0, "WebSocket transport not built yet");
}
