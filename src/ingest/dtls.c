/* DTLS-SRTP for WebRTC ingest: the process's certificate and SSL_CTX
 * (vtp_dtls_ctx), one DTLS 1.2 handshake per peer without sockets
 * (vtp_dtls), and the libsrtp2 sessions keyed from it (vtp_srtp).
 *
 * OpenSSL talks to one custom BIO per handshake. Reading hands OpenSSL the
 * one datagram given to vtp_dtls_input, whole, then "retry": datagram
 * boundaries are kept, which a BIO_s_mem would lose. Writing packs records
 * into a buffer the size of the MTU and sends it as one datagram on
 * BIO_flush; OpenSSL sizes its fragments from BIO_wpending, so a flight
 * leaves in as few datagrams as fit 1200 bytes. Every entry point flushes
 * what is left before it returns and empties the thread's OpenSSL error
 * queue on the way in and out, so one session's errors never show up as
 * another's: the ingest loop serves many sessions from one thread. */
#include "dtls.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/random.h"

#define DTLS_MTU 1200            /* UDP payload; what browsers use too */
#define OUT_CAP 1500             /* the packing buffer; > DTLS_MTU for slack */
#define CERT_NOT_BEFORE_S (-3600)
#define CERT_LIFETIME_S (30L * 24 * 3600)
#define CERT_SERIAL_BITS 63      /* positive, fits a signed 64-bit reader */
#define FINGERPRINT_LEN 95       /* 32 bytes as "AB:" ... "EF" */
#define DEFAULT_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
#define EXPORTER_LABEL "EXTRACTOR-dtls_srtp"
#define SRTP_KEY_LEN 16          /* AES-128 for both profiles */
#define SRTP_SALT_CM 14          /* RFC 3711 */
#define SRTP_SALT_GCM 12         /* RFC 7714 */
#define SRTP_SALT_MAX SRTP_SALT_CM
#define SRTP_WINDOW 1024
#define SRTP_PACKET_MAX 65535    /* a UDP payload */
/* ECDSA (our certificate) with AES-GCM only: RFC 8827 makes the first one
 * mandatory for browsers, and one AEAD family gives one record overhead */
#define CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
#define RECORD_HEADER 13         /* type, version, epoch, sequence, length */
#define RECORD_MIN_PROTECTED 24  /* GCM: explicit nonce 8 + tag 16 */
/* Retransmission timer: the first after 250 ms (OpenSSL's default is 1 s,
 * long for a join), doubling to at most 3 s. OpenSSL gives up after 12
 * timeouts, about 28 s. */
#define TIMER_FIRST_US 250000u
#define TIMER_MAX_US 3000000u

struct vtp_dtls_ctx {
	SSL_CTX *ssl_ctx;
	EVP_PKEY *key;
	X509 *cert;
	char fingerprint[FINGERPRINT_LEN + 1];
};

struct vtp_dtls {
	SSL *ssl;
	int role;
	int state;
	const EVP_MD *fp_md;  /* the peer's expected fingerprint */
	uint8_t fp[EVP_MAX_MD_SIZE];
	size_t fp_len;
	bool close_sent;
	/* the call in progress: where datagrams go, and the one coming in */
	vtp_dtls_send_fn send;
	void *send_arg;
	const uint8_t *in;
	size_t in_len;
	size_t out_len;
	uint8_t out[OUT_CAP];
	/* after CONNECTED: RFC 5764 §4.2, client key | server key | client
	 * salt | server salt (wiped on free) */
	int profile; /* VTP_SRTP_*, 0 before */
	size_t salt_len;
	uint8_t keying[2 * (SRTP_KEY_LEN + SRTP_SALT_MAX)];
	char error[160];
};

struct vtp_srtp {
	srtp_t inbound;
	srtp_t outbound;
};

/* ---- process-wide state ----------------------------------------------------- */

static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static srtp_err_status_t srtp_init_status = srtp_err_status_fail;
static BIO_METHOD *datagram_method; /* lives as long as the process */
/* Debian's libsrtp2 runs on NSS, and each cipher holds an NSS context:
 * when the last one goes, NSS shuts down, and the next vtp_srtp_new
 * starts it again (0.8 ms instead of 0.03). This idle session, keyed at
 * random and never used, keeps NSS up for the life of the process. */
