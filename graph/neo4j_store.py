"""The production store: Neo4j 5 through the official driver.

One driver per store object (create the store once per process). Every upsert is one
managed write transaction (``execute_write``), so the driver retries it on transient
errors; its work is idempotent (MERGE) and re-plans from what it reads, so a retry is
safe. Every transaction that writes network data starts by locking the revision node
(``cypher.LOCK_REVISION``), so writers are serialised and plan from committed data.
Statements come from ``graph.cypher``; values travel only as parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import neo4j
from neo4j import GraphDatabase, ManagedTransaction
from neo4j.exceptions import (
    AuthError,
    ConstraintError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from graph import cypher
from graph.errors import Conflict, IccmatchError, InvalidInput, StoreUnavailable
from graph.model import NODE_KINDS, SPECS, Kind, Label
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

WRITE_CHUNK = 5000  # rows per UNWIND statement
SNAPSHOT_ATTEMPTS = 3  # lock-free snapshot reads before one that takes the writers' lock


class _RollBack(Exception):
    """Raised inside a dry-run transaction so the driver rolls it back."""

    def __init__(self, report: UpsertReport) -> None:
        self.report = report


def _unavailable(url: str, e: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"Neo4j at {url} is unreachable ({type(e).__name__}: {e})")


def _name_endpoints(kind: Kind, rows: list[list[Any]], names: dict[int, str]) -> bool:
    """Put the endpoints' ids in place of their internal ids in relationship rows (see
    ``cypher.read_columns``); False when one was not among the nodes read."""
    spec = SPECS[kind]
    i, j = (spec.columns.index(end.field) for end in spec.endpoints)
    try:
        for row in rows:
            row[i] = names[row[i]]
            row[j] = names[row[j]]
    except KeyError:
        return False
    return True


_READ_ORDER = sorted(Kind, key=lambda kind: SPECS[kind].label is None)
"""Node kinds first: relationship rows name their endpoints through the nodes read."""


def _read_kind(tx: ManagedTransaction, kind: Kind) -> neo4j.Record:
    record: neo4j.Record = tx.run(cypher.read_columns(kind)).single(strict=True)
    return record


def _one_ahead(
    pool: ThreadPoolExecutor, read: Callable[[Kind], neo4j.Record], kinds: list[Kind]
) -> Iterator[tuple[Kind, neo4j.Record]]:
    """Each kind's record in order, the next one already being read on ``pool``."""
    pending = pool.submit(read, kinds[0])
    for i, kind in enumerate(kinds):
        record = pending.result()
        if i + 1 < len(kinds):
            pending = pool.submit(read, kinds[i + 1])
        yield kind, record


