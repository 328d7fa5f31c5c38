/* Turning user strings into safe single path components. No user string ever
 * reaches a file path unencoded (docs/ARCHITECTURE.md "Storage"). */
#ifndef VTP_CORE_PATH_H
#define VTP_CORE_PATH_H

#include <stddef.h>

#define VTP_PATH_COMPONENT_MAX 160 /* well under NAME_MAX (255) */

/* Encodes `in` into one path component: bytes outside [A-Za-z0-9_-] become
 * %XX (so "." and "/" never survive, and neither do control bytes). An input
 * whose encoding would exceed VTP_PATH_COMPONENT_MAX is cut and suffixed with
 * "~" and 16 hex digits of its SHA-256, keeping distinct inputs distinct.
 * The empty string becomes "%00" (no other input can produce it).
 * `out` must hold VTP_PATH_COMPONENT_MAX + 1 bytes. Returns the length. */
size_t vtp_path_encode_component(const char *in, char out[VTP_PATH_COMPONENT_MAX + 1]);

#endif
