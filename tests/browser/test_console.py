"""The console's front door in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support.stack import Stack

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps reaching for Google services this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_console_links_to_the_api_reference(stack: Stack, artifacts_dir: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{stack.api_url}/console")
            assert page.title() == "BrokerFlow console"
            page.click("text=API reference")
            page.wait_for_url("**/docs")
            page.get_by_text("/v1/signup", exact=True).first.wait_for(timeout=15000)
            page.screenshot(path=str(artifacts_dir / "console-docs.png"), full_page=True)
        finally:
            browser.close()
