# Sourced by .ci/run: PostgreSQL and Redis on 127.0.0.1 for one CI run.
#
# Several runs may share a machine (and its PostgreSQL) at once, so a run owns what it uses and
# removes it when it exits, however it exits:
# - a database of its own (aikb_ci_<time>_<pid>_<random>) on the machine's PostgreSQL, dropped;
# - a Redis server of its own on a free port, with no data on disk, stopped. The machine's Redis
#   (which other runs and sessions use) is never written to, let alone flushed.
# ci_services_up exports AIKB_TEST_DATABASE_URL and AIKB_TEST_REDIS_URL.

ci_sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then ci_sudo="sudo"; fi

# apt_install PACKAGE...: Debian packages, without starting the services they ship.
apt_install() {
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $ci_sudo tee "$policy" >/dev/null && $ci_sudo chmod +x "$policy" && added=1
  fi
  $ci_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $ci_sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [ -n "$added" ]; then $ci_sudo rm -f "$policy"; fi
}

CI_PG_BASE="postgres://postgres:postgres@127.0.0.1:5432"
CI_DATABASE=""
CI_REDIS_PID=""
CI_REDIS_DIR=""

ci_services_down() {
  if [ -n "$CI_REDIS_PID" ]; then
    kill "$CI_REDIS_PID" 2>/dev/null || true
    wait "$CI_REDIS_PID" 2>/dev/null || true
    CI_REDIS_PID=""
  fi
  if [ -n "$CI_REDIS_DIR" ]; then rm -rf "$CI_REDIS_DIR"; CI_REDIS_DIR=""; fi
  if [ -n "$CI_DATABASE" ]; then
    psql "$CI_PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS $CI_DATABASE WITH (FORCE)" >/dev/null 2>&1 ||
      echo "warning: could not drop database $CI_DATABASE" >&2
    CI_DATABASE=""
  fi
}
# A signal ends the run through exit, so the EXIT trap cleans up then too.
trap ci_services_down EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

ci_postgres_up() {
  if ! command -v pg_isready >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      $ci_sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432
  # Trust auth on our machines; on a stock Debian install the postgres role gets a password over the socket.
  if ! psql "$CI_PG_BASE/postgres" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    $ci_sudo runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'"
  fi
  CI_DATABASE="aikb_ci_$(date +%s)_$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
  psql "$CI_PG_BASE/postgres" -qc "CREATE DATABASE $CI_DATABASE"
  export AIKB_TEST_DATABASE_URL="$CI_PG_BASE/$CI_DATABASE"
}

ci_redis_up() {
  if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server redis-tools; fi
  CI_REDIS_DIR=$(mktemp -d /tmp/aikb-ci-redis.XXXXXX)
  local port attempt
  for attempt in 1 2 3 4 5; do
    # A port the kernel just handed out; another process may take it first, hence the retries.
    port=$(node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$CI_REDIS_DIR" \
      --logfile "$CI_REDIS_DIR/redis.log" >/dev/null 2>&1 &
    CI_REDIS_PID=$!
    for _ in $(seq 1 50); do
      if ! kill -0 "$CI_REDIS_PID" 2>/dev/null; then break; fi
      if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
        export AIKB_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
        echo "redis-server $CI_REDIS_PID on 127.0.0.1:$port (attempt $attempt)"
        return 0
      fi
      sleep 0.1
    done
    kill "$CI_REDIS_PID" 2>/dev/null || true
    wait "$CI_REDIS_PID" 2>/dev/null || true
    CI_REDIS_PID=""
  done
  echo "could not start a Redis server of this run's own" >&2
  return 1
}

ci_services_up() {
  ci_postgres_up
  ci_redis_up
}
