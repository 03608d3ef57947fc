#!/usr/bin/env bash
# Installs everything the tests need, then runs every check and the whole test suite.
#
#   scripts/test.sh            # from a fresh clone: venv + pinned deps, lint, types, layers, tests
#   scripts/test.sh -k reload  # extra arguments go to pytest
#
# Python packages come from PyPI, pinned by constraints.txt (the same pins the Dockerfile uses).
# Fake upstreams, the Kubernetes API emulator (kmock) and Helm (helm-python-sdk) install from PyPI;
# one MCP test server from npm (Node.js from Debian if it is missing). VENV (default .venv) says where the venv lives.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"

# MCP test servers: mcp-server-time and mcp-server-git come with the test extra (PyPI);
# @modelcontextprotocol/server-everything comes from npm, into .cache/npm (tests/mcp run it over stdio).
NPM_PREFIX=".cache/npm"
if [[ ! -x "$NPM_PREFIX/node_modules/.bin/mcp-server-everything" ]]; then
  if ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
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
