/* Queuing responses: JSON bodies, the error shape of docs/openapi.yaml and the one
 * table that maps VTP_E* codes to HTTP statuses. */
#include "api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"

int vtp__status_for(int code)
{
	switch (code) {
	case 0: return 200;
	case VTP_EINVAL: return 400;
	case VTP_EUNAUTH: return 401;
	case VTP_EFORBIDDEN: return 403;
	case VTP_ENOTFOUND: return 404;
	case VTP_ECONFLICT: return 409;
	case VTP_ETOOBIG: return 413;
	case VTP_ERANGE: return 416;
	case VTP_ELIMIT: return 429;
	case VTP_EUNAVAIL: return 503;
	default: return 500;
	}
}

static const char *default_reason(int status)
{
	switch (status) {
	case 400: return "invalid_input";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 413: return "payload_too_large";
	case 415: return "unsupported_media_type";
	case 416: return "range_not_satisfiable";
	case 429: return "too_many_requests";
	case 503: return "unavailable";
	default: return "internal";
	}
}

void vtp__reply_response(vtp_req *r, int status, struct MHD_Response *resp, const char *ctype,
			 const char *cache_control)
{
	if (r->responded) {
		VTP_ERROR("second response for request %s ignored", r->request_id);
		MHD_destroy_response(resp);
		return;
	}
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->retry_after[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (r->close_connection) /* MHD closes after sending it */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (r->cors) {
		/* Bearer tokens, never cookies: any origin may call */
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
		MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Location");
	}
	r->status = status;
	r->responded = true;
	if (r->in_worker) { /* queued by the access handler after resume */
		r->parked = resp;
		r->parked_status = status;
		return;
	}
	if (MHD_queue_response(r->conn, (unsigned)status, resp) != MHD_YES)
		VTP_WARN("could not queue the response of request %s", r->request_id);
	MHD_destroy_response(resp);
}

static void queue(vtp_req *r, int status, struct MHD_Response *resp, const char *ctype)
{
	vtp__reply_response(r, status, resp, ctype, "no-store");
}

void vtp__reply_text(vtp_req *r, int status, const char *content_type,
		     const char *text, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);

	queue(r, status, resp, content_type);
}

void vtp__reply_json(vtp_req *r, int status, json_t *body)
{
	struct MHD_Response *resp;
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len;

	json_decref(body);
	if (!text) {
		VTP_ERROR("could not serialise a response body");
		text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}");
		status = 500;
		if (!text)
			abort();
	}
	len = strlen(text);
	resp = MHD_create_response_from_buffer_with_free_callback(len, text, free);
	queue(r, status, resp, "application/json; charset=utf-8");
}

void vtp__reply_buf(vtp_req *r, int status, vtp_buf *json)
{
	size_t len = 0;
	char *text = vtp_buf_steal(json, &len);
	struct MHD_Response *resp =
		MHD_create_response_from_buffer_with_free_callback(len, text, vtp_free);

	queue(r, status, resp, "application/json; charset=utf-8");
}

static void reply_error_obj(vtp_req *r, int status, const char *code,
			    const char *field, const char *message, json_t *extra)
{
	json_t *err = json_object(), *msg;

	json_object_set_new(err, "code", json_string(code ? code : default_reason(status)));
	/* json_string refuses invalid UTF-8; the message must never be lost */
	msg = json_string(message);
	json_object_set_new(err, "message", msg ? msg : json_string("invalid request"));
	if (field && *field)
		json_object_set_new(err, "field", json_string(field));
	if (status >= 500)
		json_object_set_new(err, "requestId", json_string(r->request_id));
	if (extra)
		json_object_update(err, extra);
	vtp__reply_json(r, status, json_pack("{so}", "error", err));
}

void vtp__reply_fail(vtp_req *r, const vtp_fail *fail)
{
	int status = vtp__status_for(fail->code);

	if (status >= 500)
		VTP_ERROR("request %s failed: %s (%s)", r->request_id,
			  fail->message[0] ? fail->message : "no detail",
			  vtp_strerror(fail->code));
	reply_error_obj(r, status, fail->reason, fail->field,
			fail->message[0] ? fail->message : vtp_strerror(fail->code),
			fail->extra);
}

void vtp__reply_error(vtp_req *r, int status, const char *code,
		      const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_error_obj(r, status, code, field, msg, NULL);
}

const char *vtp__query(vtp_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}
