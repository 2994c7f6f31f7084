"""A first load of a whole network into an EMPTY Neo4j database with Neo4j's bulk importer.

``Neo4jStore.upsert`` writes through Cypher in one transaction: right for every later
change, but a first load of 100,000 cities (some 2 million relationships) then runs at
11,700-18,400 relationships/s (by the machine's load) and needs an 8 GiB heap. ``neo4j-admin database import
full`` builds the store files directly from CSV, far faster, but only into a database
that does not exist or is empty, with the server stopped.

``write_import(batch, folder)`` turns a validated ``GraphBatch`` into the importer's CSV
files and returns them with the exact ``neo4j-admin`` arguments. The files describe
exactly the graph ``Neo4jStore.upsert`` writes for the same batch into an empty store:

* one node per node row, labelled from ``SPECS`` (``Label``), with every non-null
  column as a property of the type the driver would send (``str`` -> String, ``int`` ->
  Integer (64 bits), ``float`` -> Float (64 bits), lists -> String arrays): ``SET n =
  row`` in ``cypher.write``;
* the reference relationships of node fields (``cypher.link_refs``): one per distinct
  id named, reversed where the ``Ref`` says so, without properties;
* one relationship per relationship row, its two endpoint ids being the nodes it joins
  and its other fields (``cypher.rel_fields``) its only properties;
* the revision node ``(:IccmatchMeta {name: 'revision', value: N})`` that
  ``cypher.BUMP_REVISION`` / ``READ_REVISION`` use, with the revision a first ingest
  leaves (1), so servers and readers see one committed change.

One difference cannot be avoided: the importer has no way to write an EMPTY list (an
empty cell means "no property"), where ``upsert`` stores ``[]``. Every reader treats a
missing list as empty (``graph.model.from_props``, ``canonical_props``,
``graph.snapshot.build_rows``), so snapshots, upsert plans and exports are the same.

What the importer does not make, the first ordinary use does: the uniqueness
constraints (``Neo4jStore._ensure_schema``, on the first write through a store) and the
embedding cache (vectors; empty until the first command or server that prepares the
network embeds the profiles).

Labels, relationship types and property names come only from the enums and the model's
fields, never from values; values are quoted CSV cells.
"""

from __future__ import annotations

import math
import shlex
import shutil
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from graph import cypher
from graph.errors import InvalidInput
from graph.model import (
    LIST_SEPARATOR,
    NODE_KINDS,
    REL_KINDS,
    SPECS,
    Kind,
    KindSpec,
    Label,
    Ref,
)
from graph.store import GraphBatch

FIRST_REVISION = 1
"""The revision a first ingest into an empty store leaves: one committed change."""

DATABASE = "neo4j"  # the default database, the one Neo4j Community serves
ARRAY_DELIMITER = LIST_SEPARATOR
"""``;``: validation refuses it inside ids (``graph.model._check_id``), and list columns
hold only ids and language codes, so it can never occur inside a list element."""

_CHUNK = 20_000  # lines joined per write

Cell = Callable[[Any], str]


# --- column types, from the model's type hints ------------------------------------------


def _base(hint: Any) -> Any:
    """The type a hint stores, without ``Annotated``, ``Optional`` and ``Literal`` around it."""
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            hint = get_args(hint)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(hint) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"no importer type for the union {hint!r}")
            hint = args[0]
        elif origin is Literal:
            kinds = {type(v) for v in get_args(hint)}
            if len(kinds) != 1:
                raise TypeError(f"no importer type for the mixed literal {hint!r}")
            hint = kinds.pop()
        else:
            return hint


_SCALARS = {str: "string", int: "long", float: "double", bool: "boolean"}
"""Neo4j's own types for what the Python driver sends: an ``int`` is a 64-bit Integer and
a ``float`` a 64-bit Float, so the importer's ``long`` and ``double`` (its ``int`` and
``float`` are 32 bits: a latitude would lose digits and no longer equal the row)."""


