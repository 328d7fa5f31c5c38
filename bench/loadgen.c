/* Ingest load generator: replays real RTP (packet logs recorded from ffmpeg
 * by the recorder itself) as N concurrent tracks at their real rate, with
 * sendmmsg batches, to the ports named in a targets file.
 *
 *   loadgen TARGETS SECONDS VIDEO.vtpcap AUDIO.vtpcap
 *
 * TARGETS has one line per track: "video PORT" or "audio PORT". Each track
 * replays its source log from a random offset, looping, with its own SSRC
 * and continuous sequence numbers and timestamps, each packet at its
 * original spacing. Prints "sent PACKETS BYTES late_ms_max" at the end.
 * Single thread, a 1 ms pacing tick. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture/capture.h"
#include "core/bytes.h"

#define BATCH 256
#define MAX_PKT 2048

typedef struct pkt {
	uint64_t at_ns; /* offset from the first packet */
	uint16_t len;
	uint8_t data[MAX_PKT];
} pkt;

typedef struct source {
	pkt *p;
	size_t n;
	uint64_t span_ns; /* loop length */
	uint16_t seq_span;
	uint32_t ts_span;
} source;

typedef struct stream {
	const source *src;
	struct sockaddr_in to;
	size_t next;      /* index into src */
	uint64_t base_ns; /* when this loop started, monotonic */
	uint32_t ssrc;
	uint16_t seq_off;
	uint32_t ts_off;
	uint32_t loops;
} stream;

/* Adds dseq to the sequence number and dts to the timestamp of an RTP header. */
static void shift_header(uint8_t *d, uint16_t dseq, uint32_t dts)
{
	uint16_t seq = (uint16_t)((d[2] << 8 | d[3]) + dseq);

	d[2] = (uint8_t)(seq >> 8);
	d[3] = (uint8_t)seq;
	vtp_put_be32(d + 4, vtp_get_be32(d + 4) + dts);
}

