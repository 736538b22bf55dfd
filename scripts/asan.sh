#!/usr/bin/env bash
# The whole test suite under AddressSanitizer (library, tool and tests built with -sanitize=address),
# in its own build folder. Leak reports are off: Foundation keeps some allocations for the process.
# The peak-memory tests are skipped: ASan's quarantine keeps freed memory on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --deps-only
mkdir -p .build-asan
# A failed build must stop here: --skip-build would test the previous binaries.
swift build --build-tests --sanitize=address --scratch-path .build-asan >.build-asan/build.log 2>&1 || { tail -40 .build-asan/build.log; exit 1; }
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  swift test --skip-build --sanitize=address --scratch-path .build-asan --skip longChainsOnALargeImageStayInBoundedMemory --skip MemoryTests "$@"
