"""Debian's Chromium driven headless through Playwright: for the browser tests, the README's
screenshots and the first-paint benchmark.

Playwright's own browser download is not used: the system's ``chromium`` package is, with
the flags that keep it from reaching for the network at start (component updates, sync,
background requests), a fresh profile each time, and no sandbox (it runs as root in CI).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import CnnlabError

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = "install it with `apt-get install -y chromium` (Debian/Ubuntu) and `pip install playwright`"


def find_chromium() -> str | None:
    """The path of the system's Chromium (``$CHROMIUM`` first), or ``None``."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextmanager
def chromium_context(width: int = 1360, height: int = 900):
    """A Playwright browser context of headless Chromium with a fresh profile, closed afterwards."""
    executable = find_chromium()
    if executable is None:
        raise CnnlabError(f"no Chromium found: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise CnnlabError(f"Playwright for Python is missing: {INSTALL_HINT}") from None
    with tempfile.TemporaryDirectory(prefix="cnnlab-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        try:
            yield context
        finally:
            context.close()
