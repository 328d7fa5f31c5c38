/* Line-oriented logger: each event is formatted into one buffer and written
 * with a single write(2), so lines from different threads never interleave.
 * One renderer (vtp__log_kv) serves both formats; messages and values from
 * outside are escaped, so no client can forge or break a line. */
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
		if (level >= VTP_LOG_WARN) {
			char where[256];

			snprintf(where, sizeof(where), "%s:%d", basename_of(file), line);
			vtp_jw_key(&w, "src");
			vtp_jw_string(&w, where);
		}
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
		if (level >= VTP_LOG_WARN)
			vtp_buf_appendf(&b, " (%s:%d)", basename_of(file), line);
	}
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
	vtp__log_kv(level, file, line, msg, NULL, 0);
}
