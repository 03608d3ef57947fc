#!/usr/bin/env bash
# Start the Asbru gateway for the shared comparison harness (../shared/bench/compare.sh):
#
#   GATEWAY_URL=http://127.0.0.1:8080 GATEWAY_CMD="bench/gateway-for-compare.sh 8080" \
#     ../shared/bench/compare.sh
#
# compare.sh runs this pinned, in the foreground, with BENCH_UPSTREAM_JSON_BASE (the mock's /v1),
# BENCH_UPSTREAM_STREAM_BASE (its /stream/v1) and BENCH_KEY set. It writes a gateway config that
# routes gpt-4o-mini and gpt-4o-mini-stream there, then execs `asbru serve` (so the PID compare.sh
# holds is the gateway's, and its SIGTERM reaches the gateway).
# Argument: port (default 8080). Env: GATEWAY_WORKERS (default 1), ASBRU (asbru command).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${1:-8080}"
: "${BENCH_UPSTREAM_JSON_BASE:?set by compare.sh (mock /v1 URL)}"
: "${BENCH_UPSTREAM_STREAM_BASE:?set by compare.sh (mock /stream/v1 URL)}"
: "${BENCH_KEY:?set by compare.sh}"
ASBRU="${ASBRU:-$(dirname "$HERE")/.venv/bin/asbru}"
[[ -x "$ASBRU" ]] || ASBRU="$(command -v asbru)"

CONFIG="${TMPDIR:-/tmp}/asbru-compare-$PORT.yaml"
cat > "$CONFIG" <<YAML
# written by bench/gateway-for-compare.sh for the shared comparison harness
providers:
  - name: mock
    type: openai
    base_url: $BENCH_UPSTREAM_JSON_BASE
    keys: [{name: k1, secret: 'env:BENCH_KEY'}]
    pool: {concurrency: 256, queue_size: 1024}
  - name: mock-stream
    type: openai
    base_url: $BENCH_UPSTREAM_STREAM_BASE
    keys: [{name: k1, secret: 'env:BENCH_KEY'}]
    pool: {concurrency: 256, queue_size: 1024}
routes:
  - name: gpt-4o-mini
    targets: [{provider: mock, model: gpt-4o-mini}]
  - name: gpt-4o-mini-stream
    targets: [{provider: mock-stream, model: gpt-4o-mini}]
plugins:
  - {name: telemetry, type: telemetry, order: -100}
YAML
exec "$ASBRU" serve --config "$CONFIG" --host 127.0.0.1 --port "$PORT" \
  --workers "${GATEWAY_WORKERS:-1}" --log-level warning
