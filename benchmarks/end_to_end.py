"""End-to-end throughput (not a test): `clipdetect detect` on real-sized photos against the encoder
alone and against the reference pipeline (Pillow + open_clip on CPU), in one run.

  python3 benchmarks/end_to_end.py [--binary PATH ...] [--images 12] [--batch 8] [--precision fp32|bf16]

Photos: N 12-megapixel JPEGs and N 1-megapixel PNGs (gradients plus noise, made once). For each
binary (default the release build; give several to compare builds in the same run, taking turns):
`detect --no-cache` on all 2N files, images/s with start-up and model loading taken out (a run on
one file is subtracted), and `bench --batch B`, the encoder alone on input already preprocessed.
The reference reads each file with Pillow, applies open_clip's own preprocessing and encodes batches
of B under torch.no_grad(). The tower is the random ViT-L/14 of benchmarks/vit_l14.py.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
WORK = os.environ.get("CLIPDETECT_BENCH_DIR", "/tmp/clipdetect-vit-l14")


def photos(count):
    folder = os.path.join(WORK, "photos")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(3)

    def photo(w, h):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = rng.uniform(0, 6.3, 3)
        base = np.stack([127 + 100 * np.sin(xx / (60 + 15 * c) + phase[c] + yy / 140) for c in range(3)], -1)
        return np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8)

    for i in range(count):
        for name, size, kind in ((f"big{i:02d}.jpg", (4000, 3000), "JPEG"), (f"mid{i:02d}.png", (1152, 864), "PNG")):
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                Image.fromarray(photo(*size)).save(path, kind, **({"quality": 90} if kind == "JPEG" else {}))
    return sorted(glob.glob(os.path.join(folder, "big*.jpg")))[:count] + sorted(glob.glob(os.path.join(folder, "mid*.png")))[:count]


def detect_rate(binary, model, head, files, batch, precision):
    """Images/s of detect on `files`, less a one-file run (start-up and model loading)."""
    def timed(paths):
        start = time.perf_counter()
        subprocess.run([binary, "detect", "--no-cache", "--quiet", "--model", model, "--head", head, "--batch", str(batch),
                        "--precision", precision, "--format", "jsonl", *paths], check=True, capture_output=True)
        return time.perf_counter() - start
    timed(files[:1])  # warm-up: a cold page cache would make the load look slow and the rate high
    one = min(timed(files[:1]), timed(files[:1]))
    return (len(files) - 1) / (timed(files) - one)


def encoder_rate(binary, model, batch, precision):
    out = subprocess.run([binary, "bench", "--model", model, "--batch", str(batch), "--iterations", "2", "--json",
                          "--precision", precision],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_second"]


def reference_rate(files, batch):
    import open_clip
    import torch
    import vit_l14
    clip, _ = vit_l14.model()
    preprocess = open_clip.image_transform(224, is_train=False)
    torch.set_num_threads(os.cpu_count())
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(files), batch):
            pixels = torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files[i:i + batch]])
            clip.encode_image(pixels)
    return len(files) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", action="append", help="clipdetect binaries to compare (default the release build)")
    parser.add_argument("--images", type=int, default=12, help="photos of each kind")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--precision", default="fp32", help="clipdetect's --precision (the reference runs fp32)")
    args = parser.parse_args()
    binaries = args.binary or [os.path.join(ROOT, ".build", "release", "clipdetect")]
    flags = sorted({f for line in open("/proc/cpuinfo") if line.startswith("flags") for f in line.split()[2:]
                    if f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")})
    print(f"host: {os.cpu_count()} cores, {' '.join(flags)}")
    import vit_l14
    _, paths = vit_l14.model()
    model = paths["safetensors"]
    head = os.path.join(WORK, "e2e-head.safetensors")
    if not os.path.exists(head):
        import torch
        weights = os.path.join(WORK, "e2e-head.pth")
        g = torch.Generator().manual_seed(4)
        torch.save({"model": {"fc.weight": torch.randn(1, 1024, generator=g), "fc.bias": torch.randn(1, generator=g)}}, weights)
        subprocess.run([binaries[0], "head", "import", weights, "--backbone", model, "-o", head], check=True, capture_output=True)
    files = photos(args.images)
    print(f"{len(files)} photos: {args.images} JPEG 4000×3000, {args.images} PNG 1152×864; batch {args.batch}; {args.precision}")
    rates = {binary: [] for binary in binaries}
    reference = True
    for number in range(args.rounds):
        # Each round in the other order: the host's speed drifts, and the first to run is not favoured.
        for binary in (binaries if number % 2 == 0 else binaries[::-1]):
            e2e = detect_rate(binary, model, head, files, args.batch, args.precision)
            encoder = encoder_rate(binary, model, args.batch, args.precision)
            rates[binary].append(e2e)
            print(f"round {number + 1} {binary}: detect {e2e:.3f} images/s, encoder alone {encoder:.3f} images/s, "
                  f"end to end = {e2e / encoder:.2f}× the encoder")
        if reference:
            try:
                ref = reference_rate(files, args.batch)
                print(f"round {number + 1} reference (Pillow + open_clip, torch {__import__('torch').__version__}): {ref:.3f} images/s")
            except RuntimeError as error:  # open_clip's transforms need the real torchvision
                print(f"reference skipped: {error}")
                reference = False
    if len(binaries) > 1:
        import statistics
        first = binaries[0]
        for binary in binaries[1:]:
            ratios = [round(b / a, 3) for a, b in zip(rates[first], rates[binary])]
            print(f"detect {binary} / {first}: median {statistics.median(rates[binary]) / statistics.median(rates[first]):.3f}x, per round {ratios}")


if __name__ == "__main__":
    main()
