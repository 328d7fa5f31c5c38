/* CRC-32C in software by slicing-by-8 (eight 256-entry tables: one table
 * look-up per input byte, eight independent ones per 64-bit word), or with
 * the SSE4.2 crc32 instruction when the CPU has it. The tables and the
 * choice are made once, under pthread_once. Words are assembled byte by
 * byte, so the software path does not depend on the host's byte order or
 * on alignment. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static uint32_t (*crc_update)(uint32_t crc, const uint8_t *p, size_t n);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* crc here is the raw register (already inverted by the caller). */
static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);

		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		      crc_table[1][p[6]] ^ crc_table[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
	unsigned long long c = crc;

	while (n >= 8) {
		unsigned long long w;

		memcpy(&w, p, 8); /* x86 is little-endian: no reordering */
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		n -= 8;
	}
	while (n--)
		c = __builtin_ia32_crc32qi((unsigned int)c, *p++);
	return (uint32_t)c;
}
#endif

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++) {
			uint32_t c = crc_table[t - 1][i];

			crc_table[t][i] = (c >> 8) ^ crc_table[0][c & 0xff];
		}
	crc_update = crc32c_sw;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		crc_update = crc32c_sse42;
#endif
}

uint32_t vtp_crc32c(uint32_t crc, const void *data, size_t n)
{
	pthread_once(&crc_once, crc_init);
	if (n == 0)
		return crc;
	return ~crc_update(~crc, data, n);
}
