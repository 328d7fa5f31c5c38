/* Time: wall clock in milliseconds (injectable for tests), a monotonic clock,
 * and RFC 3339 UTC text with milliseconds, the only time format on the wire
 * and in the database. */
#ifndef VTP_CORE_TIMEUTIL_H
#define VTP_CORE_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>

#define VTP_TIME_BUFLEN 64 /* "2026-11-24T05:31:00.123Z" + NUL, with room for any year */

/* Wall clock, ms since the Unix epoch; returns the injected clock if set. */
int64_t vtp_now_ms(void);
/* Monotonic clock in microseconds (never injected). */
int64_t vtp_mono_us(void);
/* Replace the wall clock (tests); NULL restores the real one. */
void vtp_clock_set(int64_t (*now_ms)(void));

/* Formats ms as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void vtp_time_format(int64_t ms, char out[VTP_TIME_BUFLEN]);
/* Parses RFC 3339 ("T" or " " separator, optional fraction, "Z" or
 * "+hh[:mm]"/"-hh[:mm]" offset; PostgreSQL's ISO output is accepted).
 * Returns false on anything else. */
bool vtp_time_parse(const char *s, int64_t *ms);

#endif
