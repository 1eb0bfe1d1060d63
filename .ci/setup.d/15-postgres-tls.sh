#!/usr/bin/env bash
# TLS for the PostgreSQL audit-store test (crates/phiguard/tests/audit_pg.rs, tls_* tests):
# makes a throwaway CA and a server certificate for localhost/127.0.0.1 with the openssl
# command-line tool (the service itself never links OpenSSL), points the local cluster at them
# (ALTER SYSTEM; reload, no restart), and exports the URL and CA path to the tests through
# /tmp/phiguard-ci.env. Idempotent. Runs after 10-postgres.sh.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
ENV_FILE=/tmp/phiguard-ci.env
DIR=/var/tmp/phiguard-pg-tls

command -v openssl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

if [ ! -s "$DIR/ca.pem" ] || [ ! -s "$DIR/server.pem" ]; then
    rm -rf "$DIR"
    mkdir -p "$DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=phiguard test CA" -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > "$DIR/ext.cnf"
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
        -CAcreateserial -days 3650 -extfile "$DIR/ext.cnf" -out "$DIR/server.pem" 2>/dev/null
    # A second CA that signed nothing: the test checks a server it does not vouch for is refused.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=phiguard other CA" -keyout "$DIR/other-ca.key" -out "$DIR/other-ca.pem" 2>/dev/null
fi
chown postgres:postgres "$DIR/server.key" "$DIR/server.pem" 2>/dev/null || true
chmod 600 "$DIR/server.key"
chmod 755 "$DIR"

current="$(psql -h "$HOST" -p "$PORT" -U postgres -d postgres -tAc 'SHOW ssl_cert_file')"
if [ "$current" != "$DIR/server.pem" ]; then
    psql -h "$HOST" -p "$PORT" -U postgres -d postgres -q \
        -c "ALTER SYSTEM SET ssl = on" \
        -c "ALTER SYSTEM SET ssl_cert_file = '$DIR/server.pem'" \
        -c "ALTER SYSTEM SET ssl_key_file = '$DIR/server.key'" \
        -c "ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2'" \
        -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
fi

line1="PHIGUARD_TEST_PG_TLS_URL=postgres://postgres@localhost:${PORT}/test?sslmode=verify-full&sslrootcert=${DIR}/ca.pem"
line2="PHIGUARD_TEST_PG_OTHER_CA=${DIR}/other-ca.pem"
touch "$ENV_FILE"
for line in "$line1" "$line2"; do
    grep -qxF "$line" "$ENV_FILE" || echo "$line" >> "$ENV_FILE"
done
echo "15-postgres-tls: ready ($(psql -h "$HOST" -p "$PORT" -U postgres -d postgres -tAc 'SHOW ssl_cert_file'))"
