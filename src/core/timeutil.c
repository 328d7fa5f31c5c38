/* Clocks and RFC 3339 formatting/parsing. */
#include "timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t (*injected_now)(void);

void vtp_clock_set(int64_t (*now_ms)(void))
{
	injected_now = now_ms;
}

int64_t vtp_now_ms(void)
{
	struct timespec ts;

	if (injected_now)
		return injected_now();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vtp_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm): this
 * runs for every time in every response, and gmtime_r + snprintf cost ten
 * times as much. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

void vtp_time_format(int64_t ms, char out[VTP_TIME_BUFLEN])
{
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	unsigned sod = (unsigned)(secs - days * 86400), frac = (unsigned)(ms - secs * 1000);
	unsigned mon, day;
	int64_t year;
	char *p = out;

	civil_from_days(days, &year, &mon, &day);
	if (year < 0 || year > 9999) { /* outside RFC 3339; never in practice */
		snprintf(out, VTP_TIME_BUFLEN, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ",
			 (long long)year, mon, day, sod / 3600, sod / 60 % 60, sod % 60, frac);
		return;
	}
	p = put2(p, (unsigned)(year / 100));
	p = put2(p, (unsigned)(year % 100));
	*p++ = '-';
	p = put2(p, mon);
	*p++ = '-';
	p = put2(p, day);
	*p++ = 'T';
	p = put2(p, sod / 3600);
	*p++ = ':';
	p = put2(p, sod / 60 % 60);
	*p++ = ':';
	p = put2(p, sod % 60);
	*p++ = '.';
	*p++ = (char)('0' + frac / 100);
	p = put2(p, frac % 100);
	*p++ = 'Z';
	*p = '\0';
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool vtp_time_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, frac_ms = 0, off_min = 0;
	struct tm tm;
	const char *p;
	time_t t;

	if (!s || strlen(s) < 19)
		return false;
	if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != ' ' && s[10] != 't') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
	    s[16] != ':' || !digits(s + 17, 2, &sec))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
		return false;
	{
		static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

		if (d > mdays[mo - 1] + (mo == 2 && leap))
			return false;
	}
	p = s + 19;
	if (*p == '.') {
		int n = 0, scale = 100;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (n < 3)
				frac_ms += (*p - '0') * scale;
			scale /= 10;
			n++;
			p++;
		}
		if (n == 0)
			return false;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om = 0, sign = *p == '-' ? -1 : 1;

		if (!digits(p + 1, 2, &oh))
			return false;
		p += 3;
		if (*p == ':') {
			if (!digits(p + 1, 2, &om))
				return false;
			p += 3;
		} else if (p[0] >= '0' && p[0] <= '9') {
			if (!digits(p, 2, &om))
				return false;
			p += 2;
		}
		if (oh > 23 || om > 59)
			return false;
		off_min = sign * (oh * 60 + om);
	} else {
		return false;
	}
	if (*p)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	t -= (time_t)off_min * 60;
	/* The instant must have a four-digit UTC year itself, or it could not
	 * be written back (9999-12-31T23:59-01:00 is in year 10000). */
	if ((int64_t)t < -62167219200LL || (int64_t)t > 253402300799LL)
		return false;
	*ms = (int64_t)t * 1000 + frac_ms;
	return true;
}
