/* Prometheus metrics for the HTTP API: request counters by route and status
 * and one latency histogram, kept in relaxed atomics (no lock on the request
 * path); then the processing jobs' counters (src/jobs). */
#include "api_int.h"

#include "jobs/jobs.h"

#include <stdatomic.h>
#include <stdio.h>

static const int statuses[] = {200, 201, 202, 204, 206, 302, 304, 400, 401, 403, 404,
			       405, 409, 413, 415, 416, 429, 500, 503};
#define N_STATUS (int)(sizeof(statuses) / sizeof(statuses[0]))
#define MAX_ROUTES 64

/* bucket upper bounds in microseconds */
static const int64_t bounds_us[] = {250, 500, 1000, 2500, 5000, 10000, 25000,
				    50000, 100000, 250000, 500000, 1000000, 5000000};
#define N_BUCKETS (int)(sizeof(bounds_us) / sizeof(bounds_us[0]))

static atomic_ullong counts[MAX_ROUTES + 1][N_STATUS + 1];
static atomic_ullong buckets[N_BUCKETS + 1];
static atomic_ullong sum_us;
static atomic_ullong total;

void vtp__metrics_observe(int route_index, int status, int64_t micros)
{
	int ri = route_index >= 0 && route_index < MAX_ROUTES ? route_index : MAX_ROUTES;
	int si = N_STATUS, b = N_BUCKETS;

	for (int i = 0; i < N_STATUS; i++)
		if (statuses[i] == status)
			si = i;
	atomic_fetch_add_explicit(&counts[ri][si], 1, memory_order_relaxed);
	for (int i = 0; i < N_BUCKETS; i++)
		if (micros <= bounds_us[i]) {
			b = i;
			break;
		}
	atomic_fetch_add_explicit(&buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sum_us, (unsigned long long)(micros > 0 ? micros : 0),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&total, 1, memory_order_relaxed);
}

void vtp__metrics_render(vtp_buf *out, int64_t active_recordings, uint64_t audit_lost)
{
	unsigned long long cum = 0;

	vtp_buf_appends(out, "# HELP vtp_http_requests_total HTTP requests by route and status.\n"
			     "# TYPE vtp_http_requests_total counter\n");
	for (int ri = 0; ri <= MAX_ROUTES; ri++) {
		const char *name = ri < vtp__route_count ? vtp__routes[ri].name
							  : (ri == MAX_ROUTES ? "unmatched" : NULL);

		if (!name)
			continue;
		for (int si = 0; si <= N_STATUS; si++) {
			unsigned long long v = atomic_load_explicit(&counts[ri][si], memory_order_relaxed);
			char status[8];

			if (!v)
				continue;
			if (si < N_STATUS)
				snprintf(status, sizeof(status), "%d", statuses[si]);
			else
				snprintf(status, sizeof(status), "other");
			vtp_buf_appendf(out, "vtp_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
					name, ri < vtp__route_count ? vtp__routes[ri].method : "any",
					status, v);
		}
	}
	vtp_buf_appends(out, "# HELP vtp_http_request_duration_seconds HTTP request latency.\n"
			     "# TYPE vtp_http_request_duration_seconds histogram\n");
	for (int b = 0; b <= N_BUCKETS; b++) {
		cum += atomic_load_explicit(&buckets[b], memory_order_relaxed);
		if (b < N_BUCKETS)
			vtp_buf_appendf(out, "vtp_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
					(double)bounds_us[b] / 1e6, cum);
		else
			vtp_buf_appendf(out, "vtp_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	}
	vtp_buf_appendf(out, "vtp_http_request_duration_seconds_sum %.6f\n",
			(double)atomic_load_explicit(&sum_us, memory_order_relaxed) / 1e6);
	vtp_buf_appendf(out, "vtp_http_request_duration_seconds_count %llu\n",
			atomic_load_explicit(&total, memory_order_relaxed));
	vtp_buf_appends(out, "# HELP vtp_recordings_active Recordings in status pending or recording.\n"
			     "# TYPE vtp_recordings_active gauge\n");
	vtp_buf_appendf(out, "vtp_recordings_active %lld\n", (long long)active_recordings);
	vtp_buf_appends(out, "# HELP vtp_audit_entries_lost_total Access-log entries that could not be written.\n"
			     "# TYPE vtp_audit_entries_lost_total counter\n");
	vtp_buf_appendf(out, "vtp_audit_entries_lost_total %llu\n", (unsigned long long)audit_lost);
	vtp_jobs_metrics(out);
}
