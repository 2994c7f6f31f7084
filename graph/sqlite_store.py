"""The embedded default store: one SQLite file, standard library only.

Nodes and relationships live in two tables with JSON properties; every upsert runs in
one ``BEGIN IMMEDIATE`` transaction (WAL mode, so readers never block the writer), and
the revision lives in the same file, bumped in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from functools import cache
from pathlib import Path
from typing import Any

from graph.errors import Conflict, InvalidInput, StoreUnavailable
from graph.model import NODE_KINDS, SPECS, Kind, from_props
from graph.snapshot import NetworkSnapshot, build_rows, build_snapshot, gc_paused
from graph.store import (
    Counts,
    GraphBatch,
    Key,
    Progress,
    Props,
    UpsertReport,
    chunked,
    normalise_key,
    plan,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    label TEXT NOT NULL, id TEXT NOT NULL, props TEXT NOT NULL,
    PRIMARY KEY (label, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rels (
    type TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, key TEXT NOT NULL,
    props TEXT NOT NULL,
    PRIMARY KEY (type, src, dst, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rels_by_dst ON rels (type, dst);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (model, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (collection, id)) WITHOUT ROWID;
"""
_LOOKUP_CHUNK = 500  # keys per SELECT ... IN (...), well under SQLite's parameter limit


def _path_of(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise InvalidInput(f"a SQLite store URL looks like sqlite:///path/to/file.db, not {url!r}")
    path = url.removeprefix("sqlite:///")
    return path if path == ":memory:" else str(Path(path))


_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, allow_nan=False).encode
"""Properties as JSON text (one encoder, built once, rather than one per ``json.dumps``)."""

CACHE_KIB = 256 * 1024
"""SQLite's page cache per connection. The default (2 MiB) is far smaller than the
indexes an ingest of 100,000 cities walks, so most lookups went to the OS; 256 MiB is
only taken as it fills (see docs/performance.md for the measured gain)."""
MMAP_BYTES = 1 << 30
"""Read the file through a memory map (up to 1 GiB), saving a copy per page read."""


NUL_ESCAPE = "\\u0000"  # how JSON text spells a NUL character


@cache
def _snapshot_sql(kind: Kind) -> tuple[str, str]:
    """The snapshot's two reads of ``kind``: typed columns, and whole rows that may hold a NUL.

    ``json_extract`` returns numbers and strings as SQLite values (and lists as JSON
    text), so most rows are read without parsing JSON, in the model's field order. But
    it returns text as a C string, cut at the first NUL character; the few rows whose
    JSON holds a NUL escape (or something that looks like one) are read whole and parsed
    instead. Field names come from the model classes, never from input.
    """
    spec = SPECS[kind]
    columns = ", ".join(f"json_extract(props, '$.{name}')" for name in spec.columns)
    table, column = ("nodes", "label") if spec.label is not None else ("rels", "type")
    where = f"FROM {table} WHERE {column} = ? AND instr(props, ?)"
    return f"SELECT {columns} {where} = 0", f"SELECT props {where} > 0"


