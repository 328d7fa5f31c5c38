/* vtp-recorder: the command line. Parses the subcommand, loads the
 * configuration (environment, then flags), and runs one of: serve, worker,
 * migrate, user add, token, compose, inspect. Exit codes: 0 success, 1
 * runtime failure, 2 bad usage or configuration; compose also 3 (no media). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timeutil.h"
#include "capture/capture.h"
#include "compose/compose.h"
#include "core/path.h"
#include "events/events.h"
#include "events/webhook.h"
#include "jobs/compose_job.h"
#include "jobs/jobs.h"
#include "recording/recording.h"
#include "store/store.h"
#include "storage/storage.h"

#define PROG "vtp-recorder"
#define LOGIN_TOKEN_TTL (12 * 3600)
#define SECRET_MAX 4096

static const char usage_text[] =
	"Usage: " PROG " <command> [options]\n"
	"\n"
	"Records live online classes: every peer's audio and video, composed into one file.\n"
	"\n"
	"Commands:\n"
	"  serve                          HTTP API, media ingest and VTP_WORKERS processing\n"
	"                                 workers (until SIGINT/SIGTERM)\n"
	"  worker                         processing workers only, no HTTP or ingest (scale-out\n"
	"                                 nodes; until SIGINT/SIGTERM)\n"
	"  migrate                        apply database migrations and exit\n"
	"  user add --email E --name N --role R [--password-stdin]\n"
	"                                 create a user (role: admin, instructor, student, service)\n"
	"                                 and print its id; without --password-stdin the user\n"
	"                                 cannot log in with a password (use `token`)\n"
	"  token --email E [--ttl SECONDS]\n"
	"                                 print a signed JWT for that user (default ttl 3600)\n"
	"  inspect [--json] FILE          summary of a track capture (.vtpcap, and its segments\n"
	"                                 FILE.NNNNNN): codec, packets, gaps, duration,\n"
	"                                 first/last arrival, its segments and whether each\n"
	"                                 ends cleanly; exit 1 if FILE is not a readable capture\n"
	"  compose --recording ID [--threads N] [--no-fast-path]\n"
	"                                 compose one stopped (or processing) recording into\n"
	"                                 its file with the settings it was started with (the\n"
	"                                 workers run this as a child process); exit 0 done,\n"
	"                                 1 failed (worth retrying), 2 refused, 3 no media\n"
	"  compose --tracks DIR --output FILE [--format webm|mp4] [--video-codec vp8|h264]\n"
	"          [--audio-codec opus|aac] [--bitrate KBPS] [--width W --height H] [--fps F]\n"
	"          [--threads N] [--no-fast-path] [--hls DIR] [--thumbnail FILE.jpg] [--json]\n"
	"          [--layout grid|speaker|presentation|screen|auto] [--decode-all]\n"
	"                                 compose a folder of captures (.vtpcap) into FILE, no\n"
	"                                 database; prints a summary (JSON with --json).\n"
	"                                 --hls: also an HLS playlist (DIR/index.m3u8, 4 s\n"
	"                                 fMP4 segments, H.264/AAC; DIR is replaced whole);\n"
	"                                 --thumbnail: a 640x360 JPEG near 10 % of the media\n"
	"                                 --layout: grid (equal tiles), speaker (the active\n"
	"                                 speaker large), presentation (a screen share large,\n"
	"                                 the speaker beside it), screen (the share alone),\n"
	"                                 auto (presentation while a share is live, else grid\n"
	"                                 up to 4 people with video, speaker beyond)\n"
	"                                 --decode-all: decode every video frame, shown or\n"
	"                                 not (to compare; by default a track is decoded only\n"
	"                                 from its last keyframe before it shows)\n"
	"                                 Defaults: webm (mp4 for FILE.mp4), vp8+opus (mp4:\n"
	"                                 h264+aac), 2000 kbps, 1280x720, 30 fps, all cores\n"
	"\n"
	"Options:\n"
	"  --help                         show this help and exit\n"
	"  --version                      show the version and exit\n"
	"\n"
	"Configuration (environment variable, or the flag of the same name; flags win):\n";

static const char jobs_help[] =
	"\n"
	"Processing jobs (environment only; for operators and tests):\n"
	"  VTP_JOB_TIMEOUT          a composer is killed after this many seconds plus\n"
	"                           VTP_JOB_TIMEOUT_FACTOR per second of recording [60]\n"
	"  VTP_JOB_TIMEOUT_FACTOR   [3]\n"
	"  VTP_JOB_BACKOFF          seconds before each retry, comma-separated, the last\n"
	"                           one repeats; 3 attempts in all [10,40]\n"
	"  VTP_JOB_MAX_WAIT         seconds a job that does not fit the capacity may be\n"
	"                           passed over by lighter ones [60]\n"
	"  VTP_NODE_TIMEOUT         seconds without a heartbeat after which a node counts\n"
	"                           as lost: jobs stop waiting for its segments [30]\n"
	"  VTP_JOB_SEGMENT_WAIT     the most seconds a job waits for track segments\n"
	"                           still on their way to storage [600]\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
	fputs(vtp_config_help(), f);
	fputs(jobs_help, f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see " PROG " --help)\n");
	return 2;
}

/* ---- shared set-up ------------------------------------------------------ */

static int make_private_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	fprintf(stderr, PROG ": cannot create %s: %s\n", path, strerror(errno));
	return -1;
}

/* The JWT key: VTP_JWT_SECRET, else $data_dir/jwt.secret, generated (0600)
 * on first use. The file's bytes (trailing newline removed) are the key. */
/* This node's id (recordings it ingests carry it, so that after a crash it
 * recovers its own): DATA_DIR/node.id, generated on first start. */
static int load_node_id(const vtp_config *cfg, char id[VTP_UUID_BUFLEN])
{
	char path[4096], buf[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/node.id", cfg->data_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			buf[strcspn(buf, "\r\n")] = '\0';
			if (vtp_uuid_parse(buf, id))
				return 0;
		}
		fprintf(stderr, PROG ": %s does not hold a node id (a UUID)\n", path);
		return 1;
	}
	vtp_uuid_v4(id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, id, strlen(id)) != (ssize_t)strlen(id) || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

