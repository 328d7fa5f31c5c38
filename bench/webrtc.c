/* WebRTC crypto benchmark: what DTLS-SRTP (src/ingest/dtls.c) costs the
 * ingest thread, on one core.
 *
 *   cmake --build build --target vtp          # build/libvtp.a
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc bench/webrtc.c build/libvtp.a \
 *      $(pkg-config --libs openssl libsrtp2) -lpthread -o build/bench-webrtc
 *   taskset -c 1 build/bench-webrtc [--seconds S] [--packets N] [--no-gst]
 *
 * 1. SRTP: vtp_srtp_unprotect_rtp on RTP packets of 1200 bytes (video) and
 *    160 bytes (Opus at 20 ms), both profiles, packets/s of thread CPU time.
 *    Each batch of 256 packets is copied into place untimed (hot in cache,
 *    as after recvmmsg) and decrypted in place, timed. Side by side:
 *    - the crypto bound: OpenSSL's EVP doing the same per-packet crypto on
 *      the same bytes (GCM: 12-byte AAD, decrypt, 16-byte tag; CM:
 *      HMAC-SHA1 over the packet and ROC, AES-128-CTR over the payload);
 *    - GStreamer's srtpdec, the element a GStreamer recorder would use:
 *      gst-launch-1.0 filesrc ! rtpstreamdepay ! srtpdec ! fakesink over a
 *      file of N such packets (RFC 4571 framing: a 2-byte length each),
 *      minus the same pipeline without srtpdec (child CPU time from wait4,
 *      best of 3); a run into a file first checks that srtpdec decrypted
 *      every packet. (pcapparse would be the obvious source, but 1.22's
 *      corrupts buffer refcounts in front of srtpdec and crashes.) --no-gst
 *      skips it.
 * 2. DTLS: full handshakes (server + client in memory, both in this thread,
 *    ECDHE + ECDSA both ways, SRTP keys exported, vtp_srtp made, all freed)
 *    per second; the server side's share measured alone (thread CPU time
 *    inside the server's calls), which is what a WHIP join costs the
 *    ingest thread.
 * 3. Memory: heap per connected server session (mallinfo2), without and
 *    with its vtp_srtp (one inbound and one outbound stream in use).
 * Prints Markdown tables. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <srtp2/srtp.h>

#include "core/bytes.h"
#include "ingest/dtls.h"

extern char **environ;

#define BATCH 256
#define SLOT 1536           /* one packet's room, trailer included */
#define QUEUE_CAP 32
#define DGRAM_CAP 2048
#define GST_RUNS 3
#define GST_DEADLINE_S 120
#define MEM_SESSIONS 500
#define SSRC 0x11223344u
#define PT_OPUS 111

static const char *const PROFILE_NAMES[] = {"SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80"};
static const size_t SIZES[] = {1200, 160};

