"""Every Cypher statement iccmatch runs, in one place.

Labels and relationship types cannot be query parameters in Cypher, so statements are
built here, once, from the closed enums in ``graph.model`` (``Label``, ``RelType``) and
the field names of the model classes -- never from a value a user supplied. Values
always travel as parameters (``$rows``, ``$ids``). ``_label``/``_rel`` re-check enum
membership, so a string outside the enums cannot reach a statement even by mistake.
"""

from __future__ import annotations

from graph.model import SPECS, Kind, KindSpec, Label, Ref, RelType

META = "IccmatchMeta"
EMBEDDING = "IccmatchEmbedding"  # cached vectors, keyed by model and content hash
DOCUMENT = "IccmatchDocument"  # JSON documents such as saved proposals


def _label(label: Label) -> str:
    return Label(label).value  # ValueError for anything outside the enum


def _rel(rel: RelType) -> str:
    return RelType(rel).value


def constraints() -> list[str]:
    return [
        f"CREATE CONSTRAINT {_label(label).lower()}_id IF NOT EXISTS "
        f"FOR (n:{_label(label)}) REQUIRE n.id IS UNIQUE"
        for label in Label
    ] + [
        f"CREATE CONSTRAINT meta_name IF NOT EXISTS FOR (m:{META}) REQUIRE m.name IS UNIQUE",
        f"CREATE CONSTRAINT embedding_key IF NOT EXISTS FOR (e:{EMBEDDING}) REQUIRE e.key IS UNIQUE",
        f"CREATE CONSTRAINT document_key IF NOT EXISTS FOR (d:{DOCUMENT}) REQUIRE d.key IS UNIQUE",
    ]


def _endpoint_labels(spec: KindSpec) -> tuple[str, str]:
    src, dst = spec.endpoints
    src_label, dst_label = SPECS[src.target].label, SPECS[dst.target].label
    assert src_label is not None and dst_label is not None
    return _label(src_label), _label(dst_label)


def _seek(var: str, label: str) -> str:
    """Force an index seek on a node looked up by id.

    Statements are planned and cached while the first big ingest runs, when the
    committed statistics still say the store is empty. With every estimate at zero the
    planner may pick, per row, a scan of the whole id index or an expansion from a Theme
    over all its relationships (measured: 50 million rows for one 5,000-key chunk at
    10,000 cities). The hint makes every lookup by id a seek, whatever the statistics.
    """
    return f"USING INDEX SEEK {var}:{label}(id)"


def _match_rel(spec: KindSpec) -> str:
    """Match relationship ``r`` by its key in map ``k``, starting from its source node.

    ``endNode(r).id`` gives the planner no index on the target to start from, so it
    never expands a Theme (or a Cluster) over every relationship it has.
    """
    assert spec.rel is not None
    src, dst = spec.endpoints
    a, b = _endpoint_labels(spec)
    extra = "".join(f" AND r.{f} = k.{f}" for f in spec.key[2:])
    return (
        f"MATCH (a:{a} {{id: k.{src.field}}}) {_seek('a', a)} "
        f"MATCH (a)-[r:{_rel(spec.rel)}]->(b) WHERE endNode(r).id = k.{dst.field} AND b:{b}" + extra
    )


def fetch(kind: Kind) -> str:
    """Stored properties for a list of keys (``$keys``: maps with the key fields)."""
    spec = SPECS[Kind(kind)]
    if spec.label is not None:
        label = _label(spec.label)
        return (
            f"UNWIND $keys AS k MATCH (n:{label} {{id: k.id}}) {_seek('n', label)} "
            "RETURN properties(n) AS props"
        )
    src, dst = spec.endpoints
    ends = f"{src.field}: k.{src.field}, {dst.field}: k.{dst.field}"
    return f"UNWIND $keys AS k {_match_rel(spec)} RETURN r {{.*, {ends}}} AS props"


