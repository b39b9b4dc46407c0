#!/usr/bin/env bash
# schemathesis against the local stack (moto + cargo lambda watch + the local API gateway), from
# docs/openapi.yaml: every phase, no 5xx, every response as documented, invalid input refused.
# Prints the request count and failures; exits non-zero on any failure. See scripts/local/fuzz_api.py.
#   bash scripts/schemathesis.sh [--max-examples N] [--seed S] [--workers W]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh >/dev/null
exec "$ROOT/.venv/bin/python" scripts/local/fuzz_api.py "$@"
