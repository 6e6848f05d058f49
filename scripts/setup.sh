#!/usr/bin/env bash
# Sets up everything clinpred needs on a fresh machine; safe to run again.
# Python packages go into .venv, buf (npm) into node_modules, and the
# system packages the genomics pilot uses (plink2) come from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

stamp=.venv/.clinpred-installed
inputs_hash=$(cat pyproject.toml setup.py package.json package-lock.json | sha256sum | cut -d' ' -f1)

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$inputs_hash" ]; then
  echo "setup: installing Python packages (about 2 minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  .venv/bin/python -m pip check
  echo "setup: installing buf"
  npm ci --silent --no-fund --no-audit
  echo "$inputs_hash" > "$stamp"
fi

if ! command -v plink2 >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  echo "setup: installing plink2 (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq plink2 liblapack3 >/dev/null
fi
echo "setup: done"
