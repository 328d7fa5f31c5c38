/* The s3:// backend end to end against s3rver (started by the ctest fixture
 * s3rver_start, which writes the VTP_STORAGE_URL to $VTP_TEST_S3_URL_FILE):
 * PUT and HEAD, multipart with small parts, GET into a buffer and a file,
 * the ranged streaming reader, ListObjectsV2 across continuation pages with
 * keys that need XML and URI escaping, delete and delete_prefix
 * (DeleteObjects), presigned GETs fetched with plain HTTP, concurrent use
 * of one handle. Then the failure paths against a scripted local server and
 * a port where nothing listens: 5xx and 429 retried, 4xx not, a missing
 * ETag or a wrong size after an upload refused, and VTP_EUNAVAIL after the
 * back-off within a bounded time. s3rver does not check signatures; the
 * signing is proved in test_sigv4.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"
#include "storage/storage.h"

static char s3url[512];
static char tmpdir[64];
static char run_prefix[40]; /* "t<hex>/": keys of this run */

static int group_setup(void **state)
{
	const char *file = getenv("VTP_TEST_S3_URL_FILE");
	char rnd[17];
	FILE *fp;

	if (!file || !(fp = fopen(file, "r"))) {
		fprintf(stderr, "VTP_TEST_S3_URL_FILE not set or unreadable: run through ctest "
				"(fixture s3rver_start)\n");
		return -1;
	}
	if (!fgets(s3url, sizeof(s3url), fp))
		s3url[0] = '\0';
	fclose(fp);
	s3url[strcspn(s3url, "\r\n")] = '\0';
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vtp-s3t-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	vtp_random_hex(rnd, 8);
	snprintf(run_prefix, sizeof(run_prefix), "t%s/", rnd);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return s3url[0] ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static vtp_storage *open_url(const char *url)
{
	vtp_storage_config cfg = {url, tmpdir, "S3RVER", "S3RVER"};
	vtp_storage *st = NULL;
	char err[256];

	if (vtp_storage_open(&cfg, &st, err, sizeof(err)) != 0)
		fail_msg("open %s: %s", url, err);
	return st;
}

static void key_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s%s", run_prefix, name);
}

/* n pseudo-random bytes (seeded) into path. */
static void make_file(const char *path, size_t n, uint32_t seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	unsigned char *buf = vtp_malloc(n ? n : 1);
	uint32_t x = seed ? seed : 1;

	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
	vtp_free(buf);
}

static unsigned char *slurp(const char *path, size_t *n)
{
	struct stat sb;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	buf = vtp_malloc((size_t)sb.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)sb.st_size), (ssize_t)sb.st_size);
	close(fd);
	*n = (size_t)sb.st_size;
	return buf;
}

static void assert_same_file(const char *a, const char *b)
{
	size_t na, nb;
	unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);

	assert_int_equal(na, nb);
	assert_memory_equal(x, y, na);
	vtp_free(x);
	vtp_free(y);
}

static double elapsed_s(int64_t since_us)
{
	return (double)(vtp_mono_us() - since_us) / 1e6;
}

/* ---- plain HTTP GET (for presigned URLs) ------------------------------------------ */

typedef struct fetched {
	long status;
	vtp_buf body;
	char disposition[256];
	char ctype[128];
} fetched;

static size_t fetch_body(char *p, size_t s, size_t n, void *ud)
{
	fetched *f = ud;

	return vtp_buf_append(&f->body, p, s * n) == 0 ? s * n : 0;
}

static size_t fetch_header(char *p, size_t s, size_t n, void *ud)
{
	fetched *f = ud;
	size_t len = s * n;

	if (len > 21 && strncasecmp(p, "Content-Disposition: ", 21) == 0)
		snprintf(f->disposition, sizeof(f->disposition), "%.*s", (int)(len - 23), p + 21);
	if (len > 14 && strncasecmp(p, "Content-Type: ", 14) == 0)
		snprintf(f->ctype, sizeof(f->ctype), "%.*s", (int)(len - 16), p + 14);
	return len;
}