static int load_secret(const vtp_config *cfg, unsigned char **key, size_t *keylen)
{
	char path[4096], buf[SECRET_MAX + 1];
	ssize_t n;
	int fd;

	if (cfg->jwt_secret) {
		if (strlen(cfg->jwt_secret) < 16) {
			fprintf(stderr, PROG ": VTP_JWT_SECRET: too short (at least 16 characters)\n");
			return 2;
		}
		*key = (unsigned char *)vtp_strdup(cfg->jwt_secret);
		*keylen = strlen(cfg->jwt_secret);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/jwt.secret", cfg->data_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		char hex[65];

		vtp_random_hex(hex, 32);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (write(fd, hex, 64) != 64 || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
				fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
				close(fd);
				unlink(path);
				return 1;
			}
			close(fd);
			VTP_INFO("generated a new JWT signing key in %s", path);
		} else if (errno != EEXIST) {
			fprintf(stderr, PROG ": cannot create %s: %s\n", path, strerror(errno));
			return 1;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	n = read(fd, buf, SECRET_MAX);
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n < 16) {
		fprintf(stderr, PROG ": %s is too short to be a signing key\n", path);
		return 1;
	}
	*key = vtp_malloc((size_t)n);
	memcpy(*key, buf, (size_t)n);
	*keylen = (size_t)n;
	return 0;
}

static int open_store(const vtp_config *cfg, int pool, vtp_store **store)
{
	char err[512];
	int applied = 0, rc;

	if (make_private_dir(cfg->data_dir))
		return 1;
	rc = vtp_store_open(cfg->database_url, pool, store, err, sizeof(err));
	if (rc) {
		fprintf(stderr, PROG ": cannot open the database: %s\n", err);
		return 1;
	}
	rc = vtp_store_migrate(*store, &applied);
	if (rc) {
		fprintf(stderr, PROG ": database migration failed: %s\n", vtp_strerror(rc));
		vtp_store_free(*store);
		*store = NULL;
		return 1;
	}
	if (applied)
		VTP_INFO("applied %d database migration(s) on %s", applied, vtp_store_backend(*store));
	return 0;
}

/* The media storage; recordings are captured and composed under its
 * local root (the file:// folder, or the s3:// spool). */
static int open_storage(const vtp_config *cfg, vtp_storage **st)
{
	vtp_storage_config sc;
	char err[512];

	memset(&sc, 0, sizeof(sc));
	sc.url = cfg->storage_url;
	sc.data_dir = cfg->data_dir;
	sc.access_key = cfg->s3_access_key;
	sc.secret_key = cfg->s3_secret_key;
	if (vtp_storage_open(&sc, st, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": VTP_STORAGE_URL: %s\n", err);
		return 1;
	}
	return 0;
}

