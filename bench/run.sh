#!/usr/bin/env bash
# make bench: HTTP API throughput and latency, side by side with nginx serving
# the very same JSON bytes as static files (the upper bound for any dynamic
# server on this machine). Prints a Markdown table; raw wrk output goes to
# bench/results/. Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VTP_BIN:-build/vtp-recorder}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
out=bench/results; mkdir -p "$out"
work=$(mktemp -d /tmp/vtp-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# ---- our server (default settings, request log kept but discarded) ----------
# BENCH_BACKEND=postgres runs it on a throwaway PostgreSQL (scripts/test-pg.sh).
BACKEND=${BENCH_BACKEND:-sqlite}
port=$(free_port)
# No processing workers: the seeded recordings carry no media, and a worker
# composing them (to failed/no_media) would change the answers mid-run.
export VTP_DATA_DIR=$work/data VTP_LISTEN=127.0.0.1:$port VTP_LOG_FORMAT=json VTP_WORKERS=0
if [ "$BACKEND" = postgres ]; then
  scripts/test-pg.sh start "$work/pg" >/dev/null
  trap 'scripts/test-pg.sh stop "$work/pg"; cleanup' EXIT
  export VTP_DATABASE_URL=$(cat "$work/pg/url")
fi
"$BIN" serve >"$work/serve.out" 2>/dev/null & pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# A university-sized library: USERS instructors with PER_USER recordings each,
# created and stopped through the API. The benchmark user is one of them, so
# the list endpoint must find its rows among all the others.
USERS=${BENCH_USERS:-50}
PER_USER=${BENCH_PER_USER:-100}
: >"$work/tokens"
for i in $(seq 0 $((USERS - 1))); do
  "$BIN" user add --email "bench$i@example.com" --name "Bench $i" --role instructor >/dev/null
  "$BIN" token --email "bench$i@example.com" --ttl 3600 >>"$work/tokens"
done
token=$(head -1 "$work/tokens")
auth="Authorization: Bearer $token"
seed_start=$(date +%s.%N)
id=$(python3 bench/seed.py "http://127.0.0.1:$port" "$work/tokens" "$PER_USER")
seed_s=$(python3 -c "print(f'{$(date +%s.%N) - $seed_start:.1f}')")
# The same server on the same database with the list cache off: every list
# request then runs the query and renders the page (the cache's miss path).
nc_port=$(free_port)
VTP_LISTEN=127.0.0.1:$nc_port VTP_RESPONSE_CACHE=0 "$BIN" serve >"$work/serve-nocache.out" 2>/dev/null & pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$nc_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
get_path="/api/v1/recordings/$id"
list_path="/api/v1/recordings?limit=20"

# ---- nginx with the same bytes ------------------------------------------------
mkdir -p "$work/www/api/v1/recordings"
curl -fs "http://127.0.0.1:$port$get_path" -H "$auth" >"$work/www/api/v1/recordings/$id"
curl -fs "http://127.0.0.1:$port$list_path" -H "$auth" >"$work/www/list.json"
# nginx's workers do not run as root: the files must be world-readable.
chmod 755 "$work" && chmod -R a+rX "$work/www"
nport=$(free_port)
cat >"$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log /dev/null;
  default_type application/json;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    root $work/www;
    location = /api/v1/recordings { try_files /list.json =404; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -g 'daemon off;' & pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$nport$get_path" >/dev/null 2>&1 && break; sleep 0.1; done
# Both servers must answer the same bytes, or the comparison means nothing.
for pair in "$get_path|$work/www/api/v1/recordings/$id" "$list_path|$work/www/list.json"; do
  path=${pair%%|*} file=${pair#*|}
  curl -fs "http://127.0.0.1:$nport$path" | cmp -s - "$file" || { echo "bench: nginx does not serve $path correctly" >&2; exit 1; }
done

run() { # name url -> sets rps and p99 (ms); any failed request stops the bench
  local name=$1 url=$2 errs
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "$auth" "$url" >"$out/$name.txt"
  errs=$(awk '/Non-2xx|Socket errors/ {print}' "$out/$name.txt")
  [ -z "$errs" ] || { echo "bench: $name had failed requests: $errs" >&2; exit 1; }
  rps=$(awk '/^Requests\/sec/ {print $2}' "$out/$name.txt")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$out/$name.txt")
}

run vtp-get "http://127.0.0.1:$port$get_path"; vg_rps=$rps vg_p99=$p99
run nginx-get "http://127.0.0.1:$nport$get_path"; ng_rps=$rps ng_p99=$p99
run vtp-list "http://127.0.0.1:$port$list_path"; vl_rps=$rps vl_p99=$p99
run nginx-list "http://127.0.0.1:$nport$list_path"; nl_rps=$rps nl_p99=$p99
curl -fs "http://127.0.0.1:$nc_port$list_path" -H "$auth" | cmp -s - "$work/www/list.json" || { echo "bench: uncached list differs from the cached one" >&2; exit 1; }
curl -fs "http://127.0.0.1:$nc_port$get_path" -H "$auth" | cmp -s - "$work/www/api/v1/recordings/$id" || { echo "bench: uncached GET differs from the cached one" >&2; exit 1; }
run vtp-list-nocache "http://127.0.0.1:$nc_port$list_path"; vn_rps=$rps vn_p99=$p99
run vtp-get-nocache "http://127.0.0.1:$nc_port$get_path"; vgn_rps=$rps vgn_p99=$p99

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency, $(nproc) cores, server and wrk on the same machine"
echo "dataset: $USERS instructors x $PER_USER recordings = $((USERS * PER_USER)) recordings, seeded through the API in ${seed_s}s"
echo
echo "| endpoint | server | req/s | p99 (ms) | ratio to nginx |"
echo "|---|---|---:|---:|---:|"
echo "| GET /api/v1/recordings/{id} | vtp-recorder ($BACKEND) | $vg_rps | $vg_p99 | $(ratio "$vg_rps" "$ng_rps") |"
echo "| GET /api/v1/recordings/{id} | nginx, same bytes, static | $ng_rps | $ng_p99 | 1.00 |"
echo "| GET /api/v1/recordings?limit=20 | vtp-recorder ($BACKEND) | $vl_rps | $vl_p99 | $(ratio "$vl_rps" "$nl_rps") |"
echo "| GET /api/v1/recordings?limit=20 | nginx, same bytes, static | $nl_rps | $nl_p99 | 1.00 |"
echo "| GET /api/v1/recordings/{id} | vtp-recorder ($BACKEND), VTP_RESPONSE_CACHE=0 | $vgn_rps | $vgn_p99 | $(ratio "$vgn_rps" "$ng_rps") |"
echo "| GET /api/v1/recordings?limit=20 | vtp-recorder ($BACKEND), VTP_RESPONSE_CACHE=0 | $vn_rps | $vn_p99 | $(ratio "$vn_rps" "$nl_rps") |"
