/* The storage front: picks the backend from the URL scheme, refuses bad
 * keys before any backend sees them (the same rules for file:// and s3://,
 * so a key that works on one works on the other), and dispatches through
 * the ops table. Also the local-file helpers both backends use to write a
 * file safely (temp name, fsync, rename, fsync of the folder). */
#include "storage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

/* ---- keys ---------------------------------------------------------------- */

static bool component_ok(const char *s, size_t n)
{
	if (n == 0 || n > VTP__STORAGE_COMPONENT_MAX)
		return false;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	return true;
}

/* The first n bytes of key as a relative '/'-separated path. */
static bool path_ok(const char *key, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > VTP__STORAGE_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			return false;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i == n || key[i] == '/') {
			if (!component_ok(key + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

bool vtp__storage_key_ok(const char *key)
{
	return key && path_ok(key, strlen(key));
}

bool vtp__storage_prefix_ok(const char *prefix, bool allow_empty)
{
	size_t n;

	if (!prefix)
		return false;
	n = strlen(prefix);
	if (n == 0)
		return allow_empty;
	return prefix[n - 1] == '/' && path_ok(prefix, n - 1);
}

int vtp__storage_keys_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- local files ----------------------------------------------------------- */

int vtp__storage_mkdirs(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return VTP_EIO;
	memcpy(path, dir, n + 1);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			VTP_WARN("storage: cannot create folder %s: %s", path, strerror(errno));
			return VTP_EIO;
		}
		if (i < n)
			path[i] = '/';
	}
	{
		struct stat sb;

		if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			VTP_WARN("storage: %s is not a folder", path);
			return VTP_EIO;
		}
	}
	return 0;
}

int vtp__storage_mkparents(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash)
		return 0;
	n = (size_t)(slash - path);
	if (n == 0)
		return 0;
	if (n >= sizeof(dir))
		return VTP_EIO;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return vtp__storage_mkdirs(dir);
}

int vtp__storage_tmpfile(const char *path, char *tmp, size_t tmplen)
{
	char rnd[17];
	int fd;
	int n;

	if (vtp__storage_mkparents(path) != 0)
		return VTP_EIO;
	vtp_random_hex(rnd, 8);
	n = snprintf(tmp, tmplen, "%s%s%s", path, VTP__STORAGE_TMP_MARK, rnd);
	if (n < 0 || (size_t)n >= tmplen)
		return VTP_EIO;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		VTP_WARN("storage: cannot create %s: %s", tmp, strerror(errno));
		return VTP_EIO;
	}
	return fd;
}

static void fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (n == 0)
		snprintf(dir, sizeof(dir), "/");
	else if (n < sizeof(dir)) {
		memcpy(dir, path, n);
		dir[n] = '\0';
	} else
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int vtp__storage_commit(int fd, const char *tmp, const char *path)
{
	int rc = 0;

	if (fsync(fd) != 0) {
		VTP_WARN("storage: fsync %s: %s", tmp, strerror(errno));
		rc = VTP_EIO;
	}
	if (close(fd) != 0 && rc == 0) {
		VTP_WARN("storage: close %s: %s", tmp, strerror(errno));
		rc = VTP_EIO;
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		VTP_WARN("storage: rename %s: %s", path, strerror(errno));
		rc = VTP_EIO;
	}
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	fsync_parent(path);
	return 0;
}

bool vtp__storage_is_tmpname(const char *name)
{
	return strstr(name, VTP__STORAGE_TMP_MARK) != NULL;
}

int vtp__storage_env_bytes(const char *name, int64_t min, int64_t max, int64_t *val,
			   char *err, size_t errlen)
{
	const char *v = getenv(name);
	char *end = NULL;
	long long x;

	if (!v || !*v)
		return 0;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || x < min || x > max) {
		snprintf(err, errlen, "%s: invalid value '%.40s' (expected bytes, %lld..%lld)",
			 name, v, (long long)min, (long long)max);
		return VTP_EINVAL;
	}
	*val = x;
	return 0;
}

/* ---- the front ----------------------------------------------------------------- */

