/* Fuzz target: vtp_time_parse. Must never crash; whatever it accepts must
 * survive a format/parse round trip to the same millisecond. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[128], out[VTP_TIME_BUFLEN];
	int64_t ms, again;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (!vtp_time_parse(in, &ms))
		return 0;
	vtp_time_format(ms, out);
	if (!vtp_time_parse(out, &again) || again != ms)
		abort();
	return 0;
}
