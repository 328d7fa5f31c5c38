/* file:// storage: keys are files under one local folder (the URL's path).
 * Folders are 0700 and files 0600 (docs/ARCHITECTURE.md "Storage"). A copy is written to a
 * temp name in the target folder, fsync'd and renamed, so a reader sees the
 * old file or the whole new one. Walks use openat/unlinkat from directory
 * descriptors and never follow symbolic links, so nothing outside the root
 * is listed or removed whatever the tree holds. */
#include "storage_int.h"

#include <dirent.h>
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

#define FS_COPY_CHUNK (256 * 1024)
#define FS_MAX_DEPTH 32

typedef struct fs_backend {
	char *root;
} fs_backend;

static int fs_path(const fs_backend *fs, const char *key, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", fs->root, key);

	return n < 0 || (size_t)n >= outlen ? VTP_EINVAL : 0;
}

/* "<root>/<prefix without its '/'>", or the root for "". */
static int fs_prefix_path(const fs_backend *fs, const char *prefix, char *out, size_t outlen)
{
	size_t n = strlen(prefix);
	int w;

	if (n == 0)
		w = snprintf(out, outlen, "%s", fs->root);
	else
		w = snprintf(out, outlen, "%s/%.*s", fs->root, (int)(n - 1), prefix);
	return w < 0 || (size_t)w >= outlen ? VTP_EINVAL : 0;
}

/* Copies the whole of in (from offset 0) to out. */
static int copy_fd(int in, int out, const char *what)
{
	char *buf = vtp_malloc(FS_COPY_CHUNK);
	int rc = 0;

	for (;;) {
		ssize_t n = read(in, buf, FS_COPY_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			VTP_WARN("storage: read %s: %s", what, strerror(errno));
			rc = VTP_EIO;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				VTP_WARN("storage: write %s: %s", what, strerror(errno));
				rc = VTP_EIO;
				goto out;
			}
			off += w;
		}
	}
out:
	vtp_free(buf);
	return rc;
}

/* src -> dst through a temp file; 0 without copying when they are one file.
 * missing: the code for an absent source. */
static int copy_file(const char *src, const char *dst, int missing)
{
	char tmp[PATH_MAX];
	struct stat ss, ds;
	int in = -1, out = -1;
	int rc;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return missing;
		VTP_WARN("storage: open %s: %s", src, strerror(errno));
		return VTP_EIO;
	}
	if (fstat(in, &ss) != 0 || !S_ISREG(ss.st_mode)) {
		close(in);
		return S_ISDIR(ss.st_mode) ? missing : VTP_EIO;
	}
	if (stat(dst, &ds) == 0 && ds.st_dev == ss.st_dev && ds.st_ino == ss.st_ino) {
		close(in);
		return 0;
	}
	out = vtp__storage_tmpfile(dst, tmp, sizeof(tmp));
	if (out < 0) {
		close(in);
		return VTP_EIO;
	}
	rc = copy_fd(in, out, src);
	close(in);
	if (rc != 0) {
		close(out);
		unlink(tmp);
		return rc;
	}
	return vtp__storage_commit(out, tmp, dst);
}

static int fs_put_file(void *be, const char *key, const char *path, const char *content_type)
{
	char dst[PATH_MAX];
	int rc;

	if (fs_path(be, key, dst, sizeof(dst)) != 0)
		return VTP_EINVAL;
	rc = copy_file(path, dst, VTP_EIO);
	if (rc != 0)
		VTP_WARN("storage: put %s from %s failed: %s", key, path, vtp_strerror(rc));
	return rc;
}

static int fs_get_file(void *be, const char *key, const char *path)
{
	char src[PATH_MAX];

	if (fs_path(be, key, src, sizeof(src)) != 0)
		return VTP_EINVAL;
	return copy_file(src, path, VTP_ENOTFOUND);
}

static int fs_get_buf(void *be, const char *key, vtp_buf *out)
{
	char path[PATH_MAX];
	char *chunk = NULL;
	size_t start = out->len;
	struct stat sb;
	int fd, rc = 0;

	if (fs_path(be, key, path, sizeof(path)) != 0)
		return VTP_EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? VTP_ENOTFOUND : VTP_EIO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = S_ISDIR(sb.st_mode) ? VTP_ENOTFOUND : VTP_EIO;
		goto out;
	}
	if ((uint64_t)sb.st_size > out->max - out->len) {
		rc = VTP_ETOOBIG;
		goto out;
	}
	chunk = vtp_malloc(FS_COPY_CHUNK);
	for (;;) {
		ssize_t n = read(fd, chunk, FS_COPY_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = VTP_EIO;
			break;
		}
		if (n == 0)
			break;
		rc = vtp_buf_append(out, chunk, (size_t)n);
		if (rc != 0)
			break;
	}
