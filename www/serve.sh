#!/usr/bin/env bash
# The main job: build the npm package (engine for wasm32, models), the app, and the sync
# server, then serve the app and the sync API on one origin and print its URL.
#   bash www/serve.sh [--listen 127.0.0.1:8787] [any other likeness-server flag]
# Needs rustup and Node.js; installs the wasm32 target, wasm-bindgen-cli and the app's npm
# packages itself. Data: the server keeps its SQLite file in ~/.local/share/likeness; the
# app keeps everything else in the browser.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v node >/dev/null || { echo "Node.js and npm are required (https://nodejs.org or Debian's nodejs)"; exit 1; }
bash web/build.sh
(cd www && npm ci --no-audit --no-fund --loglevel=error && npm run build)
cargo build --release -p likeness-server
# The server prints "likeness-server listening on http://ADDR"; open that URL.
exec target/release/likeness-server --app www/dist "$@"
