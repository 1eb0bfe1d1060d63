#!/usr/bin/env bash
# Build dependencies of the workspace itself: the embedded audit store is SQLCipher (bundled by
# libsqlite3-sys, feature bundled-sqlcipher), which links the system's libcrypto, so OpenSSL's
# headers (libssl-dev) and pkg-config must be there before cargo builds anything.
set -euo pipefail

missing=()
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ ${#missing[@]} -eq 0 ]; then
  echo "build dependencies present (libssl-dev $(dpkg-query -W -f='${Version}' libssl-dev))"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
echo "installed ${missing[*]}"
