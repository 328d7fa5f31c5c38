/* Tests for src/ingest/dtls.c: a server and a client handshake in memory,
 * their datagrams queued and delivered one at a time, for each SRTP profile
 * and for profiles that do not meet; SRTP and SRTCP both ways between the
 * two, tampering and replay; fingerprints (format, digest, every algorithm,
 * a wrong one on either side); lost flights brought back by the
 * retransmission timer; close_notify; garbage at every stage; datagrams
 * within the MTU; an empty OpenSSL error queue after every call. The .c is
 * included to reach the certificate and the timer constants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testutil.h"

#include "ingest/dtls.c"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define QUEUE_CAP 64
#define DGRAM_CAP 2048
#define PUMP_MAX 200

/* ---- an in-memory link: datagrams queued per direction ------------------- */

typedef struct queue {
	size_t n[QUEUE_CAP];
	uint8_t p[QUEUE_CAP][DGRAM_CAP];
	size_t head, tail;
	size_t sent;     /* every datagram handed to the callback */
	size_t drop;     /* drop this many more instead of queueing them */
	size_t max_len;  /* the largest datagram seen */
} queue;

static void enqueue(void *arg, const uint8_t *p, size_t n)
{
	queue *q = arg;

	q->sent++;
	if (n > q->max_len)
		q->max_len = n;
	if (q->drop > 0) {
		q->drop--;
		return;
	}
	assert_true(n > 0 && n <= DGRAM_CAP);
	assert_true(q->tail - q->head < QUEUE_CAP);
	memcpy(q->p[q->tail % QUEUE_CAP], p, n);
	q->n[q->tail % QUEUE_CAP] = n;
	q->tail++;
}

static bool queue_empty(const queue *q)
{
	return q->head == q->tail;
}

static void queue_clear(queue *q)
{
	q->head = q->tail;
}

typedef struct pair {
	vtp_dtls_ctx *server_ctx, *client_ctx;
	vtp_dtls *server, *client;
	queue to_server, to_client;
} pair;