out:
	if (rc != 0 && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	vtp_free(chunk);
	close(fd);
	return rc;
}

static int fs_stat(void *be, const char *key, int64_t *size)
{
	char path[PATH_MAX];
	struct stat sb;

	if (fs_path(be, key, path, sizeof(path)) != 0)
		return VTP_EINVAL;
	if (stat(path, &sb) != 0)
		return errno == ENOENT || errno == ENOTDIR ? VTP_ENOTFOUND : VTP_EIO;
	if (!S_ISREG(sb.st_mode))
		return VTP_ENOTFOUND;
	*size = (int64_t)sb.st_size;
	return 0;
}

/* ---- walks ----------------------------------------------------------------- */

typedef struct key_list {
	char **keys;
	size_t n, cap;
} key_list;

static void key_list_push(key_list *l, char *key)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->keys = vtp_realloc(l->keys, l->cap * sizeof(*l->keys));
	}
	l->keys[l->n++] = key;
}

static bool entry_is(int dirfd, const struct dirent *de, mode_t type)
{
	struct stat sb;

	if (de->d_type != DT_UNKNOWN)
		return (type == S_IFDIR && de->d_type == DT_DIR) ||
		       (type == S_IFREG && de->d_type == DT_REG);
	if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return false;
	return (sb.st_mode & S_IFMT) == type;
}

/* Adds every regular file under dirfd (which it closes) as keyprefix+name. */
static int walk_list(int dirfd, const char *keyprefix, int depth, key_list *l)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dirfd);
		return VTP_EIO;
	}
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		char key[VTP__STORAGE_KEY_MAX + 2];
		int n;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    vtp__storage_is_tmpname(de->d_name))
			continue;
		n = snprintf(key, sizeof(key), "%s%s", keyprefix, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(key) - 1)
			continue; /* could never be a key */
		if (entry_is(dirfd, de, S_IFDIR)) {
			int sub;

			if (depth >= FS_MAX_DEPTH)
				continue;
			sub = openat(dirfd, de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue;
			key[n] = '/';
			key[n + 1] = '\0';
			rc = walk_list(sub, key, depth + 1, l);
		} else if (entry_is(dirfd, de, S_IFREG) && vtp__storage_key_ok(key)) {
			key_list_push(l, vtp_strdup(key));
		}
	}
	if (rc == 0 && errno != 0)
		rc = VTP_EIO;
	closedir(d);
	return rc;
}

static int fs_list(void *be, const char *prefix, char ***keys, size_t *n)
{
	char path[PATH_MAX];
	key_list l = {0};
	int fd, rc;

	if (fs_prefix_path(be, prefix, path, sizeof(path)) != 0)
		return VTP_EINVAL;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : VTP_EIO;
	rc = walk_list(fd, prefix, 0, &l);
	if (rc != 0) {
		VTP_WARN("storage: list %s failed: %s", prefix, vtp_strerror(rc));
		vtp_storage_keys_free(l.keys, l.n);
		return rc;
	}
	if (l.n > 1)
		qsort(l.keys, l.n, sizeof(*l.keys), vtp__storage_keys_cmp);
	*keys = l.keys;
	*n = l.n;
	return 0;
}

static int fs_delete(void *be, const char *key)
{
	char path[PATH_MAX];
	struct stat sb;

	if (fs_path(be, key, path, sizeof(path)) != 0)
		return VTP_EINVAL;
	if (lstat(path, &sb) != 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : VTP_EIO;
	if (S_ISDIR(sb.st_mode))
		return 0; /* a folder is not an object */
	if (unlink(path) != 0 && errno != ENOENT) {
		VTP_WARN("storage: delete %s: %s", key, strerror(errno));
		return VTP_EIO;
	}
	return 0;
}

/* Empties the folder dirfd (which it closes). */
static int walk_remove(int dirfd, int depth)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dirfd);
		return VTP_EIO;
	}
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (entry_is(dirfd, de, S_IFDIR)) {
			int sub = depth < FS_MAX_DEPTH
					  ? openat(dirfd, de->d_name,
						   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
					  : -1;
			int r = sub >= 0 ? walk_remove(sub, depth + 1) : VTP_EIO;

			if (r == 0 && unlinkat(dirfd, de->d_name, AT_REMOVEDIR) != 0)
				r = VTP_EIO;
			if (r != 0 && rc == 0)
				rc = r;
		} else if (unlinkat(dirfd, de->d_name, 0) != 0 && errno != ENOENT) {
			rc = VTP_EIO;
		}
	}
	closedir(d);
	return rc;
}

