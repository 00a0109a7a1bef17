#!/usr/bin/env bash
# Sets up everything the tests need and runs all of them: Rust unit and integration tests, then the
# end-to-end tests in Debian's Chromium against the release build that scripts/run.sh serves.
# Idempotent; a second run skips every install and reuses the builds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_build
# Every server the tests start listens for DICOM on loopback and a free port (the default is 0.0.0.0:11112).
export MEDGEMMA_X_DICOM_BIND=127.0.0.1:0
# fonts: Chinese text in screenshots (and, later, PDFs) must not render as boxes.
phase "Debian test packages" ensure_debian_packages chromium fonts-wqy-microhei poppler-utils dcmtk orthanc orthanc-dicomweb
phase "end2end npm packages" ensure_npm_packages end2end
phase "Python test packages (transformers)" ensure_test_python
phase "test fixtures (tiny Gemma 3, DICOM)" ensure_fixtures

phase "rustfmt check" cargo fmt --all -- --check
phase "clippy (warnings are errors)" cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
# The pure crates also run in the browser: keep them building for wasm.
phase "measure and guidelines for wasm32" cargo build -q -p measure -p guidelines --target wasm32-unknown-unknown
phase "build server and web app (release)" cargo leptos build --release
phase "Rust tests" cargo test --workspace --exclude frontend

MEDGEMMA_X_E2E_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MEDGEMMA_X_E2E_PORT
export MEDGEMMA_X_BIN="$REPO_ROOT/target/release/medgemma-x"
phase "end2end tests (Playwright, Debian chromium)" bash -c 'cd end2end && npx playwright test'
# Every attack of the hostile-clients issue against a release server of its own, in short mode (< 1 min).
phase "hostile clients (scripts/hostile.py --short)" \
  python3 scripts/hostile.py --short --bin "$MEDGEMMA_X_BIN" --model-dir target/fixtures/tiny-a

print_phase_report
