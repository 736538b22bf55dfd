#!/usr/bin/env bash
# Sets up (Debian packages, release build) and runs clipdetect with the given arguments, e.g.
#   ./scripts/clipdetect.sh detect photos/        (clipdet-latent10k-plus, downloaded once into the cache)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh" >&2
exec "$here/.build/release/clipdetect" "$@"
