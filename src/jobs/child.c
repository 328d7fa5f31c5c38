/* One child process, run to its end: fork + exec from a worker thread (the
 * child only makes async-signal-safe calls between the two), in a process
 * group of its own so that a kill reaches all of it, with PR_SET_PDEATHSIG
 * so that it dies with the thread that started it (a server killed with -9
 * leaves no composer behind to race with the re-queued job). Its stderr is
 * relayed line by line to ours; its reason line is kept for the job's
 * error. A deadline and a stop flag end it with SIGKILL. */
#include "jobs/jobs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/timeutil.h"
#include "core/utf8.h"

#define REASON_PREFIX "vtp-recorder: "
#define LINE_MAX_BYTES 4096

typedef struct relay {
	char line[LINE_MAX_BYTES + 1];
	size_t len;
	char last[LINE_MAX_BYTES + 1];    /* last non-empty line */
	char reason[LINE_MAX_BYTES + 1];  /* last reason line, prefix removed */
} relay;

/* A complete line from the child: remembered, and passed on to our stderr
 * unless it is the CLI's reason line (the worker logs the outcome with it). */
static void relay_line(relay *rl)
{
	rl->line[rl->len] = '\0';
	if (rl->len == 0)
		return;
	if (strncmp(rl->line, REASON_PREFIX, strlen(REASON_PREFIX)) == 0) {
		snprintf(rl->reason, sizeof(rl->reason), "%s", rl->line + strlen(REASON_PREFIX));
	} else {
		memcpy(rl->last, rl->line, rl->len + 1);
		rl->line[rl->len] = '\n';
		if (write(STDERR_FILENO, rl->line, rl->len + 1) < 0) {
			/* our stderr is gone: nothing else to tell */
		}
	}
	rl->len = 0;
}

static void relay_bytes(relay *rl, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			relay_line(rl);
		} else {
			if (rl->len == LINE_MAX_BYTES)
				relay_line(rl); /* an overlong line goes out in pieces */
			rl->line[rl->len++] = p[i];
		}
	}
}

/* Reads what the pipe holds; false at end of file (or error). */
static bool drain(int fd, relay *rl)
{
	char buf[4096];

	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k > 0) {
			relay_bytes(rl, buf, (size_t)k);
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return true;
		return false;
	}
}

/* r->tail: valid UTF-8 without control characters (it ends up in the
 * database, in JSON and in logs), cut at a character boundary. */
static void set_tail(vtp__child_result *r, const relay *rl)
{
	json_t *o = NULL, *msg;
	const char *text = rl->last;
	char *clean;

	if (rl->reason[0]) {
		text = rl->reason;
	} else if (rl->last[0] == '{') {
		o = json_loads(rl->last, 0, NULL);
		msg = o ? json_object_get(o, "msg") : NULL;
		if (json_is_string(msg))
			text = json_string_value(msg);
	}
	clean = vtp_utf8_sanitize(text, sizeof(r->tail) - 1);
	memcpy(r->tail, clean, strlen(clean) + 1);
	vtp_free(clean);
	json_decref(o);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void exec_child(const char *exe, char *const argv[], char *const envp[], int null_fd,
		       int err_fd, pid_t parent)
{
	struct sigaction dfl;
	sigset_t none;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the parent died before the line above */
		_exit(127);
	/* the server blocks SIGINT/SIGTERM for sigwait() and ignores SIGPIPE:
	 * neither may outlive exec */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL);
	sigaction(SIGINT, &dfl, NULL);
	sigaction(SIGTERM, &dfl, NULL);
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd, STDERR_FILENO) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	execve(exe, argv, envp);
	_exit(127);
}

void vtp__child_run(const char *exe, char *const argv[], char *const envp[],
		    double timeout_s, atomic_bool *stop, vtp__child_result *r)
{
	int64_t start = vtp_mono_us(), deadline = start + (int64_t)(timeout_s * 1e6);
	int pipefd[2] = {-1, -1}, null_fd = -1, status = 0;
	bool open_pipe = true, killed = false, lost = false;
	pid_t pid, self = getpid();
	relay *rl = NULL;

	memset(r, 0, sizeof(*r));
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
		r->end = VTP__CHILD_NOT_STARTED;
		snprintf(r->tail, sizeof(r->tail), "cannot start the composer: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r->end = VTP__CHILD_NOT_STARTED;
		snprintf(r->tail, sizeof(r->tail), "cannot start the composer: fork: %s",
			 strerror(errno));
		goto out;
	}
	if (pid == 0)
		exec_child(exe, argv, envp, null_fd, pipefd[1], self);
	setpgid(pid, pid); /* also here: no window where a kill misses the group */
	close(pipefd[1]);
	pipefd[1] = -1;
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	rl = vtp_calloc(1, sizeof(*rl));

	for (;;) {
		int64_t now = vtp_mono_us();
		int wait_ms = 100;
		pid_t w;

		if (!killed && now >= deadline) {
			kill(-pid, SIGKILL);
			killed = true;
			r->end = VTP__CHILD_TIMED_OUT;
		} else if (!killed && atomic_load(stop)) {
			kill(-pid, SIGKILL);
			killed = true;
			r->end = VTP__CHILD_INTERRUPTED;
		}
		if (!killed && deadline - now < wait_ms * 1000)
			wait_ms = (int)((deadline - now) / 1000) + 1;
		if (open_pipe) {
			struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};

			if (poll(&pfd, 1, wait_ms) > 0)
				open_pipe = drain(pipefd[0], rl);
		} else {
			poll(NULL, 0, wait_ms < 20 ? wait_ms : 20);
		}
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno == ECHILD) { /* reaped elsewhere: status unknown */
			lost = true;
			break;
		}
	}
	if (open_pipe)
		drain(pipefd[0], rl); /* what it wrote just before exiting */
	if (rl->len)
		relay_line(rl);
	r->seconds = (double)(vtp_mono_us() - start) / 1e6;
	if (!killed) {
		if (lost) {
			r->end = VTP__CHILD_EXITED;
			r->code = 1;
		} else if (WIFSIGNALED(status)) {
			r->end = VTP__CHILD_SIGNALED;
			r->code = WTERMSIG(status);
		} else {
			r->end = VTP__CHILD_EXITED;
			r->code = WEXITSTATUS(status);
		}
	}
	set_tail(r, rl);
out:
	vtp_free(rl);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (null_fd >= 0)
		close(null_fd);
}
