#!/usr/bin/env bash
# PostgreSQL for the shared audit-store tests (crates/phiguard/tests/audit_pg.rs).
# Checks that the server on 127.0.0.1:5432 answers, starts the local cluster if it does not,
# waits until it answers, then exports PHIGUARD_TEST_PG_URL to the tests. Idempotent; reaches
# only the package registry (when PostgreSQL is not installed) and loopback.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
URL="postgres://postgres@${HOST}:${PORT}/test"
ENV_FILE=/tmp/phiguard-ci.env

if ! command -v pg_isready >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
    else
        echo "10-postgres: pg_isready not found and apt-get unavailable" >&2
        exit 1
    fi
fi

if ! pg_isready -q -h "$HOST" -p "$PORT"; then
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    echo "10-postgres: starting PostgreSQL ${version} (cluster main)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h "$HOST" -p "$PORT"; then
        break
    fi
    sleep 1
done
if ! pg_isready -h "$HOST" -p "$PORT"; then
    echo "10-postgres: PostgreSQL on ${HOST}:${PORT} does not answer" >&2
    exit 1
fi

# The tests connect as postgres to the `test` database and create one database per test.
if command -v psql >/dev/null 2>&1; then
    if ! psql -h "$HOST" -p "$PORT" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
        psql -h "$HOST" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null
    fi
fi

touch "$ENV_FILE"
if ! grep -qx "PHIGUARD_TEST_PG_URL=${URL}" "$ENV_FILE"; then
    echo "PHIGUARD_TEST_PG_URL=${URL}" >> "$ENV_FILE"
fi
echo "10-postgres: ready at ${URL}"
