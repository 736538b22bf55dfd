"""Soak benchmark of `clipdetect serve` (not a test): does the service's memory stay flat over
thousands of requests? A leak of one input tensor per image (602 KB at 224 px) shows at once here.

  python3 benchmarks/serve_soak.py [--tower vit-l14|tiny] [--requests 2000] [--clients 4] [--stability-every 10]

The server runs on a random ViT-L/14 (benchmarks/vit_l14.py; needs open_clip) or the tests' tiny
tower; `--clients` keep one request each in flight, one distinct 640×480 JPEG per request (no
batch or cache can share work); every `--stability-every`-th request asks `?stability=2` (three
passes). The server's RSS is sampled every 50 ms. Printed: RSS after each tenth of the run, the
peak, and the slope of RSS over the second half in bytes per request (a leak is a slope that does
not fall to ~0; allocator noise is a few bytes). Needs a release build (swift build -c release).
"""
import argparse
import http.client
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_load import BINARY, RSS, images, tower  # noqa: E402


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    return " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tower", choices=["vit-l14", "tiny"], default="vit-l14")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--stability-every", type=int, default=10)
    parser.add_argument("--distinct", type=int, default=200, help="distinct images, sent in turn")
    args = parser.parse_args()

    model, head = tower(args.tower)
    bodies = [open(p, "rb").read() for p in images(args.distinct)]
    server = subprocess.Popen([BINARY, "serve", "--model", model, "--head", head, "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(server.stdout.readline().rsplit(":", 1)[1])
    rss = RSS(server.pid)
    lock, sent, answered, failed = threading.Lock(), 0, 0, 0
    samples = []  # (answered, rss bytes)
    start = time.perf_counter()

    def client():
        nonlocal sent, answered, failed
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                if sent >= args.requests:
                    return
                i, sent = sent, sent + 1
            query = "?stability=2" if args.stability_every and i % args.stability_every == 0 else ""
            connection.request("POST", "/v1/detect" + query, body=bodies[i % len(bodies)], headers={"Content-Type": "image/jpeg"})
            response = connection.getresponse()
            response.read()
            with lock:
                answered += 1
                failed += response.status != 200
                samples.append((answered, rss.now()))

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    rss.running = False
    server.terminate()
    server.wait(60)

    print(f"clipdetect serve soak: {args.tower}, {args.requests} requests ({args.clients} clients, every "
          f"{args.stability_every}th with ?stability=2), {elapsed:.0f} s, {failed} not 200; CPU: {os.cpu_count()} cores, {cpu_flags()}")
    for k in range(1, 11):
        n, value = samples[min(len(samples), k * len(samples) // 10) - 1]
        print(f"  after {n:5d} requests: RSS {value / 2**20:7.1f} MiB")
    half = samples[len(samples) // 2:]
    mean_n = sum(n for n, _ in half) / len(half)
    mean_r = sum(r for _, r in half) / len(half)
    slope = sum((n - mean_n) * (r - mean_r) for n, r in half) / max(1e-9, sum((n - mean_n) ** 2 for n, _ in half))
    print(f"  peak RSS {rss.peak / 2**20:.1f} MiB; slope over the second half {slope:+.0f} bytes per request")


if __name__ == "__main__":
    main()
