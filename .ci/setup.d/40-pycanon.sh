#!/usr/bin/env bash
# pycanon (PyPI): the reference implementation the re-identification risk tests of phiguard-risk
# are compared with LIVE (crates/risk/tests/it/pycanon.rs: k-anonymity, l-diversity, entropy
# l-diversity, t-closeness and equivalence classes on ARX's adult.csv). Installs pycanon when it is
# not importable (nothing to do, and fast, when it is), then tells the tests through
# /tmp/phiguard-ci.env that pycanon must be there (PHIGUARD_REQUIRE_PYCANON=1: the comparison test
# fails instead of skipping).
set -euo pipefail

if ! python3 -c 'import pycanon' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'pycanon==1.3.6'
fi
if ! python3 -c 'import pycanon' >/dev/null 2>&1; then
  echo "pycanon is not importable after pip install pycanon" >&2
  exit 1
fi
echo "pycanon $(python3 -c 'import importlib.metadata as m; print(m.version("pycanon"))') importable"
line="PHIGUARD_REQUIRE_PYCANON=1"
grep -qxF "$line" /tmp/phiguard-ci.env 2>/dev/null || echo "$line" >>/tmp/phiguard-ci.env
