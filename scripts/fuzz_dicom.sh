#!/usr/bin/env bash
# Fuzzes the upload path (fuzz/fuzz_targets/ingest.rs) with libFuzzer under AddressSanitizer for SECONDS
# (default 600), starting from the DICOM/JPEG/PNG/zip test fixtures. Prints libFuzzer's final stats;
# a crash leaves its input under fuzz/artifacts/ingest/ and exits non-zero.
#
# cargo fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the pinned stable toolchain accept them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
seconds=${1:-600}

setup_build
phase "Python test packages" ensure_test_python
phase "test fixtures" ensure_fixtures
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  phase "cargo-fuzz $CARGO_FUZZ_VERSION" cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
corpus=target/fuzz-corpus/ingest
mkdir -p "$corpus"
find target/fixtures/dicom -type f \( -name '*.dcm' -o -name '*.jpg' -o -name '*.png' -o -name '*.zip' \) -size -512k \
  -exec cp -n {} "$corpus/" \;
cd fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run ingest "../$corpus" -- -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1
