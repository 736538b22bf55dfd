#!/usr/bin/env bash
# Installs the Debian libraries clipdetect links against and builds it (release).
# Idempotent: apt runs only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(pkg-config libopenblas-dev libdnnl-dev libturbojpeg0-dev libpng-dev libwebp-dev libgif-dev libtiff-dev libsqlite3-dev)
./scripts/apt.sh "${packages[@]}"
if [ "${1:-}" != "--deps-only" ]; then
  swift build -c release --product clipdetect
fi
