/* Where finished recordings live: one interface over a local folder
 * (file://PATH) and S3-compatible object storage (s3://bucket?endpoint=...&
 * region=...). Keys are relative, '/'-separated, built by the caller from
 * encoded components only (docs/ARCHITECTURE.md "Storage": "<encoded room>/<id>/recording.webm",
 * ".../hls/seg_00001.m4s", ".../tracks/<track>.vtpcap" and its segments
 * ".../tracks/<track>.vtpcap.000002"...); a key with an empty
 * component, "." / "..", a leading '/', a backslash or a control byte, or
 * longer than 1024 bytes (S3's limit) or with a component over 255 bytes,
 * is refused with VTP_EINVAL before anything touches a disk or the network,
 * by both backends alike.
 *
 * Capture and composition always work on local files (the "local root": the
 * folder itself for file://, a spool under $VTP_DATA_DIR for s3://); for
 * s3:// the compose child uploads what it made, and the local copies are
 * removed only after every upload is confirmed.
 *
 * Every function is thread-safe on a shared handle. Errors: 0, or
 * VTP_EINVAL (bad key/argument), VTP_ENOTFOUND (no such object),
 * VTP_EIO (local I/O, disk full), VTP_EUNAVAIL (the endpoint failed or is
 * unreachable after the retries, or refused with a 4xx), VTP_ETOOBIG (over
 * a caller's cap), VTP_ERANGE (a read that starts at or past the end).
 * Failures are logged (VTP_WARN: operation, key, HTTP status and S3's error
 * code; never a secret or a signature); VTP_ENOTFOUND is not.
 *
 * s3:// requests are path-style (endpoint/bucket/key), SigV4-signed with
 * VTP_S3_ACCESS_KEY / VTP_S3_SECRET_KEY (both unset: unsigned, for a public
 * bucket), retried on connection errors, timeouts, 5xx and 429 (4 attempts,
 * back-off 0.2 / 0.8 / 3.2 s +-25 %), never on another 4xx. Connect timeout
 * 5 s; large transfers fail below 1 KiB/s for 30 s rather than on a total
 * timeout. Knobs read at open (bytes; invalid values fail the open):
 *   VTP_S3_MULTIPART_THRESHOLD  multipart above this size (default 64 MiB)
 *   VTP_S3_PART_SIZE            part size (default 16 MiB; S3 refuses parts
 *                               under 5 MiB but the last: smaller values are
 *                               for test endpoints such as s3rver, and warn)
 *   VTP_S3_LIST_MAX_KEYS        keys per ListObjectsV2 page (1..1000, 1000;
 *                               tests lower it to cross pages) */
#ifndef VTP_STORAGE_H
#define VTP_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

typedef struct vtp_storage vtp_storage;

typedef struct vtp_storage_config {
	const char *url;        /* VTP_STORAGE_URL (already validated in form) */
	const char *data_dir;   /* VTP_DATA_DIR: the spool for s3:// is <data_dir>/spool */
	const char *access_key; /* VTP_S3_ACCESS_KEY (s3 only; may be NULL) */
	const char *secret_key; /* VTP_S3_SECRET_KEY */
} vtp_storage_config;

/* Parses the URL and prepares the backend (creates the local root, 0700).
 * No network traffic. On failure returns VTP_EINVAL or VTP_EIO with one
 * line in err naming what is wrong. file://PATH (file:///abs, file://rel);
 * s3://bucket[?endpoint=http(s)://host[:port]][&region=R]: the endpoint
 * has no path (values may be percent-encoded), default
 * https://s3.<region>.amazonaws.com, region default us-east-1. */
int vtp_storage_open(const vtp_storage_config *cfg, vtp_storage **out, char *err, size_t errlen);
void vtp_storage_free(vtp_storage *st);

/* true for s3:// */
bool vtp_storage_is_remote(const vtp_storage *st);
/* "file" or "s3" (logs, /metrics) */
const char *vtp_storage_kind(const vtp_storage *st);
/* The local folder under which keys are files: the file:// folder, or the
 * s3 spool. Never NULL. */
const char *vtp_storage_local_root(const vtp_storage *st);
/* <local root>/<key> into out; VTP_EINVAL on a bad key, VTP_ETOOBIG when
 * it does not fit. */
int vtp_storage_local_path(const vtp_storage *st, const char *key, char *out, size_t outlen);

/* Answers within a few seconds: the folder is writable / the bucket
 * answers a HEAD. 0 or VTP_EUNAVAIL (for /healthz). */
int vtp_storage_ping(vtp_storage *st);

