/* The Engine.IO / Socket.IO packet reader (see sio_packet.h). Every byte is
 * the client's: lengths are checked before each read, the namespace and the
 * ack id are capped, and the JSON goes to jansson with its length (it
 * refuses invalid UTF-8 and duplicate keys). */
#include "sio_packet.h"

#include <stdio.h>
#include <string.h>

static bool ns_char_ok(char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
}

static int parse_socketio(const char *p, const char *end, vtp__sio_packet *out)
{
	if (p == end)
		return VTP__SIO_MALFORMED;
	out->type = *p++;
	if (out->type == '5' || out->type == '6')
		return VTP__SIO_BINARY;
	if (out->type < '0' || out->type > '3') /* 4 CONNECT_ERROR is the server's */
		return VTP__SIO_MALFORMED;
	if (p < end && *p == '/') {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t nlen = comma ? (size_t)(comma - p) : (size_t)(end - p);

		if (nlen > VTP__SIO_NS_MAX)
			return VTP__SIO_MALFORMED;
		for (size_t i = 0; i < nlen; i++)
			if (!ns_char_ok(p[i]))
				return VTP__SIO_MALFORMED;
		out->other_ns = nlen != 1;
		out->ns = p;
		out->ns_len = nlen;
		p = comma ? comma + 1 : end;
	}
	if (p < end && *p >= '0' && *p <= '9') {
		out->ack = 0;
		for (int digits = 0; p < end && *p >= '0' && *p <= '9'; digits++, p++) {
			if (digits == VTP__SIO_ACK_DIGITS)
				return VTP__SIO_MALFORMED;
			out->ack = out->ack * 10 + (*p - '0');
		}
	}
	if (p < end) {
		json_error_t jerr;

		out->data = json_loadb(p, (size_t)(end - p), JSON_REJECT_DUPLICATES, &jerr);
		if (!out->data) {
			snprintf(out->json_error, sizeof(out->json_error), "%s", jerr.text);
			return VTP__SIO_BAD_JSON;
		}
	}
	return VTP__SIO_OK;
}

int vtp__sio_parse(const char *msg, size_t len, vtp__sio_packet *out)
{
	int rc = VTP__SIO_MALFORMED;

	memset(out, 0, sizeof(*out));
	out->ns = "/";
	out->ns_len = 1;
	out->ack = -1;
	if (!msg || len == 0)
		return rc;
	out->eio_type = msg[0];
	switch (out->eio_type) {
	case '1': /* close */
	case '2': /* ping */
	case '3': /* pong */
	case '5': /* upgrade */
	case '6': /* noop */
		rc = VTP__SIO_OK;
		break;
	case '4': /* message: one Socket.IO packet */
		rc = parse_socketio(msg + 1, msg + len, out);
		break;
	default:
		break;
	}
	if (rc != VTP__SIO_OK) {
		json_decref(out->data);
		out->data = NULL;
	}
	return rc;
}

void vtp__sio_packet_clear(vtp__sio_packet *p)
{
	if (!p)
		return;
	json_decref(p->data);
	p->data = NULL;
}
