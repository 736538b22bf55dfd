#!/usr/bin/env bash
# Installs the Debian libraries clipdetect links against and builds it (release).
# Idempotent: apt runs only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(pkg-config libopenblas-dev libturbojpeg0-dev libpng-dev libwebp-dev libgif-dev libtiff-dev libsqlite3-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
if [ "${1:-}" != "--deps-only" ]; then
  swift build -c release --product clipdetect
fi
