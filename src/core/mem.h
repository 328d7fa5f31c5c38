/* Allocation wrappers: out of memory aborts here, in one place, so no caller
 * half-handles it. vtp_free is NULL-safe. */
#ifndef VTP_CORE_MEM_H
#define VTP_CORE_MEM_H

#include <stddef.h>

void *vtp_malloc(size_t n);
void *vtp_calloc(size_t nmemb, size_t size);
void *vtp_realloc(void *p, size_t n);
char *vtp_strdup(const char *s);       /* NULL in, NULL out */
char *vtp_strndup(const char *s, size_t n);
void vtp_free(void *p);

/* Frees *pp and sets it to NULL. */
#define VTP_FREE(pp) do { vtp_free(*(pp)); *(pp) = NULL; } while (0)

#endif
