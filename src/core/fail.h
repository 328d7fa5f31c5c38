/* Failure details that travel from the business layer to a client: a VTP_E*
 * code, a stable snake_case reason ("room_busy"), a human message, the field
 * at fault and optional extra members. The API and event layers render it;
 * the layers that fill it never touch HTTP. */
#ifndef VTP_CORE_FAIL_H
#define VTP_CORE_FAIL_H

#include <jansson.h>

typedef struct vtp_fail {
	int code;           /* VTP_E*; 0 = no failure */
	const char *reason; /* static snake_case string, or NULL for the default */
	char message[256];
	char field[64];     /* empty when not about one field */
	json_t *extra;      /* members merged into the error object; owned */
} vtp_fail;

#define VTP_FAIL_INIT {0, NULL, {0}, {0}, NULL}

/* Records a failure and returns `code`, so callers can `return vtp_fail_set(...)`. */
int vtp_fail_set(vtp_fail *f, int code, const char *reason, const char *field,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Adds a member to the error object (value is consumed). */
void vtp_fail_extra(vtp_fail *f, const char *key, json_t *value);
void vtp_fail_clear(vtp_fail *f);
/* The snake_case code a client sees: f->reason, else the default for
 * f->code ("invalid_input", "forbidden", "not_found", ...). */
const char *vtp_fail_reason(const vtp_fail *f);
/* The error object of docs/openapi.yaml (schema Error) without its envelope:
 * {"code","message","field"?, ...extra}. New reference. */
json_t *vtp_fail_json(const vtp_fail *f);

#endif
