/* Webhook delivery from the outbox: see webhook.h. One thread, one libcurl
 * easy handle reused across deliveries (keep-alive to the receiver). */
#include "webhook.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"

#define LEASE_MS 60000           /* a claimed event is someone's for this long */
#define IDLE_WAIT_MS 1000        /* nothing due: look again after this */
#define MAX_BACKOFF_MS 3600000
#define TIMEOUT_S 10L

struct vtp_webhooks {
	vtp_store *store;
	char *url;
	char *secret;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool quit;
	CURL *curl;
	_Atomic uint64_t delivered, failed_attempts;
};

/* "sha256=" and the hex HMAC-SHA256 of body under the secret. */
static void signature(const char *secret, const char *body, char out[8 + 64 + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body),
	     mac, &len);
	memcpy(out, "sha256=", 7);
	for (unsigned int i = 0; i < len && i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* One POST; 0 on a 2xx, else a reason in err. */
static int post(vtp_webhooks *wh, const vtp_outbox_item *it, char *err, size_t errlen)
{
	struct curl_slist *h = NULL;
	char hdr[256], sig[8 + 64 + 1];
	long status = 0;
	CURLcode cc;

	h = curl_slist_append(h, "Content-Type: application/json");
	snprintf(hdr, sizeof(hdr), "X-VTP-Event: %s", it->event);
	h = curl_slist_append(h, hdr);
	snprintf(hdr, sizeof(hdr), "X-VTP-Delivery: %s", it->id);
	h = curl_slist_append(h, hdr);
	if (wh->secret) {
		signature(wh->secret, it->body, sig);
		snprintf(hdr, sizeof(hdr), "X-VTP-Signature: %s", sig);
		h = curl_slist_append(h, hdr);
	}
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	curl_easy_setopt(wh->curl, CURLOPT_URL, wh->url);
	curl_easy_setopt(wh->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(wh->curl, CURLOPT_POSTFIELDS, it->body);
	curl_easy_setopt(wh->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(it->body));
	curl_easy_setopt(wh->curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(wh->curl, CURLOPT_TIMEOUT, TIMEOUT_S);
	curl_easy_setopt(wh->curl, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(wh->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(wh->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(wh->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(wh->curl);
	curl_slist_free_all(h);
	curl_easy_setopt(wh->curl, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(cc));
		return VTP_EUNAVAIL;
	}
	curl_easy_getinfo(wh->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "the receiver answered %ld", status);
		return VTP_EUNAVAIL;
	}
	return 0;
}

static int64_t backoff_ms(int attempts)
{
	int64_t ms = 1000;

	for (int i = 1; i < attempts && ms < MAX_BACKOFF_MS; i++)
		ms *= 2;
	return ms < MAX_BACKOFF_MS ? ms : MAX_BACKOFF_MS;
}

/* Delivers one due event; false when none was due. */
static bool deliver_one(vtp_webhooks *wh)
{
	vtp_outbox_item it;
	char err[256];
	int rc = vtp_store_outbox_claim(wh->store, vtp_now_ms(), LEASE_MS, &it);

	if (rc == VTP_ENOTFOUND)
		return false;
	if (rc) {
		VTP_WARN("webhooks: cannot read the outbox: %s", vtp_strerror(rc));
		return false;
	}
	if (post(wh, &it, err, sizeof(err)) == 0) {
		rc = vtp_store_outbox_delivered(wh->store, it.id);
		if (rc)
			VTP_WARN("webhooks: %s %s delivered but not marked (%s): it will be sent again",
				 it.event, it.id, vtp_strerror(rc));
		atomic_fetch_add(&wh->delivered, 1);
		VTP_INFO("webhooks: %s %s delivered (attempt %d)", it.event, it.id, it.attempts);
	} else {
		int64_t wait = backoff_ms(it.attempts);

		atomic_fetch_add(&wh->failed_attempts, 1);
		VTP_WARN("webhooks: %s %s not delivered (attempt %d: %s); next try in %lld ms",
			 it.event, it.id, it.attempts, err, (long long)wait);
		rc = vtp_store_outbox_retry(wh->store, it.id, vtp_now_ms() + wait, err);
		if (rc)
			VTP_WARN("webhooks: %s %s: retry not recorded (%s); due after the lease",
				 it.event, it.id, vtp_strerror(rc));
	}
	vtp_outbox_item_clear(&it);
	return true;
}

static void *webhook_main(void *arg)
{
	vtp_webhooks *wh = arg;

	pthread_setname_np(pthread_self(), "vtp-webhooks");
	for (;;) {
		struct timespec until;
		bool quit;

		pthread_mutex_lock(&wh->mu);
		quit = wh->quit;
		pthread_mutex_unlock(&wh->mu);
		if (quit)
			break;
		if (deliver_one(wh))
			continue;
		pthread_mutex_lock(&wh->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)IDLE_WAIT_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		if (!wh->quit)
			pthread_cond_timedwait(&wh->cv, &wh->mu, &until);
		pthread_mutex_unlock(&wh->mu);
	}
	return NULL;
}

vtp_webhooks *vtp_webhooks_start(vtp_store *store, const char *url, const char *secret,
				 char *err, size_t errlen)
{
	vtp_webhooks *wh;

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "VTP_WEBHOOK_URL must be an http:// or https:// URL");
		return NULL;
	}
	wh = vtp_calloc(1, sizeof(*wh));
	wh->store = store;
	wh->url = vtp_strdup(url);
	wh->secret = secret && *secret ? vtp_strdup(secret) : NULL;
	wh->curl = curl_easy_init();
	pthread_mutex_init(&wh->mu, NULL);
	pthread_cond_init(&wh->cv, NULL);
	if (!wh->curl || pthread_create(&wh->thread, NULL, webhook_main, wh) != 0) {
		snprintf(err, errlen, "webhooks: cannot start the delivery thread");
		if (wh->curl)
			curl_easy_cleanup(wh->curl);
		pthread_mutex_destroy(&wh->mu);
		pthread_cond_destroy(&wh->cv);
		vtp_free(wh->url);
		vtp_free(wh->secret);
		vtp_free(wh);
		return NULL;
	}
	if (!wh->secret)
		VTP_WARN("webhooks: VTP_WEBHOOK_SECRET is not set: deliveries to %s are not signed",
			 wh->url);
	return wh;
}

void vtp_webhooks_stop(vtp_webhooks *wh)
{
	if (!wh)
		return;
	pthread_mutex_lock(&wh->mu);
	wh->quit = true;
	pthread_cond_signal(&wh->cv);
	pthread_mutex_unlock(&wh->mu);
	pthread_join(wh->thread, NULL);
	curl_easy_cleanup(wh->curl);
	pthread_mutex_destroy(&wh->mu);
	pthread_cond_destroy(&wh->cv);
	vtp_free(wh->url);
	if (wh->secret)
		OPENSSL_cleanse(wh->secret, strlen(wh->secret));
	vtp_free(wh->secret);
	vtp_free(wh);
}

void vtp_webhooks_metrics(vtp_webhooks *wh, vtp_buf *out)
{
	int64_t pending = 0;

	if (!wh)
		return;
	vtp_store_outbox_pending(wh->store, &pending);
	vtp_buf_appendf(out,
			"# HELP vtp_webhooks_delivered_total Webhook events delivered by this node.\n"
			"# TYPE vtp_webhooks_delivered_total counter\n"
			"vtp_webhooks_delivered_total %llu\n"
			"# HELP vtp_webhooks_failed_attempts_total Webhook deliveries that failed (retried).\n"
			"# TYPE vtp_webhooks_failed_attempts_total counter\n"
			"vtp_webhooks_failed_attempts_total %llu\n"
			"# HELP vtp_webhooks_pending Webhook events not delivered yet (all nodes).\n"
			"# TYPE vtp_webhooks_pending gauge\n"
			"vtp_webhooks_pending %lld\n",
			(unsigned long long)atomic_load(&wh->delivered),
			(unsigned long long)atomic_load(&wh->failed_attempts), (long long)pending);
}