/* "AB:CD:..." to bytes */
static size_t fingerprint_bytes(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*s && n < cap) {
		unsigned v = 0;

		assert_int_equal(sscanf(s, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
		s += 2;
		if (*s == ':')
			s++;
	}
	return n;
}

static vtp_dtls_ctx *new_ctx(const char *profiles)
{
	char err[200];
	vtp_dtls_ctx *ctx = vtp_dtls_ctx_new_with(profiles, err, sizeof(err));

	if (!ctx)
		fail_msg("vtp_dtls_ctx_new_with: %s", err);
	return ctx;
}

/* Server and client, each expecting the other's real fingerprint unless
 * told otherwise. */
static void pair_open(pair *t, const char *server_profiles, const char *client_profiles,
		      bool server_fp_wrong, bool client_fp_wrong)
{
	uint8_t fp[32];

	memset(t, 0, sizeof(*t));
	t->server_ctx = new_ctx(server_profiles);
	t->client_ctx = new_ctx(client_profiles);
	assert_int_equal(fingerprint_bytes(vtp_dtls_ctx_fingerprint(t->client_ctx), fp, 32), 32);
	if (server_fp_wrong)
		fp[31] ^= 1;
	t->server = vtp_dtls_new(t->server_ctx, VTP_DTLS_SERVER, "sha-256", fp, 32);
	assert_int_equal(fingerprint_bytes(vtp_dtls_ctx_fingerprint(t->server_ctx), fp, 32), 32);
	if (client_fp_wrong)
		fp[0] ^= 0x80;
	t->client = vtp_dtls_new(t->client_ctx, VTP_DTLS_CLIENT, "sha-256", fp, 32);
	assert_non_null(t->server);
	assert_non_null(t->client);
	assert_int_equal(vtp_dtls_state(t->server), VTP_DTLS_HANDSHAKING);
	assert_int_equal(vtp_dtls_state(t->client), VTP_DTLS_HANDSHAKING);
}

static void pair_close(pair *t)
{
	vtp_dtls_free(t->server);
	vtp_dtls_free(t->client);
	vtp_dtls_ctx_free(t->server_ctx);
	vtp_dtls_ctx_free(t->client_ctx);
}

/* Delivers one datagram from q to d; false when q is empty. A stale error
 * is left in the thread's OpenSSL queue first, as another session (or
 * another library) might: it must neither disturb the call nor survive it. */
static bool deliver_one(queue *q, vtp_dtls *d, queue *reply)
{
	size_t i;

	if (queue_empty(q))
		return false;
	i = q->head++ % QUEUE_CAP;
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	vtp_dtls_input(d, q->p[i], q->n[i], enqueue, reply);
	assert_int_equal(ERR_peek_error(), 0);
	return true;
}

/* Until both directions are quiet. */
static void pump(pair *t)
{
	for (int i = 0; i < PUMP_MAX; i++) {
		bool moved = deliver_one(&t->to_server, t->server, &t->to_client);

		moved |= deliver_one(&t->to_client, t->client, &t->to_server);
		if (!moved)
			return;
	}
	fail_msg("the handshake did not settle in %d rounds", PUMP_MAX);
}

static void handshake(pair *t)
{
	assert_int_equal(vtp_dtls_start(t->client, enqueue, &t->to_server), 0);
	assert_false(queue_empty(&t->to_server));
	pump(t);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ticks d every 10 ms until it sends something (a retransmission) into q;
 * the timer is real time. Returns the milliseconds it took. */
static long tick_until_sent(vtp_dtls *d, queue *q)
{
	size_t before = q->sent;
	long start = now_ms(), waited = 0;

	while (q->sent == before) {
		if (waited > 10 * (long)(TIMER_FIRST_US / 1000))
			fail_msg("no retransmission after %ld ms", waited);
		sleep_ms(10);
		assert_int_equal(vtp_dtls_tick(d, enqueue, q), VTP_DTLS_HANDSHAKING);
		waited = now_ms() - start;
	}
	return waited;
}

/* ---- packets ------------------------------------------------------------------ */

#define PKT_CAP (1500 + VTP_SRTP_MAX_TRAILER)

static size_t make_rtp(uint8_t *p, size_t payload, uint16_t seq)
{
	p[0] = 0x80;
	p[1] = 111;
	p[2] = (uint8_t)(seq >> 8);
	p[3] = (uint8_t)seq;
	memset(p + 4, 0, 4); /* timestamp */
	p[8] = 0x11, p[9] = 0x22, p[10] = 0x33, p[11] = 0x44;
	for (size_t i = 0; i < payload; i++)
		p[12 + i] = (uint8_t)(i * 7 + seq);
	return 12 + payload;
}

/* A PLI (RFC 4585), what the server sends back */
static size_t make_pli(uint8_t *p)
{
	static const uint8_t pli[] = {0x81, 0xce, 0x00, 0x02, 0xaa, 0xbb, 0xcc, 0xdd,
				      0x11, 0x22, 0x33, 0x44};

	memcpy(p, pli, sizeof(pli));
	return sizeof(pli);
}

/* A sender report with no blocks, what a browser sends */
static size_t make_sr(uint8_t *p)
{
	static const uint8_t sr[] = {0x80, 0xc8, 0x00, 0x06, 0x11, 0x22, 0x33, 0x44,
				     0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
				     0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x0a,
				     0x00, 0x00, 0x10, 0x00};

	memcpy(p, sr, sizeof(sr));
	return sizeof(sr);
}

typedef int (*srtp_fn)(vtp_srtp *, uint8_t *, size_t *);

/* protect with one, unprotect with the other, compare with the plain */
static void roundtrip(vtp_srtp *from, srtp_fn protect, vtp_srtp *to, srtp_fn unprotect,
		      const uint8_t *plain, size_t n, size_t clear_len, const char *what)
{
	uint8_t p[PKT_CAP], again[PKT_CAP], bad[PKT_CAP];
	size_t len = n, protected_len, m;

	memcpy(p, plain, n);
	if (protect(from, p, &len) != VTP_SRTP_OK)
		fail_msg("%s: protect failed", what);
	assert_true(len > n && len <= n + VTP_SRTP_MAX_TRAILER);
	protected_len = len;
	/* the header stays clear, the rest is encrypted */
	assert_memory_equal(p, plain, clear_len);
	assert_true(memcmp(p + clear_len, plain + clear_len, n - clear_len) != 0);
	memcpy(again, p, len);
	memcpy(bad, p, len);

	/* a flipped byte first: refused, and it must not spend the index */
	bad[len - 20] ^= 0x01;
	m = protected_len;
	if (unprotect(to, bad, &m) != VTP_SRTP_AUTH)
		fail_msg("%s: a flipped byte was not an authentication failure", what);
	bad[len - 20] ^= 0x01;
	bad[len - 1] ^= 0x80; /* the tag itself */
	m = protected_len;
	assert_int_equal(unprotect(to, bad, &m), VTP_SRTP_AUTH);

	if (unprotect(to, p, &len) != VTP_SRTP_OK)
		fail_msg("%s: unprotect failed", what);
	assert_int_equal(len, n);
	assert_memory_equal(p, plain, n);

	m = protected_len;
	if (unprotect(to, again, &m) != VTP_SRTP_REPLAY)
		fail_msg("%s: a replay was not refused as one", what);
}

static void check_srtp(pair *t)
{
	vtp_srtp *server = vtp_srtp_new(t->server), *client = vtp_srtp_new(t->client);
	uint8_t plain[PKT_CAP], p[PKT_CAP];
	size_t n;

	assert_non_null(server);
	assert_non_null(client);
	for (uint16_t seq = 1; seq <= 3; seq++) {
		n = make_rtp(plain, seq == 1 ? 1188 : 160, seq); /* 1200 bytes, Opus size */
		roundtrip(client, vtp_srtp_protect_rtp, server, vtp_srtp_unprotect_rtp, plain, n, 12,
			  "client RTP");
	}
	n = make_sr(plain);
	roundtrip(client, vtp_srtp_protect_rtcp, server, vtp_srtp_unprotect_rtcp, plain, n, 8,
		  "client SRTCP");
	n = make_pli(plain);
	roundtrip(server, vtp_srtp_protect_rtcp, client, vtp_srtp_unprotect_rtcp, plain, n, 8,
		  "server SRTCP");
	n = make_rtp(plain, 100, 9);
	roundtrip(server, vtp_srtp_protect_rtp, client, vtp_srtp_unprotect_rtp, plain, n, 12,
		  "server RTP");

	/* our own packets do not decrypt as the peer's: the keys differ */
	n = make_rtp(p, 100, 50);
	assert_int_equal(vtp_srtp_protect_rtp(server, p, &n), VTP_SRTP_OK);
	assert_int_equal(vtp_srtp_unprotect_rtp(server, p, &n), VTP_SRTP_AUTH);

	/* a late packet inside the 1024 window passes, one behind it is old */
	{
		uint8_t late[PKT_CAP], old[PKT_CAP];
		size_t late_n, old_n;

		old_n = make_rtp(old, 20, 10);
		assert_int_equal(vtp_srtp_protect_rtp(client, old, &old_n), VTP_SRTP_OK);
		late_n = make_rtp(late, 20, 500);
		assert_int_equal(vtp_srtp_protect_rtp(client, late, &late_n), VTP_SRTP_OK);
		n = make_rtp(p, 20, 1500);
		assert_int_equal(vtp_srtp_protect_rtp(client, p, &n), VTP_SRTP_OK);
		assert_int_equal(vtp_srtp_unprotect_rtp(server, p, &n), VTP_SRTP_OK);
		assert_int_equal(vtp_srtp_unprotect_rtp(server, late, &late_n), VTP_SRTP_OK);
		assert_int_equal(vtp_srtp_unprotect_rtp(server, old, &old_n), VTP_SRTP_REPLAY);
	}

	/* a resent packet of ours goes out again (allow_repeat_tx) */
	n = make_rtp(p, 20, 9);
	assert_int_equal(vtp_srtp_protect_rtp(server, p, &n), VTP_SRTP_OK);

	/* too short, or absurd */
	memset(p, 0x80, sizeof(p));
	n = 4;
	assert_int_equal(vtp_srtp_unprotect_rtp(server, p, &n), VTP_SRTP_BAD);
	n = 4;
	assert_int_equal(vtp_srtp_unprotect_rtcp(server, p, &n), VTP_SRTP_BAD);
	n = 0;
	assert_int_equal(vtp_srtp_unprotect_rtp(server, p, &n), VTP_SRTP_BAD);
	n = (size_t)1 << 40;
	assert_int_equal(vtp_srtp_unprotect_rtp(server, p, &n), VTP_SRTP_BAD);
	assert_int_equal(vtp_srtp_unprotect_rtp(NULL, p, &n), VTP_SRTP_BAD);
	assert_int_equal(ERR_peek_error(), 0);

	vtp_srtp_free(server);
	vtp_srtp_free(client);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_fingerprint_format(void **state)
{
	vtp_dtls_ctx *ctx = new_ctx(NULL), *other = new_ctx(NULL);
	const char *fp = vtp_dtls_ctx_fingerprint(ctx);
	uint8_t md[EVP_MAX_MD_SIZE], parsed[32];
	unsigned int md_len = 0;

	assert_non_null(fp);
	assert_int_equal(strlen(fp), 95);
	for (size_t i = 0; i < 95; i++) {
		if (i % 3 == 2)
			assert_int_equal(fp[i], ':');
		else
			assert_non_null(strchr("0123456789ABCDEF", fp[i]));
	}
	assert_int_equal(X509_digest(ctx->cert, EVP_sha256(), md, &md_len), 1);
	assert_int_equal(md_len, 32);
	assert_int_equal(fingerprint_bytes(fp, parsed, sizeof(parsed)), 32);
	assert_memory_equal(parsed, md, 32);
	/* a key and certificate of its own each time */
	assert_string_not_equal(fp, vtp_dtls_ctx_fingerprint(other));

	/* the certificate: self-signed P-256, CN vtp-recorder, valid now */
	{
		X509_NAME *name = X509_get_subject_name(ctx->cert);
		char cn[64];
		EVP_PKEY *pub = X509_get0_pubkey(ctx->cert);
		char group[32];
		size_t group_len = 0;

		assert_true(X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof(cn)) > 0);
		assert_string_equal(cn, "vtp-recorder");
		assert_int_equal(X509_NAME_cmp(name, X509_get_issuer_name(ctx->cert)), 0);
		assert_int_equal(X509_verify(ctx->cert, pub), 1);
		assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), &group_len), 1);
		assert_string_equal(group, "prime256v1");
		assert_true(X509_cmp_current_time(X509_get0_notBefore(ctx->cert)) < 0);
		assert_true(X509_cmp_current_time(X509_get0_notAfter(ctx->cert)) > 0);
	}
	assert_null(vtp_dtls_ctx_fingerprint(NULL));
	vtp_dtls_ctx_free(ctx);
	vtp_dtls_ctx_free(other);
	vtp_dtls_ctx_free(NULL);
}