static srtp_t srtp_keepalive;

static int datagram_create(BIO *b);
static int datagram_read(BIO *b, char *buf, int len);
static int datagram_write(BIO *b, const char *buf, int len);
static long datagram_ctrl(BIO *b, int cmd, long num, void *ptr);

static void keep_srtp_backend_up(void)
{
	uint8_t master[SRTP_KEY_LEN + SRTP_SALT_CM];
	srtp_policy_t policy;

	memset(&policy, 0, sizeof(policy));
	srtp_crypto_policy_set_rtp_default(&policy.rtp);
	srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
	vtp_random_bytes(master, sizeof(master));
	policy.ssrc.type = ssrc_any_inbound;
	policy.key = master;
	policy.window_size = SRTP_WINDOW;
	if (srtp_create(&srtp_keepalive, &policy) != srtp_err_status_ok)
		srtp_keepalive = NULL; /* only slower */
	OPENSSL_cleanse(master, sizeof(master));
}

static void process_init(void)
{
	BIO_METHOD *m = NULL;
	int index;

	srtp_init_status = srtp_init();
	if (srtp_init_status == srtp_err_status_ok)
		keep_srtp_backend_up();
	index = BIO_get_new_index();
	if (index < 0)
		goto out;
	m = BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "vtp datagram");
	if (!m)
		goto out;
	if (!BIO_meth_set_create(m, datagram_create) ||
	    !BIO_meth_set_read(m, datagram_read) ||
	    !BIO_meth_set_write(m, datagram_write) ||
	    !BIO_meth_set_ctrl(m, datagram_ctrl))
		goto fail_meth;
	datagram_method = m;
	goto out;
fail_meth:
	BIO_meth_free(m);
out:
	ERR_clear_error();
}

static void set_error(char *err, size_t errlen, const char *msg)
{
	if (err && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* err gets prefix plus the first OpenSSL error, when there is one. */
static void openssl_reason(char *err, size_t errlen, const char *prefix)
{
	unsigned long e = ERR_peek_error();
	char detail[120];

	if (!err || errlen == 0)
		return;
	if (e == 0) {
		snprintf(err, errlen, "%s", prefix);
		return;
	}
	ERR_error_string_n(e, detail, sizeof(detail));
	snprintf(err, errlen, "%s: %s", prefix, detail);
}

/* ---- the datagram BIO ----------------------------------------------------- */

static void flush_out(vtp_dtls *d)
{
	if (d->out_len > 0 && d->send)
		d->send(d->send_arg, d->out, d->out_len);
	d->out_len = 0;
}

static int datagram_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int datagram_read(BIO *b, char *buf, int len)
{
	vtp_dtls *d = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (!d || !d->in || len <= 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	/* OpenSSL reads with room for the largest record; a longer datagram
	 * is cut and its last record then fails to parse and is dropped */
	n = d->in_len < (size_t)len ? d->in_len : (size_t)len;
	memcpy(buf, d->in, n);
	d->in = NULL;
	d->in_len = 0;
	return (int)n;
}

static int datagram_write(BIO *b, const char *buf, int len)
{
	vtp_dtls *d = BIO_get_data(b);
	size_t n = len > 0 ? (size_t)len : 0;

	BIO_clear_retry_flags(b);
	if (!d || n == 0)
		return len > 0 ? len : 0;
	if (n > sizeof(d->out) - d->out_len)
		flush_out(d);
	if (n > sizeof(d->out)) {
		if (d->send)
			d->send(d->send_arg, (const uint8_t *)buf, n);
	} else {
		memcpy(d->out + d->out_len, buf, n);
		d->out_len += n;
	}
	return len;
}

static long datagram_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	vtp_dtls *d = BIO_get_data(b);
	long ret = 0;

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		if (d)
			flush_out(d);
		ret = 1;
		break;
	case BIO_CTRL_WPENDING:
		ret = d ? (long)d->out_len : 0;
		break;
	case BIO_CTRL_PENDING:
		ret = d && d->in ? (long)d->in_len : 0;
		break;
	case BIO_CTRL_DGRAM_QUERY_MTU:
	case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
		ret = DTLS_MTU;
		break;
	case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
		ret = 0; /* the MTU is counted in UDP payload already */
		break;
	default:
		break; /* timers, peer addresses, MTU probing: not ours */
	}
	return ret;
}

/* ---- the context ------------------------------------------------------------ */

static void format_fingerprint(const uint8_t *md, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 3 <= cap; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 0x0f];
	}
	out[o < cap ? o : cap - 1] = '\0';
}

