"""Decode + preprocess throughput: clipdetect vs Pillow + the reference transform, same files, same run.

  python3 benchmarks/preprocess.py [images...]   (default: the committed corpus's photos)

Both read the files into memory first and time decode → Resize(224, BICUBIC) → CenterCrop → normalise.
Pillow runs on one core (as the reference does); clipdetect uses both cores for resampling.
"""
import glob
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from vit_l14 import BINARY, reference_preprocess  # noqa: E402  (the shared reference transform)


def main():
    images = sys.argv[1:] or sorted(
        p for p in glob.glob(os.path.join(ROOT, "Tests/ClipDetectTestSupport/Fixtures/images/*"))
        if os.path.basename(p).startswith(("jpeg_", "png_rgb.", "png_rgba.", "size_4000", "size_225")))
    blobs = [open(p, "rb").read() for p in images]
    iterations = 3
    for blob in blobs:
        reference_preprocess(io.BytesIO(blob))
    start = time.perf_counter()
    for _ in range(iterations):
        for blob in blobs:
            reference_preprocess(io.BytesIO(blob))
    pillow = len(blobs) * iterations / (time.perf_counter() - start)
    out = subprocess.run([BINARY, "bench", "preprocess", "--json", "--iterations", str(iterations)] + images,
                         check=True, capture_output=True, text=True).stdout
    ours = json.loads(out)["images_per_second"]
    print(f"decode + preprocess, {len(images)} files x {iterations}: clipdetect {ours:.1f} images/s, "
          f"Pillow + reference transform {pillow:.1f} images/s, ratio {ours / pillow:.2f}x")


if __name__ == "__main__":
    main()