static void test_handshake_profiles(void **state)
{
	static const struct profile_case {
		const char *name;
		const char *server, *client; /* NULL: the default offer */
		const char *expect;
	} cases[] = {
		{"defaults prefer GCM", NULL, NULL, "SRTP_AEAD_AES_128_GCM"},
		{"GCM only", "SRTP_AEAD_AES_128_GCM", "SRTP_AEAD_AES_128_GCM", "SRTP_AEAD_AES_128_GCM"},
		{"CM only", "SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_80"},
		{"a client with CM only", NULL, "SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_80"},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct profile_case *c = &cases[i];
		pair t;

		pair_open(&t, c->server, c->client, false, false);
		assert_null(vtp_dtls_srtp_profile(t.server));
		assert_null(vtp_srtp_new(t.server));
		handshake(&t);
		if (vtp_dtls_state(t.server) != VTP_DTLS_CONNECTED ||
		    vtp_dtls_state(t.client) != VTP_DTLS_CONNECTED)
			fail_msg("case \"%s\": server %d (%s), client %d (%s)", c->name,
				 vtp_dtls_state(t.server), vtp_dtls_error(t.server),
				 vtp_dtls_state(t.client), vtp_dtls_error(t.client));
		assert_string_equal(vtp_dtls_error(t.server), "");
		assert_string_equal(vtp_dtls_srtp_profile(t.server), c->expect);
		assert_string_equal(vtp_dtls_srtp_profile(t.client), c->expect);
		/* both derived the same keys, in the RFC 5764 order */
		assert_int_equal(t.server->salt_len, t.client->salt_len);
		assert_memory_equal(t.server->keying, t.client->keying,
				    2 * (SRTP_KEY_LEN + t.server->salt_len));
		/* every datagram fit the MTU; flights were packed (a whole
		 * server flight with its certificate is one datagram) */
		assert_true(t.to_server.max_len <= DTLS_MTU);
		assert_true(t.to_client.max_len <= DTLS_MTU);
		assert_true(t.to_client.sent <= 2);
		check_srtp(&t);
		pair_close(&t);
	}
}

