/* Tracks for the composer: reading a capture's header, scanning its packets
 * once (frames, sizes, sender reports, arrival samples), mapping its RTP
 * clock to the recorder clock, and streaming its frames again in order.
 *
 * The clock map. Every RTP packet gives a sample d = arrival - s, where s
 * is the packet's sender time (its RTP timestamp in ns, plus a constant
 * from the RTCP sender reports when they are used). d is the offset
 * between the sender's clock and ours plus the network (and encoder) delay
 * of that packet. Delay is never negative, so the true offset is a line
 * below every sample; the lower convex hull of the samples is the closest
 * convex function that is, and it follows a slow drift. We keep the
 * minimum sample of each second of sender time and take the hull of those.
 *
 * Lip sync. The two tracks of a peer have independent RTP clocks with
 * random origins. When every track of the peer has sender reports, each
 * RTP clock is tied to the sender's NTP clock (median of ntp - rtp over its
 * reports), and one hull is built from the samples of all the peer's tracks
 * in that common time, so they keep the sender's relative timing exactly.
 * Without reports, each track has its own hull, which is right whenever
 * audio and video took the same minimum path. */
#include "compose/compose_int.h"

#include <jansson.h>
#include <libavcodec/avcodec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "rtp/rtp.h"

#define REORDER_WINDOW 512
#define BUCKET_NS 1000000000LL

typedef struct sample {
	uint64_t ext_ts;
	int64_t arrival;
} sample;

/* Scan state kept only while scanning and mapping. */
typedef struct scan_priv {
	sample *b;          /* per-second minimum samples */
	size_t n, cap;
	int64_t *c;         /* ntp - rtp_ns per sender report */
	size_t nc, capc;
} scan_priv;

/* ---- small helpers ------------------------------------------------------- */

static void *memdup(const void *p, size_t n)
{
	void *q = vtp_malloc(n ? n : 1);
	memcpy(q, p, n);
	return q;
}

static int64_t ts_ns(uint64_t ext_ts, uint32_t clock)
{
	/* ext_ts < 2^40 in practice; 2^40 * 1e9 overflows, so split. */
	uint64_t sec = ext_ts / clock, rem = ext_ts % clock;
	return (int64_t)(sec * 1000000000ULL + rem * 1000000000ULL / clock);
}

static int64_t ntp_ns(uint64_t ntp)
{
	uint64_t sec = ntp >> 32, frac = ntp & 0xffffffffULL;
	return (int64_t)(sec * 1000000000ULL + ((frac * 1000000000ULL) >> 32));
}

static char *meta_str(json_t *m, const char *k)
{
	json_t *v = json_object_get(m, k);
	return json_is_string(v) ? vtp_strdup(json_string_value(v)) : NULL;
}

bool vtp__vp8_keyframe_size(const uint8_t *p, size_t n, int *w, int *h)
{
	/* RFC 6386 9.1: 3-byte frame tag (bit 0 = 0 on keyframes), start code
	 * 9d 01 2a, then 14-bit width and height (2 bits of scaling each). */
	if (n < 10 || (p[0] & 1) != 0 || p[3] != 0x9d || p[4] != 0x01 || p[5] != 0x2a)
		return false;
	*w = (p[6] | p[7] << 8) & 0x3fff;
	*h = (p[8] | p[9] << 8) & 0x3fff;
	return *w > 0 && *h > 0;
}

size_t vtp__h264_params(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0, i = 0;
	while (i + 4 <= n) {
		if (!(p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 0 && p[i + 3] == 1)) {
			i++;
			continue;
		}
		size_t s = i + 4, e = s;
		while (e + 4 <= n && !(p[e] == 0 && p[e + 1] == 0 && p[e + 2] == 0 && p[e + 3] == 1))
			e++;
		if (e + 4 > n)
			e = n;
		int type = s < n ? p[s] & 0x1f : 0;
		if ((type == 7 || type == 8) && (!out || o + (e - i) <= cap)) {
			if (out)
				memcpy(out + o, p + i, e - i);
			o += e - i;
		}
		i = e;
	}
	return o;
}

/* ---- scanning ------------------------------------------------------------- */

