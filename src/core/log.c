/* Line-oriented logger: each event is formatted into one buffer and written
 * with a single write(2), so lines from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "jsonw.h"
#include "mem.h"
#include "timeutil.h"
#include "utf8.h"

int vtp__log_level = VTP_LOG_INFO;
static bool log_json;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void vtp_log_init(int level, bool json)
{
	vtp__log_level = level;
	log_json = json;
}

bool vtp_log_is_json(void)
{
	return log_json;
}

static const char *basename_of(const char *file)
{
	const char *s = strrchr(file, '/');
	return s ? s + 1 : file;
}

static void emit(vtp_buf *b)
{
	const char *p;
	size_t left;

	vtp_buf_append(b, "\n", 1);
	p = b->data;
	left = b->len;
	while (left) {
		ssize_t n = write(STDERR_FILENO, p, left);
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
}

/* A text-format value that needs no quoting: printable ASCII only. */
static bool plain(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '"' ||
		    *s == '=' || *s == '\\')
			return false;
	return true;
}

static void text_value(vtp_buf *b, json_t *v)
{
	char *s;

	if (json_is_string(v) && plain(json_string_value(v))) {
		vtp_buf_appends(b, json_string_value(v));
		return;
	}
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (s) {
		vtp_buf_appends(b, s);
		free(s);
	}
}

void vtp__log_fields(int level, const char *file, int line, const char *raw_msg,
		     json_t *fields)
{
	/* a message may quote outside bytes: never let them break the line */
	char *owned = vtp_utf8_valid(raw_msg, true) ? NULL : vtp_utf8_sanitize(raw_msg, 4096);
	const char *msg = owned ? owned : raw_msg;
	char ts[VTP_TIME_BUFLEN];
	vtp_buf b;
	const char *key;
	json_t *v;

	if (level < VTP_LOG_DEBUG || level > VTP_LOG_ERROR)
		level = VTP_LOG_ERROR;
	vtp_buf_init(&b, 1 << 20);
	vtp_time_format(vtp_now_ms(), ts);
	if (log_json) {
		json_t *o = json_object();
		char *s;

		json_object_set_new(o, "ts", json_string(ts));
		json_object_set_new(o, "level", json_string(level_names[level]));
		json_object_set_new(o, "msg", json_string(msg));
		if (level >= VTP_LOG_WARN) {
			char where[256];

			snprintf(where, sizeof(where), "%s:%d", basename_of(file), line);
			json_object_set_new(o, "src", json_string(where));
		}
		if (fields)
			json_object_update(o, fields);
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s) {
			vtp_buf_appends(&b, s);
			free(s);
		}
		json_decref(o);
	} else {
		vtp_buf_appendf(&b, "%s %-5s %s", ts, level_names[level], msg);
		if (fields) {
			json_object_foreach(fields, key, v) {
				vtp_buf_appendf(&b, " %s=", key);
				text_value(&b, v);
			}
		}
		if (level >= VTP_LOG_WARN)
			vtp_buf_appendf(&b, " (%s:%d)", basename_of(file), line);
	}
	json_decref(fields);
	emit(&b);
	vtp_buf_free(&b);
	vtp_free(owned);
}

void vtp__log_kv(int level, const char *file, int line, const char *raw_msg,
		 const vtp_log_kv *kv, size_t n)
{
	char *owned = vtp_utf8_valid(raw_msg, true) ? NULL : vtp_utf8_sanitize(raw_msg, 4096);
	const char *msg = owned ? owned : raw_msg;
	char ts[VTP_TIME_BUFLEN];
	vtp_buf b;
	vtp_jw w;

	if (level < VTP_LOG_DEBUG || level > VTP_LOG_ERROR)
		level = VTP_LOG_ERROR;
	vtp_buf_init(&b, 1 << 20);
	vtp_time_format(vtp_now_ms(), ts);
	if (log_json) {
		vtp_jw_init(&w, &b);
		vtp_jw_object_begin(&w);
		vtp_jw_key(&w, "ts");
		vtp_jw_string(&w, ts);
		vtp_jw_key(&w, "level");
		vtp_jw_string(&w, level_names[level]);
		vtp_jw_key(&w, "msg");
		vtp_jw_string(&w, msg);
		for (size_t i = 0; i < n; i++) {
			vtp_jw_key(&w, kv[i].key);
			if (kv[i].str)
				vtp_jw_string(&w, kv[i].str);
			else
				vtp_jw_int(&w, kv[i].num);
		}
		vtp_jw_object_end(&w);
	} else {
		vtp_buf_appendf(&b, "%s %-5s %s", ts, level_names[level], msg);
		for (size_t i = 0; i < n; i++) {
			if (!kv[i].str) {
				vtp_buf_appendf(&b, " %s=%lld", kv[i].key, kv[i].num);
			} else if (plain(kv[i].str)) {
				vtp_buf_appendf(&b, " %s=%s", kv[i].key, kv[i].str);
			} else {
				vtp_jw_init(&w, &b);
				vtp_buf_appendf(&b, " %s=", kv[i].key);
				vtp_jw_string(&w, kv[i].str);
			}
		}
	}
	(void)file;
	(void)line;
	emit(&b);
	vtp_buf_free(&b);
	vtp_free(owned);
}

void vtp__log(int level, const char *file, int line, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vtp__log_fields(level, file, line, msg, NULL);
}
