# Shared by the scripts in this folder: paths, phase timing, and the idempotent install steps.
# Every step checks before it installs, so a second run costs seconds.
# shellcheck shell=bash

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

RUST_TOOLCHAIN="1.99.1"
CARGO_LEPTOS_VERSION="0.3.11"
CARGO_FUZZ_VERSION="0.13.1"
TORCH_VERSION="2.11.0"
# The venv with the torch wheel (4.6 GB) lives in a cache outside the clone, so a fresh clone on the
# same machine links to it instead of installing again; .venv in the repo points at it.
VENV_CACHE="${MEDGEMMA_X_CACHE:-$HOME/.cache/medgemma-x}/venv-py311-torch-$TORCH_VERSION"

# wasm-opt comes from npm (build-support/), ahead of any older one on the system.
export PATH="$REPO_ROOT/build-support/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# tch finds libtorch through the venv's python (build.rs sets the rpath, so the binary needs no env).
export LIBTORCH_USE_PYTORCH=1

SCRIPT_STARTED=$(date +%s.%N)
PHASE_REPORT=""

log() { printf '\033[1m[medgemma-x]\033[0m %s\n' "$*" >&2; }

# phase NAME COMMAND...: runs COMMAND and records how long it took.
phase() {
  local name="$1"; shift
  local start end secs
  start=$(date +%s.%N)
  log "▶ $name"
  "$@"
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  PHASE_REPORT+=$(printf '  %-46s %8s s' "$name" "$secs")$'\n'
  log "✔ $name (${secs} s)"
}

print_phase_report() {
  local total
  total=$(awk -v a="$SCRIPT_STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '\n[medgemma-x] phase times:\n%s  %-46s %8s s\n' "$PHASE_REPORT" "total" "$total" >&2
}

# Debian packages: installed only when missing. apt-get update runs once, and only if needed.
ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust_toolchain() {
  # RUSTUP_AUTO_INSTALL=0 on some machines: rust-toolchain.toml alone does not install it.
  rustup toolchain list | grep -q "^$RUST_TOOLCHAIN" ||
    rustup toolchain install "$RUST_TOOLCHAIN" --profile minimal --component rustfmt,clippy
  # Both are no-ops when already there (a toolchain installed by hand may lack them).
  rustup component add --toolchain "$RUST_TOOLCHAIN" rustfmt clippy
  rustup target add --toolchain "$RUST_TOOLCHAIN" wasm32-unknown-unknown
}

# cargo-leptos downloads wasm-bindgen, wasm-opt and sass unless they are on PATH; downloads fail on
# hospital networks and here. So: wasm-bindgen-cli at the lockfile's version, wasm-opt from the npm
# package binaryen (Debian's binaryen 108 corrupts wasm-bindgen's externref table), plain CSS.
ensure_cargo_tools() {
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
  local wbg
  wbg=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg\$"; then
    # Without --locked: its lockfile names a crate version the registry no longer has.
    cargo install wasm-bindgen-cli --version "$wbg" --force
  fi
}

# Node.js runs wasm-opt (npm binaryen) and the end-to-end tests. Debian's when the machine has none.
ensure_node() {
  command -v npm >/dev/null 2>&1 || ensure_debian_packages nodejs npm
}

# npm packages of one folder, exactly as its package-lock.json says (about a second when cached).
ensure_npm_packages() {
  (cd "$1" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
}

ensure_venv() {
  if [ ! -e .venv ]; then
    if [ ! -f "$VENV_CACHE/.complete" ]; then
      rm -rf "$VENV_CACHE"
      mkdir -p "$(dirname "$VENV_CACHE")"
      python3 -m venv "$VENV_CACHE"
      "$VENV_CACHE/bin/pip" install -q "torch==$TORCH_VERSION"
      touch "$VENV_CACHE/.complete"
    fi
    rm -f .venv # a dangling link to a removed cache
    ln -s "$VENV_CACHE" .venv
  fi
  .venv/bin/python -W ignore -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" ||
    { log ".venv does not hold torch==$TORCH_VERSION; remove .venv and run again"; return 1; }
  # torch-sys asks `python` for the torch paths when VIRTUAL_ENV is set.
  export VIRTUAL_ENV="$REPO_ROOT/.venv"
  export PATH="$REPO_ROOT/.venv/bin:$PATH"
}

# Python packages for tests and fixture generation (never needed at run time); pip skips what is there.
ensure_test_python() {
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
}

# Tiny random Gemma 3 checkpoints and golden outputs from transformers, GGUF dequantization vectors from
# gguf-py, and the real gemma-3-270m with transformers' answers; each set regenerated only when its script or
# the Python packages change.
ensure_fixtures() {
  local out=target/fixtures stamp
  stamp=$(cat models/tests/fixtures/make_tiny_gemma3.py imaging/tests/fixtures/make_dicom_fixtures.py \
    models/tests/fixtures/make_gguf_quant_vectors.py scripts/requirements-test.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$out"
    .venv/bin/python -W ignore models/tests/fixtures/make_tiny_gemma3.py "$out"
    .venv/bin/python -W ignore imaging/tests/fixtures/make_dicom_fixtures.py "$out/dicom"
    .venv/bin/python -W ignore models/tests/fixtures/make_gguf_quant_vectors.py "$out"
    echo "$stamp" > "$out/.stamp"
  fi
  # The real model (1.1 GB of f32 safetensors beside the GGUF): its own folder, so a change to the tiny
  # checkpoints does not redo it.
  out=target/real-models
  stamp=$(cat models/tests/fixtures/make_gemma3_270m.py models/tests/fixtures/make_tiny_gemma3.py \
    scripts/requirements-test.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$out"
    .venv/bin/python -W ignore models/tests/fixtures/make_gemma3_270m.py "$out"
    echo "$stamp" > "$out/.stamp"
  fi
}

# What building the server and the site needs.
setup_build() {
  # cmake builds CharLS (JPEG-LS) and libjpeg-turbo (JPEG) from source; nasm gives libjpeg-turbo its SIMD.
  phase "Debian build packages" ensure_debian_packages pkg-config cmake nasm
  phase "Node.js" ensure_node
  phase "Rust toolchain $RUST_TOOLCHAIN" ensure_rust_toolchain
  phase "cargo-leptos, wasm-bindgen-cli" ensure_cargo_tools
  phase "wasm-opt (npm binaryen)" ensure_npm_packages build-support
  phase "venv with torch==$TORCH_VERSION" ensure_venv
}
