/* Logging: one line per event on stderr, text or JSON (VTP_LOG_FORMAT).
 * The macros test the level before formatting anything. Errors and warnings
 * carry file:line. Never log secrets or tokens; never log per packet. */
#ifndef VTP_CORE_LOG_H
#define VTP_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum { VTP_LOG_DEBUG = 0, VTP_LOG_INFO, VTP_LOG_WARN, VTP_LOG_ERROR, VTP_LOG_OFF };

extern int vtp__log_level;

void vtp_log_init(int level, bool json);
bool vtp_log_is_json(void);
void vtp__log(int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A structured event: key/value fields formatted straight into the line
 * (JSON members or text key=value), no JSON tree. */
typedef struct vtp_log_kv {
	const char *key;
	const char *str; /* string value, or NULL to use num */
	long long num;
} vtp_log_kv;

void vtp__log_kv(int level, const char *file, int line, const char *msg,
		 const vtp_log_kv *kv, size_t n);

#define vtp_log_kv(level, msg, kv, n)                                         \
	do {                                                                  \
		if ((level) >= vtp__log_level)                                \
			vtp__log_kv((level), __FILE__, __LINE__, (msg), (kv), \
				    (n));                                     \
	} while (0)

#define vtp_log(level, ...)                                                   \
	do {                                                                  \
		if ((level) >= vtp__log_level)                                \
			vtp__log((level), __FILE__, __LINE__, __VA_ARGS__);   \
	} while (0)
#define VTP_DEBUG(...) vtp_log(VTP_LOG_DEBUG, __VA_ARGS__)
#define VTP_INFO(...) vtp_log(VTP_LOG_INFO, __VA_ARGS__)
#define VTP_WARN(...) vtp_log(VTP_LOG_WARN, __VA_ARGS__)
#define VTP_ERROR(...) vtp_log(VTP_LOG_ERROR, __VA_ARGS__)

#endif
