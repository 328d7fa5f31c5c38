/* Declarative validation of JSON request objects (Janus' parameter tables):
 * a handler lists its fields once, with type, bounds and choices, and gets a
 * field-level failure for the first violation. */
#ifndef VTP_CORE_JSONVAL_H
#define VTP_CORE_JSONVAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "fail.h"

enum { VTP_JV_STRING, VTP_JV_INT };

typedef struct vtp_json_param {
	const char *name;
	int type;
	bool required;
	long long min, max;          /* string: length in characters; int: value */
	const char *const *choices;  /* NULL-terminated; strings only; exact match */
	bool no_control;             /* strings: reject control characters */
} vtp_json_param;

/* 0 when obj satisfies every parameter (unknown members are ignored), else
 * VTP_EINVAL with fail filled (reason "invalid_input", field = name). A JSON
 * null counts as absent. */
int vtp_json_validate(json_t *obj, const vtp_json_param *params, size_t n,
		      vtp_fail *fail);
/* Number of UTF-8 code points in s (s is valid UTF-8, as jansson guarantees). */
size_t vtp_utf8_length(const char *s);
/* Convenience getters after validation: NULL / def when absent or null. */
const char *vtp_json_str(json_t *obj, const char *key);
long long vtp_json_int(json_t *obj, const char *key, long long def);

#endif
