/* The environment of a compose child. The configuration may have come from
 * flags, which a child does not see, so the effective values are written
 * back as the VTP_* variables of the same names (README "Configuration"): the child
 * loads exactly the parent's configuration. Keep this list in step with
 * src/core/config.c's table. */
#include "jobs/jobs_int.h"

#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"

extern char **environ;

static void push(char ***env, size_t *n, size_t *cap, char *s)
{
	if (*n + 2 > *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*env = vtp_realloc(*env, *cap * sizeof(char *));
	}
	(*env)[(*n)++] = s;
	(*env)[*n] = NULL;
}

static void push_str(char ***env, size_t *n, size_t *cap, const char *name, const char *val)
{
	size_t len;
	char *s;

	if (!val)
		return;
	len = strlen(name) + strlen(val) + 2;
	s = vtp_malloc(len);
	snprintf(s, len, "%s=%s", name, val);
	push(env, n, cap, s);
}

static void push_int(char ***env, size_t *n, size_t *cap, const char *name, long v)
{
	char num[32];

	snprintf(num, sizeof(num), "%ld", v);
	push_str(env, n, cap, name, num);
}

/* Whether env[0..n) sets the variable name[0..len). */
static bool has_name(char **env, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
			return true;
	return false;
}

static const char *level_name(int level)
{
	switch (level) {
	case VTP_LOG_DEBUG: return "debug";
	case VTP_LOG_WARN: return "warn";
	case VTP_LOG_ERROR: return "error";
	default: return "info";
	}
}

char **vtp__env_build(const vtp_config *cfg, const char *const *extra, int nextra)
{
	char **env = NULL;
	size_t n = 0, cap = 0;

	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "VTP_", 4) != 0)
			push(&env, &n, &cap, vtp_strdup(*e));
	push_str(&env, &n, &cap, "VTP_LISTEN", cfg->listen);
	push_str(&env, &n, &cap, "VTP_DATA_DIR", cfg->data_dir);
	push_str(&env, &n, &cap, "VTP_DATABASE_URL", cfg->database_url);
	push_str(&env, &n, &cap, "VTP_STORAGE_URL", cfg->storage_url);
	push_str(&env, &n, &cap, "VTP_JWT_SECRET", cfg->jwt_secret);
	push_str(&env, &n, &cap, "VTP_PUBLIC_IP", cfg->public_ip);
	push_int(&env, &n, &cap, "VTP_RTP_PORT_MIN", cfg->rtp_port_min);
	push_int(&env, &n, &cap, "VTP_RTP_PORT_MAX", cfg->rtp_port_max);
	push_int(&env, &n, &cap, "VTP_WORKERS", cfg->workers);
	push_int(&env, &n, &cap, "VTP_RETENTION_DAYS", cfg->retention_days);
	push_str(&env, &n, &cap, "VTP_S3_PROXY", cfg->s3_proxy ? "1" : "0");
	push_str(&env, &n, &cap, "VTP_S3_ACCESS_KEY", cfg->s3_access_key);
	push_str(&env, &n, &cap, "VTP_S3_SECRET_KEY", cfg->s3_secret_key);
	push_str(&env, &n, &cap, "VTP_WEBHOOK_URL", cfg->webhook_url);
	push_str(&env, &n, &cap, "VTP_WEBHOOK_SECRET", cfg->webhook_secret);
	push_str(&env, &n, &cap, "VTP_LOG_FORMAT", cfg->log_json ? "json" : "text");
	push_str(&env, &n, &cap, "VTP_LOG_LEVEL", level_name(cfg->log_level));
	push_int(&env, &n, &cap, "VTP_HTTP_THREADS", cfg->http_threads);
	push_str(&env, &n, &cap, "VTP_RESPONSE_CACHE", cfg->response_cache ? "1" : "0");
	push_int(&env, &n, &cap, "VTP_MEDIA_URL_TTL", cfg->media_url_ttl);
	for (int i = 0; i < nextra; i++)
		push(&env, &n, &cap, vtp_strdup(extra[i]));
	/* VTP_* variables that are not configuration (the storage's tuning
	 * knobs such as VTP_S3_PART_SIZE, test knobs) pass through as they are;
	 * a configuration variable comes only from the effective values above */
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		if (strncmp(*e, "VTP_", 4) != 0 || !eq ||
		    vtp_config_is_var(*e, (size_t)(eq - *e)) || has_name(env, n, *e, (size_t)(eq - *e)))
			continue;
		push(&env, &n, &cap, vtp_strdup(*e));
	}
	return env;
}

void vtp__env_free(char **env)
{
	if (!env)
		return;
	for (char **e = env; *e; e++)
		vtp_free(*e);
	vtp_free(env);
}
