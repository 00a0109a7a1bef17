#!/usr/bin/env bash
# 启动引擎 — starts the server in the background (data in ./data unless MEDGEMMA_X_DATA_DIR says
# otherwise), waits until it answers, and prints its status. Extra arguments go to `medgemma-x serve`.
# Build once first with ./scripts/run.sh (or `cargo leptos build --release`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN="$REPO_ROOT/target/release/medgemma-x"
[ -x "$BIN" ] || { log "尚未构建 / not built yet: run ./scripts/run.sh once"; exit 1; }
export MEDGEMMA_X_DATA_DIR="${MEDGEMMA_X_DATA_DIR:-$REPO_ROOT/data}"
mkdir -p "$MEDGEMMA_X_DATA_DIR/logs"
# As run.sh: no model configured → the random test model that run.sh generated, if it is there.
if [ -z "${MEDGEMMA_X_MODEL_DIR:-}" ] && [[ " $* " != *" --model-dir"* ]] && [ -d "$REPO_ROOT/target/fixtures/tiny-a" ]; then
  export MEDGEMMA_X_MODEL_DIR="$REPO_ROOT/target/fixtures/tiny-a"
fi

if "$BIN" status >/dev/null 2>&1; then
  "$BIN" status
  exit 0
fi
nohup "$BIN" serve "$@" >>"$MEDGEMMA_X_DATA_DIR/logs/console.log" 2>&1 &
for _ in $(seq 1 60); do
  if "$BIN" status >/dev/null 2>&1; then
    "$BIN" status
    exit 0
  fi
  sleep 0.5
done
log "启动失败，请查看 / did not start; see $MEDGEMMA_X_DATA_DIR/logs/console.log"
"$BIN" status
exit 1