static void add_sample(vtp__ctrack *t, scan_priv *sp, uint64_t ext_ts, int64_t arrival)
{
	uint64_t b = (ext_ts - t->first_ext_ts) / t->clock; /* second of RTP time */
	int64_t d = arrival - ts_ns(ext_ts, t->clock);
	if (b >= sp->n) {
		if (b > 1000000)  /* > 11 days: a timestamp jump, not media */
			return;
		if (b >= sp->cap) {
			size_t nc = sp->cap ? sp->cap : 64;
			while (nc <= b)
				nc *= 2;
			sp->b = vtp_realloc(sp->b, nc * sizeof *sp->b);
			sp->cap = nc;
		}
		for (size_t i = sp->n; i <= b; i++)
			sp->b[i].ext_ts = 0;
		sp->n = b + 1;
	}
	sample *s = &sp->b[b];
	if (s->ext_ts == 0 || d < s->arrival - ts_ns(s->ext_ts, t->clock)) {
		s->ext_ts = ext_ts;
		s->arrival = arrival;
	}
}

static void add_sr(scan_priv *sp, uint64_t ext_rtp, uint32_t clock, uint64_t ntp)
{
	if (sp->nc == sp->capc) {
		sp->capc = sp->capc ? sp->capc * 2 : 16;
		sp->c = vtp_realloc(sp->c, sp->capc * sizeof *sp->c);
	}
	sp->c[sp->nc++] = ntp_ns(ntp) - ts_ns(ext_rtp, clock);
}

/* The 64-bit extension of a 32-bit timestamp nearest to ref. */
static uint64_t unwrap_near(uint64_t ref, uint32_t ts)
{
	uint64_t base = ref & ~0xffffffffULL;
	uint64_t best = base | ts;
	int64_t diff = (int64_t)(best - ref);
	if (diff > (int64_t)0x80000000LL && best >= 0x100000000ULL)
		best -= 0x100000000ULL;
	else if (diff < -(int64_t)0x80000000LL)
		best += 0x100000000ULL;
	return best;
}

static bool parse_meta(vtp__ctrack *t, const char *meta, char *err, size_t errlen)
{
	json_error_t je;
	json_t *m = json_loads(meta, 0, &je);
	if (!json_is_object(m)) {
		snprintf(err, errlen, "header metadata is not a JSON object");
		json_decref(m);
		return false;
	}
	t->track_id = meta_str(m, "trackId");
	t->peer_id = meta_str(m, "peerId");
	t->full_name = meta_str(m, "fullName");
	const char *kind = json_string_value(json_object_get(m, "kind"));
	const char *codec = json_string_value(json_object_get(m, "codec"));
	json_t *pt = json_object_get(m, "payloadType");
	json_t *clock = json_object_get(m, "clockRate");
	bool ok = false;
	if (!t->peer_id || !kind || !codec || vtp_codec_parse(codec, &t->codec) != 0) {
		snprintf(err, errlen, "header metadata lacks peerId, kind or a known codec");
	} else if (strcmp(kind, "audio") != 0 && strcmp(kind, "video") != 0) {
		snprintf(err, errlen, "unknown kind");
	} else if ((strcmp(kind, "video") == 0) != (t->codec != VTP_CODEC_OPUS)) {
		snprintf(err, errlen, "kind %s does not match codec %s", kind, codec);
	} else {
		t->video = strcmp(kind, "video") == 0;
		t->source = vtp__source_parse(json_string_value(json_object_get(m, "source")),
					      t->video);
		const char *role = json_string_value(json_object_get(m, "role"));
		t->instructor = role && strcmp(role, "instructor") == 0;
		t->user_id = meta_str(m, "userId");
		t->pt = json_is_integer(pt) ? (int)json_integer_value(pt) : -1;
		json_int_t cr = json_is_integer(clock) ? json_integer_value(clock)
						       : (t->video ? 90000 : 48000);
		if (cr < 8000 || cr > 192000)
			snprintf(err, errlen, "clock rate %lld out of range", (long long)cr);
		else {
			t->clock = (uint32_t)cr;
			ok = true;
		}
	}
	if (!t->full_name)
		t->full_name = vtp_strdup(t->peer_id ? t->peer_id : "?");
	json_decref(m);
	return ok;
}