static int fs_delete_prefix(void *be, const char *prefix)
{
	char path[PATH_MAX];
	int fd, rc;

	if (fs_prefix_path(be, prefix, path, sizeof(path)) != 0)
		return VTP_EINVAL;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		if (errno == ELOOP) /* a symbolic link: remove the link only */
			return unlink(path) == 0 ? 0 : VTP_EIO;
		VTP_WARN("storage: delete_prefix %s: %s", prefix, strerror(errno));
		return VTP_EIO;
	}
	rc = walk_remove(fd, 0);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		rc = VTP_EIO;
	if (rc != 0)
		VTP_WARN("storage: delete_prefix %s: some entries could not be removed", prefix);
	return rc;
}

static int fs_ping(void *be)
{
	const fs_backend *fs = be;
	struct stat sb;

	if (stat(fs->root, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(fs->root, W_OK | X_OK) != 0)
		return VTP_EUNAVAIL;
	return 0;
}

/* ---- reader ------------------------------------------------------------------ */

typedef struct fs_reader {
	vtp_storage_reader base;
	int fd;
	int64_t pos, end;
} fs_reader;

static ssize_t fs_read(vtp_storage_reader *base, void *buf, size_t len)
{
	fs_reader *rd = (fs_reader *)base;
	ssize_t n;

	if (rd->pos >= rd->end)
		return 0;
	if ((int64_t)len > rd->end - rd->pos)
		len = (size_t)(rd->end - rd->pos);
	do
		n = pread(rd->fd, buf, len, (off_t)rd->pos);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return VTP_EIO;
	if (n == 0) /* the file shrank */
		return VTP_EIO;
	rd->pos += n;
	return n;
}

static void fs_reader_close(vtp_storage_reader *base)
{
	fs_reader *rd = (fs_reader *)base;

	close(rd->fd);
	vtp_free(rd);
}

static int fs_open_read(void *be, const char *key, int64_t offset, int64_t length,
			vtp_storage_reader **out, int64_t *size)
{
	char path[PATH_MAX];
	fs_reader *rd;
	struct stat sb;
	int fd;

	if (fs_path(be, key, path, sizeof(path)) != 0)
		return VTP_EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? VTP_ENOTFOUND : VTP_EIO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return VTP_ENOTFOUND;
	}
	if (offset >= (int64_t)sb.st_size && !(offset == 0 && sb.st_size == 0)) {
		close(fd);
		return VTP_ERANGE;
	}
	rd = vtp_calloc(1, sizeof(*rd));
	rd->base.read = fs_read;
	rd->base.close = fs_reader_close;
	rd->fd = fd;
	rd->pos = offset;
	rd->end = length < 0 || length > (int64_t)sb.st_size - offset ? (int64_t)sb.st_size
								       : offset + length;
	if (size)
		*size = (int64_t)sb.st_size;
	*out = &rd->base;
	return 0;
}

static void fs_free(void *be)
{
	fs_backend *fs = be;

	if (!fs)
		return;
	vtp_free(fs->root);
	vtp_free(fs);
}

static const vtp__storage_ops fs_ops = {
	.kind = "file",
	.remote = false,
	.free = fs_free,
	.ping = fs_ping,
	.put_file = fs_put_file,
	.get_file = fs_get_file,
	.get_buf = fs_get_buf,
	.stat = fs_stat,
	.list = fs_list,
	.del = fs_delete,
	.delete_prefix = fs_delete_prefix,
	.presign_get = NULL,
	.open_read = fs_open_read,
};

int vtp__fs_open(vtp_storage *st, const char *root, char *err, size_t errlen)
{
	fs_backend *fs;
	size_t n;

	/* file:///abs, file://./rel and file://rel all name a local path;
	 * file://localhost/abs is the host form of the first. */
	if (strncmp(root, "localhost/", 10) == 0)
		root += 9;
	n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 0) {
		snprintf(err, errlen, "VTP_STORAGE_URL: file:// needs a path");
		return VTP_EINVAL;
	}
	if (n > PATH_MAX - VTP__STORAGE_KEY_MAX - 64) {
		snprintf(err, errlen, "VTP_STORAGE_URL: the path is too long");
		return VTP_EINVAL;
	}
	if (memchr(root, '?', n) || memchr(root, '#', n)) {
		snprintf(err, errlen, "VTP_STORAGE_URL: a file:// URL takes no query or fragment "
			 "('%.80s')", root);
		return VTP_EINVAL;
	}
	fs = vtp_calloc(1, sizeof(*fs));
	fs->root = vtp_strndup(root, n);
	if (vtp__storage_mkdirs(fs->root) != 0) {
		snprintf(err, errlen, "VTP_STORAGE_URL: cannot create the folder '%.80s'", fs->root);
		fs_free(fs);
		return VTP_EIO;
	}
	st->ops = &fs_ops;
	st->be = fs;
	st->local_root = vtp_strdup(fs->root);
	return 0;
}