static bool valid_email(const char *e)
{
	const char *at = strchr(e, '@');
	size_t len = strlen(e);

	if (len < 3 || len > 320 || !at || at == e || !at[1] || strchr(at + 1, '@'))
		return false;
	for (const char *p = e; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int create_user(vtp_store *store, const char *email, const char *name,
		       const char *role, const char *password, char id[VTP_UUID_BUFLEN])
{
	vtp_user u;
	char *hash = NULL;
	int rc;

	memset(&u, 0, sizeof(u));
	vtp_uuid_v4(u.id);
	u.email = vtp_strdup(email);
	for (char *p = u.email; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	u.full_name = (char *)name;
	u.role = (char *)role;
	if (password && (rc = vtp_password_hash(password, &hash)))
		goto out;
	u.password_hash = hash;
	u.created_at = vtp_now_ms();
	rc = vtp_store_user_insert(store, &u);
	if (!rc)
		memcpy(id, u.id, VTP_UUID_BUFLEN);
out:
	vtp_free(u.email);
	vtp_free(hash);
	return rc;
}

/* ---- serve -------------------------------------------------------------- */

/* The generated password goes to a person, never to a log collector: on
 * the terminal when stdout is one (`make run`); otherwise stdout is likely
 * a log stream (a service, a container, a pipe) and gets only where to
 * find it, a file only its owner can read. */
static void show_admin_password(const vtp_config *cfg, const char *password)
{
	char path[4096];
	FILE *f = NULL;
	int fd;

	if (isatty(STDOUT_FILENO)) {
		printf("First start: created the administrator account (shown only this once)\n"
		       "  email:    admin@localhost\n"
		       "  password: %s\n", password);
		fflush(stdout);
		return;
	}
	snprintf(path, sizeof(path), "%s/admin-password", cfg->data_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		f = fdopen(fd, "w");
	if (f) {
		fprintf(f, "email: admin@localhost\npassword: %s\n", password);
		fclose(f);
		printf("First start: created the administrator account admin@localhost; its password "
		       "is in %s (readable by this user only; delete it once read)\n", path);
	} else {
		if (fd >= 0)
			close(fd);
		printf("First start: created the administrator account admin@localhost, but its "
		       "password could not be written to %s (%s); create another administrator "
		       "with `user add --role admin --password-stdin`\n", path, strerror(errno));
	}
	fflush(stdout);
}

static int bootstrap_admin(const vtp_config *cfg, vtp_store *store)
{
	char password[21], id[VTP_UUID_BUFLEN];
	int64_t count = 0;
	int rc;

	if ((rc = vtp_store_user_count(store, &count)))
		return rc;
	if (count > 0)
		return 0;
	vtp_random_hex(password, 10);
	rc = create_user(store, "admin@localhost", "Administrator", VTP_ROLE_ADMIN, password, id);
	if (rc == VTP_ECONFLICT) /* another node did it at the same moment */
		return 0;
	if (rc)
		return rc;
	show_admin_password(cfg, password);
	explicit_bzero(password, sizeof(password));
	return 0;
}

/* Every track holds a socket and a packet log: lift the soft descriptor
 * limit (often 1024) to the hard one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			VTP_WARN("cannot raise the open-file limit: %s", strerror(errno));
	}
}

/* Store connections for the worker threads (they hold one only briefly). */
static int worker_connections(const vtp_config *cfg)
{
	return cfg->workers < 16 ? cfg->workers : 16;
}

static vtp_jobs *start_jobs(vtp_config *cfg, const vtp_jobs_settings *js, vtp_store *store,
			    vtp_recordings *recs, vtp_storage *storage, const char *claimer)
{
	vtp_jobs_config jc;
	char err[512];
	vtp_jobs *jobs;

	memset(&jc, 0, sizeof(jc));
	jc.store = store;
	jc.recordings = recs;
	jc.storage = storage;
	jc.claimer = claimer;
	jc.workers = cfg->workers;
	jc.capacity = (double)cfg->worker_capacity_milli / 1000.0;
	jc.config = cfg;
	jc.settings = *js;
	jobs = vtp_jobs_start(&jc, err, sizeof(err));
	if (!jobs) {
		fprintf(stderr, PROG ": %s\n", err);
		return NULL;
	}
	if (cfg->workers > 0)
		vtp_recordings_set_job_hook(recs, vtp_jobs_wake, jobs);
	return jobs;
}

/* After the stop signal: no new jobs, and the running ones get up to
 * VTP_DRAIN_SECONDS to finish (the HTTP server still answers, /healthz
 * with 503 "draining" so that a load balancer moves on). A second signal
 * cuts the wait short; what still runs then is handed back by
 * vtp_jobs_stop. */
static void drain_jobs(vtp_jobs *jobs, const vtp_config *cfg, const sigset_t *set)
{
	int64_t deadline = vtp_mono_us() + (int64_t)cfg->drain_seconds * 1000000;
	int running;

	vtp_jobs_drain(jobs);
	running = vtp_jobs_running(jobs);
	if (!running)
		return;
	VTP_INFO("draining: waiting up to %d s for %d running job(s) to finish (a second "
		 "SIGTERM hands them back at once)", cfg->drain_seconds, running);
	while ((running = vtp_jobs_running(jobs)) > 0 && vtp_mono_us() < deadline) {
		struct timespec ts = {0, 200 * 1000 * 1000};

		if (sigtimedwait(set, NULL, &ts) > 0) {
			VTP_WARN("draining: second signal, handing back %d running job(s) now", running);
			return;
		}
	}
	if (running)
		VTP_WARN("draining: %d job(s) still running after %d s: handing them back",
			 running, cfg->drain_seconds);
	else
		VTP_INFO("draining: every running job finished");
}

/* The WHIP owner table forgets a session when it ends on this node
 * (ingest's whip_ended hook; README "WHIP behind a load balancer"). */
typedef struct whip_owner_hook {
	vtp_store *store;
	const char *node_id;
} whip_owner_hook;

static void whip_session_ended(void *ctx, const char *session_id)
{
	whip_owner_hook *h = ctx;

	if (vtp_store_whip_owner_remove(h->store, session_id, h->node_id) != 0)
		VTP_WARN("whip session %s: cannot remove it from the session directory", session_id);
}

static int cmd_serve(vtp_config *cfg, const vtp_jobs_settings *js)
{
	vtp_store *store = NULL;
	vtp_recordings *recs = NULL;
	vtp_api *api = NULL;
	vtp_jobs *jobs = NULL;
	vtp_ingest *ingest = NULL;
	vtp_ingest_config ic;
	char node_id[VTP_UUID_BUFLEN];
	whip_owner_hook whip_hook;
	int recovered = 0, stale = 0;
	unsigned char *key = NULL;
	size_t keylen = 0;
	char err[512];
	const char *recdir;
	vtp_storage *storage = NULL;
	vtp_retention *retention = NULL;
	vtp_webhooks *webhooks = NULL;
	vtp_events *events = NULL;
	vtp_events_config ec;
	vtp_api_config ac;
	sigset_t set;
	int sig = 0, rc;

	/* Signals are taken by sigwait() below. Block them before any thread
	 * exists (the store, the audit writer, the HTTP pool), so that every
	 * thread inherits the mask and a SIGTERM always means a clean stop. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	/* one connection per HTTP thread, plus the login workers, the audit
	 * writer, the events thread and one spare, plus the processing workers */
	if ((rc = open_store(cfg, cfg->http_threads + 5 + worker_connections(cfg), &store)))
		goto out;
	if ((rc = load_secret(cfg, &key, &keylen)))
		goto out;
	if ((rc = open_storage(cfg, &storage)))
		goto out;
	recdir = vtp_storage_local_root(storage);
	if (bootstrap_admin(cfg, store)) {
		fprintf(stderr, PROG ": cannot create the administrator account\n");
		rc = 1;
		goto out;
	}
	if (load_node_id(cfg, node_id)) {
		rc = 1;
		goto out;
	}
	/* PostgreSQL: kept answers follow every node's writes (LISTEN); on
	 * SQLite a no-op */
	if (cfg->response_cache && vtp_store_watch(store) != 0) {
		fprintf(stderr, PROG ": cannot start the database change feed\n");
		rc = 1;
		goto out;
	}
	recs = vtp_recordings_new(store, recdir);
	vtp_recordings_set_node(recs, node_id);
	vtp_recordings_set_cache(recs, cfg->response_cache);
	vtp_recordings_set_media_urls(recs, key, keylen, cfg->media_url_ttl);
	vtp_recordings_set_webhooks(recs, cfg->webhook_url != NULL);
	if (cfg->webhook_url) {
		webhooks = vtp_webhooks_start(store, cfg->webhook_url, cfg->webhook_secret, err,
					      sizeof(err));
		if (!webhooks) {
			fprintf(stderr, PROG ": %s\n", err);
			rc = 2;
			goto out;
		}
	}

	memset(&ic, 0, sizeof(ic));
	ic.public_ip = cfg->public_ip;
	ic.port_min = cfg->rtp_port_min;
	ic.port_max = cfg->rtp_port_max;
	ic.whip_timeout_seconds = cfg->whip_timeout;
	ic.whip_max_bitrate = cfg->whip_max_bitrate;
	ic.keyframe_interval_ms = cfg->keyframe_interval_ms;
	ic.segment_seconds = cfg->segment_seconds;
	ic.spool_alert_seconds = cfg->spool_alert_seconds;
	ic.node_timeout_seconds = (int)js->node_timeout;
	ic.storage = storage;
	ic.recordings = recs;
	ic.node_id = node_id;
	/* WHIP sessions this node held before it stopped died with it */
	if (vtp_store_whip_owner_remove_node(store, node_id, &stale) != 0)
		VTP_WARN("cannot clear this node's WHIP sessions from the session directory");
	else if (stale)
		VTP_INFO("removed %d WHIP session(s) of this node's last run from the directory",
			 stale);
	whip_hook.store = store;
	whip_hook.node_id = node_id;
	ic.whip_ended = whip_session_ended;
	ic.whip_ended_ctx = &whip_hook;
	ingest = vtp_ingest_start(&ic, err, sizeof(err));
	if (!ingest) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = 1;
		goto out;
	}
	/* Recordings this node was capturing when it stopped (crash, kill,
	 * power loss) become stopped before anyone can see them as live. */
	if (vtp_ingest_recover(ingest, &recovered) != 0) {
		fprintf(stderr, PROG ": cannot recover interrupted recordings\n");
		rc = 1;
		goto out;
	}
	if (recovered)
		VTP_WARN("recovered %d recording(s) interrupted by the last stop", recovered);
	/* processing: this node's interrupted jobs queued again, recordings
	 * waiting without a job queued, then the workers */
	jobs = start_jobs(cfg, js, store, recs, storage, node_id);
	if (!jobs) {
		rc = 1;
		goto out;
	}

	/* Keep freed heap memory: every SQL statement builds and frees small
	 * temporary B-trees, and glibc's default trimming returned that memory
	 * to the kernel after each request only to fault it back in on the
	 * next (a third of the CPU time of list requests). */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);


	memset(&ec, 0, sizeof(ec));
	ec.store = store;
	ec.recordings = recs;
	ec.jwt_key = key;
	ec.jwt_key_len = keylen;
	ec.ping_interval_ms = cfg->events_ping_interval * 1000;
	ec.shared_presence = strcmp(vtp_store_backend(store), "postgres") == 0;
	ec.node_id = node_id;
	events = vtp_events_start(&ec, err, sizeof(err));
	if (!events) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = 1;
		goto out;
	}
	vtp_recordings_set_event_hook(recs, vtp_events_notify, events);

	memset(&ac, 0, sizeof(ac));
	ac.host = cfg->listen_host;
	ac.port = cfg->listen_port;
	ac.threads = cfg->http_threads;
	ac.header_timeout_seconds = cfg->http_header_timeout;
	ac.response_cache = cfg->response_cache;
	ac.ingest = ingest;
	ac.store = store;
	ac.recordings = recs;
	ac.jwt_key = key;
	ac.jwt_key_len = keylen;
	ac.data_dir = cfg->data_dir;
	ac.token_ttl_seconds = LOGIN_TOKEN_TTL;
	ac.storage = storage;
	ac.s3_proxy = cfg->s3_proxy;
	ac.metrics_token = cfg->metrics_token;
	ac.webhooks = webhooks;
	ac.events = events;
	ac.node_id = node_id;
	ac.node_url = cfg->node_url;
	api = vtp_api_start(&ac, err, sizeof(err));
	if (!api) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = 1;
		goto out;
	}
	retention = vtp_retention_start(recs, storage, cfg->retention_days, 0);
	printf("VTP Recorder %s listening on http://%s%s%s:%d (database: %s)\n", VTP_VERSION,
	       strchr(cfg->listen_host, ':') ? "[" : "", cfg->listen_host,
	       strchr(cfg->listen_host, ':') ? "]" : "", vtp_api_port(api),
	       vtp_store_backend(store));
	fflush(stdout);
	VTP_INFO("listening on %s:%d with %d HTTP threads and %d processing workers",
		 cfg->listen_host, vtp_api_port(api), cfg->http_threads, cfg->workers);
	sigwait(&set, &sig);
	VTP_INFO("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	drain_jobs(jobs, cfg, &set);
	rc = 0;
out:
	vtp_retention_stop(retention);
	if (recs)
		vtp_recordings_set_event_hook(recs, NULL, NULL);
	vtp_events_stop(events); /* closes the upgraded connections the HTTP server lent it */
	vtp_api_stop(api);
	if (recs)
		vtp_recordings_set_job_hook(recs, NULL, NULL);
	vtp_jobs_stop(jobs);
	vtp_ingest_stop(ingest);
	vtp_events_free(events); /* after every thread that could still notify it */
	vtp_webhooks_stop(webhooks);
	vtp_recordings_free(recs);
	vtp_store_free(store);
	vtp_storage_free(storage);
	vtp_free(key);
	return rc;
}

/* ---- worker --------------------------------------------------------------- */

static int cmd_worker(vtp_config *cfg, const vtp_jobs_settings *js)
{
	char node_id[VTP_UUID_BUFLEN], claimer[VTP_UUID_BUFLEN + 16];
	vtp_storage *storage = NULL;
	vtp_recordings *recs = NULL;
	vtp_store *store = NULL;
	vtp_jobs *jobs = NULL;
	sigset_t set;
	int sig = 0, rc;

	if (cfg->workers < 1)
		return usage_error("worker: VTP_WORKERS is 0, there is nothing to run");
	/* as in serve: SIGINT/SIGTERM go to sigwait(), blocked before any
	 * thread exists */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = open_store(cfg, worker_connections(cfg) + 2, &store)))
		goto out;
	if (open_storage(cfg, &storage) || load_node_id(cfg, node_id)) {
		rc = 1;
		goto out;
	}
	recs = vtp_recordings_new(store, vtp_storage_local_root(storage));
	vtp_recordings_set_node(recs, node_id);
	vtp_recordings_set_webhooks(recs, cfg->webhook_url != NULL);
	/* its own claimer name: a `serve` on the same data dir (same node id)
	 * re-queues only its own jobs when it starts, and this one only its */
	snprintf(claimer, sizeof(claimer), "%s/worker", node_id);
	jobs = start_jobs(cfg, js, store, recs, storage, claimer);
	if (!jobs) {
		rc = 1;
		goto out;
	}
	printf("VTP Recorder %s worker running %d processing worker(s) (database: %s)\n",
	       VTP_VERSION, cfg->workers, vtp_store_backend(store));
	fflush(stdout);
	VTP_INFO("worker started with %d processing workers", cfg->workers);
	sigwait(&set, &sig);
	VTP_INFO("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	drain_jobs(jobs, cfg, &set);
	rc = 0;
out:
	if (recs)
		vtp_recordings_set_job_hook(recs, NULL, NULL);
	vtp_jobs_stop(jobs);
	vtp_recordings_free(recs);
	vtp_store_free(store);
	vtp_storage_free(storage);
	return rc;
}

