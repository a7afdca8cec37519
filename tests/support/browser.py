"""Headless Chromium for page tests (Debian's chromium + chromium-driver, driven by selenium).

``chromium`` (a pytest fixture, registered in tests/conftest.py) yields a selenium WebDriver with a
fresh profile; it fails, never skips, when the browser is missing. ``save_screenshot(driver, name)``
writes ``var/test-artifacts/<name>.png`` and returns the path; ``full_page_screenshot`` the whole page.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def chromium() -> Iterator[webdriver.Chrome]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def save_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def full_page_screenshot(driver: webdriver.Chrome, name: str, width: int = 1440) -> Path:
    """The whole page at ``width`` pixels, with the admin's navigation sidebar folded away."""
    toggle = driver.find_elements(By.ID, "toggle-nav-sidebar")
    if (
        toggle
        and toggle[0].is_displayed()
        and driver.find_elements(By.CSS_SELECTOR, "#nav-sidebar[aria-expanded=true]")
    ):
        toggle[0].click()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 40, 8000))
    return save_screenshot(driver, name)
