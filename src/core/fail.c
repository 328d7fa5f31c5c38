/* Failure details for client-facing errors. */
#include "fail.h"

#include <stdarg.h>
#include <stdio.h>

int vtp_fail_set(vtp_fail *f, int code, const char *reason, const char *field,
		 const char *fmt, ...)
{
	va_list ap;

	if (!f)
		return code;
	f->code = code;
	f->reason = reason;
	snprintf(f->field, sizeof(f->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
	return code;
}

void vtp_fail_extra(vtp_fail *f, const char *key, json_t *value)
{
	if (!f) {
		json_decref(value);
		return;
	}
	if (!f->extra)
		f->extra = json_object();
	json_object_set_new(f->extra, key, value);
}

void vtp_fail_clear(vtp_fail *f)
{
	json_decref(f->extra);
	f->extra = NULL;
	f->code = 0;
	f->reason = NULL;
	f->message[0] = '\0';
	f->field[0] = '\0';
}