/* ---- migrate, user add, token ------------------------------------------ */

static int cmd_migrate(vtp_config *cfg)
{
	vtp_store *store = NULL;
	int rc = open_store(cfg, 1, &store);

	if (!rc)
		printf("database schema is up to date (%s)\n", vtp_store_backend(store));
	vtp_store_free(store);
	return rc;
}

/* Finds "--name value" / "--name=value" in argv; flags are removed. */
static const char *take_opt(int *argc, char **argv, const char *name, bool has_value, bool *present)
{
	size_t len = strlen(name);

	for (int i = 2; i < *argc; i++) {
		const char *val = NULL;
		int used = 1;

		if (strncmp(argv[i], name, len) != 0)
			continue;
		if (argv[i][len] == '=' && has_value) {
			val = argv[i] + len + 1;
		} else if (argv[i][len] == '\0') {
			if (has_value) {
				if (i + 1 >= *argc)
					return NULL;
				val = argv[i + 1];
				used = 2;
			}
		} else {
			continue;
		}
		if (present)
			*present = true;
		memmove(&argv[i], &argv[i + used], sizeof(char *) * (size_t)(*argc - i - used + 1));
		*argc -= used;
		return val ? val : "";
	}
	return NULL;
}

static int read_password_stdin(char *buf, size_t len)
{
	size_t n = 0;

	while (n < len - 1) {
		ssize_t k = read(STDIN_FILENO, buf + n, len - 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return (int)n;
}

static int cmd_user(vtp_config *cfg, int argc, char **argv)
{
	const char *email, *name, *role;
	bool with_password = false;
	char password[1025], id[VTP_UUID_BUFLEN];
	vtp_store *store = NULL;
	int rc;

	if (argc < 3 || strcmp(argv[2], "add") != 0)
		return usage_error("%s: expected `user add`", argc > 2 ? argv[2] : "user");
	argv[2] = argv[1]; /* shift so options start at index 2 */
	argv++;
	argc--;
	email = take_opt(&argc, argv, "--email", true, NULL);
	name = take_opt(&argc, argv, "--name", true, NULL);
	role = take_opt(&argc, argv, "--role", true, NULL);
	take_opt(&argc, argv, "--password-stdin", false, &with_password);
	if (argc > 2)
		return usage_error("user add: unknown argument '%s'", argv[2]);
	if (!email || !valid_email(email))
		return usage_error("user add: --email %s is missing or not an email address",
				   email ? email : "");
	if (!name || !*name || strlen(name) > 255)
		return usage_error("user add: --name must be 1..255 characters");
	if (!role || !vtp_role_valid(role))
		return usage_error("user add: --role %s must be admin, instructor, student or service",
				   role ? role : "");
	if (with_password) {
		int n = read_password_stdin(password, sizeof(password));

		if (n < 8) {
			fprintf(stderr, PROG ": user add: the password on stdin must be at least 8 characters\n");
			return 2;
		}
	}
	if ((rc = open_store(cfg, 1, &store)))
		return rc;
	rc = create_user(store, email, name, role, with_password ? password : NULL, id);
	vtp_store_free(store);
	if (rc == VTP_ECONFLICT) {
		fprintf(stderr, PROG ": user add: a user with email %s already exists\n", email);
		return 1;
	}
	if (rc) {
		fprintf(stderr, PROG ": user add: %s\n", vtp_strerror(rc));
		return 1;
	}
	printf("%s\n", id);
	return 0;
}

static int cmd_token(vtp_config *cfg, int argc, char **argv)
{
	const char *email = take_opt(&argc, argv, "--email", true, NULL);
	const char *ttl_s = take_opt(&argc, argv, "--ttl", true, NULL);
	vtp_store *store = NULL;
	unsigned char *key = NULL;
	size_t keylen = 0;
	char *token = NULL, *end;
	long ttl = 3600;
	vtp_user u;
	int rc;

	if (argc > 2)
		return usage_error("token: unknown argument '%s'", argv[2]);
	if (!email || !*email)
		return usage_error("token: --email is required");
	if (ttl_s) {
		errno = 0;
		ttl = strtol(ttl_s, &end, 10);
		if (errno || *end || !*ttl_s || ttl < 1 || ttl > 31536000)
			return usage_error("token: --ttl %s must be 1..31536000 seconds", ttl_s);
	}
	if ((rc = open_store(cfg, 1, &store)))
		return rc;
	memset(&u, 0, sizeof(u));
	rc = vtp_store_user_by_email(store, email, &u);
	if (rc) {
		fprintf(stderr, PROG ": token: %s\n",
			rc == VTP_ENOTFOUND ? "no user with that email" : vtp_strerror(rc));
		rc = 1;
		goto out;
	}
	if ((rc = load_secret(cfg, &key, &keylen)))
		goto out;
	if (vtp_jwt_sign(key, keylen, u.id, vtp_now_ms() / 1000, ttl, &token)) {
		fprintf(stderr, PROG ": token: cannot sign\n");
		rc = 1;
		goto out;
	}
	printf("%s\n", token);
	rc = 0;
out:
	vtp_free(token);
	vtp_free(key);
	vtp_user_clear(&u);
	vtp_store_free(store);
	return rc;
}

/* ---- inspect ---------------------------------------------------------------- */

static const char *end_name(int end)
{
	switch (end) {
	case VTP_CAPR_END: return "clean";
	case VTP_CAPR_TORN: return "torn";
	case VTP_CAPR_CORRUPT: return "corrupt";
	default: return "io_error";
	}
}

static int cmd_inspect(int argc, char **argv)
{
	const char *path = NULL;
	char err[256], first[VTP_TIME_BUFLEN] = "-", last[VTP_TIME_BUFLEN] = "-";
	bool as_json = false;
	vtp_cap_summary s;
	json_t *meta, *o;
	char *text;
	double span;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return usage_error("inspect: unknown option '%s'", argv[i]);
		else if (path)
			return usage_error("inspect: one FILE at a time");
		else
			path = argv[i];
	}
	if (!path)
		return usage_error("inspect: FILE is required");
	if (vtp_cap_summarize(path, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, err);
		return 1;
	}
	meta = json_loads(s.meta ? s.meta : "{}", 0, NULL);
	if (!meta)
		meta = json_object();
	if (s.first_arrival_ns)
		vtp_time_format((int64_t)(s.first_arrival_ns / 1000000ULL), first);
	if (s.last_arrival_ns)
		vtp_time_format((int64_t)(s.last_arrival_ns / 1000000ULL), last);
	span = s.last_arrival_ns > s.first_arrival_ns
		       ? (double)(s.last_arrival_ns - s.first_arrival_ns) / 1e9 : 0;
	o = json_pack("{sO sI sI sI sI sI sI sI sI sf sf ss ss ss sI sI}",
		      "meta", meta, "rtpPackets", (json_int_t)s.rtp_packets,
		      "rtpBytes", (json_int_t)s.rtp_bytes, "rtcpPackets", (json_int_t)s.rtcp_packets,
		      "senderReports", (json_int_t)s.sender_reports, "ssrc", (json_int_t)s.ssrc,
		      "gaps", (json_int_t)s.seq_gaps, "missing", (json_int_t)s.seq_missing,
		      "reorderedOrDuplicate", (json_int_t)s.reordered_or_dup,
		      "mediaSeconds", s.media_seconds, "arrivalSeconds", span,
		      "firstArrival", first, "lastArrival", last, "end", end_name(s.end),
		      "readableBytes", (json_int_t)s.good_bytes, "fileBytes", (json_int_t)s.file_bytes);
	json_object_set_new(o, "notWritten",
			    json_pack("{sI sI sf}", "spans", (json_int_t)s.gaps, "packets",
				      (json_int_t)s.gap_records, "seconds", s.gap_seconds));
	json_object_set_new(o, "relatches", json_integer((json_int_t)s.relatches));
	json_object_set_new(o, "ssrcChanged", json_boolean(s.ssrc_changed));
	{
		json_t *segs = json_array();

		for (size_t i = 0; i < s.nsegments; i++) {
			const vtp_cap_segment *sg = &s.segments[i];

			json_array_append_new(
				segs, json_pack("{sI ss sI sI sI sI}", "segment", (json_int_t)sg->index,
						"end", sg->read ? end_name(sg->end) : "unread",
						"records", (json_int_t)sg->records, "readableBytes",
						(json_int_t)sg->good_bytes, "fileBytes",
						(json_int_t)sg->file_bytes, "missingBefore",
						(json_int_t)sg->missing_before));
		}
		json_object_set_new(o, "segments", segs);
		json_object_set_new(o, "segmentsMissing", json_integer((json_int_t)s.segments_missing));
		json_object_set_new(o, "segmentsCut", json_integer((json_int_t)s.segments_cut));
	}
	if (as_json) {
		text = json_dumps(o, JSON_INDENT(2));
		printf("%s\n", text);
		free(text);
	} else {
		text = json_dumps(meta, JSON_COMPACT | JSON_ENSURE_ASCII);
		printf("file:       %s\n", path);
		printf("track:      %s\n", text);
		free(text);
		printf("rtp:        %llu packets, %llu bytes, ssrc 0x%08x%s\n",
		       (unsigned long long)s.rtp_packets, (unsigned long long)s.rtp_bytes,
		       (unsigned)s.ssrc, s.ssrc_changed ? " (changed during the capture)" : "");
		if (s.relatches)
			printf("senders:    %llu (followed a new sender %llu time%s after the "
			       "previous one went silent; each starts new numbering)\n",
			       (unsigned long long)s.relatches + 1, (unsigned long long)s.relatches,
			       s.relatches == 1 ? "" : "s");
		printf("rtcp:       %llu packets, %llu sender reports\n",
		       (unsigned long long)s.rtcp_packets, (unsigned long long)s.sender_reports);
		printf("gaps:       %llu (%llu packets missing), %llu reordered or duplicate\n",
		       (unsigned long long)s.seq_gaps, (unsigned long long)s.seq_missing,
		       (unsigned long long)s.reordered_or_dup);
		printf("duration:   %.3f s of media; arrivals %s .. %s (%.3f s)\n", s.media_seconds,
		       first, last, span);
		if (s.gaps)
			printf("not written: %llu span(s), %llu packets, %.3f s (the disk was full "
			       "or failed)\n",
			       (unsigned long long)s.gaps, (unsigned long long)s.gap_records,
			       s.gap_seconds);
		printf("segments:   %zu", s.nsegments);
		if (s.segments_missing)
			printf(", %llu missing", (unsigned long long)s.segments_missing);
		if (s.segments_cut)
			printf(", %llu cut short before the last", (unsigned long long)s.segments_cut);
		printf("\n");
		for (size_t i = 0; s.nsegments > 1 && i < s.nsegments; i++) {
			const vtp_cap_segment *sg = &s.segments[i];

			if (sg->missing_before == 1)
				printf("            #%u: missing\n", (unsigned)sg->index - 1);
			else if (sg->missing_before)
				printf("            #%u..#%u: missing\n",
				       (unsigned)(sg->index - sg->missing_before), (unsigned)sg->index - 1);
			printf("            #%u: %llu records, %s", (unsigned)sg->index,
			       (unsigned long long)sg->records, sg->read ? end_name(sg->end) : "unread");
			if (sg->read && sg->end != VTP_CAPR_END)
				printf(" after %llu of %llu bytes", (unsigned long long)sg->good_bytes,
				       (unsigned long long)sg->file_bytes);
			printf("\n");
		}
		if (s.end == VTP_CAPR_END)
			printf("end:        clean (%llu bytes)\n", (unsigned long long)s.file_bytes);
		else
			printf("end:        %s after %llu of %llu bytes; everything before is intact\n",
			       end_name(s.end), (unsigned long long)s.good_bytes,
			       (unsigned long long)s.file_bytes);
	}
	json_decref(o);
	json_decref(meta);
	vtp_cap_summary_clear(&s);
	return 0;
}

/* ---- compose ---------------------------------------------------------------- */

typedef struct compose_args {
	const char *recording, *tracks, *output, *format, *video_codec, *audio_codec;
	const char *bitrate, *width, *height, *fps, *threads, *hls, *thumbnail, *layout;
	bool no_fast_path, decode_all, json;
} compose_args;

/* The flags of `compose`: name, where its value goes (NULL for a switch),
 * where a switch goes, and whether it applies with --recording too. */
typedef struct compose_flag {
	const char *name;
	size_t value;   /* offsetof a const char * in compose_args, or SIZE_MAX */
	size_t toggle;  /* offsetof a bool, or SIZE_MAX */
	bool with_recording;
} compose_flag;

#define CA(f) offsetof(compose_args, f)
static const compose_flag compose_flags[] = {
	{"--recording", CA(recording), SIZE_MAX, true},
	{"--threads", CA(threads), SIZE_MAX, true},
	{"--no-fast-path", SIZE_MAX, CA(no_fast_path), true},
	{"--decode-all", SIZE_MAX, CA(decode_all), false},
	{"--tracks", CA(tracks), SIZE_MAX, false},
	{"--output", CA(output), SIZE_MAX, false},
	{"--format", CA(format), SIZE_MAX, false},
	{"--video-codec", CA(video_codec), SIZE_MAX, false},
	{"--audio-codec", CA(audio_codec), SIZE_MAX, false},
	{"--bitrate", CA(bitrate), SIZE_MAX, false},
	{"--width", CA(width), SIZE_MAX, false},
	{"--height", CA(height), SIZE_MAX, false},
	{"--fps", CA(fps), SIZE_MAX, false},
	{"--json", SIZE_MAX, CA(json), false},
	{"--hls", CA(hls), SIZE_MAX, false},
	{"--thumbnail", CA(thumbnail), SIZE_MAX, false},
	{"--layout", CA(layout), SIZE_MAX, false},
};
#define N_COMPOSE_FLAGS (sizeof(compose_flags) / sizeof(compose_flags[0]))

/* "--name value" and "--name=value"; each flag at most once. */
static int parse_compose_args(int argc, char **argv, compose_args *a, bool seen[N_COMPOSE_FLAGS])
{
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		size_t k, len = 0;

		for (k = 0; k < N_COMPOSE_FLAGS; k++) {
			len = strlen(compose_flags[k].name);
			if (strncmp(arg, compose_flags[k].name, len) == 0 &&
			    (arg[len] == '\0' || arg[len] == '='))
				break;
		}
		if (k == N_COMPOSE_FLAGS)
			return usage_error(arg[0] == '-' ? "compose: unknown option '%s'"
							 : "compose: unexpected argument '%s'", arg);
		if (seen[k])
			return usage_error("compose: %s given twice", compose_flags[k].name);
		seen[k] = true;
		if (compose_flags[k].toggle != SIZE_MAX) {
			if (arg[len] == '=')
				return usage_error("compose: %s takes no value", compose_flags[k].name);
			*(bool *)((char *)a + compose_flags[k].toggle) = true;
			continue;
		}
		if (arg[len] == '=')
			val = arg + len + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		if (!val || !*val)
			return usage_error("compose: %s needs a value", compose_flags[k].name);
		*(const char **)((char *)a + compose_flags[k].value) = val;
	}
	return 0;
}

