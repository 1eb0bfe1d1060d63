#!/usr/bin/env bash
# SoftHSM2 for the PKCS#11 key-provider tests (crates/crypto/tests/it/pkcs11.rs). The tests
# create their own token in a temporary SOFTHSM2_CONF folder, so nothing global is set up here:
# this only installs the package (module /usr/lib/softhsm/libsofthsm2.so) when it is missing.
set -euo pipefail

module=/usr/lib/softhsm/libsofthsm2.so
if command -v softhsm2-util >/dev/null 2>&1 && [ -e "$module" ]; then
  echo "softhsm2 already installed ($(softhsm2-util --version 2>/dev/null || echo '?'))"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq softhsm2 >/dev/null
if ! [ -e "$module" ]; then
  echo "softhsm2 installed but $module is missing" >&2
  exit 1
fi
echo "softhsm2 installed ($(softhsm2-util --version 2>/dev/null || echo '?'))"
