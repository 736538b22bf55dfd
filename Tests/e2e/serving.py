"""What the end-to-end tests share: the fixtures' tower, images and `clipdetect serve` as a process."""
import os
import signal
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests/ClipDetectTestSupport/Fixtures"
TOWER = FIXTURES / "encoder/a_gelu_proj32/openclip.safetensors"
IMAGES = [FIXTURES / "images" / name for name in ("jpeg_420.jpg", "png_rgba.png", "webp_lossy.webp")]
BIN = os.environ.get("CLIPDETECT_BIN", str(ROOT / ".build/debug/clipdetect"))
ARTIFACTS = Path(os.environ.get("CLIPDETECT_ARTIFACTS", ROOT / ".build/test-artifacts"))


def screenshot(driver, name):
    """Saves the browser's view as a test artefact and returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 0
    return path


def make_head(folder):
    """The reference head fixture imported for the tiny tower, as `head import` writes it."""
    out = Path(folder) / "tiny.safetensors"
    subprocess.run([BIN, "head", "import", str(FIXTURES / "heads/weights.pth"), "--backbone", str(TOWER), "-o", str(out)],
                   check=True, capture_output=True)
    return out


class Server:
    """`clipdetect serve` on a free loopback port; stopped with SIGTERM, which must exit 0.
    Its log goes to a file: a pipe nobody reads would block the server once full."""

    def __init__(self, head, *options, env=None):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([BIN, "serve", "--model", str(TOWER), "--head", str(head), "--port", "0", *options],
                                        stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        env={**os.environ, **(env or {})})
        line = self.process.stdout.readline()
        assert line.startswith("clipdetect serving on http://"), f"no start line: {line!r} {self.stderr}"
        self.base = line.split()[-1]

    @property
    def stderr(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout=60):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, trace):
        if self.process.poll() is None:
            code = self.stop()
            if kind is None:
                assert code == 0, f"serve exited {code} on SIGTERM: {self.stderr}"
