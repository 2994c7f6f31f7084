#!/usr/bin/env python3
"""Ingest and snapshot benchmark for both stores; prints one JSON document.

For each size (cities) and store, in a child process of its own (so that memory figures
of one case never leak into the next):

1. generate the network with ``scripts/netgen.py`` (about 20 relationships per city) and
   put its rows in a ``GraphBatch`` as they are (netgen's rows are already canonical
   props; ``netgen.py N --check`` proves them equal to what ``ingest.validate`` makes);
2. open a fresh store (SQLite: a new file in a temp dir; Neo4j: a new server started
   with ``scripts/neo4j-local`` on a free port and a new data dir, stopped afterwards,
   or, with ``--neo4j-url``, an existing server wiped first) and warm it up with an
   empty upsert (connection, schema);
3. time ``store.upsert(batch)`` (one call, one transaction), then ``store.snapshot()``,
   then ``store.upsert(batch)`` again (re-ingest: must change nothing);
4. at the naive size (1,000 cities): wipe, ingest the same rows with one ``upsert`` per
   row (one transaction each), wipe, ingest them again as one batch on the now warm
   store; report rows/s and the batch/naive ratios.

The ``neo4j-bulk`` case (``--stores neo4j-bulk``, or ``--bulk`` beside the others) is a
first load with Neo4j's bulk importer instead of ``upsert``: in its child process it
times ``graph.neo4j_bulk.write_import`` (the CSV files), ``scripts/neo4j-local import``
(``neo4j-admin database import full`` into a new home), the server's start on that home
and the first ``snapshot()`` (which must hold every row of the batch), then, apart, the
first write that creates the constraints (``Neo4jStore._ensure_schema``); relationships/s
is reported for the files + import and for the whole first load (files + import + start
+ first snapshot).

Memory is the resident set (RSS) from ``/proc``: before each call the kernel's peak
counter is reset (``/proc/PID/clear_refs``), so "peak" is the highest RSS reached during
the call minus the RSS just before it. This counts what the call really took from the
OS, including allocator overhead, but not memory it reused from earlier frees. For
Neo4j the server's RSS and its JVM heap (from a GC log) are reported beside it.

Usage::

    .venv/bin/python -m scripts.bench_ingest                       # everything (~20-30 min)
    .venv/bin/python -m scripts.bench_ingest --sizes 1000 --stores sqlite
    .venv/bin/python -m scripts.bench_ingest --neo4j-url bolt://127.0.0.1:7687  # WIPES it
    .venv/bin/python -m scripts.bench_ingest --out bench.json --case-timeout 900
    .venv/bin/python -m scripts.bench_ingest --stores neo4j-bulk --sizes 10000 --naive-cities 0
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts import netgen

ROOT = Path(__file__).resolve().parents[1]

NEO4J_LOCAL = ROOT / "scripts" / "neo4j-local" / "neo4j-local"
MIB = 1024 * 1024
TARGETS = {
    "neo4j_relationships_per_s": 20_000,
    "neo4j_bulk_first_load_relationships_per_s": 20_000,
    "sqlite_relationships_per_s": 50_000,
    "snapshot_cities": 100_000,
    "snapshot_max_s": 10.0,
    "snapshot_max_bytes": 2_000_000_000,  # "2 GB", read as 10^9 bytes (stricter than GiB)
}
DEFINITIONS = {
    "rows": "rows of the interchange format in the batch: node rows (networks, themes, "
    "cities, experts, coordinators, stakeholders, practices) + relationship rows "
    "(city_themes, index_scores, expert_themes, partnerships)",
    "relationships": "relationship rows + reference edges, where a reference edge is one id "
    "named in a node row's reference field (cities.networks, coordinators.city_id and "
    ".network_id, stakeholders.city_id and .themes, practices.city_id and .themes): the "
    "relationships Neo4j stores (SQLite keeps references inside the node's JSON)",
    "rows_per_s / relationships_per_s": "count / wall time of the whole store.upsert call "
    "(one transaction, node rows included, commit included)",
    "cpu_s / server_cpu_s": "CPU seconds (user + system) the Python process / the Neo4j "
    "server used during the call: steadier than wall time when the machine is shared",
    "peak_rss_delta_mib": "highest RSS of the Python process during the call minus its RSS "
    "just before (kernel peak counter reset before the call, /proc/self/clear_refs)",
    "retained_rss_delta_mib": "RSS after the call (result still referenced, after "
    "gc.collect()) minus RSS before",
    "server_*": "the Neo4j server process: RSS peak during the call (same method), and the "
    "JVM heap in use before/after each GC during the call (from -Xlog:gc)",
    "reingest": "the same batch upserted again into the filled store: must report 0 changed",
    "naive": "the same rows, one store.upsert (one transaction) per row, in load order",
    "neo4j-bulk": "first load with neo4j-admin database import full: files_s (write_import), "
    "import_s (scripts/neo4j-local import, a JVM of its own), start_s (the server on the "
    "imported home, until Bolt answers), snapshot_s (the first Neo4jStore.snapshot()); "
    "load_relationships_per_s = relationships / (files_s + import_s); "
    "first_load_relationships_per_s = relationships / (files_s + import_s + start_s + "
    "snapshot_s); schema_s: the first write (an empty upsert) creating the constraints "
    "on the imported data, not in either rate",
}


# --- memory ------------------------------------------------------------------------------


def _status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes; {} if unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for key in ("VmRSS", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if m:
            out[key] = int(m.group(1)) * 1024
    return out


def _cpu_s(pid: int | str = "self") -> float | None:
    """User + system CPU seconds a process has used (from /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int | str = "self") -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Meter:
    """Wall time and RSS (now, peak) of this process and, optionally, of a server process."""

    def __init__(self, server_pid: int | None = None, gc_log: Path | None = None) -> None:
        self.server_pid = server_pid
        self.gc_log = gc_log
        self.result: dict[str, Any] = {}

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict[str, Any]]:
        out: dict[str, Any] = {}
        gc.collect()
        reset = _reset_peak()
        before = _status()
        srv_reset = self.server_pid is not None and _reset_peak(self.server_pid)
        srv_before = _status(self.server_pid) if self.server_pid else {}
        srv_cpu0 = _cpu_s(self.server_pid) if self.server_pid else None
        wall0 = time.time()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        try:
            yield out
        finally:
            out["s"] = round(time.perf_counter() - t0, 3)
            out["cpu_s"] = round(time.process_time() - cpu0, 3)
            if srv_cpu0 is not None:
                srv_cpu1 = _cpu_s(self.server_pid)
                if srv_cpu1 is not None:
                    out["server_cpu_s"] = round(srv_cpu1 - srv_cpu0, 2)
            wall1 = time.time()
            peak = _status()
            gc.collect()
            after = _status()
            if before and peak:
                if reset:
                    out["peak_rss_delta_mib"] = round((peak["VmHWM"] - before["VmRSS"]) / MIB, 1)
                else:  # no reset: only a lower bound of the peak is known
                    out["peak_rss_delta_mib_lower_bound"] = round(
                        max(0, peak["VmHWM"] - before["VmHWM"]) / MIB, 1
                    )
                out["retained_rss_delta_mib"] = round((after["VmRSS"] - before["VmRSS"]) / MIB, 1)
                out["rss_after_mib"] = round(after["VmRSS"] / MIB, 1)
            if self.server_pid:
                srv = _status(self.server_pid)
                if srv and srv_before:
                    out["server_rss_before_mib"] = round(srv_before["VmRSS"] / MIB, 1)
                    out["server_rss_peak_mib"] = round(
                        (srv["VmHWM"] if srv_reset else max(srv["VmHWM"], 0)) / MIB, 1
                    )
                if self.gc_log:
                    out.update(_heap_during(self.gc_log, wall0, wall1))


