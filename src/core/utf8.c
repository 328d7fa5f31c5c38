/* UTF-8 validation and sanitising (RFC 3629). */
#include "utf8.h"

#include <string.h>

#include "mem.h"

size_t vtp_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	size_t len;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		len = 2, c &= 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, c &= 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

static bool is_control(uint32_t c)
{
	return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F);
}

bool vtp_utf8_valid(const char *s, bool no_control)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n) {
		uint32_t c;
		size_t k = vtp_utf8_next(p, n, &c);

		if (!k || (no_control && is_control(c)))
			return false;
		p += k;
		n -= k;
	}
	return true;
}

char *vtp_utf8_sanitize(const char *s, size_t max_bytes)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, used = 0;
	char *out;

	if (!s)
		return NULL;
	n = strlen(s);
	out = vtp_malloc(max_bytes + 1);
	while (n) {
		uint32_t c;
		size_t k = vtp_utf8_next(p, n, &c);
		const char *src = (const char *)p;
		size_t len = k;

		if (!k || is_control(c)) {
			src = "\xEF\xBF\xBD"; /* U+FFFD */
			len = 3;
			k = k ? k : 1;
		}
		if (used + len > max_bytes)
			break;
		memcpy(out + used, src, len);
		used += len;
		p += k;
		n -= k;
	}
	out[used] = '\0';
	return out;
}