def column_type(hint: Any) -> str:
    """The importer's type of a model field (``string``, ``long``, ``double``, ``boolean``,
    ``string[]``...), derived from its type hint; ``TypeError`` for a type it cannot carry,
    so a new kind of field fails here, loudly, instead of being imported as text."""
    base = _base(hint)
    if get_origin(base) is tuple:
        args = get_args(base)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"no importer type for the tuple {base!r}")
        element = _base(args[0])
        if element not in _SCALARS:
            raise TypeError(f"no importer type for a list of {element!r}")
        return f"{_SCALARS[element]}[]"
    if base not in _SCALARS:
        raise TypeError(f"no importer type for {base!r}")
    return _SCALARS[base]


def column_types(kind: Kind) -> dict[str, str]:
    """Each field of a kind with its importer type, in the model's field order."""
    model = SPECS[Kind(kind)].model
    hints = get_type_hints(model, include_extras=True)
    return {f.name: column_type(hints[f.name]) for f in fields(model)}


# --- cells: each value as the importer reads it back, or a refusal ----------------------


class _Refused(Exception):
    """A value validation would never have let through (turned into ``InvalidInput``)."""


def _quoted(text: str) -> str:
    # RFC 4180: the cell in quotes, a quote inside doubled. With --multiline-fields the
    # importer keeps CR and LF inside quotes as they are; a backslash is an ordinary
    # character (--legacy-style-quoting=false).
    return '"' + text.replace('"', '""') + '"'


def _string(value: Any) -> str:
    if type(value) is not str:
        raise _Refused(f"{value!r} is not text")
    return _quoted(value)


_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _long(value: Any) -> str:
    if type(value) is not int or not _LONG_MIN <= value <= _LONG_MAX:
        raise _Refused(f"{value!r} is not a 64-bit integer")
    return str(value)


def _double(value: Any) -> str:
    # validation turns an int given for a float field into a float (pydantic's lax mode),
    # and so does this: the stored value is a Float either way
    try:
        number = float(value) if type(value) in (float, int) else math.nan
    except OverflowError:  # an int too large for a double
        number = math.nan
    if not math.isfinite(number):
        raise _Refused(f"{value!r} is not a finite number")
    return repr(number)  # the shortest text that reads back as the same double


def _boolean(value: Any) -> str:
    if type(value) is not bool:
        raise _Refused(f"{value!r} is not true or false")
    return "true" if value else "false"


_CELLS: dict[str, Cell] = {
    "string": _string,
    "long": _long,
    "double": _double,
    "boolean": _boolean,
}


def _array(element_type: str) -> Cell:
    """A list cell: its elements joined by ``ARRAY_DELIMITER``, the whole cell quoted."""
    element = _CELLS[element_type]
    strings = element_type == "string"

    def cell(value: Any) -> str:
        if not isinstance(value, list | tuple):
            raise _Refused(f"{value!r} is not a list")
        if not value:
            return ""  # no property: the importer cannot write an empty list (module docstring)
        parts = []
        for item in value:
            if strings:
                if type(item) is not str or not item or ARRAY_DELIMITER in item:
                    raise _Refused(
                        f"list element {item!r} is not text, is empty or holds "
                        f"{ARRAY_DELIMITER!r}, the list separator"
                    )
                parts.append(item)
            else:
                parts.append(element(item))
        return _quoted(ARRAY_DELIMITER.join(parts))

    return cell


def _cell_writer(importer_type: str) -> Cell:
    if importer_type.endswith("[]"):
        return _array(importer_type[:-2])
    return _CELLS[importer_type]


# --- the files ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportFile:
    """One CSV file (header in its first line) and what it holds."""

    path: Path
    role: Literal["nodes", "relationships"]
    what: str  # a label, or a relationship type with its ends: "PRIORITISES (City->Theme)"
    rows: int

    def argument(self, root: PurePosixPath | None = None) -> str:
        """``--nodes=PATH`` or ``--relationships=PATH``; ``root``: the folder as the
        importer sees it (e.g. inside a container) instead of this machine's path."""
        where = str(root / self.path.name) if root is not None else str(self.path)
        return f"--{self.role}={where}"


