/* Parsing one Engine.IO 4 text packet and the Socket.IO v4 packet inside it
 * (src/events/socketio.c speaks the protocol; this only reads bytes, so the
 * fuzz target tests/fuzz/fuzz_sio_packet.c can reach it). Internal to the
 * events module. */
#ifndef VTP_EVENTS_SIO_PACKET_H
#define VTP_EVENTS_SIO_PACKET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define VTP__SIO_NS_MAX 64        /* a namespace longer than this is malformed */
#define VTP__SIO_ACK_DIGITS 9     /* an ack id of more digits is malformed */

enum {
	VTP__SIO_OK = 0,
	VTP__SIO_MALFORMED = -1, /* no client sends it: drop the connection */
	VTP__SIO_BINARY = -2,    /* Socket.IO binary packets (5, 6): not spoken here */
	VTP__SIO_BAD_JSON = -3,  /* the JSON part is invalid; ack is set, json_error says why */
};

typedef struct vtp__sio_packet {
	char eio_type;        /* '1' close, '2' ping, '3' pong, '4' message, '5'/'6' upgrade/noop */
	/* the rest only for eio_type '4' */
	char type;            /* '0' CONNECT, '1' DISCONNECT, '2' EVENT, '3' ACK */
	const char *ns;       /* namespace, pointing into the input ("/" when absent) */
	size_t ns_len;
	bool other_ns;        /* a namespace other than "/" */
	long ack;             /* ack id, -1 for none */
	json_t *data;         /* the JSON part (owned), NULL when there is none */
	char json_error[160]; /* VTP__SIO_BAD_JSON: jansson's reason */
} vtp__sio_packet;

/* Parses msg[0..len) (one WebSocket text message). Returns VTP__SIO_OK with
 * *out filled (release with vtp__sio_packet_clear), or a negative
 * VTP__SIO_* with nothing to release. A namespace is 1..64 printable ASCII
 * characters without quotes or backslashes; JSON duplicates are refused. */
int vtp__sio_parse(const char *msg, size_t len, vtp__sio_packet *out);
void vtp__sio_packet_clear(vtp__sio_packet *p);

#endif
