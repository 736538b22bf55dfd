"""Load benchmark of `clipdetect serve` (not a test): how much of the CLI's batch throughput the
service keeps, its latency, its memory under overload, and whether any response is lost or wrong.

  python3 benchmarks/serve_load.py [--tower tiny|vit-l14] [--generator asyncio|wrk] [--seconds 20] [--images 32] [--batch 8]

1. The CLI's batch throughput: `detect --no-cache --batch B` on N and on 2N distinct images; the
   difference in wall time over N excludes start-up and model loading.
2. The sustainable rate R: closed loop, 2B clients each sending one image per request, back to back.
3. Open loop at 1×, 4× and 10× R for the same time (a request goes out on schedule whether or not
   earlier ones were answered): answered, refused (429/503 with Retry-After), lost (no HTTP answer,
   or not the promised JSON), mismatched (a score off the CLI's by more than 1e-5, or another
   verdict), p50/p99 latency of the answered, and the server's RSS (sampled every 50 ms).

The tiny tower is the tests' fixture; vit-l14 is a random ViT-L/14 made by benchmarks/vit_l14.py
(needs open_clip, tools/fixtures/requirements.txt). Needs a release build (swift build -c release).
The load generator runs on the same 2 cores as the server: say so next to any figure. The default
one (Python asyncio) takes most of a core at thousands of requests a second; `--generator wrk` (wrk
from Debian, benchmarks/serve_load.lua, one thread) takes far less. wrk paces each connection from
one schedule, so a request goes out late only when all its connections wait for answers, and its
latency counts from when it was sent, not when it was due.
"""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, ".build", "release", "clipdetect")
FIXTURES = os.path.join(ROOT, "Tests", "ClipDetectTestSupport", "Fixtures")
WORK = os.environ.get("CLIPDETECT_BENCH_DIR", "/tmp/clipdetect-serve-load")


def tower(kind):
    """(tower path, head path) for the fixture tower or a random ViT-L/14."""
    os.makedirs(WORK, exist_ok=True)
    if kind == "tiny":
        path = os.path.join(FIXTURES, "encoder", "a_gelu_proj32", "openclip.safetensors")
        weights = os.path.join(FIXTURES, "heads", "weights.pth")
    else:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        import torch
        import vit_l14
        _, paths = vit_l14.model()
        path = paths["safetensors"]
        weights = os.path.join(WORK, "vit-l14-head.pth")
        g = torch.Generator().manual_seed(4)
        torch.save({"model": {"fc.weight": torch.randn(1, 1024, generator=g), "fc.bias": torch.randn(1, generator=g)}}, weights)
    head = os.path.join(WORK, f"{kind}-head.safetensors")
    subprocess.run([BINARY, "head", "import", weights, "--backbone", path, "-o", head], check=True, capture_output=True)
    return path, head


def images(count):
    """Distinct photo-like JPEGs (gradients plus noise, 640×480), so no cache or batch can share work."""
    folder = os.path.join(WORK, "images")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"load{i:04d}.jpg")
        if not os.path.exists(path):
            yy, xx = np.mgrid[0:480, 0:640]
            phase = rng.uniform(0, 6.3, 3)
            base = np.stack([127 + 100 * np.sin(xx / (40 + 10 * c) + phase[c] + yy / 90) for c in range(3)], -1)
            pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(path, quality=88)
        paths.append(path)
    return paths


def cli(model, head, paths, batch):
    """detect's scores (by path) and its wall time."""
    start = time.perf_counter()
    out = subprocess.run([BINARY, "detect", "--no-cache", "--model", model, "--head", head, "--batch", str(batch),
                          "--format", "jsonl", *paths], check=True, capture_output=True, text=True).stdout
    elapsed = time.perf_counter() - start
    rows = [json.loads(line) for line in out.splitlines()]
    return {row["filename"]: row for row in rows}, elapsed


