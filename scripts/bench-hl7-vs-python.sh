#!/usr/bin/env bash
# HL7 v2 de-identification throughput against its baseline measured in the same run:
# python-hl7 (PyPI `hl7`) parsing and re-serialising the same messages, then phiguard's
# bench_hl7 (safe-harbor, one thread and all cores), then the ratios.
# Usage: scripts/bench-hl7-vs-python.sh [DIR [SECONDS]]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/../shared/corpora/structured/hl7v2}
secs=${2:-3}
venv=${PYHL7_VENV:-/var/tmp/phiguard-pyhl7}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'hl7==0.4.5'
fi
py=$("$venv/bin/python" "$here/scripts/python/hl7_parse_baseline.py" "$dir" "$secs")
echo "$py"
cd "$here"
rust=$(cargo run --quiet --release -p phiguard-hl7 --example bench_hl7 -- "$dir" "$secs")
echo "$rust"
base=$(echo "$py" | awk '{print $4}')
echo "$rust" | awk -v base="$base" '/^deid/ {printf "%-45s %8.0f messages/s = %5.1fx python-hl7\n", $1" "$2" "$3" "$4" "$5, $7, $7/base}'