static X509 *make_certificate(EVP_PKEY *key)
{
	X509 *x = X509_new();
	BIGNUM *serial = BN_new();
	X509_NAME *name;

	if (!x || !serial)
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !BN_rand(serial, CERT_SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), CERT_NOT_BEFORE_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), CERT_LIFETIME_S) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"vtp-recorder", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	goto out;
fail:
	X509_free(x);
	x = NULL;
out:
	BN_free(serial);
	return x;
}

static int verify_peer(int preverify_ok, X509_STORE_CTX *store);

vtp_dtls_ctx *vtp_dtls_ctx_new_with(const char *srtp_profiles, char *err, size_t errlen)
{
	vtp_dtls_ctx *ctx = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	SSL_CTX *s;

	ERR_clear_error();
	set_error(err, errlen, "");
	pthread_once(&process_once, process_init);
	if (srtp_init_status != srtp_err_status_ok) {
		set_error(err, errlen, "srtp_init failed");
		goto fail;
	}
	if (!datagram_method) {
		set_error(err, errlen, "cannot make the datagram BIO method");
		goto fail;
	}
	ctx = vtp_calloc(1, sizeof(*ctx));
	ctx->key = EVP_EC_gen("P-256");
	if (!ctx->key) {
		openssl_reason(err, errlen, "P-256 key generation failed");
		goto fail;
	}
	ctx->cert = make_certificate(ctx->key);
	if (!ctx->cert) {
		openssl_reason(err, errlen, "self-signed certificate failed");
		goto fail;
	}
	if (!X509_digest(ctx->cert, EVP_sha256(), md, &md_len) || md_len != 32) {
		openssl_reason(err, errlen, "certificate digest failed");
		goto fail;
	}
	format_fingerprint(md, md_len, ctx->fingerprint, sizeof(ctx->fingerprint));

	s = ctx->ssl_ctx = SSL_CTX_new(DTLS_method());
	if (!s) {
		openssl_reason(err, errlen, "SSL_CTX_new failed");
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(s, DTLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(s, DTLS1_2_VERSION) ||
	    SSL_CTX_set_cipher_list(s, CIPHERS) != 1 ||
	    SSL_CTX_use_certificate(s, ctx->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(s, ctx->key) != 1 ||
	    SSL_CTX_check_private_key(s) != 1) {
		openssl_reason(err, errlen, "SSL_CTX setup failed");
		goto fail;
	}
	/* note the inverted convention: 0 is success here */
	if (SSL_CTX_set_tlsext_use_srtp(s, srtp_profiles ? srtp_profiles : DEFAULT_PROFILES) != 0) {
		openssl_reason(err, errlen, "SRTP profiles refused");
		goto fail;
	}
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_peer);
	/* MTU: ours, never probed. No tickets, cache or renegotiation: one
	 * full handshake per peer, whose certificate is checked every time. */
	SSL_CTX_set_options(s, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	/* no record is larger than a datagram: a 1.2 KiB write buffer, not
	 * 17 (SSL_MODE_RELEASE_BUFFERS does nothing for DTLS) */
	SSL_CTX_set_max_send_fragment(s, DTLS_MTU);
	goto out;
fail:
	vtp_dtls_ctx_free(ctx);
	ctx = NULL;
out:
	OPENSSL_cleanse(md, sizeof(md));
	ERR_clear_error();
	return ctx;
}

vtp_dtls_ctx *vtp_dtls_ctx_new(char *err, size_t errlen)
{
	return vtp_dtls_ctx_new_with(NULL, err, errlen);
}

void vtp_dtls_ctx_free(vtp_dtls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	X509_free(ctx->cert);
	EVP_PKEY_free(ctx->key);
	vtp_free(ctx);
}

const char *vtp_dtls_ctx_fingerprint(const vtp_dtls_ctx *ctx)
{
	return ctx ? ctx->fingerprint : NULL;
}

/* ---- one handshake ------------------------------------------------------------ */

static const EVP_MD *fingerprint_md(const char *alg)
{
	if (!alg)
		return NULL;
	/* RFC 8122 §5: hash names compare case-insensitively */
	if (strcasecmp(alg, "sha-256") == 0)
		return EVP_sha256();
	if (strcasecmp(alg, "sha-1") == 0)
		return EVP_sha1();
	if (strcasecmp(alg, "sha-384") == 0)
		return EVP_sha384();
	if (strcasecmp(alg, "sha-512") == 0)
		return EVP_sha512();
	return NULL;
}

static bool fingerprint_matches(const vtp_dtls *d, const X509 *cert)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	return cert && X509_digest(cert, d->fp_md, md, &n) && n == d->fp_len &&
	       CRYPTO_memcmp(md, d->fp, n) == 0;
}

static void session_fail(vtp_dtls *d, const char *why)
{
	d->state = VTP_DTLS_FAILED;
	if (d->error[0] == '\0') /* the first reason is the one that counts */
		snprintf(d->error, sizeof(d->error), "%s", why);
}

static void fail_openssl(vtp_dtls *d, const char *prefix)
{
	if (d->error[0] == '\0')
		openssl_reason(d->error, sizeof(d->error), prefix);
	d->state = VTP_DTLS_FAILED;
}

/* Self-signed is the norm: the trust is the fingerprint from the SDP,
 * checked here on the leaf so that a mismatch aborts the handshake with a
 * bad_certificate alert instead of completing it. */
static int verify_peer(int preverify_ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	vtp_dtls *d = ssl ? SSL_get_app_data(ssl) : NULL;
	int ok = 1;

	(void)preverify_ok; /* "self-signed", "expired": not our trust model */
	if (X509_STORE_CTX_get_error_depth(store) != 0)
		goto out;
	if (!d || !fingerprint_matches(d, X509_STORE_CTX_get_current_cert(store))) {
		if (d)
			session_fail(d, "certificate fingerprint does not match the SDP");
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
		ok = 0;
	}
out:
	return ok;
}

static unsigned int retransmit_timer(SSL *ssl, unsigned int previous_us)
{
	unsigned int next = previous_us == 0 ? TIMER_FIRST_US : previous_us * 2;

	(void)ssl;
	return next > TIMER_MAX_US ? TIMER_MAX_US : next;
}

vtp_dtls *vtp_dtls_new(vtp_dtls_ctx *ctx, int role, const char *fp_alg,
		       const uint8_t *fp, size_t fp_len)
{
	const EVP_MD *md = fingerprint_md(fp_alg);
	vtp_dtls *d = NULL;
	BIO *bio = NULL;

	ERR_clear_error();
	if (!ctx || !md || !fp || (size_t)EVP_MD_get_size(md) != fp_len ||
	    (role != VTP_DTLS_SERVER && role != VTP_DTLS_CLIENT))
		goto out;
	d = vtp_calloc(1, sizeof(*d));
	d->role = role;
	d->state = VTP_DTLS_HANDSHAKING;
	d->fp_md = md;
	memcpy(d->fp, fp, fp_len);
	d->fp_len = fp_len;
	d->ssl = SSL_new(ctx->ssl_ctx);
	bio = BIO_new(datagram_method);
	if (!d->ssl || !bio)
		goto fail;
	BIO_set_data(bio, d);
	SSL_set_bio(d->ssl, bio, bio); /* one reference for both directions */
	bio = NULL;
	if (!SSL_set_app_data(d->ssl, d) || SSL_set_mtu(d->ssl, DTLS_MTU) <= 0)
		goto fail;
	DTLS_set_timer_cb(d->ssl, retransmit_timer);
	if (role == VTP_DTLS_SERVER)
		SSL_set_accept_state(d->ssl);
	else
		SSL_set_connect_state(d->ssl);
	goto out;
fail:
	BIO_free(bio);
	vtp_dtls_free(d);
	d = NULL;
out:
	ERR_clear_error();
	return d;
}

void vtp_dtls_free(vtp_dtls *d)
{
	if (!d)
		return;
	d->send = NULL; /* nothing leaves during SSL_free */
	SSL_free(d->ssl);
	OPENSSL_cleanse(d->keying, sizeof(d->keying));
	vtp_free(d);
}

static void call_begin(vtp_dtls *d, vtp_dtls_send_fn send, void *arg)
{
	ERR_clear_error();
	d->send = send;
	d->send_arg = arg;
}

static void call_end(vtp_dtls *d)
{
	/* (SSL_free_buffers once connected would save 17 KiB more, but 3.0's
	 * DTLS does not make the write buffer again for an alert:
	 * SSL_shutdown after it crashes.) */
	flush_out(d);
	d->send = NULL;
	d->send_arg = NULL;
	d->in = NULL;
	d->in_len = 0;
	ERR_clear_error();
}

static void handshake_done(vtp_dtls *d)
{
	const SRTP_PROTECTION_PROFILE *p;
	size_t len;

	/* the verify callback checked already; this holds even if a future
	 * OpenSSL skipped it (resumption is off, but cheap to be sure) */
	if (!fingerprint_matches(d, SSL_get0_peer_certificate(d->ssl))) {
		session_fail(d, "certificate fingerprint does not match the SDP");
		goto out;
	}
	p = SSL_get_selected_srtp_profile(d->ssl);
	if (!p) {
		session_fail(d, "no SRTP profile negotiated");
		goto out;
	}
	switch (p->id) {
	case SRTP_AES128_CM_SHA1_80:
		d->profile = VTP_SRTP_AES128_CM_SHA1_80;
		d->salt_len = SRTP_SALT_CM;
		break;
	case SRTP_AEAD_AES_128_GCM:
		d->profile = VTP_SRTP_AEAD_AES_128_GCM;
		d->salt_len = SRTP_SALT_GCM;
		break;
	default:
		session_fail(d, "unexpected SRTP profile");
		goto out;
	}
	len = 2 * (SRTP_KEY_LEN + d->salt_len);
	if (SSL_export_keying_material(d->ssl, d->keying, len, EXPORTER_LABEL,
				       strlen(EXPORTER_LABEL), NULL, 0, 0) != 1) {
		d->profile = 0;
		fail_openssl(d, "SRTP key export failed");
		goto out;
	}
	d->state = VTP_DTLS_CONNECTED;
out:
	return;
}

/* After a failed SSL call: waiting is normal, close_notify closes,
 * anything else (a fatal alert either way, a bad certificate) fails. */
static void after_ssl_error(vtp_dtls *d, int ret, const char *what)
{
	switch (SSL_get_error(d->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		break;
	case SSL_ERROR_ZERO_RETURN:
		d->state = VTP_DTLS_CLOSED;
		break;
	default:
		fail_openssl(d, what);
		break;
	}
}

static void step_handshake(vtp_dtls *d)
{
	int ret = SSL_do_handshake(d->ssl);

	if (ret == 1)
		handshake_done(d);
	else
		after_ssl_error(d, ret, "DTLS handshake failed");
}

/* Connected: records are alerts (close_notify, fatal), the peer's
 * retransmitted last flight (OpenSSL answers it with ours) or application
 * data (SCTP for data channels, which the recorder does not negotiate):
 * read and dropped. */
static void step_connected(vtp_dtls *d)
{
	uint8_t sink[2048];
	int ret;

	while ((ret = SSL_read(d->ssl, sink, sizeof(sink))) > 0)
		;
	after_ssl_error(d, ret, "DTLS failed");
}

int vtp_dtls_start(vtp_dtls *d, vtp_dtls_send_fn send, void *arg)
{
	int ret = 0;

	if (!d) {
		ret = VTP_EINVAL;
		goto out;
	}
	if (d->role != VTP_DTLS_CLIENT || d->state != VTP_DTLS_HANDSHAKING)
		goto out;
	call_begin(d, send, arg);
	step_handshake(d);
	call_end(d);
	if (d->state == VTP_DTLS_FAILED)
		ret = VTP_EINTERNAL;
out:
	return ret;
}

/* OpenSSL 3.0 answers a protected record (epoch 1 on) shorter than the
 * AEAD overhead with a fatal internal_error alert instead of dropping it
 * as RFC 6347 §4.1.2.7 asks: one forged datagram would end a connected
 * session. No genuine datagram holds such a record, so it is dropped here
 * whole. The rest of the record checks stay OpenSSL's. */
static bool has_short_protected_record(const uint8_t *p, size_t n)
{
	while (n >= RECORD_HEADER) {
		unsigned epoch = (unsigned)p[3] << 8 | p[4];
		size_t len = (size_t)p[11] << 8 | p[12];

		if (epoch != 0 && len < RECORD_MIN_PROTECTED)
			return true;
		if (len > n - RECORD_HEADER)
			break; /* cut short: OpenSSL drops it */
		p += RECORD_HEADER + len;
		n -= RECORD_HEADER + len;
	}
	return false;
}

int vtp_dtls_input(vtp_dtls *d, const uint8_t *p, size_t n, vtp_dtls_send_fn send, void *arg)
{
	int state = VTP_DTLS_FAILED;

	if (!d)
		goto out;
	state = d->state;
	if (!p || n == 0 || (state != VTP_DTLS_HANDSHAKING && state != VTP_DTLS_CONNECTED))
		goto out;
	if (has_short_protected_record(p, n))
		goto out;
	call_begin(d, send, arg);
	d->in = p;
	d->in_len = n;
	if (state == VTP_DTLS_HANDSHAKING)
		step_handshake(d);
	else
		step_connected(d);
	call_end(d);
	state = d->state;
out:
	return state;
}

int vtp_dtls_tick(vtp_dtls *d, vtp_dtls_send_fn send, void *arg)
{
	int state = VTP_DTLS_FAILED;

	if (!d)
		goto out;
	if (d->state == VTP_DTLS_HANDSHAKING) {
		call_begin(d, send, arg);
		if (DTLSv1_handle_timeout(d->ssl) < 0)
			fail_openssl(d, "DTLS handshake timed out");
		call_end(d);
	}
	state = d->state;
out:
	return state;
}

int vtp_dtls_state(const vtp_dtls *d)
{
	return d ? d->state : VTP_DTLS_FAILED;
}

const char *vtp_dtls_error(const vtp_dtls *d)
{
	return d ? d->error : "no session";
}

void vtp_dtls_close(vtp_dtls *d, vtp_dtls_send_fn send, void *arg)
{
	if (!d || d->state != VTP_DTLS_CONNECTED || d->close_sent)
		return;
	call_begin(d, send, arg);
	SSL_shutdown(d->ssl); /* 0: sent, the peer's answer not awaited */
	d->close_sent = true;
	call_end(d);
}

const char *vtp_dtls_srtp_profile(const vtp_dtls *d)
{
	const char *name = NULL;

	if (!d)
		goto out;
	if (d->profile == VTP_SRTP_AES128_CM_SHA1_80)
		name = "SRTP_AES128_CM_SHA1_80";
	else if (d->profile == VTP_SRTP_AEAD_AES_128_GCM)
		name = "SRTP_AEAD_AES_128_GCM";
out:
	return name;
}

/* ---- SRTP ---------------------------------------------------------------- */

static srtp_err_status_t make_session(srtp_t *session, int profile, srtp_ssrc_type_t type,
				      const uint8_t *key, const uint8_t *salt, size_t salt_len)
{
	uint8_t master[SRTP_KEY_LEN + SRTP_SALT_MAX];
	srtp_policy_t policy;
	srtp_err_status_t st;

	memset(&policy, 0, sizeof(policy));
	if (profile == VTP_SRTP_AEAD_AES_128_GCM) {
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
	} else {
		srtp_crypto_policy_set_rtp_default(&policy.rtp);
		srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
	}
	memcpy(master, key, SRTP_KEY_LEN);
	memcpy(master + SRTP_KEY_LEN, salt, salt_len);
	policy.ssrc.type = type;
	policy.key = master;
	policy.window_size = SRTP_WINDOW;
	/* ours may go out again (a NACKed packet resent as is) */
	policy.allow_repeat_tx = type == ssrc_any_outbound;
	policy.next = NULL;
	st = srtp_create(session, &policy);
	OPENSSL_cleanse(master, sizeof(master));
	return st;
}

vtp_srtp *vtp_srtp_new(const vtp_dtls *d)
{
	vtp_srtp *s = NULL;
	const uint8_t *client_key, *server_key, *client_salt, *server_salt;
	const uint8_t *peer_key, *peer_salt, *our_key, *our_salt;

	if (!d || d->state != VTP_DTLS_CONNECTED || d->profile == 0)
		goto out;
	client_key = d->keying;
	server_key = client_key + SRTP_KEY_LEN;
	client_salt = server_key + SRTP_KEY_LEN;
	server_salt = client_salt + d->salt_len;
	if (d->role == VTP_DTLS_SERVER) {
		our_key = server_key, our_salt = server_salt;
		peer_key = client_key, peer_salt = client_salt;
	} else {
		our_key = client_key, our_salt = client_salt;
		peer_key = server_key, peer_salt = server_salt;
	}
	s = vtp_calloc(1, sizeof(*s));
	if (make_session(&s->inbound, d->profile, ssrc_any_inbound, peer_key, peer_salt,
			 d->salt_len) != srtp_err_status_ok ||
	    make_session(&s->outbound, d->profile, ssrc_any_outbound, our_key, our_salt,
			 d->salt_len) != srtp_err_status_ok)
		goto fail;
	goto out;
fail:
	vtp_srtp_free(s);
	s = NULL;
out:
	ERR_clear_error(); /* libsrtp's crypto may run on OpenSSL too */
	return s;
}

vtp_srtp *vtp_srtp_new_keys(const uint8_t inbound[VTP_SRTP_MASTER_LEN],
			   const uint8_t outbound[VTP_SRTP_MASTER_LEN])
{
	vtp_srtp *s = vtp_calloc(1, sizeof(*s));

	if (make_session(&s->inbound, VTP_SRTP_AES128_CM_SHA1_80, ssrc_any_inbound, inbound,
			 inbound + SRTP_KEY_LEN, SRTP_SALT_CM) != srtp_err_status_ok ||
	    make_session(&s->outbound, VTP_SRTP_AES128_CM_SHA1_80, ssrc_any_outbound, outbound,
			 outbound + SRTP_KEY_LEN, SRTP_SALT_CM) != srtp_err_status_ok) {
		vtp_srtp_free(s);
		s = NULL;
	}
	ERR_clear_error();
	return s;
}

void vtp_srtp_free(vtp_srtp *s)
{
	if (!s)
		return;
	if (s->inbound)
		srtp_dealloc(s->inbound);
	if (s->outbound)
		srtp_dealloc(s->outbound);
	vtp_free(s);
}

static int srtp_result(srtp_err_status_t st)
{
	switch (st) {
	case srtp_err_status_ok:
		return VTP_SRTP_OK;
	case srtp_err_status_auth_fail:
		return VTP_SRTP_AUTH;
	case srtp_err_status_replay_fail:
	case srtp_err_status_replay_old:
		return VTP_SRTP_REPLAY;
	default:
		return VTP_SRTP_BAD;
	}
}

enum srtp_op { UNPROTECT_RTP, UNPROTECT_RTCP, PROTECT_RTP, PROTECT_RTCP };

static int srtp_apply(vtp_srtp *s, enum srtp_op op, uint8_t *p, size_t *n)
{
	srtp_err_status_t st = srtp_err_status_bad_param;
	int len;

	if (!s || !p || !n || *n > SRTP_PACKET_MAX)
		goto out;
	len = (int)*n;
	switch (op) {
	case UNPROTECT_RTP:
		st = srtp_unprotect(s->inbound, p, &len);
		break;
	case UNPROTECT_RTCP:
		st = srtp_unprotect_rtcp(s->inbound, p, &len);
		break;
	case PROTECT_RTP:
		st = srtp_protect(s->outbound, p, &len);
		break;
	case PROTECT_RTCP:
		st = srtp_protect_rtcp(s->outbound, p, &len);
		break;
	}
	if (st == srtp_err_status_ok)
		*n = (size_t)len;
out:
	return srtp_result(st);
}

int vtp_srtp_unprotect_rtp(vtp_srtp *s, uint8_t *p, size_t *n)
{
	return srtp_apply(s, UNPROTECT_RTP, p, n);
}

int vtp_srtp_unprotect_rtcp(vtp_srtp *s, uint8_t *p, size_t *n)
{
	return srtp_apply(s, UNPROTECT_RTCP, p, n);
}

int vtp_srtp_protect_rtp(vtp_srtp *s, uint8_t *p, size_t *n)
{
	return srtp_apply(s, PROTECT_RTP, p, n);
}

int vtp_srtp_protect_rtcp(vtp_srtp *s, uint8_t *p, size_t *n)
{
	return srtp_apply(s, PROTECT_RTCP, p, n);
}
