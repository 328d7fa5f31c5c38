/* Storage internals shared by storage.c (dispatch, key rules, local-file
 * helpers), fs.c (file://), s3.c (s3://) and sigv4.c (request signing).
 * Never included from outside src/storage; the unit tests include it to
 * reach the signing-key derivation and the presign core, which AWS
 * documents with examples that path-style URLs cannot reproduce, and the
 * fuzz target tests/fuzz/fuzz_s3_xml.c to reach the XML readers. */
#ifndef VTP_STORAGE_INT_H
#define VTP_STORAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "storage.h"

#define VTP__STORAGE_KEY_MAX 1024      /* bytes; S3's own limit */
#define VTP__STORAGE_COMPONENT_MAX 255 /* NAME_MAX */
#define VTP__STORAGE_TMP_MARK ".vtptmp." /* in the names of files being written */

/* One backend: every function gets the backend's private state and keys
 * that storage.c has already validated. A NULL slot answers VTP_EINVAL. */
typedef struct vtp__storage_ops {
	const char *kind;
	bool remote;
	void (*free)(void *be);
	int (*ping)(void *be);
	int (*put_file)(void *be, const char *key, const char *path, const char *content_type);
	int (*get_file)(void *be, const char *key, const char *path);
	int (*get_buf)(void *be, const char *key, vtp_buf *out);
	int (*stat)(void *be, const char *key, int64_t *size);
	int (*list)(void *be, const char *prefix, char ***keys, size_t *n);
	int (*del)(void *be, const char *key);
	int (*delete_prefix)(void *be, const char *prefix);
	int (*presign_get)(void *be, const char *key, int64_t now_s, int expires_s,
			   const char *content_disposition, const char *content_type, char **url);
	int (*open_read)(void *be, const char *key, int64_t offset, int64_t length,
			 vtp_storage_reader **out, int64_t *size);
} vtp__storage_ops;

struct vtp_storage {
	const vtp__storage_ops *ops;
	void *be;
	char *local_root;
};

/* A backend's reader starts with this. */
struct vtp_storage_reader {
	ssize_t (*read)(vtp_storage_reader *rd, void *buf, size_t len);
	void (*close)(vtp_storage_reader *rd);
};

/* Backend constructors: fill st->ops, st->be, st->local_root. */
int vtp__fs_open(vtp_storage *st, const char *root, char *err, size_t errlen);
int vtp__s3_open(vtp_storage *st, const vtp_storage_config *cfg, char *err, size_t errlen);

/* ---- keys (storage.c) ---------------------------------------------------- */

bool vtp__storage_key_ok(const char *key);
/* A non-empty valid key followed by '/'; "" only when allow_empty. */
bool vtp__storage_prefix_ok(const char *prefix, bool allow_empty);
int vtp__storage_keys_cmp(const void *a, const void *b); /* qsort on char * */

/* ---- local files (storage.c) --------------------------------------------- */

/* mkdir -p with mode 0700 for every missing folder. VTP_EIO. */
int vtp__storage_mkdirs(const char *dir);
/* mkdir -p of the folder holding path. */
int vtp__storage_mkparents(const char *path);
/* Creates "<path>.vtptmp.<random>" (0600, O_EXCL) after making the parent
 * folders; the name goes to tmp. Returns the fd or VTP_EIO. */
int vtp__storage_tmpfile(const char *path, char *tmp, size_t tmplen);
/* fsync fd, close it, rename tmp to path, fsync the folder. On failure
 * tmp is removed. VTP_EIO. fd is closed either way. */
int vtp__storage_commit(int fd, const char *tmp, const char *path);
bool vtp__storage_is_tmpname(const char *name);
/* Environment knob holding a byte count in [min, max]: 0 when unset (def
 * kept), VTP_EINVAL with a line in err otherwise. */
int vtp__storage_env_bytes(const char *name, int64_t min, int64_t max, int64_t *val,
			   char *err, size_t errlen);

/* ---- S3 XML (s3.c), reachable for the fuzz target ----------------------- */

/* XML character data to text: the five entities and &#N; / &#xN; (no NUL,
 * no surrogates); anything else after '&', markup or a NUL byte is
 * VTP_EINVAL. Appends to out. */
int vtp__s3_xml_unescape(const char *s, size_t n, vtp_buf *out);
/* Text to XML character data (&, <, > escaped), appended to out. */
int vtp__s3_xml_escape(vtp_buf *out, const char *s);
/* The unescaped text of the first <tag>...</tag> in xml (NUL-terminated),
 * vtp_malloc'd; NULL when absent or not valid character data. */
char *vtp__s3_xml_get(const char *xml, const char *tag);
/* One ListObjectsV2 page: appends the keys starting with prefix to
 * keys, n and cap (vtp_malloc'd strings; the caller frees them and the
 * array, also on failure), sets *truncated and *token (freed and replaced;
 * NULL unless truncated). 0, VTP_EUNAVAIL for a page that is not a listing
 * or has a bad key, VTP_ETOOBIG past the key cap. */
int vtp__s3_parse_list_page(const char *xml, const char *prefix, char ***keys, size_t *n,
			    size_t *cap, bool *truncated, char **token);

/* ---- SigV4 (sigv4.c) ----------------------------------------------------- */

#define VTP__SHA256_HEX 65
#define VTP__EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

void vtp__sha256_hex(const void *p, size_t n, char out[VTP__SHA256_HEX]);
/* SHA-256 of [off, off+len) of fd, read with pread in chunks. VTP_EIO. */
int vtp__sha256_fd_hex(int fd, int64_t off, int64_t len, char out[VTP__SHA256_HEX]);
/* kSigning = HMAC chain over date (YYYYMMDD), region, service, "aws4_request". */
void vtp__sigv4_signing_key(const char *secret, const char *date8, const char *region,
			    const char *service, unsigned char out[32]);
/* The canonical query string of raw (split on '&', each name and value
 * percent-decoded then SigV4-encoded, sorted by name then value). */
int vtp__sigv4_canonical_query(vtp_buf *out, const char *raw);
/* "YYYYMMDDTHHMMSSZ" for a Unix time. */
void vtp__sigv4_amz_date(int64_t unix_s, char out[17]);

typedef struct vtp__sigv4_param {
	const char *name; /* raw (not encoded) */
	const char *value;
} vtp__sigv4_param;

typedef struct vtp__sigv4_presign_request {
	const char *method;   /* "GET" */
	const char *host;     /* the Host header value, e.g. "examplebucket.s3.amazonaws.com" */
	const char *path;     /* URI-encoded, e.g. "/test.txt" */
	const vtp__sigv4_param *params; /* extra query parameters (response-content-*) */
	size_t nparams;
	const char *amz_date;
	int expires_s;
	const char *region;
	const char *service;
	const char *access_key;
	const char *secret_key;
} vtp__sigv4_presign_request;

/* The query string of a presigned URL (canonical order, then
 * "&X-Amz-Signature=..."), appended to out. */
int vtp__sigv4_presign_query(const vtp__sigv4_presign_request *rq, vtp_buf *out,
			     vtp_buf *canonical_request, vtp_buf *string_to_sign);

#endif
