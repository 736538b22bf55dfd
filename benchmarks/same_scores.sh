#!/usr/bin/env bash
# Two builds, the same numbers? Embeds fixture images with both on the random ViT-L/14 of
# benchmarks/vit_l14.py (pooled, projected, blocks; raw ten-crop blocks) and byte-compares the
# outputs, then scores them through both with one head trained by the second build.
#   benchmarks/same_scores.sh OLD_BINARY NEW_BINARY [fp32|bf16]
# Which backend runs is the host's choice (OpenBLAS on AVX2, oneDNN packed with AVX-512, bf16 where
# the CPU has it): run it on each kind of host. Exits 1 at the first difference.
set -euo pipefail
old=$1 new=$2 precision=${3:-fp32}
root=$(cd "$(dirname "$0")/.." && pwd)
model=${CLIPDETECT_BENCH_DIR:-/tmp/clipdetect-vit-l14}/open_clip_model.safetensors
[ -f "$model" ] || python3 "$root/benchmarks/vit_l14.py" check >/dev/null
work=$(mktemp -d)
export CLIPDETECT_HOME=$work/home
images=("$root"/Tests/ClipDetectTestSupport/Fixtures/images/{jpeg_420.jpg,png_rgba.png,webp_lossy.webp,photo_rocket.jpg,size_33x17.png,cjpeg_gray.jpg})
same() { cmp -s "$work/old-$1" "$work/new-$1" || { echo "$1 differs: $work/old-$1 $work/new-$1"; exit 1; }; echo "$1: byte-equal"; }
for features in pooled projected blocks; do
  for build in old new; do
    binary=$old; [ $build = new ] && binary=$new
    "$binary" embed --no-cache --precision "$precision" --model "$model" --features $features "${images[@]}" >"$work/$build-$features.jsonl" 2>/dev/null || true
  done
  same "$features.jsonl"
done
for build in old new; do
  binary=$old; [ $build = new ] && binary=$new
  "$binary" embed --no-cache --precision "$precision" --model "$model" --features blocks --no-normalize --view ten-crop "${images[@]:0:2}" \
    >"$work/$build-tencrop.jsonl" 2>/dev/null || true
done
same tencrop.jsonl
printf 'filename,typ\n' >"$work/list.csv"
for i in "${!images[@]}"; do echo "${images[$i]},$([ "$i" -lt 3 ] && echo real || echo fake)" >>"$work/list.csv"; done
"$new" train -q --no-cache --model "$model" --csv "$work/list.csv" --C 1 -o "$work/head.safetensors" >/dev/null
for build in old new; do
  binary=$old; [ $build = new ] && binary=$new
  "$binary" detect -q --no-cache --precision "$precision" --model "$model" --head "$work/head.safetensors" "${images[@]}" -o "$work/$build-detect.csv" || true
done
same detect.csv
rm -rf "$work"
