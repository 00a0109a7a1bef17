#!/usr/bin/env bash
# Sets up everything this machine needs, builds the release server and web app, and starts the server
# on 0.0.0.0:7860 with the embedded defaults (SQLite in ./data). Extra arguments go to
# `medgemma-x serve`, e.g. ./scripts/run.sh --model-dir /srv/models/medgemma-1.5-4b-it
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_build
phase "build server and web app (release)" cargo leptos build --release
print_phase_report

export MEDGEMMA_X_DATA_DIR="${MEDGEMMA_X_DATA_DIR:-$REPO_ROOT/data}"
log "starting: target/release/medgemma-x serve $* (data in $MEDGEMMA_X_DATA_DIR; Ctrl-C stops)"
exec target/release/medgemma-x serve "$@"
