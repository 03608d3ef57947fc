#!/usr/bin/env bash
# Installs everything the tests need, then runs every check and the whole test suite.
#
#   scripts/test.sh            # from a fresh clone: venv + pinned deps, lint, types, layers, tests
#   scripts/test.sh -k reload  # extra arguments go to pytest
#
# Python packages come from PyPI, pinned by constraints.txt (the same pins the Dockerfile uses).
# Fake upstreams, the Kubernetes API emulator (kmock) and Helm (helm-python-sdk) install from PyPI;
# one MCP test server from npm. Debian packages: redis-server (governance tests start their own on a
# free loopback port) and Node.js/npm if missing. VENV (default .venv) says where the venv lives.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

# Debian packages the suite needs and lacks, installed in one apt-get run when we can (root).
APT_MISSING=()
command -v redis-server >/dev/null 2>&1 || APT_MISSING+=(redis-server)
command -v npm >/dev/null 2>&1 || APT_MISSING+=(nodejs npm)
if (( ${#APT_MISSING[@]} )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_MISSING[@]}" >/dev/null
  else
    echo "missing Debian packages: ${APT_MISSING[*]} (apt-get install them); governance and MCP tests need them" >&2
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"

# MCP test servers: mcp-server-time and mcp-server-git come with the test extra (PyPI);
# @modelcontextprotocol/server-everything comes from npm, into .cache/npm (tests/mcp run it over stdio).
NPM_PREFIX=".cache/npm"
if [[ ! -x "$NPM_PREFIX/node_modules/.bin/mcp-server-everything" ]]; then
  npm install --silent --no-audit --no-fund --prefix "$NPM_PREFIX" @modelcontextprotocol/server-everything@2026.8.31
fi

echo "== ruff (lint + format)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy --strict"
"$VENV/bin/mypy"
echo "== import-linter (layers)"
"$VENV/bin/lint-imports"
echo "== pytest"
"$VENV/bin/pytest" -q "$@"