static void die(const char *what)
{
	fprintf(stderr, "bench-webrtc: %s\n", what);
	exit(1);
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- an in-memory link ------------------------------------------------------- */

typedef struct queue {
	uint8_t p[QUEUE_CAP][DGRAM_CAP];
	size_t n[QUEUE_CAP];
	size_t head, tail;
} queue;

static void enqueue(void *arg, const uint8_t *p, size_t n)
{
	queue *q = arg;

	if (n > DGRAM_CAP || q->tail - q->head >= QUEUE_CAP)
		die("datagram queue overflow");
	memcpy(q->p[q->tail % QUEUE_CAP], p, n);
	q->n[q->tail % QUEUE_CAP] = n;
	q->tail++;
}

typedef struct side {
	vtp_dtls_ctx *ctx;
	uint8_t fp[32]; /* its certificate's SHA-256 */
} side;

static void side_open(side *s, const char *profiles)
{
	char err[200];
	const char *hex;

	s->ctx = vtp_dtls_ctx_new_with(profiles, err, sizeof(err));
	if (!s->ctx)
		die(err);
	hex = vtp_dtls_ctx_fingerprint(s->ctx);
	for (size_t i = 0; i < 32; i++) {
		unsigned v;

		if (sscanf(hex + 3 * i, "%2x", &v) != 1)
			die("fingerprint");
		s->fp[i] = (uint8_t)v;
	}
}

/* One full handshake; server_cpu/client_cpu get the thread CPU time spent
 * inside each side's calls (vtp_dtls_new, start, input). */
static void handshake(const side *sv, const side *cl, vtp_dtls **server, vtp_dtls **client,
		      double *server_cpu, double *client_cpu)
{
	static queue to_server, to_client;
	double t0, t1;

	to_server.head = to_server.tail = to_client.head = to_client.tail = 0;
	t0 = cpu_now();
	*server = vtp_dtls_new(sv->ctx, VTP_DTLS_SERVER, "sha-256", cl->fp, 32);
	t1 = cpu_now();
	*server_cpu += t1 - t0;
	*client = vtp_dtls_new(cl->ctx, VTP_DTLS_CLIENT, "sha-256", sv->fp, 32);
	if (!*server || !*client || vtp_dtls_start(*client, enqueue, &to_server) != 0)
		die("vtp_dtls_new/start");
	*client_cpu += cpu_now() - t1;
	while (to_server.head != to_server.tail || to_client.head != to_client.tail) {
		if (to_server.head != to_server.tail) {
			size_t i = to_server.head++ % QUEUE_CAP;

			t0 = cpu_now();
			vtp_dtls_input(*server, to_server.p[i], to_server.n[i], enqueue, &to_client);
			*server_cpu += cpu_now() - t0;
		}
		if (to_client.head != to_client.tail) {
			size_t i = to_client.head++ % QUEUE_CAP;

			t0 = cpu_now();
			vtp_dtls_input(*client, to_client.p[i], to_client.n[i], enqueue, &to_server);
			*client_cpu += cpu_now() - t0;
		}
	}
	if (vtp_dtls_state(*server) != VTP_DTLS_CONNECTED ||
	    vtp_dtls_state(*client) != VTP_DTLS_CONNECTED) {
		fprintf(stderr, "server: %s; client: %s\n", vtp_dtls_error(*server),
			vtp_dtls_error(*client));
		die("handshake failed");
	}
}

/* ---- packets --------------------------------------------------------------------- */

static size_t make_rtp(uint8_t *p, size_t size, uint32_t index)
{
	uint16_t seq = (uint16_t)index;
	uint32_t ts = index * 960;

	p[0] = 0x80;
	p[1] = PT_OPUS;
	p[2] = (uint8_t)(seq >> 8), p[3] = (uint8_t)seq;
	p[4] = (uint8_t)(ts >> 24), p[5] = (uint8_t)(ts >> 16);
	p[6] = (uint8_t)(ts >> 8), p[7] = (uint8_t)ts;
	p[8] = (uint8_t)(SSRC >> 24), p[9] = (uint8_t)(SSRC >> 16);
	p[10] = (uint8_t)(SSRC >> 8), p[11] = (uint8_t)SSRC;
	RAND_bytes(p + 12, (int)(size - 12));
	return size;
}

/* ---- 1a. vtp_srtp ----------------------------------------------------------------- */

typedef struct srtp_result {
	double ns_per_packet;
	size_t protected_len;
} srtp_result;

static srtp_result bench_vtp_srtp(const side *sv, const side *cl, size_t size, double seconds)
{
	uint8_t *pristine = malloc((size_t)BATCH * SLOT), *work = malloc((size_t)BATCH * SLOT);
	size_t lens[BATCH];
	vtp_dtls *server, *client;
	vtp_srtp *tx;
	double spent = 0, dummy = 0;
	uint64_t packets = 0;
	srtp_result r = {0, 0};

	if (!pristine || !work)
		die("out of memory");
	handshake(sv, cl, &server, &client, &dummy, &dummy);
	tx = vtp_srtp_new(client);
	if (!tx)
		die("vtp_srtp_new");
	for (uint32_t i = 0; i < BATCH; i++) {
		lens[i] = make_rtp(pristine + (size_t)i * SLOT, size, i);
		if (vtp_srtp_protect_rtp(tx, pristine + (size_t)i * SLOT, &lens[i]) != VTP_SRTP_OK)
			die("protect");
	}
	r.protected_len = lens[1];
	while (spent < seconds) {
		vtp_srtp *rx = vtp_srtp_new(server); /* a fresh replay window */
		size_t n = lens[0];
		double t0;

		memcpy(work, pristine, (size_t)BATCH * SLOT);
		/* the first packet of an SSRC makes its stream: not timed */
		if (!rx || vtp_srtp_unprotect_rtp(rx, work, &n) != VTP_SRTP_OK)
			die("unprotect (first)");
		t0 = cpu_now();
		for (size_t i = 1; i < BATCH; i++) {
			n = lens[i];
			if (vtp_srtp_unprotect_rtp(rx, work + i * SLOT, &n) != VTP_SRTP_OK || n != size)
				die("unprotect");
		}
		spent += cpu_now() - t0;
		packets += BATCH - 1;
		vtp_srtp_free(rx);
	}
	r.ns_per_packet = spent * 1e9 / (double)packets;
	vtp_srtp_free(tx);
	vtp_dtls_free(server);
	vtp_dtls_free(client);
	free(pristine);
	free(work);
	return r;
}

/* ---- 1b. the EVP bound ------------------------------------------------------------ */

/* The same per-packet crypto as SRTP unprotect, nothing else: AES-128-GCM
 * (RFC 7714) or HMAC-SHA1-80 + AES-128-CTR (RFC 3711), key schedules done
 * once, in place on a hot copy. */
static double bench_evp(bool gcm, size_t size, double seconds)
{
	uint8_t *pristine = malloc((size_t)BATCH * SLOT), *work = malloc((size_t)BATCH * SLOT);
	uint8_t key[16], auth_key[20], iv[16] = {0}, roc[4] = {0}, mac[EVP_MAX_MD_SIZE];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *m = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
		OSSL_PARAM_construct_end(),
	};
	double spent = 0;
	uint64_t packets = 0;
	int outl;
	size_t macl;

	if (!pristine || !work || !c || !m)
		die("EVP setup");
	RAND_bytes(key, sizeof(key));
	RAND_bytes(auth_key, sizeof(auth_key));
	/* valid packets: encrypt (and tag) each once */
	if (gcm) {
		if (!EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, iv))
			die("gcm init");
	} else if (!EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, key, iv) ||
		   !EVP_MAC_init(m, auth_key, sizeof(auth_key), params)) {
		die("ctr/hmac init");
	}
	for (uint32_t i = 0; i < BATCH; i++) {
		uint8_t *p = pristine + (size_t)i * SLOT;

		make_rtp(p, size, i);
		if (gcm) {
			if (!EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) ||
			    !EVP_EncryptUpdate(c, NULL, &outl, p, 12) ||
			    !EVP_EncryptUpdate(c, p + 12, &outl, p + 12, (int)(size - 12)) ||
			    !EVP_EncryptFinal_ex(c, p + size, &outl) ||
			    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, p + size))
				die("gcm encrypt");
		} else {
			if (!EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) ||
			    !EVP_EncryptUpdate(c, p + 12, &outl, p + 12, (int)(size - 12)) ||
			    !EVP_MAC_init(m, NULL, 0, NULL) || !EVP_MAC_update(m, p, size) ||
			    !EVP_MAC_update(m, roc, 4) || !EVP_MAC_final(m, mac, &macl, sizeof(mac)))
				die("ctr/hmac encrypt");
			memcpy(p + size, mac, 10);
		}
	}
	/* EVP_MAC_init with a NULL key must have kept the key: check a tag
	 * against the one-shot HMAC */
	if (!gcm) {
		uint8_t msg[SLOT + 4];
		unsigned int l = 0;

		memcpy(msg, pristine, size);
		memcpy(msg + size, roc, 4);
		if (!HMAC(EVP_sha1(), auth_key, sizeof(auth_key), msg, size + 4, mac, &l) ||
		    memcmp(mac, pristine + size, 10) != 0)
			die("EVP_MAC re-init lost the key");
	}
	while (spent < seconds) {
		double t0;

		memcpy(work, pristine, (size_t)BATCH * SLOT);
		t0 = cpu_now();
		for (size_t i = 0; i < BATCH; i++) {
			uint8_t *p = work + i * SLOT;

			if (gcm) {
				if (!EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) ||
				    !EVP_DecryptUpdate(c, NULL, &outl, p, 12) ||
				    !EVP_DecryptUpdate(c, p + 12, &outl, p + 12, (int)(size - 12)) ||
				    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, p + size) ||
				    EVP_DecryptFinal_ex(c, p + size, &outl) <= 0)
					die("gcm decrypt: tag mismatch");
			} else {
				if (!EVP_MAC_init(m, NULL, 0, NULL) || !EVP_MAC_update(m, p, size) ||
				    !EVP_MAC_update(m, roc, 4) ||
				    !EVP_MAC_final(m, mac, &macl, sizeof(mac)) ||
				    CRYPTO_memcmp(mac, p + size, 10) != 0)
					die("hmac: tag mismatch");
				if (!EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) ||
				    !EVP_DecryptUpdate(c, p + 12, &outl, p + 12, (int)(size - 12)))
					die("ctr decrypt");
			}
		}
		spent += cpu_now() - t0;
		packets += BATCH;
	}
	EVP_MAC_CTX_free(m);
	EVP_MAC_free(hmac);
	EVP_CIPHER_CTX_free(c);
	free(pristine);
	free(work);
	return spent * 1e9 / (double)packets;
}