static void test_no_common_profile(void **state)
{
	pair t;

	pair_open(&t, "SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80", false, false);
	handshake(&t);
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_FAILED);
	assert_string_equal(vtp_dtls_error(t.server), "no SRTP profile negotiated");
	assert_int_not_equal(vtp_dtls_state(t.client), VTP_DTLS_CONNECTED);
	assert_null(vtp_srtp_new(t.server));
	assert_null(vtp_srtp_new(t.client));
	pair_close(&t);
	/* and a profile list OpenSSL does not know is refused at once */
	{
		char err[200];

		assert_null(vtp_dtls_ctx_new_with("SRTP_NONSENSE", err, sizeof(err)));
		assert_non_null(strstr(err, "SRTP profiles refused"));
		assert_int_equal(ERR_peek_error(), 0);
	}
}

static void test_wrong_fingerprint(void **state)
{
	static const struct fp_case {
		const char *name;
		bool server_wrong, client_wrong;
	} cases[] = {
		{"the server checks", true, false},
		{"the client checks", false, true},
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct fp_case *c = &cases[i];
		vtp_dtls *checker, *other;
		pair t;

		pair_open(&t, NULL, NULL, c->server_wrong, c->client_wrong);
		handshake(&t);
		checker = c->server_wrong ? t.server : t.client;
		other = c->server_wrong ? t.client : t.server;
		assert_int_equal(vtp_dtls_state(checker), VTP_DTLS_FAILED);
		assert_string_equal(vtp_dtls_error(checker),
				    "certificate fingerprint does not match the SDP");
		/* the alert told the other side */
		assert_int_equal(vtp_dtls_state(other), VTP_DTLS_FAILED);
		assert_non_null(strstr(vtp_dtls_error(other), "bad certificate"));
		assert_null(vtp_dtls_srtp_profile(checker));
		assert_null(vtp_srtp_new(checker));
		/* nothing more happens once failed */
		assert_int_equal(vtp_dtls_tick(checker, enqueue, &t.to_client), VTP_DTLS_FAILED);
		assert_int_equal(ERR_peek_error(), 0);
		pair_close(&t);
	}
}