class Client:
    """A minimal HTTP/1.1 client on asyncio streams with a pool of keep-alive connections: cheap
    enough that the generator, not the server, is rarely what limits the rate."""

    def __init__(self, host, port, connections=512):
        self.host, self.port, self.idle = host, port, []
        # At most this many connections, as a client's pool has: a request beyond it waits here,
        # and its latency (counted from when it was due) includes the wait.
        self.slots = asyncio.Semaphore(connections)

    async def post(self, body):
        async with self.slots:
            return await self._post(body)

    async def _post(self, body):
        reader, writer = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(b"POST /v1/detect HTTP/1.1\r\nHost: bench\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            await writer.drain()
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            payload = await reader.readexactly(length)
        except Exception:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, payload


class RSS:
    """The server's resident memory, sampled every 50 ms from /proc."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def now(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def sample(self):
        while self.running:
            try:
                self.peak = max(self.peak, self.now())
            except OSError:
                return
            time.sleep(0.05)

    def reset(self):
        self.peak = self.now()


def check(payload, expected):
    """'ok', 'mismatch' or 'lost' for one 200 answer, against the CLI's row for the same image."""
    try:
        image = json.loads(payload)["images"][0]
    except (ValueError, KeyError, IndexError):
        return "lost"
    if "score" not in image:
        return "mismatch"
    if image["verdict"] != expected["verdict"] or abs(image["score"] - expected["cli_score"]) > 1e-5:
        return "mismatch"
    return "ok"


async def closed_loop(client, bodies, expected, clients, seconds):
    """Answers per second over the whole run, the requests in flight at the end included."""
    start = time.perf_counter()
    done, end = 0, start + seconds

    async def worker(k):
        nonlocal done
        i = k
        while time.perf_counter() < end:
            status, _ = await client.post(bodies[i % len(bodies)])
            done += status == 200
            i += clients
    await asyncio.gather(*(worker(k) for k in range(clients)))
    return done / (time.perf_counter() - start)


async def open_loop(client, bodies, expected, rate, seconds):
    outcomes, latencies, tasks = {"answered": 0, "refused": 0, "lost": 0, "mismatched": 0, "exact": 0}, [], []
    start = time.perf_counter()

    async def one(i):
        body, want = bodies[i % len(bodies)], expected[i % len(bodies)]
        sent = time.perf_counter()
        try:
            status, payload = await asyncio.wait_for(client.post(body), 180)
        except Exception:
            outcomes["lost"] += 1
            return
        if status == 200:
            verdict = check(payload, want)
            if verdict == "ok":
                outcomes["answered"] += 1
                latencies.append(time.perf_counter() - sent)
                outcomes["exact"] += json.loads(payload)["images"][0]["score"] == want["cli_score"]
            else:
                outcomes["mismatched" if verdict == "mismatch" else "lost"] += 1
        elif status in (429, 503):
            outcomes["refused"] += 1
        else:
            outcomes["lost"] += 1

    total = int(rate * seconds)
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    offered = total / (time.perf_counter() - start)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return outcomes, latencies, offered, outcomes["answered"] / elapsed


def wrk(host, port, manifest, rate, connections, seconds):
    """One wrk run (rate 0: closed loop): the counts serve_load.lua prints."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "180s", "-s",
                          os.path.join(ROOT, "benchmarks", "serve_load.lua"), f"http://{host}:{port}", "--",
                          str(rate), manifest, "1"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def percentile(values, q):
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values[0] if values else float("nan"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tower", choices=["tiny", "vit-l14"], default="tiny")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--images", type=int, default=32, help="distinct images (the CLI's rate is read from N and 2N)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--generator", choices=["asyncio", "wrk"], default="asyncio")
    args = parser.parse_args()
    flags = sorted({f for line in open("/proc/cpuinfo") if line.startswith("flags") for f in line.split()[2:]
                    if f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")})
    print(f"host: {os.cpu_count()} cores, {' '.join(flags)}; load generator ({args.generator}) on the same cores")

    model, head = tower(args.tower)
    paths = images(2 * args.images)
    rows, t1 = cli(model, head, paths[:args.images], args.batch)
    _, t2 = cli(model, head, paths, args.batch)
    cli_rate = args.images / (t2 - t1)
    print(f"CLI detect --batch {args.batch}: {cli_rate:.1f} images/s (from {args.images} vs {2 * args.images} images: {t1:.2f} s, {t2:.2f} s)")
    subset = paths[:args.images]
    head_column = [k for k in rows[subset[0]] if k not in ("filename", "probability", "label", "verdict", "error")][0]
    expected = [dict(rows[p], cli_score=rows[p][head_column]) for p in subset]
    bodies = [open(p, "rb").read() for p in subset]

    server = subprocess.Popen([BINARY, "serve", "--model", model, "--head", head, "--port", "0", "--max-batch", str(args.batch)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rss = None
    try:
        line = server.stdout.readline()
        host, port = line.split()[-1].removeprefix("http://").rsplit(":", 1)
        rss = RSS(server.pid)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        client = Client(host, int(port))
        loop.run_until_complete(closed_loop(client, bodies, expected, args.batch, 2))  # warm-up
        rss.reset()
        if args.generator == "wrk":
            with_wrk(host, port, subset, expected, args, cli_rate, rss)
            return
        rate = loop.run_until_complete(closed_loop(client, bodies, expected, 2 * args.batch, args.seconds))
        print(f"server, closed loop, {2 * args.batch} clients: {rate:.1f} images/s = {rate / cli_rate:.2f}× the CLI "
              f"(peak RSS {rss.peak / 2**20:.0f} MiB)")
        print(HEADER)
        for factor in (1, 4, 10):
            rss.reset()
            outcomes, latencies, offered, answered_rate = loop.run_until_complete(
                open_loop(client, bodies, expected, factor * rate, args.seconds))
            print(f"{factor:4d}× {offered:10.1f} {answered_rate:11.1f} {answered_rate / cli_rate:6.2f}× {outcomes['answered']:9d} "
                  f"{outcomes['refused']:8d} {outcomes['lost']:5d} {outcomes['mismatched']:9d} {outcomes['exact']:10d} "
                  f"{1000 * percentile(latencies, 50):8.1f} {1000 * percentile(latencies, 99):8.1f} {rss.peak / 2**20:13.0f}")
    finally:
        if rss:
            rss.running = False
        server.terminate()
        code = server.wait(60)
        print(f"server exit status on SIGTERM: {code}")


HEADER = (f"{'load':>5} {'offered/s':>10} {'answered/s':>11} {'vs CLI':>7} {'answered':>9} {'refused':>8} {'lost':>5} "
          f"{'mismatch':>9} {'bit-equal':>10} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MiB':>13}")


def with_wrk(host, port, paths, expected, args, cli_rate, rss):
    """The closed loop and the three loads, with wrk as the generator."""
    manifest = os.path.join(WORK, "manifest.tsv")
    with open(manifest, "w") as f:
        for path, want in zip(paths, expected):
            f.write(f"{path}\t{want['cli_score']!r}\t{want['verdict']}\n")
    closed = wrk(host, port, manifest, 0, 2 * args.batch, args.seconds)
    rate = closed["answered"] / closed["seconds"]
    print(f"server, closed loop, {2 * args.batch} connections: {rate:.1f} images/s = {rate / cli_rate:.2f}× the CLI "
          f"(peak RSS {rss.peak / 2**20:.0f} MiB)")
    print(HEADER)
    for factor in (1, 4, 10):
        rss.reset()
        r = wrk(host, port, manifest, factor * rate, 256, args.seconds)
        lost = r["lost"] + r["other_status"] + r["socket_errors"] + r["timeouts"]
        answered_rate = r["answered"] / r["seconds"]
        print(f"{factor:4d}× {r['issued'] / r['seconds']:10.1f} {answered_rate:11.1f} {answered_rate / cli_rate:6.2f}× "
              f"{r['answered']:9d} {r['refused']:8d} {lost:5d} {r['mismatched']:9d} {r['exact']:10d} "
              f"{r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {rss.peak / 2**20:13.0f}"
              + (f"  ({r['behind_schedule']} sent late)" if r["behind_schedule"] else ""))


if __name__ == "__main__":
    main()
