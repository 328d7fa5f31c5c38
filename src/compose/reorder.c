/* Reordering half of depack.h: RTP packets back in sequence order.
 * Sequence numbers and timestamps are extended to 64 bits by picking the
 * value closest to the newest packet's (so wraps work in both directions);
 * the first packet starts in cycle 1, not 0, so that a packet from before a
 * wrap arriving late still extends to a smaller value. Held packets sit in a
 * binary min-heap keyed by ext_seq, each a private copy; the lowest leaves
 * once more than `window` are held, so a caller that pops after every push
 * holds at most window + 1 packets. A bitmap of the last HISTORY released
 * sequence numbers tells a duplicate of a released packet from one that
 * simply came too late. */
#include "depack.h"

#include <string.h>

#include "core/mem.h"

#define SEQ_CYCLE (1ull << 16)
#define TS_CYCLE (1ull << 32)
#define HISTORY 1024u /* bits in the released-sequence bitmap */

typedef struct held_pkt {
	uint64_t ext_seq;
	uint64_t ext_ts;
	uint64_t arrival_ns;
	uint8_t *data;
	size_t len;
} held_pkt;

struct vtp_reorder {
	size_t window;
	held_pkt *heap;
	size_t count;
	size_t cap;
	bool ended;
	bool started;
	uint64_t highest_seq;    /* highest ext_seq taken */
	uint64_t highest_ts;     /* ext_ts of that packet */
	bool released_any;
	uint64_t last_released;
	uint64_t released_bits[HISTORY / 64];
	uint8_t *handed;         /* data of the last pop, freed at the next */
	uint64_t duplicates;
	uint64_t too_late;
	uint64_t malformed;
};

/* Two's complement readings of wrapped differences, without relying on the
 * implementation-defined unsigned-to-signed conversion. */
static int64_t as_signed16(uint16_t v)
{
	return v < 0x8000u ? (int64_t)v : (int64_t)v - 0x10000;
}

static int64_t as_signed32(uint32_t v)
{
	return v < 0x80000000u ? (int64_t)v : (int64_t)v - 0x100000000ll;
}

vtp_reorder *vtp_reorder_new(size_t window)
{
	vtp_reorder *r = vtp_calloc(1, sizeof(*r));

	r->window = window;
	r->cap = window + 1 < 16 ? 16 : window + 1;
	r->heap = vtp_malloc(r->cap * sizeof(*r->heap));
	return r;
}

void vtp_reorder_free(vtp_reorder *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->count; i++)
		vtp_free(r->heap[i].data);
	vtp_free(r->heap);
	vtp_free(r->handed);
	vtp_free(r);
}

/* ---- released history ------------------------------------------------------ */

static bool bit_get(const vtp_reorder *r, uint64_t seq)
{
	uint64_t i = seq % HISTORY;

	return r->released_bits[i / 64] >> (i % 64) & 1;
}

static void bit_put(vtp_reorder *r, uint64_t seq, bool on)
{
	uint64_t i = seq % HISTORY;
	uint64_t mask = 1ull << (i % 64);

	if (on)
		r->released_bits[i / 64] |= mask;
	else
		r->released_bits[i / 64] &= ~mask;
}

static bool was_released(const vtp_reorder *r, uint64_t seq)
{
	if (!r->released_any || seq > r->last_released ||
	    r->last_released - seq >= HISTORY)
		return false;
	return bit_get(r, seq);
}

/* The bitmap covers (last_released - HISTORY, last_released]: the sequence
 * numbers skipped on the way to `seq` were never released. */
static void mark_released(vtp_reorder *r, uint64_t seq)
{
	if (!r->released_any || seq - r->last_released > HISTORY) {
		memset(r->released_bits, 0, sizeof(r->released_bits));
	} else {
		for (uint64_t s = r->last_released + 1; s < seq; s++)
			bit_put(r, s, false);
	}
	bit_put(r, seq, true);
	r->released_any = true;
	r->last_released = seq;
}

/* ---- heap ------------------------------------------------------------------- */

static void heap_swap(held_pkt *a, held_pkt *b)
{
	held_pkt t = *a;

	*a = *b;
	*b = t;
}

