"""The reference's own compute_metrics.py reads `detect --columns reference` (pandas and scikit-learn
from PyPI). Runs where a snapshot of the reference repository is present: its path in
CLIPDETECT_REFERENCE_REPO (fetched, never committed); elsewhere the Swift contract test
(`referenceColumnsAreWhatComputeMetricsReads`) checks what the script relies on."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serving import BIN, FIXTURES, TOWER

REPO = os.environ.get("CLIPDETECT_REFERENCE_REPO")


@pytest.mark.skipif(not REPO, reason="CLIPDETECT_REFERENCE_REPO names no snapshot of the reference repository")
def test_compute_metrics_reads_detect_output(tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    from serving import make_head
    head = make_head(tmp_path)
    names = ["jpeg_420.jpg", "png_rgba.png", "photo_chelsea.png", "photo_rocket.jpg", "webp_lossy.webp", "cjpeg_gray.jpg", "bad_truncated.jpg"]
    listing = tmp_path / "list.csv"
    listing.write_text("filename,typ\n" + "".join(f"{FIXTURES / 'images' / n},{'real' if i < 3 else 'gen'}\n" for i, n in enumerate(names)))
    out = tmp_path / "out.csv"
    run = subprocess.run([BIN, "detect", "--model", str(TOWER), "--head", str(head), "--columns", "reference", "--csv", str(listing), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stderr  # the truncated JPEG fails alone
    tab = tmp_path / "tab.csv"
    script = Path(REPO) / "compute_metrics.py"
    for metric in ("auc", "acc"):
        metrics = subprocess.run([sys.executable, str(script), "-i", str(listing), "-o", str(out), "-w", metric, "-t", str(tab)],
                                 capture_output=True, text=True, cwd=REPO)
        assert metrics.returncode == 0, metrics.stderr
        lines = tab.read_text().splitlines()
        assert lines[0] == f"{metric},gen,AVG" and len(lines) == 2, lines
        assert all(cell not in ("", "nan") for cell in lines[1].split(",")[1:]), lines
