#!/usr/bin/env bash
# Builds the web app and serves it on http://localhost:8080 (installs what it needs first).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

build_web
PORT="${PORT:-8080}"
step "serving dist/ on http://localhost:$PORT (Ctrl-C to stop)"
exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory dist