static void test_fingerprint_algorithms(void **state)
{
	static const struct alg_case {
		const char *alg;
		const char *md;
	} cases[] = {
		{"sha-1", "SHA1"}, {"sha-256", "SHA256"}, {"sha-384", "SHA384"},
		{"sha-512", "SHA512"}, {"SHA-256", "SHA256"},
	};
	vtp_dtls_ctx *ctx = new_ctx(NULL);
	uint8_t fp[EVP_MAX_MD_SIZE];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		pair t;
		unsigned int n = 0;

		pair_open(&t, NULL, NULL, false, false);
		assert_int_equal(X509_digest(t.client_ctx->cert, EVP_get_digestbyname(cases[i].md),
					     fp, &n), 1);
		vtp_dtls_free(t.server);
		t.server = vtp_dtls_new(t.server_ctx, VTP_DTLS_SERVER, cases[i].alg, fp, n);
		assert_non_null(t.server);
		handshake(&t);
		if (vtp_dtls_state(t.server) != VTP_DTLS_CONNECTED)
			fail_msg("%s: %s", cases[i].alg, vtp_dtls_error(t.server));
		assert_int_equal(vtp_dtls_state(t.client), VTP_DTLS_CONNECTED);
		pair_close(&t);
	}
	memset(fp, 0, sizeof(fp));
	assert_null(vtp_dtls_new(ctx, VTP_DTLS_SERVER, "md5", fp, 16));
	assert_null(vtp_dtls_new(ctx, VTP_DTLS_SERVER, "sha-256", fp, 31));
	assert_null(vtp_dtls_new(ctx, VTP_DTLS_SERVER, "sha-1", fp, 32));
	assert_null(vtp_dtls_new(ctx, VTP_DTLS_SERVER, NULL, fp, 32));
	assert_null(vtp_dtls_new(ctx, VTP_DTLS_SERVER, "sha-256", NULL, 32));
	assert_null(vtp_dtls_new(ctx, 7, "sha-256", fp, 32));
	assert_null(vtp_dtls_new(NULL, VTP_DTLS_SERVER, "sha-256", fp, 32));
	vtp_dtls_ctx_free(ctx);
}

