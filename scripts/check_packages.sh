#!/usr/bin/env bash
# The Lambda packages as AWS gets them: `cargo lambda build --release --arm64 --output-format zip`
# (target/lambda/<function>/bootstrap.zip), each at most 4 MB (4,000,000 bytes). Part of `make test`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
LIMIT=4000000
FUNCTIONS=(environments-api deployments-api instance-events task-events deployer reconciler)
# --bin, not -p, as scripts/check_cdk.sh (and cargo-lambda-cdk) build: features resolved over the
# whole workspace, so the CDK synth finds this build fresh instead of compiling it again.
B=(); for f in "${FUNCTIONS[@]}"; do B+=(--bin "$f"); done
cargo lambda build --release --arm64 --output-format zip "${B[@]}"
fail=0
printf '%-18s %12s %12s\n' function bootstrap zip
for f in "${FUNCTIONS[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  size="$(stat -c %s "$zip")"
  raw="$(unzip -Zt "$zip" | awk '{print $3}')"
  printf '%-18s %12s %12s\n' "$f" "$raw" "$size"
  if (( size > LIMIT )); then echo "  $f: $size bytes > $LIMIT" >&2; fail=1; fi
  listing="$(unzip -l "$zip")" # (not piped into grep -q: under pipefail its early exit fails unzip)
  if ! grep -q ' bootstrap$' <<< "$listing"; then echo "  $f: no bootstrap in $zip" >&2; fail=1; fi
done
exit "$fail"
