/* Fuzz target: what a media request brings from outside: the Range header
 * (vtp__parse_range), the media token (vtp_media_token_verify) and, as a
 * stand-in for a damaged stored playlist, the playlist rewriter. Must never
 * crash; an accepted range lies inside the file; a token is accepted only
 * when it is the one signed for those values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "auth/auth.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[] = "fuzzing key, 32 bytes or more...";
static const char rec[] = "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[4096];
	int64_t off = -1, len = -1;
	int rc;

	if (size < 1 || size >= sizeof(in))
		return 0;
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0: {
		static const int64_t sizes[] = {0, 1, 100, 1 << 20, INT64_MAX / 2};

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			rc = vtp__parse_range(in, sizes[i], &off, &len);
			if (rc < -1 || rc > 1)
				abort();
			if (rc == 1 && (off < 0 || len < 1 || off + len > sizes[i]))
				abort();
		}
		break;
	}
	case 1: {
		char user[VTP_UUID_BUFLEN], again[VTP_MEDIA_TOKEN_BUFLEN];
		const char *reason = NULL;
		vtp_media_scope scope;

		rc = vtp_media_token_verify(key, sizeof(key) - 1, in, rec, 1000, user, &scope, &reason);
		if (rc == 0) {
			/* only the exact token the signer makes */
			long long exp = strtoll(in + 35, NULL, 10);

			vtp_media_token_sign(key, sizeof(key) - 1, scope, rec, user, exp, again);
			if (strcmp(again, in) != 0)
				abort();
		} else if (!reason) {
			abort();
		}
		break;
	}
	default: {
		vtp_buf out;

		vtp_buf_init(&out, 16384);
		vtp__rewrite_playlist(in, size - 1, "v.0.1.2", &out);
		vtp_buf_free(&out);
		break;
	}
	}
	return 0;
}
