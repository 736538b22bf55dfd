"""The full-size check and benchmark: a random-weight ViT-L/14 saved by open_clip itself.

  python3 benchmarks/vit_l14.py check   # clipdetect embed vs open_clip on the same images (fp32, and bf16 where the CPU has it)
  python3 benchmarks/vit_l14.py bench [ROUNDS]   # images/s: clipdetect vs PyTorch vs ONNX Runtime, same run;
                                                  # with AVX-512 BF16 also clipdetect bf16 vs PyTorch bf16 autocast
  CLIPDETECT_BASELINE=PATH python3 benchmarks/vit_l14.py bench [ROUNDS]
                                                  # also another build (e.g. of an earlier commit) in the same
                                                  # interleaved rounds, and ours as a ratio of it

Needs the reference stack (tools/fixtures/requirements.txt, plus onnxruntime and onnx for bench)
and a release build (swift build -c release). Files go to $CLIPDETECT_BENCH_DIR (default
/tmp/clipdetect-vit-l14); the model is made once and reused.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))
from reference import MEAN, STD, reference_preprocess  # noqa: E402
WORK = os.environ.get("CLIPDETECT_BENCH_DIR", "/tmp/clipdetect-vit-l14")
BINARY = os.path.join(ROOT, ".build", "release", "clipdetect")


def model():
    """A random ViT-L-14 (open_clip's own init), saved as safetensors and torch.save beside its config."""
    import torchvision_shim
    torchvision_shim.install()
    import open_clip
    from safetensors.torch import save_file
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-L-14", pretrained=None).eval()
    os.makedirs(WORK, exist_ok=True)
    paths = {"safetensors": os.path.join(WORK, "open_clip_model.safetensors"),
             "pth": os.path.join(WORK, "open_clip_pytorch_model.bin")}
    if not all(os.path.exists(p) for p in paths.values()):
        state = {k: v.contiguous() for k, v in clip.state_dict().items()}
        save_file(state, paths["safetensors"])
        torch.save(state, paths["pth"])
        with open(os.path.join(WORK, "open_clip_config.json"), "w") as f:
            json.dump({"model_cfg": open_clip.get_model_config("ViT-L-14"),
                       "preprocess_cfg": {"mean": list(MEAN), "std": list(STD)}}, f)
    else:
        from safetensors.torch import load_file
        clip.load_state_dict(load_file(paths["safetensors"]))
    return clip, paths


def sample_images():
    """Photos-like test images of several sizes and formats (smooth gradients plus noise)."""
    rng = np.random.default_rng(1)
    folder = os.path.join(WORK, "images")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, (w, h, ext) in enumerate([(640, 480, "jpg"), (300, 500, "png"), (224, 224, "png"), (1024, 683, "jpg")]):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 / w), (yy * 255 / h), ((xx + yy) * 127 / (w + h))], -1)
        pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"sample{i}.{ext}")
        Image.fromarray(pixels).save(path, quality=90) if ext == "jpg" else Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def check():
    clip, paths = model()
    images = sample_images()
    visual = clip.visual
    visual.proj = None  # the detector's "next-to-last" feature
    with torch.no_grad():
        ref = visual(torch.stack([reference_preprocess(p) for p in images]))
        ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    worst = 0
    for kind, path in paths.items():
        out = os.path.join(WORK, f"features-{kind}.npy")
        subprocess.run([BINARY, "embed", "--no-cache", "--model", path, "--format", "npy", "-o", out] + images, check=True)
        ours = np.load(out)
        cosine = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
        diff = np.abs(ours - ref).max()
        worst = max(worst, diff)
        print(f"{kind:12s} min cosine {cosine.min():.8f}  max |Δ| {diff:.2e}  ({len(images)} images)")
        if cosine.min() < 0.99999 or diff > 1e-4:
            sys.exit(f"FAIL: {kind} features differ from open_clip's")
    print("OK: cosine ≥ 0.99999 and max |Δ| ≤ 1e-4 for every file format")

    # A head saved the reference's way, imported, and a folder scored by detect.
    g = torch.Generator().manual_seed(4)
    weight, bias = torch.randn(1, 1024, generator=g), torch.randn(1, generator=g)
    pth, head = os.path.join(WORK, "weights.pth"), os.path.join(WORK, "head.safetensors")
    torch.save({"model": {"fc.weight": weight, "fc.bias": bias}}, pth)
    subprocess.run([BINARY, "head", "import", pth, "--backbone", paths["safetensors"], "--name", "random", "-o", head],
                   check=True, capture_output=True)
    out = subprocess.run([BINARY, "detect", "--no-cache", "--model", paths["pth"], "--head", head,
                          os.path.dirname(images[0])], check=True, capture_output=True, text=True).stdout
    rows = {line.split(",")[0]: float(line.split(",")[1]) for line in out.splitlines()[1:]}
    expected = (torch.from_numpy(ref) @ weight.T + bias)[:, 0].numpy()
    worst = max(abs(rows[path] - value) for path, value in zip(images, expected))
    print(f"detect on the folder with the imported head: max |Δscore| {worst:.2e} ({len(rows)} images)")
    if worst > 1e-3:
        sys.exit("FAIL: scores differ from open_clip + head")

    # The bf16 accuracy gate, where the CPU has the instructions: cosine ≥ 0.9999, scores within 0.02.
    if not has_bf16():
        print("bf16: this CPU has no AVX-512 BF16; gate not run")
        return
    out = os.path.join(WORK, "features-bf16.npy")
    subprocess.run([BINARY, "embed", "--no-cache", "--precision", "bf16", "--model", paths["safetensors"], "--format", "npy",
                    "-o", out] + images, check=True)
    ours = np.load(out)
    cosine = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    out = subprocess.run([BINARY, "detect", "--no-cache", "--precision", "bf16", "--model", paths["safetensors"], "--head", head,
                          os.path.dirname(images[0])], check=True, capture_output=True, text=True).stdout
    rows = {line.split(",")[0]: float(line.split(",")[1]) for line in out.splitlines()[1:]}
    shift = max(abs(rows[path] - value) for path, value in zip(images, expected))
    print(f"bf16: min cosine to open_clip fp32 {cosine.min():.6f}, max |Δscore| {shift:.4f} ({len(images)} images)")
    if cosine.min() < 0.9999 or shift > 0.02:
        sys.exit("FAIL: bf16 is outside the gate (cosine ≥ 0.9999, |Δscore| ≤ 0.02)")
    print("OK: bf16 within the gate")