class _UnknownEndpoint(Exception):
    """A relationship of ``kind`` joins a node the snapshot did not read."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind


def _build_kinds(records: Iterable[tuple[Kind, neo4j.Record]]) -> dict[Kind, list[Any]]:
    """Row objects per kind from ``cypher.read_columns`` records, in ``_READ_ORDER``."""
    rows: dict[Kind, list[Any]] = {}
    names: dict[int, str] = {}  # internal node id -> the node's id, for endpoints
    with gc_paused():
        for kind, record in records:
            columns = record["rows"]
            if SPECS[kind].label is not None:
                at = SPECS[kind].columns.index("id")
                names.update(zip(record["refs"], [row[at] for row in columns], strict=True))
            elif not _name_endpoints(kind, columns, names):
                raise _UnknownEndpoint(kind)
            del record
            rows[kind] = build_rows(kind, columns)
            del columns  # the decoded lists go before the next kind is built
    return rows


class Neo4jStore:
    def __init__(
        self,
        url: str,
        *,
        user: str = "neo4j",
        password: str = "",
        database: str | None = None,
        connection_timeout: float = 3.0,
        max_transaction_retry_time: float = 5.0,
    ) -> None:
        self.url = url
        self._database = database
        try:
            self._driver = GraphDatabase.driver(
                url,
                auth=(user, password),
                connection_timeout=connection_timeout,
                connection_acquisition_timeout=connection_timeout * 2,
                max_transaction_retry_time=max_transaction_retry_time,
                # The server's hints are for whoever writes the statements, not for an
                # operator: every snapshot names kinds not stored yet (UNRECOGNIZED) and
                # reads internal ids on purpose (DEPRECATION, see cypher.read_columns), and
                # each new store object creates its constraints IF NOT EXISTS (SCHEMA);
                # logged, they were about 50 warnings per snapshot in the server's log.
                notifications_disabled_categories=["UNRECOGNIZED", "DEPRECATION", "SCHEMA"],
            )
        except (ValueError, DriverError) as e:
            raise InvalidInput(f"cannot use Neo4j URL {url!r}: {e}") from e
        self._schema_ready = False

    def _session(self, write: bool = True) -> neo4j.Session:
        return self._driver.session(
            database=self._database,
            default_access_mode=neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS,
        )

    def _run(self, fn: Any, *, write: bool) -> Any:
        """Run a unit of work, mapping driver failures to our error types."""
        try:
            if write and not self._schema_ready:
                self._ensure_schema()
            with self._session(write) as session:
                return (session.execute_write if write else session.execute_read)(fn)
        except IccmatchError:
            raise
        except (ServiceUnavailable, SessionExpired, OSError) as e:
            raise _unavailable(self.url, e) from e
        except AuthError as e:
            raise StoreUnavailable(f"Neo4j at {self.url} refused the credentials: {e}") from e
        except ConstraintError as e:
            raise Conflict(f"Neo4j refused the write: {e.message}") from e
        except TransientError as e:
            # still failing once the driver's retries ran out, e.g. DatabaseUnavailable
            # while the server stops or starts: the server says a later try may succeed
            raise StoreUnavailable(
                f"Neo4j at {self.url} is unavailable for now ({e.code}: {e.message})"
            ) from e
        except DriverError as e:
            raise _unavailable(self.url, e) from e

    def _ensure_schema(self) -> None:
        with self._session() as session:
            for statement in cypher.constraints():
                session.run(statement).consume()
        self._schema_ready = True

    # --- writes -----------------------------------------------------------------------

    def upsert(
        self, batch: GraphBatch, *, dry_run: bool = False, progress: Progress | None = None
    ) -> UpsertReport:
        def work(tx: ManagedTransaction) -> UpsertReport:
            # the lock comes first: every read that plans this write must see the last commit
            tx.run(cypher.LOCK_REVISION).consume()
            report = UpsertReport(dry_run=dry_run)
            total, done = len(batch), 0
            kinds = [kind for kind in Kind if batch.rows.get(kind)]
            # asked before the first write: with a large transaction state, every count
            # would visit all of it
            stored = {kind: self._any_stored(tx, kind) for kind in kinds}
            for kind in kinds:
                rows = batch.rows[kind]
                counts = report.by_kind.setdefault(kind, Counts())
                key_of = SPECS[kind].key_of
                # None: rows of this kind are stored, so any key may be; else the kind was
                # empty and only keys an earlier chunk of this batch created can be stored
                seen: set[Key] | None = None if stored[kind] else set()
                for chunk in chunked(rows, WRITE_CHUNK):
                    wanted = chunk if seen is None else [r for r in chunk if key_of(r) in seen]
                    existing = self._fetch(tx, kind, wanted) if wanted else {}
                    writes = plan(kind, chunk, existing, counts)
                    if seen is not None:
                        seen.update(w.key for w in writes if w.created)
                    # creations first: a key twice in one chunk is planned as a creation
                    # and then an update of what was just created
                    self._write(tx, kind, [w.props for w in writes if w.created], new=True)
                    self._write(tx, kind, [w.props for w in writes if not w.created], new=False)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            statement = cypher.BUMP_REVISION if report.changed else cypher.READ_REVISION
            report.revision = tx.run(statement).single(strict=True)["revision"]
            if dry_run:
                raise _RollBack(report)
            return report

        try:
            result: UpsertReport = self._run(work, write=True)
        except _RollBack as rb:
            return rb.report
        return result

    def _any_stored(self, tx: ManagedTransaction, kind: Kind) -> bool:
        """Whether any row of ``kind`` is stored.

        A count by label or type alone is read from Neo4j's counts store, without a scan,
        plus what this transaction changed (which Neo4j works out by visiting its whole
        transaction state: ask before writing). It lets the first load of a kind skip the
        lookups of keys that cannot be stored.
        """
        return bool(tx.run(cypher.count(kind)).single(strict=True)["stored"])

    def _fetch(self, tx: ManagedTransaction, kind: Kind, rows: Any) -> dict[Key, Props]:
        spec = SPECS[kind]
        keys = [{f: row[f] for f in spec.key} for row in rows]
        found: dict[Key, Props] = {}
        for record in tx.run(cypher.fetch(kind), keys=keys):
            props = dict(record["props"])
            found[spec.key_of(props)] = props
        return found

    def _write(self, tx: ManagedTransaction, kind: Kind, rows: list[Props], *, new: bool) -> None:
        """Store planned rows; ``new``: none of them is stored yet (see ``cypher.write``)."""
        if not rows:
            return
        spec = SPECS[kind]
        written = tx.run(cypher.write(kind, new=new), rows=rows).single(strict=True)["written"]
        if written != len(rows):
            raise InvalidInput(
                f"{len(rows) - written} {kind.value} rows name a node that is not stored"
            )
        if spec.label is None:
            return
        ids = [row["id"] for row in rows]
        for ref in spec.refs:
            if not new:
                tx.run(cypher.clear_refs(kind, ref), ids=ids).consume()
            links = []
            for row in rows:
                value = row.get(ref.field)
                targets = list(dict.fromkeys(value or ())) if ref.many else [value] if value else []
                if targets:
                    links.append({"id": row["id"], "targets": targets})
            if links:
                tx.run(cypher.link_refs(kind, ref), rows=links).consume()

    def delete(self, kind: Kind, key: str | Key) -> bool:
        spec = SPECS[kind]
        k = normalise_key(kind, key)

        def work(tx: ManagedTransaction) -> bool:
            tx.run(cypher.LOCK_REVISION).consume()  # before the referrers check reads
            if spec.label is not None:
                types = [
                    r.rel.value
                    for other in NODE_KINDS
                    for r in SPECS[other].refs
                    if r.target == kind and r.rel is not None
                ]
                users = [
                    f"{rec['id']} ({rec['rel']})"
                    for rec in tx.run(cypher.referrers(kind), id=k[0], types=types)
                ]
                if users:
                    raise Conflict(
                        f"{kind.value} {k[0]!r} is still named by {', '.join(users)}: "
                        "change or delete those first"
                    )
                deleted = tx.run(cypher.delete_node(kind), id=k[0]).single(strict=True)["deleted"]
            else:
                key_map = dict(zip(spec.key, k, strict=True))
                deleted = tx.run(cypher.delete_rel(kind), key=key_map).single(strict=True)[
                    "deleted"
                ]
            if deleted:
                tx.run(cypher.BUMP_REVISION).consume()
            return bool(deleted)

        result: bool = self._run(work, write=True)
        return result

    # --- reads ------------------------------------------------------------------------

    def ids(self, kind: Kind) -> set[str]:
        if SPECS[kind].label is None:
            raise InvalidInput(f"{kind.value} rows have no ids of their own")

        def work(tx: ManagedTransaction) -> set[str]:
            return {rec["id"] for rec in tx.run(cypher.ids(kind))}

        result: set[str] = self._run(work, write=False)
        return result

    def snapshot(self) -> NetworkSnapshot:
        """Every row at one revision: read optimistically, under the writers' lock if need be.

        Neo4j reads are read-committed, not snapshot-isolated: a writer committing between
        two of the snapshot's statements would leave it holding some kinds from before the
        commit and some from after. Every write of network data bumps the revision in its
        own transaction, so reading the revision before and after the rows tells whether
        one landed in between; if so the read is repeated. Readers take no lock on the
        happy path, so snapshots neither wait for an ingest nor hold one up. Only when
        writes keep landing (``SNAPSHOT_ATTEMPTS`` reads in a row torn) does the last read
        take the revision lock that every writer takes first, which guarantees one state at
        the price of waiting for the running writer.
        """
        for _ in range(SNAPSHOT_ATTEMPTS):
            snap = self._read_snapshot()
            if snap is not None:
                return snap
        locked: NetworkSnapshot = self._run(self._read_snapshot_locked, write=True)
        return locked

    def _read_snapshot(self) -> NetworkSnapshot | None:
        """The snapshot, or None when a commit landed while the rows were read.

        Each kind is read in a read transaction of its own, one kind ahead on a second
        thread: the server collects the next kind while this thread builds the rows of
        the last, instead of each waiting for the other. Reads are read-committed either
        way, so separate transactions see no less consistent data than one would; the
        revision read before and after is what tells a torn read.
        """
        revision = self.revision()

        def read(kind: Kind) -> neo4j.Record:
            record: neo4j.Record = self._run(lambda tx: _read_kind(tx, kind), write=False)
            return record

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot") as pool:
            try:
                rows = _build_kinds(_one_ahead(pool, read, _READ_ORDER))
            except _UnknownEndpoint:
                return None  # a node went after the nodes were read: a commit landed
        if self.revision() != revision:
            return None
        return build_snapshot(revision, rows)

    def _read_snapshot_locked(self, tx: ManagedTransaction) -> NetworkSnapshot:
        """The snapshot read in one transaction holding the revision lock (no writer runs)."""
        tx.run(cypher.LOCK_REVISION).consume()
        revision = tx.run(cypher.READ_REVISION).single(strict=True)["revision"]
        try:
            rows = _build_kinds((kind, _read_kind(tx, kind)) for kind in _READ_ORDER)
        except _UnknownEndpoint as e:  # no commit can land: the graph holds a stray one
            raise IccmatchError(
                f"a {SPECS[e.kind].rel} relationship joins a node without one of the labels "
                f"{', '.join(label.value for label in Label)}: it is not iccmatch's"
            ) from None
        return build_snapshot(revision, rows)

    def revision(self) -> int:
        def work(tx: ManagedTransaction) -> int:
            return int(tx.run(cypher.READ_REVISION).single(strict=True)["revision"])

        result: int = self._run(work, write=False)
        return result

    # --- caches and documents (not network data: they do not move the revision) --------

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        keys = [f"{model}|{h}" for h in hashes]

        def work(tx: ManagedTransaction) -> dict[str, bytes]:
            return {r["hash"]: bytes(r["vector"]) for r in tx.run(cypher.GET_VECTORS, keys=keys)}

        result: dict[str, bytes] = self._run(work, write=False)
        return result

    def cache_vectors(self, model: str, vectors: dict[str, bytes]) -> None:
        rows = [
            {"key": f"{model}|{h}", "model": model, "hash": h, "vector": bytearray(v)}
            for h, v in vectors.items()
        ]

        def work(tx: ManagedTransaction) -> None:
            for chunk in chunked(rows, WRITE_CHUNK):
                tx.run(cypher.PUT_VECTORS, rows=list(chunk)).consume()

        self._run(work, write=True)

    def put_document(self, collection: str, id: str, body: dict[str, Any]) -> None:
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)

        def work(tx: ManagedTransaction) -> None:
            tx.run(
                cypher.PUT_DOCUMENT,
                key=f"{collection}|{id}",
                collection=collection,
                id=id,
                body=text,
            ).consume()

        self._run(work, write=True)

    def get_document(self, collection: str, id: str) -> dict[str, Any] | None:
        def work(tx: ManagedTransaction) -> str | None:
            record = tx.run(cypher.GET_DOCUMENT, key=f"{collection}|{id}").single()
            return None if record is None else str(record["body"])

        body = self._run(work, write=False)
        return None if body is None else dict(json.loads(body))

    def list_documents(self, collection: str) -> list[dict[str, Any]]:
        def work(tx: ManagedTransaction) -> list[str]:
            return [str(r["body"]) for r in tx.run(cypher.LIST_DOCUMENTS, collection=collection)]

        return [dict(json.loads(b)) for b in self._run(work, write=False)]

    def ping(self) -> None:
        try:
            self._driver.verify_connectivity()
        except (Neo4jError, DriverError, OSError) as e:
            raise _unavailable(self.url, e) from e

    def close(self) -> None:
        self._driver.close()
