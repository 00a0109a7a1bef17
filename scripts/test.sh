#!/usr/bin/env bash
# Sets up everything the tests need and runs all of them: Rust unit and integration tests, then the
# end-to-end tests in Debian's Chromium. Idempotent; a second run skips every install.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_build
# fonts: Chinese text in screenshots (and, later, PDFs) must not render as boxes.
phase "Debian test packages" ensure_debian_packages chromium fonts-wqy-microhei
phase "end2end npm packages" bash -c 'cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error'

phase "rustfmt check" cargo fmt --all -- --check
phase "build server and web app (debug)" cargo leptos build
phase "Rust tests" cargo test --workspace --exclude frontend

MEDGEMMA_X_E2E_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MEDGEMMA_X_E2E_PORT
export MEDGEMMA_X_BIN="$REPO_ROOT/target/debug/medgemma-x"
phase "end2end tests (Playwright, Debian chromium)" bash -c 'cd end2end && npx playwright test'

print_phase_report
