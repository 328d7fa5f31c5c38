/* Capped growable buffer. */
#include "buf.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "mem.h"

void vtp_buf_init(vtp_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static void ensure(vtp_buf *b, size_t need)
{
	size_t cap;

	if (need + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need + 1)
		cap *= 2;
	b->data = vtp_realloc(b->data, cap);
	b->cap = cap;
}

int vtp_buf_append(vtp_buf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return VTP_ETOOBIG;
	if (b->len + n + 1 > b->cap)
		ensure(b, b->len + n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int vtp_buf_appends(vtp_buf *b, const char *s)
{
	return vtp_buf_append(b, s, strlen(s));
}

int vtp_buf_vappendf(vtp_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return VTP_EINVAL;
	if ((size_t)n > b->max || b->len > b->max - (size_t)n)
		return VTP_ETOOBIG;
	ensure(b, b->len + (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int vtp_buf_appendf(vtp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vtp_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void vtp_buf_reset(vtp_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *vtp_buf_steal(vtp_buf *b, size_t *len)
{
	char *p = b->data;

	if (!p) {
		p = vtp_malloc(1);
		p[0] = '\0';
	}
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void vtp_buf_free(vtp_buf *b)
{
	VTP_FREE(&b->data);
	b->len = b->cap = 0;
}
