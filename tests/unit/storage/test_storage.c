/* The storage front, without a network: the key rules (the same refusals
 * from both backends, before any disk or socket is touched), the URL
 * parsing of vtp_storage_open with its one-line errors, the environment
 * knobs, and the shape of a presigned URL for a path-style endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "storage/storage.h"

static char tmpdir[256];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vtp-storage-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static vtp_storage *open_url(const char *url, const char *ak, const char *sk)
{
	vtp_storage_config cfg = {url, tmpdir, ak, sk};
	vtp_storage *st = NULL;
	char err[256];

	if (vtp_storage_open(&cfg, &st, err, sizeof(err)) != 0)
		fail_msg("open %s: %s", url, err);
	return st;
}

static const char *const bad_keys[] = {
	"",
	"/abs",
	"a//b",
	"a/",
	"./a",
	"a/./b",
	"a/../b",
	"..",
	".",
	"a\\b",
	"a\nb",
	"a\tb",
	"a\x7f",
	"a\rb",
};

static void check_bad_keys(vtp_storage *st)
{
	char longkey[1100];
	char longcomp[300];
	char path[4096];
	char file[512];

	snprintf(file, sizeof(file), "%s/some-file", tmpdir);
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	for (size_t i = 1; i < sizeof(longkey) - 1; i += 100)
		longkey[i] = '/';
	memset(longcomp, 'b', sizeof(longcomp) - 1);
	longcomp[sizeof(longcomp) - 1] = '\0';
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]) + 2; i++) {
		const char *key = i < sizeof(bad_keys) / sizeof(bad_keys[0]) ? bad_keys[i]
				  : i == sizeof(bad_keys) / sizeof(bad_keys[0]) ? longkey
										  : longcomp;
		vtp_buf b;
		int64_t size;
		vtp_storage_reader *rd = NULL;
		char *url = NULL;

		vtp_buf_init(&b, 1024);
		assert_int_equal(vtp_storage_local_path(st, key, path, sizeof(path)), VTP_EINVAL);
		assert_int_equal(vtp_storage_put_file(st, key, file, NULL), VTP_EINVAL);
		assert_int_equal(vtp_storage_get_file(st, key, file), VTP_EINVAL);
		assert_int_equal(vtp_storage_get_buf(st, key, &b), VTP_EINVAL);
		assert_int_equal(vtp_storage_stat(st, key, &size), VTP_EINVAL);
		assert_int_equal(vtp_storage_delete(st, key), VTP_EINVAL);
		assert_int_equal(vtp_storage_open_read(st, key, 0, -1, &rd, &size), VTP_EINVAL);
		assert_int_equal(vtp_storage_presign_get(st, key, 0, 60, NULL, NULL, &url),
				 VTP_EINVAL);
		assert_null(rd);
		assert_null(url);
		vtp_buf_free(&b);
	}
}

static void check_bad_prefixes(vtp_storage *st)
{
	static const char *const bad[] = {"a", "/a/", "a//", "../", "a/../", "a\\b/", "/"};
	char **keys = NULL;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vtp_storage_list(st, bad[i], &keys, &n), VTP_EINVAL);
		assert_int_equal(vtp_storage_delete_prefix(st, bad[i]), VTP_EINVAL);
	}
	/* "" lists everything but never deletes everything */
	assert_int_equal(vtp_storage_delete_prefix(st, ""), VTP_EINVAL);
}

static void test_keys_file(void **state)
{
	char url[512];
	vtp_storage *st;

	snprintf(url, sizeof(url), "file://%s/rec", tmpdir);
	st = open_url(url, NULL, NULL);
	check_bad_keys(st);
	check_bad_prefixes(st);
	vtp_storage_free(st);
}

/* No network: every refusal comes before a request (port 1 answers nothing). */
static void test_keys_s3(void **state)
{
	vtp_storage *st = open_url("s3://bucket?endpoint=http://127.0.0.1:1", "AK", "SK");

	check_bad_keys(st);
	check_bad_prefixes(st);
	vtp_storage_free(st);
}

static void test_good_keys(void **state)
{
	static const char *const good[] = {
		"a",
		"room%2F1/0191c6e0-0000-7000-8000-000000000000/recording.webm",
		"r/id/hls/seg_00001.m4s",
		"a/.hidden",
		"a/..b/c...",
		"\xc3\xa9t\xc3\xa9/x",
	};
	char url[512], path[4096], want[4096];
	vtp_storage *st;

	snprintf(url, sizeof(url), "file://%s/rec", tmpdir);
	st = open_url(url, NULL, NULL);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(vtp_storage_local_path(st, good[i], path, sizeof(path)), 0);
		snprintf(want, sizeof(want), "%s/rec/%s", tmpdir, good[i]);
		assert_string_equal(path, want);
	}
	assert_int_equal(vtp_storage_local_path(st, "a/b", path, 8), VTP_ETOOBIG);
	vtp_storage_free(st);
}

