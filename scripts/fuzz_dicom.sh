#!/usr/bin/env bash
# Fuzzes the upload path (fuzz/fuzz_targets/ingest.rs) for SECONDS (default 600): see scripts/fuzz.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" ingest "${1:-600}"
