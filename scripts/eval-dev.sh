#!/usr/bin/env bash
# Scores `phiguard scan` on every dev set in ../shared/corpora/text with the reference scorer
# (Safe Harbor view). Usage: scripts/eval-dev.sh [OUTDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
corpora=${CORPORA:-$here/../shared/corpora/text}
out=${1:-/var/tmp/phiguard-eval}
bin=${PHIGUARD_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/phiguard}
if [ ! -x "$bin" ]; then
  echo "eval-dev.sh: no phiguard binary at $bin: run 'cargo build --release' (set CARGO_TARGET_DIR or PHIGUARD_BIN if you use another target folder)" >&2
  exit 1
fi
mkdir -p "$out"
for set in asq-phi presidio-synth-v2 meddocan grascco-phi; do
  "$bin" scan "$corpora/$set/dev.jsonl" --output "$out/$set.jsonl" 2>/dev/null || { echo "eval-dev.sh: scan failed on $set" >&2; exit 1; }
  python3 "$here/../shared/tools/score.py" "$corpora/$set/dev.jsonl" "phiguard=$out/$set.jsonl" \
    --safe-harbor --json "$out/$set.score.json" --md "$out/$set.score.md" >/dev/null
  python3 - "$out/$set.score.json" "$set" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]["phiguard"]
print(f"{sys.argv[2]:20s} P {100*r['precision']:5.1f}  R {100*r['recall']:5.1f}  F1 {100*r['f1']:5.1f}  (tp {r['tp']} fp {r['fp']} fn {r['fn']})")
PY
done
