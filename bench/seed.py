#!/usr/bin/env python3
"""Seeds a running server through its API: every token in TOKENS_FILE starts
and stops PER_USER recordings (each in its own room), over keep-alive
connections from a few threads. Prints the id of the last recording of the
first token. Usage: seed.py BASE_URL TOKENS_FILE PER_USER"""
import http.client
import json
import sys
import threading
import urllib.parse

base, tokens_file, per_user = sys.argv[1], sys.argv[2], int(sys.argv[3])
tokens = [t.strip() for t in open(tokens_file) if t.strip()]
u = urllib.parse.urlparse(base)
last = {}
errors = []


def worker(idx, token):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    for i in range(per_user):
        body = json.dumps({"roomId": f"room-{idx}-{i}", "title": f"Lecture {i} of course {idx}",
                           "description": "seeded by bench/seed.py"})
        conn.request("POST", "/api/v1/recordings/start", body, hdr)
        r = conn.getresponse()
        data = r.read()
        if r.status != 201:
            errors.append(f"start {r.status} {data[:200]!r}")
            return
        rid = json.loads(data)["recordingId"]
        conn.request("POST", f"/api/v1/recordings/{rid}/stop", headers=hdr)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            errors.append(f"stop {r.status}")
            return
        last[idx] = rid
    conn.close()


threads = []
for chunk in range(0, len(tokens), 8):
    batch = [threading.Thread(target=worker, args=(i, tokens[i])) for i in range(chunk, min(chunk + 8, len(tokens)))]
    for t in batch:
        t.start()
    for t in batch:
        t.join()
if errors:
    sys.exit("seed failed: " + errors[0])
print(last[0])
