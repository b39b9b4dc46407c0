#!/usr/bin/env bash
# `make bench-reconcile`: the scheduled reconciler over 5,000 hosts (BENCH_HOSTS) on moto, its AWS
# calls against the floor; then the reconcile fan-out at fleet scale modelled on the fakes (5,000
# hosts x 5 environments; 5 clusters with a deleted and a denied one; `bench reconcile-model`);
# writes docs/benchmarks-reconcile.md. Not part of the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh > /dev/null
VENV="$ROOT/.venv"
OUT="docs/benchmarks-reconcile.md"
mkdir -p target/bench/logs
cargo build -p bench
PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export WORLD_TABLE_STREAM=off MOTO_ENDPOINT="http://127.0.0.1:$PORT"
"$VENV/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$PORT" > target/bench/logs/moto-reconcile.log 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "$MOTO_ENDPOINT/moto-api/" > /dev/null && break; sleep 0.1; done
BODY="$(target/debug/bench reconcile-fleet)"
# The model measures the functions' own work too: the release build (the functions' profile).
cargo build --release -p bench
MODEL="$(target/release/bench reconcile-model)"
{
  echo "# Benchmark: the reconciler over the ECS maximum"
  echo
  echo "Measured by \`make bench-reconcile\` (\`bash scripts/bench_reconcile.sh\`, not part of the tests) on"
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') on loopback. Calls are counted per operation by the"
  echo "integration harness's SDK interceptor; moto's timings are informational (Python, one process)."
  echo
  echo "$BODY"
  echo
  echo "$MODEL"
} > "$OUT"
echo "bench: wrote $OUT" >&2
