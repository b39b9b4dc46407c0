#!/usr/bin/env bash
# `make bench`: measures the six functions and writes docs/benchmarks.md. Not part of the tests.
#   1. release binary sizes (host x86_64; arm64 via `cargo lambda build --arm64` when it can build)
#   2. cold start (exec -> first GET .../runtime/invocation/next) and peak RSS over one invocation,
#      against the fake Runtime API of the bench crate (bench/src/runtime_api.rs)
#   3. AWS calls per join event and per 1,000-host deployment (the integration harness `World` on moto)
# Env: BENCH_RUNS (cold starts per function, default 20), BENCH_SKIP_ARM64=1 to skip the arm64 build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
export PATH="$VENV/bin:$PATH"
RUNS="${BENCH_RUNS:-20}"
WORK="target/bench"
OUT="docs/benchmarks.md"
FUNCTIONS=(environments-api deployments-api instance-events task-events deployer reconciler)
declare -A EVENT=(
  [environments-api]=events/api/ping.json
  [deployments-api]=events/api/get-deployment.json
  [instance-events]=events/ecs/instance-active.json
  [task-events]=events/ecs/task-running.json
  [deployer]=events/stream/deployment-created.json
  [reconciler]=events/schedule/reconcile.json
)
say() { printf 'bench: %s\n' "$*" >&2; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
zipsize() { # zip a binary as `bootstrap` (as Lambda wants it), print the archive's size
  local dir="$WORK/zip/$2"; rm -rf "$dir"; mkdir -p "$dir"
  cp "$1" "$dir/bootstrap"; (cd "$dir" && zip -q -9 bootstrap.zip bootstrap)
  stat -c %s "$dir/bootstrap.zip"
}
mkdir -p "$WORK/logs"

# cargo-lambda finds zig as `python3 -m ziglang` or `zig` on PATH: the venv's wrapper.
if [[ ! -x "$VENV/bin/zig" ]]; then
  printf '#!/bin/sh\nexec "$(dirname "$0")/python" -m ziglang "$@"\n' > "$VENV/bin/zig"
  chmod +x "$VENV/bin/zig"
fi

# 1. builds and sizes
P=(); for f in "${FUNCTIONS[@]}"; do P+=(-p "$f"); done
say "cargo build --release (${FUNCTIONS[*]})"
cargo build --release "${P[@]}"
say "cargo build -p bench"
cargo build -p bench
BENCH=target/debug/bench

SIZES="| function | x86_64 binary | x86_64 zipped | arm64 binary | arm64 zipped |"$'\n'"|---|---:|---:|---:|---:|"
ARM_NOTE=""
ARM_OK=0
if [[ "${BENCH_SKIP_ARM64:-0}" == 1 ]]; then
  ARM_NOTE="arm64 build skipped (BENCH_SKIP_ARM64=1)."
else
  say "cargo lambda build --release --arm64 (log: $WORK/logs/arm64-build.log)"
  if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
    ARM_NOTE="(cargo-lambda installed the \`aarch64-unknown-linux-gnu\` standard library with rustup for this build: that step needs the network.)"
  fi
  if timeout 3600 cargo lambda build --release --arm64 "${P[@]}" > "$WORK/logs/arm64-build.log" 2>&1; then
    ARM_OK=1
  else
    ARM_NOTE+=" \`cargo lambda build --release --arm64\` failed here, so only x86_64 figures are given: \`$(grep -m1 -iE 'error' "$WORK/logs/arm64-build.log" | sed 's/\x1b\[[0-9;]*m//g; s/`//g' | cut -c1-240)\` (full output: $WORK/logs/arm64-build.log)."
  fi
fi
for f in "${FUNCTIONS[@]}"; do
  bin="target/release/$f"
  row="| $f | $(mib "$(stat -c %s "$bin")") | $(mib "$(zipsize "$bin" "x86_64/$f")")"
  arm="target/lambda/$f/bootstrap"
  if [[ $ARM_OK == 1 && -f "$arm" ]] && file "$arm" | grep -q aarch64; then
    row+=" | $(mib "$(stat -c %s "$arm")") | $(mib "$(zipsize "$arm" "arm64/$f")") |"
  else
    row+=" | – | – |"
  fi
  SIZES+=$'\n'"$row"
done

# 2./3. moto on a free port, stopped on exit
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The tests' moto (one request at a time: its threaded server loses writes on cancelled
# transactions), with tables without streams (see WORLD_TABLE_STREAM in tests/src.rs).
export WORLD_TABLE_STREAM=off
"$VENV/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$PORT" > "$WORK/logs/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
export MOTO_ENDPOINT="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -fs "$MOTO_ENDPOINT/moto-api/" > /dev/null && break; sleep 0.1; done

LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
ROWS=""
for f in "${FUNCTIONS[@]}"; do
  say "cold start ×$RUNS and one invocation: $f"
  ROWS+="$("$BENCH" lambda "$f" "target/release/$f" "${EVENT[$f]}" "$RUNS")"$'\n'
done
# What the init is made of: the same binary without the native root certificates' directory walk
# (SSL_CERT_FILE alone), and with no root certificates at all (SSL_CERT_DIR on an empty directory).
mkdir -p "$WORK/empty-certs"
ATTR="$("$BENCH" coldstart "as in the table above" target/release/deployer "$RUNS")"$'\n'
BUNDLE="$(ls /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt 2>/dev/null | head -1 || true)"
if [[ -n "$BUNDLE" ]]; then
  ATTR+="$("$BENCH" coldstart "\`SSL_CERT_FILE=$BUNDLE\` (the bundle only, no directory walk)" target/release/deployer "$RUNS" "SSL_CERT_FILE=$BUNDLE")"$'\n'
fi
ATTR+="$("$BENCH" coldstart "\`SSL_CERT_DIR=<empty dir>\` (no root certificates loaded at all)" target/release/deployer "$RUNS" "SSL_CERT_DIR=$ROOT/$WORK/empty-certs")"
CERTS="$(find /etc/ssl/certs -maxdepth 1 \( -type f -o -type l \) 2>/dev/null | wc -l)"
say "AWS calls (World on moto; registering 1,000 hosts takes a while)"
CALLS="$("$BENCH" calls target/release/deployer)"

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
cat > "$OUT" <<EOF
# Benchmarks

Measured by \`make bench\` (\`bash scripts/bench.sh\`; not part of the test suite) on
$(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) CPUs ($CPU), Linux $(uname -r), $(rustc -V),
moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') on loopback. Figures from this
machine, not from AWS Lambda: they compare builds and catch regressions, they are not promises.

## Targets

| what | target | where measured |
|---|---|---|
| cold start (exec → first \`/next\`) | ≤ 15 ms | [Cold start and memory](#cold-start-and-memory), median column |
| peak RSS over one invocation | ≤ 30 MB | [Cold start and memory](#cold-start-and-memory) |
| AWS calls per join event | ≤ 4 per environment | [AWS calls](#aws-calls) |
| 1,000-host deployment | ≤ 10 ListContainerInstances, 10 DescribeContainerInstances, 100 StartTask, batched DynamoDB writes | [AWS calls](#aws-calls) |

## Binary size

\`cargo build --release -p <function>\` for the host (x86_64-unknown-linux-gnu; workspace profile:
opt-level "z", fat LTO, 1 codegen unit, strip, panic = abort). "zipped" is the binary as
\`bootstrap\` in a zip (\`zip -9\`), the shape Lambda takes.

$SIZES

${ARM_NOTE}

## Cold start and memory

Each release binary is started $RUNS times against a fake Lambda Runtime API on 127.0.0.1
(\`bench/src/runtime_api.rs\`) with only the environment Lambda would give it (\`TABLE_NAME=bench\`,
\`AWS_REGION\`, static keys, \`AWS_EC2_METADATA_DISABLED=true\`, \`AWS_LAMBDA_FUNCTION_*\` with 128 MB,
\`AWS_LAMBDA_LOG_FORMAT=JSON\`); **cold start** is the time from spawning the process to its first
\`GET /2018-06-01/runtime/invocation/next\` (logging set up, configuration read, the SDK clients
built), then it is killed. The page cache is warm: this is the process's own init, without
Lambda's download and sandbox set-up. **RSS at init** is VmHWM (\`/proc/<pid>/status\`) at that first
request. Then one more run serves one sample event with \`AWS_ENDPOINT_URL\` on moto (table \`bench\`
exists and is empty, so DynamoDB calls succeed and find nothing; ECS calls on cluster \`demo\` fail
fast): **peak RSS** is VmHWM once the function asks for its next event. Logs of that run:
\`$WORK/logs/<function>.log\`. Note: with a plain-http endpoint no TLS session is set up, which
real calls to AWS do (rustls), so in AWS the first invocation costs somewhat more time and memory.
Memory is in MiB (VmHWM's kB are KiB); the 30 MB target is checked as 30,000,000 bytes.

Load average when the measurements began: $LOAD (2-core machine shared with other work: the p90
and max columns carry that noise; the medians are the figures to compare).

| function | cold start median | p90 | min – max | RSS at init | peak RSS after one invocation | ≤ 15 ms, ≤ 30 MB | event | result (invocation time) | WARN/ERROR logs |
|---|---:|---:|---:|---:|---:|:-:|---|---|---|
${ROWS}
### Where the init time goes

Every function builds its SDK clients at init, and the SDK's HTTPS client (rustls with
\`rustls-native-certs\`) loads the system's root certificates then: the bundle file and every file
of the certificate directory (here \`/etc/ssl/certs\`, $CERTS entries). Same binary, same
environment, plus one variable:

| function | variant | median | p90 | min – max |
|---|---|---:|---:|---:|
${ATTR}

The difference between the first and last rows is the root-certificate loading; the last row is
the rest of the init (exec and dynamic linking, tokio, tracing, configuration, SDK clients).
How many certificate files the Lambda image (Amazon Linux 2023) has decides that share in AWS.

## AWS calls

\`target/debug/bench calls\` (\`bench/src/calls.rs\`): the integration harness \`World\` (tests/src.rs)
on moto, the real adapters, every AWS call counted per operation by its SDK interceptor
\`CallCounter\`. The harness's own calls (registering hosts, reading moto to build the events
EventBridge and DynamoDB Streams would deliver) are made before the counter is reset, so the
tables count only the product's calls. Wall-clock times are moto's on loopback (Python, one
process) and informational only: moto 5.2.5's TransactWriteItems deep-copies the whole table once
per item of the transaction (its rollback copy), so its cost grows with the table and it dominates
every moto timing below; moto's server also closes the connection after each response, so every
call opens a new TCP connection.
${CALLS}

## Reproduce

\`\`\`sh
make bench                       # or: bash scripts/bench.sh   (BENCH_RUNS=20, BENCH_SKIP_ARM64=1)
\`\`\`
EOF
say "wrote $OUT"