int vtp_storage_open(const vtp_storage_config *cfg, vtp_storage **out, char *err, size_t errlen)
{
	vtp_storage *st = NULL;
	int rc;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!cfg || !cfg->url) {
		snprintf(err, errlen, "VTP_STORAGE_URL: missing");
		return VTP_EINVAL;
	}
	st = vtp_calloc(1, sizeof(*st));
	if (strncmp(cfg->url, "file://", 7) == 0)
		rc = vtp__fs_open(st, cfg->url + 7, err, errlen);
	else if (strncmp(cfg->url, "s3://", 5) == 0)
		rc = vtp__s3_open(st, cfg, err, errlen);
	else {
		snprintf(err, errlen, "VTP_STORAGE_URL: invalid value '%.80s' (expected file://PATH "
			 "or s3://bucket?endpoint=...&region=...)", cfg->url);
		rc = VTP_EINVAL;
	}
	if (rc != 0) {
		vtp_free(st->local_root);
		vtp_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

void vtp_storage_free(vtp_storage *st)
{
	if (!st)
		return;
	if (st->ops && st->ops->free)
		st->ops->free(st->be);
	vtp_free(st->local_root);
	vtp_free(st);
}

bool vtp_storage_is_remote(const vtp_storage *st)
{
	return st->ops->remote;
}

const char *vtp_storage_kind(const vtp_storage *st)
{
	return st->ops->kind;
}

const char *vtp_storage_local_root(const vtp_storage *st)
{
	return st->local_root;
}

int vtp_storage_local_path(const vtp_storage *st, const char *key, char *out, size_t outlen)
{
	int n;

	if (!vtp__storage_key_ok(key))
		return VTP_EINVAL;
	n = snprintf(out, outlen, "%s/%s", st->local_root, key);
	if (n < 0 || (size_t)n >= outlen)
		return VTP_ETOOBIG;
	return 0;
}

int vtp_storage_ping(vtp_storage *st)
{
	return st->ops->ping(st->be);
}

int vtp_storage_put_file(vtp_storage *st, const char *key, const char *path,
			 const char *content_type)
{
	if (!vtp__storage_key_ok(key) || !path || !*path)
		return VTP_EINVAL;
	if (content_type && strpbrk(content_type, "\r\n"))
		return VTP_EINVAL;
	return st->ops->put_file(st->be, key, path, content_type);
}

int vtp_storage_get_file(vtp_storage *st, const char *key, const char *path)
{
	if (!vtp__storage_key_ok(key) || !path || !*path)
		return VTP_EINVAL;
	return st->ops->get_file(st->be, key, path);
}

int vtp_storage_get_buf(vtp_storage *st, const char *key, vtp_buf *out)
{
	if (!vtp__storage_key_ok(key) || !out)
		return VTP_EINVAL;
	return st->ops->get_buf(st->be, key, out);
}

int vtp_storage_stat(vtp_storage *st, const char *key, int64_t *size)
{
	if (!vtp__storage_key_ok(key) || !size)
		return VTP_EINVAL;
	return st->ops->stat(st->be, key, size);
}

int vtp_storage_list(vtp_storage *st, const char *prefix, char ***keys, size_t *n)
{
	if (!keys || !n)
		return VTP_EINVAL;
	*keys = NULL;
	*n = 0;
	if (!vtp__storage_prefix_ok(prefix, true))
		return VTP_EINVAL;
	return st->ops->list(st->be, prefix, keys, n);
}

void vtp_storage_keys_free(char **keys, size_t n)
{
	if (!keys)
		return;
	for (size_t i = 0; i < n; i++)
		vtp_free(keys[i]);
	vtp_free(keys);
}

int vtp_storage_delete(vtp_storage *st, const char *key)
{
	if (!vtp__storage_key_ok(key))
		return VTP_EINVAL;
	return st->ops->del(st->be, key);
}

int vtp_storage_delete_prefix(vtp_storage *st, const char *prefix)
{
	if (!vtp__storage_prefix_ok(prefix, false))
		return VTP_EINVAL;
	return st->ops->delete_prefix(st->be, prefix);
}

int vtp_storage_presign_get(vtp_storage *st, const char *key, int64_t now_s, int expires_s,
			    const char *content_disposition, const char *content_type,
			    char **url)
{
	if (!url)
		return VTP_EINVAL;
	*url = NULL;
	if (!vtp__storage_key_ok(key) || !st->ops->presign_get)
		return VTP_EINVAL;
	return st->ops->presign_get(st->be, key, now_s, expires_s, content_disposition,
				    content_type, url);
}

int vtp_storage_open_read(vtp_storage *st, const char *key, int64_t offset, int64_t length,
			  vtp_storage_reader **out, int64_t *size)
{
	if (!out)
		return VTP_EINVAL;
	*out = NULL;
	if (!vtp__storage_key_ok(key) || offset < 0 || length == 0 || length < -1 ||
	    !st->ops->open_read)
		return VTP_EINVAL;
	if (length > 0 && offset > INT64_MAX - length)
		return VTP_EINVAL;
	return st->ops->open_read(st->be, key, offset, length, out, size);
}

ssize_t vtp_storage_read(vtp_storage_reader *rd, void *buf, size_t len)
{
	if (!rd)
		return VTP_EINVAL;
	if (len == 0)
		return 0;
	return rd->read(rd, buf, len);
}

void vtp_storage_reader_close(vtp_storage_reader *rd)
{
	if (rd)
		rd->close(rd);
}