/* The client's first flight is lost: its timer sends it again. */
static void test_retransmit_client_hello(void **state)
{
	pair t;

	pair_open(&t, NULL, NULL, false, false);
	t.to_server.drop = 1;
	assert_int_equal(vtp_dtls_start(t.client, enqueue, &t.to_server), 0);
	assert_true(queue_empty(&t.to_server));
	/* not before its time */
	assert_int_equal(vtp_dtls_tick(t.client, enqueue, &t.to_server), VTP_DTLS_HANDSHAKING);
	assert_true(queue_empty(&t.to_server));
	assert_true(tick_until_sent(t.client, &t.to_server) >= (long)(TIMER_FIRST_US / 1000) - 20);
	pump(&t);
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_CONNECTED);
	assert_int_equal(vtp_dtls_state(t.client), VTP_DTLS_CONNECTED);
	pair_close(&t);
}

/* The server's flight (hello to hello done) is lost: the server's timer
 * sends it again (the client's would also have brought it back). */
static void test_retransmit_server_flight(void **state)
{
	pair t;

	pair_open(&t, NULL, NULL, false, false);
	assert_int_equal(vtp_dtls_start(t.client, enqueue, &t.to_server), 0);
	while (deliver_one(&t.to_server, t.server, &t.to_client))
		;
	assert_false(queue_empty(&t.to_client));
	queue_clear(&t.to_client);
	tick_until_sent(t.server, &t.to_client);
	pump(&t);
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_CONNECTED);
	assert_int_equal(vtp_dtls_state(t.client), VTP_DTLS_CONNECTED);
	check_srtp(&t);
	pair_close(&t);
}

/* The server's last flight (ChangeCipherSpec, Finished) is lost: the server
 * is connected already, the client retransmits its own last flight, and the
 * connected server answers it with its last flight again. */
static void test_retransmit_final_flight(void **state)
{
	pair t;

	pair_open(&t, NULL, NULL, false, false);
	assert_int_equal(vtp_dtls_start(t.client, enqueue, &t.to_server), 0);
	for (int i = 0; i < PUMP_MAX; i++) {
		deliver_one(&t.to_server, t.server, &t.to_client);
		if (vtp_dtls_state(t.server) == VTP_DTLS_CONNECTED)
			break;
		deliver_one(&t.to_client, t.client, &t.to_server);
	}
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_CONNECTED);
	assert_int_equal(vtp_dtls_state(t.client), VTP_DTLS_HANDSHAKING);
	queue_clear(&t.to_client);
	tick_until_sent(t.client, &t.to_server);
	pump(&t);
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_CONNECTED);
	assert_int_equal(vtp_dtls_state(t.client), VTP_DTLS_CONNECTED);
	check_srtp(&t);
	pair_close(&t);
}

/* A session does not need its ctx once made. */
static void test_ctx_freed_first(void **state)
{
	pair t;

	pair_open(&t, NULL, NULL, false, false);
	vtp_dtls_ctx_free(t.server_ctx);
	vtp_dtls_ctx_free(t.client_ctx);
	t.server_ctx = t.client_ctx = NULL;
	handshake(&t);
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_CONNECTED);
	assert_int_equal(vtp_dtls_state(t.client), VTP_DTLS_CONNECTED);
	check_srtp(&t);
	pair_close(&t);
}

static void test_close_notify(void **state)
{
	pair t;
	vtp_srtp *s;

	pair_open(&t, NULL, NULL, false, false);
	/* nothing to close before the handshake */
	vtp_dtls_close(t.client, enqueue, &t.to_server);
	assert_true(queue_empty(&t.to_server));
	handshake(&t);
	s = vtp_srtp_new(t.server);
	assert_non_null(s);
	vtp_dtls_close(t.client, enqueue, &t.to_server);
	vtp_dtls_close(t.client, enqueue, &t.to_server); /* once only */
	assert_int_equal(t.to_server.tail - t.to_server.head, 1);
	pump(&t);
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_CLOSED);
	assert_string_equal(vtp_dtls_error(t.server), "");
	/* the sessions made before stay usable; no new ones */
	assert_null(vtp_srtp_new(t.server));
	vtp_srtp_free(s);
	pair_close(&t);
}

