"""The web tests' fixtures: a live server over the web stage's database, and one headless Chromium
per session (Playwright driving Debian's /usr/bin/chromium; each test opens its own context)."""

from __future__ import annotations

import os
import shutil

import pytest

from shelfwatch.web.app import create_app
from tests.conftest import ON_CI

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No background traffic: this machine's closed network refuses it, and it costs every start.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_server(web_db):
    from lab.bench.web import serving

    engine, settings = web_db
    with serving(create_app(settings)) as base:  # localhost: Chromium accepts Secure cookies there
        yield engine, base


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if ON_CI:
            pytest.fail("Chromium is not installed and CI=true: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