static void test_open_file(void **state)
{
	char url[512], want[512];
	vtp_storage *st;
	struct stat sb;

	snprintf(url, sizeof(url), "file://%s/x/y/z//", tmpdir);
	st = open_url(url, NULL, NULL);
	snprintf(want, sizeof(want), "%s/x/y/z", tmpdir);
	assert_string_equal(vtp_storage_local_root(st), want);
	assert_string_equal(vtp_storage_kind(st), "file");
	assert_false(vtp_storage_is_remote(st));
	assert_int_equal(stat(want, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	vtp_storage_free(st);
	vtp_storage_free(NULL);
}

static void test_open_s3(void **state)
{
	char want[512];
	vtp_storage *st;
	struct stat sb;

	st = open_url("s3://my-bucket?endpoint=http://127.0.0.1:9000&region=eu-west-1", "AK", "SK");
	assert_string_equal(vtp_storage_kind(st), "s3");
	assert_true(vtp_storage_is_remote(st));
	snprintf(want, sizeof(want), "%s/spool", tmpdir);
	assert_string_equal(vtp_storage_local_root(st), want);
	assert_int_equal(stat(want, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	vtp_storage_free(st);

	/* forms that parse */
	vtp_storage_free(open_url("s3://bucket", NULL, NULL));
	vtp_storage_free(open_url("s3://bucket/", "AK", "SK"));
	vtp_storage_free(open_url("s3://bucket/?region=us-west-2", "AK", "SK"));
	vtp_storage_free(open_url("s3://b.u_c-k?endpoint=http%3A%2F%2Fh%3A1%2F", "AK", "SK"));
	vtp_storage_free(open_url("s3://bucket?endpoint=https://[::1]:9000", "AK", "SK"));
}

static void test_open_errors(void **state)
{
	static const struct {
		const char *url;
		const char *ak, *sk;
		const char *mention;
	} cases[] = {
		{"s3://", "a", "b", "bucket"},
		{"s3://?endpoint=http://h", "a", "b", "bucket"},
		{"s3://ab", "a", "b", "bucket"},
		{"s3://Bucket", "a", "b", "bucket"},
		{"s3://-bucket", "a", "b", "bucket"},
		{"s3://bucket/prefix", "a", "b", "path"},
		{"s3://bucket?endpoint=ftp://h", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=http://", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=http://h/path", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=http://u:p@h", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=http://h:port", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=http://h:123456", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=http://h?x=1", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=http%3A%2F%2Fh%2", "a", "b", "endpoint"},
		{"s3://bucket?endpoint=", "a", "b", "endpoint"},
		{"s3://bucket?region=US-EAST-1", "a", "b", "region"},
		{"s3://bucket?region=a&region=b", "a", "b", "twice"},
		{"s3://bucket?color=blue", "a", "b", "unknown parameter 'color=blue'"},
		{"s3://bucket?endpoint", "a", "b", "unknown parameter"},
		{"s3://bucket", "a", NULL, "VTP_S3_SECRET_KEY"},
		{"s3://bucket", NULL, "b", "VTP_S3_ACCESS_KEY"},
		{"s3://bucket", "a b", "c", "VTP_S3_ACCESS_KEY"},
		{"ftp://x", NULL, NULL, "VTP_STORAGE_URL"},
		{"file://", NULL, NULL, "path"},
		{"file://a?b", NULL, NULL, "query"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vtp_storage_config cfg = {cases[i].url, tmpdir, cases[i].ak, cases[i].sk};
		vtp_storage *st = (vtp_storage *)1;
		char err[256] = "";

		if (vtp_storage_open(&cfg, &st, err, sizeof(err)) != VTP_EINVAL)
			fail_msg("%s: opened", cases[i].url);
		assert_null(st);
		if (!strstr(err, cases[i].mention) || strchr(err, '\n'))
			fail_msg("%s: error '%s' should mention '%s'", cases[i].url, err,
				 cases[i].mention);
	}
	{
		vtp_storage_config cfg = {"s3://bucket", NULL, "a", "b"};
		vtp_storage *st = NULL;
		char err[256] = "";

		assert_int_equal(vtp_storage_open(&cfg, &st, err, sizeof(err)), VTP_EINVAL);
		assert_non_null(strstr(err, "VTP_DATA_DIR"));
	}
}

static void test_env_knobs(void **state)
{
	static const char *const names[] = {"VTP_S3_MULTIPART_THRESHOLD", "VTP_S3_PART_SIZE",
					    "VTP_S3_LIST_MAX_KEYS"};
	static const char *const bad[] = {"abc", "-1", "0", "12x", "99999999999999999999999"};
	vtp_storage_config cfg = {"s3://bucket?endpoint=http://127.0.0.1:1", tmpdir, "a", "b"};

	for (size_t i = 0; i < 3; i++) {
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			vtp_storage *st = NULL;
			char err[256] = "";

			setenv(names[i], bad[j], 1);
			assert_int_equal(vtp_storage_open(&cfg, &st, err, sizeof(err)), VTP_EINVAL);
			assert_non_null(strstr(err, names[i]));
		}
		unsetenv(names[i]);
	}
	setenv("VTP_S3_LIST_MAX_KEYS", "1001", 1);
	{
		vtp_storage *st = NULL;
		char err[256];

		assert_int_equal(vtp_storage_open(&cfg, &st, err, sizeof(err)), VTP_EINVAL);
	}
	unsetenv("VTP_S3_LIST_MAX_KEYS");
	setenv("VTP_S3_PART_SIZE", "65536", 1);
	setenv("VTP_S3_MULTIPART_THRESHOLD", "100000", 1);
	vtp_storage_free(open_url(cfg.url, "a", "b"));
	unsetenv("VTP_S3_PART_SIZE");
	unsetenv("VTP_S3_MULTIPART_THRESHOLD");
}

static void test_presign_shape(void **state)
{
	vtp_storage *st = open_url("s3://bucket?endpoint=http://127.0.0.1:9000/", "AKID", "SECRET");
	char *url = NULL;

	/* 2026-11-24T05:31:00Z */
	assert_int_equal(vtp_storage_presign_get(st, "room%2F1/id/a b.webm", 1795498260, 3600,
						 "attachment; filename=\"a.webm\"", "video/webm",
						 &url),
			 0);
	assert_non_null(url);
	if (strncmp(url,
		    "http://127.0.0.1:9000/bucket/room%252F1/id/a%20b.webm?X-Amz-Algorithm="
		    "AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261124%2Fus-east-1%2Fs3%2F"
		    "aws4_request&X-Amz-Date=20261124T053100Z&X-Amz-Expires=3600&"
		    "X-Amz-SignedHeaders=host&response-content-disposition=attachment%3B%20"
		    "filename%3D%22a.webm%22&response-content-type=video%2Fwebm&X-Amz-Signature=",
		    strlen("http://127.0.0.1:9000/bucket/room%252F1/id/a%20b.webm?X-Amz-Algorithm="
			   "AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261124%2Fus-east-1%2Fs3%2F"
			   "aws4_request&X-Amz-Date=20261124T053100Z&X-Amz-Expires=3600&"
			   "X-Amz-SignedHeaders=host&response-content-disposition=attachment%3B%20"
			   "filename%3D%22a.webm%22&response-content-type=video%2Fwebm&"
			   "X-Amz-Signature=")) != 0)
		fail_msg("url: %s", url);
	vtp_free(url);
	url = NULL;
	assert_int_equal(vtp_storage_presign_get(st, "a", 0, 0, NULL, NULL, &url), VTP_EINVAL);
	assert_int_equal(vtp_storage_presign_get(st, "a", 0, 604801, NULL, NULL, &url), VTP_EINVAL);
	assert_int_equal(vtp_storage_presign_get(st, "a", 0, 60, "x\r\ny", NULL, &url), VTP_EINVAL);
	assert_null(url);
	vtp_storage_free(st);

	/* the AWS default endpoint for a region */
	st = open_url("s3://bucket?region=eu-central-1", "AKID", "SECRET");
	assert_int_equal(vtp_storage_presign_get(st, "k", 0, 60, NULL, NULL, &url), 0);
	assert_true(strncmp(url, "https://s3.eu-central-1.amazonaws.com/bucket/k?", 47) == 0);
	assert_non_null(strstr(url, "%2Feu-central-1%2Fs3%2F"));
	vtp_free(url);
	vtp_storage_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keys_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_s3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_good_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_s3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_knobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presign_shape, setup, teardown),
	};

	vtp_log_init(getenv("VTP_TEST_LOG") ? VTP_LOG_DEBUG : VTP_LOG_OFF, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
