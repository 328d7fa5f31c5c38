/* WHIP endpoints (RFC 9725, README "WebRTC (WHIP)"): POST an SDP offer to a room,
 * DELETE the session's URL to end it. The server is ICE-lite with all its
 * candidates in the answer, so trickle ICE and ICE restarts (PATCH) are
 * answered 405. The answers carry CORS headers (server.c) so that pages of
 * other origins can publish with a Bearer token.
 *
 * Behind a load balancer (README "WHIP behind a load balancer") a session
 * lives in the memory of the node that answered its POST, and the
 * whip_sessions table names that node and its VTP_NODE_URL. A DELETE or
 * PATCH for a session this node does not hold is forwarded to its owner on
 * a worker thread (defer.c) and the owner's answer relayed. A forwarded
 * request carries X-VTP-Forwarded, signed with the JWT key every node
 * shares, and is never forwarded again: a directory that points elsewhere
 * again is a loop, answered 508. */
#include "api_int.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"

#define FORWARD_HEADER "X-VTP-Forwarded"
#define FORWARD_MAX_SKEW 300             /* seconds a signed header stays good */
#define FORWARD_BODY_MAX (256u * 1024)   /* the owner's answer, relayed whole */
#define FORWARD_HEADERS_MAX (16u * 1024)
#define FORWARD_CONNECT_MS 3000L
#define FORWARD_TIMEOUT_MS 20000L

static void reply_and_clear(vtp_req *r, vtp_fail *fail)
{
	vtp__reply_fail(r, fail);
	vtp_fail_clear(fail);
}

/* RFC 3986 unreserved characters stay, everything else is %XX. */
static void url_encode(vtp_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			vtp_buf_append(b, p, 1);
		else
			vtp_buf_appendf(b, "%%%02X", c);
	}
}

/* This node's base URL for the other nodes, without a final slash. */
static void own_node_url(const vtp_api *api, char *out, size_t len)
{
	const char *host = api->cfg.host ? api->cfg.host : "";
	size_t n;

	if (api->cfg.node_url && *api->cfg.node_url) {
		snprintf(out, len, "%s", api->cfg.node_url);
	} else if (!*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
		snprintf(out, len, "http://127.0.0.1:%d", api->port);
	} else {
		bool v6 = strchr(host, ':') != NULL;

		snprintf(out, len, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
			 api->port);
	}
	n = strlen(out);
	if (n && out[n - 1] == '/')
		out[n - 1] = '\0';
}

static bool have_directory(const vtp_req *r)
{
	return r->api->cfg.store && r->api->cfg.node_id && *r->api->cfg.node_id;
}

/* ---- the forwarding header ------------------------------------------------------------ */

/* HMAC-SHA256 over what the request is, keyed by the JWT key: only a
 * node (which holds the key) can mark a request as forwarded. */
static void forward_mac(const vtp_api *api, const char *node_id, long long ts,
			const char *method, const char *room_id, const char *session_id,
			char hex[2 * EVP_MAX_MD_SIZE + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	vtp_buf msg;

	vtp_buf_init(&msg, 4096);
	vtp_buf_appendf(&msg, "vtp-whip-forward\n%s\n%lld\n%s\n%s\n%s", node_id, ts, method,
			room_id, session_id);
	if (!HMAC(EVP_sha256(), api->cfg.jwt_key, (int)api->cfg.jwt_key_len,
		  (const unsigned char *)msg.data, msg.len, md, &mdlen))
		mdlen = 0;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * mdlen] = '\0';
	vtp_buf_free(&msg);
}

/* 1: the request was forwarded by a node (the header's signature holds),
 * 0: no header, -1: a header that is not a node's (replied 400). The
 * value is "NODE-ID;UNIX-SECONDS;HEX-MAC". */
static int forwarded(vtp_req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, FORWARD_HEADER);
	char node[VTP_UUID_BUFLEN], want[2 * EVP_MAX_MD_SIZE + 1], digits[24];
	const char *semi1, *semi2, *mac;
	long long ts, now = (long long)time(NULL);
	size_t n;
	char *end;

	if (!h)
		return 0;
	semi1 = strchr(h, ';');
	semi2 = semi1 ? strchr(semi1 + 1, ';') : NULL;
	if (!semi2 || (size_t)(semi1 - h) != VTP_UUID_BUFLEN - 1)
		goto bad;
	memcpy(node, h, VTP_UUID_BUFLEN - 1);
	node[VTP_UUID_BUFLEN - 1] = '\0';
	n = (size_t)(semi2 - semi1 - 1);
	if (!vtp_uuid_parse(node, node) || n == 0 || n >= sizeof(digits))
		goto bad;
	memcpy(digits, semi1 + 1, n);
	digits[n] = '\0';
	ts = strtoll(digits, &end, 10);
	if (*end || ts < now - FORWARD_MAX_SKEW || ts > now + FORWARD_MAX_SKEW)
		goto bad;
	mac = semi2 + 1;
	forward_mac(r->api, node, ts, r->method, r->params[0], r->params[1], want);
	if (strlen(mac) != strlen(want) || CRYPTO_memcmp(mac, want, strlen(want)) != 0)
		goto bad;
	return 1;
