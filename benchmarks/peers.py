"""UnivFD and RINE beside the paper's detector, on full-size random ViT-L/14 towers (not a test).

  python3 benchmarks/peers.py check            # features and scores against the peers' own forward passes
  python3 benchmarks/peers.py cost [--images N] # what adding UnivFD and RINE to the paper's detector costs

The peers run on OpenAI's ViT-L/14 (QuickGELU): here a random one made by open_clip
("ViT-L-14-quickgelu", seed 1). The paper's detector runs on another backbone (CommonPool): here the
random ViT-L/14 of benchmarks/vit_l14.py, with the random head its check writes. The peers' heads are
the released files committed under Tests/ClipDetectTestSupport/Fixtures/heads/ (UnivFD's fc_weights.pth,
RINE's model_2class_trainable.pth), imported with `clipdetect head import --backbone`.

check: the peers' scoring restated from tools/fixtures/make_{univfd,rine}_fixtures.py (forward hooks
on every block's ln_2, the class tokens stacked; UnivFD's linear layer on the projected feature;
CenterCrop(224), ToTensor, Normalize) against `clipdetect embed` and `detect` in fp32.
cost: `detect --no-cache` on N photos with the paper's head alone, the peers alone, and all three
(start-up and loading taken out by subtracting a one-file run), with the passes each needs.
Needs the reference stack (tools/fixtures/requirements.txt) and a release build.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))
import vit_l14  # noqa: E402
from make_rine_fixtures import Network  # noqa: E402
from reference import MEAN, STD  # noqa: E402

WORK = vit_l14.WORK
BINARY = vit_l14.BINARY
HEADS = os.path.join(ROOT, "Tests", "ClipDetectTestSupport", "Fixtures", "heads")
UNIVFD = os.path.join(HEADS, "univfd", "fc_weights.pth")
RINE = os.path.join(HEADS, "rine", "model_2class_trainable.pth")


def openai_tower():
    """A random ViT-L-14 with QuickGELU (open_clip's init, seed 1), saved with its config."""
    import open_clip
    from safetensors.torch import load_file, save_file
    torch.manual_seed(1)
    clip = open_clip.create_model("ViT-L-14-quickgelu", pretrained=None).eval()
    folder = os.path.join(WORK, "quickgelu")
    path = os.path.join(folder, "open_clip_model.safetensors")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, path)
        with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
            json.dump({"model_cfg": open_clip.get_model_config("ViT-L-14-quickgelu"),
                       "preprocess_cfg": {"mean": list(MEAN), "std": list(STD)}}, f)
    else:
        clip.load_state_dict(load_file(path))
    return clip, path


def run(*arguments):
    return subprocess.run([BINARY, *arguments], check=True, capture_output=True, text=True).stdout


def peer_heads(tower):
    univfd, rine = os.path.join(WORK, "univfd.safetensors"), os.path.join(WORK, "rine-2class.safetensors")
    run("head", "import", "--format", "univfd", UNIVFD, "--backbone", tower, "--name", "univfd", "-o", univfd)
    run("head", "import", "--format", "rine", RINE, "--backbone", tower, "--name", "rine-2class", "-o", rine)
    return univfd, rine


def paper_head():
    """The random head on the CommonPool stand-in that vit_l14.py's check writes (made here if missing)."""
    _, paths = vit_l14.model()
    pth, head = os.path.join(WORK, "weights.pth"), os.path.join(WORK, "head.safetensors")
    if not os.path.exists(head):
        g = torch.Generator().manual_seed(4)
        torch.save({"model": {"fc.weight": torch.randn(1, 1024, generator=g), "fc.bias": torch.randn(1, generator=g)}}, pth)
        run("head", "import", pth, "--backbone", paths["safetensors"], "--name", "random", "-o", head)
    return head


