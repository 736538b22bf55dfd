#!/usr/bin/env bash
# Builds the library's DocC catalog (Sources/ClipDetect/ClipDetect.docc) into .build/docs and fails
# on any warning (a link to a symbol that is not there, a malformed page). The four layers' symbol
# graphs are read as one module, ClipDetect, as `import ClipDetect` presents them.
set -euo pipefail
cd "$(dirname "$0")/.."
swift package dump-symbol-graph --minimum-access-level public >/dev/null
graphs=$(swift build --show-bin-path)/../symbolgraph
work=.build/docs-symbols
rm -rf "$work" && mkdir -p "$work"
for layer in Core Encoder Detection Tools; do
  python3 - "$graphs/ClipDetect$layer.symbols.json" "$work/ClipDetect-$layer.symbols.json" <<'PY'
import json, sys
graph = json.load(open(sys.argv[1]))
graph["module"]["name"] = "ClipDetect"
json.dump(graph, open(sys.argv[2], "w"))
PY
done
docc convert Sources/ClipDetect/ClipDetect.docc --additional-symbol-graph-dir "$work" --fallback-display-name ClipDetect \
  --fallback-bundle-identifier org.clipdetect.ClipDetect --output-path .build/docs --analyze --warnings-as-errors
echo "documentation: .build/docs"