def write(kind: Kind, *, new: bool) -> str:
    """Store rows (``$rows``: full property maps). Returns how many were written.

    ``new``: the rows are known not to be stored (the upsert planned them as creations
    while holding the revision lock), so they are CREATEd, with no MERGE lookup. Other
    rows are MERGEd onto the stored node or relationship and replace its properties.
    """
    spec = SPECS[Kind(kind)]
    if spec.label is not None:
        node = f"(n:{_label(spec.label)}" + (")" if new else " {id: row.id})")
        verb = "CREATE" if new else "MERGE"
        return f"UNWIND $rows AS row {verb} {node} SET n = row RETURN count(n) AS written"
    assert spec.rel is not None
    src, dst = spec.endpoints
    a, b = _endpoint_labels(spec)
    extra = ", ".join(f"{f}: k.{f}" for f in spec.key[2:])
    props = f" {{{extra}}}" if extra and not new else ""
    return (
        f"UNWIND $rows AS k MATCH (a:{a} {{id: k.{src.field}}}) {_seek('a', a)} "
        f"MATCH (b:{b} {{id: k.{dst.field}}}) {_seek('b', b)} "
        f"{'CREATE' if new else 'MERGE'} (a)-[r:{_rel(spec.rel)}{props}]->(b) "
        f"SET r = k {{{', '.join('.' + f for f in rel_fields(spec))}}} RETURN count(r) AS written"
    )


def rel_fields(spec: KindSpec) -> tuple[str, ...]:
    """The fields a relationship row stores as properties: all but its two endpoint ids.

    The endpoints are the nodes the relationship joins (their ``id``), so storing them on
    the relationship too would only double the properties every write and commit handles.
    """
    src, dst = spec.endpoints
    return tuple(f for f in spec.columns if f not in (src.field, dst.field))


def clear_refs(kind: Kind, ref: Ref) -> str:
    """Drop a node's reference relationships of one field before they are rewritten."""
    label = SPECS[Kind(kind)].label
    assert label is not None and ref.rel is not None
    arrow = f"<-[r:{_rel(ref.rel)}]-" if ref.reverse else f"-[r:{_rel(ref.rel)}]->"
    return (
        f"UNWIND $ids AS id MATCH (n:{_label(label)} {{id: id}}) {_seek('n', _label(label))} "
        f"MATCH (n){arrow}() DELETE r"
    )


def link_refs(kind: Kind, ref: Ref) -> str:
    """Create reference relationships (``$rows``: ``{id, targets}``) from a node's field.

    The node is new or its relationships of this field were just cleared, and targets
    come without duplicates, so each relationship is CREATEd, not MERGEd.
    """
    label, target_label = SPECS[Kind(kind)].label, SPECS[Kind(ref.target)].label
    assert label is not None and target_label is not None and ref.rel is not None
    n, m = _label(label), _label(target_label)
    edge = f"(m)-[:{_rel(ref.rel)}]->(n)" if ref.reverse else f"(n)-[:{_rel(ref.rel)}]->(m)"
    return (
        f"UNWIND $rows AS row MATCH (n:{n} {{id: row.id}}) {_seek('n', n)} "
        f"UNWIND row.targets AS t MATCH (m:{m} {{id: t}}) {_seek('m', m)} "
        f"CREATE {edge}"
    )


def read_columns(kind: Kind) -> str:
    """Every row of a kind as one list of column lists, in the model's field order.

    One record per kind instead of one per row: the driver decodes a single large
    message rather than a Bolt record (two socket reads and a ``Record`` object) per
    row, which was most of the snapshot's client time.

    A node kind also returns each node's internal id (``refs``, in the order of
    ``rows``); a relationship kind returns the internal ids of its two endpoints in
    place of their ``id`` columns, which the reader maps back through the nodes it
    read first. That spares the server two node property lookups per relationship,
    and the client two strings to decode (the rows share the nodes' id strings).
    ``id()`` is deprecated in Neo4j 5 in favour of ``elementId()``, but an element id
    is a string of some 40 bytes: two per relationship would cost more than they save.
    A deleted node's internal id can be reused, but every write of network data moves
    the revision, and a snapshot whose revision moved while it read is thrown away
    (``Neo4jStore._read_snapshot``).
    """
    spec = SPECS[Kind(kind)]
    if spec.label is not None:
        columns = ", ".join(f"n.{name}" for name in spec.columns)
        return (
            f"MATCH (n:{_label(spec.label)}) "
            f"RETURN collect([{columns}]) AS rows, collect(id(n)) AS refs"
        )
    assert spec.rel is not None
    src, dst = spec.endpoints
    ends = {src.field: "id(a)", dst.field: "id(b)"}
    columns = ", ".join(ends.get(name, f"r.{name}") for name in spec.columns)
    return f"MATCH (a)-[r:{_rel(spec.rel)}]->(b) RETURN collect([{columns}]) AS rows"


