#!/usr/bin/env bash
# `make bench`: measures the six functions and writes docs/benchmarks.md. Not part of the tests.
#   1. release binary sizes (host x86_64; arm64 via `cargo lambda build --arm64` when it can build)
#   2. cold start (exec -> first GET .../runtime/invocation/next) and peak RSS over one invocation,
#      against the fake Runtime API of the bench crate (bench/src/runtime_api.rs)
#   3. AWS calls per join event and per 1,000-host deployment (the integration harness `World` on moto)
#   4. chaos at volume: the seeded chaos run on the fakes (1,000 hosts) and on moto (bench chaos)
#   5. rolling updates at fleet scale: one on moto (BENCH_ROLL_HOSTS hosts) and 5,000 hosts modelled
#      on the fakes with a time model against ECS's rate limits (bench rollout, bench rollout-model),
#      and the calls an alarm-gated rollout adds (bench alarm-gated)
# Env: BENCH_RUNS (cold starts per function, default 20), BENCH_SKIP_ARM64=1 to skip the arm64 build,
#      BENCH_ROLL_HOSTS (hosts of the rolling update on moto, default 1000: over 50 minutes on moto).
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
# What the init is made of: the same binary with SSL_CERT_FILE on the system's bundle, i.e. the cost
# of extra root certificates (shared::runtime::https_client) at their largest.
ATTR="$("$BENCH" coldstart "as in the table above (no certificate file read)" target/release/deployer "$RUNS")"
BUNDLE="$(ls /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt 2>/dev/null | head -1 || true)"
if [[ -n "$BUNDLE" ]]; then
  ATTR+=$'\n'"$("$BENCH" coldstart "\`SSL_CERT_FILE=$BUNDLE\` (the system's bundle, $(grep -c 'BEGIN CERTIFICATE' "$BUNDLE") certificates, as extra roots)" target/release/deployer "$RUNS" "SSL_CERT_FILE=$BUNDLE")"
fi
CERTS="$(find /etc/ssl/certs -maxdepth 1 \( -type f -o -type l \) 2>/dev/null | wc -l)"
say "AWS calls (World on moto; registering 1,000 hosts takes a while)"
CALLS="$("$BENCH" calls target/release/deployer)"
ROLL_HOSTS="${BENCH_ROLL_HOSTS:-1000}"
say "rolling update of $ROLL_HOSTS hosts on moto (bench rollout; the longest part), then 5,000 modelled"
ROLL="$(BENCH_ROLL_HOSTS="$ROLL_HOSTS" "$BENCH" rollout)"
ROLL_MODEL="$("$BENCH" rollout-model)"
say "what an alarm-gated rollout adds (bench alarm-gated: 1,000 and 5,000 hosts modelled, BENCH_GATED_MOTO_HOSTS on moto)"
GATED="$("$BENCH" alarm-gated)"
say "chaos at volume (bench chaos: 1,000 hosts on the fakes, then moto; CHAOS_SEED=N replays one, default random)"
CHAOS="$(CHAOS_SEED="${CHAOS_SEED:-random}" "$BENCH" chaos)"

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
| cold start (exec → first \`/next\`) | ≤ 6 ms | [Cold start and memory](#cold-start-and-memory), median column |
| peak RSS over one invocation | ≤ 30 MB | [Cold start and memory](#cold-start-and-memory) |
| AWS calls per join event | ≤ 4 per environment | [AWS calls](#aws-calls) |
| 1,000-host deployment | ≤ 10 ListContainerInstances, 10 DescribeContainerInstances, 100 StartTask, batched DynamoDB writes | [AWS calls](#aws-calls) |
| rolling update of N hosts, ECS cluster reads | List + DescribeContainerInstances ≤ 2 × waves × ⌈N/100⌉ for the whole rollout | [Rolling updates at fleet scale](#rolling-updates-at-fleet-scale) |
| rolling update, AWS calls | ≤ 8 per host replaced on average, all in (floor and ratio given) | [Rolling updates at fleet scale](#rolling-updates-at-fleet-scale) |
| reconcile at fleet scale | 5,000 hosts × 5 environments reconciled within one period (5 min) | [benchmarks-reconcile.md](benchmarks-reconcile.md) |

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

| function | cold start median | p90 | min – max | RSS at init | peak RSS after one invocation | ≤ 6 ms, ≤ 30 MB | event | result (invocation time) | WARN/ERROR logs |
|---|---:|---:|---:|---:|---:|:-:|---|---|---|
${ROWS}
### Where the init time goes

Every function builds its AWS clients at init over one HTTPS client, \`shared::runtime::https_client\`:
the SDK's own client (hyper 1, rustls on aws-lc) trusting Mozilla's root certificates compiled into
the binary (the \`webpki-root-certs\` crate) instead of the system's files (here \`/etc/ssl/certs\`,
$CERTS entries, which it does not read), plus the certificates of \`SSL_CERT_FILE\` when it is set
(a private CA: docs/operations.md); its TLS configuration is built with the first request's
connection. Same binary, same environment, plus one variable:

| function | variant | median | p90 | min – max |
|---|---|---:|---:|---:|
${ATTR}

The second row is what extra roots cost at their largest (a whole bundle read and parsed at init);
a file with one CA measured as none (2.2 ms and 2.3 ms, deployer, 20 starts each, 2026-12-01).

Before that client (measured once when it was made, 2026-12-01, not by this script: each build of
instance-events started 30 times with \`target/debug/bench coldstart <label> <binary> 30\`, the five
in turn, three rounds; load 1.2 at the start):

| instance-events build | median (the three rounds' medians) | min – max of the 90 starts |
|---|---:|---:|
| before: the SDK's default client; \`rustls-native-certs\` reads the bundle and every file of \`/etc/ssl/certs\` (291 entries here) | 5.1 ms (5.1, 5.1, 5.1) | 4.5 ms – 6.1 ms |
| compiled-in roots; the TLS configuration built (and dropped) as each SDK client is built | 3.9 ms (3.9, 3.8, 3.9) | 3.4 ms – 4.5 ms |
| compiled-in roots; the TLS configuration built with the first request | 2.6 ms (2.6, 2.6, 2.3) | 2.1 ms – 6.7 ms |
| that, and the SDK crates' legacy TLS stack no longer linked (now) | 2.2 ms (2.2, 2.3, 2.2) | 1.9 ms – 2.7 ms |
| before, with \`SSL_CERT_DIR=<empty dir>\`: no root certificate at all (the floor; TLS unusable) | 2.2 ms (2.2, 2.2, 2.1) | 1.8 ms – 2.5 ms |

The earlier full run of this page measured 11.4 ms for the same default client on the same kind of
machine, under other conditions: compare rows measured together; in proportion, 5.1 ms to 2.2 ms
is 11.4 ms to 4.9 ms. The first invocation did not get slower: the SDK built a connector
with the first request before too (3 ms either way at this bench's millisecond resolution). What is
left of the 2 ms (\`perf\` over 60 starts of a build with symbols, before the legacy stack went):
about 55 % kernel (exec, page faults of the binary and the heap, tokio's threads, sockets), 13 % the
dynamic loader (relocations), 8 % libc, 21 % the binary (the SDK clients' configuration and
endpoint partitions, tracing; encoding the compiled-in roots for the SDK's trust store is about 2 %).

**Amazon Linux 2023's Lambda image.** \`provided.al2023\` is built from the AL2023 minimal container
image (AL2023 user guide, "Using AL2023 in AWS Lambda"). AL2023 keeps Fedora's layout: OpenSSL's
directory is \`/etc/pki/tls\`; \`/etc/pki/tls/cert.pem\` and \`/etc/pki/tls/certs/ca-bundle.crt\` are
links to \`/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem\`; \`/etc/pki/tls/certs\` holds only
that link and \`ca-bundle.trust.crt\`, and \`/etc/ssl/certs\` leads there too (a listing from an
AL2023 host in aws/aws-lambda-dotnet pull request 1661; the amazonlinux:2023 container's
\`/etc/ssl/certs\` shows the same two files). So in Lambda the default client read one bundle and
\`ca-bundle.trust.crt\`, not a directory of hundreds of files: in the earlier run of this page the
bundle alone was 2.9 ms of the 7.6 ms the walk cost here (deployer: 3.7 ms with no roots, 6.6 ms
with \`SSL_CERT_FILE\` on the bundle, 11.3 ms with the walk). The compiled-in roots remove that cost
either way. AWS's .NET runtime image sets \`SSL_CERT_FILE\` to an empty file (aws-lambda-dotnet pull
request 1663), which \`https_client\` refuses at init; the template's runtime, \`provided.al2023\`,
sets none as far as public sources show. Not verified here (no Lambda image, no network): the number
of certificates in the image's bundles, that the Lambda image matches the amazonlinux:2023 container
file for file, and what these reads cost on Lambda's CPU.

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

## Rolling updates at fleet scale

\`target/debug/bench rollout\` and \`bench rollout-model\` (\`bench/src/rollout.rs\`): a full rolling
update, revision 1 → 2 with \`maxUnavailable\` 25 % (4 waves), driven as the triggers would drive
it: the deployment's stream record steps it, the task events of what changed follow (and ECS's
report of each host whose task changed, to instance-events), the stream's next batch steps it again
(one step per 10 task events, a pessimistic stand-in for the deployer's 1 s batching window). On
moto with the real adapters, every AWS call counted on the wire (\`CallCounter\`; $ROLL_HOSTS hosts,
\`BENCH_ROLL_HOSTS\`), and at 5,000 hosts (the ECS maximum) on the in-process fakes, every port call
counted as the adapters would make it (\`bench/src/counted.rs\`: the same pages and batches,
\`shared::limits\`). One event per task change is delivered (the old task's STOPPED, the new one's
RUNNING); the event ECS also sends when a task is asked to stop (RUNNING, desired STOPPED) is not.
Targets: ECS cluster reads for the whole rollout ≤ 2 × waves × ⌈N/100⌉ (a List and a Describe page
per 100 hosts, once a wave); ≤ 8 AWS calls per host replaced on average, all in (deployer,
task-events, instance-events), against the floor derived below.

${ROLL}

${ROLL_MODEL}

${GATED}

## Chaos at volume

\`target/debug/bench chaos\` (\`bench/src/chaos.rs\`): the seeded chaos run of the tests
(\`shared/src/chaos.rs\`; \`cargo test\` runs it at 300 hosts and 10,000 events, and 1,000 events on
moto) at a bigger size on the in-process fakes, and on moto with the real adapters. Joins, drains,
deregistrations, agent disconnects, relabelling under the environments' selectors, tasks stopped
and started by hand, crashes, a rolling update and a crashing revision its breaker rolls back;
every event possibly duplicated, reordered or delivered concurrently; 20 % of the product's AWS
calls throttled and 5 % answered 5xx (half of them executed, the answer lost), some delayed. Then
the faults stop and at most 2 reconciles run. Checked throughout: a second task of an environment
on a host lives only until its own event is handled without a fault; at the end, exactly the
desired set. "Delivered" counts every delivery of an event (a duplicate twice), not the retries of
a failed one; a fault is counted per AWS call it failed; the fakes' time is simulated.

${CHAOS}

## Reproduce

\`\`\`sh
make bench                       # or: bash scripts/bench.sh   (BENCH_RUNS=20, BENCH_SKIP_ARM64=1)
\`\`\`
EOF
say "wrote $OUT"