/* ---- 1c. GStreamer's srtpdec ------------------------------------------------------ */

/* N protected packets (libsrtp directly, with a key we know), each after
 * its 2-byte length (RFC 4571); key_hex gets key+salt in hex. */
static void write_stream(const char *path, bool gcm, size_t size, size_t count, char *key_hex)
{
	uint8_t master[30], p[SLOT + 2];
	srtp_policy_t policy;
	srtp_t tx;
	size_t key_len = gcm ? 28 : 30;
	FILE *f = fopen(path, "wb");

	if (!f)
		die("cannot write the packet file");
	RAND_bytes(master, sizeof(master));
	for (size_t i = 0; i < key_len; i++)
		snprintf(key_hex + 2 * i, 3, "%02x", master[i]);
	memset(&policy, 0, sizeof(policy));
	if (gcm) {
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
	} else {
		srtp_crypto_policy_set_rtp_default(&policy.rtp);
		srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
	}
	policy.ssrc.type = ssrc_any_outbound;
	policy.key = master;
	policy.window_size = 1024;
	if (srtp_create(&tx, &policy) != srtp_err_status_ok)
		die("srtp_create");
	for (size_t i = 0; i < count; i++) {
		int len = (int)make_rtp(p + 2, size, (uint32_t)i);

		if (srtp_protect(tx, p + 2, &len) != srtp_err_status_ok)
			die("srtp_protect");
		vtp_put_be16(p, (unsigned)len);
		fwrite(p, 1, 2 + (size_t)len, f);
	}
	srtp_dealloc(tx);
	OPENSSL_cleanse(master, sizeof(master));
	if (fclose(f) != 0)
		die("packet file write failed");
}

