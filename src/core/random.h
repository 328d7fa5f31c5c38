/* Cryptographically secure randomness (OpenSSL), UUIDs and tokens. */
#ifndef VTP_CORE_RANDOM_H
#define VTP_CORE_RANDOM_H

#include <stdbool.h>
#include <stddef.h>

#define VTP_UUID_BUFLEN 37

/* Fills buf with n random bytes; aborts if the CSPRNG fails (never
 * continue with predictable ids or secrets). */
void vtp_random_bytes(void *buf, size_t n);
/* Writes 2*n lowercase hex chars of n random bytes plus NUL into out. */
void vtp_random_hex(char *out, size_t n);
/* Random (version 4) UUID, lowercase canonical form. */
void vtp_uuid_v4(char out[VTP_UUID_BUFLEN]);
/* Time-ordered (version 7) UUID: 48-bit Unix ms, a 12-bit counter within
 * the millisecond, then random. Strictly increasing within a process, so
 * rows ordered by time then id keep the order one process wrote them in;
 * B-tree inserts stay local. */
void vtp_uuid_v7(char out[VTP_UUID_BUFLEN]);
/* True if s is a canonical 8-4-4-4-12 hex UUID (either case). When out is
 * non-NULL it receives the lowercase form. */
bool vtp_uuid_parse(const char *s, char out[VTP_UUID_BUFLEN]);

#endif
