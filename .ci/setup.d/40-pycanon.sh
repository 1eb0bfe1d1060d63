#!/usr/bin/env bash
# pycanon (PyPI), the reference implementation the re-identification risk figures of
# phiguard-risk are compared with LIVE (crates/risk/tests/it/pycanon.rs: k-anonymity,
# l-diversity, entropy l-diversity, t-closeness, equivalence classes, re-identification risk on
# ARX's adult.csv and a textbook table).
#
# pycanon pins exact versions of numpy, pandas, scipy, docutils…, so it goes into its own
# virtual environment instead of the system Python. Nothing to do (and fast) when that venv
# already imports pycanon. Tells the tests through /tmp/phiguard-ci.env which interpreter to use
# and that pycanon must be there (PHIGUARD_REQUIRE_PYCANON=1: the comparison fails instead of
# skipping).
set -euo pipefail

venv=${PHIGUARD_PYCANON_VENV:-/var/tmp/phiguard-pycanon-venv}
py="$venv/bin/python"

if ! "$py" -c 'import pycanon' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --disable-pip-version-check 'pycanon==1.3.6'
fi
if ! "$py" -c 'import pycanon' >/dev/null 2>&1; then
  echo "pycanon is not importable from $py after pip install pycanon" >&2
  exit 1
fi
echo "pycanon $("$py" -c 'import importlib.metadata as m; print(m.version("pycanon"))') importable from $py"
for line in "PHIGUARD_PYCANON_PYTHON=$py" "PHIGUARD_REQUIRE_PYCANON=1"; do
  grep -qxF "$line" /tmp/phiguard-ci.env 2>/dev/null || echo "$line" >>/tmp/phiguard-ci.env
done
