#!/usr/bin/env bash
# The official `openai` Python package, for the gateway tests that drive `phiguard serve` with
# the real SDK (crates/phiguard/tests/serve_openai_sdk.rs). Installed from PyPI into its own
# virtual environment (so its dependencies never clash with other tools' pins), once; the tests
# find its interpreter through PHIGUARD_OPENAI_PYTHON, and PHIGUARD_REQUIRE_OPENAI=1 makes them
# fail instead of skipping when the package is missing.
set -euo pipefail

venv=/var/tmp/phiguard-openai-venv
py="$venv/bin/python"
if ! "$py" -c 'import openai' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --disable-pip-version-check openai
fi
"$py" -c 'import openai; print("openai", openai.__version__, "in", "'"$venv"'")'
for line in "PHIGUARD_OPENAI_PYTHON=$py" "PHIGUARD_REQUIRE_OPENAI=1"; do
  grep -qxF "$line" /tmp/phiguard-ci.env 2>/dev/null || echo "$line" >>/tmp/phiguard-ci.env
done
