/* Fuzz target: the Engine.IO / Socket.IO packet reader (events/sio_packet.c)
 * on arbitrary WebSocket text messages. It must never crash or leak, and an
 * accepted packet must be consistent: a known Engine.IO type; for a message
 * a Socket.IO type 0..3, a namespace inside the input (or the default "/")
 * of 1..64 printable characters, an ack id of at most 9 digits, and JSON
 * data only when the input had bytes left for it. Invariants abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events/sio_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	vtp__sio_packet pk;
	int rc = vtp__sio_parse(msg, size, &pk);

	if (rc != VTP__SIO_OK) {
		if (rc != VTP__SIO_MALFORMED && rc != VTP__SIO_BINARY && rc != VTP__SIO_BAD_JSON)
			abort();
		if (rc == VTP__SIO_BAD_JSON && pk.json_error[0] == '\0')
			abort(); /* a JSON refusal says why */
		return 0;
	}
	if (size == 0 || pk.eio_type != msg[0] || !strchr("123456", pk.eio_type))
		abort();
	if (pk.eio_type == '4') {
		bool default_ns = pk.ns_len == 1 && pk.ns[0] == '/';

		if (pk.type < '0' || pk.type > '3')
			abort();
		if (pk.ns_len < 1 || pk.ns_len > VTP__SIO_NS_MAX || pk.other_ns == default_ns)
			abort();
		if (pk.other_ns && (pk.ns < msg || pk.ns + pk.ns_len > msg + size))
			abort();
		for (size_t i = 0; i < pk.ns_len; i++)
			if (pk.ns[i] <= 0x20 || pk.ns[i] >= 0x7f || pk.ns[i] == '"' || pk.ns[i] == '\\')
				abort();
		if (pk.ack < -1 || pk.ack > 999999999)
			abort();
		if (pk.data && size < 3)
			abort(); /* "4" + type + at least one byte of JSON */
	} else if (pk.data || pk.ack != -1) {
		abort();
	}
	vtp__sio_packet_clear(&pk);
	return 0;
}
