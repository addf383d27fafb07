#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers, as the README's
# `make test` needs it (docs/backends.md, "Tests"):
#
#   - VELLUM_TEST_PG_DSN set: that server is used as it is; nothing here.
#   - otherwise postgres://postgres@127.0.0.1:5432/test: when nothing answers
#     there, install the Debian `postgresql` package if missing, create a
#     cluster if there is none, start it with pg_ctlcluster, and create the
#     database `test`.
#   - a pg_hba.conf rule that makes role vellum_pw_test authenticate with a
#     password (scram-sha-256), so the wrong-password test means something
#     on a cluster that otherwise trusts loopback.
#
# It never fails the build by itself: when PostgreSQL cannot be brought up
# it says why, and the tests then fail under CI=true or skip otherwise.
set -uo pipefail

if [ -n "${VELLUM_TEST_PG_DSN:-}" ]; then
  echo "pg-up: using VELLUM_TEST_PG_DSN as given"
  exit 0
fi

HOST=127.0.0.1 PORT=5432
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "pg-up: installing the Debian postgresql package"
  sudo_ apt-get update -qq >/dev/null 2>&1
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || {
    echo "pg-up: could not install postgresql; PostgreSQL tests will skip (or fail under CI=true)"; exit 0; }
fi

if ! pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; then
  ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $3}' | grep -qx "$PORT"; then
    echo "pg-up: creating cluster $ver/main on port $PORT"
    sudo_ pg_createcluster -p "$PORT" "$ver" main >/dev/null || true
  fi
  cluster=$(pg_lsclusters -h | awk -v p="$PORT" '$3 == p {print $1 "/" $2; exit}')
  echo "pg-up: starting cluster $cluster"
  sudo_ pg_ctlcluster ${cluster/\// } start || true
  for _ in $(seq 1 30); do pg_isready -q -h "$HOST" -p "$PORT" && break; sleep 1; done
fi
if ! pg_isready -q -h "$HOST" -p "$PORT"; then
  echo "pg-up: PostgreSQL does not answer on $HOST:$PORT; PostgreSQL tests will skip (or fail under CI=true)"
  exit 0
fi

hba=$(as_postgres "psql -XAtqc 'SHOW hba_file'" 2>/dev/null)
if [ -n "$hba" ] && ! sudo_ grep -q 'vellum_pw_test' "$hba"; then
  echo "pg-up: adding the scram-sha-256 rule for role vellum_pw_test to $hba"
  tmp=$(mktemp)
  { echo "host all vellum_pw_test 127.0.0.1/32 scram-sha-256   # vellum tests: wrong-password case"; sudo_ cat "$hba"; } >"$tmp"
  sudo_ cp "$tmp" "$hba"; rm -f "$tmp"
  as_postgres "psql -XAtqc 'SELECT pg_reload_conf()'" >/dev/null
fi
# Trust for the test user on loopback, as the tests expect (a fresh
# cluster's default asks for a password).
if [ -n "$hba" ] && ! sudo_ grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
  if ! psql -XAtq "postgres://postgres@$HOST:$PORT/postgres" -c 'SELECT 1' >/dev/null 2>&1; then
    echo "pg-up: trusting postgres on loopback for the tests in $hba"
    sudo_ sed -i '/vellum_pw_test/a host all postgres 127.0.0.1/32 trust   # vellum tests' "$hba"
    as_postgres "psql -XAtqc 'SELECT pg_reload_conf()'" >/dev/null
  fi
fi
if ! psql -XAtq "postgres://postgres@$HOST:$PORT/postgres" -c "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  echo "pg-up: creating database test"
  psql -XAtq "postgres://postgres@$HOST:$PORT/postgres" -c 'CREATE DATABASE test' >/dev/null
fi
echo "pg-up: PostgreSQL answers at postgres://postgres@$HOST:$PORT/test"