/* Runs gst-launch-1.0 with argv (killed after GST_DEADLINE_S); the
 * child's CPU seconds, or -1. */
static double run_gst(char *const argv[])
{
	pid_t pid, got;
	int status;
	struct rusage ru;
	double start = wall_now();

	if (posix_spawnp(&pid, "gst-launch-1.0", NULL, NULL, argv, environ) != 0)
		return -1;
	while ((got = wait4(pid, &status, WNOHANG, &ru)) == 0) {
		if (wall_now() - start > GST_DEADLINE_S)
			kill(pid, SIGKILL);
		usleep(10000);
	}
	if (got != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* srtpdec's CPU per packet: the pipeline with it minus without it.
 * *whole gets the pipeline's own per packet figure. -1 if unavailable. */
static double bench_srtpdec(bool gcm, size_t size, size_t count, double *whole)
{
	char path[] = "/tmp/bench-webrtc-XXXXXX";
	char out[64], key_hex[64], location[128], out_location[128], caps[512];
	int fd = mkstemp(path);
	double with = 1e30, without = 1e30, r = -1;
	struct stat st;

	if (fd < 0)
		die("mkstemp");
	close(fd);
	snprintf(out, sizeof(out), "%s.out", path);
	write_stream(path, gcm, size, count, key_hex);
	snprintf(location, sizeof(location), "location=%s", path);
	snprintf(out_location, sizeof(out_location), "location=%s", out);
	snprintf(caps, sizeof(caps),
		 "application/x-srtp-stream,ssrc=(uint)%u,srtp-key=(buffer)%s,"
		 "srtp-cipher=(string)%s,srtp-auth=(string)%s,"
		 "srtcp-cipher=(string)%s,srtcp-auth=(string)%s",
		 SSRC, key_hex, gcm ? "aes-128-gcm" : "aes-128-icm", gcm ? "null" : "hmac-sha1-80",
		 gcm ? "aes-128-gcm" : "aes-128-icm", gcm ? "null" : "hmac-sha1-80");
	{
		char *check[] = {"gst-launch-1.0", "-q", "-f", "filesrc", location, "!", caps,
				 "!", "rtpstreamdepay", "!", "srtpdec", "!", "filesink", out_location, NULL};

		/* every packet decrypted: exactly count * size bytes of RTP */
		if (run_gst(check) < 0 || stat(out, &st) != 0 ||
		    (size_t)st.st_size != count * size) {
			fprintf(stderr, "bench-webrtc: srtpdec check failed (%s)\n",
				gcm ? "GCM" : "CM");
			goto out;
		}
	}
	for (int i = 0; i < GST_RUNS; i++) {
		char *a[] = {"gst-launch-1.0", "-q", "-f", "filesrc", location, "!", caps,
			     "!", "rtpstreamdepay", "!", "srtpdec", "!", "fakesink", NULL};
		char *b[] = {"gst-launch-1.0", "-q", "-f", "filesrc", location, "!", caps,
			     "!", "rtpstreamdepay", "!", "fakesink", NULL};
		double ta = run_gst(a), tb = run_gst(b);

		if (ta < 0 || tb < 0)
			goto out;
		with = ta < with ? ta : with;
		without = tb < without ? tb : without;
	}
	*whole = with * 1e9 / (double)count;
	r = (with - without) * 1e9 / (double)count;
out:
	unlink(path);
	unlink(out);
	return r;
}

/* ---- 2. handshakes ---------------------------------------------------------------- */

static void bench_handshakes(double seconds)
{
	side sv, cl;
	double server_cpu = 0, client_cpu = 0, srtp_cpu = 0, t0, wall, ctx_ms;
	uint64_t count = 0;

	t0 = wall_now();
	side_open(&sv, NULL);
	ctx_ms = (wall_now() - t0) * 1e3;
	side_open(&cl, NULL);
	t0 = wall_now();
	while (wall_now() - t0 < seconds) {
		vtp_dtls *server, *client;
		vtp_srtp *s, *c;
		double t1;

		handshake(&sv, &cl, &server, &client, &server_cpu, &client_cpu);
		t1 = cpu_now();
		s = vtp_srtp_new(server);
		vtp_srtp_free(s);
		vtp_dtls_free(server);
		srtp_cpu += cpu_now() - t1;
		c = vtp_srtp_new(client);
		if (!s || !c)
			die("vtp_srtp_new");
		vtp_srtp_free(c);
		vtp_dtls_free(client);
		count++;
	}
	wall = wall_now() - t0;
	printf("\n## DTLS handshakes (one thread, both sides in memory, %.0f s)\n\n", seconds);
	printf("| measure | value |\n|---|---:|\n");
	printf("| full handshakes/s (server + client, one core) | %.0f |\n", (double)count / wall);
	printf("| server side CPU per handshake (new, inputs, vtp_srtp, free) | %.3f ms |\n",
	       (server_cpu + srtp_cpu) * 1e3 / (double)count);
	printf("| of which vtp_srtp_new + frees | %.3f ms |\n", srtp_cpu * 1e3 / (double)count);
	printf("| server handshakes per second of ingest-thread CPU | %.0f |\n",
	       (double)count / (server_cpu + srtp_cpu));
	printf("| client side CPU per handshake | %.3f ms |\n", client_cpu * 1e3 / (double)count);
	printf("| vtp_dtls_ctx_new (P-256 key, certificate; once per process) | %.2f ms |\n", ctx_ms);
	vtp_dtls_ctx_free(sv.ctx);
	vtp_dtls_ctx_free(cl.ctx);
}

/* ---- 3. memory -------------------------------------------------------------------- */

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void bench_memory(void)
{
	static uint8_t first[MEM_SESSIONS][256]; /* each peer's first packet */
	static size_t first_len[MEM_SESSIONS];
	side sv, cl;
	vtp_dtls **servers = calloc(MEM_SESSIONS, sizeof(*servers));
	vtp_srtp **srtps = calloc(MEM_SESSIONS, sizeof(*srtps));
	size_t before, after_dtls, after_srtp;
	double dummy = 0;
	uint8_t p[SLOT];

	if (!servers || !srtps)
		die("out of memory");
	side_open(&sv, NULL);
	side_open(&cl, NULL);
	for (int i = 0; i < 2; i++) { /* warm the allocator */
		vtp_dtls *s, *c;

		handshake(&sv, &cl, &s, &c, &dummy, &dummy);
		vtp_dtls_free(s);
		vtp_dtls_free(c);
	}
	malloc_trim(0);
	before = heap_in_use();
	for (size_t i = 0; i < MEM_SESSIONS; i++) {
		vtp_dtls *c;
		vtp_srtp *tx;

		handshake(&sv, &cl, &servers[i], &c, &dummy, &dummy);
		tx = vtp_srtp_new(c);
		first_len[i] = make_rtp(first[i], 100, 1);
		if (!tx || vtp_srtp_protect_rtp(tx, first[i], &first_len[i]) != VTP_SRTP_OK)
			die("srtp");
		vtp_srtp_free(tx);
		vtp_dtls_free(c); /* only the server side stays */
	}
	after_dtls = heap_in_use();
	for (size_t i = 0; i < MEM_SESSIONS; i++) {
		size_t n = make_rtp(p, 40, 1);

		/* both streams in use, as in a live session: the peer's SSRC
		 * (made by its first packet) and our feedback */
		srtps[i] = vtp_srtp_new(servers[i]);
		if (!srtps[i] || vtp_srtp_unprotect_rtp(srtps[i], first[i], &first_len[i]) != VTP_SRTP_OK ||
		    vtp_srtp_protect_rtcp(srtps[i], p, &n) != VTP_SRTP_OK)
			die("srtp");
	}
	after_srtp = heap_in_use();
	printf("\n## Memory per connected server session (%d sessions, heap in use)\n\n",
	       MEM_SESSIONS);
	printf("| object | bytes per session |\n|---|---:|\n");
	printf("| vtp_dtls, connected (SSL, its buffers, the peer's certificate) | %zu |\n",
	       (after_dtls - before) / MEM_SESSIONS);
	printf("| vtp_srtp, an inbound and an outbound stream in use | %zu |\n",
	       (after_srtp - after_dtls) / MEM_SESSIONS);
	for (size_t i = 0; i < MEM_SESSIONS; i++) {
		vtp_srtp_free(srtps[i]);
		vtp_dtls_free(servers[i]);
	}
	free(srtps);
	free(servers);
	vtp_dtls_ctx_free(sv.ctx);
	vtp_dtls_ctx_free(cl.ctx);
}

int main(int argc, char **argv)
{
	double seconds = 2.0;
	size_t gst_packets = 200000;
	bool gst = true;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = strtod(argv[++i], NULL);
		else if (strcmp(argv[i], "--packets") == 0 && i + 1 < argc)
			gst_packets = (size_t)strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--no-gst") == 0)
			gst = false;
		else
			die("usage: bench-webrtc [--seconds S] [--packets N] [--no-gst]");
	}
	if (seconds <= 0 || gst_packets == 0)
		die("bad --seconds or --packets");

	printf("## SRTP unprotect, one core (%.1f s of CPU per cell; srtpdec over %zu packets)\n\n",
	       seconds, gst_packets);
	printf("| profile | RTP bytes (protected) | vtp_srtp packets/s | ns/packet | Gbit/s |"
	       " EVP bound ns/packet | bound / ours | srtpdec ns/packet (pipeline) | srtpdec / ours |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t p = 0; p < 2; p++) {
		bool gcm = p == 0;
		side sv, cl;

		side_open(&sv, PROFILE_NAMES[p]);
		side_open(&cl, PROFILE_NAMES[p]);
		for (size_t s = 0; s < 2; s++) {
			srtp_result ours = bench_vtp_srtp(&sv, &cl, SIZES[s], seconds);
			double bound = bench_evp(gcm, SIZES[s], seconds);
			double whole = 0, dec = gst ? bench_srtpdec(gcm, SIZES[s], gst_packets, &whole) : -1;
			char decs[64] = "n/a", ratio[32] = "n/a";

			if (dec > 0) {
				snprintf(decs, sizeof(decs), "%.0f (%.0f)", dec, whole);
				snprintf(ratio, sizeof(ratio), "%.2f", dec / ours.ns_per_packet);
			}
			printf("| %s | %zu (%zu) | %.0f | %.0f | %.2f | %.0f | %.2f | %s | %s |\n",
			       gcm ? "AEAD_AES_128_GCM" : "AES128_CM_SHA1_80", SIZES[s],
			       ours.protected_len, 1e9 / ours.ns_per_packet, ours.ns_per_packet,
			       (double)ours.protected_len * 8 / ours.ns_per_packet, bound,
			       bound / ours.ns_per_packet, decs, ratio);
			fflush(stdout);
		}
		vtp_dtls_ctx_free(sv.ctx);
		vtp_dtls_ctx_free(cl.ctx);
	}
	bench_handshakes(seconds);
	bench_memory();
	return 0;
}
