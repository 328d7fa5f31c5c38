/* Allocation wrappers that abort on exhaustion. */
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
	fprintf(stderr, "vtp-recorder: out of memory allocating %zu bytes\n", n);
	abort();
}

void *vtp_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *vtp_calloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *vtp_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *vtp_strdup(const char *s)
{
	if (!s)
		return NULL;
	return vtp_strndup(s, strlen(s));
}

char *vtp_strndup(const char *s, size_t n)
{
	char *d;
	size_t len = 0;

	if (!s)
		return NULL;
	while (len < n && s[len])
		len++;
	d = vtp_malloc(len + 1);
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

void vtp_free(void *p)
{
	free(p);
}
