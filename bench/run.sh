#!/usr/bin/env bash
# Asbru gateway benchmark (loopback only): RPS, p50/p99, added latency, CPU per request, peak RSS,
# and a check that SSE is forwarded as it arrives. Prints a markdown table (~5 min by default).
#
#   bench/run.sh            install/check the tools, run bench/bench.py, print the table
#   bench/run.sh --check    install/check the tools only
#   bench/run.sh --help     this text
#
# Tools: nginx-light and wrk (Debian; apt-get installs them if missing, as root), taskset, and a
# Python with the gateway installed (the repo's .venv; aiohttp is needed by bench/sse_check.py).
# The gateway runs pinned to PROXY_CPU; wrk and the nginx mock share LOAD_CPU.
#
# Environment (all optional):
#   DURATION=8             seconds per wrk run
#   REPS=3                 repetitions (median reported); direct and gateway alternate
#   JSON_CONNS="1 16 64"   JSON load tiers (wrk -t1, closed loop)
#   STREAM_CONNS="1 16"    SSE load tiers
#   GATEWAY_WORKERS=1      asbru serve --workers
#   PIN=1 PROXY_CPU=0 LOAD_CPU=1   taskset pinning (PIN=0: none)
#   BUDGET_S=330           runs that would end past this are skipped; hard stop 30 s later
#   SSE_CHUNKS=10 SSE_INTERVAL=0.1   slow-mock stream of the SSE forwarding check
#   MOCK_PORT=18180 GATEWAY_PORT=18380   preferred ports on 127.0.0.1 (next free one if taken)
#   OUT_DIR=/tmp/asbru-bench/<time>      table.md, results.jsonl, logs/
#   ASBRU=<repo>/.venv/bin/asbru   PYTHON=<repo>/.venv/bin/python
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
check_only=0
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --check) check_only=1 ;;
  "") ;;
  *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

# nginx-light and wrk from Debian, only if missing.
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "nginx and wrk are needed: apt-get install nginx-light wrk (as root)" >&2; exit 1
  fi
  echo "installing nginx-light and wrk (apt-get)..." >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light wrk >&2
fi
command -v taskset >/dev/null || { echo "taskset missing (Debian package util-linux)" >&2; exit 1; }

export ASBRU="${ASBRU:-$REPO/.venv/bin/asbru}"
[[ -x "$ASBRU" ]] || ASBRU="$(command -v asbru || true)"
[[ -n "$ASBRU" ]] || { echo "asbru not found: pip install -e . in $REPO/.venv, or set ASBRU" >&2; exit 1; }
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
"$PYTHON" -c 'import aiohttp' 2>/dev/null \
  || { echo "$PYTHON has no aiohttp (needed by sse_check.py): set PYTHON to the gateway's venv" >&2; exit 1; }
if (( check_only )); then
  echo "ok: $(nginx -v 2>&1), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), asbru=$ASBRU, python=$PYTHON"
  exit 0
fi

export BUDGET_S="${BUDGET_S:-330}"
# Hard stop as a safety net: bench.py stops what it started on SIGTERM and prints a partial table.
exec timeout -k 15 "$(( ${BUDGET_S%.*} + 30 ))" "$PYTHON" "$HERE/bench.py"
