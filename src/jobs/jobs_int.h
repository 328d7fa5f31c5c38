/* Private header of src/jobs (never included from outside the module): one
 * child process run to its end under a deadline (child.c), the child's
 * environment (env.c), and a job's cost and fit (capacity.c). */
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

/* A job's cost in core-equivalents (README "Processing jobs"): 1.0 is
 * encoding a 1280x720 output at 30 fps; each camera the layout decodes
 * adds a quarter of the encode (grid and auto: all, speaker, presentation
 * and screen: at most 2); scaled by the output's pixels per second. No
 * video: 0.2; one video track (the fast path copies it): 0.3. Tracks
 * unknown (NULL or unreadable JSON): two cameras assumed. At most 64. */
double vtp__job_cost(const char *layout, int width, int height, int fps, const char *tracks_json);
/* Whether a job of cost fits beside what runs: always on an idle node
 * (running == 0), else when running_cost + cost <= capacity. */
bool vtp__job_fits(double capacity, double running_cost, int running, double cost);
/* Which of n queued jobs (oldest first, with their costs and the seconds
 * each has been runnable) to claim: the first that fits, passing over
 * those that do not (no head-of-line blocking) unless one of them has
 * waited max_wait_s or more, which stops the walk so that what runs drains
 * until it fits (no starvation). -1: none. */
int vtp__job_pick(const double *cost, const double *waited_s, int n, double capacity,
		  double running_cost, int running, double max_wait_s);

#endif
