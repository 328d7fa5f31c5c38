/* Fuzz target: JSON bodies through the StartRecordingRequest validation
 * table. Must never crash; an accepted request satisfies every bound. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonval.h"
#include "recording/recording.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vtp_fail fail = VTP_FAIL_INIT;
	vtp_start_request req;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

	if (!body)
		return 0;
	if (vtp_start_request_parse(body, &req, &fail) == 0) {
		size_t room = vtp_utf8_length(req.room_id), title = vtp_utf8_length(req.title);

		if (room < 1 || room > 255 || title < 1 || title > 500 || req.bitrate < 100 ||
		    req.bitrate > 20000 || !req.format || !req.video_codec || !req.audio_codec)
			abort();
	} else if (!fail.message[0] || !fail.reason) {
		abort(); /* every refusal says why */
	}
	vtp_fail_clear(&fail);
	json_decref(body);
	return 0;
}
