/* Configuration table: each entry names its variable, its flag, its default
 * and how it is parsed. Defaults that depend on other values (database and
 * storage URLs under the data dir) are filled after everything is parsed. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "mem.h"

enum { T_STR, T_INT, T_SECONDS_MS, T_MILLI, T_BOOL, T_LISTEN, T_LOGFMT, T_LOGLEVEL, T_DBURL, T_STORAGEURL, T_IP, T_NODEURL };

typedef struct entry {
	const char *env;
	const char *flag;
	int type;
	size_t offset;
	const char *def; /* NULL: unset unless derived */
	long min, max;   /* T_INT bounds; T_SECONDS_MS: in ms, 0 always allowed (off); T_MILLI: in thousandths */
	const char *help;
} entry;

#define OFF(f) offsetof(vtp_config, f)

static const entry entries[] = {
	{"VTP_LISTEN", "--listen", T_LISTEN, OFF(listen), "127.0.0.1:8080", 0, 0, "HTTP listen address host:port"},
	{"VTP_DATA_DIR", "--data-dir", T_STR, OFF(data_dir), "./data", 0, 0, "local state directory"},
	{"VTP_DATABASE_URL", "--database-url", T_DBURL, OFF(database_url), NULL, 0, 0, "sqlite://PATH or postgres://user:pass@host:port/db"},
	{"VTP_STORAGE_URL", "--storage-url", T_STORAGEURL, OFF(storage_url), NULL, 0, 0, "file://PATH or s3://bucket?endpoint=...&region=..."},
	{"VTP_JWT_SECRET", "--jwt-secret", T_STR, OFF(jwt_secret), NULL, 0, 0, "HS256 key (default: generated into DATA_DIR/jwt.secret)"},
	{"VTP_PUBLIC_IP", "--public-ip", T_IP, OFF(public_ip), "127.0.0.1", 0, 0, "address put in SDP answers and track registrations"},
	{"VTP_RTP_PORT_MIN", "--rtp-port-min", T_INT, OFF(rtp_port_min), "40000", 1024, 65535, "lowest UDP media port"},
	{"VTP_RTP_PORT_MAX", "--rtp-port-max", T_INT, OFF(rtp_port_max), "40999", 1024, 65535, "highest UDP media port"},
	{"VTP_WHIP_TIMEOUT", "--whip-timeout", T_INT, OFF(whip_timeout), "30", 5, 3600, "seconds without media before a WHIP session ends"},
	{"VTP_WHIP_MAX_BITRATE", "--whip-max-bitrate", T_INT, OFF(whip_max_bitrate), "2500000", 100000, 50000000, "most a WHIP publisher is asked to send (REMB), bits/s"},
	{"VTP_KEYFRAME_INTERVAL", "--keyframe-interval", T_SECONDS_MS, OFF(keyframe_interval_ms), "10", 500, 3600000, "seconds without a keyframe before a video sender is asked for one (decimal; 0: never)"},
	{"VTP_SEGMENT_SECONDS", "--segment-seconds", T_INT, OFF(segment_seconds), "10", 1, 3600, "seconds of a track's packet log per segment file: at most this much is lost when the server dies"},
	{"VTP_SPOOL_ALERT_SECONDS", "--spool-alert-seconds", T_INT, OFF(spool_alert_seconds), "30", 1, 86400, "seconds a closed track segment may wait for storage before /healthz answers 503 and its recording gets a segments_delayed warning"},
	{"VTP_WORKERS", "--workers", T_INT, OFF(workers), "1", 0, 256, "concurrent processing jobs on this node"},
	{"VTP_WORKER_CAPACITY", "--worker-capacity", T_MILLI, OFF(worker_capacity_milli), NULL, 100, 1024000, "cores' worth of processing jobs this node runs at once (decimal; default: CPU count)"},
	{"VTP_DRAIN_SECONDS", "--drain-seconds", T_INT, OFF(drain_seconds), "60", 0, 86400, "seconds running jobs may finish after SIGTERM before they are handed back"},
	{"VTP_RETENTION_DAYS", "--retention-days", T_INT, OFF(retention_days), "30", 0, 36500, "days before soft-deleted recordings are purged"},
	{"VTP_MEDIA_URL_TTL", "--media-url-ttl", T_INT, OFF(media_url_ttl), "3600", 60, 604800, "seconds a signed media URL works (at least; rounded up to 5 min)"},
	{"VTP_S3_PROXY", "--s3-proxy", T_BOOL, OFF(s3_proxy), "0", 0, 0, "1: stream S3 objects through the server"},
	{"VTP_S3_ACCESS_KEY", "--s3-access-key", T_STR, OFF(s3_access_key), NULL, 0, 0, "S3 access key"},
	{"VTP_S3_SECRET_KEY", "--s3-secret-key", T_STR, OFF(s3_secret_key), NULL, 0, 0, "S3 secret key"},
	{"VTP_EVENTS_PING_INTERVAL", "--events-ping-interval", T_INT, OFF(events_ping_interval), "25", 1, 300, "seconds between Socket.IO pings (a client has as long again to answer)"},
	{"VTP_WEBHOOK_URL", "--webhook-url", T_STR, OFF(webhook_url), NULL, 0, 0, "URL that receives event webhooks"},
	{"VTP_WEBHOOK_SECRET", "--webhook-secret", T_STR, OFF(webhook_secret), NULL, 0, 0, "HMAC key for webhook signatures"},
	{"VTP_METRICS_TOKEN", "--metrics-token", T_STR, OFF(metrics_token), NULL, 0, 0, "bearer token /metrics then requires (with per-track series); unset: public, no ids"},
	{"VTP_LOG_FORMAT", "--log-format", T_LOGFMT, OFF(log_json), NULL, 0, 0, "text or json (default: text on a TTY, else json)"},
	{"VTP_LOG_LEVEL", "--log-level", T_LOGLEVEL, OFF(log_level), "info", 0, 0, "debug, info, warn or error"},
	{"VTP_HTTP_HEADER_TIMEOUT", "--http-header-timeout", T_INT, OFF(http_header_timeout), "10", 1, 3600, "seconds a client has to send a whole request head"},
	{"VTP_HTTP_THREADS", "--http-threads", T_INT, OFF(http_threads), NULL, 1, 64, "HTTP worker threads (default: CPU count)"},
	{"VTP_NODE_URL", "--node-url", T_NODEURL, OFF(node_url), NULL, 0, 0, "this node's base URL for the other nodes (http://host:port; default http://127.0.0.1:PORT, or the listen host when it is not a wildcard)"},
	{"VTP_RESPONSE_CACHE", "--response-cache", T_BOOL, OFF(response_cache), "1", 0, 0, "1: keep rendered recordings and list pages until the data changes (on PostgreSQL while its change feed is up)"},
};