static void h264_size(AVCodecParserContext **pc, AVCodecContext **pctx,
		      const vtp_frame *f, int *w, int *h)
{
	if (!*pc) {
		*pc = av_parser_init(AV_CODEC_ID_H264);
		*pctx = avcodec_alloc_context3(NULL);
		if (!*pc || !*pctx)
			return;
		(*pc)->flags |= PARSER_FLAG_COMPLETE_FRAMES;
	}
	uint8_t *out;
	int outlen;
	av_parser_parse2(*pc, *pctx, &out, &outlen, f->data, (int)f->len,
			 AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
	if ((*pc)->width > 0 && (*pc)->height > 0) {
		*w = (*pc)->width;
		*h = (*pc)->height;
	}
}

int vtp__ctrack_scan(vtp__ctrack *t, const char *path, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	t->path = vtp_strdup(path);
	scan_priv *sp = vtp_calloc(1, sizeof *sp);
	t->scan = sp;
	vtp_capr *r = NULL;
	if (vtp_capr_open(path, &r, err, errlen) != 0)
		return -1;
	if (!parse_meta(t, vtp_capr_meta(r), err, errlen)) {
		vtp_capr_close(r);
		return -1;
	}
	vtp_reorder *ro = vtp_reorder_new(REORDER_WINDOW);
	vtp_depack *dp = vtp_depack_new(t->codec);
	vtp_cap_rebase *rb = vtp_cap_rebase_new(t->clock);
	AVCodecParserContext *pc = NULL;
	AVCodecContext *pctx = NULL;
	uint64_t raw_ext = 0;
	size_t kf_cap = 0;
	bool have_ts = false, have_raw = false;
	vtp_cap_record rec;
	int rc;
	for (;;) {
		rc = vtp_capr_next(r, &rec);
		if (rc == VTP_CAPR_RECORD) {
			/* one timeline across the senders it followed; notes and gap
			 * records (not written, disk full: the seq gap says it) skipped */
			if (!vtp_cap_rebase_apply(rb, &rec))
				continue;
			if (rec.kind == VTP_CAP_RTCP) {
				vtp_rtcp_info info;
				if (have_raw && vtp_rtcp_parse(rec.data, rec.len, &info) == 0 &&
				    info.has_sr && info.sr.ntp != 0)
					add_sr(sp, unwrap_near(raw_ext, info.sr.rtp_ts), t->clock,
					       info.sr.ntp);
				continue;
			}
			vtp_rtp h;
			if (vtp_rtp_parse(rec.data, rec.len, &h) != 0 ||
			    (t->pt >= 0 && h.pt != t->pt))
				continue;
			/* The same extension as the reorderer's (2^32 + the first
			 * timestamp, then nearest), for sender reports that come
			 * before it releases anything. */
			raw_ext = have_raw ? unwrap_near(raw_ext, h.ts) : (1ULL << 32) | h.ts;
			have_raw = true;
			vtp_reorder_push(ro, rec.data, rec.len, rec.arrival_ns);
		} else {
			vtp_reorder_end(ro);
		}
		vtp_ordered_pkt p;
		while (vtp_reorder_pop(ro, &p)) {
			if (!have_ts) {
				t->first_ext_ts = p.ext_ts;
				have_ts = true;
			}
			t->rtp_packets++;
			if (p.ext_ts >= t->first_ext_ts)
				add_sample(t, sp, p.ext_ts, (int64_t)p.arrival_ns);
			vtp_depack_push(dp, &p);
			vtp_frame f;
			while (vtp_depack_pop(dp, &f)) {
				if (t->frames == 0)
					t->first_ext_ts = f.ext_ts;
				else if (f.ext_ts > t->last_ext_ts &&
					 (t->min_step == 0 || f.ext_ts - t->last_ext_ts < t->min_step))
					t->min_step = f.ext_ts - t->last_ext_ts;
				t->frames++;
				t->last_ext_ts = f.ext_ts;
				if (!t->video || !f.keyframe)
					continue;
				t->keyframes++;
				if (t->nkf == kf_cap) {
					kf_cap = kf_cap ? kf_cap * 2 : 64;
					t->kf_ts = vtp_realloc(t->kf_ts, kf_cap * sizeof *t->kf_ts);
				}
				t->kf_ts[t->nkf++] = f.ext_ts;
				int w = 0, hh = 0;
				if (t->codec == VTP_CODEC_VP8)
					vtp__vp8_keyframe_size(f.data, f.len, &w, &hh);
				else
					h264_size(&pc, &pctx, &f, &w, &hh);
				if (w <= 0)
					continue;
				if (t->width == 0) {
					t->width = w;
					t->height = hh;
				} else if (w != t->width || hh != t->height) {
					t->size_changed = true;
				}
			}
		}
		if (rc != VTP_CAPR_RECORD) {
			vtp_depack_end(dp);
			vtp_frame f;
			while (vtp_depack_pop(dp, &f)) {
				if (t->frames == 0)
					t->first_ext_ts = f.ext_ts;
				t->frames++;
				t->last_ext_ts = f.ext_ts;
			}
			break;
		}
	}
	t->cap_end = rc;
	{
		size_t ns;
		const vtp_cap_segment *sg = vtp_capr_segments(r, &ns);

		for (size_t i = 0; i < ns; i++) {
			t->segments_missing += sg[i].missing_before;
			if (i + 1 < ns && sg[i].read && sg[i].end != VTP_CAPR_END)
				t->segments_cut++;
		}
	}
	if (pc)
		av_parser_close(pc);
	avcodec_free_context(&pctx);
	vtp_depack_free(dp);
	vtp_reorder_free(ro);
	vtp_cap_rebase_free(rb);
	vtp_capr_close(r);
	if (rc == VTP_CAPR_IOERR) {
		snprintf(err, errlen, "read error");
		return -1;
	}
	return 0;
}

static scan_priv *priv_of(vtp__ctrack *t)
{
	return t->scan;
}

static void priv_free(vtp__ctrack *t)
{
	scan_priv *sp = priv_of(t);
	if (sp) {
		vtp_free(sp->b);
		vtp_free(sp->c);
		vtp_free(sp);
		t->scan = NULL;
	}
}

void vtp__ctrack_clear(vtp__ctrack *t)
{
	priv_free(t);
	vtp_free(t->env.x);
	vtp_free(t->env.y);
	vtp_free(t->kf_ts);
	vtp_free(t->user_id);
	vtp_free(t->path);
	vtp_free(t->track_id);
	vtp_free(t->peer_id);
	vtp_free(t->full_name);
	memset(t, 0, sizeof *t);
}

/* ---- clock mapping --------------------------------------------------------- */

typedef struct pt2 {
	int64_t x, y;
} pt2;

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_pt(const void *a, const void *b)
{
	const pt2 *p = a, *q = b;
	return p->x < q->x ? -1 : p->x > q->x ? 1 : (p->y < q->y ? -1 : p->y > q->y);
}

/* (b - a) x (c - a) in long double: ns values times ns values overflow
 * int64. <= 0 means b is not below the segment a-c (drop it). */
static long double cross(pt2 a, pt2 b, pt2 c)
{
	return (long double)(b.x - a.x) * (long double)(c.y - a.y) -
	       (long double)(b.y - a.y) * (long double)(c.x - a.x);
}

static void hull(pt2 *p, size_t n, vtp__envelope *env)
{
	if (n) /* a track that received nothing has no samples (p NULL) */
		qsort(p, n, sizeof *p, cmp_pt);
	pt2 *h = vtp_malloc((n ? n : 1) * sizeof *h);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && h[k - 1].x == p[i].x)
			continue; /* same x, higher y (sorted): not on the lower hull */
		while (k >= 2 && cross(h[k - 2], h[k - 1], p[i]) <= 0)
			k--;
		h[k++] = p[i];
	}
	env->x = vtp_malloc((k ? k : 1) * sizeof *env->x);
	env->y = vtp_malloc((k ? k : 1) * sizeof *env->y);
	for (size_t i = 0; i < k; i++) {
		env->x[i] = h[i].x;
		env->y[i] = h[i].y;
	}
	env->n = k;
	vtp_free(h);
}

