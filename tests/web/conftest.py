"""Browser tests of the web pages: the real API, the real model, headless Chromium via Playwright.

One server for the session (``tests.web.serve`` in a subprocess) on a temporary SQLite store
holding the sample network, with one key per role. A server prepares the network (embeds
every city profile: about 20 s on this CPU the first time) before ``/health/ready`` says
ready; the fixtures wait for that before any browser opens, and the store keeps the vectors.

Every page a test opens is watched: a console error, an uncaught exception, a failed
request, an HTTP status of 400 or more, a dialog (``alert``...) or a request to any
address other than the test server fails the test, unless the test declared it with
``watch.allow(...)``.

Needs ``/usr/bin/chromium`` (Debian's ``chromium``; Playwright's own browser download is not
used); the browser libraries are vendored in ``api/web/static/vendor``. Without Chromium the
tests are skipped, or fail when ``ICCMATCH_REQUIRE_WEB=1`` (CI sets it).
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = os.environ.get("ICCMATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
COORDINATOR_CITY = "pt-amadora"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "web: the web pages end to end in headless Chromium (needs chromium)",
    )


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="session", autouse=True)
def _web_prerequisites() -> None:
    why = _missing()
    if why:
        if os.environ.get("ICCMATCH_REQUIRE_WEB") == "1":
            pytest.fail(f"web tests cannot run and ICCMATCH_REQUIRE_WEB=1: {why}")
        pytest.skip(why)


# ---------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``/health/ready`` says 200: the server has prepared the network (bounded)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web test server exited ({process.returncode}); see {log}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the web test server was not ready within 240 s; see {log}")


@dataclass
class Server:
    """One API + pages process on a store; ``keys`` holds one key per role."""

    db: Path
    keys: dict[str, str]
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.db}"

    def start(self, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        env.pop("ICCMATCH_STORE", None)
        out = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.web.serve",
                "--store",
                self.store_url,
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_until_ready(self.url, self.process, log)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, role: str = "admin") -> httpx.Client:
        """An HTTP client for the same API, as the given role (for setup and checks)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.keys[role]}"}, timeout=300
        )


def _make_store(db: Path) -> dict[str, str]:
    from api.keys import create_key
    from graph.open import open_store
    from ingest.load import ingest_path

    store = open_store(f"sqlite:///{db}")
    try:
        report = ingest_path(SAMPLE, store)
        assert not report.errors, report.errors[:3]
        return {
            "admin": create_key(store, "admin", label="web tests")[0],
            "coordinator": create_key(
                store, "coordinator", city_id=COORDINATOR_CITY, label="web tests"
            )[0],
            "analyst": create_key(store, "analyst", label="web tests")[0],
        }
    finally:
        store.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("web") / "web.db"
    srv = Server(db, _make_store(db))
    ARTIFACTS.mkdir(exist_ok=True)
    srv.start(ARTIFACTS / "web-server.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def copy_server(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second server on a copy of the session's store (embeddings included), for tests
    that change the data in ways other tests must not see."""
    db = tmp_path_factory.mktemp("web-copy") / "web.db"
    src = sqlite3.connect(server.db)
    dst = sqlite3.connect(db)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    srv = Server(db, dict(server.keys))
    srv.start(ARTIFACTS / "web-server-copy.log")
    try:
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # a bound against hangs, not a target: on a busy machine (CI beside other work) a page
    # can take longer than Playwright's default 5 s to sign in or redraw
    expect.set_options(timeout=20_000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watch:
    """What went wrong on a page; ``allow`` declares the errors a test provokes on purpose."""

    base: str
    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[int, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def allow(self, status: int, path: str) -> None:
        """An HTTP ``status`` for a URL containing ``path`` is expected (and its console line)."""
        self.allowed.append((status, path))

    def _is_allowed(self, status: int, url: str) -> bool:
        return any(status == s and p in url for s, p in self.allowed)

    def on_console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        text = msg.text
        url = (msg.location or {}).get("url", "")
        m = re.search(r"status of (\d{3})", text)
        if m and self._is_allowed(int(m.group(1)), url):
            return
        self.problems.append(f"console error: {text} ({url})")

    def on_response(self, response: Any) -> None:
        if response.status >= 400 and not self._is_allowed(response.status, response.url):
            self.problems.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def on_request_failed(self, request: Any) -> None:
        failure = request.failure or ""
        if request.url.startswith("blob:"):
            return  # a download handed to the browser
        if "ERR_ABORTED" in failure:
            # cancelled, not failed: a request the page no longer needs (a newer search or
            # check) or a script still loading when the page navigated (signing out); a
            # missing file is an HTTP 404 (on_response) and an outside address is aborted
            # as "failed" (the guard)
            return
        self.problems.append(f"request failed: {request.method} {request.url} ({failure})")

    def on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        self.problems.append(f"a dialog opened: {dialog.type} {dialog.message!r}")
        dialog.dismiss()

    def check(self) -> None:
        problems = self.problems + [f"request to an outside address: {u}" for u in self.outside]
        self.problems, self.outside = [], []  # report each problem once
        if problems:
            pytest.fail("the page reported problems:\n  " + "\n  ".join(problems), pytrace=False)


@dataclass
class Tab:
    """A browser tab on the test server, with its watch."""

    page: Any
    watch: Watch
    base: str

    def open(self, path: str, key: str | None = None) -> Any:
        from playwright.sync_api import expect

        self.page.goto(self.base + path)
        if key is not None:
            self.page.get_by_label("API key").fill(key)
            self.page.get_by_role("button", name="Sign in").click()
            expect(self.page.locator("#who-text")).to_contain_text("Signed in")
        return self.page

    def screenshots(self, name: str) -> None:
        """Full-page pictures at 1280x800 and at phone width, in test-artifacts/screenshots."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page = self.page
        page.set_viewport_size(DESKTOP)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
        page.set_viewport_size(DESKTOP)
        page.wait_for_timeout(300)


def _open_tab(browser: Any, base: str) -> tuple[Any, Tab]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch = Watch(base)
    own = re.compile(r"^https?://127\.0\.0\.1:" + str(base.rsplit(":", 1)[1]) + r"/")

    def guard(route: Any) -> None:
        if own.match(route.request.url):
            route.continue_()
        else:
            watch.outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda exc: watch.problems.append(f"uncaught exception: {exc}"))
    page.on("requestfailed", watch.on_request_failed)
    page.on("response", watch.on_response)
    page.on("dialog", watch.on_dialog)
    return context, Tab(page, watch, base)


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    context, t = _open_tab(browser, server.url)
    try:
        yield t
    finally:
        context.close()
    t.watch.check()


@pytest.fixture
def copy_tab(browser: Any, copy_server: Server) -> Iterator[Tab]:
    context, t = _open_tab(browser, copy_server.url)
    try:
        yield t
    finally:
        context.close()
    t.watch.check()
