/* CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and
 * final xor 0xFFFFFFFF), the checksum of the packet log. */
#ifndef VTP_CORE_CRC32C_H
#define VTP_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Update form, like zlib's crc32(): start with crc = 0 and chain calls;
 * vtp_crc32c(vtp_crc32c(0, a, na), b, nb) == vtp_crc32c(0, ab, na + nb).
 * Thread-safe. crc32c("123456789") is 0xE3069283. */
uint32_t vtp_crc32c(uint32_t crc, const void *data, size_t n);

#endif
