/* Fuzz target: the STUN wire code. The input is parsed as one message and,
 * when it parses, its MESSAGE-INTEGRITY is checked with a fixed password
 * (the RFC 5769 one, which the corpus uses). Then the input's bytes, read
 * as parameters, drive the three builders, each writing into a buffer of
 * exactly the cap it is given so an overrun is caught. Invariants abort():
 * what the parser returns lies inside the input and agrees with the bytes,
 * a verified message fails once a covered byte or the password changes, a
 * request's unknown attributes make a 420 that parses, and whatever the
 * builders write parses back with the same values and verifies. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "ingest/stun.h"

#define PWD "VOkJxbRl1RmTxUk/WvJxBt"
#define PWD_LEN (sizeof(PWD) - 1)
#define USERNAME_MAX 513

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the parsed input --------------------------------------------------------- */

static void check_parsed(const uint8_t *p, size_t n, const vtp_stun_msg *m)
{
	int kept = m->unknown_required < 4 ? m->unknown_required : 4;
	int cls = m->type & 0x0110;

	if (!vtp_stun_is(p, n) || m->len != n || n > VTP_STUN_MAX || n % 4)
		abort();
	if (m->type != vtp_get_be16(p) || memcmp(m->txid, p + 8, 12) != 0)
		abort();
	if (m->username) {
		if (m->username < p + VTP_STUN_HEADER + 4 || m->username > p + n ||
		    m->username_len > (size_t)(p + n - m->username) ||
		    m->username_len > USERNAME_MAX)
			abort();
	} else if (m->username_len) {
		abort();
	}
	if (m->integrity_at) {
		if (m->integrity_at < VTP_STUN_HEADER || m->integrity_at >= n ||
		    n - m->integrity_at < 24 || m->integrity_at % 4)
			abort();
		if (vtp_get_be16(p + m->integrity_at) != 0x0008 ||
		    vtp_get_be16(p + m->integrity_at + 2) != 20)
			abort();
	}
	if (m->has_fingerprint && (n < VTP_STUN_HEADER + 8 || vtp_get_be16(p + n - 8) != 0x8028 ||
				   vtp_get_be16(p + n - 6) != 4))
		abort();
	if (m->unknown_required < 0)
		abort();
	for (int i = 0; i < kept; i++)
		if (m->unknown[i] >= 0x8000)
			abort();
	if (m->error_code && (m->error_code < 300 || m->error_code > 699 || cls != 0x0110))
		abort();
	if (m->has_mapped && (cls != 0x0100 || (m->mapped.ss_family != AF_INET &&
						m->mapped.ss_family != AF_INET6)))
		abort();
	if (m->ice_controlling && m->ice_controlled)
		abort();
	if (!m->ice_controlling && !m->ice_controlled && m->tiebreaker)
		abort();
	if (!m->has_priority && m->priority)
		abort();
}

static void check_integrity(const uint8_t *p, size_t n, const vtp_stun_msg *m)
{
	uint8_t *copy;
	bool ok = vtp_stun_check_integrity(p, m, PWD, PWD_LEN);

	if (ok != vtp_stun_check_integrity(p, m, PWD, PWD_LEN))
		abort();
	if (!ok)
		return;
	if (!m->integrity_at)
		abort();
	if (vtp_stun_check_integrity(p, m, PWD, PWD_LEN - 1) ||
	    vtp_stun_check_integrity(p, m, "", 0))
		abort();
	copy = malloc(n);
	if (!copy)
		abort();
	/* a byte of the txid, and the MAC's last byte */
	memcpy(copy, p, n);
	copy[8] ^= 0x80;
	if (vtp_stun_check_integrity(copy, m, PWD, PWD_LEN))
		abort();
	memcpy(copy, p, n);
	copy[m->integrity_at + 23] ^= 0x01;
	if (vtp_stun_check_integrity(copy, m, PWD, PWD_LEN))
		abort();
	free(copy);
}

/* ---- builders ------------------------------------------------------------------ */

/* The input read again as builder parameters, zeros past its end. */
typedef struct cursor {
	const uint8_t *p;
	size_t n, off;
} cursor;