_GC_LINE = re.compile(
    r"^\[(?P<ts>[^\]]+)\].*?GC\(\d+\) (?P<what>Pause[^)]*\)).*? (?P<before>\d+)M->(?P<after>\d+)M"
    r"\((?P<cap>\d+)M\)"
)


def _heap_during(gc_log: Path, wall0: float, wall1: float) -> dict[str, Any]:
    """Max JVM heap in use before a GC and after one (≈ live data) between two wall times."""
    before = after = cap = n = 0
    try:
        lines = gc_log.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        m = _GC_LINE.match(line)
        if not m:
            continue
        try:
            ts = datetime.strptime(m.group("ts"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        except ValueError:
            continue
        if wall0 - 0.5 <= ts <= wall1 + 0.5:
            n += 1
            before = max(before, int(m.group("before")))
            after = max(after, int(m.group("after")))
            cap = max(cap, int(m.group("cap")))
    if not n:
        return {"server_gc_pauses": 0}
    return {
        "server_gc_pauses": n,
        "server_heap_max_before_gc_mib": before,
        "server_heap_max_after_gc_mib": after,
        "server_heap_committed_max_mib": cap,
    }


# --- one case, in a child process -------------------------------------------------------


def _wipe_neo4j(url: str) -> None:
    from neo4j import GraphDatabase

    with GraphDatabase.driver(url, auth=("neo4j", "")) as driver, driver.session() as session:
        session.run(
            "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def _open(store: str, url: str) -> Any:
    from graph.open import open_store

    return open_store(url)


def _fresh_url(store: str, tmp: Path, neo4j_url: str | None, name: str) -> str:
    if store == "sqlite":
        return f"sqlite:///{tmp / (name + '.db')}"
    assert neo4j_url
    _wipe_neo4j(neo4j_url)
    return neo4j_url


def _rates(n_rows: int, n_rels: int, seconds: float) -> dict[str, Any]:
    s = max(seconds, 1e-9)
    return {"rows_per_s": round(n_rows / s), "relationships_per_s": round(n_rels / s)}


class PhaseTimeout(Exception):
    """Raised from the progress callback: aborts (rolls back) an upsert that runs too long."""

    def __init__(self, done: int, total: int, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:.0f}s at {done}/{total} rows")
        self.done, self.total, self.seconds = done, total, seconds


def _progress_writer(path: Path | None, phase: str, limit_s: float | None = None) -> Any:
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if path is not None and (now - last[0] >= 1.0 or done == total):
            last[0] = now
            with path.open("a") as fh:
                fh.write(
                    json.dumps(
                        {"phase": phase, "done": done, "total": total, "s": round(now - t0, 1)}
                    )
                    + "\n"
                )
        if limit_s is not None and now - t0 > limit_s and done < total:
            raise PhaseTimeout(done, total, now - t0)

    return progress


def _timed_out(m: dict[str, Any], e: PhaseTimeout) -> None:
    m.update(
        ok=False,
        timed_out=True,
        rows_done=e.done,
        rows_total=e.total,
        projected_s=round(e.seconds * e.total / max(e.done, 1), 1),
    )


def _note(path: Path | None, **fields: Any) -> None:
    if path is not None:
        with path.open("a") as fh:
            fh.write(json.dumps(fields) + "\n")


def _generated(spec: dict[str, Any], out: dict[str, Any]) -> tuple[Any, Any, int, int]:
    """The case's generated network and its batch, timed and counted into ``out``."""
    t0 = time.perf_counter()
    data = netgen.generate(spec["cities"], spec["seed"])
    out["generate_s"] = round(time.perf_counter() - t0, 3)
    st = netgen.stats(data)
    n_rows, n_rels = st["rows"], st["relationships"]
    out.update(rows=n_rows, relationships=n_rels, dataset=st)
    t0 = time.perf_counter()
    batch = netgen.to_batch(data, validate=False)
    out["batch_build_s"] = round(time.perf_counter() - t0, 3)
    return data, batch, n_rows, n_rels


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a child process: one store, one size; returns the result as a dict."""
    logging.getLogger("neo4j").setLevel(logging.ERROR)  # "unknown label" notices on an empty db
    if spec["store"] == "neo4j-bulk":
        return run_bulk_case(spec)
    from graph.model import Kind
    from graph.store import GraphBatch

    n, store_name = spec["cities"], spec["store"]
    tmp = Path(spec["tmp"])
    progress_file = Path(spec["progress"]) if spec.get("progress") else None
    meter = Meter(spec.get("server_pid"), Path(spec["gc_log"]) if spec.get("gc_log") else None)
    out: dict[str, Any] = {"store": store_name, "cities": n}

    data, batch, n_rows, n_rels = _generated(spec, out)

    url = _fresh_url(store_name, tmp, spec.get("neo4j_url"), "bench")
    store = _open(store_name, url)
    t0 = time.perf_counter()
    store.upsert(GraphBatch())  # connect, create the schema; writes nothing
    out["warmup_s"] = round(time.perf_counter() - t0, 3)

    limit = spec.get("phase_timeout")
    _note(progress_file, phase="upsert", started=True)
    try:
        with meter.measure() as m:
            report = store.upsert(batch, progress=_progress_writer(progress_file, "upsert", limit))
    except PhaseTimeout as e:
        _timed_out(m, e)
        out["upsert"] = m
        store.close()
        return out
    m.update(_rates(n_rows, n_rels, m["s"]))
    m["created"] = report.created
    m["ok"] = report.created == n_rows and report.updated == 0
    out["upsert"] = m
    del report
    if store_name == "sqlite":
        out["store_size_mib"] = round(sum(f.stat().st_size for f in tmp.glob("bench.db*")) / MIB, 1)

    _note(progress_file, phase="snapshot", started=True)
    with meter.measure() as m:
        snap = store.snapshot()
    counts = snap.counts()
    m["rows"] = sum(counts.values())
    m["ok"] = all(counts.get(k.value, 0) == len(batch.rows.get(k, ())) for k in Kind)
    m["rows_per_s"] = round(m["rows"] / max(m["s"], 1e-9))
    out["snapshot"] = m
    del snap

    _note(progress_file, phase="reingest", started=True)
    try:
        with meter.measure() as m:
            report = store.upsert(
                batch, progress=_progress_writer(progress_file, "reingest", limit)
            )
    except PhaseTimeout as e:
        _timed_out(m, e)
    else:
        m.update(_rates(n_rows, n_rels, m["s"]))
        m["changed"] = report.changed
        m["unchanged"] = report.unchanged
        m["ok"] = report.changed == 0 and report.unchanged == n_rows
        del report
    out["reingest"] = m
    store.close()

    if spec.get("validate"):
        # What the real ingest path adds before upsert: pydantic + references (no CSV).
        _note(progress_file, phase="validate", started=True)
        with meter.measure() as m:
            checked = netgen.to_batch(data, validate=True)
        m["rows_per_s"] = round(n_rows / max(m["s"], 1e-9))
        m["ok"] = len(checked) == n_rows
        out["validate"] = {k: v for k, v in m.items() if not k.startswith("server_")}
        del checked

    if spec.get("naive"):
        out["naive"] = _run_naive(spec, data, batch, n_rows, n_rels, tmp, progress_file)
    return out


def _tool_summary(text: str) -> dict[str, Any]:
    """What neo4j-admin's import says of itself at the end (its own time, peak memory)."""
    out: dict[str, Any] = {}
    for key, pattern in (
        ("tool_done", r"IMPORT DONE in (.+?)\.?\s*$"),
        ("tool_peak_memory", r"Peak memory usage: ([^\n]+)"),
        ("tool_nodes", r"^\s*(\d+) nodes$"),
        ("tool_relationships", r"^\s*(\d+) relationships$"),
    ):
        m = re.search(pattern, text, re.M)
        if m:
            out[key] = m.group(1).strip()
    return out


def run_bulk_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One first load with the bulk importer (see the module docstring), in a child process.

    The server is started and stopped here, on a new home under ``tmp``; the parent stops
    it again if this process is killed.
    """
    from graph.model import Kind
    from graph.neo4j_bulk import write_import
    from graph.neo4j_store import Neo4jStore
    from graph.store import GraphBatch

    n = spec["cities"]
    tmp = Path(spec["tmp"])
    home, folder = tmp / "neo4j", tmp / "import"
    out: dict[str, Any] = {"store": "neo4j-bulk", "cities": n}
    meter = Meter()

    data, batch, n_rows, n_rels = _generated(spec, out)
    if spec.get("validate"):
        # what `iccmatch neo4j-import` adds before the files (pydantic + references, no
        # CSV reading), as the sqlite case reports it: in neither rate, like upsert's
        _note(Path(spec["progress"]), phase="validate", started=True)
        with meter.measure() as m:
            checked = netgen.to_batch(data, validate=True)
        m["rows_per_s"] = round(n_rows / max(m["s"], 1e-9))
        m["ok"] = len(checked) == n_rows
        out["validate"] = m
        del checked
    del data

    _note(Path(spec["progress"]), phase="files", started=True)
    with meter.measure() as m:
        files = write_import(batch, folder)
    m.update(
        files=len(files.files),
        nodes=files.nodes,
        relationships=files.relationships,
        multiline=files.multiline,
        mib=round(sum(f.path.stat().st_size for f in files.files) / MIB, 1),
        ok=files.relationships == n_rels
        and files.nodes == out["dataset"]["node_rows"] + 1,  # + revision
    )
    out["files"] = m

    env = dict(os.environ)
    env.pop("NEO4J_LOCAL_JAVA_OPTS", None)
    env["NEO4J_LOCAL_IMPORT_HEAP"] = spec.get("import_heap") or "1g"
    extra = (
        [f"--max-off-heap-memory={spec['import_off_heap']}"] if spec.get("import_off_heap") else []
    )
    _note(Path(spec["progress"]), phase="import", started=True)
    t0 = time.perf_counter()
    res = subprocess.run(
        [str(NEO4J_LOCAL), "import", "--data", str(home), "--", *extra, *files.arguments()],
        env=env,
        capture_output=True,
        text=True,
        timeout=spec.get("phase_timeout") or 600,
    )
    import_s = time.perf_counter() - t0
    (tmp / "import.log").write_text(res.stdout + res.stderr)
    out["import"] = {
        "s": round(import_s, 3),
        "ok": res.returncode == 0,
        **_tool_summary(res.stdout),
    }
    if res.returncode != 0:
        out["import"]["stderr_tail"] = (res.stdout + res.stderr)[-3000:]
        return out
    files_s = out["files"]["s"]
    out["load"] = {"s": round(files_s + import_s, 3), **_rates(n_rows, n_rels, files_s + import_s)}

    server = LocalNeo4j(home, spec["neo4j_heap"], spec["neo4j_pagecache"])
    try:
        _note(Path(spec["progress"]), phase="start", started=True)
        start_s = server.start()
        out["start"] = {"s": round(start_s, 3)}
        meter = Meter(server.pid, server.gc_log)
        store = Neo4jStore(server.url)
        try:
            _note(Path(spec["progress"]), phase="snapshot", started=True)
            with meter.measure() as m:
                snap = store.snapshot()
            counts = snap.counts()
            m["rows"] = sum(counts.values())
            m["revision"] = snap.revision
            m["ok"] = snap.revision == 1 and all(
                counts.get(k.value, 0) == len(batch.rows.get(k, ())) for k in Kind
            )
            out["snapshot"] = m
            del snap
            whole = files_s + import_s + start_s + m["s"]
            out["first_load"] = {"s": round(whole, 3), **_rates(n_rows, n_rels, whole)}
            _note(Path(spec["progress"]), phase="schema", started=True)
            with meter.measure() as m:
                report = store.upsert(GraphBatch())  # the first write: the constraints
            m["ok"] = report.changed == 0
            out["schema"] = m
        finally:
            store.close()
        out["store_size_mib"] = server.disk_mib()
        out["import_files_mib"] = out["files"]["mib"]
    finally:
        server.stop()
    return out


def _run_naive(
    spec: dict[str, Any],
    data: Any,
    batch: Any,
    n_rows: int,
    n_rels: int,
    tmp: Path,
    progress_file: Path | None,
) -> dict[str, Any]:
    from graph.model import Kind
    from graph.store import GraphBatch

    store_name = spec["store"]
    out: dict[str, Any] = {}
    deadline = time.perf_counter() + spec["naive_max_s"]
    store = _open(store_name, _fresh_url(store_name, tmp, spec.get("neo4j_url"), "naive"))
    store.upsert(GraphBatch())
    done = 0
    _note(progress_file, phase="naive", started=True)
    t0 = time.perf_counter()
    complete = True
    for kind in Kind:
        for row in batch.rows.get(kind, ()):
            store.upsert(GraphBatch({kind: [row]}))
            done += 1
            if done % 1000 == 0:
                _note(
                    progress_file,
                    phase="naive",
                    done=done,
                    total=n_rows,
                    s=round(time.perf_counter() - t0, 1),
                )
                if time.perf_counter() > deadline:
                    complete = False
                    break
        if not complete:
            break
    naive_s = time.perf_counter() - t0
    store.close()
    out["naive"] = {
        "s": round(naive_s, 3),
        "rows_done": done,
        "complete": complete,
        "rows_per_s": round(done / naive_s),
        "relationships_per_s_est": round(done / naive_s * n_rels / n_rows),
    }
    # The batch again, on a store process that is now warm (fair to the JIT for Neo4j).
    store = _open(store_name, _fresh_url(store_name, tmp, spec.get("neo4j_url"), "warm"))
    store.upsert(GraphBatch())
    t0 = time.perf_counter()
    report = store.upsert(batch)
    warm_s = time.perf_counter() - t0
    store.close()
    out["batch_warm"] = {
        "s": round(warm_s, 3),
        "ok": report.created == n_rows,
        **_rates(n_rows, n_rels, warm_s),
    }
    return out


# --- the orchestrating parent -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalNeo4j:
    def __init__(self, home: Path, heap: str, pagecache: str) -> None:
        self.home, self.port = home, _free_port()
        self.gc_log = home / "gc.log"
        self.env = dict(os.environ)
        self.env["NEO4J_LOCAL_HEAP"] = heap
        self.env["NEO4J_LOCAL_PAGECACHE"] = pagecache
        self.env["NEO4J_LOCAL_JAVA_OPTS"] = (
            self.env.get("NEO4J_LOCAL_JAVA_OPTS", "") + f" -Xlog:gc:file={self.gc_log}:time"
        ).strip()
        self.url = ""
        self.pid: int | None = None

    def start(self) -> float:
        t0 = time.perf_counter()
        res = subprocess.run(
            [str(NEO4J_LOCAL), "start", "--data", str(self.home), "--port", str(self.port)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if res.returncode != 0:
            raise RuntimeError(f"neo4j-local start failed: {res.stderr[-2000:]}")
        self.url = res.stdout.strip().splitlines()[-1]
        self.pid = int((self.home / "neo4j.pid").read_text().strip())
        return time.perf_counter() - t0

    def disk_mib(self) -> float:
        data = self.home / "data"
        return round(sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / MIB, 1)

    def stop(self) -> None:
        subprocess.run(
            [str(NEO4J_LOCAL), "stop", "--data", str(self.home)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _last_progress(path: Path) -> dict[str, Any] | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    return json.loads(lines[-1]) if lines else None


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_in_child(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    progress = Path(spec["progress"])
    cmd = [sys.executable, "-m", "scripts.bench_ingest", "--_case", json.dumps(spec)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {
            "store": spec["store"],
            "cities": spec["cities"],
            "error": "timeout",
            "timeout_s": timeout,
            "last_progress": _last_progress(progress),
        }
    wall = round(time.perf_counter() - t0, 1)
    if proc.returncode != 0:
        return {
            "store": spec["store"],
            "cities": spec["cities"],
            "error": f"exit {proc.returncode}",
            "stderr_tail": stderr[-3000:],
            "last_progress": _last_progress(progress),
            "case_wall_s": wall,
        }
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["case_wall_s"] = wall
    result["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _machine(args: argparse.Namespace) -> dict[str, Any]:
    import neo4j

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "neo4j_driver": neo4j.__version__,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if m:
            info["mem_total_gib"] = round(int(m.group(1)) / 1024 / 1024, 1)
    if any(store.startswith("neo4j") for store in args.stores):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
            info["java"] = (java.stderr.splitlines() or [""])[0]
        for jar in (ROOT / "scripts/neo4j-local/target/lib").glob("neo4j-kernel-*.jar"):
            m = re.fullmatch(r"neo4j-kernel-(\d[\w.]*)\.jar", jar.name)
            if m:
                info["neo4j_server"] = m.group(1)
        if args.neo4j_url:
            info["neo4j_server_url"] = args.neo4j_url
        else:
            info["neo4j_server_heap"] = args.neo4j_heap
            info["neo4j_server_pagecache"] = args.neo4j_pagecache
    return info


def _targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for store, key in (
        ("neo4j", "neo4j_relationships_per_s"),
        ("sqlite", "sqlite_relationships_per_s"),
    ):
        by_size = {}
        for r in results:
            if r["store"] != store:
                continue
            rate = r.get("upsert", {}).get("relationships_per_s")
            by_size[str(r["cities"])] = {
                "relationships_per_s": rate,
                "pass": rate is not None and rate >= TARGETS[key] and r["upsert"].get("ok", False),
                **({"error": r["error"]} if "error" in r else {}),
            }
        if by_size:
            out[f"{store}_ingest"] = {
                "target_relationships_per_s": TARGETS[key],
                "by_size": by_size,
                "pass": all(v["pass"] for v in by_size.values()),
            }
    bulk = {
        str(r["cities"]): {
            "first_load_relationships_per_s": r.get("first_load", {}).get("relationships_per_s"),
            "pass": r.get("first_load", {}).get("relationships_per_s", 0)
            >= TARGETS["neo4j_bulk_first_load_relationships_per_s"]
            and r.get("snapshot", {}).get("ok", False),
            **({"error": r["error"]} if "error" in r else {}),
        }
        for r in results
        if r["store"] == "neo4j-bulk"
    }
    if bulk:
        out["neo4j_bulk_first_load"] = {
            "target_relationships_per_s": TARGETS["neo4j_bulk_first_load_relationships_per_s"],
            "by_size": bulk,
            "pass": all(v["pass"] for v in bulk.values()),
        }
    for r in results:
        if r["cities"] != TARGETS["snapshot_cities"] or r["store"] == "neo4j-bulk":
            continue
        snap = r.get("snapshot", {})
        peak_mib = snap.get("peak_rss_delta_mib", snap.get("peak_rss_delta_mib_lower_bound"))
        s = snap.get("s")
        out[f"{r['store']}_snapshot_100k"] = {
            "target_s": TARGETS["snapshot_max_s"],
            "target_bytes": TARGETS["snapshot_max_bytes"],
            "s": s,
            "peak_bytes": None if peak_mib is None else int(peak_mib * MIB),
            "time_pass": s is not None and s < TARGETS["snapshot_max_s"],
            "memory_pass": peak_mib is not None and peak_mib * MIB < TARGETS["snapshot_max_bytes"],
            **({"error": r["error"]} if "error" in r else {}),
        }
        out[f"{r['store']}_snapshot_100k"]["pass"] = (
            out[f"{r['store']}_snapshot_100k"]["time_pass"]
            and out[f"{r['store']}_snapshot_100k"]["memory_pass"]
        )
    return out


def _naive_summary(results: list[dict[str, Any]], naive_size: int) -> dict[str, Any]:
    out: dict[str, Any] = {"cities": naive_size}
    for r in results:
        if r["cities"] != naive_size or "naive" not in r:
            continue
        nv, warm = r["naive"]["naive"], r["naive"]["batch_warm"]
        cold = r["upsert"]["rows_per_s"]
        out[r["store"]] = {
            "naive_rows_per_s": nv["rows_per_s"],
            "naive_complete": nv["complete"],
            "naive_rows_done": nv["rows_done"],
            "naive_s": nv["s"],
            "batch_rows_per_s": cold,
            "batch_warm_rows_per_s": warm["rows_per_s"],
            "ratio_batch_over_naive": round(cold / max(nv["rows_per_s"], 1e-9), 1),
            "ratio_warm_batch_over_naive": round(
                warm["rows_per_s"] / max(nv["rows_per_s"], 1e-9), 1
            ),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument(
        "--stores",
        nargs="+",
        choices=["sqlite", "neo4j", "neo4j-bulk"],
        default=["sqlite", "neo4j"],
        help="neo4j-bulk: a first load with neo4j-admin's importer (see the docstring)",
    )
    ap.add_argument("--bulk", action="store_true", help="add the neo4j-bulk case to --stores")
    ap.add_argument(
        "--import-heap",
        default=os.environ.get("NEO4J_LOCAL_IMPORT_HEAP", "1g"),
        help="JVM heap of the bulk importer (most of its memory is off-heap)",
    )
    ap.add_argument(
        "--import-off-heap",
        help="the importer's --max-off-heap-memory (default: its own, 90%% of free memory)",
    )
    ap.add_argument(
        "--neo4j-url",
        help="use this server (WIPED before each case) instead of "
        "starting one per case with scripts/neo4j-local",
    )
    ap.add_argument(
        "--neo4j-heap",
        default=os.environ.get("NEO4J_LOCAL_HEAP", "8g"),
        help="JVM heap of the servers this script starts (default 8g: with 4g the "
        "100,000-city transaction passes Neo4j's transaction memory limit, 70%% "
        "of the heap)",
    )
    ap.add_argument("--neo4j-pagecache", default=os.environ.get("NEO4J_LOCAL_PAGECACHE", "256m"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--naive-cities",
        type=int,
        default=1000,
        help="size of the one-transaction-per-row baseline (0: skip it)",
    )
    ap.add_argument(
        "--naive-max-s",
        type=float,
        default=600,
        help="stop the naive baseline after this long and report the rate so far",
    )
    ap.add_argument(
        "--no-validate",
        action="store_true",
        help="skip timing the validation path (ingest.validate.check_rows)",
    )
    ap.add_argument(
        "--case-timeout",
        type=float,
        default=1500,
        help="seconds one (store, size) case may take before it is killed",
    )
    ap.add_argument(
        "--phase-timeout",
        type=float,
        default=600,
        help="an upsert still running after this many seconds is aborted (rolled "
        "back) from its progress callback and reported with a projected time",
    )
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._case:
        print(json.dumps(run_case(json.loads(args._case))))
        return 0
    if args.bulk and "neo4j-bulk" not in args.stores:
        args.stores.append("neo4j-bulk")

    started = datetime.now(UTC)
    t_all = time.perf_counter()
    sizes = sorted(set(args.sizes))
    naive_size = args.naive_cities
    case_sizes = sorted(set(sizes) | ({naive_size} if naive_size else set()))
    doc: dict[str, Any] = {
        "benchmark": "scripts/bench_ingest.py",
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": _machine(args),
        "settings": {
            "sizes": sizes,
            "stores": args.stores,
            "seed": args.seed,
            "naive_cities": naive_size,
            "case_timeout_s": args.case_timeout,
            "phase_timeout_s": args.phase_timeout,
            "batch": "netgen rows used as they are (netgen.to_batch(validate=False)); "
            "`netgen.py N --check` proves them equal to ingest.validate.check_rows output",
            "fresh_store_per_case": True,
        },
        "targets_definition": TARGETS,
        "definitions": DEFINITIONS,
        "datasets": {},
        "results": [],
    }
    for n in case_sizes:
        for store in args.stores:
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-{store}-{n}-"))
            spec: dict[str, Any] = {
                "cities": n,
                "store": store,
                "seed": args.seed,
                "tmp": str(tmp),
                "progress": str(tmp / "progress.jsonl"),
                "validate": store in ("sqlite", "neo4j-bulk")
                and not args.no_validate
                and n in sizes,
                "naive": n == naive_size and store != "neo4j-bulk",
                "naive_max_s": args.naive_max_s,
                "phase_timeout": args.phase_timeout,
            }
            server = None
            if store == "neo4j-bulk":
                if n not in sizes:
                    continue  # no naive baseline for a bulk load
                spec.update(
                    neo4j_heap=args.neo4j_heap,
                    neo4j_pagecache=args.neo4j_pagecache,
                    import_heap=args.import_heap,
                    import_off_heap=args.import_off_heap,
                )
            try:
                if store == "neo4j":
                    if args.neo4j_url:
                        spec["neo4j_url"] = args.neo4j_url
                    else:
                        server = LocalNeo4j(tmp / "neo4j", args.neo4j_heap, args.neo4j_pagecache)
                        started_s = server.start()
                        spec.update(
                            neo4j_url=server.url, server_pid=server.pid, gc_log=str(server.gc_log)
                        )
                        _log(f"neo4j started in {started_s:.1f}s at {server.url}")
                _log(f"case {store} {n} cities ...")
                result = run_in_child(spec, args.case_timeout)
                if server is not None:
                    result["server_start_s"] = round(started_s, 1)
                    result["store_size_mib"] = server.disk_mib()
                    srv = _status(server.pid) if server.pid else {}
                    if srv:
                        result["server_rss_at_end_mib"] = round(srv["VmRSS"] / MIB, 1)
                    if "error" in result:
                        log = tmp / "neo4j" / "neo4j.log"
                        with contextlib.suppress(OSError):
                            result["server_log_tail"] = log.read_text(errors="replace")[-2000:]
                        with contextlib.suppress(OSError):
                            errs = [
                                ln
                                for ln in (tmp / "neo4j/logs/debug.log")
                                .read_text(errors="replace")
                                .splitlines()
                                if " ERROR " in ln or "OutOfMemory" in ln
                            ]
                            result["server_errors"] = errs[-10:]
                        result.update(_heap_during(server.gc_log, 0, time.time()))
            except Exception as e:  # keep going: one failed case must not lose the others
                result = {"store": store, "cities": n, "error": f"{type(e).__name__}: {e}"}
            finally:
                if server is not None:
                    server.stop()
                if store == "neo4j-bulk":  # the case's own server, if its process was killed
                    LocalNeo4j(tmp / "neo4j", args.neo4j_heap, args.neo4j_pagecache).stop()
                shutil.rmtree(tmp, ignore_errors=True)
            if "dataset" in result:
                doc["datasets"][str(n)] = result.pop("dataset")
            if n in sizes:
                doc["results"].append(result)
            else:
                doc.setdefault("naive_only_results", []).append(result)
            phases = (
                ("files", "import", "start", "snapshot", "first_load", "schema")
                if store == "neo4j-bulk"
                else ("upsert", "snapshot", "reingest")
            )
            summary = {k: result.get(k, {}).get("s") for k in phases}
            _log(f"case {store} {n}: {result.get('error') or summary}")

    everything = doc["results"] + doc.get("naive_only_results", [])
    if naive_size:
        doc["naive_baseline"] = _naive_summary(everything, naive_size)
    doc["targets"] = _targets(doc["results"])
    doc["total_s"] = round(time.perf_counter() - t_all, 1)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