def count(kind: Kind) -> str:
    """How many rows of a kind are stored: a count by label or type only, which Neo4j
    answers from its counts store (transaction state included) without a scan."""
    spec = SPECS[Kind(kind)]
    if spec.label is not None:
        return f"MATCH (n:{_label(spec.label)}) RETURN count(n) AS stored"
    assert spec.rel is not None
    return f"MATCH ()-[r:{_rel(spec.rel)}]->() RETURN count(r) AS stored"


def ids(kind: Kind) -> str:
    label = SPECS[Kind(kind)].label
    assert label is not None
    return f"MATCH (n:{_label(label)}) RETURN n.id AS id"


def referrers(kind: Kind) -> str:
    """Nodes whose reference fields name this node (they would dangle if it went)."""
    label = SPECS[Kind(kind)].label
    assert label is not None
    return (
        f"MATCH (n:{_label(label)} {{id: $id}})-[r]-(m) WHERE type(r) IN $types "
        "RETURN type(r) AS rel, m.id AS id LIMIT 5"
    )


def delete_node(kind: Kind) -> str:
    label = SPECS[Kind(kind)].label
    assert label is not None
    return f"MATCH (n:{_label(label)} {{id: $id}}) DETACH DELETE n RETURN count(*) AS deleted"


def delete_rel(kind: Kind) -> str:
    spec = SPECS[Kind(kind)]
    return f"WITH $key AS k {_match_rel(spec)} DELETE r RETURN count(*) AS deleted"


LOCK_REVISION = (
    f"MERGE (m:{META} {{name: 'revision'}}) ON CREATE SET m.value = 0 "
    "SET m.lock = true REMOVE m.lock"
)
"""The first statement of every transaction that writes network data.

Writing to the revision node takes its exclusive lock, held until the transaction ends,
so writers run one at a time and each plans from what the one before it committed.
Neo4j reads are read-committed and take no locks: without this, a writer that waited
for another's row lock would overwrite that writer's columns with what it read before
the wait (a lost update). The statement writes a constant, never a value it read: a
value read before the lock was granted could be stale and would be written back (as
``SET m.value = m.value`` would do to the revision itself). Read the revision after it.
"""
BUMP_REVISION = (
    f"MERGE (m:{META} {{name: 'revision'}}) "
    "SET m.value = coalesce(m.value, 0) + 1 RETURN m.value AS revision"
)
READ_REVISION = (
    f"OPTIONAL MATCH (m:{META} {{name: 'revision'}}) RETURN coalesce(m.value, 0) AS revision"
)
PING = "RETURN 1 AS ok"

GET_VECTORS = f"UNWIND $keys AS key MATCH (e:{EMBEDDING} {{key: key}}) RETURN e.hash AS hash, e.vector AS vector"
PUT_VECTORS = (
    f"UNWIND $rows AS row MERGE (e:{EMBEDDING} {{key: row.key}}) "
    "SET e.model = row.model, e.hash = row.hash, e.vector = row.vector"
)
PUT_DOCUMENT = (
    f"MERGE (d:{DOCUMENT} {{key: $key}}) SET d.collection = $collection, d.id = $id, d.body = $body"
)
GET_DOCUMENT = f"MATCH (d:{DOCUMENT} {{key: $key}}) RETURN d.body AS body"
LIST_DOCUMENTS = (
    f"MATCH (d:{DOCUMENT}) WHERE d.collection = $collection RETURN d.body AS body ORDER BY d.id"
)