static void fetch(const char *url, fetched *f)
{
	CURL *h = curl_easy_init();

	memset(f, 0, sizeof(*f));
	vtp_buf_init(&f->body, 64 * 1024 * 1024);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fetch_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, f);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_cleanup(h);
}

/* ---- against s3rver ------------------------------------------------------------------ */

static void test_ping(void **state)
{
	vtp_storage *st = open_url(s3url);
	char other[600];
	const char *q = strchr(s3url, '?');

	assert_int_equal(vtp_storage_ping(st), 0);
	vtp_storage_free(st);
	/* the same endpoint, a bucket that does not exist */
	snprintf(other, sizeof(other), "s3://no-such-bucket%s", q ? q : "");
	st = open_url(other);
	assert_int_equal(vtp_storage_ping(st), VTP_EUNAVAIL);
	vtp_storage_free(st);
}

static void test_put_get(void **state)
{
	vtp_storage *st = open_url(s3url);
	char src[128], dst[128], key[128], miss[128];
	int64_t size = -1;
	vtp_buf b;
	struct stat sb;

	snprintf(src, sizeof(src), "%s/small", tmpdir);
	make_file(src, 1000, 7);
	key_of(key, sizeof(key), "room/rec/recording.webm");
	assert_int_equal(vtp_storage_put_file(st, key, src, "video/webm"), 0);
	assert_int_equal(vtp_storage_stat(st, key, &size), 0);
	assert_int_equal(size, 1000);

	vtp_buf_init(&b, 1000);
	assert_int_equal(vtp_storage_get_buf(st, key, &b), 0);
	assert_int_equal(b.len, 1000);
	{
		size_t n;
		unsigned char *want = slurp(src, &n);

		assert_memory_equal(b.data, want, n);
		vtp_free(want);
	}
	vtp_buf_free(&b);
	vtp_buf_init(&b, 999);
	assert_int_equal(vtp_buf_append(&b, "ab", 2), 0);
	assert_int_equal(vtp_storage_get_buf(st, key, &b), VTP_ETOOBIG);
	assert_int_equal(b.len, 2);
	assert_string_equal(b.data, "ab");
	vtp_buf_free(&b);

	snprintf(dst, sizeof(dst), "%s/fetched/a/recording.webm", tmpdir);
	assert_int_equal(vtp_storage_get_file(st, key, dst), 0);
	assert_same_file(src, dst);
	assert_int_equal(stat(dst, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	key_of(miss, sizeof(miss), "room/rec/none");
	snprintf(dst, sizeof(dst), "%s/fetched/b/none", tmpdir);
	assert_int_equal(vtp_storage_get_file(st, miss, dst), VTP_ENOTFOUND);
	assert_int_equal(access(dst, F_OK), -1);
	{
		/* no temp file left beside it either */
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/fetched/b')\"", tmpdir);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(vtp_storage_stat(st, miss, &size), VTP_ENOTFOUND);
	vtp_buf_init(&b, 100);
	assert_int_equal(vtp_storage_get_buf(st, miss, &b), VTP_ENOTFOUND);
	vtp_buf_free(&b);

	/* an empty object */
	snprintf(src, sizeof(src), "%s/empty", tmpdir);
	make_file(src, 0, 1);
	key_of(key, sizeof(key), "room/rec/empty");
	assert_int_equal(vtp_storage_put_file(st, key, src, NULL), 0);
	assert_int_equal(vtp_storage_stat(st, key, &size), 0);
	assert_int_equal(size, 0);
	snprintf(dst, sizeof(dst), "%s/fetched/empty", tmpdir);
	assert_int_equal(vtp_storage_get_file(st, key, dst), 0);
	assert_same_file(src, dst);

	/* a missing local file */
	snprintf(src, sizeof(src), "%s/nope", tmpdir);
	assert_int_equal(vtp_storage_put_file(st, key, src, NULL), VTP_EIO);
	vtp_storage_free(st);
}

static void test_multipart(void **state)
{
	vtp_storage *st;
	char src[128], dst[128], key[128], logpath[128];
	int64_t size = -1;
	char *url = NULL;
	fetched f;
	int saved, logfd;

	setenv("VTP_S3_MULTIPART_THRESHOLD", "100000", 1);
	setenv("VTP_S3_PART_SIZE", "65536", 1);
	st = open_url(s3url);
	unsetenv("VTP_S3_MULTIPART_THRESHOLD");
	unsetenv("VTP_S3_PART_SIZE");

	snprintf(src, sizeof(src), "%s/big", tmpdir);
	make_file(src, 300001, 99); /* 4 parts of 64 KiB and one of 37857 bytes */
	key_of(key, sizeof(key), "room/rec/recording.mp4");

	/* the debug line says how many parts went */
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(logfd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(logfd, STDERR_FILENO);
	vtp_log_init(VTP_LOG_DEBUG, false);
	assert_int_equal(vtp_storage_put_file(st, key, src, "video/mp4"), 0);
	vtp_log_init(getenv("VTP_TEST_LOG") ? VTP_LOG_DEBUG : VTP_LOG_OFF, false);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(logfd);
	{
		size_t n;
		unsigned char *log = slurp(logpath, &n);

		log[n] = '\0';
		if (!strstr((char *)log, "300001 bytes in 5 parts"))
			fail_msg("no multipart upload in the log:\n%s", log);
		vtp_free(log);
	}

	assert_int_equal(vtp_storage_stat(st, key, &size), 0);
	assert_int_equal(size, 300001);
	snprintf(dst, sizeof(dst), "%s/big.back", tmpdir);
	assert_int_equal(vtp_storage_get_file(st, key, dst), 0);
	assert_same_file(src, dst);

	/* the content type given at CreateMultipartUpload is the object's */
	assert_int_equal(vtp_storage_presign_get(st, key, time(NULL), 300, NULL, NULL, &url), 0);
	fetch(url, &f);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.ctype, "video/mp4");
	assert_int_equal(f.body.len, 300001);
	vtp_buf_free(&f.body);
	vtp_free(url);

	/* a file under the threshold still goes in one PUT */
	make_file(src, 99999, 5);
	assert_int_equal(vtp_storage_put_file(st, key, src, NULL), 0);
	assert_int_equal(vtp_storage_stat(st, key, &size), 0);
	assert_int_equal(size, 99999);
	vtp_storage_free(st);
}

static void read_all(vtp_storage_reader *rd, unsigned char *out, size_t cap, size_t *got)
{
	ssize_t n;

	*got = 0;
	while ((n = vtp_storage_read(rd, out + *got, cap - *got < 7000 ? cap - *got : 7000)) > 0)
		*got += (size_t)n;
	assert_int_equal(n, 0);
}

static void test_reader(void **state)
{
	vtp_storage *st = open_url(s3url);
	const size_t total = 3 * 1024 * 1024 + 17;
	char src[128], key[128], miss[128];
	unsigned char *want, *got;
	vtp_storage_reader *rd = NULL;
	int64_t size = -1;
	size_t n, wn;
	int64_t t0;

	snprintf(src, sizeof(src), "%s/media", tmpdir);
	make_file(src, total, 3);
	want = slurp(src, &wn);
	got = vtp_malloc(total + 1);
	key_of(key, sizeof(key), "room/rec/media.webm");
	assert_int_equal(vtp_storage_put_file(st, key, src, "video/webm"), 0);

	/* everything (more than the reader's 1 MiB ring) */
	assert_int_equal(vtp_storage_open_read(st, key, 0, -1, &rd, &size), 0);
	assert_int_equal(size, (int64_t)total);
	usleep(100 * 1000); /* let the transfer fill the ring and wait */
	read_all(rd, got, total + 1, &n);
	assert_int_equal(n, total);
	assert_memory_equal(got, want, total);
	vtp_storage_reader_close(rd);

	/* a range in the middle */
	assert_int_equal(vtp_storage_open_read(st, key, 1000, 2 * 1024 * 1024, &rd, &size), 0);
	assert_int_equal(size, (int64_t)total);
	read_all(rd, got, total + 1, &n);
	assert_int_equal(n, 2 * 1024 * 1024);
	assert_memory_equal(got, want + 1000, n);
	vtp_storage_reader_close(rd);

	/* the tail, and a range running past the end */
	assert_int_equal(vtp_storage_open_read(st, key, (int64_t)total - 10, -1, &rd, &size), 0);
	read_all(rd, got, total + 1, &n);
	assert_int_equal(n, 10);
	assert_memory_equal(got, want + total - 10, 10);
	vtp_storage_reader_close(rd);
	assert_int_equal(vtp_storage_open_read(st, key, (int64_t)total - 4, 100, &rd, &size), 0);
	read_all(rd, got, total + 1, &n);
	assert_int_equal(n, 4);
	vtp_storage_reader_close(rd);

	/* closing early aborts the transfer at once */
	t0 = vtp_mono_us();
	assert_int_equal(vtp_storage_open_read(st, key, 0, -1, &rd, &size), 0);
	assert_true(vtp_storage_read(rd, got, 10) > 0);
	vtp_storage_reader_close(rd);
	assert_true(elapsed_s(t0) < 3.0);

	rd = NULL;
	assert_int_equal(vtp_storage_open_read(st, key, (int64_t)total, -1, &rd, &size), VTP_ERANGE);
	assert_null(rd);
	key_of(miss, sizeof(miss), "room/rec/none");
	assert_int_equal(vtp_storage_open_read(st, miss, 0, -1, &rd, &size), VTP_ENOTFOUND);
	assert_null(rd);
	vtp_free(want);
	vtp_free(got);
	vtp_storage_free(st);
}

static void test_list_delete(void **state)
{
	static const char *const names[] = {
		"a&b",      "<x>",          "sp ace",        "plus+sign",   "pct%41",
		"q\"uo'te", "\xc3\xa9t\xc3\xa9", "sub/deep/k",    "sub/k",       "Z",
		"k01",      "k02",          "k03",           "k04",         "k05",
		"k06",      "k07",          "k08",           "k09",         "semi;colon=eq",
	};
	const size_t count = sizeof(names) / sizeof(names[0]);
	char src[128], key[256], prefix[128];
	char *expect[32];
	char **keys = NULL;
	size_t n = 0;
	vtp_storage *st;

	setenv("VTP_S3_LIST_MAX_KEYS", "7", 1); /* 20 keys: three pages */
	st = open_url(s3url);
	unsetenv("VTP_S3_LIST_MAX_KEYS");
	snprintf(src, sizeof(src), "%s/one", tmpdir);
	make_file(src, 10, 1);
	key_of(prefix, sizeof(prefix), "lst/");
	for (size_t i = 0; i < count; i++) {
		snprintf(key, sizeof(key), "%s%s", prefix, names[i]);
		assert_int_equal(vtp_storage_put_file(st, key, src, NULL), 0);
		expect[i] = vtp_strdup(key);
	}
	/* a neighbour that must not be listed or deleted */
	key_of(key, sizeof(key), "lst2/x");
	assert_int_equal(vtp_storage_put_file(st, key, src, NULL), 0);
	/* byte order, as S3 lists */
	for (size_t i = 1; i < count; i++)
		for (size_t j = i; j > 0 && strcmp(expect[j - 1], expect[j]) > 0; j--) {
			char *t = expect[j];

			expect[j] = expect[j - 1];
			expect[j - 1] = t;
		}

	assert_int_equal(vtp_storage_list(st, prefix, &keys, &n), 0);
	assert_int_equal(n, count);
	for (size_t i = 0; i < count; i++)
		assert_string_equal(keys[i], expect[i]);
	vtp_storage_keys_free(keys, n);

	/* delete one, then an absent one */
	assert_int_equal(vtp_storage_delete(st, expect[0]), 0);
	assert_int_equal(vtp_storage_delete(st, expect[0]), 0);
	{
		int64_t size;

		assert_int_equal(vtp_storage_stat(st, expect[0], &size), VTP_ENOTFOUND);
	}
	assert_int_equal(vtp_storage_list(st, prefix, &keys, &n), 0);
	assert_int_equal(n, count - 1);
	vtp_storage_keys_free(keys, n);

	assert_int_equal(vtp_storage_delete_prefix(st, prefix), 0);
	assert_int_equal(vtp_storage_list(st, prefix, &keys, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vtp_storage_delete_prefix(st, prefix), 0); /* absent is success */
	key_of(prefix, sizeof(prefix), "lst2/");
	assert_int_equal(vtp_storage_list(st, prefix, &keys, &n), 0);
	assert_int_equal(n, 1);
	vtp_storage_keys_free(keys, n);
	for (size_t i = 0; i < count; i++)
		vtp_free(expect[i]);
	vtp_storage_free(st);
}

static void test_presign(void **state)
{
	vtp_storage *st = open_url(s3url);
	char src[128], key[128];
	char *url = NULL;
	fetched f;

	snprintf(src, sizeof(src), "%s/dl", tmpdir);
	make_file(src, 5000, 11);
	key_of(key, sizeof(key), "room a/rec/recording.webm");
	assert_int_equal(vtp_storage_put_file(st, key, src, "video/webm"), 0);

	assert_int_equal(vtp_storage_presign_get(st, key, time(NULL), 600, NULL, NULL, &url), 0);
	fetch(url, &f);
	assert_int_equal(f.status, 200);
	assert_int_equal(f.body.len, 5000);
	{
		size_t n;
		unsigned char *want = slurp(src, &n);

		assert_memory_equal(f.body.data, want, n);
		vtp_free(want);
	}
	assert_string_equal(f.ctype, "video/webm");
	vtp_buf_free(&f.body);
	vtp_free(url);

	assert_int_equal(vtp_storage_presign_get(st, key, time(NULL), 600,
						 "attachment; filename=\"class 1.webm\"",
						 "application/octet-stream", &url),
			 0);
	fetch(url, &f);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.disposition, "attachment; filename=\"class 1.webm\"");
	assert_string_equal(f.ctype, "application/octet-stream");
	vtp_buf_free(&f.body);
	vtp_free(url);

	/* signed two hours ago for one minute */
	assert_int_equal(vtp_storage_presign_get(st, key, time(NULL) - 7200, 60, NULL, NULL, &url), 0);
	fetch(url, &f);
	assert_int_equal(f.status, 403);
	vtp_buf_free(&f.body);
	vtp_free(url);
	vtp_storage_free(st);
}

typedef struct worker_arg {
	vtp_storage *st;
	int id;
	int failures;
} worker_arg;

static void *worker(void *p)
{
	worker_arg *a = p;

	for (int i = 0; i < 5; i++) {
		char src[128], key[128];
		vtp_buf b;
		size_t n;
		unsigned char *want;

		snprintf(src, sizeof(src), "%s/w%d-%d", tmpdir, a->id, i);
		make_file(src, 2000 + (size_t)(a->id * 100 + i), (uint32_t)(a->id * 31 + i + 1));
		snprintf(key, sizeof(key), "%sconc/%d/%d", run_prefix, a->id, i);
		vtp_buf_init(&b, 1 << 20);
		want = slurp(src, &n);
		if (vtp_storage_put_file(a->st, key, src, NULL) != 0 ||
		    vtp_storage_get_buf(a->st, key, &b) != 0 || b.len != n ||
		    memcmp(b.data, want, n) != 0)
			a->failures++;
		vtp_free(want);
		vtp_buf_free(&b);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	vtp_storage *st = open_url(s3url);
	pthread_t th[4];
	worker_arg args[4];
	char prefix[64];
	char **keys = NULL;
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		args[i] = (worker_arg){st, i, 0};
		assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	key_of(prefix, sizeof(prefix), "conc/");
	assert_int_equal(vtp_storage_list(st, prefix, &keys, &n), 0);
	assert_int_equal(n, 20);
	vtp_storage_keys_free(keys, n);
	assert_int_equal(vtp_storage_delete_prefix(st, prefix), 0);
	vtp_storage_free(st);
}

/* ---- failure paths -------------------------------------------------------------------- */

/* A local HTTP server answering each connection with the next scripted
 * response (then closing), recording how many requests came. */
typedef struct scripted {
	int ls;
	int port;
	const char *const *responses;
	size_t nresponses;
	atomic_size_t served;
	char first_request[4096];
	pthread_t thread;
} scripted;

static void *scripted_main(void *p)
{
	scripted *s = p;

	for (;;) {
		char buf[65536];
		size_t got = 0;
		int cs = accept(s->ls, NULL, NULL);
		char *end = NULL;

		if (cs < 0)
			return NULL;
		while (got < sizeof(buf) - 1) {
			ssize_t n = read(cs, buf + got, sizeof(buf) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			end = strstr(buf, "\r\n\r\n");
			if (end) {
				const char *cl = strcasestr(buf, "\r\ncontent-length:");
				size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;

				if (got - (size_t)(end + 4 - buf) >= want)
					break;
			}
		}
		if (atomic_load(&s->served) == 0) {
			size_t k = got < sizeof(s->first_request) - 1 ? got : sizeof(s->first_request) - 1;

			memcpy(s->first_request, buf, k);
			s->first_request[k] = '\0';
		}
		{
			/* counted before answering: the client looks once it has the answer */
			size_t i = atomic_fetch_add(&s->served, 1);

			if (i < s->nresponses)
				(void)!write(cs, s->responses[i], strlen(s->responses[i]));
		}
		close(cs);
	}
}

static void scripted_start(scripted *s, const char *const *responses, size_t n)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	memset(s, 0, sizeof(*s));
	s->responses = responses;
	s->nresponses = n;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->ls >= 0);
	assert_int_equal(bind(s->ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->ls, 16), 0);
	assert_int_equal(getsockname(s->ls, (struct sockaddr *)&sa, &len), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, scripted_main, s), 0);
}

static void scripted_stop(scripted *s)
{
	shutdown(s->ls, SHUT_RDWR);
	close(s->ls);
	pthread_join(s->thread, NULL);
}

static vtp_storage *open_scripted(const scripted *s)
{
	char url[128];

	snprintf(url, sizeof(url), "s3://bucket?endpoint=http://127.0.0.1:%d&region=eu-west-1",
		 s->port);
	return open_url(url);
}

#define R503 "HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#define R429 "HTTP/1.1 429 Too Many\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#define R500 "HTTP/1.1 500 Oops\r\nContent-Type: application/xml\r\nContent-Length: 61\r\n"  \
	     "Connection: close\r\n\r\n<Error><Code>InternalError</Code><Message>x</Message></Error>"
#define R403 "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#define R404 "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#define R200_5 "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
#define R200_PUT "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#define R200_NOETAG "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

static void test_retries(void **state)
{
	scripted s;
	vtp_storage *st;
	int64_t size = -1;
	int64_t t0;

	/* 5xx and 429 are retried, and the request is signed */
	{
		static const char *const r[] = {R503, R429, R200_5};

		scripted_start(&s, r, 3);
		st = open_scripted(&s);
		t0 = vtp_mono_us();
		assert_int_equal(vtp_storage_stat(st, "a/b c", &size), 0);
		assert_int_equal(size, 5);
		assert_int_equal(atomic_load(&s.served), 3);
		assert_true(elapsed_s(t0) > 0.7); /* 0.2 s and 0.8 s, jittered down by 25 % at most */
		assert_non_null(strstr(s.first_request, "HEAD /bucket/a/b%20c HTTP/1.1\r\n"));
		assert_non_null(strcasestr(s.first_request, "\r\nAuthorization: AWS4-HMAC-SHA256 "
							    "Credential=S3RVER/"));
		assert_non_null(strstr(s.first_request, "/eu-west-1/s3/aws4_request, SignedHeaders="
							"host;x-amz-content-sha256;x-amz-date, "));
		assert_non_null(strcasestr(s.first_request, "\r\nx-amz-date: "));
		assert_non_null(strcasestr(s.first_request, "\r\nHost: 127.0.0.1:"));
		vtp_storage_free(st);
		scripted_stop(&s);
	}
	/* a 4xx is not retried */
	{
		static const char *const r[] = {R403, R200_5};

		scripted_start(&s, r, 2);
		st = open_scripted(&s);
		assert_int_equal(vtp_storage_stat(st, "k", &size), VTP_EUNAVAIL);
		assert_int_equal(atomic_load(&s.served), 1);
		vtp_storage_free(st);
		scripted_stop(&s);
	}
	{
		static const char *const r[] = {R404, R200_5};

		scripted_start(&s, r, 2);
		st = open_scripted(&s);
		assert_int_equal(vtp_storage_stat(st, "k", &size), VTP_ENOTFOUND);
		assert_int_equal(atomic_load(&s.served), 1);
		vtp_storage_free(st);
		scripted_stop(&s);
	}
	/* four 500s: given up after four attempts */
	{
		static const char *const r[] = {R500, R500, R500, R500, R200_5};
		vtp_buf b;

		scripted_start(&s, r, 5);
		st = open_scripted(&s);
		vtp_buf_init(&b, 1024);
		assert_int_equal(vtp_storage_get_buf(st, "k", &b), VTP_EUNAVAIL);
		assert_int_equal(b.len, 0); /* the error bodies never reach the caller */
		assert_int_equal(atomic_load(&s.served), 4);
		vtp_buf_free(&b);
		vtp_storage_free(st);
		scripted_stop(&s);
	}
}

static void test_upload_not_confirmed(void **state)
{
	char src[128];
	scripted s;
	vtp_storage *st;

	snprintf(src, sizeof(src), "%s/five", tmpdir);
	make_file(src, 6, 1);
	/* a 200 without an ETag is no upload */
	{
		static const char *const r[] = {R200_NOETAG, R200_5};

		scripted_start(&s, r, 2);
		st = open_scripted(&s);
		assert_int_equal(vtp_storage_put_file(st, "k", src, NULL), VTP_EUNAVAIL);
		assert_int_equal(atomic_load(&s.served), 1);
		assert_non_null(strstr(s.first_request, "PUT /bucket/k HTTP/1.1\r\n"));
		assert_non_null(strcasestr(s.first_request, "\r\nContent-Length: 6\r\n"));
		assert_non_null(strcasestr(s.first_request, "\r\ncontent-type: application/octet-stream"));
		vtp_storage_free(st);
		scripted_stop(&s);
	}
	/* the HEAD afterwards says 5 bytes, not 6 */
	{
		static const char *const r[] = {R200_PUT, R200_5};

		scripted_start(&s, r, 2);
		st = open_scripted(&s);
		assert_int_equal(vtp_storage_put_file(st, "k", src, NULL), VTP_EUNAVAIL);
		assert_int_equal(atomic_load(&s.served), 2);
		vtp_storage_free(st);
		scripted_stop(&s);
	}
}

static void test_unreachable(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	char url[128];
	vtp_storage *st;
	int64_t size, t0;
	double secs;
	int fd;

	/* a port that was free a moment ago */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(url, sizeof(url), "s3://bucket?endpoint=http://127.0.0.1:%d", ntohs(sa.sin_port));
	st = open_url(url);

	t0 = vtp_mono_us();
	assert_int_equal(vtp_storage_ping(st), VTP_EUNAVAIL);
	assert_true(elapsed_s(t0) < 3.5);

	t0 = vtp_mono_us();
	assert_int_equal(vtp_storage_stat(st, "k", &size), VTP_EUNAVAIL);
	secs = elapsed_s(t0);
	/* 0.2 + 0.8 + 3.2 s of back-off, each +-25 % */
	if (secs < 3.1 || secs > 8.0)
		fail_msg("gave up after %.2f s", secs);
	{
		vtp_storage_reader *rd = NULL;

		t0 = vtp_mono_us();
		assert_int_equal(vtp_storage_open_read(st, "k", 0, -1, &rd, &size), VTP_EUNAVAIL);
		assert_null(rd);
		secs = elapsed_s(t0);
		if (secs < 3.1 || secs > 8.0)
			fail_msg("reader gave up after %.2f s", secs);
	}
	vtp_storage_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_list_delete),
		cmocka_unit_test(test_presign),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_retries),
		cmocka_unit_test(test_upload_not_confirmed),
		cmocka_unit_test(test_unreachable),
	};

	vtp_log_init(getenv("VTP_TEST_LOG") ? VTP_LOG_DEBUG : VTP_LOG_OFF, false);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