def has_bf16():
    with open("/proc/cpuinfo") as f:
        return "avx512_bf16" in f.read() or "amx_bf16" in open("/proc/cpuinfo").read()


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split()
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"]
    return " ".join(flag for flag in wanted if flag in flags)


def bench(rounds=3):
    """The three engines take turns, `rounds` times, and each reports its median: the host is shared
    and its speed drifts, so one back-to-back run of each is not a fair comparison."""
    import statistics
    clip, paths = model()
    visual = clip.visual
    visual.proj = None
    batches = [1, 8]
    torch.set_num_threads(os.cpu_count())

    def timed(run, b):
        run(b)  # warm-up
        reps = 3 if b == 1 else 1
        t = time.perf_counter()
        for _ in range(reps):
            run(b)
        return b * reps / (time.perf_counter() - t)

    def pytorch(b, bf16=False):
        pixels = torch.zeros(b, 3, 224, 224).normal_(generator=torch.Generator().manual_seed(0))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            visual(pixels)

    bf16 = has_bf16()
    engines = {"pytorch": lambda b: timed(pytorch, b)}
    if bf16:
        engines["pytorch-bf16"] = lambda b: timed(lambda n: pytorch(n, bf16=True), b)
    try:
        import onnxruntime as ort
        onnx_path = os.path.join(WORK, "visual.onnx")
        if not os.path.exists(onnx_path):
            torch.onnx.export(visual, torch.randn(1, 3, 224, 224), onnx_path, input_names=["pixels"],
                              output_names=["features"], dynamic_axes={"pixels": {0: "n"}}, opset_version=17,
                              dynamo=False)
        session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        inputs = {b: np.random.default_rng(0).standard_normal((b, 3, 224, 224), dtype=np.float32) for b in batches}
        engines["onnxruntime"] = lambda b: timed(lambda n: session.run(None, {"pixels": inputs[n]}), b)
    except ImportError:
        print("onnxruntime not installed: skipping it")

    def clipdetect(b, precision="fp32", binary=BINARY):
        out = subprocess.run([binary, "bench", "--model", paths["safetensors"], "--batch", str(b), "--precision", precision,
                              "--iterations", "3" if b == 1 else "1", "--json"], check=True, capture_output=True, text=True)
        return json.loads(out.stdout.splitlines()[0])["images_per_second"]
    engines["clipdetect"] = clipdetect
    baseline = os.environ.get("CLIPDETECT_BASELINE")
    if baseline:
        engines["baseline"] = lambda b: clipdetect(b, binary=baseline)
    if bf16:
        engines["clipdetect-bf16"] = lambda b: clipdetect(b, "bf16")

    samples = {(name, b): [] for name in engines for b in batches}
    for _ in range(rounds):
        for b in batches:
            for name, run in engines.items():
                samples[(name, b)].append(run(b))
    results = {key: statistics.median(values) for key, values in samples.items()}
    print(f"host: {os.cpu_count()} cores, flags {cpu_flags()}")
    print(f"ViT-L/14 fp32, images/s, median of {rounds} interleaved rounds (higher is better)")
    print(f"{'batch':>5} {'clipdetect':>11} {'PyTorch':>9} {'ONNX RT':>9} {'vs PyTorch':>11} {'vs ONNX RT':>11}")
    for b in batches:
        ours, pt, ort_ = results[("clipdetect", b)], results[("pytorch", b)], results.get(("onnxruntime", b))
        ort_text = f"{ort_:9.3f}" if ort_ else f"{'-':>9}"
        ratio = f"{ours / ort_:10.2f}x" if ort_ else f"{'-':>11}"
        print(f"{b:5d} {ours:11.3f} {pt:9.3f} {ort_text} {ours / pt:10.2f}x {ratio}")
    print("per-round ratios vs PyTorch:", {b: [round(o / p, 2) for o, p in zip(samples[("clipdetect", b)], samples[("pytorch", b)])]
                                         for b in batches})
    if baseline:
        print(f"against {baseline}, same rounds (ours / baseline):")
        for b in batches:
            ratios = [round(o / a, 3) for o, a in zip(samples[("clipdetect", b)], samples[("baseline", b)])]
            print(f"  batch {b}: {results[('clipdetect', b)]:.3f} vs {results[('baseline', b)]:.3f} images/s, "
                  f"{results[('clipdetect', b)] / results[('baseline', b)]:.3f}x; per round {ratios}")
    if bf16:
        print(f"ViT-L/14 bf16, images/s, same rounds")
        print(f"{'batch':>5} {'clipdetect':>11} {'PyTorch':>9} {'vs our fp32':>12} {'vs PyTorch bf16':>16}")
        for b in batches:
            ours, pt = results[("clipdetect-bf16", b)], results[("pytorch-bf16", b)]
            print(f"{b:5d} {ours:11.3f} {pt:9.3f} {ours / results[('clipdetect', b)]:11.2f}x {ours / pt:15.2f}x")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "bench":
        bench(rounds=int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    else:
        check()
