#!/usr/bin/env bash
# The main job on a fresh machine: set up, build, then embed sample images with a committed
# reference tower. With a real checkpoint: .build/release/clipdetect embed --model open_clip_model.safetensors *.jpg
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
model=Tests/ClipDetectTests/Fixtures/encoder/a_gelu_proj32/openclip.safetensors
.build/release/clipdetect model info "$model"
.build/release/clipdetect embed --model "$model" --format csv Tests/ClipDetectTests/Fixtures/images/{jpeg_420.jpg,png_rgba.png,size_4000x3000.jpg}
