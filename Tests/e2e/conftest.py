import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from serving import make_head  # noqa: E402


@pytest.fixture(scope="session")
def head(tmp_path_factory):
    return make_head(tmp_path_factory.mktemp("head"))


@pytest.fixture
def browser():
    """Headless Chromium from Debian, with the browser's console log kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
