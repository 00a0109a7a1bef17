#!/usr/bin/env bash
# 紧急制动 — stops the server (SIGTERM, waits for requests to finish, cleans a stale PID file).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export MEDGEMMA_X_DATA_DIR="${MEDGEMMA_X_DATA_DIR:-$REPO_ROOT/data}"
exec "$REPO_ROOT/target/release/medgemma-x" stop "$@"
