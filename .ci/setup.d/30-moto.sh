#!/usr/bin/env bash
# moto in server mode: a local mock of the AWS KMS JSON API for the AWS KMS key-provider tests
# (crates/crypto/tests/it/aws_kms.rs). Installs `moto[server]` from PyPI when `moto_server` is
# missing, starts it on 127.0.0.1:5077 when nothing answers there, waits until it answers, and
# exports PHIGUARD_TEST_KMS_ENDPOINT to the tests through /tmp/phiguard-ci.env.
set -euo pipefail

host=127.0.0.1
port=5077
url="http://$host:$port"

answers() {
  python3 - "$host" "$port" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
s.close()
PY
}

if ! answers; then
  if ! command -v moto_server >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
    hash -r
  fi
  if ! command -v moto_server >/dev/null 2>&1; then
    echo "moto_server is not on PATH after installing moto[server]" >&2
    exit 1
  fi
  log=/tmp/phiguard-moto.log
  nohup moto_server -H "$host" -p "$port" >"$log" 2>&1 </dev/null &
  echo "started moto_server (pid $!) on $url, log $log"
  for _ in $(seq 1 60); do
    answers && break
    sleep 0.5
  done
  if ! answers; then
    echo "moto_server did not answer on $url within 30 s; see $log" >&2
    exit 1
  fi
else
  echo "something already answers on $url (taken as moto_server)"
fi
line="PHIGUARD_TEST_KMS_ENDPOINT=$url"
grep -qxF "$line" /tmp/phiguard-ci.env 2>/dev/null || echo "$line" >>/tmp/phiguard-ci.env
