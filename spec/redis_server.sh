#!/bin/sh
# A private redis-server for the specs and the bench: a loopback port, its
# own temporary directory, appendonly yes.
#   sh spec/redis_server.sh run CMD...   start one, run CMD with
#        DUET_REDIS_URL, DUET_REDIS_PORT and DUET_REDIS_DIR set, stop it,
#        exit with CMD's code. A server that cannot start is reported and
#        CMD runs without DUET_REDIS_URL, so the Redis specs fail loudly.
#   sh spec/redis_server.sh restart      stop and start the server that
#        DUET_REDIS_PORT and DUET_REDIS_DIR name (its data is kept).
set -u

start() {  # $1 port, $2 dir
  redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --appendonly yes \
    --save "" --daemonize yes --pidfile "$2/redis.pid" \
    --logfile "$2/redis.log" >/dev/null 2>&1 || return 1
  i=0
  while [ $i -lt 100 ]; do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05; i=$((i + 1))
  done
  return 1
}

stop() {  # $1 port, $2 dir: SHUTDOWN writes the AOF out; wait for the exit
  redis-cli -p "$1" shutdown >/dev/null 2>&1
  i=0
  while [ -f "$2/redis.pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}

case "${1:-}" in
  run)
    shift
    dir=$(mktemp -d "${TMPDIR:-/tmp}/duet-redis.XXXXXX")
    started=
    for try in 1 2 3 4 5; do
      port=$(( 20000 + ($$ * 7 + try * 7919) % 40000 ))
      if start "$port" "$dir"; then started=1; break; fi
    done
    if [ -n "$started" ]; then
      export DUET_REDIS_URL="redis://127.0.0.1:$port/0"
      export DUET_REDIS_PORT="$port" DUET_REDIS_DIR="$dir"
    else
      echo "spec/redis_server.sh: could not start redis-server (is it installed? see $dir/redis.log)" >&2
    fi
    "$@"
    rc=$?
    [ -n "$started" ] && stop "$port" "$dir"
    rm -rf "$dir"
    exit $rc ;;
  restart)
    stop "$DUET_REDIS_PORT" "$DUET_REDIS_DIR"
    start "$DUET_REDIS_PORT" "$DUET_REDIS_DIR" ;;
  *)
    echo "usage: sh spec/redis_server.sh run CMD... | restart" >&2; exit 2 ;;
esac