static void heap_insert(vtp_reorder *r, const held_pkt *p)
{
	size_t i;

	if (r->count == r->cap) {
		r->cap *= 2;
		r->heap = vtp_realloc(r->heap, r->cap * sizeof(*r->heap));
	}
	i = r->count++;
	r->heap[i] = *p;
	while (i > 0 && r->heap[(i - 1) / 2].ext_seq > r->heap[i].ext_seq) {
		heap_swap(&r->heap[(i - 1) / 2], &r->heap[i]);
		i = (i - 1) / 2;
	}
}

static held_pkt heap_take_min(vtp_reorder *r)
{
	held_pkt min = r->heap[0];
	size_t i = 0;

	r->heap[0] = r->heap[--r->count];
	for (;;) {
		size_t l = 2 * i + 1, rr = l + 1, m = i;

		if (l < r->count && r->heap[l].ext_seq < r->heap[m].ext_seq)
			m = l;
		if (rr < r->count && r->heap[rr].ext_seq < r->heap[m].ext_seq)
			m = rr;
		if (m == i)
			break;
		heap_swap(&r->heap[i], &r->heap[m]);
		i = m;
	}
	return min;
}

/* Only a packet at or below the highest taken can be held already; an
 * in-order stream never scans. */
static bool is_held(const vtp_reorder *r, uint64_t ext_seq)
{
	for (size_t i = 0; i < r->count; i++)
		if (r->heap[i].ext_seq == ext_seq)
			return true;
	return false;
}

/* ---- API -------------------------------------------------------------------- */

void vtp_reorder_push(vtp_reorder *r, const uint8_t *pkt, size_t len, uint64_t arrival_ns)
{
	vtp_rtp rtp;
	held_pkt h;

	if (vtp_rtp_parse(pkt, len, &rtp) != 0) {
		r->malformed++;
		return;
	}
	if (!r->started) {
		h.ext_seq = SEQ_CYCLE + rtp.seq;
		h.ext_ts = TS_CYCLE + rtp.ts;
	} else {
		h.ext_seq = r->highest_seq +
			    (uint64_t)as_signed16((uint16_t)(rtp.seq - (uint16_t)r->highest_seq));
		h.ext_ts = r->highest_ts +
			   (uint64_t)as_signed32((uint32_t)(rtp.ts - (uint32_t)r->highest_ts));
	}
	if (r->released_any && h.ext_seq <= r->last_released) {
		if (was_released(r, h.ext_seq))
			r->duplicates++;
		else
			r->too_late++;
		return;
	}
	if (r->started && h.ext_seq <= r->highest_seq && is_held(r, h.ext_seq)) {
		r->duplicates++;
		return;
	}
	if (!r->started || h.ext_seq > r->highest_seq) {
		r->started = true;
		r->highest_seq = h.ext_seq;
		r->highest_ts = h.ext_ts;
	}
	h.arrival_ns = arrival_ns;
	h.len = len;
	h.data = vtp_malloc(len ? len : 1);
	memcpy(h.data, pkt, len);
	heap_insert(r, &h);
}

bool vtp_reorder_pop(vtp_reorder *r, vtp_ordered_pkt *out)
{
	held_pkt h;

	VTP_FREE(&r->handed);
	if (r->count == 0 || (!r->ended && r->count <= r->window))
		return false;
	h = heap_take_min(r);
	mark_released(r, h.ext_seq);
	r->handed = h.data;
	out->ext_seq = h.ext_seq;
	out->ext_ts = h.ext_ts;
	out->arrival_ns = h.arrival_ns;
	out->data = h.data;
	out->len = h.len;
	return true;
}

void vtp_reorder_end(vtp_reorder *r)
{
	r->ended = true;
}

uint64_t vtp_reorder_duplicates(const vtp_reorder *r)
{
	return r->duplicates;
}

uint64_t vtp_reorder_too_late(const vtp_reorder *r)
{
	return r->too_late;
}

uint64_t vtp_reorder_malformed(const vtp_reorder *r)
{
	return r->malformed;
}