#define N_ENTRIES (sizeof(entries) / sizeof(entries[0]))

static int fail(char *err, size_t errlen, const entry *e, const char *val, const char *why)
{
	snprintf(err, errlen, "%s: invalid value '%.80s' (%s)", e->env, val, why);
	return VTP_EINVAL;
}

static bool parse_long(const char *s, long *out)
{
	char *end;
	long v;

	if (!*s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s)
		return false;
	*out = v;
	return true;
}

/* Decimal seconds ("5", "2.5", "0.75") to milliseconds: digits, at most
 * one point and three decimals; no sign, exponent, "inf" or locale (strtod
 * would take all of them). */
static bool parse_seconds_ms(const char *s, long *out)
{
	long ms = 0;
	int decimals = -1; /* -1: no point seen yet */
	bool digits = false;

	for (; *s; s++) {
		if (*s == '.' && decimals < 0) {
			decimals = 0;
			continue;
		}
		if (*s < '0' || *s > '9' || decimals >= 3 || ms > 100000000L)
			return false;
		ms = ms * 10 + (*s - '0');
		digits = true;
		if (decimals >= 0)
			decimals++;
	}
	if (!digits)
		return false;
	for (int i = decimals < 0 ? 0 : decimals; i < 3; i++)
		ms *= 10;
	*out = ms;
	return true;
}

static int parse_listen(vtp_config *cfg, const entry *e, const char *val, char *err, size_t errlen)
{
	const char *colon = strrchr(val, ':');
	const char *host = val;
	size_t hostlen;
	long port;

	if (!colon || colon == val)
		return fail(err, errlen, e, val, "expected host:port");
	hostlen = (size_t)(colon - val);
	if (val[0] == '[') {
		if (hostlen < 3 || val[hostlen - 1] != ']')
			return fail(err, errlen, e, val, "expected [ipv6]:port");
		host = val + 1;
		hostlen -= 2;
	}
	if (!parse_long(colon + 1, &port) || port < 0 || port > 65535)
		return fail(err, errlen, e, val, "port must be 0..65535");
	for (size_t i = 0; i < hostlen; i++) {
		char c = host[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':'))
			return fail(err, errlen, e, val, "bad host");
	}
	VTP_FREE(&cfg->listen);
	VTP_FREE(&cfg->listen_host);
	cfg->listen = vtp_strdup(val);
	cfg->listen_host = vtp_strndup(host, hostlen);
	cfg->listen_port = (int)port;
	return 0;
}

/* VTP_NODE_URL: where the other nodes reach this one (WHIP requests for
 * sessions held here are forwarded to it). Only an origin,
 * http(s)://host[:port] with an optional final slash: a path, a query,
 * credentials or spaces would end up in every forwarded request line. */
