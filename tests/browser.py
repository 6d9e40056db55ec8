"""Headless Chromium from Debian's packages, driven by Selenium, for the console's pages.

The browser is installed with apt-get when it is missing (the tests run as root, with no
stdin); an install that fails fails the tests: they never skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,900",
    "--lang=ru-RU",
)


def ensure_chromium() -> None:
    if Path(CHROMIUM).exists() and Path(DRIVER).exists():
        return
    # test workers run side by side: one installs, the others wait for it
    with open(Path(tempfile.gettempdir()) / "navbot-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
            _install()


def _install() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium", "chromium-driver"],
    ):
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env
        )
        if result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}"
            )
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.fail("chromium and chromium-driver installed, yet their binaries are missing")


class Browser:
    """One fresh Chromium profile; call `close()` to end it."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        ensure_chromium()
        self.profile = tempfile.mkdtemp(prefix="navbot-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        # a browser in Russian, as the hotline staff have
        service = Service(DRIVER, env={**os.environ, "LANGUAGE": "ru", "LANG": "ru_RU.UTF-8"})
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(30)

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def screenshot(self, name: str) -> Path:
        """The whole page (as tall as its content) saved as a PNG under artifacts/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1440, max(900, min(int(height) + 40, 4000)))
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1440, 900)
        return path