@dataclass(frozen=True, slots=True)
class ImportFiles:
    """The files ``write_import`` wrote, and how to hand them to ``neo4j-admin``."""

    folder: Path
    files: tuple[ImportFile, ...]
    multiline: bool  # some text holds a line break: the importer must read quoted lines
    revision: int
    nodes: int = 0
    relationships: int = 0
    by_what: dict[str, int] = field(default_factory=dict)

    def options(self, root: PurePosixPath | None = None) -> list[str]:
        """The importer's options, every one spelled out even where it is the default:
        the files were written for exactly these, and a default that changed in another
        Neo4j version must not change how they are read."""
        report = (root / "import.report") if root is not None else self.folder / "import.report"
        return [
            "--id-type=string",
            "--input-encoding=UTF-8",
            "--delimiter=,",
            f"--array-delimiter={ARRAY_DELIMITER}",
            '--quote="',
            "--legacy-style-quoting=false",
            f"--multiline-fields={'true' if self.multiline else 'false'}",
            "--ignore-empty-strings=false",
            "--trim-strings=false",
            "--ignore-extra-columns=false",
            "--skip-duplicate-nodes=false",
            "--skip-bad-relationships=false",
            "--bad-tolerance=0",
            "--strict=true",
            f"--report-file={report}",
        ]

    def arguments(
        self, root: PurePosixPath | None = None, *, database: str = DATABASE
    ) -> list[str]:
        """Options, the database's name, then one ``--nodes=``/``--relationships=`` per
        file (nodes first). The name goes before the files: ``--nodes`` and
        ``--relationships`` take any number of values, so a name after them would be
        read as one more file (``File 'neo4j' doesn't exist``)."""
        return [*self.options(root), database, *(f.argument(root) for f in self.files)]

    def command(
        self,
        admin: Sequence[str] = ("neo4j-admin",),
        *,
        database: str = DATABASE,
        root: PurePosixPath | None = None,
    ) -> list[str]:
        """The whole command line, as a list (``shlex.join`` prints it for a shell)."""
        return [*admin, "database", "import", "full", *self.arguments(root, database=database)]

    def shell(self, admin: Sequence[str] = ("neo4j-admin",), **kwargs: Any) -> str:
        return shlex.join(self.command(admin, **kwargs))


def _where(kind: Kind, index: int, column: str) -> str:
    return f"{kind.value} row {index + 1} [{column}]"


def _check_batch(batch: GraphBatch) -> dict[Kind, set[str]]:
    """What validation guarantees and the import relies on, checked before any file is
    written; returns the node ids per kind.

    ``ingest.validate.check_rows`` makes the batch (and the ``iccmatch neo4j-import``
    command runs it); this re-checks, cheaply, what would otherwise go wrong silently or
    half-way through the importer: rows of known kinds with known, required fields; ids
    and relationship keys unique (the importer would fail on a duplicate node, and make
    two relationships where ``upsert`` keeps one); every reference naming a row of the
    batch itself, since the target database is empty. Values are checked while they are
    written (``_Refused``).
    """
    ids: dict[Kind, set[str]] = {}
    for kind, rows in batch.rows.items():
        if kind not in SPECS:
            raise InvalidInput(f"not a row kind: {kind!r}")
        spec = SPECS[kind]
        known, required = set(spec.columns), spec.required
        for i, row in enumerate(rows):
            extra = row.keys() - known
            if extra:
                raise InvalidInput(
                    f"{kind.value} row {i + 1} has fields the model lacks: {sorted(extra)}"
                )
            for name in required:
                if row.get(name) is None:
                    raise InvalidInput(f"{_where(kind, i, name)}: is required")
        if spec.is_node:
            seen = {row["id"] for row in rows}
            if len(seen) != len(rows):
                raise InvalidInput(f"{kind.value}: an id appears twice (validate the data first)")
            ids[kind] = seen
    for kind, rows in batch.rows.items():
        spec = SPECS[kind]
        if not spec.is_node:
            keys = {spec.key_of(row) for row in rows}
            if len(keys) != len(rows):
                raise InvalidInput(
                    f"{kind.value}: a row for one {', '.join(spec.key)} appears twice "
                    "(validate the data first)"
                )
            del keys
            if kind == Kind.PARTNERSHIPS:
                for i, row in enumerate(rows):
                    if not row["city_a"] < row["city_b"]:
                        raise InvalidInput(
                            f"{_where(kind, i, 'city_b')}: a partnership is stored with "
                            "city_a < city_b (validate the data first)"
                        )
        for ref in spec.refs:
            targets = ids.get(ref.target, set())
            for i, row in enumerate(rows):
                value = row.get(ref.field)
                for name in (value or ()) if ref.many else (() if value is None else (value,)):
                    if name not in targets:
                        raise InvalidInput(
                            f"{_where(kind, i, ref.field)}: {name!r} names no row of "
                            f"{ref.target.value} in this batch (the import goes into an empty "
                            "database, so every reference must be to a row of the same data)"
                        )
    return ids


