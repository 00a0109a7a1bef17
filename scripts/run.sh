#!/usr/bin/env bash
# Sets up everything this machine needs, builds the release server and web app, and starts the server
# on 0.0.0.0:7860 with the embedded defaults (SQLite in ./data). Extra arguments go to
# `medgemma-x serve`, e.g. ./scripts/run.sh --model-dir /srv/models/medgemma-1.5-4b-it
# Without a model (no --model-dir, no MEDGEMMA_X_MODEL_DIR) it serves the tiny random test model, so the
# whole chat path runs; every answer is then labelled as coming from a random test model.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_build
phase "build server and web app (release)" cargo leptos build --release
if [ -z "${MEDGEMMA_X_MODEL_DIR:-}" ] && [[ " $* " != *" --model-dir"* ]]; then
  phase "Python packages for the test model (transformers)" ensure_test_python
  phase "tiny random test model" ensure_fixtures
  export MEDGEMMA_X_MODEL_DIR="$REPO_ROOT/target/fixtures/tiny-a"
  log "no model configured: serving the random test model $MEDGEMMA_X_MODEL_DIR (answers mean nothing)"
fi

print_phase_report

export MEDGEMMA_X_DATA_DIR="${MEDGEMMA_X_DATA_DIR:-$REPO_ROOT/data}"
# A new data dir gets one radiologist, `doctor`, so the app can be tried at once; its password is printed
# here and kept in secrets/ (the server itself makes the administrator `admin` at first start, password
# in secrets/initial-admin-password). Real sites add their own accounts and disable `doctor`.
if [ ! -f "$MEDGEMMA_X_DATA_DIR/db/medgemma-x.sqlite3" ]; then
  added=$(target/release/medgemma-x user add doctor --role radiologist --display-name 演示医师)
  password=$(sed -n 's/.*(shown once): //p' <<<"$added")
  (umask 077 && printf '%s\n' "$password" >"$MEDGEMMA_X_DATA_DIR/secrets/initial-doctor-password")
  log "首次启动：医师账号 doctor，密码 $password（保存在 $MEDGEMMA_X_DATA_DIR/secrets/initial-doctor-password） / first start: sign in as doctor with this password"
fi
log "starting: target/release/medgemma-x serve $* (data in $MEDGEMMA_X_DATA_DIR; Ctrl-C stops)"
exec target/release/medgemma-x serve "$@"
