/* file:// storage: modes (folders 0700, files 0600), put_file as a no-op
 * in place and as a copy through a temp name elsewhere, get_file/get_buf
 * (with the caller's cap), stat, sorted list that skips files being
 * written, delete, delete_prefix (emptied folders go, links are not
 * followed out of the root), ping, and the ranged reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "storage/storage.h"

typedef struct fixture {
	char dir[64];   /* temp folder of the test */
	char root[128]; /* the storage root under it */
	vtp_storage *st;
} fixture;

static int setup(void **state)
{
	fixture *f = vtp_calloc(1, sizeof(*f));
	vtp_storage_config cfg = {0};
	char url[400], err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/vtp-fs-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/recordings", f->dir);
	snprintf(url, sizeof(url), "file://%s", f->root);
	cfg.url = url;
	cfg.data_dir = f->dir;
	if (vtp_storage_open(&cfg, &f->st, err, sizeof(err)) != 0)
		fail_msg("open: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[512];

	vtp_storage_free(f->st);
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	vtp_free(f);
	return 0;
}

static void write_file(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	assert_int_equal(lstat(path, &sb), 0);
	return sb.st_mode & 07777;
}

/* a source file outside the root */
static void make_src(fixture *f, const char *name, const char *data, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", f->dir, name);
	write_file(path, data, strlen(data));
}

static void test_put_copy_modes(void **state)
{
	fixture *f = *state;
	char src[512], dst[512], buf[64], p[512];

	make_src(f, "in.webm", "hello world", src, sizeof(src));
	assert_int_equal(vtp_storage_put_file(f->st, "room/rec-1/recording.webm", src, "video/webm"),
			 0);
	assert_int_equal(vtp_storage_local_path(f->st, "room/rec-1/recording.webm", dst, sizeof(dst)),
			 0);
	assert_int_equal(read_file(dst, buf, sizeof(buf)), 11);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(mode_of(dst), 0600);
	snprintf(p, sizeof(p), "%s/room", f->root);
	assert_int_equal(mode_of(p), 0700);
	snprintf(p, sizeof(p), "%s/room/rec-1", f->root);
	assert_int_equal(mode_of(p), 0700);
	assert_int_equal(mode_of(f->root), 0700);
	/* replaced whole */
	make_src(f, "in2.webm", "bye", src, sizeof(src));
	assert_int_equal(vtp_storage_put_file(f->st, "room/rec-1/recording.webm", src, NULL), 0);
	assert_int_equal(read_file(dst, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "bye", 3);
	/* no temp files left behind */
	{
		char **keys = NULL;
		size_t n = 0;

		assert_int_equal(vtp_storage_list(f->st, "room/", &keys, &n), 0);
		assert_int_equal(n, 1);
		vtp_storage_keys_free(keys, n);
	}
	/* a missing source */
	snprintf(src, sizeof(src), "%s/nope", f->dir);
	assert_int_equal(vtp_storage_put_file(f->st, "room/x", src, NULL), VTP_EIO);
}

static void test_put_in_place(void **state)
{
	fixture *f = *state;
	char path[512], buf[256];
	struct stat before, after;

	assert_int_equal(vtp_storage_local_path(f->st, "r/id/tracks/a.vtpcap", path, sizeof(path)), 0);
	snprintf(buf, sizeof(buf), "%s/r/id/tracks", f->root);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", buf);
		assert_int_equal(system(cmd), 0);
	}
	write_file(path, "capture", 7);
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(vtp_storage_put_file(f->st, "r/id/tracks/a.vtpcap", path, NULL), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino); /* not rewritten */
	assert_int_equal(read_file(path, buf, sizeof(buf)), 7);
	/* the same file through another spelling of the path */
	snprintf(buf, sizeof(buf), "%s/r/./id/tracks/a.vtpcap", f->root);
	assert_int_equal(vtp_storage_put_file(f->st, "r/id/tracks/a.vtpcap", buf, NULL), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
}

static void test_get_file_buf_stat(void **state)
{
	fixture *f = *state;
	char src[512], out[512], buf[64];
	vtp_buf b;
	int64_t size = -1;

	make_src(f, "thumb", "0123456789", src, sizeof(src));
	assert_int_equal(vtp_storage_put_file(f->st, "r/i/thumbnail.jpg", src, "image/jpeg"), 0);

	snprintf(out, sizeof(out), "%s/fetched/deep/t.jpg", f->dir);
	assert_int_equal(vtp_storage_get_file(f->st, "r/i/thumbnail.jpg", out), 0);
	assert_int_equal(read_file(out, buf, sizeof(buf)), 10);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(vtp_storage_get_file(f->st, "r/i/none", out), VTP_ENOTFOUND);
	assert_int_equal(vtp_storage_get_file(f->st, "r/i", out), VTP_ENOTFOUND); /* a folder */

	vtp_buf_init(&b, 10);
	assert_int_equal(vtp_storage_get_buf(f->st, "r/i/thumbnail.jpg", &b), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "0123456789", 10);
	vtp_buf_free(&b);
	vtp_buf_init(&b, 9);
	assert_int_equal(vtp_buf_append(&b, "x", 1), 0);
	assert_int_equal(vtp_storage_get_buf(f->st, "r/i/thumbnail.jpg", &b), VTP_ETOOBIG);
	assert_int_equal(b.len, 1);
	assert_int_equal(vtp_storage_get_buf(f->st, "r/i/none", &b), VTP_ENOTFOUND);
	vtp_buf_free(&b);

	assert_int_equal(vtp_storage_stat(f->st, "r/i/thumbnail.jpg", &size), 0);
	assert_int_equal(size, 10);
	assert_int_equal(vtp_storage_stat(f->st, "r/i/none", &size), VTP_ENOTFOUND);
	assert_int_equal(vtp_storage_stat(f->st, "r/i", &size), VTP_ENOTFOUND);
	assert_int_equal(vtp_storage_stat(f->st, "r/i/thumbnail.jpg/x", &size), VTP_ENOTFOUND);
}

static void test_list_delete(void **state)
{
	fixture *f = *state;
	static const char *const keys_in[] = {
		"r/b/hls/seg_00002.m4s", "r/b/hls/seg_00001.m4s", "r/b/recording.webm",
		"r/a/recording.webm",    "r/b/hls/index.m3u8",    "r/b/Z",
		"s/x",
	};
	char src[512], tmp[600];
	char **keys = NULL;
	size_t n = 0;

	make_src(f, "data", "d", src, sizeof(src));
	for (size_t i = 0; i < sizeof(keys_in) / sizeof(keys_in[0]); i++)
		assert_int_equal(vtp_storage_put_file(f->st, keys_in[i], src, NULL), 0);
	/* a file being written is not an object */
	snprintf(tmp, sizeof(tmp), "%s/r/b/recording.webm.vtptmp.0123456789abcdef", f->root);
	write_file(tmp, "x", 1);

	assert_int_equal(vtp_storage_list(f->st, "r/b/", &keys, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(keys[0], "r/b/Z");
	assert_string_equal(keys[1], "r/b/hls/index.m3u8");
	assert_string_equal(keys[2], "r/b/hls/seg_00001.m4s");
	assert_string_equal(keys[3], "r/b/hls/seg_00002.m4s");
	assert_string_equal(keys[4], "r/b/recording.webm");
	vtp_storage_keys_free(keys, n);

	assert_int_equal(vtp_storage_list(f->st, "", &keys, &n), 0);
	assert_int_equal(n, 7);
	assert_string_equal(keys[0], "r/a/recording.webm");
	assert_string_equal(keys[6], "s/x");
	vtp_storage_keys_free(keys, n);

	assert_int_equal(vtp_storage_list(f->st, "nothing/here/", &keys, &n), 0);
	assert_int_equal(n, 0);
	assert_null(keys);
	assert_int_equal(vtp_storage_list(f->st, "r/b/Z/", &keys, &n), 0); /* a file, not a folder */
	assert_int_equal(n, 0);

	assert_int_equal(vtp_storage_delete(f->st, "r/b/Z"), 0);
	assert_int_equal(vtp_storage_delete(f->st, "r/b/Z"), 0); /* absent is success */
	assert_int_equal(vtp_storage_delete(f->st, "r/b/hls"), 0); /* a folder is no object */
	assert_int_equal(vtp_storage_list(f->st, "r/b/", &keys, &n), 0);
	assert_int_equal(n, 4);
	vtp_storage_keys_free(keys, n);

	assert_int_equal(vtp_storage_delete_prefix(f->st, "r/b/"), 0);
	snprintf(tmp, sizeof(tmp), "%s/r/b", f->root);
	assert_int_equal(access(tmp, F_OK), -1); /* the emptied folders are gone */
	snprintf(tmp, sizeof(tmp), "%s/r/a/recording.webm", f->root);
	assert_int_equal(access(tmp, F_OK), 0); /* the neighbour stays */
	assert_int_equal(vtp_storage_delete_prefix(f->st, "r/b/"), 0);
	assert_int_equal(vtp_storage_delete_prefix(f->st, "r/a/recording.webm/"), 0);
	assert_int_equal(vtp_storage_list(f->st, "", &keys, &n), 0);
	assert_int_equal(n, 2);
	vtp_storage_keys_free(keys, n);
}

static void test_links_not_followed(void **state)
{
	fixture *f = *state;
	char outside[512], victim[600], link[600], src[512];
	char **keys = NULL;
	size_t n = 0;
	char cmd[1400];

	snprintf(outside, sizeof(outside), "%s/outside", f->dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", outside);
	assert_int_equal(system(cmd), 0);
	snprintf(victim, sizeof(victim), "%s/precious", outside);
	write_file(victim, "keep", 4);
	make_src(f, "data", "d", src, sizeof(src));
	assert_int_equal(vtp_storage_put_file(f->st, "r/c/recording.webm", src, NULL), 0);
	snprintf(link, sizeof(link), "%s/r/c/escape", f->root);
	assert_int_equal(symlink(outside, link), 0);
	snprintf(link, sizeof(link), "%s/r/c/file-link", f->root);
	assert_int_equal(symlink(victim, link), 0);

	assert_int_equal(vtp_storage_list(f->st, "r/c/", &keys, &n), 0);
	assert_int_equal(n, 1); /* links are not objects */
	vtp_storage_keys_free(keys, n);
	assert_int_equal(vtp_storage_delete_prefix(f->st, "r/c/"), 0);
	assert_int_equal(access(victim, F_OK), 0);
	snprintf(link, sizeof(link), "%s/r/c", f->root);
	assert_int_equal(access(link, F_OK), -1);

	/* a prefix that is itself a link: the link goes, not what it points at */
	snprintf(link, sizeof(link), "%s/r/d", f->root);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(vtp_storage_list(f->st, "r/d/", &keys, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vtp_storage_delete_prefix(f->st, "r/d/"), 0);
	assert_int_equal(access(victim, F_OK), 0);
}

static void test_ping(void **state)
{
	fixture *f = *state;
	char cmd[700];

	assert_int_equal(vtp_storage_ping(f->st), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(vtp_storage_ping(f->st), VTP_EUNAVAIL);
	/* a file where the folder should be */
	write_file(f->root, "x", 1);
	assert_int_equal(vtp_storage_ping(f->st), VTP_EUNAVAIL);
}

static void test_reader(void **state)
{
	fixture *f = *state;
	char src[512], buf[64];
	vtp_storage_reader *rd = NULL;
	int64_t size = -1;
	size_t got = 0;
	ssize_t n;

	make_src(f, "data", "abcdefghijklmnopqrstuvwxyz", src, sizeof(src));
	assert_int_equal(vtp_storage_put_file(f->st, "r/e/recording.webm", src, NULL), 0);

	assert_int_equal(vtp_storage_open_read(f->st, "r/e/recording.webm", 3, 5, &rd, &size), 0);
	assert_int_equal(size, 26);
	while ((n = vtp_storage_read(rd, buf + got, 2)) > 0)
		got += (size_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "defgh", 5);
	vtp_storage_reader_close(rd);

	assert_int_equal(vtp_storage_open_read(f->st, "r/e/recording.webm", 20, -1, &rd, &size), 0);
	assert_int_equal(vtp_storage_read(rd, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "uvwxyz", 6);
	assert_int_equal(vtp_storage_read(rd, buf, sizeof(buf)), 0);
	vtp_storage_reader_close(rd);

	assert_int_equal(vtp_storage_open_read(f->st, "r/e/recording.webm", 26, -1, &rd, &size),
			 VTP_ERANGE);
	assert_int_equal(vtp_storage_open_read(f->st, "r/e/none", 0, -1, &rd, &size),
			 VTP_ENOTFOUND);
	assert_int_equal(vtp_storage_open_read(f->st, "r/e/recording.webm", -1, -1, &rd, &size),
			 VTP_EINVAL);
	assert_int_equal(vtp_storage_open_read(f->st, "r/e/recording.webm", 0, 0, &rd, &size),
			 VTP_EINVAL);
	vtp_storage_reader_close(NULL);
}

static void test_presign_refused(void **state)
{
	fixture *f = *state;
	char *url = NULL;

	assert_int_equal(vtp_storage_presign_get(f->st, "a/b", 0, 60, NULL, NULL, &url), VTP_EINVAL);
	assert_null(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_copy_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_file_buf_stat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presign_refused, setup, teardown),
	};

	vtp_log_init(getenv("VTP_TEST_LOG") ? VTP_LOG_DEBUG : VTP_LOG_OFF, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
