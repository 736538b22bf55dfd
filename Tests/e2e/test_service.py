"""End-to-end tests of `clipdetect serve` as a process: the page in a real browser (headless
Chromium through Selenium), the API key flow on the page, and graceful shutdown on SIGTERM.

Run by scripts/e2e.sh, which builds the binary and passes it in CLIPDETECT_BIN. Screenshots go to
CLIPDETECT_ARTIFACTS (default .build/test-artifacts). Everything is on loopback.
"""
import json
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from serving import BIN, FIXTURES, IMAGES, TOWER, Server, screenshot
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

UNDECODABLE = FIXTURES / "images/bad_text.png"
BOMB = FIXTURES / "images/bad_bomb.png"  # a PNG header claiming 100000 × 100000 pixels


def cli_detections(head, paths):
    """What `clipdetect detect` says of the files: the numbers the page must show."""
    out = subprocess.run([BIN, "detect", "--model", str(TOWER), "--head", str(head), "--format", "jsonl", *map(str, paths)],
                         capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return {Path(row["filename"]).name: row for row in rows}


def pick(driver, paths):
    driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in paths))


def wait_for_status(driver, prefix):
    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "status").text.startswith(prefix))
    return driver.find_element(By.ID, "status").text


def cards(driver):
    """Each rendered card as (file name, verdict line, {head: score text}, size line or None, message or None)."""
    found = {}
    for card in driver.find_elements(By.CSS_SELECTOR, "#results li.card"):
        names = card.find_elements(By.CSS_SELECTOR, ".body .name")
        rows = {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
                for row in card.find_elements(By.CSS_SELECTOR, "table tr")}
        message = card.find_elements(By.CSS_SELECTOR, ".message")
        found[names[-1].text] = {
            "verdict": card.find_element(By.CSS_SELECTOR, ".verdict").text,
            "class": card.find_element(By.CSS_SELECTOR, ".verdict").get_attribute("class"),
            "scores": rows,
            "size": names[0].text if len(names) > 1 else None,
            "message": message[0].text if message else None,
            "thumbnail": next((img.get_attribute("naturalWidth") for img in card.find_elements(By.TAG_NAME, "img")), None),
        }
    return found


def test_page_shows_the_clis_verdicts_and_explains_bad_files(head, browser):
    expected = cli_detections(head, IMAGES)
    with Server(head) as server:
        browser.get(server.base + "/")
        assert browser.title == "clipdetect"
        pick(browser, IMAGES + [UNDECODABLE, BOMB])
        status = wait_for_status(browser, "Scored")
        assert status == "Scored 3 of 5; 2 could not be read."
        shown = cards(browser)
        assert set(shown) == {p.name for p in IMAGES + [UNDECODABLE, BOMB]}
        for path in IMAGES:
            card, row = shown[path.name], expected[path.name]
            assert card["verdict"] == f"{row['verdict']} — {100 * row['probability']:.1f}% synthetic"
            assert row["verdict"] in card["class"].split()
            head_columns = [k for k in row if k not in ("filename", "probability", "label", "verdict", "error")]
            assert card["scores"] == {k: f"{row[k]:.3f}" for k in head_columns}
            assert card["size"] and card["size"].endswith("pixels")
            assert int(card["thumbnail"]) > 0, "the thumbnail did not render"
        assert shown[UNDECODABLE.name]["verdict"] == "Could not score"
        assert shown[UNDECODABLE.name]["message"], "an undecodable file needs a message"
        bomb = shown[BOMB.name]["message"]
        assert "pixels" in bomb and "limit" in bomb, bomb
        screenshot(browser, "page-desktop.png")

        # Nothing but this server was asked for anything (self-contained: no CDN, no fonts).
        origins = browser.execute_script("return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
        assert all(origin in (server.base, "null") or origin.startswith("blob:") for origin in origins), origins
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors

        # Phone-sized: no sideways scrolling, the cards stack.
        browser.set_window_size(390, 844)
        width = browser.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], f"the page scrolls sideways on a phone: {width}"
        screenshot(browser, "page-phone.png")


def test_page_is_usable_with_the_keyboard(head, browser):
    with Server(head) as server:
        browser.get(server.base + "/")
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        active = browser.switch_to.active_element
        assert active.get_attribute("id") == "files", "Tab does not reach the file picker"
        outline = browser.execute_script("return getComputedStyle(document.getElementById('drop')).outlineStyle")
        assert outline != "none", "the focused picker is not shown"
        label = browser.execute_script("return document.querySelector('label[for=files]').textContent")
        assert label.strip()


