/* Random bytes, hex tokens and UUIDs from OpenSSL's CSPRNG. */
#include "random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "timeutil.h"

/* RAND_bytes costs about a microsecond per call whatever the size, and the
 * request path wants a few bytes several times per request: each thread draws
 * 4 KiB at a time and hands it out. A forked child must never replay its
 * parent's buffer, so fork empties it (generation counter). */
#define POOL_SIZE 4096

static _Thread_local unsigned char pool[POOL_SIZE];
static _Thread_local size_t pool_pos = POOL_SIZE;
static _Thread_local unsigned pool_generation;
static unsigned fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	fork_generation++;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

static void fill(void *buf, size_t n)
{
	if (RAND_bytes(buf, (int)n) != 1) {
		fprintf(stderr, "vtp-recorder: the random number generator failed\n");
		abort();
	}
}

void vtp_random_bytes(void *buf, size_t n)
{
	unsigned char *out = buf;

	pthread_once(&atfork_once, register_atfork);
	if (pool_generation != fork_generation) {
		pool_pos = POOL_SIZE;
		pool_generation = fork_generation;
	}
	if (n > POOL_SIZE / 4) {
		fill(buf, n);
		return;
	}
	while (n) {
		size_t k;

		if (pool_pos == POOL_SIZE) {
			fill(pool, POOL_SIZE);
			pool_pos = 0;
		}
		k = POOL_SIZE - pool_pos < n ? POOL_SIZE - pool_pos : n;
		memcpy(out, pool + pool_pos, k);
		/* never hand out the same bytes twice */
		OPENSSL_cleanse(pool + pool_pos, k);
		pool_pos += k;
		out += k;
		n -= k;
	}
}

void vtp_random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[64];

	while (n) {
		size_t k = n < sizeof(b) ? n : sizeof(b);

		vtp_random_bytes(b, k);
		for (size_t i = 0; i < k; i++) {
			*out++ = hex[b[i] >> 4];
			*out++ = hex[b[i] & 15];
		}
		n -= k;
	}
	*out = '\0';
}

static void format_uuid(const unsigned char b[16], char out[VTP_UUID_BUFLEN])
{
	snprintf(out, VTP_UUID_BUFLEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
}

void vtp_uuid_v4(char out[VTP_UUID_BUFLEN])
{
	unsigned char b[16];

	vtp_random_bytes(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	format_uuid(b, out);
}

/* RFC 9562 §6.2 method 1: the 12 bits after the version are a counter that
 * starts at a random value below 2048 each millisecond and counts up within
 * it (a 4097th id in one millisecond borrows the next one), so the ids of one
 * process are strictly increasing. Readers that order rows by time and then
 * id (the room event journal) see one process's events in the order it wrote
 * them even within a millisecond. */
static pthread_mutex_t v7_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t v7_last_ms;
static unsigned v7_seq;

void vtp_uuid_v7(char out[VTP_UUID_BUFLEN])
{
	unsigned char b[16];
	uint64_t ms = (uint64_t)vtp_now_ms();
	unsigned seq;

	vtp_random_bytes(b + 6, 10);
	pthread_mutex_lock(&v7_lock);
	if (ms > v7_last_ms) {
		v7_last_ms = ms;
		v7_seq = ((unsigned)(b[6] & 0x07) << 8) | b[7];
	} else if (++v7_seq > 0xfff) {
		v7_last_ms++;
		v7_seq = 0;
	}
	ms = v7_last_ms;
	seq = v7_seq;
	pthread_mutex_unlock(&v7_lock);
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (seq >> 8));
	b[7] = (unsigned char)(seq & 0xff);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	format_uuid(b, out);
}

bool vtp_uuid_parse(const char *s, char out[VTP_UUID_BUFLEN])
{
	char tmp[VTP_UUID_BUFLEN];

	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
			tmp[i] = c;
			continue;
		}
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		tmp[i] = c;
	}
	tmp[36] = '\0';
	if (out)
		memcpy(out, tmp, VTP_UUID_BUFLEN);
	return true;
}
