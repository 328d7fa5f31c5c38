/* Tests for src/jobs: the knobs (VTP_JOB_*), the error texts a failed job
 * leaves on its recording, the child's environment, and the child runner
 * (child.c) on /bin/sh children: exit codes, a crash, a timeout, a stop,
 * the reason line and JSON log lines in the tail, a group killed whole.
 * jobs.c is included to reach its statics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/jobs.c"

#include <fcntl.h>
#include <unistd.h>

#include "core/utf8.h"

/* ---- knobs ---------------------------------------------------------------- */

static void clear_knobs(void)
{
	unsetenv("VTP_JOB_TIMEOUT");
	unsetenv("VTP_JOB_TIMEOUT_FACTOR");
	unsetenv("VTP_JOB_BACKOFF");
	unsetenv("VTP_JOB_MAX_WAIT");
}

static void test_settings_defaults(void **state)
{
	vtp_jobs_settings s;
	char err[256] = "";

	(void)state;
	clear_knobs();
	assert_int_equal(vtp_jobs_settings_load(&s, err, sizeof(err)), 0);
	assert_true(s.timeout_base == 60 && s.timeout_factor == 3);
	assert_int_equal(s.nbackoff, 2);
	assert_true(s.backoff[0] == 10 && s.backoff[1] == 40);
	assert_true(s.poll_interval == 1);
	assert_true(s.max_wait == 60);
}

static void test_settings_table(void **state)
{
	static const struct {
		const char *var, *value;
		bool ok;
	} cases[] = {
		{"VTP_JOB_TIMEOUT", "0.5", true},
		{"VTP_JOB_TIMEOUT", "86400", true},
		{"VTP_JOB_TIMEOUT", "0", false},
		{"VTP_JOB_TIMEOUT", "-1", false},
		{"VTP_JOB_TIMEOUT", "86401", false},
		{"VTP_JOB_TIMEOUT", "1s", false},
		{"VTP_JOB_TIMEOUT", "", false},
		{"VTP_JOB_TIMEOUT", "nan", false},
		{"VTP_JOB_TIMEOUT_FACTOR", "0", true},
		{"VTP_JOB_TIMEOUT_FACTOR", "2.5", true},
		{"VTP_JOB_TIMEOUT_FACTOR", "1001", false},
		{"VTP_JOB_TIMEOUT_FACTOR", "x", false},
		{"VTP_JOB_MAX_WAIT", "0", true},
		{"VTP_JOB_MAX_WAIT", "2.5", true},
		{"VTP_JOB_MAX_WAIT", "-1", false},
		{"VTP_JOB_MAX_WAIT", "soon", false},
		{"VTP_JOB_BACKOFF", "0", true},
		{"VTP_JOB_BACKOFF", "0.2,0.2", true},
		{"VTP_JOB_BACKOFF", "1,2,3,4,5,6,7,8", true},
		{"VTP_JOB_BACKOFF", "1,2,3,4,5,6,7,8,9", false},
		{"VTP_JOB_BACKOFF", "10,,40", false},
		{"VTP_JOB_BACKOFF", "10,", false},
		{"VTP_JOB_BACKOFF", ",10", false},
		{"VTP_JOB_BACKOFF", "", false},
		{"VTP_JOB_BACKOFF", "10;40", false},
		{"VTP_JOB_BACKOFF", "-5", false},
		{"VTP_JOB_BACKOFF", "12345678901234567890123456789012345", false},
	};
	vtp_jobs_settings s;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		clear_knobs();
		setenv(cases[i].var, cases[i].value, 1);
		err[0] = '\0';
		rc = vtp_jobs_settings_load(&s, err, sizeof(err));
		if (cases[i].ok != (rc == 0))
			fail_msg("%s=%s: %s", cases[i].var, cases[i].value, rc ? err : "accepted");
		if (rc) {
			/* one line naming the variable */
			assert_non_null(strstr(err, cases[i].var));
			assert_null(strchr(err, '\n'));
		}
	}
	clear_knobs();
	setenv("VTP_JOB_BACKOFF", "0.2,1.5,3", 1);
	assert_int_equal(vtp_jobs_settings_load(&s, err, sizeof(err)), 0);
	assert_int_equal(s.nbackoff, 3);
	assert_true(s.backoff[0] == 0.2 && s.backoff[1] == 1.5 && s.backoff[2] == 3);
	clear_knobs();
}

