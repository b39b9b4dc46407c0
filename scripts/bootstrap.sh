#!/usr/bin/env bash
# Idempotent set-up of the project's local tooling on a fresh machine:
#   - .venv (python3 -m venv) with the pinned tools of scripts/requirements.txt;
#   - .venv/bin/zig, a wrapper around the ziglang wheel (cargo-lambda looks for `zig` on PATH);
#   - a check that the Rust toolchain is there.
# pip runs only when requirements.txt changed since the last successful install (stamp file
# .venv/.installed-<sha256 of requirements.txt>), so the second run takes well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/scripts/requirements.txt"
PYTHON="${PYTHON:-python3}"

say() { printf 'bootstrap: %s\n' "$*"; }

# 1. the virtualenv
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV ($($PYTHON --version 2>&1))"
  "$PYTHON" -m venv "$VENV"
else
  say "virtualenv $VENV exists ($("$VENV/bin/python" --version 2>&1))"
fi

# 2. the pinned packages, once per version of requirements.txt
SHA="$(sha256sum "$REQ" | cut -c1-16)"
STAMP="$VENV/.installed-$SHA"
if [[ -f "$STAMP" ]]; then
  say "packages of scripts/requirements.txt already installed (stamp ${STAMP#"$ROOT"/})"
else
  say "installing scripts/requirements.txt into .venv (pip)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r "$REQ"
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
  say "installed; stamp ${STAMP#"$ROOT"/}"
fi

# 2b. checkov in a virtualenv of its own (its pins conflict with aws-sam-cli's), same stamp scheme
CHECKOV_VENV="$ROOT/.venv-checkov"
CHECKOV_REQ="$ROOT/scripts/requirements-checkov.txt"
CHECKOV_STAMP="$CHECKOV_VENV/.installed-$(sha256sum "$CHECKOV_REQ" | cut -c1-16)"
if [[ -f "$CHECKOV_STAMP" ]]; then
  say "checkov already installed (stamp ${CHECKOV_STAMP#"$ROOT"/})"
else
  say "installing scripts/requirements-checkov.txt into .venv-checkov (pip)"
  [[ -x "$CHECKOV_VENV/bin/python" ]] || "$PYTHON" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r "$CHECKOV_REQ"
  rm -f "$CHECKOV_VENV"/.installed-*
  touch "$CHECKOV_STAMP"
fi

# 3. the zig wrapper (rewritten only when its content differs)
ZIG="$VENV/bin/zig"
WRAPPER='#!/bin/sh
# written by scripts/bootstrap.sh: the zig of the ziglang wheel, for cargo-lambda
exec "$(dirname "$0")/python" -m ziglang "$@"'
if [[ ! -x "$ZIG" ]] || [[ "$(cat "$ZIG")" != "$WRAPPER" ]]; then
  printf '%s\n' "$WRAPPER" > "$ZIG"
  chmod +x "$ZIG"
  say "wrote .venv/bin/zig ($("$ZIG" version 2>/dev/null || echo 'version unknown'))"
else
  say ".venv/bin/zig present"
fi

# 4. the Rust toolchain is not ours to install; say what is missing
if command -v cargo >/dev/null 2>&1; then
  say "rust: $(cargo --version)"
else
  say "WARNING: cargo not found on PATH; install a Rust toolchain (rustup) to build the functions"
fi

say "done. Tools are in .venv/bin (moto_server, cargo-lambda, zig, sam, cfn-lint); add it to PATH:"
say "  export PATH=\"$VENV/bin:\$PATH\""