/* Sends a whole batch (sendmmsg may take part of it). */
static int send_batch(int fd, struct mmsghdr *msgs, int n)
{
	for (int k = 0; k < n;) {
		int r = sendmmsg(fd, msgs + k, (unsigned)(n - k), 0);

		if (r < 0 && errno != EINTR && errno != EAGAIN) {
			perror("sendmmsg");
			return -1;
		}
		k += r > 0 ? r : 0;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int load(const char *path, source *s)
{
	char err[256];
	vtp_capr *r;
	vtp_cap_record rec;
	uint64_t first = 0;
	size_t cap = 0;
	uint16_t seq0 = 0, seq_last = 0;
	uint32_t ts0 = 0, ts_last = 0;

	memset(s, 0, sizeof(*s));
	if (vtp_capr_open(path, &r, err, sizeof(err)) != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", path, err);
		return -1;
	}
	while (vtp_capr_next(r, &rec) == VTP_CAPR_RECORD) {
		if (rec.kind != VTP_CAP_RTP || rec.len < 12 || rec.len > MAX_PKT)
			continue;
		if (s->n == cap) {
			cap = cap ? cap * 2 : 1024;
			s->p = realloc(s->p, cap * sizeof(*s->p));
		}
		if (!s->n) {
			first = rec.arrival_ns;
			seq0 = (uint16_t)(rec.data[2] << 8 | rec.data[3]);
			ts0 = vtp_get_be32(rec.data + 4);
		}
		s->p[s->n].at_ns = rec.arrival_ns - first;
		s->p[s->n].len = (uint16_t)rec.len;
		memcpy(s->p[s->n].data, rec.data, rec.len);
		seq_last = (uint16_t)(rec.data[2] << 8 | rec.data[3]);
		ts_last = vtp_get_be32(rec.data + 4);
		s->n++;
	}
	vtp_capr_close(r);
	if (s->n < 2) {
		fprintf(stderr, "loadgen: %s: fewer than two RTP packets\n", path);
		return -1;
	}
	/* one frame interval past the last packet, so loops do not overlap */
	s->span_ns = s->p[s->n - 1].at_ns + 40000000ULL;
	s->seq_span = (uint16_t)(seq_last - seq0 + 1);
	s->ts_span = ts_last - ts0 + 3600;
	/* rebase sequence numbers and timestamps to 0 */
	for (size_t i = 0; i < s->n; i++)
		shift_header(s->p[i].data, (uint16_t)-seq0, (uint32_t)-ts0);
	return 0;
}

int main(int argc, char **argv)
{
	static struct mmsghdr msgs[BATCH];
	static struct iovec iov[BATCH];
	static uint8_t bufs[BATCH][MAX_PKT];
	source video, audio;
	stream *st = NULL;
	size_t nst = 0, cap = 0;
	uint64_t start, end, sent = 0, bytes = 0, late_max = 0;
	char kind[16];
	int port, fd;
	FILE *f;

	if (argc != 5) {
		fprintf(stderr, "usage: loadgen TARGETS SECONDS VIDEO.vtpcap AUDIO.vtpcap\n");
		return 2;
	}
	if (load(argv[3], &video) || load(argv[4], &audio))
		return 1;
	f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	srand((unsigned)getpid());
	start = now_ns();
	while (fscanf(f, "%15s %d", kind, &port) == 2) {
		stream *s;

		if (nst == cap) {
			cap = cap ? cap * 2 : 256;
			st = realloc(st, cap * sizeof(*st));
		}
		s = &st[nst++];
		memset(s, 0, sizeof(*s));
		s->src = strcmp(kind, "video") == 0 ? &video : &audio;
		s->to.sin_family = AF_INET;
		s->to.sin_port = htons((uint16_t)port);
		s->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->ssrc = (uint32_t)rand() * 2654435761u + (uint32_t)nst;
		/* start each track at a random point of its source so that the
		 * keyframes of all tracks do not arrive at once */
		s->next = (size_t)rand() % s->src->n;
		s->base_ns = start - s->src->p[s->next].at_ns;
	}
	fclose(f);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	{
		int sz = 16 << 20;

		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	}
	end = start + (uint64_t)(atof(argv[2]) * 1e9);
	for (;;) {
		uint64_t now = now_ns();
		int n = 0;

		if (now >= end)
			break;
		for (size_t i = 0; i < nst; i++) {
			stream *s = &st[i];

			for (;;) {
				const pkt *p = &s->src->p[s->next];
				uint64_t due = s->base_ns + p->at_ns;
				uint8_t *d;

				if (due > now || due >= end)
					break;
				if (now - due > late_max)
					late_max = now - due;
				if (n == BATCH) {
					if (send_batch(fd, msgs, n))
						return 1;
					n = 0;
				}
				d = bufs[n];
				memcpy(d, p->data, p->len);
				shift_header(d, s->seq_off, s->ts_off);
				vtp_put_be32(d + 8, s->ssrc);
				iov[n].iov_base = d;
				iov[n].iov_len = p->len;
				memset(&msgs[n].msg_hdr, 0, sizeof(msgs[n].msg_hdr));
				msgs[n].msg_hdr.msg_iov = &iov[n];
				msgs[n].msg_hdr.msg_iovlen = 1;
				msgs[n].msg_hdr.msg_name = &s->to;
				msgs[n].msg_hdr.msg_namelen = sizeof(s->to);
				n++;
				sent++;
				bytes += p->len;
				if (++s->next == s->src->n) {
					s->next = 0;
					s->base_ns += s->src->span_ns;
					s->seq_off = (uint16_t)(s->seq_off + s->src->seq_span);
					s->ts_off += s->src->ts_span;
					s->loops++;
				}
			}
		}
		if (send_batch(fd, msgs, n))
			return 1;
		{
			struct timespec ts = {0, 1000000};

			nanosleep(&ts, NULL);
		}
	}
	printf("sent %llu %llu %.1f\n", (unsigned long long)sent, (unsigned long long)bytes,
	       (double)late_max / 1e6);
	return 0;
}