static int64_t env_eval(const vtp__envelope *e, int64_t x)
{
	if (e->n == 0)
		return 0;
	if (x <= e->x[0])
		return e->y[0];
	if (x >= e->x[e->n - 1])
		return e->y[e->n - 1];
	size_t lo = 0, hi = e->n - 1;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (e->x[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	long double f = (long double)(x - e->x[lo]) / (long double)(e->x[hi] - e->x[lo]);
	return e->y[lo] + (int64_t)(f * (long double)(e->y[hi] - e->y[lo]));
}

int64_t vtp__ctrack_sender_ns(const vtp__ctrack *t, uint64_t ext_ts)
{
	int64_t s = ts_ns(ext_ts, t->clock);
	if (t->use_sr)
		s += t->sr_offset;
	return s;
}

int64_t vtp__ctrack_map(const vtp__ctrack *t, uint64_t ext_ts)
{
	int64_t s = vtp__ctrack_sender_ns(t, ext_ts);
	return s + env_eval(&t->env, s);
}

/* Appends track t's samples (in its sender time) to *pts: per second of
 * sender time the smallest offset seen, then, over a window of 11 seconds
 * around it, the second smallest of those. A sender that bursts ahead of
 * real time for a moment (a start-up queue) makes a few seconds look
 * early; one such second cannot pull the envelope down. Returns the
 * smallest offset kept. */
#define SMOOTH_HALF 5
static int64_t collect(vtp__ctrack *t, scan_priv *sp, pt2 **pts, size_t *n, size_t *cap)
{
	size_t m = 0;
	pt2 *raw = vtp_malloc((sp->n ? sp->n : 1) * sizeof *raw);
	for (size_t i = 0; i < sp->n; i++) {
		if (sp->b[i].ext_ts == 0)
			continue;
		int64_t s = vtp__ctrack_sender_ns(t, sp->b[i].ext_ts);
		raw[m].x = s;
		raw[m].y = sp->b[i].arrival - s;
		m++;
	}
	int64_t dmin = INT64_MAX;
	for (size_t i = 0; i < m; i++) {
		size_t lo = i >= SMOOTH_HALF ? i - SMOOTH_HALF : 0;
		size_t hi = i + SMOOTH_HALF < m ? i + SMOOTH_HALF : m - 1;
		int64_t a = INT64_MAX, b = INT64_MAX; /* smallest, second smallest */
		for (size_t k = lo; k <= hi; k++) {
			if (raw[k].y < a) {
				b = a;
				a = raw[k].y;
			} else if (raw[k].y < b) {
				b = raw[k].y;
			}
		}
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			*pts = vtp_realloc(*pts, *cap * sizeof **pts);
		}
		pt2 q = {raw[i].x, hi - lo >= 2 && b != INT64_MAX ? b : a};
		(*pts)[(*n)++] = q;
		if (q.y < dmin)
			dmin = q.y;
	}
	vtp_free(raw);
	return dmin;
}

static void set_sr_constant(vtp__ctrack *t, scan_priv *sp)
{
	/* One constant per track: the median of ntp - rtp over its reports. */
	qsort(sp->c, sp->nc, sizeof *sp->c, cmp_i64);
	t->sr_offset = sp->c[sp->nc / 2];
}

int vtp__ctracks_map(vtp__ctrack *t, size_t n)
{
	scan_priv **sp = vtp_calloc(n ? n : 1, sizeof *sp);
	bool *done = vtp_calloc(n ? n : 1, sizeof *done);
	for (size_t i = 0; i < n; i++)
		sp[i] = priv_of(&t[i]);
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		/* The tracks of this peer, and whether all have reports. */
		bool all_sr = true;
		size_t members = 0;
		for (size_t j = i; j < n; j++)
			if (!done[j] && t[j].peer == t[i].peer && t[j].frames > 0) {
				members++;
				all_sr = all_sr && sp[j]->nc > 0;
			}
		pt2 *pts = NULL;
		size_t np = 0, cap = 0;
		if (members >= 2 && all_sr) {
			/* Each track's own envelope in the common (NTP) time;
			 * the peer's is their pointwise minimum, sampled at
			 * every breakpoint of any of them. */
			int64_t lo = INT64_MAX, hi = INT64_MIN;
			size_t nx = 0;
			for (size_t j = i; j < n; j++)
				if (!done[j] && t[j].peer == t[i].peer && t[j].frames > 0) {
					set_sr_constant(&t[j], sp[j]);
					t[j].use_sr = true;
					np = 0;
					int64_t d = collect(&t[j], sp[j], &pts, &np, &cap);
					lo = d < lo ? d : lo;
					hi = d > hi ? d : hi;
					hull(pts, np, &t[j].env);
					nx += t[j].env.n;
				}
			/* Reports that disagree with arrivals by more than half a
			 * second are not from one sane clock: map each track alone. */
			if (hi - lo > 500000000LL) {
				for (size_t j = i; j < n; j++)
					if (t[j].peer == t[i].peer && t[j].use_sr) {
						t[j].use_sr = false;
						vtp_free(t[j].env.x);
						vtp_free(t[j].env.y);
						memset(&t[j].env, 0, sizeof t[j].env);
					}
			} else {
				pt2 *m = vtp_malloc((nx ? nx : 1) * sizeof *m);
				size_t nm = 0;
				for (size_t j = i; j < n; j++)
					if (t[j].use_sr && t[j].peer == t[i].peer)
						for (size_t k = 0; k < t[j].env.n; k++)
							m[nm++].x = t[j].env.x[k];
				for (size_t k = 0; k < nm; k++) {
					m[k].y = INT64_MAX;
					for (size_t j = i; j < n; j++)
						if (t[j].use_sr && t[j].peer == t[i].peer) {
							int64_t y = env_eval(&t[j].env, m[k].x);
							if (y < m[k].y)
								m[k].y = y;
						}
				}
				qsort(m, nm, sizeof *m, cmp_pt);
				vtp__envelope env = {vtp_malloc((nm ? nm : 1) * sizeof(int64_t)),
						    vtp_malloc((nm ? nm : 1) * sizeof(int64_t)), 0};
				for (size_t k = 0; k < nm; k++)
					if (env.n == 0 || env.x[env.n - 1] != m[k].x) {
						env.x[env.n] = m[k].x;
						env.y[env.n++] = m[k].y;
					}
				vtp_free(m);
				for (size_t j = i; j < n; j++)
					if (t[j].use_sr && t[j].peer == t[i].peer) {
						priv_free(&t[j]);
						vtp_free(t[j].env.x);
						vtp_free(t[j].env.y);
						t[j].env.n = env.n;
						t[j].env.x = memdup(env.x, env.n * sizeof *env.x);
						t[j].env.y = memdup(env.y, env.n * sizeof *env.y);
						done[j] = true;
					}
				vtp_free(env.x);
				vtp_free(env.y);
			}
		}
		vtp_free(pts);
		if (done[i])
			continue;
		/* Alone: the track's own samples. */
		for (size_t j = i; j < n; j++) {
			if (done[j] || t[j].peer != t[i].peer)
				continue;
			pts = NULL;
			np = cap = 0;
			collect(&t[j], sp[j], &pts, &np, &cap);
			priv_free(&t[j]);
			hull(pts, np, &t[j].env);
			vtp_free(pts);
			done[j] = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (t[i].frames == 0)
			continue;
		int64_t fdur = t[i].video ? 33333333 : 20000000;
		t[i].start_ns = vtp__ctrack_map(&t[i], t[i].first_ext_ts);
		t[i].end_ns = vtp__ctrack_map(&t[i], t[i].last_ext_ts) + fdur;
	}
	vtp_free(sp);
	vtp_free(done);
	return 0;
}

/* ---- frame streaming (pass 2) ------------------------------------------- */

struct vtp__fsrc {
	vtp_capr *r;
	vtp_reorder *ro;
	vtp_depack *dp;
	vtp_cap_rebase *rb; /* one timeline across the senders it followed */
	int pt;
	bool ended;
};

vtp__fsrc *vtp__fsrc_open(const vtp__ctrack *t)
{
	char err[128];
	vtp_capr *r;
	if (vtp_capr_open(t->path, &r, err, sizeof err) != 0)
		return NULL;
	vtp__fsrc *s = vtp_calloc(1, sizeof *s);
	s->r = r;
	s->ro = vtp_reorder_new(REORDER_WINDOW);
	s->dp = vtp_depack_new(t->codec);
	s->rb = vtp_cap_rebase_new(t->clock);
	s->pt = t->pt;
	return s;
}

void vtp__fsrc_close(vtp__fsrc *s)
{
	if (!s)
		return;
	vtp_capr_close(s->r);
	vtp_reorder_free(s->ro);
	vtp_depack_free(s->dp);
	vtp_cap_rebase_free(s->rb);
	vtp_free(s);
}

bool vtp__fsrc_next(vtp__fsrc *s, vtp_frame *f)
{
	for (;;) {
		if (vtp_depack_pop(s->dp, f))
			return true;
		vtp_ordered_pkt p;
		if (vtp_reorder_pop(s->ro, &p)) {
			vtp_depack_push(s->dp, &p);
			continue;
		}
		if (s->ended)
			return false;
		vtp_cap_record rec;
		int rc = vtp_capr_next(s->r, &rec);
		if (rc != VTP_CAPR_RECORD) {
			vtp_reorder_end(s->ro);
			while (vtp_reorder_pop(s->ro, &p))
				vtp_depack_push(s->dp, &p);
			vtp_depack_end(s->dp);
			s->ended = true;
			continue;
		}
		vtp_rtp h;
		if (!vtp_cap_rebase_apply(s->rb, &rec) || rec.kind != VTP_CAP_RTP ||
		    vtp_rtp_parse(rec.data, rec.len, &h) != 0 ||
		    (s->pt >= 0 && h.pt != s->pt))
			continue;
		vtp_reorder_push(s->ro, rec.data, rec.len, rec.arrival_ns);
	}
}

uint64_t vtp__fsrc_dropped(const vtp__fsrc *s)
{
	return vtp_depack_dropped_incomplete(s->dp) + vtp_depack_skipped_until_keyframe(s->dp);
}
