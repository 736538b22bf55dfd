#!/usr/bin/env bash
# The service as users and their tools meet it: the page in headless Chromium (Selenium), the API
# key flow, SIGTERM, and schemathesis checking the running server against its /openapi.json.
# Needs the debug build (scripts/test.sh makes it). Screenshots: .build/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
python3 -m pip install -q --disable-pip-version-check 'selenium==4.51.0' 'schemathesis==4.32.5' 'pytest==9.0.3'
export CLIPDETECT_BIN="$(swift build --show-bin-path)/clipdetect"
export CLIPDETECT_ARTIFACTS="$PWD/.build/test-artifacts"
[ -x "$CLIPDETECT_BIN" ] || { echo "e2e: $CLIPDETECT_BIN is missing: run swift build first" >&2; exit 1; }
python3 -m pytest -q -p no:cacheprovider Tests/e2e

