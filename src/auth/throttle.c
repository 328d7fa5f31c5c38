/* Login throttling: failure counters per key (email or IP) in a fixed-size
 * chained hash table (THROTTLE_MAX_ENTRIES entries, no allocation after
 * vtp_throttle_new), behind one mutex. Buckets are chosen with SipHash-2-4
 * under a random per-table key, so nobody can aim many keys at one chain.
 * When every entry is in use, the one with the oldest latest failure is
 * forgotten. Counting rules are in the comment above entry_expired().
 *
 * An attempt is a reservation until its outcome is known: while it is in
 * flight it counts as a failure made when it started (so a burst of
 * parallel guesses cannot all pass the check), and only a failed outcome
 * becomes a failure. A correct login leaves no trace: not in the count, not
 * in the time the wait is measured from. */
#include "auth/auth.h"

#include <pthread.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/random.h"

#define THROTTLE_MAX_ENTRIES 4096
#define THROTTLE_BUCKETS 4096 /* a power of two */
#define THROTTLE_KEY_MAX 320  /* longer keys are truncated */
#define THROTTLE_WINDOW_MS (15 * 60 * 1000)
#define THROTTLE_MAX_WAIT_MS (15 * 60 * 1000)
#define THROTTLE_MAX_FAILURES 1000000 /* the counter saturates here */

#define NIL (-1)

typedef struct throttle_entry {
	uint64_t hash;
	int32_t next; /* next entry in the bucket chain, or on the free list */
	uint16_t keylen;
	uint32_t failures;
	uint32_t inflight;     /* attempts whose outcome is not known yet */
	int64_t first_failure_ms;
	int64_t last_failure_ms;
	int64_t reserved_ms;   /* the latest attempt put in flight */
	char key[THROTTLE_KEY_MAX];
} throttle_entry;

struct vtp_throttle {
	uint32_t threshold;
	pthread_mutex_t lock;
	unsigned char sipkey[16];
	int32_t buckets[THROTTLE_BUCKETS];
	int32_t free_list;
	throttle_entry entries[THROTTLE_MAX_ENTRIES];
};

