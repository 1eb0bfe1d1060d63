#!/usr/bin/env bash
# Latency the gateway adds, measured from a separate process: an open-loop load generator
# (crates/gateway/examples/loadgen.rs: request i leaves at i/rate, whatever happened before)
# sends chat completions with a ~1,500-character clinical note full of PHI at fixed rates, first
# straight to a mock OpenAI-compatible upstream (crates/gateway/examples/mock_upstream.rs), then
# through
# `phiguard serve` with examples/phiguard.toml (role clinician: every string leaf scanned, PHI
# tokenized and restored, injection screen on, two audit records per request in the sealed
# journal of the encrypted embedded store). Prints p50/p99 of both and the difference, the
# error rate and the gateway's CPU time per request, once per audit durability setting:
# `answer` (the default: records fsynced before each answer) and `background` (written before
# the answer, fsynced right after; docs/gateway.md "Audit records").
#
#   scripts/bench-gateway.sh [RATES] [SECONDS]      # default: "100 300 1000" 10
#
# PHIGUARD_BIN=PATH runs another build of `phiguard` (to compare builds in one session);
# CONFIG=FILE another gateway config (default examples/phiguard.toml; one with an [audit]
# table of its own runs as it is, once); DURABILITY="answer" (or "background") runs one setting.
#
# (`hey` was tried first: its workers are paced by tickers that fire together, so requests arrive
# in bursts of `-c` at a time and the gateway's queue, not its cost, dominates the figures.)
# Load generator, mock and gateway share the machine; on 2 cores they compete for CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
rates="${1:-100 300 1000}"
secs="${2:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# Two builds: with `--example`, cargo builds only the examples named, not the binary.
cargo build --release -q -p phiguard
cargo build --release -q -p phiguard-gateway --example mock_upstream --example loadgen
bin="$CARGO_TARGET_DIR/release"
phiguard="${PHIGUARD_BIN:-$bin/phiguard}"
config="${CONFIG:-examples/phiguard.toml}"

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/examples/mock_upstream" 127.0.0.1:0 >"$work/mock.out" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
upstream="$(sed -n 's/^listening on //p' "$work/mock.out")"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export PHIGUARD_HOME="$work/home"
export UPSTREAM_BASE_URL="$upstream/v1"
export PHIGUARD_LISTEN="127.0.0.1:$port"
key="$("$phiguard" keys create --role clinician --config "$config" 2>/dev/null | tail -1)"
if grep -q '^\[audit\]' "$config"; then
  modes="config"
else
  modes="${DURABILITY:-answer background}"
fi
serve_pid=""
# start_gateway MODE: stops the gateway running (it closes its journal), starts one whose
# `[audit] durability` is MODE ("config": the config as it is), waits until it answers.
start_gateway() {
  if [ -n "$serve_pid" ]; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  local conf="$config"
  if [ "$1" != config ]; then
    conf="$work/phiguard-$1.toml"
    { cat "$config"; printf '\n[audit]\ndurability = "%s"\n' "$1"; } >"$conf"
  fi
  "$phiguard" serve --config "$conf" >"$work/serve.out" 2>"$work/serve-$1.err" &
  serve_pid=$!
  pids+=($serve_pid)
  for _ in $(seq 200); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "the gateway did not start: $(cat "$work/serve-$1.err")" >&2
  exit 1
}
# CPU time (user + system, clock ticks) the gateway process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$serve_pid/stat"; }

python3 - "$work/body.json" <<'PY'
import json, sys
note = ("DISCHARGE SUMMARY. Patient: Maria Lopez, MRN 4839201, DOB 07/22/1956, admitted 03/14/2021 to "
        "Springfield General Hospital under Dr. John Carter. Phone 617-555-0199, email "
        "maria.lopez@example.org, address 42 Elm Street, Springfield, MA 01103. History of present "
        "illness: 64-year-old woman with type 2 diabetes mellitus, hypertension and chronic kidney "
        "disease stage 3 presenting with three days of progressive dyspnea, orthopnea and bilateral leg "
        "swelling. On arrival blood pressure 168/94, heart rate 104, oxygen saturation 89% on room air. "
        "Chest radiograph showed bilateral pleural effusions and pulmonary vascular congestion. BNP 1,840 "
        "pg/mL, troponin negative times two. Echocardiogram: ejection fraction 35%, moderate mitral "
        "regurgitation. Hospital course: diuresed with intravenous furosemide with net negative 4.2 "
        "liters, started on carvedilol and sacubitril-valsartan, metformin held for contrast. Creatinine "
        "peaked at 1.9 and returned to baseline 1.5. Discharged 03/19/2021 in stable condition to home "
        "with her daughter Ana Lopez (phone 617-555-0143). Follow-up with Dr. Carter in cardiology clinic "
        "in one week and with nephrology in four weeks. Medications: carvedilol 6.25 mg twice daily, "
        "sacubitril-valsartan 24/26 mg twice daily, furosemide 40 mg daily, insulin glargine 18 units "
        "nightly. Summarize the hospital course for the primary care physician in five sentences.")
body = {"model": "local-model", "messages": [
    {"role": "system", "content": "You are a clinical summarizer."},
    {"role": "user", "content": note}]}
json.dump(body, open(sys.argv[1], "w"))
PY

# run URL RATE [SECONDS] -> "rate achieved p50_ms p99_ms errors total"
run() {
  "$bin/examples/loadgen" --url "$1" --rate "$2" --seconds "${3:-$secs}" --body "$work/body.json" \
    --header "Authorization: Bearer $key" --header "X-Patient-Ref: bench-1"
}

echo "prompt: ~1,500 characters with PHI; ${secs} s per rate; open loop from a separate process"
echo "| audit durability | rate (req/s) | achieved (req/s) | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 | gateway non-200 | gateway CPU per request |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for mode in $modes; do
  start_gateway "$mode"
  # Warm up both paths.
  run "$upstream/v1/chat/completions" 50 2 >/dev/null
  run "http://127.0.0.1:$port/v1/chat/completions" 50 2 >/dev/null
  for rate in $rates; do
    read -r _ _ d50 d99 _ _ < <(run "$upstream/v1/chat/completions" "$rate")
    t0="$(cpu_ticks)"
    read -r _ grps g50 g99 gbad gtotal < <(run "http://127.0.0.1:$port/v1/chat/completions" "$rate")
    t1="$(cpu_ticks)"
    python3 - "$mode" "$rate" "$d50" "$d99" "$g50" "$g99" "$gbad" "$gtotal" "$grps" "$((t1 - t0))" "$(getconf CLK_TCK)" <<'PY'
import sys
mode = sys.argv[1]
r, d50, d99, g50, g99, bad, total, rps, ticks, hz = (float(x) for x in sys.argv[2:])
print(f"| {mode} | {r:.0f} | {rps:.0f} | {d50:.2f} ms | {d99:.2f} ms | {g50:.2f} ms | {g99:.2f} ms | "
      f"{g50 - d50:.2f} ms | {g99 - d99:.2f} ms | {100 * bad / max(total, 1):.1f}% | "
      f"{1000 * ticks / hz / max(total, 1):.2f} ms |")
PY
  done
done
