"""Proof 2: Neo4j stopped (scripts/neo4j-local) *while* an ingest writes and while the API is busy.

tests/api/test_outage.py covers a server that is already down; here it goes away in the
middle of work:

* an ingest of a generated network is writing when the server stops: the ingest fails
  with ``StoreUnavailable`` ("unreachable"), and once the server is back the store holds
  exactly what it held before (nothing partial), and the same ingest then succeeds;
* client threads keep calling a served API (reads and writes) while the server stops and
  starts again: every request ends within a bound, with 200 or a 503 problem, and once
  the store answers again every request succeeds, from the same API process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.keys import create_key
from graph.errors import StoreUnavailable
from graph.open import open_store
from ingest.load import ingest_path
from tests.conftest import LocalNeo4j, _wipe
from tests.helpers import tiny, write_csvs
from tests.reliability.support import (
    ROOT,
    State,
    child_env,
    describe,
    expected_state,
    state,
    write_network,
)

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]
NO_HANG_S = 30  # per request / per failing call: a bound against hangs, not a target
CLIENTS = 4


def _start_if_stopped(server: LocalNeo4j) -> None:
    server.start()  # neo4j-local says so and returns when it already runs


# --- an ingest that is writing when the server stops ------------------------------------


def test_an_ingest_writing_when_neo4j_stops_fails_clearly_and_leaves_nothing_partial(
    own_neo4j: LocalNeo4j, tmp_path: Path
) -> None:
    base = write_network(150, 1, tmp_path / "base")
    big = write_network(1500, 0, tmp_path / "big")
    want_before = expected_state(tmp_path, base)
    want_after = expected_state(tmp_path, base, big)
    _wipe(own_neo4j.url)
    store = open_store(own_neo4j.url, connect_timeout_s=2, retry_s=2)  # the API's settings
    try:
        assert ingest_path(base, store).ok
        before = state(store)
        assert before.rows == want_before.rows

        writing = threading.Event()
        write = store.upsert

        def announced(batch, **kw):  # type: ignore[no-untyped-def]
            writing.set()
            return write(batch, **kw)

        store.upsert = announced  # type: ignore[method-assign]
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["report"] = ingest_path(big, store)
            except BaseException as e:  # judged below
                outcome["error"] = e
            outcome["ended"] = time.monotonic()

        thread = threading.Thread(target=run)
        thread.start()
        assert writing.wait(120), "the ingest never began writing"
        time.sleep(0.5)
        stopped_at = time.monotonic()
        own_neo4j.stop()
        thread.join(NO_HANG_S + 60)
        assert not thread.is_alive(), "the ingest hung after the server stopped"
        store.upsert = write  # type: ignore[method-assign]

        error = outcome.get("error")
        assert error is not None, f"the ingest did not fail: {outcome.get('report')}"
        assert isinstance(error, StoreUnavailable), f"{type(error).__name__}: {error}"
        assert "unreachable" in error.detail, error.detail
        assert float(outcome["ended"]) - stopped_at < NO_HANG_S + 60  # type: ignore[arg-type]

        own_neo4j.start()
        _wait_for(lambda: _answers(store), NO_HANG_S + 60, "the store never came back")
        got = state(store)
        assert got == before, "a partial write survived: " + describe(
            got, ("before", before), ("after", State(before.revision + 1, want_after.rows))
        )
        report = ingest_path(big, store)  # the next ingest succeeds, on the same store object
        assert report.ok and report.written, [str(e) for e in report.errors[:3]]
        got = state(store)
        assert got.rows == want_after.rows and got.revision == before.revision + 1
    finally:
        _start_if_stopped(own_neo4j)
        store.close()


def _answers(store: object) -> bool:
    try:
        store.revision()  # type: ignore[attr-defined]
        return True
    except StoreUnavailable:
        return False


def _wait_for(check, timeout: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(0.5)


# --- the API under load while the server stops and starts --------------------------------


@dataclass
class Call:
    started: float
    ended: float
    method: str
    path: str
    status: int | None
    content_type: str
    detail: str
    retry_after: str | None
    error: str | None = None


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(own_neo4j: LocalNeo4j, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    """``iccmatch serve`` on the dedicated server's store, holding the tiny network."""
    _wipe(own_neo4j.url)
    store = open_store(own_neo4j.url)
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        keys = {
            "admin": create_key(store, "admin")[0],
            "analyst": create_key(store, "analyst")[0],
        }
    finally:
        store.close()
    port = _free_tcp_port()
    env = child_env(
        ICCMATCH_STORE=own_neo4j.url,
        ICCMATCH_NEO4J_CONNECT_TIMEOUT_S="2",
        ICCMATCH_NEO4J_RETRY_S="2",
    )
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "iccmatch"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:  # serving: the first revision prepared (the model loaded), not only live
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.3)
        yield base, keys, proc.pid
        assert proc.poll() is None, "the API process died"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()


