/* Filesystem-safe encoding of user-provided names. */
#include "path.h"

#include <openssl/sha.h>
#include <string.h>

static int safe_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

size_t vtp_path_encode_component(const char *in, char out[VTP_PATH_COMPONENT_MAX + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	/* room for the "~" + 16 hex digits suffix if the input is too long */
	const size_t cut = VTP_PATH_COMPONENT_MAX - 17;
	size_t n = 0, inlen = strlen(in);
	const unsigned char *p = (const unsigned char *)in;
	int truncated = 0;

	if (inlen == 0) { /* never an empty component; NUL cannot occur otherwise */
		memcpy(out, "%00", 4);
		return 3;
	}

	for (size_t i = 0; i < inlen; i++) {
		size_t need = safe_byte(p[i]) ? 1 : 3;

		if (n + need > cut) {
			/* Only cut if the whole thing does not fit. */
			size_t total = n;

			for (size_t j = i; j < inlen; j++)
				total += safe_byte(p[j]) ? 1 : 3;
			if (total > VTP_PATH_COMPONENT_MAX) {
				truncated = 1;
				break;
			}
		}
		if (safe_byte(p[i])) {
			out[n++] = (char)p[i];
		} else {
			out[n++] = '%';
			out[n++] = hex[p[i] >> 4];
			out[n++] = hex[p[i] & 15];
		}
	}
	if (truncated) {
		unsigned char md[SHA256_DIGEST_LENGTH];

		SHA256(p, inlen, md);
		out[n++] = '~';
		for (int i = 0; i < 8; i++) {
			out[n++] = hex[md[i] >> 4];
			out[n++] = hex[md[i] & 15];
		}
	}
	out[n] = '\0';
	return n;
}
