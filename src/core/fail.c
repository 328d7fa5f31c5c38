/* Failure details for client-facing errors. */
#include "fail.h"

#include "error.h"

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

const char *vtp_fail_reason(const vtp_fail *f)
{
	if (f->reason)
		return f->reason;
	switch (f->code) {
	case VTP_EINVAL: return "invalid_input";
	case VTP_EUNAUTH: return "unauthorized";
	case VTP_EFORBIDDEN: return "forbidden";
	case VTP_ENOTFOUND: return "not_found";
	case VTP_ECONFLICT: return "conflict";
	case VTP_ETOOBIG: return "payload_too_large";
	case VTP_ERANGE: return "range_not_satisfiable";
	case VTP_ELIMIT: return "too_many_requests";
	case VTP_EUNAVAIL: return "unavailable";
	default: return "internal";
	}
}

json_t *vtp_fail_json(const vtp_fail *f)
{
	json_t *err = json_object(), *msg;

	json_object_set_new(err, "code", json_string(vtp_fail_reason(f)));
	msg = json_string(f->message[0] ? f->message : vtp_strerror(f->code));
	json_object_set_new(err, "message", msg ? msg : json_string("invalid request"));
	if (f->field[0])
		json_object_set_new(err, "field", json_string(f->field));
	if (f->extra)
		json_object_update(err, f->extra);
	return err;
}
