/* Capped growable byte buffer for untrusted input (curl's dynbuf idea): it
 * never grows past `max`, so a hostile peer cannot make us allocate without
 * bound. The data is always NUL-terminated for convenience. */
#ifndef VTP_CORE_BUF_H
#define VTP_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct vtp_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
} vtp_buf;

void vtp_buf_init(vtp_buf *b, size_t max);
/* VTP_ETOOBIG (and nothing appended) when len + n would exceed max. */
int vtp_buf_append(vtp_buf *b, const void *p, size_t n);
int vtp_buf_appends(vtp_buf *b, const char *s);
int vtp_buf_appendf(vtp_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int vtp_buf_vappendf(vtp_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void vtp_buf_reset(vtp_buf *b);
/* Hands the bytes to the caller (who frees with vtp_free); b is emptied. */
char *vtp_buf_steal(vtp_buf *b, size_t *len);
void vtp_buf_free(vtp_buf *b);

#endif