def test_page_asks_for_the_api_key_and_then_scores(head, browser):
    with Server(head, "--api-key-env", "CLIPDETECT_TEST_KEY", env={"CLIPDETECT_TEST_KEY": "s3cret-key"}) as server:
        browser.get(server.base + "/")
        key_box = browser.find_element(By.ID, "key")
        assert not key_box.is_displayed()
        pick(browser, IMAGES[:1])
        WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "key").is_displayed())
        assert "API key" in browser.find_element(By.ID, "status").text
        browser.find_element(By.ID, "apikey").send_keys("s3cret-key")
        pick(browser, IMAGES[:1])
        assert wait_for_status(browser, "Scored") == "Scored 1 of 1."
        assert len(cards(browser)) == 1


def post(url, paths, timeout=60):
    boundary = "e2e-boundary"
    body = b""
    for path in paths:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{path.name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def test_a_request_on_a_kept_alive_connection_during_the_drain_gets_503(head):
    # One request stays in flight (a long batching wait) while SIGTERM drains the service; a client
    # whose kept-alive connection was idle then sends another: it gets 503 shutting_down and the
    # close, not a reset, and the one in flight is still answered.
    import http.client
    from urllib.parse import urlsplit
    server = Server(head, "--max-wait-ms", "3000", "--max-batch", "16")
    address = urlsplit(server.base)
    idle = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    idle.request("GET", "/healthz")
    first = idle.getresponse()
    assert first.status == 200 and first.read()
    answer = {}
    sender = threading.Thread(target=lambda: answer.update(value=post(server.base + "/v1/detect", IMAGES[:1])))
    sender.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(server.base + "/metrics", timeout=10) as response:
            if any(line.startswith("clipdetect_queue_depth ") and float(line.split()[-1]) > 0 for line in response.read().decode().splitlines()):
                break
        time.sleep(0.05)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # the drain has begun (the queued image waits up to 3 s for company)
    idle.request("GET", "/healthz")
    late = idle.getresponse()
    body = json.loads(late.read())
    assert late.status == 503 and body["error"]["kind"] == "shutting_down", body
    assert late.getheader("Connection", "").lower() == "close"
    sender.join(60)
    assert answer["value"][0] == 200, answer
    assert server.process.wait(timeout=60) == 0, server.stderr


def test_sigterm_finishes_what_is_in_flight_and_exits_zero(head):
    # A long batching wait keeps the request in flight when the signal arrives.
    server = Server(head, "--max-wait-ms", "3000", "--max-batch", "16")
    answer = {}

    def send():
        try:
            answer["value"] = post(server.base + "/v1/detect", IMAGES)
        except Exception as error:  # recorded, asserted below
            answer["error"] = error

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the server has the images queued
        with urllib.request.urlopen(server.base + "/metrics", timeout=10) as response:
            text = response.read().decode()
        if any(line.startswith("clipdetect_queue_depth ") and float(line.split()[-1]) > 0 for line in text.splitlines()):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the request never reached the queue")
    code = server.stop()
    sender.join(60)
    assert code == 0, server.stderr
    assert "cut short" not in server.stderr, server.stderr
    assert "error" not in answer, answer.get("error")
    status, body = answer["value"]
    assert status == 200
    assert [image.get("verdict") for image in body["images"]] != [None] * 3
    assert all("error" not in image for image in body["images"]), body
    with pytest.raises(OSError):
        urllib.request.urlopen(server.base + "/healthz", timeout=5)


def test_the_drain_is_bounded_by_drain_timeout(head):
    # An upload stalls mid-body with a body timeout far longer than the drain: after SIGTERM the
    # process still exits (0) at --drain-timeout, while the client holds its connection; the stalled
    # request is closed, not answered later.
    import socket
    from urllib.parse import urlsplit
    server = Server(head, "--drain-timeout", "1", "--body-timeout", "600")
    address = urlsplit(server.base)
    stalled = socket.create_connection((address.hostname, address.port), timeout=120)
    stalled.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\nonly a little")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the server counts the request as in progress
        with urllib.request.urlopen(server.base + "/metrics", timeout=10) as response:
            text = response.read().decode()
        if any(line.startswith("clipdetect_open_connections ") and float(line.split()[-1]) >= 2 for line in text.splitlines()):
            break
        time.sleep(0.05)
    server.process.send_signal(signal.SIGTERM)
    # A guard against a hang (far below the body timeout), not a limit on the drain's speed.
    assert server.process.wait(timeout=120) == 0, server.stderr
    assert "the drain was cut short at --drain-timeout (1.0 seconds)" in server.stderr, server.stderr
    stalled.settimeout(10)
    left = b""
    try:
        while chunk := stalled.recv(4096):
            left += chunk
    except OSError:
        pass
    stalled.close()
    assert b" 200 " not in left, left
