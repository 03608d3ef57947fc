#!/usr/bin/env bash
# Bifrost's load gate for Asbru (issue 9): a 1 s-latency mock, 1,000 connections in a closed loop for
# 30 s, gateway pinned to one core; then 5,000 connections with --workers 2 on two cores. Loopback only.
# Prints a markdown table (RPS, failures, added p50/p99 against the mock direct, CPU per request).
# The same gate as ../shared/bench/gate/gate.sh, plus CPU per request, background load, two cores,
# and a sweep over connection counts; bench/gate.py's docstring has the details.
#
#   bench/gate.sh                              one-core + two-core gate (~3 min)
#   SCENARIOS=sweep FLOOR=1 bench/gate.sh      CPU per request at SWEEP_CONNS, with the floor proxy
#   PROBES=base,gc-default SCENARIOS="one-core sweep" bench/gate.sh   A/B variants (gateway_probe.py)
#   bench/gate.sh --help
#
# Env: CONNS=1000 CONNS2=5000 DURATION=30 DELAY_S=1.0 REPS=1 SCENARIOS="one-core two-core"
#      SWEEP_CONNS="16 64 256 1000" SWEEP_DURATION=15 PROBES=base FLOOR=0 POOL=8000 BUDGET_S=900
#      PROXY_CPU=0 LOAD_CPU=1 MOCK_PORT=18990 OUT_DIR=/tmp/asbru-gate/<time> ASBRU PYTHON VENV_GW
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
esac
command -v wrk >/dev/null || { echo "wrk missing: bench/run.sh --check installs it" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset missing (util-linux)" >&2; exit 1; }
export ASBRU="${ASBRU:-$REPO/.venv/bin/asbru}"
export PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
"$PYTHON" -c 'import httptools, aiohttp' 2>/dev/null \
  || { echo "$PYTHON lacks httptools/aiohttp: set PYTHON to the gateway's venv" >&2; exit 1; }
export BUDGET_S="${BUDGET_S:-900}"
exec timeout -k 15 "$(( ${BUDGET_S%.*} + 60 ))" "$PYTHON" "$HERE/gate.py"