def _label(kind: Kind) -> str:
    label = SPECS[kind].label
    assert label is not None
    return Label(label).value


def _ends(spec: KindSpec) -> tuple[str, str]:
    src, dst = spec.endpoints
    return _label(src.target), _label(dst.target)


@dataclass(frozen=True, slots=True)
class _Planned:
    """One file to write: its name, what it holds, its header and its data lines."""

    name: str
    role: Literal["nodes", "relationships"]
    what: str
    kind: Kind | None  # the rows it comes from (named when a value is refused)
    header: str
    lines: Callable[[], Iterator[str]]


class _Writer:
    """Writes planned files, noting whether any line held a line break."""

    def __init__(self) -> None:
        self.multiline = False

    def write(self, path: Path, planned: _Planned) -> int:
        """The header line, then the data lines; returns how many data lines."""
        n = 0
        what = planned.kind.value if planned.kind is not None else planned.what
        try:
            with path.open("w", encoding="utf-8", newline="") as fh:
                fh.write(planned.header + "\n")
                chunk: list[str] = []
                for line in planned.lines():
                    chunk.append(line)
                    if len(chunk) >= _CHUNK:
                        n += self._flush(fh, chunk)
                        chunk = []
                if chunk:
                    n += self._flush(fh, chunk)
        except UnicodeEncodeError as e:
            raise InvalidInput(
                f"{what}: text that is not valid Unicode ({e.reason}, e.g. a lone "
                "surrogate from a JSON escape) cannot be written as UTF-8"
            ) from None
        return n

    def _flush(self, fh: Any, chunk: list[str]) -> int:
        text = "\n".join(chunk) + "\n"
        # ids never hold a line break (validation refuses control characters), so only
        # text columns can ask for the importer's slower multi-line reading
        if not self.multiline and ("\r" in text or text.count("\n") != len(chunk)):
            self.multiline = True
        fh.write(text)
        return len(chunk)


def _row_lines(
    kind: Kind, rows: Sequence[dict[str, Any]], cells: list[tuple[str, Cell]], tail: str
) -> Iterator[str]:
    """One line per row: each column's cell (empty for None: no property, as ``SET n =
    row`` does with a null), then ``tail`` (the label or type column)."""
    for i, row in enumerate(rows):
        get = row.get
        out = []
        for name, cell in cells:
            value = get(name)
            if value is None:
                out.append("")
                continue
            try:
                out.append(cell(value))
            except _Refused as e:
                raise InvalidInput(
                    f"{_where(kind, i, name)}: {e} (validate the data first)"
                ) from None
        out.append(tail)
        yield ",".join(out)


def _ref_lines(rows: Sequence[dict[str, Any]], ref: Ref, rel: str) -> Iterator[str]:
    """One line per distinct id a node row's reference field names (``cypher.link_refs``
    creates one relationship per target, without duplicates), reversed where it says."""
    for row in rows:
        value = row.get(ref.field)
        if not value:
            continue
        me = _quoted(row["id"])
        for target in dict.fromkeys(value) if ref.many else (value,):
            other = _quoted(target)
            yield f"{other},{me},{rel}" if ref.reverse else f"{me},{other},{rel}"


