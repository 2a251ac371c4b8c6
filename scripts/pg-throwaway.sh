#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for the tests.
#   scripts/pg-throwaway.sh start DIR [PORT]   prints the database URL (a free port by default)
#   scripts/pg-throwaway.sh stop DIR
# initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
set -euo pipefail
action=$1 dir=$2
port=${3:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$action" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg initdb -D "$dir/data" -U reachmeter --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
  fi
  as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  echo "postgresql://reachmeter@127.0.0.1:$port/postgres"
  ;;
stop)
  as_pg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start|stop DIR [PORT]" >&2
  exit 2
  ;;
esac
