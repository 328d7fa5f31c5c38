/* FNV-1a, 64-bit: the hash of the in-memory tables (caches, statement
 * cache). Not for anything an attacker could exploit by collisions beyond
 * evicting a cache slot. */
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

#endif
