#!/bin/sh
# The server the browser tests talk to: a fresh data dir with one radiologist account (as an installer adds
# it with `medgemma-x user add`), then `serve` with the tiny test model. playwright.config.ts runs it.
# Pre-reads off: the specs count the questions they ask (server/tests/pre_read.rs tests pre-reads).
set -eu
printf '%s\n' "$MEDGEMMA_X_E2E_PASSWORD" | "$MEDGEMMA_X_E2E_BIN" user add e2e-doctor --role radiologist \
    --display-name 测试医师 --password-stdin --data-dir "$MEDGEMMA_X_E2E_DATA_DIR"
exec "$MEDGEMMA_X_E2E_BIN" serve --bind "127.0.0.1:$MEDGEMMA_X_E2E_PORT" --data-dir "$MEDGEMMA_X_E2E_DATA_DIR" \
    --model-dir "$MEDGEMMA_X_E2E_MODEL_DIR" --log-format json --pre-read false
