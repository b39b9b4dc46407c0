#!/usr/bin/env bash
# daemonctl against the local stack: builds the CLI, then scripts/local/daemonctl_e2e.py brings up
# its own stack (moto, cargo lambda watch, the SigV4-requiring local gateway, the event bus) and
# runs ping, env create/get/list, deploy --wait, status, a canary (deploy --canary, deployments
# pause/promote/resume/hosts), placement flags, an API error and a DLQ replay.
# Exit 1 on any failed expectation. Needs scripts/bootstrap.sh's .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
cargo build --quiet -p daemonctl
exec "$ROOT/.venv/bin/python" scripts/local/daemonctl_e2e.py --daemonctl "$ROOT/target/debug/daemonctl" "$@"