def _plan(batch: GraphBatch, revision: int) -> list[_Planned]:
    """The files of a batch, nodes first: a relationship file names nodes by their ids."""
    planned: list[_Planned] = []
    for kind in NODE_KINDS:
        rows = batch.rows.get(kind) or []
        if not rows:
            continue
        label = _label(kind)
        typed = column_types(kind)
        header = ",".join(
            f"id:ID({label})" if name == "id" else f"{name}:{t}" for name, t in typed.items()
        )
        cells = [(name, _cell_writer(t)) for name, t in typed.items()]
        planned.append(
            _Planned(
                f"nodes-{label}.csv",
                "nodes",
                label,
                kind,
                header + ",:LABEL",
                partial(_row_lines, kind, rows, cells, label),
            )
        )
    meta = cypher.META
    meta_line = f'"revision",{_long(revision)},{meta}'
    planned.append(
        _Planned(
            f"nodes-{meta}.csv",
            "nodes",
            meta,
            None,
            f"name:ID({meta}),value:long,:LABEL",
            partial(iter, [meta_line]),
        )
    )
    for kind in NODE_KINDS:
        rows = batch.rows.get(kind) or []
        if not rows:
            continue
        for ref in SPECS[kind].refs:
            assert ref.rel is not None
            here, there = _label(kind), _label(ref.target)
            start, end = (there, here) if ref.reverse else (here, there)
            rel = ref.rel.value
            if not any(row.get(ref.field) for row in rows):
                continue
            planned.append(
                _Planned(
                    f"relationships-{kind.value}-{ref.field}-{rel}.csv",
                    "relationships",
                    f"{rel} ({start}->{end})",
                    kind,
                    f":START_ID({start}),:END_ID({end}),:TYPE",
                    partial(_ref_lines, rows, ref, rel),
                )
            )
    for kind in REL_KINDS:
        rows = batch.rows.get(kind) or []
        if not rows:
            continue
        spec = SPECS[kind]
        assert spec.rel is not None
        start, end = _ends(spec)
        src, dst = spec.endpoints
        typed = column_types(kind)
        own = cypher.rel_fields(spec)
        header = ",".join(
            [f":START_ID({start})", f":END_ID({end})", *(f"{f}:{typed[f]}" for f in own)]
        )
        cells = [(src.field, _string), (dst.field, _string)]
        cells += [(f, _cell_writer(typed[f])) for f in own]
        rel = spec.rel.value
        planned.append(
            _Planned(
                f"relationships-{kind.value}-{rel}.csv",
                "relationships",
                f"{rel} ({start}->{end})",
                kind,
                header + ",:TYPE",
                partial(_row_lines, kind, rows, cells, rel),
            )
        )
    return planned


def write_import(batch: GraphBatch, folder: Path, *, revision: int = FIRST_REVISION) -> ImportFiles:
    """Write the import files of ``batch`` into ``folder`` and say how to import them.

    ``folder`` must be new or empty: a file left from an earlier run would otherwise sit
    beside ours, and one of ours would be overwritten without a word. The batch is
    checked first (``_check_batch``) and every value as its line is made; when anything
    is refused, the files already written (and the folder, if this call made it) are
    removed again, so a refused batch leaves nothing behind.
    """
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(f"{folder} is not an empty folder: choose a new or empty one")
    _check_batch(batch)
    planned = _plan(batch, revision)
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    writer = _Writer()
    written: list[ImportFile] = []
    try:
        for p in planned:
            path = folder / p.name
            written.append(ImportFile(path, p.role, p.what, writer.write(path, p)))
    except BaseException:
        for p in planned:  # the one being written when it failed included
            (folder / p.name).unlink(missing_ok=True)
        if made_folder:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    by_what: dict[str, int] = {}
    for f in written:
        by_what[f.what] = by_what.get(f.what, 0) + f.rows
    return ImportFiles(
        folder=folder,
        files=tuple(written),
        multiline=writer.multiline,
        revision=revision,
        nodes=sum(f.rows for f in written if f.role == "nodes"),
        relationships=sum(f.rows for f in written if f.role == "relationships"),
        by_what=by_what,
    )


__all__ = [
    "DATABASE",
    "FIRST_REVISION",
    "ImportFile",
    "ImportFiles",
    "column_type",
    "column_types",
    "write_import",
]