static bool node_url_ok(const char *val)
{
	const char *host, *p;
	long port;

	if (strncmp(val, "http://", 7) == 0)
		host = val + 7;
	else if (strncmp(val, "https://", 8) == 0)
		host = val + 8;
	else
		return false;
	p = host;
	if (*p == '[') { /* [IPv6] */
		p++;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') ||
		       *p == ':' || *p == '.')
			p++;
		if (*p != ']' || p == host + 1)
			return false;
		p++;
	} else {
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		       *p == '.' || *p == '-')
			p++;
		if (p == host)
			return false;
	}
	if (*p == ':') {
		char digits[8];
		size_t n = strspn(p + 1, "0123456789");

		if (n == 0 || n > 5)
			return false;
		memcpy(digits, p + 1, n);
		digits[n] = '\0';
		if (!parse_long(digits, &port) || port < 1 || port > 65535)
			return false;
		p += 1 + n;
	}
	if (*p == '/')
		p++;
	return *p == '\0' && strlen(val) <= 256;
}

static int apply(vtp_config *cfg, const entry *e, const char *val, char *err, size_t errlen)
{
	char **sp = (char **)((char *)cfg + e->offset);
	int *ip = (int *)((char *)cfg + e->offset);
	bool *bp = (bool *)((char *)cfg + e->offset);
	long n;

	switch (e->type) {
	case T_LISTEN:
		return parse_listen(cfg, e, val, err, errlen);
	case T_INT:
		if (!parse_long(val, &n) || n < e->min || n > e->max) {
			char why[64];

			snprintf(why, sizeof(why), "expected an integer %ld..%ld", e->min, e->max);
			return fail(err, errlen, e, val, why);
		}
		*ip = (int)n;
		return 0;
	case T_SECONDS_MS:
		if (!parse_seconds_ms(val, &n) || (n != 0 && (n < e->min || n > e->max))) {
			char why[96];

			snprintf(why, sizeof(why), "expected 0 (off) or seconds %g..%g, e.g. 5 or 2.5",
				 (double)e->min / 1000.0, (double)e->max / 1000.0);
			return fail(err, errlen, e, val, why);
		}
		*ip = (int)n;
		return 0;
	case T_MILLI:
		/* the same digits as seconds: at most three decimals */
		if (!parse_seconds_ms(val, &n) || n < e->min || n > e->max) {
			char why[96];

			snprintf(why, sizeof(why), "expected a number %g..%g, e.g. 2 or 1.5",
				 (double)e->min / 1000.0, (double)e->max / 1000.0);
			return fail(err, errlen, e, val, why);
		}
		*ip = (int)n;
		return 0;
	case T_BOOL:
		if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0)
			*bp = true;
		else if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0)
			*bp = false;
		else
			return fail(err, errlen, e, val, "expected 0 or 1");
		return 0;
	case T_LOGFMT:
		if (strcmp(val, "json") == 0)
			*bp = true;
		else if (strcmp(val, "text") == 0)
			*bp = false;
		else
			return fail(err, errlen, e, val, "expected text or json");
		return 0;
	case T_LOGLEVEL:
		if (strcmp(val, "debug") == 0)
			*ip = VTP_LOG_DEBUG;
		else if (strcmp(val, "info") == 0)
			*ip = VTP_LOG_INFO;
		else if (strcmp(val, "warn") == 0)
			*ip = VTP_LOG_WARN;
		else if (strcmp(val, "error") == 0)
			*ip = VTP_LOG_ERROR;
		else
			return fail(err, errlen, e, val, "expected debug, info, warn or error");
		return 0;
	case T_DBURL:
		if (strncmp(val, "sqlite://", 9) == 0) {
			if (!val[9])
				return fail(err, errlen, e, val, "sqlite:// needs a path");
		} else if (strncmp(val, "postgres://", 11) != 0 &&
			   strncmp(val, "postgresql://", 13) != 0) {
			return fail(err, errlen, e, val, "expected sqlite://PATH or postgres://...");
		}
		break;
	case T_STORAGEURL:
		if (strncmp(val, "file://", 7) == 0) {
			if (!val[7])
				return fail(err, errlen, e, val, "file:// needs a path");
		} else if (strncmp(val, "s3://", 5) == 0) {
			if (!val[5] || val[5] == '?')
				return fail(err, errlen, e, val, "s3:// needs a bucket");
		} else {
			return fail(err, errlen, e, val, "expected file://PATH or s3://bucket?...");
		}
		break;
	case T_IP:
		if (!*val || strlen(val) > 64 || strpbrk(val, " /\t\r\n"))
			return fail(err, errlen, e, val, "expected an IP address or host name");
		break;
	case T_NODEURL:
		if (!node_url_ok(val))
			return fail(err, errlen, e, val,
				    "expected http://host:port or https://host:port, without a path");
		break;
	case T_STR:
		if (!*val)
			return fail(err, errlen, e, val, "must not be empty");
		break;
	}
	VTP_FREE(sp);
	*sp = vtp_strdup(val);
	return 0;
}

