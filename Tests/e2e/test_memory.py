"""The service's memory is flat in the number of images it has scored: N and then 10·N requests,
with and without ?stability, and the server's peak RSS (VmHWM) may grow by at most 4 MB over the
2,700 extra images (an image's input tensor on the fixture tower is 12 KB: a leaked one shows as 32 MB)."""
import http.client
import json
import random
import struct
import zlib
from urllib.parse import urlsplit

from serving import Server

FEW, MANY, SLACK = 300, 3000, 4 << 20


def png(seed):
    """A distinct 8×8 RGB PNG: the server must encode every request, never reuse one."""
    rows = random.Random(seed).randbytes(8 * 25)
    raw = b"".join(b"\0" + rows[y * 24:(y + 1) * 24] for y in range(8))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def score(connection, first, count, query):
    for i in range(first, first + count):
        connection.request("POST", "/v1/detect" + query, body=png(i), headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == 200 and "error" not in body["images"][0], body


def test_service_memory_is_flat_in_the_images_scored(head):
    for query in ("", "?stability=2"):
        with Server(head, "--max-wait-ms", "1") as server:
            address = urlsplit(server.base)
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
            score(connection, 0, FEW, query)
            after_few = peak_rss(server.process.pid)
            score(connection, FEW, MANY - FEW, query)
            after_many = peak_rss(server.process.pid)
            connection.close()
            print(f"serve{query}: peak RSS {after_few >> 10} → {after_many >> 10} KiB")
            assert after_many - after_few <= SLACK, f"serve{query}: peak RSS grew {(after_many - after_few) >> 10} KiB"
