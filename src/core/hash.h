/* FNV-1a, 64-bit: the hash of the in-memory tables (caches, statement
 * cache). Not for anything an attacker could exploit by collisions beyond
 * evicting a cache slot. And hex digits. */
#ifndef VTP_CORE_HASH_H
#define VTP_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t vtp_fnv1a(const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The value of one hex digit (either case), -1 for anything else. */
static inline int vtp_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