static const entry *find_flag(const char *arg, const char **inline_val)
{
	for (size_t i = 0; i < N_ENTRIES; i++) {
		size_t fl = strlen(entries[i].flag);

		if (strncmp(arg, entries[i].flag, fl) != 0)
			continue;
		if (arg[fl] == '\0') {
			*inline_val = NULL;
			return &entries[i];
		}
		if (arg[fl] == '=') {
			*inline_val = arg + fl + 1;
			return &entries[i];
		}
	}
	return NULL;
}

static int load(vtp_config *cfg, int first, int *argc, char **argv, char *err,
		size_t errlen)
{
	int rc, out;

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_json = !isatty(STDERR_FILENO);
	cfg->http_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (cfg->http_threads < 1)
		cfg->http_threads = 1;
	if (cfg->http_threads > 16)
		cfg->http_threads = 16;
	cfg->worker_capacity_milli = (int)sysconf(_SC_NPROCESSORS_ONLN) * 1000;
	if (cfg->worker_capacity_milli < 1000)
		cfg->worker_capacity_milli = 1000;
	for (size_t i = 0; i < N_ENTRIES; i++) {
		const char *v = getenv(entries[i].env);

		if (entries[i].def && (rc = apply(cfg, &entries[i], entries[i].def, err, errlen)))
			return rc;
		if (v && (rc = apply(cfg, &entries[i], v, err, errlen)))
			return rc;
	}
	out = first;
	for (int i = first; i < *argc; i++) {
		const char *val = NULL;
		const entry *e = find_flag(argv[i], &val);

		if (!e) {
			argv[out++] = argv[i];
			continue;
		}
		if (!val) {
			if (i + 1 >= *argc) {
				snprintf(err, errlen, "%s needs a value", e->flag);
				return VTP_EINVAL;
			}
			val = argv[++i];
		}
		if ((rc = apply(cfg, e, val, err, errlen)))
			return rc;
	}
	*argc = out;
	argv[out] = NULL;

	if (cfg->rtp_port_min > cfg->rtp_port_max) {
		snprintf(err, errlen, "VTP_RTP_PORT_MIN: invalid value '%d' (greater than VTP_RTP_PORT_MAX %d)",
			 cfg->rtp_port_min, cfg->rtp_port_max);
		return VTP_EINVAL;
	}
	if (!cfg->database_url) {
		size_t n = strlen(cfg->data_dir) + 32;

		cfg->database_url = vtp_malloc(n);
		snprintf(cfg->database_url, n, "sqlite://%s/vtp.db", cfg->data_dir);
	}
	if (!cfg->storage_url) {
		size_t n = strlen(cfg->data_dir) + 32;

		cfg->storage_url = vtp_malloc(n);
		snprintf(cfg->storage_url, n, "file://%s/recordings", cfg->data_dir);
	}
	return 0;
}

int vtp_config_load(vtp_config *cfg, int first, int *argc, char **argv,
		    char *err, size_t errlen)
{
	int rc = load(cfg, first, argc, argv, err, errlen);

	if (rc)
		vtp_config_clear(cfg); /* nothing half-loaded outlives a failure */
	return rc;
}

void vtp_config_clear(vtp_config *cfg)
{
	for (size_t i = 0; i < N_ENTRIES; i++) {
		int t = entries[i].type;

		if (t == T_STR || t == T_DBURL || t == T_STORAGEURL || t == T_IP || t == T_NODEURL) {
			char **sp = (char **)((char *)cfg + entries[i].offset);
			VTP_FREE(sp);
		}
	}
	VTP_FREE(&cfg->listen);
	VTP_FREE(&cfg->listen_host);
}

bool vtp_config_is_var(const char *name, size_t len)
{
	for (size_t i = 0; i < N_ENTRIES; i++)
		if (strlen(entries[i].env) == len && strncmp(entries[i].env, name, len) == 0)
			return true;
	return false;
}

const char *vtp_config_help(void)
{
	static char text[4096];
	static int built;
	size_t used = 0;

	if (built)
		return text;
	for (size_t i = 0; i < N_ENTRIES; i++) {
		char flag[64];
		int w;

		snprintf(flag, sizeof(flag), "%s VALUE", entries[i].flag);
		w = snprintf(text + used, sizeof(text) - used, "  %-26s %-20s %s%s%s%s\n",
			     flag, entries[i].env, entries[i].help,
			     entries[i].def ? " [" : "", entries[i].def ? entries[i].def : "",
			     entries[i].def ? "]" : "");
		if (w < 0 || (size_t)w >= sizeof(text) - used)
			break;
		used += (size_t)w;
	}
	built = 1;
	return text;
}
