#!/usr/bin/env bash
# The CDK construct (infra/cdk) against the SAM template (infra/template.yaml):
#   1. npm ci into infra/cdk (once per package-lock.json), tsc --noEmit;
#   2. the six functions built once for arm64 (cargo lambda build --release --arm64, one cargo
#      invocation for the workspace, into the shared target/: one build serves all six);
#   3. cdk synth of the example app under cdk-nag AwsSolutionsChecks, twice (an unacknowledged
#      finding fails the synth):
#        default    - the construct's real path: RustFunction runs `cargo lambda build --bin <fn>`
#                     per function, which finds step 2's build fresh and only copies the binary;
#        configured - every option set (test/scenarios.json), functions from step 2's binaries
#                     (context daemon-scheduler:lambdaDir=target/lambda);
#   4. the parity test (infra/cdk/test/test_parity.py): both synthesized stacks against the template.
# CDK_LAMBDA_DIR=<dir of <fn>/bootstrap> skips step 2 and uses those binaries for both synths.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CDK="$ROOT/infra/cdk"
step() { printf '\n==> check_cdk: %s\n' "$*"; }
T0=$SECONDS

bash "$ROOT/scripts/bootstrap.sh" >/dev/null  # .venv: cargo-lambda, zig, the SAM translator
export PATH="$ROOT/.venv/bin:$PATH"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

step "npm ci (infra/cdk)"
cd "$CDK"
STAMP="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [[ -f "$STAMP" ]]; then
  echo "node_modules matches package-lock.json"
else
  npm ci --no-audit --no-fund --loglevel=error
  touch "$STAMP"
fi

step "tsc --noEmit"
npx tsc --noEmit -p .
# Type-checked once here; the synths below need no second check.
export TS_NODE_TRANSPILE_ONLY=true

FUNCTIONS=(environments-api deployments-api instance-events task-events deployer reconciler)
if [[ -n "${CDK_LAMBDA_DIR:-}" ]]; then
  LAMBDA_DIR="$(cd "$CDK_LAMBDA_DIR" && pwd)"
  DEFAULT_CODE=(-c "daemon-scheduler:lambdaDir=$LAMBDA_DIR")
  DEFAULT_HOW="prebuilt binaries"
  step "functions from $LAMBDA_DIR (CDK_LAMBDA_DIR)"
else
  LAMBDA_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/lambda"
  DEFAULT_CODE=()
  DEFAULT_HOW="RustFunction builds"
  step "cargo lambda build --release --arm64 (the six functions, one build)"
  t=$SECONDS
  # --bin, not -p: RustFunction builds `--bin <fn>`, which resolves features over the whole
  # workspace; `-p` would resolve them over the six packages only, and every dependency whose
  # features differ (aws-smithy-*, the SDKs) would be compiled again by the synth.
  (cd "$ROOT" && cargo lambda build --release --arm64 --lambda-dir "$LAMBDA_DIR" $(printf -- '--bin %s ' "${FUNCTIONS[@]}"))
  echo "build: $((SECONDS - t)) s"
fi

synth() {  # synth <scenario> <extra cdk args...>
  local scenario="$1"; shift
  local ctx=()
  while IFS= read -r line; do ctx+=(-c "$line"); done < <(python3 - "$scenario" <<'PY'
import json, sys
for k, v in json.load(open("test/scenarios.json"))[sys.argv[1]]["cdk"].items():
    print(f"{k}={v}")
PY
)
  rm -rf "cdk.out/$scenario"
  local t=$SECONDS
  npx cdk synth --quiet --output "cdk.out/$scenario" "${ctx[@]}" "$@"
  echo "synth $scenario: $((SECONDS - t)) s"
}

step "cdk synth + cdk-nag: default configuration ($DEFAULT_HOW)"
synth default "${DEFAULT_CODE[@]}"
step "cdk synth + cdk-nag: every option set"
synth configured -c "daemon-scheduler:lambdaDir=$LAMBDA_DIR"

step "parity with infra/template.yaml"
cd "$ROOT"
python -m unittest infra/cdk/test/test_parity.py
echo "check_cdk: $((SECONDS - T0)) s"
