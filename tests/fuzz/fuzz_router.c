/* Fuzz target: the router on "METHOD PATH" inputs. Must never crash; a
 * match's parameters point into the path copy and hold no '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = vtp_malloc(size + 1), *sp, allow[128];
	const char *params[VTP_API_MAX_PARAMS] = {NULL, NULL};
	const vtp_route *route;
	int idx, status;

	memcpy(in, data, size);
	in[size] = '\0';
	sp = strchr(in, ' ');
	if (sp) {
		*sp = '\0';
		route = vtp__route_match(in, sp + 1, params, &idx, &status, allow, sizeof(allow));
		if (route) {
			if (idx < 0 || idx >= vtp__route_count)
				abort();
			for (int i = 0; i < VTP_API_MAX_PARAMS; i++)
				if (params[i] && strchr(params[i], '/'))
					abort();
		} else if (status != 404 && status != 405) {
			abort();
		}
	}
	vtp_free(in);
	return 0;
}