/* ---- SipHash-2-4 (Aumasson & Bernstein) -------------------------------- */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load64_le(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#define SIPROUND                                                              \
	do {                                                                  \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                      \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                      \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
	} while (0)

static uint64_t siphash24(const unsigned char key[16], const void *data,
			  size_t len)
{
	const unsigned char *in = data;
	uint64_t k0 = load64_le(key), k1 = load64_le(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, whole = len & ~(size_t)7;

	for (i = 0; i < whole; i += 8) {
		m = load64_le(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- table ------------------------------------------------------------- */

vtp_throttle *vtp_throttle_new(int threshold)
{
	vtp_throttle *t = vtp_calloc(1, sizeof(*t));

	t->threshold = threshold > 0 ? (uint32_t)threshold : 1;

	pthread_mutex_init(&t->lock, NULL);
	vtp_random_bytes(t->sipkey, sizeof(t->sipkey));
	for (int i = 0; i < THROTTLE_BUCKETS; i++)
		t->buckets[i] = NIL;
	for (int i = 0; i < THROTTLE_MAX_ENTRIES; i++)
		t->entries[i].next = i + 1 < THROTTLE_MAX_ENTRIES ? i + 1 : NIL;
	t->free_list = 0;
	return t;
}

void vtp_throttle_free(vtp_throttle *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	vtp_free(t);
}

static size_t key_length(const char *key)
{
	return strnlen(key, THROTTLE_KEY_MAX);
}

/* The key as stored ("" for NULL), its length and its bucket hash. */
static const char *key_of(vtp_throttle *t, const char *key, size_t *keylen, uint64_t *hash)
{
	if (!key)
		key = "";
	*keylen = key_length(key);
	*hash = siphash24(t->sipkey, key, *keylen);
	return key;
}

static int32_t *bucket_of(vtp_throttle *t, uint64_t hash)
{
	return &t->buckets[hash & (THROTTLE_BUCKETS - 1)];
}

static int32_t find(vtp_throttle *t, const char *key, size_t keylen,
		    uint64_t hash)
{
	for (int32_t i = *bucket_of(t, hash); i != NIL; i = t->entries[i].next) {
		const throttle_entry *e = &t->entries[i];

		if (e->hash == hash && e->keylen == keylen &&
		    memcmp(e->key, key, keylen) == 0)
			return i;
	}
	return NIL;
}

static void unlink_entry(vtp_throttle *t, int32_t idx)
{
	throttle_entry *e = &t->entries[idx];
	int32_t *link = bucket_of(t, e->hash);

	while (*link != idx)
		link = &t->entries[*link].next;
	*link = e->next;
	memset(e, 0, sizeof(*e));
	e->next = t->free_list;
	t->free_list = idx;
}

static int64_t latest_ms(const throttle_entry *e)
{
	return e->reserved_ms > e->last_failure_ms ? e->reserved_ms : e->last_failure_ms;
}

/* Table full: forget the entry whose latest failure (or attempt) is the oldest. */
static void evict_oldest(vtp_throttle *t)
{
	int32_t victim = 0;

	for (int32_t i = 1; i < THROTTLE_MAX_ENTRIES; i++)
		if (latest_ms(&t->entries[i]) < latest_ms(&t->entries[victim]))
			victim = i;
	unlink_entry(t, victim);
}

static int64_t wait_ms(uint32_t threshold, uint32_t failures)
{
	uint32_t exponent;

	if (failures < threshold)
		return 0;
	exponent = failures - threshold;
	if (exponent >= 10) /* 2^10 s already exceeds the cap */
		return THROTTLE_MAX_WAIT_MS;
	return (int64_t)1000 << exponent < THROTTLE_MAX_WAIT_MS
		       ? (int64_t)1000 << exponent
		       : THROTTLE_MAX_WAIT_MS;
}

/* Counting rules. Below the threshold, failures count within a fixed
 * 15-minute window from the first one ("5 failures in 15 minutes"); a
 * failure after the window starts a new count. Once a key has reached the
 * threshold, its count is forgotten only after 15 quiet minutes beyond its
 * current wait: were it forgotten when the wait ends (the cap equals the
 * window), a patient attacker would get 5 free tries every 15 minutes. */
static bool entry_expired(const vtp_throttle *t, const throttle_entry *e, int64_t now_ms)
{
	if (e->failures < t->threshold)
		return now_ms - e->first_failure_ms >= THROTTLE_WINDOW_MS;
	return now_ms - e->last_failure_ms >=
	       wait_ms(t->threshold, e->failures) + THROTTLE_WINDOW_MS;
}

/* Wait still owed by the key (0: may try now): its unexpired failures and
 * its attempts in flight, measured from the latest of either. Caller holds
 * the lock. */
static int64_t owed_locked(vtp_throttle *t, const char *key, size_t keylen,
			   uint64_t hash, int64_t now_ms)
{
	int32_t idx = find(t, key, keylen, hash);
	int64_t retry = 0, from;
	uint32_t n;

	if (idx != NIL) {
		const throttle_entry *e = &t->entries[idx];
		bool fresh = e->failures && !entry_expired(t, e, now_ms);

		n = (fresh ? e->failures : 0) + e->inflight;
		from = fresh ? e->last_failure_ms : 0;
		if (e->inflight && e->reserved_ms > from)
			from = e->reserved_ms;
		if (n >= t->threshold) {
			retry = from + wait_ms(t->threshold, n) - now_ms;
			if (retry < 0)
				retry = 0;
		}
	}
	return retry;
}

/* The key's entry, made when missing. Caller holds the lock. */
static throttle_entry *entry_for(vtp_throttle *t, const char *key, size_t keylen, uint64_t hash)
{
	int32_t idx = find(t, key, keylen, hash), *bucket;
	throttle_entry *e;

	if (idx != NIL)
		return &t->entries[idx];
	if (t->free_list == NIL)
		evict_oldest(t);
	idx = t->free_list;
	e = &t->entries[idx];
	t->free_list = e->next;
	bucket = bucket_of(t, hash);
	e->next = *bucket;
	*bucket = idx;
	e->hash = hash;
	e->keylen = (uint16_t)keylen;
	memcpy(e->key, key, keylen);
	return e;
}

/* Counts one failure for the key. Caller holds the lock. */
static void failure_locked(vtp_throttle *t, const char *key, size_t keylen,
			   uint64_t hash, int64_t now_ms)
{
	throttle_entry *e = entry_for(t, key, keylen, hash);

	if (e->failures == 0 || entry_expired(t, e, now_ms)) {
		e->failures = 0;
		e->first_failure_ms = now_ms;
	}
	if (e->failures < THROTTLE_MAX_FAILURES)
		e->failures++;
	/* A clock that steps back must not shorten an existing wait. */
	if (now_ms > e->last_failure_ms || e->failures == 1)
		e->last_failure_ms = now_ms;
}

/* An attempt in flight ended (either way); an entry with nothing left is
 * forgotten. Caller holds the lock. */
static void settle_locked(vtp_throttle *t, int32_t idx)
{
	throttle_entry *e = &t->entries[idx];

	if (e->inflight > 0)
		e->inflight--;
	if (e->inflight == 0 && e->failures == 0)
		unlink_entry(t, idx);
}

/* Check, and with reserve also put an attempt in flight, in one locked step. */
static int decide(vtp_throttle *t, const char *key, int64_t now_ms, bool reserve,
		  int64_t *retry_after_ms)
{
	size_t keylen;
	uint64_t hash;
	int64_t retry;

	key = key_of(t, key, &keylen, &hash);
	pthread_mutex_lock(&t->lock);
	retry = owed_locked(t, key, keylen, hash, now_ms);
	if (retry == 0 && reserve) {
		throttle_entry *e = entry_for(t, key, keylen, hash);

		if (e->inflight < THROTTLE_MAX_FAILURES)
			e->inflight++;
		if (now_ms > e->reserved_ms)
			e->reserved_ms = now_ms;
	}
	pthread_mutex_unlock(&t->lock);
	if (retry_after_ms)
		*retry_after_ms = retry;
	return retry > 0 ? VTP_ELIMIT : 0;
}

int vtp_throttle_check(vtp_throttle *t, const char *key, int64_t now_ms,
		       int64_t *retry_after_ms)
{
	return decide(t, key, now_ms, false, retry_after_ms);
}

int vtp_throttle_attempt(vtp_throttle *t, const char *key, int64_t now_ms,
			 int64_t *retry_after_ms)
{
	return decide(t, key, now_ms, true, retry_after_ms);
}

void vtp_throttle_failure(vtp_throttle *t, const char *key, int64_t now_ms)
{
	size_t keylen;
	uint64_t hash;

	key = key_of(t, key, &keylen, &hash);
	pthread_mutex_lock(&t->lock);
	failure_locked(t, key, keylen, hash, now_ms);
	pthread_mutex_unlock(&t->lock);
}

void vtp_throttle_refund(vtp_throttle *t, const char *key)
{
	size_t keylen;
	uint64_t hash;
	int32_t idx;

	key = key_of(t, key, &keylen, &hash);
	pthread_mutex_lock(&t->lock);
	idx = find(t, key, keylen, hash);
	if (idx != NIL)
		settle_locked(t, idx);
	pthread_mutex_unlock(&t->lock);
}

void vtp_throttle_attempt_failed(vtp_throttle *t, const char *key, int64_t now_ms)
{
	size_t keylen;
	uint64_t hash;
	int32_t idx;

	key = key_of(t, key, &keylen, &hash);
	pthread_mutex_lock(&t->lock);
	failure_locked(t, key, keylen, hash, now_ms);
	idx = find(t, key, keylen, hash);
	if (idx != NIL && t->entries[idx].inflight > 0)
		t->entries[idx].inflight--;
	pthread_mutex_unlock(&t->lock);
}

uint32_t vtp_throttle_failures(vtp_throttle *t, const char *key, int64_t now_ms)
{
	size_t keylen;
	uint64_t hash;
	int32_t idx;
	uint32_t n = 0;

	key = key_of(t, key, &keylen, &hash);
	pthread_mutex_lock(&t->lock);
	idx = find(t, key, keylen, hash);
	if (idx != NIL && !entry_expired(t, &t->entries[idx], now_ms))
		n = t->entries[idx].failures;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void vtp_throttle_success(vtp_throttle *t, const char *key)
{
	size_t keylen;
	uint64_t hash;
	int32_t idx;

	key = key_of(t, key, &keylen, &hash);
	pthread_mutex_lock(&t->lock);
	idx = find(t, key, keylen, hash);
	if (idx != NIL)
		unlink_entry(t, idx);
	pthread_mutex_unlock(&t->lock);
}
