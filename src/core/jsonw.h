/* A streaming JSON writer into a capped buffer, for hot responses (a list of
 * recordings is ~500 members): no tree is built, strings are escaped in
 * runs. Commas are tracked per nesting level. */
#ifndef VTP_CORE_JSONW_H
#define VTP_CORE_JSONW_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define VTP_JW_MAX_DEPTH 16

typedef struct vtp_jw {
	vtp_buf *b;
	int depth;
	bool first[VTP_JW_MAX_DEPTH];
	bool after_key;
} vtp_jw;

void vtp_jw_init(vtp_jw *w, vtp_buf *b);
/* Continues an object already open in the buffer with at least one member
 * (text kept from an earlier writer): the next key gets its comma. */
void vtp_jw_resume_object(vtp_jw *w);
void vtp_jw_object_begin(vtp_jw *w);
void vtp_jw_object_end(vtp_jw *w);
void vtp_jw_array_begin(vtp_jw *w);
void vtp_jw_array_end(vtp_jw *w);
/* Member name, a literal of ours (written as is, not escaped); must be
 * followed by exactly one value. */
void vtp_jw_key(vtp_jw *w, const char *key);
void vtp_jw_string(vtp_jw *w, const char *s); /* NULL writes null */
void vtp_jw_int(vtp_jw *w, long long v);
void vtp_jw_double(vtp_jw *w, double v);     /* non-finite writes null */
void vtp_jw_bool(vtp_jw *w, bool v);
void vtp_jw_null(vtp_jw *w);
/* RFC 3339 time with ms; 0 writes null. */
void vtp_jw_time(vtp_jw *w, int64_t ms);
/* Pre-serialised JSON (trusted, e.g. a stored JSON column); NULL -> null. */
void vtp_jw_raw(vtp_jw *w, const char *json);

#endif
