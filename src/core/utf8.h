/* UTF-8 checks for bytes from outside (headers, query strings, paths): the
 * JSON layer, the database and the logs all require valid UTF-8, and a log
 * line must not carry terminal control characters. */
#ifndef VTP_CORE_UTF8_H
#define VTP_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid, shortest-form UTF-8 sequence at p (at most n
 * bytes; no surrogates, nothing above U+10FFFF), or 0 if there is none. */
size_t vtp_utf8_next(const unsigned char *p, size_t n, uint32_t *cp);
/* True if s is valid UTF-8 and, with no_control, holds no C0/C1 control
 * character or DEL. */
bool vtp_utf8_valid(const char *s, bool no_control);
/* A copy of s (NULL -> NULL) that is valid UTF-8 without control characters:
 * each invalid sequence or control character becomes U+FFFD; cut at a
 * character boundary to at most max_bytes. Freed with vtp_free. */
char *vtp_utf8_sanitize(const char *s, size_t max_bytes);

#endif
