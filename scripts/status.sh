#!/usr/bin/env bash
# 实时体检 — is the server running and well? Exit 0 running, 1 stale PID file, 2 unhealthy, 3 stopped.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export MEDGEMMA_X_DATA_DIR="${MEDGEMMA_X_DATA_DIR:-$REPO_ROOT/data}"
exec "$REPO_ROOT/target/release/medgemma-x" status "$@"
