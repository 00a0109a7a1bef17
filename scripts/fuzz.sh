#!/usr/bin/env bash
# Runs one cargo fuzz target (fuzz/fuzz_targets/TARGET.rs) with libFuzzer for SECONDS (default 600),
# starting from a corpus the test fixtures seed, and prints libFuzzer's final stats (executions, coverage);
# a crash leaves its input under fuzz/artifacts/TARGET/ and exits non-zero.
#   ingest       the upload path's decoders (zip, DICOM, JPEG, PNG) under AddressSanitizer
#   dimse        what a DICOM peer sends: PDUs, DIMSE command sets, C-FIND identifiers (AddressSanitizer)
#   http_bodies  the API's request bodies (multipart, report JSON, question, sign-in) through the real
#                router; no sanitizer (it links libtorch, which is not built for one; the Rust is safe code)
#
# cargo fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the pinned stable toolchain accept them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
target=${1:?usage: scripts/fuzz.sh ingest|dimse|http_bodies [SECONDS]}
seconds=${2:-600}

setup_build
phase "Python test packages" ensure_test_python
phase "test fixtures" ensure_fixtures
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  phase "cargo-fuzz $CARGO_FUZZ_VERSION" cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
corpus=target/fuzz-corpus/$target
mkdir -p "$corpus"
case "$target" in
  ingest)
    sanitizer=address
    find target/fixtures/dicom -type f \( -name '*.dcm' -o -name '*.jpg' -o -name '*.png' -o -name '*.zip' \) \
      -size -512k -exec cp -n {} "$corpus/" \;
    ;;
  dimse)
    sanitizer=address
    fuzz_dir=fuzz/dimse # a package of its own: no server, no libtorch in the sanitizer build
    # What a peer sends is at most a PDU (64 KiB) or an identifier (64 KiB): one allocation of more is a bug.
    malloc_limit=256
    python3 fuzz/dimse/seed_dimse.py "$corpus"
    ;;
  http_bodies)
    sanitizer=none
    # The fuzz binary has no rpath to libtorch (the server's build script sets one for medgemma-x only).
    torch_lib=$(.venv/bin/python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # The first byte picks the route (0 upload, 1 new report, 2 edited report, 3 question, 4 sign-in).
    python3 fuzz/seed_http_bodies.py "$corpus"
    ;;
  *) echo "unknown fuzz target: $target" >&2; exit 2 ;;
esac
cd "${fuzz_dir:-fuzz}"
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . --sanitizer "$sanitizer" "$target" "$REPO_ROOT/$corpus" -- \
  -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb="${malloc_limit:-4096}" -print_final_stats=1
