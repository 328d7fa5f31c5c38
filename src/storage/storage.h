/* Where finished recordings live: one interface over a local folder
 * (file://PATH) and S3-compatible object storage (s3://bucket?endpoint=...&
 * region=...). Keys are relative, '/'-separated, built by the caller from
 * encoded components only (CONTRACT §5: "<encoded room>/<id>/recording.webm",
 * ".../hls/seg_00001.m4s", ".../tracks/<track>.vtpcap"); a key with an empty
 * component, "." / "..", a leading '/', a backslash or a control byte is
 * refused with VTP_EINVAL before anything touches a disk or the network.
 *
 * Capture and composition always work on local files (the "local root": the
 * folder itself for file://, a spool under $VTP_DATA_DIR for s3://); for
 * s3:// the compose child uploads what it made, and the local copies are
 * removed only after every upload is confirmed.
 *
 * Every function is thread-safe on a shared handle. Errors: 0, or
 * VTP_EINVAL (bad key/argument), VTP_ENOTFOUND (no such object),
 * VTP_EIO (local I/O, disk full), VTP_EUNAVAIL (the endpoint failed or is
 * unreachable after the retries), VTP_ETOOBIG (over a caller's cap). */
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
 * line in err naming what is wrong. */
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
 * PUT, or multipart upload above 64 MiB in 16 MiB parts; retried with
 * back-off on 5xx/timeouts; 0 only once the endpoint confirmed every byte
 * (status 200 and ETag, then a HEAD whose size matches). content_type may
 * be NULL (application/octet-stream). */
int vtp_storage_put_file(vtp_storage *st, const char *key, const char *path,
			 const char *content_type);
/* Fetches key into the local file path (written to a temp name, fsync'd,
 * renamed). */
int vtp_storage_get_file(vtp_storage *st, const char *key, const char *path);
/* Reads a whole small object into out (whose max caps it: VTP_ETOOBIG). */
int vtp_storage_get_buf(vtp_storage *st, const char *key, vtp_buf *out);
/* Size of the object; VTP_ENOTFOUND when absent. */
int vtp_storage_stat(vtp_storage *st, const char *key, int64_t *size);
/* Every key under prefix (which ends with '/'), sorted; *keys is an array
 * of n vtp_malloc'd strings freed with vtp_storage_keys_free. */
int vtp_storage_list(vtp_storage *st, const char *prefix, char ***keys, size_t *n);
void vtp_storage_keys_free(char **keys, size_t n);
/* Removes one object (absent is success). */
int vtp_storage_delete(vtp_storage *st, const char *key);
/* Removes every object under prefix (ends with '/'), and for file:// the
 * emptied folders; absent is success. */
int vtp_storage_delete_prefix(vtp_storage *st, const char *prefix);

/* s3:// only: a presigned GET URL (SigV4 query string, X-Amz-Expires =
 * expires_s, signed at now_s) for key, optionally asking S3 to answer with
 * the given Content-Disposition / Content-Type (response-content-*
 * parameters; NULL: none). *url is vtp_malloc'd. VTP_EINVAL for file://. */
int vtp_storage_presign_get(vtp_storage *st, const char *key, int64_t now_s, int expires_s,
			    const char *content_disposition, const char *content_type,
			    char **url);

/* s3:// only: a streaming read of [offset, offset+length) of key for the
 * proxy mode (length -1: to the end). Opening waits for the response
 * headers: VTP_ENOTFOUND, VTP_EUNAVAIL; *size receives the object's total
 * size. read() blocks until data arrives and returns the byte count, 0 at
 * the end, or a negative code when the transfer failed part way. Closing
 * early aborts the transfer. */
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