static uint8_t take8(cursor *c)
{
	return c->off < c->n ? c->p[c->off++] : 0;
}

static uint64_t take(cursor *c, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | take8(c);
	return v;
}

static void take_bytes(cursor *c, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = take8(c);
}

/* A built message: the builder's claim, and whether it parses back. */
static void check_built(const uint8_t *p, size_t n, size_t cap, uint16_t type,
			const uint8_t txid[12], vtp_stun_msg *m)
{
	if (n == 0 || n > cap || n % 4)
		abort();
	if (vtp_stun_parse(p, n, m) != 0)
		abort();
	check_parsed(p, n, m);
	if (m->type != type || memcmp(m->txid, txid, 12) != 0 || !m->has_fingerprint ||
	    m->unknown_required != 0)
		abort();
}

/* The password of a built message, from the input: any bytes, maybe empty. */
static size_t take_password(cursor *c, char *pwd, size_t cap)
{
	size_t len = take8(c) % cap;

	take_bytes(c, (uint8_t *)pwd, len);
	return len;
}

static void verify_built(const uint8_t *p, const vtp_stun_msg *m, const char *pwd,
			 size_t pwd_len)
{
	char other[80];

	if (!vtp_stun_check_integrity(p, m, pwd, pwd_len))
		abort();
	memcpy(other, pwd, pwd_len);
	other[pwd_len] = 'x';
	if (vtp_stun_check_integrity(p, m, other, pwd_len + 1))
		abort();
}

/* A too-small cap writes nothing. */
static void check_refused(size_t n)
{
	if (n != 0)
		abort();
}

static void build_request(cursor *c)
{
	uint8_t txid[12], *out;
	char username[600], pwd[80];
	size_t ulen = take(c, 2) % sizeof(username), pwd_len, cap, n, want_len;
	uint32_t priority;
	uint64_t tiebreaker;
	bool use_candidate;
	vtp_stun_msg m;

	take_bytes(c, txid, 12);
	take_bytes(c, (uint8_t *)username, ulen);
	username[ulen] = '\0';
	want_len = strlen(username);
	pwd_len = take_password(c, pwd, sizeof(pwd) - 1);
	priority = (uint32_t)take(c, 4);
	tiebreaker = take(c, 8);
	use_candidate = take8(c) & 1;
	cap = take8(c) & 1 ? 640 : take(c, 2) % 700;

	out = malloc(cap ? cap : 1);
	if (!out)
		abort();
	memset(out, 0xee, cap);
	n = vtp_stun_build_request(out, cap, txid, username, pwd, pwd_len, priority,
				   tiebreaker, use_candidate);
	if (n == 0) {
		/* too long a username, or too small a cap (untouched) */
		if (cap >= 640 && want_len <= USERNAME_MAX)
			abort();
		for (size_t i = 0; i < cap; i++)
			if (out[i] != 0xee)
				abort();
		goto out;
	}
	if (want_len > USERNAME_MAX)
		abort();
	check_built(out, n, cap, VTP_STUN_BINDING_REQUEST, txid, &m);
	if (m.username_len != want_len || memcmp(m.username, username, want_len) != 0 ||
	    !m.has_priority || m.priority != priority || !m.ice_controlling ||
	    m.tiebreaker != tiebreaker || m.use_candidate != use_candidate ||
	    m.integrity_at != n - 32)
		abort();
	verify_built(out, &m, pwd, pwd_len);
	check_refused(vtp_stun_build_request(out, n - 1, txid, username, pwd, pwd_len,
					     priority, tiebreaker, use_candidate));
out:
	free(out);
}

static bool same_mapped(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port &&
		       memcmp(&x->sin_addr, &y->sin_addr, 4) == 0;
	} else {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
}

