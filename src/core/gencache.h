/* A bounded cache of rendered answers that stay valid while a generation
 * number stays the same (the store's, see vtp_store_generation). Keys are
 * byte strings; each entry carries a small tag (what the caller must
 * re-check before serving it, e.g. who owns the object) and a body.
 * Direct-mapped slots with one lock each: a colliding key replaces the
 * older entry. Generation 0 means "cannot promise": never stored, never
 * served. Thread-safe. */
#ifndef VTP_CORE_GENCACHE_H
#define VTP_CORE_GENCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define VTP_GENCACHE_KEY_MAX 512
#define VTP_GENCACHE_TAG_MAX 64

typedef struct vtp_gencache vtp_gencache;

/* slots: rounded up to a power of two; body_max: larger bodies are not kept. */
vtp_gencache *vtp_gencache_new(size_t slots, size_t body_max);
void vtp_gencache_free(vtp_gencache *c);
/* On a hit (same key, stored at this generation) appends the body to out,
 * copies the tag into tag (tag_len bytes, may be 0) and returns true. */
bool vtp_gencache_get(vtp_gencache *c, const char *key, size_t key_len, uint64_t generation,
		      vtp_buf *out, void *tag, size_t tag_len);
void vtp_gencache_put(vtp_gencache *c, const char *key, size_t key_len, uint64_t generation,
		      const char *body, size_t body_len, const void *tag, size_t tag_len);

#endif
