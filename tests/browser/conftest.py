"""Browser tests: the demo helpdesk and the panel in its iframe, driven by Playwright in Debian's Chromium.

``chromium`` (session) makes sure ``/usr/bin/chromium`` exists: if it does not, it runs
``apt-get update`` once and ``apt-get install -y chromium`` (root only), and skips the browser
tests with the reason when that is impossible. Playwright's own browser download
(``playwright install``) is never used. ``live_server`` serves the test app on a free loopback
port (werkzeug, threaded) against the test database; ``demo_page`` loads the demo data and
opens a page on ``/``. Screenshots go to ``tests/browser/artifacts/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = Path(os.environ.get("REBOUND_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
VIEWPORT = {"width": 1180, "height": 820}

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")


def _install_chromium() -> str | None:
    """Install Debian's chromium; the reason it could not be, or None."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine to install Debian's chromium"
    if os.geteuid() != 0:
        return "installing chromium needs root (apt-get install -y chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(command)} failed: {exc}"
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        problem = _install_chromium()
        if problem or not CHROMIUM.exists():
            pytest.skip(f"Debian's Chromium is not available at {CHROMIUM}: {problem or 'not installed'}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        # Headless, and without Chromium's sandbox: it refuses to start as root with one.
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The test app on a free loopback port; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture()
def demo_loaded(app: Flask, clean_db: None) -> Flask:
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    return app


@pytest.fixture()
def page(browser: sync_api.Browser, live_server: str, demo_loaded: Flask,
         request: pytest.FixtureRequest) -> Iterator[sync_api.Page]:
    """A fresh browser page on the demo helpdesk's ticket list; a screenshot is kept if the test fails."""
    context = browser.new_context(base_url=live_server, viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/")
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        shot(page, f"FAILED-{request.node.name}")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def shot(page: sync_api.Page, name: str, full_page: bool = False) -> Path:
    """Save a screenshot as a test artifact; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
