#!/usr/bin/env bash
# Writes docs/report-example.html and its screenshot docs/report-example.png from the test fixtures:
# the tiny tower, the reference head fixture Platt-calibrated on the same list, and two impairment
# conditions. The list (docs/report-example-list.csv) calls the fixtures' JPEG and WebP files real and
# the others two "generators": it shows what a report holds, not how good a detector is.
# Needs a build (swift build) and chromium (scripts/e2e.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CLIPDETECT_BIN:-$(swift build --show-bin-path)/clipdetect}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tower=Tests/ClipDetectTestSupport/Fixtures/encoder/a_gelu_proj32/openclip.safetensors
list=docs/report-example-list.csv
"$bin" head import Tests/ClipDetectTestSupport/Fixtures/heads/weights.pth --backbone "$tower" --name tiny -o "$work/tiny.safetensors"
# Text lists name files relative to the list's folder: absolute paths here.
grep ',real$' "$list" | sed "s|^\.\./|$PWD/|; s|,real$||" > "$work/reals.txt"
grep -v ',real$' "$list" | tail -n +2 | sed "s|^\.\./|$PWD/|; s|,.*$||" > "$work/fakes.txt"
"$bin" calibrate --model "$tower" --head "$work/tiny.safetensors" --real "$work/reals.txt" --fake "$work/fakes.txt" --method platt \
  --band-error 0.3 --quiet -o "$work/tiny-calibrated.safetensors" > /dev/null
"$bin" eval --csv "$list" --model "$tower" --head "$work/tiny-calibrated.safetensors" --impair 'jpeg:q=30' --impair 'resize:factor=0.5' \
  --no-cache --quiet --report docs/report-example.html > /dev/null
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,3000 \
  --screenshot="$PWD/docs/report-example.png" "file://$PWD/docs/report-example.html" 2> /dev/null
echo "wrote docs/report-example.html and docs/report-example.png"
