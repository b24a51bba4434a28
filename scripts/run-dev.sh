#!/usr/bin/env bash
# Runs the task worker in the background and the site in the foreground on http://127.0.0.1:5000.
set -euo pipefail
BIN=${VENV:-.venv}/bin
"$BIN/huey_consumer" webapp.worker.huey --workers 1 --quiet &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT INT TERM
echo "Neighbourly is running on http://127.0.0.1:5000 (Ctrl+C to stop)"
"$BIN/flask" --app webapp run --host 127.0.0.1 --port 5000
