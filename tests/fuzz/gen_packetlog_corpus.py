#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_packetlog (tests/fuzz/corpus/packetlog/):
small packet-log files in the format of src/capture/capture.h, valid ones
and a few torn or corrupt ones. Run from anywhere; rewrites the seed-*
files only, so inputs found by the fuzzer stay."""
import json
import os
import struct

POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def header(meta):
    m = json.dumps(meta, separators=(",", ":")).encode() if meta is not None else b""
    h = b"VTPCAP\r\n" + struct.pack("<HHI", 1, 0, len(m)) + m
    return h + struct.pack("<I", crc32c(h))


def record(kind, arrival_ns, data):
    r = struct.pack("<IQB", len(data), arrival_ns, kind) + data
    return r + struct.pack("<I", crc32c(r))


def rtp(seq, ts, ssrc, payload, pt=96, marker=False):
    return struct.pack(">BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def sender_report(ssrc, ntp, ts, packets, octets):
    body = struct.pack(">IQIII", ssrc, ntp, ts, packets, octets)
    return struct.pack(">BBH", 0x80, 200, len(body) // 4) + body


def receiver_report(ssrc):
    return struct.pack(">BBHI", 0x80, 201, 1, ssrc)


T0 = 1_700_000_000_000_000_000
AUDIO = {"codec": "opus", "payloadType": 111, "clockRate": 48000, "kind": "audio",
         "channels": 2}
VIDEO = {"codec": "VP8", "payloadType": 96, "clockRate": 90000, "kind": "video"}


def audio():
    recs = []
    for i in range(12):
        recs.append(record(1, T0 + i * 20_000_000,
                           rtp(1000 + i, 960 * i, 0xA0D10, bytes([0xFC, i]) * 20, pt=111)))
        if i == 5:
            recs.append(record(2, T0 + i * 20_000_000 + 1,
                               sender_report(0xA0D10, 0xE0000000_00000000, 960 * i, i, 40 * i)))
    recs.append(record(2, T0 + 300_000_000, receiver_report(0xA0D10)))
    return header(AUDIO) + b"".join(recs)


def video():
    # seq wrap, a gap, a duplicate, a late packet, a timestamp wrap, a new SSRC
    seqs = [65532, 65533, 65535, 65535, 65534, 0, 1, 4, 5, 6]
    recs = []
    for n, s in enumerate(seqs):
        ext = s if s >= 65000 else s + 65536
        ts = 0xFFFFE000 + 3000 * (ext - 65532)
        recs.append(record(1, T0 + n * 33_000_000,
                           rtp(s, ts, 0x5EED, bytes(range(n, n + 40)), marker=n % 3 == 0)))
    recs.append(record(2, T0 + 400_000_000, sender_report(0x5EED, 1, 2, 3, 4)))
    recs.append(record(1, T0 + 500_000_000, rtp(7, 12345, 0x0DD5EED, b"\x10" * 30)))
    return header(VIDEO) + b"".join(recs)


def oddities():
    # the smallest records, RTP-kind bytes that are not RTP, non-JSON meta
    h = b"VTPCAP\r\n" + struct.pack("<HHI", 1, 0, 8) + b"not json"
    h += struct.pack("<I", crc32c(h))
    return h + b"".join([
        record(2, 0, b"\x81"),
        record(1, 1, b"\x00" * 12),
        record(1, 2, b"\x80\x60"),
        record(1, 0xFFFFFFFFFFFFFFFF, rtp(0, 0, 0, b"")),
        record(2, 3, b"\x80\xc8"),
    ])


def flip(data, pos, mask):
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1:]


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "packetlog")
    os.makedirs(out, exist_ok=True)
    a, v = audio(), video()
    first_audio = len(header(AUDIO))
    seeds = {
        "seed-header-only": header(AUDIO),
        "seed-empty-meta": header(None) + record(1, T0, rtp(1, 2, 3, b"x")),
        "seed-audio": a,
        "seed-video": v,
        "seed-oddities": oddities(),
        "seed-torn-tail": a[:-7],
        "seed-torn-record-head": a + b"\x2a\x00\x00",
        # a flipped bit in the payload of the third record (69 bytes each)
        "seed-bad-crc": flip(a, first_audio + 2 * 69 + 30, 0x04),
        # kind 1 -> 7 in the first record
        "seed-bad-kind": flip(v, len(header(VIDEO)) + 12, 0x06),
        "seed-bad-version": b"VTPCAP\r\n\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "seed-torn-header": header(VIDEO)[:30],
    }
    for name, data in seeds.items():
        assert len(data) < 4096, name
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
