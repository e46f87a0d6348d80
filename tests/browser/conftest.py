"""Browser tests: headless Debian Chromium driven by Playwright (``make test-browser``).

They need ``/usr/bin/chromium`` (Debian package ``chromium``) and the ``browser``
extra (Playwright); ``make test-browser`` and ``.ci/run`` install both.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("no Chromium: install Debian's `chromium` (`sudo apt-get install chromium`; make test-browser "
                    "installs it when it runs as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)

