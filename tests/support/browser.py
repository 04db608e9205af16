"""Headless Chromium for the review page's tests (Debian's chromium and chromedriver).

The README's test command installs `chromium` and `chromium-driver` from Debian when they are
missing; elsewhere the tests that need a browser skip, saying why.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = next(
    (p for p in ("chromium", "chromium-browser", "google-chrome") if shutil.which(p)), None
)
DRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver; "
    "./run.sh test installs them when it runs as root with apt)",
)


def start_browser():
    """A headless Chromium driven by selenium (the caller quits it)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_idle(driver, timeout: float = 60.0) -> None:
    """Until every queued action of the page has finished."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "return document.body.dataset.busy === '0' && state.tile !== undefined"
        )
    )


def centre_loaded(driver) -> bool:
    """Whether the tile under review has its image."""
    return driver.execute_script(
        "const img = document.getElementById('centre');return img.complete && img.naturalWidth > 0;"
    )
