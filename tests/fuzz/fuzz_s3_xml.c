/* Fuzz target: the S3 response readers (storage/s3.c) on arbitrary bytes as
 * the bucket's answer: a ListObjectsV2 page (keys, truncation, continuation
 * token), single values (<Code>, <UploadId>, <Key>) and the character-data
 * decoder. Must never crash or leak. Accepted keys start with the prefix and
 * hold no NUL; a truncated page has a non-empty token; decoded text holds no
 * NUL, is never longer than its source, and escaping it then decoding it
 * again gives it back. Invariants abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "storage/storage_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void list_page(const char *xml, const char *prefix)
{
	char **keys = NULL, *token = NULL;
	size_t n = 0, cap = 0;
	bool truncated = false;
	int rc = vtp__s3_parse_list_page(xml, prefix, &keys, &n, &cap, &truncated, &token);

	if (n > cap)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (!keys[i] || strncmp(keys[i], prefix, strlen(prefix)) != 0)
			abort();
		vtp_free(keys[i]);
	}
	if (rc == 0 && truncated && (!token || !*token))
		abort();
	if (rc == 0 && !truncated && token)
		abort();
	vtp_free(keys);
	vtp_free(token);
}

static void decode_roundtrip(const char *s, size_t n)
{
	vtp_buf out, esc, back;

	vtp_buf_init(&out, n + 1);
	vtp_buf_init(&esc, 8 * n + 16);
	vtp_buf_init(&back, n + 1);
	if (vtp__s3_xml_unescape(s, n, &out) == 0 && out.data) {
		if (out.len > n || memchr(out.data, '\0', out.len))
			abort();
		if (vtp__s3_xml_escape(&esc, out.data) != 0 ||
		    vtp__s3_xml_unescape(esc.data ? esc.data : "", esc.len, &back) != 0 ||
		    back.len != out.len || (out.len && memcmp(back.data, out.data, out.len) != 0))
			abort();
	}
	vtp_buf_free(&out);
	vtp_buf_free(&esc);
	vtp_buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const tags[] = {"Code", "UploadId", "Key", "NextContinuationToken"};
	char *xml = vtp_malloc(size + 1);

	memcpy(xml, data, size);
	xml[size] = '\0'; /* the client's buffers are NUL-terminated too */
	list_page(xml, "");
	list_page(xml, "room/");
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		char *v = vtp__s3_xml_get(xml, tags[i]);

		if (v && strlen(v) > size)
			abort();
		vtp_free(v);
	}
	decode_roundtrip((const char *)data, size);
	vtp_free(xml);
	return 0;
}
