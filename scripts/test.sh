#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite. Fixtures are committed: no Python needed.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --deps-only
swift build --build-tests
swift test --skip-build
