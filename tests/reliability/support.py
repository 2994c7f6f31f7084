"""Shared pieces of the reliability proofs: store states, generated networks, child processes.

A store's *state* is its revision plus every row of every kind in export form (sorted by
key, every column present), so two states compare with ``==`` across stores and runs.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from graph.model import Kind
from graph.open import open_store
from graph.store import GraphStore
from ingest.load import ingest_path
from scripts import netgen  # generate(n, seed), write_csv(data, folder)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").is_dir() else sys.executable

Rows = dict[str, list[dict[str, Any]]]
Export = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class State:
    revision: int
    rows: Export

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.rows.items()}


def state(store: GraphStore) -> State:
    """What the store holds now: its revision and every row, in export form."""
    snap = store.snapshot()
    return State(snap.revision, {k.value: snap.export_rows(k) for k in Kind})


def state_of_url(url: str) -> State:
    store = open_store(url)
    try:
        return state(store)
    finally:
        store.close()


def describe(got: State, *candidates: tuple[str, State]) -> str:
    """Why a state matches none of the candidates: per candidate, the kinds that differ."""
    lines = [f"revision {got.revision}, counts {got.counts()}"]
    for name, want in candidates:
        differ = [k for k in want.rows if got.rows.get(k) != want.rows[k]]
        lines.append(f"vs {name} (revision {want.revision}): kinds differing {differ}")
    return "; ".join(lines)


def write_network(n_cities: int, seed: int, folder: Path) -> Path:
    """A generated network (scripts/netgen.py) written as interchange CSV files."""
    netgen.write_csv(netgen.generate(n_cities, seed), folder)
    return folder


def expected_state(tmp: Path, *datasets: Path) -> State:
    """The state after ingesting ``datasets`` one after the other into a fresh SQLite store.

    Exports are identical across stores (the contract suite proves it), so the embedded
    store computes what every store must end up holding.
    """
    url = f"sqlite:///{tmp / 'expected.db'}"
    store = open_store(url)
    try:
        for ds in datasets:
            report = ingest_path(ds, store)
            assert report.ok, [str(e) for e in report.errors[:5]]
        return state(store)
    finally:
        store.close()
        for f in tmp.glob("expected.db*"):
            f.unlink()


SHOW_TRANSACTIONS = "SHOW TRANSACTIONS YIELD transactionId, status, currentQuery RETURN *"


def neo4j_transactions(url: str) -> list[dict[str, Any]]:
    """The server's open transactions, other than the one asking (test helper only)."""
    from graph.neo4j_store import Neo4jStore

    store = Neo4jStore(url)
    try:
        with store._driver.session() as session:
            rows = session.run(SHOW_TRANSACTIONS).data()
    finally:
        store.close()
    return [r for r in rows if not str(r["currentQuery"]).startswith("SHOW TRANSACTIONS")]


def wait_until_quiet(url: str, timeout: float) -> None:
    """Wait until a Neo4j server has finished (committed or rolled back) every transaction.

    A client killed right after sending COMMIT leaves the server committing for a moment;
    reading before it is done would be reading a store in the middle of a commit.
    """
    if url.startswith("sqlite"):
        return
    deadline = time.monotonic() + timeout
    while (open_txs := neo4j_transactions(url)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not open_txs, f"transactions still open after {timeout} s: {open_txs}"


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def restore_sqlite(template: Path, db: Path) -> None:
    """Put a SQLite store back to a saved state (no connection may be open on either)."""
    for f in sqlite_files(db):
        f.unlink(missing_ok=True)
    for src, dst in zip(sqlite_files(template), sqlite_files(db), strict=True):
        if src.exists():
            shutil.copyfile(src, dst)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICCMATCH_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


class Child:
    """A child process whose stdout lines arrive, timestamped, on a queue (never blocks the test)."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=env or child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[str] = []
        self.timed: list[tuple[float, str]] = []  # what ``seen`` holds, with arrival times
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put((time.monotonic(), "<EOF>"))

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for(self, prefix: str, timeout: float) -> tuple[float, str]:
        """The first line starting with ``prefix`` (and when it came); fails on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {prefix!r} from the child in {timeout} s: {self.seen}")
            try:
                at, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            self.timed.append((at, line))
            if line.startswith(prefix):
                return at, line
            if line == "<EOF>":
                raise AssertionError(
                    f"the child ended before {prefix!r}: {self.seen} {''.join(self.stderr)[-2000:]}"
                )

    def drain(self, timeout: float) -> list[str]:
        """Every line seen so far and still to come, once stdout has closed."""
        deadline = time.monotonic() + timeout
        while not self.seen or self.seen[-1] != "<EOF>":
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the child's output did not end in {timeout} s")
            try:
                at, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            self.timed.append((at, line))
        return self.seen

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finished(self) -> bool:
        return self.proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL this child (by its own pid) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)


class HashEncoder:
    """A deterministic stand-in for the sentence model: a unit vector from each text's hash.

    The reliability proofs are about writes, not about matching quality; this keeps them
    from loading the model and makes every run embed the same vectors.
    """

    name = "test-hash-encoder"

    def encode(self, texts: Sequence[str], progress: Any = None) -> NDArray[np.float32]:
        out = np.empty((len(texts), 32), dtype=np.float32)
        for i, text in enumerate(texts):
            digest = hashlib.sha256(text.encode("utf-8")).digest()
            out[i] = np.frombuffer(digest, dtype=np.uint8)[:32].astype(np.float32) - 127.5
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out
