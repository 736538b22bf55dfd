#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: the Swift tests, then the service end to end
# (headless Chromium, schemathesis; scripts/e2e.sh). Fixtures are committed: no generator runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --deps-only
./scripts/apt.sh time  # GNU time: the memory tests read a child's peak RSS through it
python3 tools/undocumented.py >&2  # every public declaration of the library documented
swift build --build-tests
./scripts/docs.sh  # the DocC catalog builds without a warning (every symbol link resolves)
swift test --skip-build
./scripts/e2e.sh
