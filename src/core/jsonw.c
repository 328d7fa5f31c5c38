/* Streaming JSON writer (see jsonw.h). */
#include "jsonw.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "utf8.h"

void vtp_jw_init(vtp_jw *w, vtp_buf *b)
{
	w->b = b;
	w->depth = 0;
	w->first[0] = true;
	w->after_key = false;
}

void vtp_jw_resume_object(vtp_jw *w)
{
	w->depth = 1;
	w->first[1] = false;
	w->after_key = false;
}

/* Separator before a value or a key at the current level. */
static void sep(vtp_jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		vtp_buf_append(w->b, ",", 1);
	w->first[w->depth] = false;
}

static void open(vtp_jw *w, char c)
{
	sep(w);
	vtp_buf_append(w->b, &c, 1);
	if (w->depth < VTP_JW_MAX_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void close_(vtp_jw *w, char c)
{
	if (w->depth > 0)
		w->depth--;
	vtp_buf_append(w->b, &c, 1);
}

void vtp_jw_object_begin(vtp_jw *w) { open(w, '{'); }
void vtp_jw_object_end(vtp_jw *w) { close_(w, '}'); }
void vtp_jw_array_begin(vtp_jw *w) { open(w, '['); }
void vtp_jw_array_end(vtp_jw *w) { close_(w, ']'); }

/* Escapes s as a JSON string that is valid whatever the bytes: invalid UTF-8
 * becomes \ufffd, and control characters (C0, DEL, C1) are \u-escaped so
 * that neither a parser nor a terminal reading a log line acts on them. */
static void escaped(vtp_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;
	size_t left = strlen(s);

	vtp_buf_append(b, "\"", 1);
	while (left) {
		unsigned char c = *p;
		char esc[6];
		size_t n = 2, k = 1;
		uint32_t cp = c;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			p++;
			left--;
			continue;
		}
		if (c >= 0x80) {
			k = vtp_utf8_next(p, left, &cp);
			if (k && cp > 0x9f) { /* valid and printable: copy as is */
				p += k;
				left -= k;
				continue;
			}
			if (!k) {
				k = 1;
				cp = 0xfffd;
			}
		}
		vtp_buf_append(b, run, (size_t)(p - run));
		esc[0] = '\\';
		switch (cp) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = hex[(cp >> 12) & 15];
			esc[3] = hex[(cp >> 8) & 15];
			esc[4] = hex[(cp >> 4) & 15];
			esc[5] = hex[cp & 15];
			n = 6;
		}
		vtp_buf_append(b, esc, n);
		p += k;
		left -= k;
		run = p;
	}
	vtp_buf_append(b, run, (size_t)(p - run));
	vtp_buf_append(b, "\"", 1);
}

void vtp_jw_key(vtp_jw *w, const char *key)
{
	char tmp[72];
	size_t n = strlen(key), k = 0;

	if (n > sizeof(tmp) - 4) { /* long keys take the general path */
		sep(w);
		escaped(w->b, key);
		vtp_buf_append(w->b, ":", 1);
		w->after_key = true;
		return;
	}
	/* Keys are literals of ours: no escaping, one append. */
	if (!w->after_key && !w->first[w->depth])
		tmp[k++] = ',';
	w->first[w->depth] = false;
	w->after_key = true;
	tmp[k++] = '"';
	memcpy(tmp + k, key, n);
	k += n;
	tmp[k++] = '"';
	tmp[k++] = ':';
	vtp_buf_append(w->b, tmp, k);
}

void vtp_jw_string(vtp_jw *w, const char *s)
{
	if (!s) {
		vtp_jw_null(w);
		return;
	}
	sep(w);
	escaped(w->b, s);
}

void vtp_jw_int(vtp_jw *w, long long v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", v);

	sep(w);
	vtp_buf_append(w->b, tmp, (size_t)n);
}

void vtp_jw_double(vtp_jw *w, double v)
{
	char tmp[32];
	int n;

	if (!isfinite(v)) {
		vtp_jw_null(w);
		return;
	}
	/* Shortest form that reads back as the same double. Up to 15
	 * significant digits every decimal survives the trip, and %g drops
	 * trailing zeros, so %.15g is already the shortest when it round-trips;
	 * otherwise 16, then 17 digits (always exact). Subnormals carry fewer
	 * digits, so for them the search starts at 1. */
	n = 0;
	for (int prec = (v != 0 && fabs(v) < DBL_MIN) ? 1 : 15; prec <= 17; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (prec == 17 || strtod(tmp, NULL) == v)
			break;
	}
	if (!strpbrk(tmp, ".eEn") && n < 30) { /* keep it a real: 3 -> 3.0 */
		tmp[n++] = '.';
		tmp[n++] = '0';
		tmp[n] = '\0';
	}
	sep(w);
	vtp_buf_append(w->b, tmp, (size_t)n);
}

void vtp_jw_bool(vtp_jw *w, bool v)
{
	sep(w);
	vtp_buf_appends(w->b, v ? "true" : "false");
}

void vtp_jw_null(vtp_jw *w)
{
	sep(w);
	vtp_buf_append(w->b, "null", 4);
}

void vtp_jw_time(vtp_jw *w, int64_t ms)
{
	char t[VTP_TIME_BUFLEN];

	if (!ms) {
		vtp_jw_null(w);
		return;
	}
	vtp_time_format(ms, t);
	sep(w);
	vtp_buf_append(w->b, "\"", 1);
	vtp_buf_appends(w->b, t);
	vtp_buf_append(w->b, "\"", 1);
}

void vtp_jw_raw(vtp_jw *w, const char *json)
{
	if (!json) {
		vtp_jw_null(w);
		return;
	}
	sep(w);
	vtp_buf_appends(w->b, json);
}
