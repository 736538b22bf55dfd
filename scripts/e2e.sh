#!/usr/bin/env bash
# The service and the report as users and their tools meet them: the page and `eval --report` in
# headless Chromium (Selenium), the API key flow, SIGTERM, and schemathesis checking the running
# server against its /openapi.json.
# Needs the debug build (scripts/test.sh makes it). Screenshots: .build/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/apt.sh chromium chromium-driver
python3 -m pip install -q --disable-pip-version-check 'selenium==4.51.0' 'schemathesis==4.32.5' 'pytest==9.0.3' 'pillow==13.0.0'
# The reference's compute_metrics.py runs only where a snapshot of its repository is named.
if [ -n "${CLIPDETECT_REFERENCE_REPO:-}" ]; then python3 -m pip install -q --disable-pip-version-check 'pandas==2.3.3' 'scikit-learn==1.9.1'; fi
export CLIPDETECT_BIN="$(swift build --show-bin-path)/clipdetect"
export CLIPDETECT_ARTIFACTS="$PWD/.build/test-artifacts"
[ -x "$CLIPDETECT_BIN" ] || { echo "e2e: $CLIPDETECT_BIN is missing: run swift build first" >&2; exit 1; }
python3 -m pytest -q -p no:cacheprovider Tests/e2e

