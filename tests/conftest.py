"""Shared fixtures: one store fixture parametrised over every backend.

The Neo4j half runs against the real engine: ``ICCMATCH_TEST_NEO4J_URL`` when set,
else a server this session starts with ``scripts/neo4j-local``. When
``ICCMATCH_REQUIRE_NEO4J=1`` (CI sets it), a Neo4j that cannot be had fails the run
instead of skipping, so a green CI always means Neo4j was really exercised.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from graph.neo4j_store import Neo4jStore
from graph.sqlite_store import SqliteStore
from graph.store import GraphStore

ROOT = Path(__file__).resolve().parents[1]
NEO4J_LOCAL = ROOT / "scripts" / "neo4j-local" / "neo4j-local"
SAMPLE = ROOT / "data" / "sample"
# A test-only statement: wipes the test database between tests.
_WIPE = "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require_neo4j() -> bool:
    return os.environ.get("ICCMATCH_REQUIRE_NEO4J") == "1"


class LocalNeo4j:
    """A real Neo4j started with scripts/neo4j-local; tests may stop and start it."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.url = f"bolt://127.0.0.1:{port}"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(NEO4J_LOCAL), *args, "--data", str(self.data)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start(self) -> None:
        self._run("start", "--port", str(self.port))

    def stop(self) -> None:
        self._run("stop")


def _no_neo4j(detail: str) -> NoReturn:
    """Skip without Neo4j, or fail when ICCMATCH_REQUIRE_NEO4J=1 (CI)."""
    if _require_neo4j():
        pytest.fail(f"Neo4j could not be started and ICCMATCH_REQUIRE_NEO4J=1: {detail}")
    pytest.skip(f"no Neo4j: {detail}")


def need_neo4j_local() -> None:
    """scripts/neo4j-local needs Java and Maven: without them, ``_no_neo4j``."""
    if shutil.which("java") is None or shutil.which("mvn") is None:
        _no_neo4j("java and mvn are needed to run scripts/neo4j-local")


def _started(server: LocalNeo4j) -> LocalNeo4j:
    """Start ``server``; without Neo4j, skip, or fail when ICCMATCH_REQUIRE_NEO4J=1 (CI)."""
    need_neo4j_local()
    try:
        server.start()
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        _no_neo4j(getattr(e, "stderr", "") or str(e))
    return server


@pytest.fixture(scope="session")
def neo4j_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("ICCMATCH_TEST_NEO4J_URL")
    if url:
        yield url
        return
    server = _started(LocalNeo4j(tmp_path_factory.mktemp("neo4j"), _free_port()))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_neo4j(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4j]:
    """A server of the module's own, for tests that stop and start it."""
    server = _started(LocalNeo4j(tmp_path_factory.mktemp("own-neo4j"), _free_port()))
    try:
        yield server
    finally:
        server.stop()


def _wipe(url: str) -> None:
    store = Neo4jStore(url)
    try:
        with store._driver.session() as session:  # test helper only
            session.run(_WIPE).consume()
    finally:
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("neo4j_url")
    _wipe(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[GraphStore]:
    from graph.open import open_store

    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(f"sqlite:///{tmp_path / 'test.db'}")
    try:
        yield s
    finally:
        s.close()