/* Stores the local file at key. file://: nothing to do when path is
 * already <root>/<key>, else a copy (fsync'd, temp + rename, 0600). s3://:
 * PUT (x-amz-content-sha256 of the file, streamed: never held in memory),
 * or multipart upload above 64 MiB in 16 MiB parts (aborted on failure);
 * retried with back-off on 5xx/timeouts; 0 only once the endpoint confirmed
 * every byte (status 200 and ETag, then a HEAD whose size matches).
 * content_type may be NULL (application/octet-stream). A missing or
 * unreadable local file is VTP_EIO. */
int vtp_storage_put_file(vtp_storage *st, const char *key, const char *path,
			 const char *content_type);
/* Fetches key into the local file path (written to a temp name beside it,
 * fsync'd, renamed; missing folders are made 0700; the file is 0600). */
int vtp_storage_get_file(vtp_storage *st, const char *key, const char *path);
/* Appends a whole small object to out (whose max caps it: VTP_ETOOBIG,
 * and out is left as it was). */
int vtp_storage_get_buf(vtp_storage *st, const char *key, vtp_buf *out);
/* Size of the object; VTP_ENOTFOUND when absent. */
int vtp_storage_stat(vtp_storage *st, const char *key, int64_t *size);
/* Every key under prefix (which ends with '/'; "" lists everything),
 * sorted by bytes; *keys is an array of n vtp_malloc'd strings freed with
 * vtp_storage_keys_free (NULL when n is 0). file:// skips files being
 * written (temp names) and symbolic links. */
int vtp_storage_list(vtp_storage *st, const char *prefix, char ***keys, size_t *n);
void vtp_storage_keys_free(char **keys, size_t n);
/* Removes one object (absent is success). */
int vtp_storage_delete(vtp_storage *st, const char *key);
/* Removes every object under prefix (ends with '/'; "" is refused), and
 * for file:// the emptied folders (the prefix's own folder included; links
 * are removed, never followed); absent is success. s3://: ListObjectsV2 +
 * DeleteObjects in batches of 1000. */
int vtp_storage_delete_prefix(vtp_storage *st, const char *prefix);

/* s3:// only: a presigned GET URL (SigV4 query string, X-Amz-Expires =
 * expires_s, signed at now_s) for key, optionally asking S3 to answer with
 * the given Content-Disposition / Content-Type (response-content-*
 * parameters; NULL: none). *url is vtp_malloc'd. VTP_EINVAL for file://. */
int vtp_storage_presign_get(vtp_storage *st, const char *key, int64_t now_s, int expires_s,
			    const char *content_disposition, const char *content_type,
			    char **url);

/* A streaming read of [offset, offset+length) of key for the proxy mode
 * (length -1: to the end; 0 or offset < 0: VTP_EINVAL). s3:// runs one GET
 * with a Range header on its own thread into a 1 MiB buffer (file:// reads
 * the file; both backends work). Opening waits for the response headers:
 * VTP_ENOTFOUND, VTP_ERANGE (offset at or past the end), VTP_EUNAVAIL
 * (after the retries); *size (may be NULL) receives the object's total
 * size. read() (len > 0) blocks until data arrives and returns the byte
 * count, 0 at the end, or a negative code when the transfer failed part
 * way. Close (NULL-safe) any time; closing early aborts the transfer. A
 * reader is used by one thread at a time. */
typedef struct vtp_storage_reader vtp_storage_reader;
int vtp_storage_open_read(vtp_storage *st, const char *key, int64_t offset, int64_t length,
			  vtp_storage_reader **out, int64_t *size);
ssize_t vtp_storage_read(vtp_storage_reader *rd, void *buf, size_t len);
void vtp_storage_reader_close(vtp_storage_reader *rd);

/* ---- SigV4 (exposed for the unit tests against AWS's examples) ---------- */

typedef struct vtp_sigv4_header {
	const char *name;  /* any case; canonicalised (lower-cased, trimmed) */
	const char *value;
} vtp_sigv4_header;

typedef struct vtp_sigv4_request {
	const char *method;        /* "GET" */
	const char *path;          /* already URI-encoded path, e.g. "/bucket/a%20b" */
	const char *query;         /* raw query without '?', may be NULL/"" */
	const vtp_sigv4_header *headers; /* headers to sign (must include host) */
	size_t nheaders;
	const char *payload_sha256; /* hex, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;      /* "20150830T123600Z" */
	const char *region;        /* "us-east-1" */
	const char *service;       /* "s3" */
	const char *access_key;
	const char *secret_key;
} vtp_sigv4_request;

/* The Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") into out. Also returns the canonical
 * request and string to sign when the buffers are non-NULL (tests). */
int vtp_sigv4_authorization(const vtp_sigv4_request *rq, char *out, size_t outlen,
			    vtp_buf *canonical_request, vtp_buf *string_to_sign);
/* URI-encodes s per SigV4 (unreserved A-Za-z0-9-._~ kept; '/' kept when
 * keep_slash) and appends it to out. */
int vtp_sigv4_uri_encode(vtp_buf *out, const char *s, bool keep_slash);

#endif
