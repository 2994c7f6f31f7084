"""Proof 1: a writer killed with SIGKILL at random moments leaves all of its ingest or none.

A child process runs the real ingest (``ingest.load.ingest_path``: read, check, one
transaction) of a generated network over a smaller, overlapping one, so the write both
creates and updates rows. The child says ``WRITING`` when its store write begins; the
test kills it at a seeded random moment, mostly within the measured length of the write
(and a little past it, so some kills land after the commit), some during reading and
checking. After each kill the store must hold exactly the state before or exactly the
state after a clean ingest (rows *and* revision: the revision moves iff the rows did),
and the next ingest must succeed and reach the state after.

The expected states are computed once, in a separate fresh store.
"""

from __future__ import annotations

import random
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from graph.open import open_store
from graph.store import GraphStore
from ingest.load import ingest_path
from tests.conftest import _wipe
from tests.reliability.support import (
    PYTHON,
    Child,
    State,
    describe,
    expected_state,
    restore_sqlite,
    state,
    wait_until_quiet,
    write_network,
)

pytestmark = pytest.mark.slow

KILLS = 20
SEED = 20240601
NO_HANG_S = 120  # a bound against hangs, never a performance target

CHILD = """
import sys
from pathlib import Path
from graph.open import open_store
from ingest.load import ingest_path

store = open_store(sys.argv[1])
write = store.upsert

def announced(batch, **kw):
    print("WRITING", flush=True)
    return write(batch, **kw)

store.upsert = announced
report = ingest_path(Path(sys.argv[2]), store)
print("DONE", report.ok, report.upsert.changed, flush=True)
store.close()
"""


@dataclass
class Outcomes:
    none: int = 0  # killed, nothing of the ingest stored
    all: int = 0  # killed (or finished) after the commit: everything stored
    during_write: int = 0  # killed after WRITING and before DONE


@dataclass
class Case:
    """How to reach the state before, for one store."""

    url: str
    reset: Callable[[], None]


def _kill_once(
    case: Case, dataset: Path, *, from_write: bool, delay: float
) -> tuple[bool, float | None]:
    """Run the child and SIGKILL it ``delay`` seconds after it began writing (``from_write``)
    or after it started. Return whether it died while writing, and how long its write took
    when it finished before the kill."""
    child = Child([PYTHON, "-c", CHILD, case.url, str(dataset)])
    writing = None
    try:
        if from_write:
            writing, _ = child.wait_for("WRITING", NO_HANG_S)
        time.sleep(delay)
        child.proc.send_signal(signal.SIGKILL)
        child.wait(NO_HANG_S)
    finally:
        child.kill()
    child.drain(NO_HANG_S)
    done = next((at for at, line in child.timed if line.startswith("DONE")), None)
    took = done - writing if done is not None and writing is not None else None
    killed_writing = from_write and done is None and child.proc.returncode == -signal.SIGKILL
    return killed_writing, took


def _calibrate(case: Case, dataset: Path, after: State) -> tuple[float, float]:
    """One unkilled run: (seconds to WRITING, seconds of the write). It must reach ``after``."""
    child = Child([PYTHON, "-c", CHILD, case.url, str(dataset)])
    try:
        writing, _ = child.wait_for("WRITING", NO_HANG_S)
        done, line = child.wait_for("DONE", NO_HANG_S)
        assert child.wait(NO_HANG_S) == 0, "".join(child.stderr)
    finally:
        child.kill()
    assert line.startswith("DONE True"), line
    store = open_store(case.url)
    try:
        assert state(store) == after
    finally:
        store.close()
    return writing - child.started, done - writing


def _prove(case: Case, dataset: Path, before: State, after: State) -> None:
    runs = []
    for _ in range(3):  # the first runs warm up (a fresh Neo4j JIT-compiles for a while)
        case.reset()
        runs.append(_calibrate(case, dataset, after))
    to_write = min(r[0] for r in runs)
    # The length of the write, kept up to date from children that finished before their
    # kill: a server that warms up writes faster, and more kills would land after the commit.
    writes = [runs[-1][1]]
    rng = random.Random(SEED)
    seen = Outcomes()
    for k in range(KILLS):
        case.reset()
        write_s = statistics.median(writes[-3:])
        if rng.random() < 0.15:  # while starting, reading or checking
            killed_writing, took = _kill_once(
                case, dataset, from_write=False, delay=rng.uniform(0, to_write)
            )
        else:  # while writing, or just after the commit
            killed_writing, took = _kill_once(
                case, dataset, from_write=True, delay=rng.uniform(0, 1.15 * write_s)
            )
        if took is not None:
            writes.append(took)
        seen.during_write += killed_writing
        wait_until_quiet(case.url, NO_HANG_S)
        store: GraphStore = open_store(case.url)
        try:
            got = state(store)
            if got == before:
                seen.none += 1
            elif got == after:
                seen.all += 1
            else:
                pytest.fail(
                    f"kill {k}: a partial write survived: "
                    + describe(got, ("before", before), ("after", after))
                )
            report = ingest_path(dataset, store)  # the next ingest succeeds
            assert report.ok, [str(e) for e in report.errors[:5]]
            assert state(store) == after, f"kill {k}: the next ingest did not reach the state after"
        finally:
            store.close()
    print(
        f"{case.url}: {KILLS} kills, {seen.none} left nothing, {seen.all} left everything, "
        f"{seen.during_write} landed during the write (writes {min(writes):.2f}-"
        f"{max(writes):.2f} s, {to_write:.2f} s to start)",
        file=sys.stderr,
    )
    assert seen.none + seen.all == KILLS
    assert seen.during_write >= KILLS // 3, "too few kills landed during the write to prove much"


def test_sigkill_during_a_sqlite_ingest_leaves_all_or_nothing(tmp_path: Path) -> None:
    base = write_network(150, 1, tmp_path / "base")
    big = write_network(2000, 0, tmp_path / "big")
    before = expected_state(tmp_path, base)
    after = expected_state(tmp_path, base, big)
    assert before.revision + 1 == after.revision

    template = tmp_path / "template.db"
    store = open_store(f"sqlite:///{template}")
    try:
        assert ingest_path(base, store).ok
    finally:
        store.close()
    db = tmp_path / "store.db"
    _prove(Case(f"sqlite:///{db}", lambda: restore_sqlite(template, db)), big, before, after)


@pytest.mark.neo4j
def test_sigkill_during_a_neo4j_ingest_leaves_all_or_nothing(
    neo4j_url: str, tmp_path: Path
) -> None:
    base = write_network(150, 1, tmp_path / "base")
    big = write_network(800, 0, tmp_path / "big")
    expected_before = expected_state(tmp_path, base)
    expected_after = expected_state(tmp_path, base, big)

    def reset() -> None:
        _wipe(neo4j_url)
        store = open_store(neo4j_url)
        try:
            assert ingest_path(base, store).ok
        finally:
            store.close()

    # The wipe keeps the revision node's history out of it: compare rows, and the revision
    # relative to the state before.
    reset()
    store = open_store(neo4j_url)
    try:
        before = state(store)
    finally:
        store.close()
    assert before.rows == expected_before.rows
    after = State(before.revision + 1, expected_after.rows)
    _prove(Case(neo4j_url, reset), big, before, after)