REQUESTS = [
    ("GET", "/v1/cities", "analyst", None),
    ("GET", "/v1/cities/pt-amadora", "analyst", None),
    ("GET", "/v1/themes?limit=10", "analyst", None),
    ("GET", "/v1/network/stats", "analyst", None),
    ("POST", "/v1/cities/it-messina/interests", "admin", "interest"),
    ("POST", "/v1/themes", "admin", "theme"),
]


def _client_loop(
    base: str, keys: dict[str, str], worker: int, stop: threading.Event, calls: list[Call]
) -> None:
    with httpx.Client(base_url=base, timeout=NO_HANG_S) as client:
        n = 0
        while not stop.is_set():
            method, path, role, body_kind = REQUESTS[(worker + n) % len(REQUESTS)]
            n += 1
            body = None
            if body_kind == "interest":
                body = {
                    "partner_id": "es-getxo",
                    "status": ("interested", "not_for_us")[n % 2],
                    "note": f"worker {worker} call {n}",
                }
            elif body_kind == "theme":
                body = {"rows": [{"id": f"load-{worker}", "name": f"Load {worker} call {n}"}]}
            started = time.monotonic()
            try:
                r = client.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {keys[role]}"}
                )
            except httpx.HTTPError as e:
                calls.append(
                    Call(started, time.monotonic(), method, path, None, "", "", None, repr(e))
                )
                continue
            detail = ""
            if r.status_code >= 400:
                try:
                    detail = str(r.json().get("detail", ""))
                except ValueError:
                    detail = r.text[:200]
            calls.append(
                Call(
                    started,
                    time.monotonic(),
                    method,
                    path,
                    r.status_code,
                    r.headers.get("content-type", ""),
                    detail,
                    r.headers.get("retry-after"),
                )
            )


def _timeline(calls: list[Call], down_at: float, ready_at: float) -> str:
    """What each client did around the outage, for a failure message."""
    lines = [f"the outage was never seen; it lasted {ready_at - down_at:.1f} s (down to ready)"]
    for c in sorted(calls, key=lambda c: c.started):
        if c.ended >= down_at - 5 and c.started <= ready_at + 5:
            lines.append(
                f"  {c.started - down_at:+7.2f} .. {c.ended - down_at:+7.2f} s  "
                f"{c.method} {c.path} -> {c.status} {c.detail[:60]}"
            )
    return "\n".join(lines)


def test_the_api_under_load_answers_200_or_503_while_neo4j_stops_and_recovers_by_itself(
    own_neo4j: LocalNeo4j, served: tuple[str, dict[str, str], int]
) -> None:
    base, keys, pid = served
    calls: list[Call] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client_loop, args=(base, keys, w, stop, calls))
        for w in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        down_at = time.monotonic()
        own_neo4j.stop()
        time.sleep(4)
        own_neo4j.start()
        _wait_for(
            lambda: httpx.get(f"{base}/health/ready", timeout=NO_HANG_S).status_code == 200,
            NO_HANG_S + 60,
            "readiness never came back",
        )
        ready_at = time.monotonic()
        # the first queries of a fresh server are slow: keep going until every client has
        # sent a couple of requests after the recovery
        _wait_for(
            lambda: sum(c.started >= ready_at for c in list(calls)) >= 3 * CLIENTS,
            NO_HANG_S * 3,
            "too few requests after the recovery to judge",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(NO_HANG_S + 10)
        _start_if_stopped(own_neo4j)
    assert not any(t.is_alive() for t in threads), "a client hung"

    failed = [c for c in calls if c.error is not None]
    assert not failed, f"requests that did not end with a response: {failed[:5]}"
    slow = [c for c in calls if c.ended - c.started > NO_HANG_S]
    assert not slow, f"requests past {NO_HANG_S} s: {slow[:5]}"
    statuses = {c.status for c in calls}
    assert statuses <= {200, 503}, [c for c in calls if c.status not in (200, 503)][:5]
    for c in calls:
        if c.status == 503:
            assert c.content_type == "application/problem+json", c
            assert "unreachable" in c.detail or "unavailable" in c.detail.lower(), c
            assert c.retry_after, c
    before = [c for c in calls if c.ended < down_at]
    during = [c for c in calls if down_at <= c.started < ready_at]
    after = [c for c in calls if c.started >= ready_at]
    assert before and all(c.status == 200 for c in before), [c for c in before if c.status != 200]
    assert any(c.status == 503 for c in during), _timeline(calls, down_at, ready_at)
    assert len(after) >= CLIENTS, "too few requests after the recovery to judge"
    not_ok = [c for c in after if c.status != 200]
    assert not not_ok, f"failures after the store came back: {not_ok[:5]}"
    written = {c.method for c in after if c.status == 200}
    assert written == {"GET", "POST"}, "reads and writes must both recover"
    assert os.path.exists(f"/proc/{pid}"), "the API was restarted"