bad:
	vtp__reply_error(r, 400, "invalid_input", FORWARD_HEADER,
			 "%s is set by the recorder's nodes for each other; this one is not valid",
			 FORWARD_HEADER);
	return -1;
}

/* ---- relaying to the owner ------------------------------------------------------------ */

typedef struct relay {
	long status;
	vtp_buf body;
	vtp_buf headers;     /* the final answer's header lines, as received */
	bool too_big;
} relay;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	relay *rl = arg;

	if (vtp_buf_append(&rl->body, p, size * n) != 0) {
		rl->too_big = true;
		return 0;
	}
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	relay *rl = arg;

	if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0) /* a new (final) answer's headers */
		rl->headers.len = 0;
	if (vtp_buf_append(&rl->headers, p, size * n) != 0) {
		rl->too_big = true;
		return 0;
	}
	return size * n;
}

/* The value of header `name` in the relayed header lines, copied into out
 * (CR/LF and surrounding spaces removed); false when absent. */
static bool relayed_header(const relay *rl, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name), i = 0;

	while (i < rl->headers.len) {
		const char *line = rl->headers.data + i;
		const char *eol = memchr(line, '\n', rl->headers.len - i);
		size_t ll = eol ? (size_t)(eol - line) : rl->headers.len - i;

		i += ll + 1;
		if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1;
			size_t vl = ll - nl - 1;

			while (vl && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			snprintf(out, len, "%.*s", (int)vl, v);
			return true;
		}
	}
	return false;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The request's own headers that the owner needs to answer it as if it
 * had come straight from the client. */
static const char *const passed_headers[] = {
	"Authorization", "Content-Type", "If-Match", "If-None-Match", "Accept", "User-Agent",
};

/* The owner's answer headers that a client may act on (WHIP's ETag and
 * Link for ICE restarts and servers; Allow and Retry-After go through
 * r->allow and r->retry_after, Content-Type and Cache-Control apart). */
static const char *const relayed[] = {"ETag", "Location", "Link", "Accept-Patch"};

/* Sends the request to owner_url and replies with the owner's answer, or
 * 502 when the owner cannot be reached. */
