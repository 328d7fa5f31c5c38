/* Configuration from the environment (README "Configuration"), overridden by flags of
 * the same name (VTP_DATA_DIR -> --data-dir). Every value is validated at
 * load; a bad one produces one line naming the variable. */
#ifndef VTP_CORE_CONFIG_H
#define VTP_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vtp_config {
	char *listen;         /* as given, "host:port" */
	char *listen_host;    /* host part, brackets removed for IPv6 */
	int listen_port;      /* 0..65535; 0 = any free port */
	char *data_dir;
	char *database_url;
	char *storage_url;
	char *jwt_secret;     /* NULL: read/generate $data_dir/jwt.secret */
	char *public_ip;
	int rtp_port_min;
	int rtp_port_max;
	int whip_timeout;
	int events_ping_interval; /* seconds */
	int whip_max_bitrate;
	int keyframe_interval_ms; /* VTP_KEYFRAME_INTERVAL (decimal seconds); 0: off */
	int segment_seconds;  /* VTP_SEGMENT_SECONDS: packet log segment length */
	int spool_alert_seconds; /* VTP_SPOOL_ALERT_SECONDS: a segment waiting longer is an alert */
	int workers;
	int worker_capacity_milli; /* VTP_WORKER_CAPACITY x 1000, default CPU count */
	int drain_seconds;    /* VTP_DRAIN_SECONDS */
	int retention_days;
	int media_url_ttl;    /* seconds */
	bool s3_proxy;
	char *s3_access_key;
	char *s3_secret_key;
	char *webhook_url;
	char *webhook_secret;
	char *metrics_token;  /* VTP_METRICS_TOKEN: NULL, /metrics public without ids */
	bool log_json;
	int log_level;        /* VTP_LOG_* */
	int http_threads;     /* VTP_HTTP_THREADS, default = CPU count */
	int http_header_timeout; /* seconds, VTP_HTTP_HEADER_TIMEOUT */
	bool response_cache;  /* VTP_RESPONSE_CACHE */
	char *node_url;       /* VTP_NODE_URL: NULL, derived from the listen address */
} vtp_config;

/* Loads the environment, then consumes the configuration flags found in
 * argv[first..*argc) (both "--name value" and "--name=value"), compacting
 * argv so only unconsumed arguments remain. Returns 0 or VTP_EINVAL with a
 * one-line message in err. */
int vtp_config_load(vtp_config *cfg, int first, int *argc, char **argv,
		    char *err, size_t errlen);
void vtp_config_clear(vtp_config *cfg);
/* Whether name[0..len) is one of the configuration variables. */
bool vtp_config_is_var(const char *name, size_t len);
/* Usage lines for the configuration flags (for --help). */
const char *vtp_config_help(void);

#endif