/* An integer flag within [min, max] (and even when asked). */
static int int_flag(const char *name, const char *val, long min, long max, bool even, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || *end || end == val || v < min || v > max || (even && v % 2))
		return usage_error("compose: %s %s must be %s integer %ld..%ld", name, val,
				   even ? "an even" : "an", min, max);
	*out = (int)v;
	return 0;
}

/* Composer threads when none were asked for: the cores shared by the
 * node's concurrent jobs. */
static int default_threads(const vtp_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int workers = cfg->workers > 0 ? cfg->workers : 1;

	if (cores < 1)
		cores = 1;
	return cores / workers > 0 ? (int)(cores / workers) : 1;
}

/* --format from the output's extension when not given. */
static const char *format_from_name(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot && (strcasecmp(dot, ".mp4") == 0 || strcasecmp(dot, ".m4v") == 0 ||
		    strcasecmp(dot, ".mov") == 0))
		return "mp4";
	return "webm";
}

/* The folder an output path goes into: "." when it has no slash. */
static void parent_of(const char *path, char *out, size_t outlen)
{
	char *slash;

	snprintf(out, outlen, "%s", path);
	slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, outlen, ".");
	else if (slash == out)
		slash[1] = '\0';
	else
		*slash = '\0';
}

/* An output file's folder must exist and the path must not be a folder. */
static int output_file_ok(const char *flag, const char *path)
{
	char parent[4096];
	struct stat st;

	if (!*path)
		return usage_error("compose: %s needs a file name", flag);
	parent_of(path, parent, sizeof(parent));
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
		return usage_error("compose: %s %s: folder %s does not exist", flag, path, parent);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return usage_error("compose: %s %s is a directory", flag, path);
	return 0;
}

