#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: `start DIR` initialises a cluster in a
# fresh temporary directory, starts it on a free loopback port and writes a
# postgres:// URL into DIR/url; `stop DIR` stops it and removes the cluster.
# As root the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: test-pg.sh start|stop DIR" >&2; exit 2; }

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "test-pg: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

case "$cmd" in
start)
  mkdir -p "$dir"
  [ -f "$dir/pgdata" ] && "$0" stop "$dir" || true
  pgdata=$(mktemp -d /tmp/vtp-test-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pgdata"
  chmod 700 "$pgdata"
  echo "$pgdata" > "$dir/pgdata"
  as_pg "$pgbin/initdb" -D "$pgdata/data" -U vtp --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  port=$(free_port)
  as_pg "$pgbin/pg_ctl" -D "$pgdata/data" -l "$pgdata/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdata -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$pgdata/server.log" >&2; exit 1; }
  as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U vtp vtp_test
  echo "postgres://vtp@127.0.0.1:$port/vtp_test" > "$dir/url"
  echo "test-pg: PostgreSQL on 127.0.0.1:$port ($pgdata)"
  ;;
stop)
  [ -f "$dir/pgdata" ] || exit 0
  pgdata=$(cat "$dir/pgdata")
  if [ -d "$pgdata/data" ]; then
    as_pg "$pgbin/pg_ctl" -D "$pgdata/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$pgdata" "$dir/pgdata" "$dir/url"
  ;;
*) echo "usage: test-pg.sh start|stop DIR" >&2; exit 2 ;;
esac