static void test_garbage(void **state)
{
	static const struct garbage_case {
		const char *name;
		const char *hex;
	} cases[] = {
		{"one byte", "16"},
		{"a record header only", "16 fe fd 00 00 00 00 00 00 00 00 00 10"},
		{"a record longer than its datagram",
		 "16 fe fd 00 00 00 00 00 00 00 00 ff ff 01 00 00"},
		{"a handshake record of junk",
		 "16 fe fd 00 00 00 00 00 00 00 00 00 08 01 02 03 04 05 06 07 08"},
		{"a client hello cut short",
		 "16 fe fd 00 00 00 00 00 00 00 00 00 10 01 00 00 40 00 00 00 00 00 00 00 04 fe fd 00 00"},
		{"application data", "17 fe fd 00 01 00 00 00 00 00 05 00 04 de ad be ef"},
		{"a protected alert shorter than GCM's overhead",
		 "15 fe fd 00 01 00 00 00 00 00 07 00 02 02 28"},
		{"a protected record one byte short of it",
		 "16 fe fd 00 01 00 00 00 00 00 07 00 17 0000000000000000000000000000000000000000000000"},
		{"a good-looking record, then a short protected one",
		 "16 fe fd 00 00 00 00 00 00 00 09 00 01 00 | 17 fe fd 00 01 00 00 00 00 00 09 00 01 00"},
		{"a protected record that does not decrypt",
		 "17 fe fd 00 01 00 00 00 00 00 07 00 20 0000000000000000000000000000000000000000000000000000000000000000"},
		{"an unknown content type", "19 fe fd 00 01 00 00 00 00 00 07 00 02 01 00"},
		{"an alert before anything", "15 fe fd 00 00 00 00 00 00 00 00 00 02 02 28"},
		{"DTLS 1.0 version", "16 fe ff 00 00 00 00 00 00 00 00 00 02 01 00"},
		{"STUN", "00 01 00 00 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00"},
		{"RTP", "80 60 00 01 00 00 00 64 11 22 33 44 aa bb"},
	};
	uint8_t p[4096];

	for (int stage = 0; stage < 3; stage++) {
		for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
			const struct garbage_case *c = &cases[i];
			pair t;
			size_t n = vtp_test_unhex(c->hex, p, sizeof(p));
			int st;

			pair_open(&t, NULL, NULL, false, false);
			if (stage >= 1) { /* mid-handshake: after the client hello */
				assert_int_equal(vtp_dtls_start(t.client, enqueue, &t.to_server), 0);
				deliver_one(&t.to_server, t.server, &t.to_client);
			}
			if (stage == 2)
				pump(&t);
			st = vtp_dtls_input(t.server, p, n, enqueue, &t.to_client);
			assert_int_equal(ERR_peek_error(), 0);
			if (stage < 2 && st != VTP_DTLS_HANDSHAKING && st != VTP_DTLS_FAILED)
				fail_msg("stage %d, %s: state %d", stage, c->name, st);
			/* connected, nothing forged ends the session (in the
			 * handshake, plaintext junk may: the handshake is
			 * plaintext, any alert could do the same) */
			if (stage == 2 && st != VTP_DTLS_CONNECTED)
				fail_msg("stage 2, %s: state %d (%s)", c->name, st,
					 vtp_dtls_error(t.server));
			if (st == VTP_DTLS_FAILED)
				assert_true(vtp_dtls_error(t.server)[0] != '\0');
			pair_close(&t);
		}
	}

	/* random datagrams, up to a huge one, at a server mid-handshake and at
	 * a connected one (which must stay so) */
	for (int connected = 0; connected < 2; connected++) {
		pair t;
		uint32_t x = 12345;

		pair_open(&t, NULL, NULL, false, false);
		assert_int_equal(vtp_dtls_start(t.client, enqueue, &t.to_server), 0);
		deliver_one(&t.to_server, t.server, &t.to_client);
		if (connected)
			pump(&t);
		for (int round = 0; round < 500; round++) {
			size_t n = 1 + (size_t)round * 7 % sizeof(p);

			for (size_t i = 0; i < n; i++) {
				x = x * 1103515245u + 12345u;
				p[i] = (uint8_t)(x >> 16);
			}
			if (round % 2)
				p[0] = 20 + (uint8_t)(round % 4); /* looks like DTLS */
			if (round % 4 == 1) {
				p[1] = 0xfe, p[2] = 0xfd;
				p[3] = 0, p[4] = (uint8_t)(round % 3);
			}
			vtp_dtls_input(t.server, p, n, enqueue, &t.to_client);
			assert_int_equal(ERR_peek_error(), 0);
			if (connected && vtp_dtls_state(t.server) != VTP_DTLS_CONNECTED)
				fail_msg("round %d (%zu bytes): %s", round, n, vtp_dtls_error(t.server));
		}
		if (!connected)
			assert_int_not_equal(vtp_dtls_state(t.server), VTP_DTLS_CONNECTED);
		else
			check_srtp(&t);
		pair_close(&t);
	}

	/* NULL and empty are nothing */
	{
		pair t;

		pair_open(&t, NULL, NULL, false, false);
		assert_int_equal(vtp_dtls_input(t.server, NULL, 5, enqueue, &t.to_client),
				 VTP_DTLS_HANDSHAKING);
		assert_int_equal(vtp_dtls_input(t.server, p, 0, enqueue, &t.to_client),
				 VTP_DTLS_HANDSHAKING);
		assert_int_equal(vtp_dtls_input(NULL, p, 5, enqueue, &t.to_client), VTP_DTLS_FAILED);
		assert_int_equal(vtp_dtls_tick(NULL, enqueue, NULL), VTP_DTLS_FAILED);
		assert_int_equal(vtp_dtls_start(NULL, enqueue, NULL), VTP_EINVAL);
		/* the server role starts nothing */
		assert_int_equal(vtp_dtls_start(t.server, enqueue, &t.to_client), 0);
		assert_true(queue_empty(&t.to_client));
		/* and a NULL callback drops the datagrams without harm */
		assert_int_equal(vtp_dtls_start(t.client, NULL, NULL), 0);
		pair_close(&t);
	}
	vtp_dtls_free(NULL);
	vtp_srtp_free(NULL);
	assert_null(vtp_srtp_new(NULL));
}

