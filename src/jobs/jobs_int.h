/* Private header of src/jobs (never included from outside the module): one
 * child process run to its end under a deadline (child.c), and the child's
 * environment (env.c). */
#ifndef VTP_JOBS_INT_H
#define VTP_JOBS_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/config.h"

enum vtp__child_end {
	VTP__CHILD_EXITED,       /* code = exit status */
	VTP__CHILD_SIGNALED,     /* code = the signal (a crash, or killed by someone) */
	VTP__CHILD_TIMED_OUT,    /* killed by us at the deadline */
	VTP__CHILD_INTERRUPTED,  /* killed by us because we are stopping */
	VTP__CHILD_NOT_STARTED,  /* fork/exec failed; tail says why */
};

typedef struct vtp__child_result {
	enum vtp__child_end end;
	int code;
	double seconds;  /* how long it ran */
	/* The child's last word on stderr: its last line starting with
	 * "vtp-recorder: " (the CLI's reason line, prefix removed), else the
	 * "msg" of its last JSON log line, else its last line. */
	char tail[400];
} vtp__child_result;

/* Runs exe (argv, envp) in a process group of its own, stdin and stdout on
 * /dev/null, stderr relayed line by line to ours (except its reason line,
 * kept in r->tail), dying with the thread that started it. SIGKILLed at
 * timeout_s or once *stop is true. Returns when it has been reaped. */
void vtp__child_run(const char *exe, char *const argv[], char *const envp[],
		    double timeout_s, atomic_bool *stop, vtp__child_result *r);

/* The environment of a child: ours without VTP_* variables, plus the
 * effective configuration (cfg, whatever came from flags) as VTP_*
 * variables of the same names, plus the extra "NAME=value" strings.
 * NULL-terminated; free with vtp__env_free. */
char **vtp__env_build(const vtp_config *cfg, const char *const *extra, int nextra);
void vtp__env_free(char **env);

#endif