def check():
    clip, tower = openai_tower()
    images = vit_l14.sample_images()
    visual = clip.visual
    blocks = []
    hooks = [b.ln_2.register_forward_hook(lambda m, i, o: blocks.append(o[:, 0, :])) for b in visual.transformer.resblocks]
    transform = T.Compose([T.CenterCrop(224), T.ToTensor(), T.Normalize(mean=MEAN, std=STD)])
    with torch.no_grad():
        projected = visual(torch.stack([transform(Image.open(p).convert("RGB")) for p in images]))
    for h in hooks:
        h.remove()
    g = torch.stack(blocks, dim=1)  # [N, 24, 1024]
    fc = torch.nn.Linear(768, 1)
    fc.load_state_dict(torch.load(UNIVFD, map_location="cpu", weights_only=True))
    network = Network(24, 1024, nproj=4, dim=128).eval()
    network.load_state_dict(torch.load(RINE, map_location="cpu", weights_only=True))
    with torch.no_grad():
        want = {"univfd": fc(projected)[:, 0].numpy(), "rine-2class": network(g)[:, 0].numpy()}

    failed = False
    for kind, ref in (("projected", projected.numpy()), ("blocks", g.reshape(len(images), -1).numpy())):
        out = os.path.join(WORK, f"peers-{kind}.npy")
        run("embed", "--no-cache", "--model", tower, "--features", kind, "--no-normalize", "--view", "crop", "--format", "npy",
            "-o", out, *images)
        ours = np.load(out)
        diff = np.abs(ours - ref).max()
        scale = np.abs(ref).max()
        print(f"{kind:10s} max |Δ| {diff:.2e} (largest value {scale:.2f}, relative {diff / scale:.2e}), {len(images)} images")
        failed |= diff > 1e-5 * max(1.0, scale)
    univfd, rine = peer_heads(tower)
    out = run("detect", "--no-cache", "--head", univfd, "--head", rine, "--format", "jsonl", *images)
    rows = {row["filename"]: row for row in map(json.loads, out.splitlines())}
    for name, values in want.items():
        diff = max(abs(rows[p][name] - v) for p, v in zip(images, values))
        print(f"{name:10s} scores max |Δ| {diff:.2e} (scores {', '.join(f'{v:.4f}' for v in values)})")
        failed |= diff > 1e-5 * max(1.0, float(np.abs(values).max()))
    if failed:
        sys.exit("FAIL: beyond 1e-5 (relative to the largest value when it is above 1)")
    print("OK: features and scores within 1e-5 of the peers' own forward passes (relative above 1)")


def cost(count):
    import end_to_end
    _, paper_tower = vit_l14.model()
    _, tower = openai_tower()
    paper = paper_head()
    univfd, rine = peer_heads(tower)
    files = end_to_end.photos(count)

    def seconds_per_image(heads):
        def timed(paths):
            arguments = ["detect", "--no-cache", "--quiet", "--format", "jsonl"]
            for head in heads:
                arguments += ["--head", head]
            start = time.perf_counter()
            subprocess.run([BINARY, *arguments, *paths], check=True, capture_output=True)
            return time.perf_counter() - start
        timed(files[:1])  # warm the page cache
        one = min(timed(files[:1]), timed(files[:1]))
        return (timed(files) - one) / (len(files) - 1)

    print(f"CPU flags: {vit_l14.cpu_flags()}; {len(files)} photos (half 12 MP JPEG, half 1 MP PNG); fp32")
    runs = [("paper (CommonPool, resize-crop)", [paper], 1), ("UnivFD + RINE (OpenAI, crop)", [univfd, rine], 1),
            ("paper + UnivFD + RINE, fused", [paper, univfd, rine], 2)]
    base = None
    for label, heads, passes in runs:
        s = seconds_per_image(heads)
        base = base or s
        print(f"{label:34s} {passes} pass(es)/image  {s:.3f} s/image  {s / base:.2f}× the paper's alone")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["check", "cost"])
    parser.add_argument("--images", type=int, default=6)
    args = parser.parse_args()
    check() if args.what == "check" else cost(args.images)