static void build_success(cursor *c)
{
	uint8_t txid[12], *out;
	char pwd[80];
	struct sockaddr_storage from;
	size_t pwd_len, cap, n;
	uint8_t family = take8(c) % 3;
	vtp_stun_msg m;

	memset(&from, 0, sizeof(from));
	if (family == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&from;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)take(c, 2));
		take_bytes(c, (uint8_t *)&sin->sin_addr, 4);
	} else if (family == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&from;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)take(c, 2));
		take_bytes(c, (uint8_t *)&sin6->sin6_addr, 16);
	} else {
		from.ss_family = AF_UNIX;
	}
	take_bytes(c, txid, 12);
	pwd_len = take_password(c, pwd, sizeof(pwd) - 1);
	cap = take8(c) & 1 ? 160 : take8(c);

	out = malloc(cap ? cap : 1);
	if (!out)
		abort();
	n = vtp_stun_build_success(out, cap, txid, (const struct sockaddr *)&from, pwd,
				   pwd_len);
	if (n == 0) {
		if (cap >= 160 && family != 2)
			abort();
		goto out;
	}
	if (family == 2)
		abort();
	check_built(out, n, cap, VTP_STUN_BINDING_SUCCESS, txid, &m);
	if (!m.has_mapped || !same_mapped(&m.mapped, &from) || m.integrity_at != n - 32)
		abort();
	verify_built(out, &m, pwd, pwd_len);
	check_refused(vtp_stun_build_success(out, n - 1, txid, (const struct sockaddr *)&from,
					     pwd, pwd_len));
out:
	free(out);
}

static void build_error(cursor *c)
{
	uint8_t txid[12], *out;
	char reason[300], pwd[80];
	uint16_t unknown[40];
	int code = (int)(take(c, 2) % 800);
	int nunknown = (int)(take8(c) % 48) - 8;
	size_t rlen = take(c, 2) % sizeof(reason), pwd_len, cap, n;
	bool with_pwd;
	vtp_stun_msg m;

	take_bytes(c, txid, 12);
	take_bytes(c, (uint8_t *)reason, rlen);
	reason[rlen] = '\0';
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		unknown[i] = (uint16_t)take(c, 2);
	if (nunknown > (int)(sizeof(unknown) / sizeof(unknown[0])))
		nunknown = (int)(sizeof(unknown) / sizeof(unknown[0]));
	pwd_len = take_password(c, pwd, sizeof(pwd) - 1);
	with_pwd = take8(c) & 1;
	cap = take8(c) & 1 ? 256 : take(c, 2) % 300;

	out = malloc(cap ? cap : 1);
	if (!out)
		abort();
	n = vtp_stun_build_error(out, cap, txid, code, take8(c) & 1 ? reason : NULL, unknown,
				 nunknown, with_pwd ? pwd : NULL, pwd_len);
	if (n == 0) {
		if (cap >= 256 && code >= 300 && code <= 699)
			abort();
		goto out;
	}
	if (code < 300 || code > 699 || n > 256)
		abort();
	check_built(out, n, cap, VTP_STUN_BINDING_ERROR, txid, &m);
	if (m.error_code != code)
		abort();
	if (with_pwd) {
		if (m.integrity_at != n - 32)
			abort();
		verify_built(out, &m, pwd, pwd_len);
	} else if (m.integrity_at || vtp_stun_check_integrity(out, &m, PWD, PWD_LEN)) {
		abort();
	}
out:
	free(out);
}

/* A request with unknown comprehension-required attributes gets a 420
 * naming them, which must parse. */
static void answer_unknown(const vtp_stun_msg *req)
{
	uint8_t out[256];
	int kept = req->unknown_required < 4 ? req->unknown_required : 4;
	size_t n;
	vtp_stun_msg m;

	n = vtp_stun_build_error(out, sizeof(out), req->txid, 420, NULL, req->unknown, kept,
				 PWD, PWD_LEN);
	check_built(out, n, sizeof(out), VTP_STUN_BINDING_ERROR, req->txid, &m);
	if (m.error_code != 420 || !vtp_stun_check_integrity(out, &m, PWD, PWD_LEN))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vtp_stun_msg m;
	cursor c = {data, size, 0};

	(void)vtp_stun_is(data, size);
	if (vtp_stun_parse(data, size, &m) == 0) {
		check_parsed(data, size, &m);
		check_integrity(data, size, &m);
		if (m.unknown_required > 0)
			answer_unknown(&m);
	}
	build_request(&c);
	build_success(&c);
	build_error(&c);
	return 0;
}
