/* Fuzz target: the JSON writer's string escaping. Whatever the bytes
 * (invalid UTF-8, controls), the output must be valid JSON that jansson
 * parses, and valid UTF-8 input must read back unchanged. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "core/mem.h"
#include "core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = vtp_malloc(size + 1);
	json_t *j;
	vtp_buf b;
	vtp_jw w;

	memcpy(s, data, size);
	s[size] = '\0'; /* the writer takes C strings: stop at the first NUL */
	vtp_buf_init(&b, 1u << 24);
	vtp_jw_init(&w, &b);
	vtp_jw_array_begin(&w);
	vtp_jw_string(&w, s);
	vtp_jw_array_end(&w);
	j = json_loadb(b.data, b.len, 0, NULL);
	if (!j || !json_is_string(json_array_get(j, 0)))
		abort();
	/* only control characters may change; everything else reads back */
	if (vtp_utf8_valid(s, false) && strcmp(json_string_value(json_array_get(j, 0)), s) != 0)
		abort();
	json_decref(j);
	vtp_buf_free(&b);
	vtp_free(s);
	return 0;
}