/* ---- error texts ------------------------------------------------------------ */

static void test_error_text(void **state)
{
	static const struct {
		enum vtp__child_end end;
		int code;
		const char *tail;
		double timeout;
		int attempts;
		const char *want;
	} cases[] = {
		{VTP__CHILD_SIGNALED, SIGSEGV, "compose: decoding track 2", 75, 3,
		 "composer crashed (SIGSEGV) on 3 attempts: compose: decoding track 2"},
		{VTP__CHILD_SIGNALED, SIGKILL, "", 75, 1, "composer crashed (SIGKILL) on 1 attempt"},
		{VTP__CHILD_TIMED_OUT, 0, "ignored", 75, 3, "composer timed out after 75 s on 3 attempts"},
		{VTP__CHILD_TIMED_OUT, 0, "", 0.5, 2, "composer timed out after 0.5 s on 2 attempts"},
		{VTP__CHILD_EXITED, 1, "compose: recording x: cannot write", 60, 3,
		 "composer failed on 3 attempts: compose: recording x: cannot write"},
		{VTP__CHILD_EXITED, 127, "", 60, 3, "composer could not be executed on 3 attempts"},
		{VTP__CHILD_NOT_STARTED, 0, "cannot start the composer: fork: Resource temporarily unavailable",
		 60, 3, "composer not started on 3 attempts: cannot start the composer: fork: Resource "
			"temporarily unavailable"},
	};
	char out[700];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vtp__child_result cr;

		memset(&cr, 0, sizeof(cr));
		cr.end = cases[i].end;
		cr.code = cases[i].code;
		snprintf(cr.tail, sizeof(cr.tail), "%s", cases[i].tail);
		error_text(&cr, cases[i].timeout, cases[i].attempts, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
}

/* ---- the child's environment ------------------------------------------------ */

static const char *env_get(char **env, const char *name)
{
	size_t len = strlen(name);

	for (char **e = env; *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}

static void test_env(void **state)
{
	const char *extra[] = {"VTP_JOB_ATTEMPT=2"};
	vtp_config cfg;
	char **env;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = "127.0.0.1:0";
	cfg.data_dir = "/srv/vtp data";
	cfg.database_url = "postgres://u:p@db:5432/vtp";
	cfg.storage_url = "file:///srv/vtp/recordings";
	cfg.public_ip = "192.0.2.1";
	cfg.rtp_port_min = 40000;
	cfg.rtp_port_max = 40099;
	cfg.workers = 4;
	cfg.retention_days = 7;
	cfg.log_json = true;
	cfg.log_level = VTP_LOG_WARN;
	cfg.http_threads = 3;
	cfg.response_cache = false;
	cfg.media_url_ttl = 600;
	setenv("VTP_DATA_DIR", "/from/the/parent/env", 1);
	setenv("VTP_WEBHOOK_URL", "http://from.the.parent/env", 1); /* config: never copied */
	setenv("VTP_SOMETHING_ELSE", "x", 1);
	setenv("VTP_TEST_KEEP_ME_NOT", "x", 1);
	setenv("LANG_FOR_TEST", "kept", 1);
	env = vtp__env_build(&cfg, extra, 1);
	assert_string_equal(env_get(env, "VTP_DATA_DIR"), "/srv/vtp data"); /* flags win */
	assert_string_equal(env_get(env, "VTP_DATABASE_URL"), "postgres://u:p@db:5432/vtp");
	assert_string_equal(env_get(env, "VTP_WORKERS"), "4");
	assert_string_equal(env_get(env, "VTP_RTP_PORT_MAX"), "40099");
	assert_string_equal(env_get(env, "VTP_LOG_FORMAT"), "json");
	assert_string_equal(env_get(env, "VTP_LOG_LEVEL"), "warn");
	assert_string_equal(env_get(env, "VTP_RESPONSE_CACHE"), "0");
	assert_string_equal(env_get(env, "VTP_JOB_ATTEMPT"), "2");
	assert_string_equal(env_get(env, "LANG_FOR_TEST"), "kept");
	/* not configuration (a storage or test knob): passed through */
	assert_string_equal(env_get(env, "VTP_SOMETHING_ELSE"), "x");
	assert_string_equal(env_get(env, "VTP_MEDIA_URL_TTL"), "600");
	assert_null(env_get(env, "VTP_JWT_SECRET")); /* unset stays unset */
	assert_null(env_get(env, "VTP_WEBHOOK_URL"));
	for (char **e = env; *e; e++) /* each name once */
		for (char **f = e + 1; *f; f++)
			assert_false(strcspn(*e, "=") == strcspn(*f, "=") &&
				     strncmp(*e, *f, strcspn(*e, "=")) == 0);
	vtp__env_free(env);
	unsetenv("VTP_DATA_DIR");
	unsetenv("VTP_SOMETHING_ELSE");
	unsetenv("VTP_WEBHOOK_URL");
	unsetenv("VTP_TEST_KEEP_ME_NOT");
	unsetenv("LANG_FOR_TEST");
}

/* ---- the child runner ---------------------------------------------------------- */

extern char **environ;

/* Runs a shell script as the child. What it says on stderr is relayed to
 * ours: kept off the test's output. */
static void sh(const char *script, double timeout, atomic_bool *stop, vtp__child_result *r)
{
	char *argv[] = {"sh", "-c", (char *)script, NULL};
	atomic_bool never = false;
	int saved = dup(STDERR_FILENO), null_fd = open("/dev/null", O_WRONLY);

	assert_true(saved >= 0 && null_fd >= 0);
	dup2(null_fd, STDERR_FILENO);
	vtp__child_run("/bin/sh", argv, environ, timeout, stop ? stop : &never, r);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(null_fd);
}

/* Running (not gone, not a zombie waiting for whoever adopted it). */
static bool running(pid_t pid)
{
	char path[64], buf[512];
	const char *paren;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static void test_child_exits(void **state)
{
	static const struct {
		const char *script;
		int code;
		const char *tail;
	} cases[] = {
		{"exit 0", 0, ""},
		{"exit 3", 3, ""},
		{"echo 'plain line' >&2; exit 1", 1, "plain line"},
		/* the CLI's reason line wins over later log lines, prefix removed */
		{"echo 'vtp-recorder: compose: recording x: cannot write' >&2; "
		 "echo '{\"level\":\"error\",\"msg\":\"later\"}' >&2; exit 1",
		 1, "compose: recording x: cannot write"},
		/* a JSON log line: its msg */
		{"echo '{\"ts\":\"t\",\"level\":\"warn\",\"msg\":\"no track carried media\"}' >&2; exit 3",
		 3, "no track carried media"},
		/* the last non-empty line, even without a newline at the end */
		{"printf 'one\\ntwo\\n\\n' >&2; printf 'three' >&2; exit 1", 1, "three"},
		/* control bytes and invalid UTF-8 are cleaned */
		{"printf 'bad \\033[31m\\377 end\\n' >&2; exit 1", 1, NULL},
		/* stdout goes nowhere, stdin is empty */
		{"echo out; read x && exit 9; exit 4", 4, ""},
	};
	vtp__child_result r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sh(cases[i].script, 10, NULL, &r);
		assert_int_equal(r.end, VTP__CHILD_EXITED);
		assert_int_equal(r.code, cases[i].code);
		if (cases[i].tail)
			assert_string_equal(r.tail, cases[i].tail);
		assert_true(vtp_utf8_valid(r.tail, true));
	}
	/* an overlong line is cut, still valid text */
	sh("head -c 20000 /dev/zero | tr '\\0' 'x' >&2; exit 1", 10, NULL, &r);
	assert_int_equal(r.code, 1);
	assert_true(strlen(r.tail) > 0 && strlen(r.tail) < sizeof(r.tail));
}

static void test_child_crash(void **state)
{
	vtp__child_result r;

	(void)state;
	sh("echo 'about to crash' >&2; kill -SEGV $$", 10, NULL, &r);
	assert_int_equal(r.end, VTP__CHILD_SIGNALED);
	assert_int_equal(r.code, SIGSEGV);
	assert_string_equal(r.tail, "about to crash");
}

static void test_child_timeout(void **state)
{
	vtp__child_result r;
	char pidfile[] = "/tmp/vtp-jobs-test-XXXXXX", script[256], buf[32] = "";
	FILE *f;
	int fd = mkstemp(pidfile);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	/* a grandchild in the group dies with it */
	snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; sleep 30", pidfile);
	sh(script, 0.3, NULL, &r);
	assert_int_equal(r.end, VTP__CHILD_TIMED_OUT);
	assert_true(r.seconds >= 0.3 && r.seconds < 5);
	f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	unlink(pidfile);
	for (int i = 0; i < 100 && running((pid_t)strtol(buf, NULL, 10)); i++)
		usleep(10000);
	assert_false(running((pid_t)strtol(buf, NULL, 10)));
}

static void *set_later(void *arg)
{
	usleep(200000);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

static void test_child_stop(void **state)
{
	atomic_bool stop = false;
	vtp__child_result r;
	pthread_t t;

	(void)state;
	pthread_create(&t, NULL, set_later, &stop);
	sh("sleep 30", 60, &stop, &r);
	pthread_join(t, NULL);
	assert_int_equal(r.end, VTP__CHILD_INTERRUPTED);
	assert_true(r.seconds < 5);
}

static void test_child_not_found(void **state)
{
	char *argv[] = {"nope", NULL};
	atomic_bool never = false;
	vtp__child_result r;

	(void)state;
	vtp__child_run("/nonexistent/vtp-recorder", argv, environ, 10, &never, &r);
	assert_int_equal(r.end, VTP__CHILD_EXITED);
	assert_int_equal(r.code, 127);
}

/* ---- leftovers of killed composers ------------------------------------------ */

static void test_tmp_output_pid(void **state)
{
	static const struct {
		const char *name;
		long pid;
	} cases[] = {
		{"recording.webm.tmp-1234", 1234},
		{"recording.mp4.tmp-7", 7},
		{"hls.tmp-99999", 99999},
		{"thumbnail.jpg.tmp-4194304", 4194304},
		{"a.tmp-1.tmp-42", 42},       /* the last mark counts */
		{"recording.webm", 0},
		{"recording.webm.tmp-", 0},
		{"recording.webm.tmp-12a", 0},
		{"recording.webm.tmp--1", 0},
		{"recording.webm.tmp-12345678901", 0}, /* too long for a pid */
		{"x.vtptmp.0123456789abcdef", 0},      /* storage's own temp files */
		{"tracks", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long got = tmp_output_pid(cases[i].name);

		if (got != cases[i].pid)
			fail_msg("%s: %ld, expected %ld", cases[i].name, got, cases[i].pid);
	}
}

static void write_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static void test_sweep_folder(void **state)
{
	char dir[] = "/tmp/vtp-sweep-XXXXXX", p[512], keep[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/recording.webm.tmp-999999999", dir);
	write_file(p);
	snprintf(p, sizeof(p), "%s/hls.tmp-999999998", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/hls.tmp-999999998/seg_00000.m4s", dir);
	write_file(p);
	snprintf(p, sizeof(p), "%s/hls.tmp-999999998/deeper", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	/* a link in a leftover folder is removed, its target left alone */
	snprintf(p, sizeof(p), "%s/hls.tmp-999999998/deeper/link", dir);
	assert_int_equal(symlink("/etc/hostname", p), 0);
	/* ours: this process runs */
	snprintf(keep, sizeof(keep), "recording.mp4.tmp-%ld", (long)getpid());
	snprintf(p, sizeof(p), "%s/%s", dir, keep);
	write_file(p);
	snprintf(p, sizeof(p), "%s/recording.webm", dir);
	write_file(p);

	assert_int_equal(sweep_folder(dir, "test"), 2);
	snprintf(p, sizeof(p), "%s/recording.webm.tmp-999999999", dir);
	assert_int_not_equal(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/hls.tmp-999999998", dir);
	assert_int_not_equal(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/%s", dir, keep);
	assert_int_equal(access(p, F_OK), 0);
	unlink(p);
	snprintf(p, sizeof(p), "%s/recording.webm", dir);
	assert_int_equal(access(p, F_OK), 0);
	unlink(p);
	assert_int_equal(access("/etc/hostname", F_OK) == 0 || errno == ENOENT, 1);
	assert_int_equal(sweep_folder(dir, "test"), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_defaults),
		cmocka_unit_test(test_settings_table),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_child_exits),
		cmocka_unit_test(test_child_crash),
		cmocka_unit_test(test_child_timeout),
		cmocka_unit_test(test_child_stop),
		cmocka_unit_test(test_child_not_found),
		cmocka_unit_test(test_tmp_output_pid),
		cmocka_unit_test(test_sweep_folder),
	};

	vtp_log_init(VTP_LOG_ERROR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