static void forward(vtp_req *r, const char *owner_id, const char *owner_url)
{
	char mac[2 * EVP_MAX_MD_SIZE + 1], value[1024], cache[128] = "no-store";
	struct curl_slist *hs = NULL;
	struct MHD_Response *resp;
	const char *ctype = NULL;
	long long ts = (long long)time(NULL);
	vtp_buf url, line;
	CURLcode cc;
	relay rl;
	CURL *h;
	char *text;
	size_t len;

	pthread_once(&curl_once, curl_init);
	memset(&rl, 0, sizeof(rl));
	vtp_buf_init(&rl.body, FORWARD_BODY_MAX);
	vtp_buf_init(&rl.headers, FORWARD_HEADERS_MAX);
	vtp_buf_init(&url, 4096);
	vtp_buf_init(&line, 8192);
	vtp_buf_appends(&url, owner_url);
	if (url.len && url.data[url.len - 1] == '/')
		url.data[--url.len] = '\0';
	vtp_buf_appends(&url, "/whip/rooms/");
	url_encode(&url, r->params[0]);
	vtp_buf_appends(&url, "/sessions/");
	url_encode(&url, r->params[1]);
	for (size_t i = 0; i < sizeof(passed_headers) / sizeof(passed_headers[0]); i++) {
		/* framing_ok() (server.c) refused values holding CR or LF */
		const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							    passed_headers[i]);

		if (!v)
			continue;
		line.len = 0;
		vtp_buf_appendf(&line, "%s: %s", passed_headers[i], v);
		hs = curl_slist_append(hs, line.data);
	}
	forward_mac(r->api, r->api->cfg.node_id, ts, r->method, r->params[0], r->params[1], mac);
	line.len = 0;
	vtp_buf_appendf(&line, "%s: %s;%lld;%s", FORWARD_HEADER, r->api->cfg.node_id, ts, mac);
	hs = curl_slist_append(hs, line.data);
	hs = curl_slist_append(hs, "Expect:");
	h = curl_easy_init();
	if (!h || !url.data) {
		vtp__reply_error(r, 500, "internal", NULL, "cannot forward the request");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url.data);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, FORWARD_CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, FORWARD_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rl);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &rl);
	if (r->body.len) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body.data);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
	} else if (strcmp(r->method, "DELETE") != 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rl.status);
	if (cc != CURLE_OK || rl.status < 100 || rl.status > 599) {
		VTP_WARN("whip: cannot forward %s of session %s to node %s at %s: %s", r->method,
			 r->params[1], owner_id, owner_url,
			 rl.too_big ? "its answer is too large" : curl_easy_strerror(cc));
		vtp__reply_error(r, 502, "node_unreachable", NULL,
				 "the node that holds this WHIP session cannot be reached; try again, "
				 "or POST a new offer");
		goto out;
	}
	/* the owner's answer, as it gave it */
	relayed_header(&rl, "Allow", r->allow, sizeof(r->allow));
	relayed_header(&rl, "Retry-After", r->retry_after, sizeof(r->retry_after));
	text = vtp_buf_steal(&rl.body, &len);
	resp = text ? MHD_create_response_from_buffer_with_free_callback(len, text, vtp_free)
		    : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	for (size_t i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++) {
		if (relayed_header(&rl, relayed[i], value, sizeof(value)))
			MHD_add_response_header(resp, relayed[i], value);
	}
	if (relayed_header(&rl, "Content-Type", value, sizeof(value)))
		ctype = value;
	relayed_header(&rl, "Cache-Control", cache, sizeof(cache));
	vtp__reply_response(r, (int)rl.status, resp, ctype, cache);
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(hs);
	vtp_buf_free(&url);
	vtp_buf_free(&line);
	vtp_buf_free(&rl.body);
	vtp_buf_free(&rl.headers);
}

/* For a session this node does not hold: 404 when no node holds it, else
 * the owner's answer. may_forward false (the request was forwarded to us
 * already): a directory that names another node is a loop, 508. */
static void elsewhere(vtp_req *r, bool may_forward)
{
	char sid[VTP_UUID_BUFLEN], owner[VTP_UUID_BUFLEN];
	char *owner_url = NULL;
	int rc;

	if (!have_directory(r) || !vtp_uuid_parse(r->params[1], sid)) {
		vtp__reply_error(r, 404, "not_found", NULL, "no such WHIP session");
		return;
	}
	rc = vtp_store_whip_owner_get(r->api->cfg.store, sid, r->params[0], owner, &owner_url);
	if (rc == VTP_ENOTFOUND) {
		vtp__reply_error(r, 404, "not_found", NULL, "no such WHIP session");
		goto out;
	}
	if (rc) {
		vtp__reply_error(r, 503, "unavailable", NULL,
				 "the WHIP session directory cannot be read; try again");
		goto out;
	}
	if (strcmp(owner, r->api->cfg.node_id) == 0) {
		/* ours on paper only: the session ended without its row going
		 * (it ended while its POST was being answered) */
		if (!vtp_ingest_whip_exists(r->api->cfg.ingest, r->params[0], sid))
			vtp_store_whip_owner_remove(r->api->cfg.store, sid, owner);
		vtp__reply_error(r, 404, "not_found", NULL, "no such WHIP session");
		goto out;
	}
	if (!may_forward) {
		VTP_WARN("whip: %s of session %s was forwarded here but the directory names node "
			 "%s: refusing to forward it again", r->method, sid, owner);
		vtp__reply_error(r, 508, "forwarding_loop", NULL,
				 "this request was forwarded to this node already and the session "
				 "directory names another node; it is not forwarded again");
		goto out;
	}
	forward(r, owner, owner_url);
out:
	vtp_free(owner_url);
}

/* On a worker (the look-up and the round trip to the owner can take
 * seconds; the HTTP threads stay free, including for the owner being this
 * node after a bad directory row). */
static void elsewhere_work(vtp_req *r)
{
	elsewhere(r, true);
}

/* The request is for a session this node does not hold. */
static void not_here(vtp_req *r, int fwd)
{
	if (fwd == 1 || !have_directory(r))
		elsewhere(r, false);
	else
		vtp__defer(r, elsewhere_work);
}

/* ---- the endpoints ------------------------------------------------------------------- */

