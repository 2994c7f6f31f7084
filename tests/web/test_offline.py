"""Offline from a plain install: the package built from this tree, installed without the
repository, serves ``/docs`` and every page with every request to another origin blocked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from api.routes.pages import PAGES
from scripts.vendor_web import FILES as VENDORED
from tests.web.conftest import ARTIFACTS, ROOT, Server, _free_port, _open_tab, wait_until_ready

pytestmark = [pytest.mark.web, pytest.mark.slow]
PIP = (sys.executable, "-m", "pip", "-q")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install .`` of this tree (no dependencies: they are this venv's) into a folder
    of its own, from a wheel built by the project's own build backend."""
    work = tmp_path_factory.mktemp("plain-install")
    source = work / "src"  # a copy: building writes build/ and egg-info into the tree
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "test-artifacts", "*.db", "__pycache__", ".*cache"
        ),
    )
    wheels = work / "wheels"
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
    )
    (wheel,) = wheels.glob("iccmatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for file in (*PAGES.values(), "_header.html", "_footer.html"):
        assert f"api/web/pages/{file}" in names, file
    for name in VENDORED:
        assert f"api/web/static/vendor/{name}" in names, name
    assert not any("node_modules" in n for n in names)
    target = work / "site"
    subprocess.run(
        [*PIP, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    return target


@pytest.fixture(scope="module")
def plain_server(
    installed: Path, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``iccmatch serve`` from the installed package, run outside the repository, on a copy
    of the session's store."""
    db = tmp_path_factory.mktemp("plain-db") / "web.db"
    shutil.copyfile(server.db, db)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(installed), "HF_HUB_OFFLINE": "1"}
    env.pop("ICCMATCH_STORE", None)
    log = ARTIFACTS / "web-server-plain.log"
    where = subprocess.run(
        [sys.executable, "-c", "import api.routes.pages as p; print(p.WEB)"],
        cwd=installed.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed)), where  # the installed copy, not the repository
    command = "from api.cli import main; main()"
    args = ["serve", "--store", f"sqlite:///{db}", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", command, *args],
            cwd=installed.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_docs_and_every_page_work_offline_from_a_plain_install(
    browser: object, plain_server: str
) -> None:
    context, tab = _open_tab(browser, plain_server)
    try:
        page = tab.open("/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("iccmatch")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        for path in PAGES:
            page = tab.open(path)
            expect(page.locator("#signin-form")).to_be_attached()
            # the vendored libraries a page names have loaded
            if "d3-geo" in page.content():
                assert page.evaluate("typeof d3 === 'object' && typeof d3.geoPath === 'function'")
                assert page.evaluate("typeof topojson === 'object'")
            if "cytoscape" in page.content():
                assert page.evaluate("typeof cytoscape === 'function'")
        assert tab.watch.outside == []
    finally:
        context.close()
    tab.watch.check()