class SqliteStore:
    def __init__(self, url: str) -> None:
        self.url = url
        path = _path_of(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open SQLite store {path}: {e}") from e
        self._lock = threading.RLock()  # one connection, shared by threads, one at a time

    # --- writes -----------------------------------------------------------------------

    def upsert(
        self, batch: GraphBatch, *, dry_run: bool = False, progress: Progress | None = None
    ) -> UpsertReport:
        report = UpsertReport(dry_run=dry_run)
        total, done = len(batch), 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for kind in Kind:
                    rows = batch.rows.get(kind)
                    if not rows:
                        continue
                    counts = report.by_kind.setdefault(kind, Counts())
                    for chunk in chunked(rows, 5000):
                        existing = self._fetch(kind, [SPECS[kind].key_of(r) for r in chunk])
                        writes = plan(kind, chunk, existing, counts)
                        self._write(kind, [(w.key, w.props) for w in writes])
                        done += len(chunk)
                        if progress:
                            progress(done, total)
                if report.changed:
                    self._db.execute("UPDATE meta SET value = value + 1 WHERE name = 'revision'")
                report.revision = self._revision()
                if dry_run:
                    self._db.execute("ROLLBACK")
                else:
                    self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return report

    def _fetch(self, kind: Kind, keys: list[Key]) -> dict[Key, Props]:
        spec = SPECS[kind]
        found: dict[Key, Props] = {}
        if spec.label is not None:
            ids = list({k[0] for k in keys})
            for part in chunked(ids, _LOOKUP_CHUNK):
                marks = ",".join("?" * len(part))
                sql = f"SELECT id, props FROM nodes WHERE label = ? AND id IN ({marks})"
                for id_, props in self._db.execute(sql, [spec.label.value, *part]):
                    found[(id_,)] = json.loads(props)
        else:
            assert spec.rel is not None
            wanted = set(keys)
            srcs = list({k[0] for k in keys})
            for part in chunked(srcs, _LOOKUP_CHUNK):
                marks = ",".join("?" * len(part))
                sql = f"SELECT src, dst, key, props FROM rels WHERE type = ? AND src IN ({marks})"
                for src, dst, extra, props in self._db.execute(sql, [spec.rel.value, *part]):
                    key = (src, dst, *extra.split("|")) if extra else (src, dst)
                    if key in wanted:
                        found[key] = json.loads(props)
        return found

    def _write(self, kind: Kind, rows: list[tuple[Key, Props]]) -> None:
        spec = SPECS[kind]
        if spec.label is not None:
            self._db.executemany(
                "INSERT INTO nodes (label, id, props) VALUES (?, ?, ?) "
                "ON CONFLICT (label, id) DO UPDATE SET props = excluded.props",
                [(spec.label.value, key[0], _dumps(props)) for key, props in rows],
            )
        else:
            assert spec.rel is not None
            self._db.executemany(
                "INSERT INTO rels (type, src, dst, key, props) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (type, src, dst, key) DO UPDATE SET props = excluded.props",
                [
                    (spec.rel.value, key[0], key[1], "|".join(key[2:]), _dumps(props))
                    for key, props in rows
                ],
            )

    def delete(self, kind: Kind, key: str | Key) -> bool:
        spec = SPECS[kind]
        k = normalise_key(kind, key)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if spec.label is not None:
                    self._refuse_if_referenced(kind, k[0])
                    cur = self._db.execute(
                        "DELETE FROM nodes WHERE label = ? AND id = ?", (spec.label.value, k[0])
                    )
                    deleted = cur.rowcount > 0
                    if deleted:
                        self._delete_relationship_rows(kind, k[0])
                else:
                    assert spec.rel is not None
                    cur = self._db.execute(
                        "DELETE FROM rels WHERE type = ? AND src = ? AND dst = ? AND key = ?",
                        (spec.rel.value, k[0], k[1], "|".join(k[2:])),
                    )
                    deleted = cur.rowcount > 0
                if deleted:
                    self._db.execute("UPDATE meta SET value = value + 1 WHERE name = 'revision'")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return deleted

    def _refuse_if_referenced(self, kind: Kind, id_: str) -> None:
        for other in NODE_KINDS:
            spec = SPECS[other]
            assert spec.label is not None
            for ref in spec.refs:
                if ref.target != kind:
                    continue
                if ref.many:
                    sql = (
                        "SELECT id FROM nodes WHERE label = ? AND EXISTS ("
                        "SELECT 1 FROM json_each(nodes.props, '$.' || ?) WHERE value = ?) LIMIT 5"
                    )
                else:
                    sql = (
                        "SELECT id FROM nodes WHERE label = ? "
                        "AND json_extract(props, '$.' || ?) = ? LIMIT 5"
                    )
                users = [r[0] for r in self._db.execute(sql, (spec.label.value, ref.field, id_))]
                if users:
                    raise Conflict(
                        f"{kind.value} {id_!r} is still named in {other.value}.{ref.field} "
                        f"of {', '.join(users)}: change or delete those first"
                    )

    def _delete_relationship_rows(self, kind: Kind, id_: str) -> None:
        for spec in SPECS.values():
            if spec.rel is None:
                continue
            src, dst = spec.endpoints
            if src.target == kind:
                self._db.execute("DELETE FROM rels WHERE type = ? AND src = ?", (spec.rel, id_))
            if dst.target == kind:
                self._db.execute("DELETE FROM rels WHERE type = ? AND dst = ?", (spec.rel, id_))

    # --- reads ------------------------------------------------------------------------

    def ids(self, kind: Kind) -> set[str]:
        label = SPECS[kind].label
        if label is None:
            raise InvalidInput(f"{kind.value} rows have no ids of their own")
        with self._lock:
            return {
                r[0] for r in self._db.execute("SELECT id FROM nodes WHERE label = ?", (label,))
            }

    def snapshot(self) -> NetworkSnapshot:
        """Every row at one revision: one read transaction sees one WAL snapshot."""
        rows: dict[Kind, list[Any]] = {}
        with self._lock, gc_paused():
            self._db.execute("BEGIN")
            try:
                revision = self._revision()
                for kind, spec in SPECS.items():
                    name = spec.label if spec.label is not None else spec.rel
                    assert name is not None
                    typed, whole = _snapshot_sql(kind)
                    cursor = self._db.execute(typed, (name.value, NUL_ESCAPE))
                    rows[kind] = build_rows(kind, cursor, json.loads)
                    cursor = self._db.execute(whole, (name.value, NUL_ESCAPE))
                    rows[kind] += [from_props(kind, json.loads(p)) for (p,) in cursor]
            finally:
                self._db.execute("COMMIT")
            return build_snapshot(revision, rows)

    def _revision(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
        return int(row[0])

    def revision(self) -> int:
        with self._lock:
            return self._revision()

    # --- caches and documents (not network data: they do not move the revision) --------

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._lock:
            for part in chunked(hashes, _LOOKUP_CHUNK):
                marks = ",".join("?" * len(part))
                sql = f"SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN ({marks})"
                found.update(self._db.execute(sql, [model, *part]).fetchall())
        return found

    def cache_vectors(self, model: str, vectors: dict[str, bytes]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, hash, vector) VALUES (?, ?, ?)",
                    [(model, h, v) for h, v in vectors.items()],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def put_document(self, collection: str, id: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO documents (collection, id, body) VALUES (?, ?, ?)",
                (collection, id, json.dumps(body, ensure_ascii=False, sort_keys=True)),
            )

    def get_document(self, collection: str, id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM documents WHERE collection = ? AND id = ?", (collection, id)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def list_documents(self, collection: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM documents WHERE collection = ? ORDER BY id", (collection,)
            ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def ping(self) -> None:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite store {self.url} cannot be read: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._db.close()