void vtp__h_whip_create(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	char session_id[VTP_UUID_BUFLEN], url[512];
	vtp_whip_publisher pub;
	struct MHD_Response *resp;
	vtp_buf answer, loc;
	const char *source;
	char *text;
	size_t len;

	if (!r->api->cfg.ingest) {
		vtp__reply_error(r, 503, "unavailable", NULL, "media ingest is not running");
		return;
	}
	pub.who = &r->actor;
	pub.full_name = r->user.full_name;
	source = vtp__query(r, "source");
	if (source && strcmp(source, "screen") != 0 && strcmp(source, "camera") != 0) {
		vtp__reply_error(r, 400, "invalid_input", "source",
				 "source must be camera (the default) or screen");
		return;
	}
	pub.screen = source && strcmp(source, "screen") == 0;
	vtp_buf_init(&answer, 64 * 1024);
	if (vtp_ingest_whip_create(r->api->cfg.ingest, &pub, r->params[0], r->body.data,
				   r->body.len, &answer, session_id, &fail)) {
		vtp_buf_free(&answer);
		reply_and_clear(r, &fail);
		return;
	}
	/* Other nodes find the session here. Without the row the session
	 * still works through this node: log, do not fail the publisher. */
	if (have_directory(r)) {
		own_node_url(r->api, url, sizeof(url));
		if (vtp_store_whip_owner_put(r->api->cfg.store, session_id, r->params[0],
					     r->api->cfg.node_id, url) != 0)
			VTP_WARN("whip session %s: cannot record its node in the database; "
				 "requests for it reaching other nodes will get 404", session_id);
	}
	vtp_buf_init(&loc, 4096);
	vtp_buf_appends(&loc, "/whip/rooms/");
	url_encode(&loc, r->params[0]);
	vtp_buf_appendf(&loc, "/sessions/%s", session_id);
	text = vtp_buf_steal(&answer, &len);
	resp = MHD_create_response_from_buffer_with_free_callback(len, text, vtp_free);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc.data);
	vtp_buf_free(&loc);
	vtp__reply_response(r, 201, resp, "application/sdp", "no-store");
}

void vtp__h_whip_delete(vtp_req *r)
{
	vtp_fail fail = VTP_FAIL_INIT;
	int fwd;

	if (!r->api->cfg.ingest) {
		vtp__reply_error(r, 503, "unavailable", NULL, "media ingest is not running");
		return;
	}
	if ((fwd = forwarded(r)) < 0)
		return;
	if (vtp_ingest_whip_delete(r->api->cfg.ingest, &r->actor, r->params[0], r->params[1],
				   &fail) == 0) {
		vtp__reply_json(r, 200,
				json_pack("{sb ss}", "success", 1, "sessionId", r->params[1]));
		return;
	}
	/* held here, by someone else (404 as for an unknown one), or a fault */
	if (fail.code != VTP_ENOTFOUND ||
	    vtp_ingest_whip_exists(r->api->cfg.ingest, r->params[0], r->params[1])) {
		reply_and_clear(r, &fail);
		return;
	}
	vtp_fail_clear(&fail);
	not_here(r, fwd);
}

void vtp__h_whip_patch(vtp_req *r)
{
	int fwd;

	if ((fwd = forwarded(r)) < 0)
		return;
	if (r->api->cfg.ingest &&
	    !vtp_ingest_whip_exists(r->api->cfg.ingest, r->params[0], r->params[1])) {
		not_here(r, fwd);
		return;
	}
	snprintf(r->allow, sizeof(r->allow), "DELETE, OPTIONS");
	vtp__reply_error(r, 405, "method_not_allowed", NULL,
			 "trickle ICE and ICE restarts (PATCH) are not supported: this server is "
			 "ICE-lite and its answer carries all its candidates; to reconnect, DELETE "
			 "the session and POST a new offer");
}

/* CORS preflight (and RFC 9725's OPTIONS): what may be sent. */
void vtp__h_whip_options(vtp_req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	bool session = r->params[1] != NULL;

	MHD_add_response_header(resp, "Access-Control-Allow-Methods",
				session ? "DELETE, PATCH, OPTIONS" : "POST, OPTIONS");
	MHD_add_response_header(resp, "Access-Control-Allow-Headers",
				"Authorization, Content-Type, If-Match");
	MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
	if (!session)
		MHD_add_response_header(resp, "Accept-Post", "application/sdp");
	snprintf(r->allow, sizeof(r->allow), "%s", session ? "DELETE, OPTIONS" : "POST, OPTIONS");
	vtp__reply_response(r, 204, resp, NULL, "no-store");
}