/* An output folder (made, or replaced whole): its parent must exist and
 * the path must not be a file. */
static int output_folder_ok(const char *flag, const char *path)
{
	char parent[4096], trimmed[4096];
	struct stat st;
	size_t n;

	snprintf(trimmed, sizeof(trimmed), "%s", path);
	n = strlen(trimmed);
	while (n > 1 && trimmed[n - 1] == '/')
		trimmed[--n] = '\0';
	if (!*trimmed || strcmp(trimmed, "/") == 0 || strcmp(trimmed, ".") == 0 ||
	    strcmp(trimmed, "..") == 0)
		return usage_error("compose: %s needs a folder of its own (it is replaced whole)", flag);
	parent_of(trimmed, parent, sizeof(parent));
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
		return usage_error("compose: %s %s: folder %s does not exist", flag, path, parent);
	if (stat(trimmed, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return usage_error("compose: %s %s is not a folder", flag, path);
	/* Only an earlier HLS output is replaced, never someone's folder. */
	{
		DIR *d = opendir(trimmed);
		struct dirent *e;
		int foreign = 0;

		if (!d)
			return usage_error("compose: %s %s: %s", flag, path, strerror(errno));
		while ((e = readdir(d)) != NULL) {
			const char *nm = e->d_name;
			size_t l = strlen(nm);

			if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
			    strcmp(nm, "index.m3u8") == 0 || strcmp(nm, "init.mp4") == 0 ||
			    (strncmp(nm, "seg_", 4) == 0 && l > 8 && strcmp(nm + l - 4, ".m4s") == 0))
				continue;
			foreign = 1;
			break;
		}
		closedir(d);
		if (foreign)
			return usage_error("compose: %s %s holds files that are not HLS output; "
					   "refusing to replace it", flag, path);
	}
	return 0;
}

static int compose_folder(const compose_args *a, int threads)
{
	const char *format = a->format, *video = a->video_codec, *audio = a->audio_codec;
	const char *field;
	char why[160];
	vtp_compose_opts o;
	vtp_compose_result res;
	struct stat st;
	int64_t started;
	double took;
	json_t *j;
	char *text;
	int rc;

	vtp_compose_defaults(&o);
	if (!a->tracks)
		return usage_error("compose: --recording ID or --tracks DIR is required");
	if (!a->output)
		return usage_error("compose: --tracks needs --output FILE");
	if (stat(a->tracks, &st) != 0)
		return usage_error("compose: --tracks %s: %s", a->tracks, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return usage_error("compose: --tracks %s: not a directory", a->tracks);
	if ((rc = output_file_ok("--output", a->output)))
		return rc;
	if (!format)
		format = format_from_name(a->output);
	field = vtp_output_check(&format, &video, &audio, why, sizeof(why));
	if (field)
		return usage_error("compose: %s: %s", strcmp(field, "format") == 0 ? "--format"
					: strcmp(field, "videoCodec") == 0 ? "--video-codec"
									   : "--audio-codec", why);
	if (a->bitrate && (rc = int_flag("--bitrate", a->bitrate, 100, 20000, false, &o.bitrate_kbps)))
		return rc;
	if (!a->width != !a->height)
		return usage_error("compose: --width and --height go together");
	if (a->width && ((rc = int_flag("--width", a->width, 16, 7680, true, &o.width)) ||
			 (rc = int_flag("--height", a->height, 16, 4320, true, &o.height))))
		return rc;
	if (a->fps && (rc = int_flag("--fps", a->fps, 1, 120, false, &o.fps)))
		return rc;
	if (a->hls && (rc = output_folder_ok("--hls", a->hls)))
		return rc;
	if (a->thumbnail && (rc = output_file_ok("--thumbnail", a->thumbnail)))
		return rc;
	if (a->layout && !vtp_compose_layout_valid(a->layout))
		return usage_error("compose: --layout %s must be grid, speaker, presentation, screen "
				   "or auto", a->layout);
	o.layout = a->layout;
	o.tracks_dir = a->tracks;
	o.out_path = a->output;
	o.format = format;
	o.video_codec = video;
	o.audio_codec = audio;
	o.threads = threads;
	o.no_fast_path = a->no_fast_path;
	o.decode_all = a->decode_all;
	o.hls_dir = a->hls;
	o.thumb_path = a->thumbnail;

	started = vtp_mono_us();
	rc = vtp_compose_run(&o, &res);
	took = (double)(vtp_mono_us() - started) / 1e6;
	if (rc == VTP_COMPOSE_NO_MEDIA) {
		fprintf(stderr, PROG ": compose: no_media: %s\n",
			res.error[0] ? res.error : "no track carried media");
		return VTP_COMPOSE_EXIT_NO_MEDIA;
	}
	if (rc) {
		fprintf(stderr, PROG ": compose: %s\n", res.error[0] ? res.error : "the composer failed");
		return rc == VTP_COMPOSE_EINVAL ? VTP_COMPOSE_EXIT_REFUSED : VTP_COMPOSE_EXIT_FAILED;
	}
	if (a->json) {
		j = vtp_jobs_compose_stats_json(&res);
		json_object_set_new(j, "output", json_string(a->output));
		json_object_set_new(j, "format", json_string(format));
		json_object_set_new(j, "videoCodec", json_string(video));
		json_object_set_new(j, "audioCodec", json_string(audio));
		json_object_set_new(j, "durationSeconds", json_real(res.duration_seconds));
		json_object_set_new(j, "fileSize", json_integer(res.file_size));
		json_object_set_new(j, "sha256", json_string(res.sha256));
		json_object_set_new(j, "videoTracks", json_integer(res.video_tracks));
		json_object_set_new(j, "audioTracks", json_integer(res.audio_tracks));
		json_object_set_new(j, "elapsedSeconds", json_real(took));
		json_object_set_new(j, "speed", json_real(took > 0 ? res.duration_seconds / took : 0));
		text = json_dumps(j, JSON_INDENT(2));
		printf("%s\n", text);
		free(text);
		json_decref(j);
		return 0;
	}
	printf("output:     %s (%s, %s + %s)\n", a->output, format, video, audio);
	printf("size:       %lld bytes, sha256 %s\n", (long long)res.file_size, res.sha256);
	printf("duration:   %.3f s of media, composed in %.2f s (%.1fx real time)\n",
	       res.duration_seconds, took, took > 0 ? res.duration_seconds / took : 0.0);
	printf("tracks:     %d (%d video, %d audio) of %d peers; fast path: %s\n", res.tracks,
	       res.video_tracks, res.audio_tracks, res.peers, res.fast_path ? "yes" : "no");
	printf("frames:     %llu out, %llu dropped; %llu ms of audio concealed; %llu decode errors\n",
	       (unsigned long long)res.frames_out, (unsigned long long)res.frames_dropped,
	       (unsigned long long)res.audio_concealed_ms, (unsigned long long)res.decode_errors);
	printf("decoded:    %llu video frames, %llu read but not decoded (not shown)\n",
	       (unsigned long long)res.frames_decoded, (unsigned long long)res.frames_skipped);
	if (a->hls)
		printf("hls:        %s/index.m3u8, %d segments (%s)\n", a->hls, res.hls_segments,
		       res.hls_copied ? "the file's H.264 copied" : "H.264 encoded");
	if (a->thumbnail)
		printf("thumbnail:  %s, taken at %.2f s\n", a->thumbnail, res.thumb_at_seconds);
	return 0;
}

static int cmd_compose(vtp_config *cfg, int argc, char **argv)
{
	static const vtp_jobs_compose_setup setup = {open_store, open_storage, load_node_id};
	bool seen[N_COMPOSE_FLAGS] = {0};
	char id[VTP_UUID_BUFLEN];
	compose_args a;
	int threads, rc;

	memset(&a, 0, sizeof(a));
	if ((rc = parse_compose_args(argc, argv, &a, seen)))
		return rc;
	threads = default_threads(cfg);
	if (a.threads && (rc = int_flag("--threads", a.threads, 0, 256, false, &threads)))
		return rc;
	if (a.recording) {
		for (size_t k = 0; k < N_COMPOSE_FLAGS; k++)
			if (seen[k] && !compose_flags[k].with_recording)
				return usage_error("compose: %s does not go with --recording (a "
						   "recording is composed with its own settings)",
						   compose_flags[k].name);
		if (!vtp_uuid_parse(a.recording, id))
			return usage_error("compose: --recording %s is not a recording id (a UUID)",
					   a.recording);
		return vtp_jobs_compose_recording(cfg, &setup, id, threads, a.no_fast_path);
	}
	return compose_folder(&a, a.threads ? threads : 0);
}

/* Tests only: VTP_TEST_NOW_OFFSET_S moves the wall clock (signed seconds),
 * so that retention and link expiry can be tested without waiting days. */
static int64_t clock_offset_ms;

static int64_t offset_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_offset_ms;
}

static int test_clock(void)
{
	const char *v = getenv("VTP_TEST_NOW_OFFSET_S");
	char *end;
	long long s;

	if (!v || !*v)
		return 0;
	errno = 0;
	s = strtoll(v, &end, 10);
	if (errno || *end || s < -3650LL * 86400 || s > 3650LL * 86400)
		return usage_error("VTP_TEST_NOW_OFFSET_S: '%s' is not a number of seconds "
				   "(at most ten years either way)", v);
	clock_offset_ms = s * 1000;
	vtp_clock_set(offset_clock);
	return 0;
}

int main(int argc, char **argv)
{
	vtp_jobs_settings js;
	vtp_config cfg;
	char err[512];
	const char *cmd;
	int rc;

	if ((rc = test_clock()) != 0)
		return rc;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf(PROG " %s\n", VTP_VERSION);
		return 0;
	}
	if (cmd[0] == '-')
		return usage_error("unknown option '%s'", cmd);
	if (strcmp(cmd, "inspect") == 0) {
		for (int i = 2; i < argc; i++)
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				usage(stdout);
				return 0;
			}
		return cmd_inspect(argc, argv);
	}
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "worker") != 0 &&
	    strcmp(cmd, "migrate") != 0 && strcmp(cmd, "user") != 0 &&
	    strcmp(cmd, "token") != 0 && strcmp(cmd, "compose") != 0)
		return usage_error("unknown command '%s'", cmd);
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
	if (vtp_config_load(&cfg, 2, &argc, argv, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	vtp_log_init(cfg.log_level, cfg.log_json);
	if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "worker") == 0 ||
	    strcmp(cmd, "migrate") == 0) {
		if (argc > 2) {
			rc = usage_error("unknown option '%s'", argv[2]);
			goto out;
		}
		if (strcmp(cmd, "migrate") == 0) {
			rc = cmd_migrate(&cfg);
		} else if (vtp_jobs_settings_load(&js, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			rc = 2;
		} else {
			rc = strcmp(cmd, "serve") == 0 ? cmd_serve(&cfg, &js) : cmd_worker(&cfg, &js);
		}
	} else if (strcmp(cmd, "compose") == 0) {
		rc = cmd_compose(&cfg, argc, argv);
	} else if (strcmp(cmd, "user") == 0) {
		rc = cmd_user(&cfg, argc, argv);
	} else {
		rc = cmd_token(&cfg, argc, argv);
	}
out:
	vtp_config_clear(&cfg);
	return rc;
}
