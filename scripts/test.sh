#!/usr/bin/env bash
# Installs everything the tests need, then runs every check and the whole test suite.
#
#   scripts/test.sh            # from a fresh clone: venv + pinned deps, lint, types, layers, tests
#   scripts/test.sh -k reload  # extra arguments go to pytest
#
# Python packages come from PyPI, pinned by constraints.txt (the same pins the Dockerfile uses).
# Fake upstreams, the Kubernetes API emulator (kmock) and Helm (helm-python-sdk) all install from
# PyPI; the one Debian package is redis-server (governance tests start their own on a free loopback
# port). VENV (default .venv) says where the venv lives.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v redis-server >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null
  else
    echo "redis-server is missing (Debian: apt-get install redis-server); governance tests need it" >&2
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"

echo "== ruff (lint + format)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy --strict"
"$VENV/bin/mypy"
echo "== import-linter (layers)"
"$VENV/bin/lint-imports"
echo "== pytest"
"$VENV/bin/pytest" -q "$@"
