"""The calibration experiment of docs/calibration.md: a head trained on one generator, calibrated on
real images of another source, then read on images held apart from both.

  python3 tools/experiments/calibration.py [--binary .build/release/clipdetect] [--work /tmp/clipdetect-calibration]

No real CLIP tower can be downloaded here, so the tower is the tests' fixture (a_gelu_proj32, random
weights) and the images are made up: two "real" sources and two "generators" that differ in
texture, as camera photos and generated images differ in their noise. What this shows is the
mechanics a user relies on (the false-positive rate asked for is the one met on new real images of
the same source; what the uncertain band costs), not how well CLIP features detect real generators.
Needs numpy and Pillow.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOWER = os.path.join(ROOT, "Tests", "ClipDetectTestSupport", "Fixtures", "encoder", "a_gelu_proj32", "openclip.safetensors")


def make(kind, index, rng):
    """One 256×256 image of a source."""
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    if kind == "camera":  # real source A: smooth light, sensor noise, JPEG 92
        base = np.stack([200 * (0.3 + 0.7 * np.cos(rng.uniform(1, 4) * xx + rng.uniform(0, 6)) * yy) for _ in range(3)], -1)
        return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8), ("JPEG", 92)
    if kind == "platform":  # real source B: textured scenes, downscaled and recompressed by a platform, JPEG 75
        waves = sum(np.sin(rng.uniform(5, 40) * (np.cos(t) * xx + np.sin(t) * yy) + rng.uniform(0, 6)) for t in rng.uniform(0, 3, 4))
        base = np.stack([128 + 25 * waves + rng.uniform(-40, 40) for _ in range(3)], -1)
        image = Image.fromarray(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)).resize((320, 320), Image.BICUBIC)
        return np.asarray(image.resize((256, 256), Image.LANCZOS)), ("JPEG", 75)
    if kind == "gen1":  # generator 1: nearest-neighbour upsampling (blocky periodic traces), PNG
        small = rng.normal(128, 50, (64, 64, 3))
        image = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((256, 256), Image.NEAREST)
        return np.asarray(image.filter(ImageFilter.GaussianBlur(0.6))), ("PNG", None)
    # generator 2: bilinear upsampling of smooth noise with a faint checkerboard, PNG
    small = rng.normal(128, 35, (128, 128, 3))
    image = np.asarray(Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((256, 256), Image.BILINEAR)).astype(float)
    checker = 6 * (((np.arange(256)[:, None] + np.arange(256)[None, :]) % 2) * 2 - 1)
    return np.clip(image + checker[..., None], 0, 255).astype(np.uint8), ("PNG", None)


def images(work, kind, count, seed):
    folder = os.path.join(work, kind)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        pixels, (fmt, quality) = make(kind, i, rng)
        path = os.path.join(folder, f"{kind}{i:04d}.{'jpg' if fmt == 'JPEG' else 'png'}")
        if not os.path.exists(path):
            Image.fromarray(pixels).save(path, fmt, **({"quality": quality} if quality else {}))
        paths.append(path)
    return paths


def run(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(args[:2])} failed: {out.stderr}")
    return out.stdout


def listing(work, name, paths):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write("\n".join(paths) + "\n")
    return path


def detect(binary, head, paths, work):
    out = run(binary, "detect", "--no-cache", "--model", TOWER, "--head", head, "--format", "jsonl", "--csv",
              write_csv(work, "detect-list.csv", [(p, "") for p in paths]))
    return {row["filename"]: row for row in map(json.loads, out.splitlines())}


def write_csv(work, name, rows):
    path = os.path.join(work, name)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "typ"])
        writer.writerows(rows)
    return path


def interval(k, n):
    from scipy.stats import beta
    return (0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)), (1.0 if k == n else beta.ppf(0.975, k + 1, n - k))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "clipdetect"))
    parser.add_argument("--work", default="/tmp/clipdetect-calibration")
    args = parser.parse_args()
    binary, work = args.binary, args.work
    os.makedirs(work, exist_ok=True)
    camera, gen1 = images(work, "camera", 150, 1), images(work, "gen1", 150, 2)
    platform, gen2 = images(work, "platform", 900, 3), images(work, "gen2", 400, 4)
    cal_reals, test_reals = platform[:300], platform[300:]
    cal_fakes, test_fakes = gen2[:150], gen2[150:]

    head = os.path.join(work, "head.safetensors")
    run(binary, "train", "--no-cache", "--model", TOWER, "--real", listing(work, "camera.txt", camera),
        "--fake", listing(work, "gen1.txt", gen1), "-o", head)

    def fpr(head_file):
        rows = detect(binary, head_file, test_reals, work)
        k = sum(rows[p]["label"] == "synthetic" for p in test_reals)
        return k, len(test_reals)

    lines = ["| head | threshold from | FPR on 600 held-apart platform reals | 95% interval |", "|---|---|---|---|"]
    k, n = fpr(head)
    lo, hi = interval(k, n)
    lines.append(f"| trained (camera vs generator 1) | P > 1/2 | {100 * k / n:.1f}% ({k}/{n}) | {100 * lo:.1f}–{100 * hi:.1f}% |")
    results = {"default": (k, n)}
    for target in (0.01, 0.05):
        out = os.path.join(work, f"calibrated-{target}.safetensors")
        printed = run(binary, "calibrate", "--model", TOWER, "--head", head, "--real", listing(work, "cal-reals.txt", cal_reals),
                      "--target-fpr", str(target), "-o", out)
        k, n = fpr(out)
        lo, hi = interval(k, n)
        lines.append(f"| calibrated on 300 platform reals | target {100 * target:g}% | {100 * k / n:.1f}% ({k}/{n}) | {100 * lo:.1f}–{100 * hi:.1f}% |")
        results[target] = (k, n, printed.splitlines()[1])

    # Real and synthetic calibration images: isotonic probability, a band where either error > 10%.
    cal = ["--real", listing(work, "cal-reals.txt", cal_reals), "--fake", listing(work, "cal-fakes.txt", cal_fakes)]
    heads, printed = [("trained, P > 1/2", head)], ""
    for name, extra in (("isotonic", []), ("isotonic, band error 40%", ["--band-error", "0.4"]),
                        ("isotonic, band error 10%", ["--band-error", "0.1"])):
        out = os.path.join(work, f"iso{len(heads)}.safetensors")
        printed = run(binary, "calibrate", "--model", TOWER, "--head", head, *cal, "--method", "isotonic", *extra, "-o", out)
        heads.append((name, out))
    table = write_csv(work, "test.csv", [(p, "real") for p in test_reals] + [(p, "gen2") for p in test_fakes])
    evaluations = {}
    for name, head_file in heads:
        out = run(binary, "eval", "--no-cache", "--model", TOWER, "--head", head_file, "--csv", table, "--save-tab", os.path.join(work, "tab.csv"))
        with open(os.path.join(work, "tab.csv")) as f:
            evaluations[name] = next(r for r in csv.DictReader(f) if r["generator"] == "gen2")
    lines += ["", "| head | AUC | acc | coverage | acc on covered | ECE |", "|---|---|---|---|---|---|"]
    for name, row in evaluations.items():
        lines.append(f"| {name} | {float(row['auc']):.3f} | {float(row['acc']):.3f} | {100 * float(row['coverage']):.1f}% | "
                     f"{float(row['acc_covered']):.3f} | {float(row['ece']):.3f} |")
    print("\n".join(lines))
    print("\ncalibrate's own report (isotonic, band error 10%):\n" + printed)


if __name__ == "__main__":
    main()
