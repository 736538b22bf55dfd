"""`clipdetect eval --report` in a real browser (headless Chromium from Debian): the page renders at a
desktop and a phone size with no console error and no request, its figures and thumbnails show,
tables sort, and the log-FPR switch works. Screenshots go to CLIPDETECT_ARTIFACTS.
"""
import io
import subprocess

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from serving import BIN, FIXTURES, TOWER, screenshot

REALS = ["jpeg_420.jpg", "png_rgb.png", "webp_lossy.webp", "photo_rocket.jpg", "cjpeg_gray.jpg", "gif_palette.gif", "bmp_rgb.bmp"]
FAKES = ["photo_chelsea.png", "photo_logo.png", "png_palette.png", "jpeg_444.jpg", "tiff_rgb_tiff_lzw.tif", "jpeg_cmyk.jpg"]


@pytest.fixture(scope="module")
def report(tmp_path_factory, head):
    folder = tmp_path_factory.mktemp("report")
    rows = [f"{FIXTURES / 'images' / name},real" for name in REALS]
    rows += [f"{FIXTURES / 'images' / name},{'gen_a' if i % 2 == 0 else 'gen_b'}" for i, name in enumerate(FAKES)]
    listed = folder / "list.csv"
    listed.write_text("filename,typ\n" + "\n".join(rows) + "\n")
    out = folder / "report.html"
    run = subprocess.run([BIN, "eval", "--csv", str(listed), "--model", str(TOWER), "--head", str(head), "--impair", "jpeg:q=30",
                          "--no-cache", "--quiet", "--report", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return out


def not_blank(png):
    """A screenshot that shows something: many colours, and a good share of pixels that are not white."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((image.width // 4, image.height // 4))
    pixels = list(small.getdata())
    colours = len(set(pixels))
    inked = sum(1 for p in pixels if sum(p) < 720) / len(pixels)
    return colours, inked


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_the_report_renders_offline_with_every_figure(report, browser, width, height):
    browser.set_window_size(width, height)
    browser.get(report.as_uri())
    assert browser.title.startswith("clipdetect evaluation")
    # Every chart has a size on screen (the log ROC charts are hidden until asked for): one ROC, a
    # histogram per generator (2), the ROC per condition; no reliability (the head is not calibrated).
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart:not(.log)")
    assert len(charts) == 4
    for chart in charts:
        assert chart.size["width"] > 100 and chart.size["height"] > 80, chart.get_attribute("id")
    thumbnails = browser.find_elements(By.CSS_SELECTOR, "ul.mistakes img")
    assert len(thumbnails) == 12
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in thumbnails)
    # Nothing was fetched: the only resources are the page and its data: images.
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith("data:") for name in fetched), fetched
    # No sideways scrolling of the page itself (wide tables scroll inside their own box).
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width + 1
    png = screenshot(browser, f"report-{width}x{height}.png").read_bytes()
    colours, inked = not_blank(png)
    assert colours > 50 and inked > 0.03, (colours, inked)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_tables_sort_and_the_fpr_axis_switches(report, browser):
    browser.get(report.as_uri())
    table = browser.find_element(By.CSS_SELECTOR, "table.metrics")
    auc = table.find_elements(By.CSS_SELECTOR, "thead th")[3]
    assert auc.text == "AUC"

    def column():
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        return [(row.get_attribute("class"), float(row.find_elements(By.TAG_NAME, "td")[2].get_attribute("data-value"))) for row in rows]

    auc.click()
    values = column()
    generators = [v for kind, v in values if kind != "average"]
    assert generators == sorted(generators, reverse=True) and values[-1][0] == "average"
    auc.click()
    generators = [v for kind, v in column() if kind != "average"]
    assert generators == sorted(generators)
    assert auc.get_attribute("aria-sort") == "ascending"
    # The log-scaled ROC charts replace the linear ones.
    linear = browser.find_element(By.ID, "roc-0")
    logarithmic = browser.find_element(By.ID, "roc-log-0")
    assert linear.is_displayed() and not logarithmic.is_displayed()
    browser.find_element(By.ID, "log-fpr").click()
    assert logarithmic.is_displayed() and not linear.is_displayed()
    screenshot(browser, "report-log-fpr.png")
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
