/* Random bytes, hex tokens and UUIDs from OpenSSL's CSPRNG. */
#include "random.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vtp_random_bytes(void *buf, size_t n)
{
	if (RAND_bytes(buf, (int)n) != 1) {
		fprintf(stderr, "vtp-recorder: the random number generator failed\n");
		abort();
	}
}

void vtp_random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[64];

	while (n) {
		size_t k = n < sizeof(b) ? n : sizeof(b);

		vtp_random_bytes(b, k);
		for (size_t i = 0; i < k; i++) {
			*out++ = hex[b[i] >> 4];
			*out++ = hex[b[i] & 15];
		}
		n -= k;
	}
	*out = '\0';
}

void vtp_uuid_v4(char out[VTP_UUID_BUFLEN])
{
	unsigned char b[16];

	vtp_random_bytes(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, VTP_UUID_BUFLEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
}

bool vtp_uuid_parse(const char *s, char out[VTP_UUID_BUFLEN])
{
	char tmp[VTP_UUID_BUFLEN];

	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
			tmp[i] = c;
			continue;
		}
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		tmp[i] = c;
	}
	tmp[36] = '\0';
	if (out)
		memcpy(out, tmp, VTP_UUID_BUFLEN);
	return true;
}
