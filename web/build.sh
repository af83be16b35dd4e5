#!/usr/bin/env bash
# Build the npm package into web/dist:
#   1. the engine for wasm32-unknown-unknown (release; simd128 comes from .cargo/config.toml),
#   2. its JS bindings with wasm-bindgen-cli at exactly the version Cargo.lock pins
#      (installed here if missing; the bindings and the CLI must agree),
#   3. wasm-opt -O3 when WASM_OPT points at one (npm `binaryen`; Debian's wasm-opt 108
#      produces modules that fail to load, so it is never picked up implicitly),
#   4. the package sources, types and the three models.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  echo "installing wasm-bindgen-cli $version"
  # --locked fails on crates.io (a pinned dependency is gone); --no-default-features skips
  # the parts we do not use and takes the install from ~8 to ~3 minutes.
  cargo install wasm-bindgen-cli --version "$version" --no-default-features
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

cargo build --release --target wasm32-unknown-unknown -p likeness-wasm

out=web/dist
rm -rf "$out"
mkdir -p "$out/wasm" "$out/models"
# The name section (function names for stack traces) is 2.2 MB raw / 0.5 MB gzip: dropped
# unless LIKENESS_KEEP_NAMES=1.
names=--remove-name-section
[[ "${LIKENESS_KEEP_NAMES:-}" == 1 ]] && names=""
wasm-bindgen --target web $names --out-dir "$out/wasm" target/wasm32-unknown-unknown/release/likeness_wasm.wasm
if [[ -n "${WASM_OPT:-}" ]]; then
  "$WASM_OPT" -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals "$out/wasm/likeness_wasm_bg.wasm" -o "$out/wasm/likeness_wasm_bg.wasm"
fi
cp web/src/*.js web/src/index.d.ts "$out/"
cp models/blazeface-short.onnx models/blazeface-full.onnx models/faceapi-resnet.onnx "$out/models/"
echo "web/dist: $(du -sh "$out" | cut -f1)"