/* Connected sessions do not mind junk, a retransmitted handshake message
 * from earlier, or a client hello trying to renegotiate. */
static void test_connected_keeps_going(void **state)
{
	pair t;
	uint8_t hello[DGRAM_CAP];
	size_t hello_n;

	pair_open(&t, NULL, NULL, false, false);
	assert_int_equal(vtp_dtls_start(t.client, enqueue, &t.to_server), 0);
	hello_n = t.to_server.n[t.to_server.head % QUEUE_CAP];
	memcpy(hello, t.to_server.p[t.to_server.head % QUEUE_CAP], hello_n);
	pump(&t);
	assert_int_equal(vtp_dtls_state(t.server), VTP_DTLS_CONNECTED);
	assert_int_equal(vtp_dtls_input(t.server, hello, hello_n, enqueue, &t.to_client),
			 VTP_DTLS_CONNECTED);
	hello[hello_n - 1] ^= 0xff;
	assert_int_equal(vtp_dtls_input(t.server, hello, hello_n, enqueue, &t.to_client),
			 VTP_DTLS_CONNECTED);
	pump(&t);
	assert_int_equal(vtp_dtls_state(t.client), VTP_DTLS_CONNECTED);
	assert_int_equal(ERR_peek_error(), 0);
	check_srtp(&t);
	pair_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fingerprint_format),
		cmocka_unit_test(test_handshake_profiles),
		cmocka_unit_test(test_no_common_profile),
		cmocka_unit_test(test_wrong_fingerprint),
		cmocka_unit_test(test_fingerprint_algorithms),
		cmocka_unit_test(test_retransmit_client_hello),
		cmocka_unit_test(test_retransmit_server_flight),
		cmocka_unit_test(test_retransmit_final_flight),
		cmocka_unit_test(test_ctx_freed_first),
		cmocka_unit_test(test_close_notify),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_connected_keeps_going),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
