"""Rows written through the API pass the same checks as a file's, all or nothing.

Four writers hand over plain rows: an admin's upload (``POST /v1/cities`` and the like), a
city's answer to a suggested partner, an accepted cluster proposal and a saved expert
assignment. Each goes through ``write_rows``: the rows become ingest's raw rows, get the
checks a file ingest gets (``ingest.load.ingest_rows``), and one bad row refuses the lot
with ``InvalidInput`` naming every problem, so the API can never store what a file could not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from graph.errors import InvalidInput
from graph.model import SPECS, Kind
from graph.store import GraphStore
from ingest.load import IngestReport, ingest_rows
from ingest.read import RawRow, RowError

Refusal = Callable[[Sequence[RowError]], str]
"""Words the refusal's message from the bad rows' problems."""


def write_rows(
    store: GraphStore,
    kind: Kind,
    rows: Sequence[Mapping[str, Any]],
    *,
    refusal: Refusal,
    name: str | None = None,
    source: str = "request",
    dry_run: bool = False,
    along: Mapping[Kind, Sequence[Mapping[str, Any]]] | None = None,
) -> IngestReport:
    """Check ``rows`` (interchange columns; ``None`` is an empty cell) and write them, or none.

    ``name`` is where the rows sit in the request body: a problem's field reads
    ``name[i].column`` (``i`` from 0), or the bare column when there is no name (one row).
    ``source`` stands for the file name in ingest's report. ``along``: rows of other
    kinds that follow from these (a signed partnership from a match's status), written in
    the same transaction and checked the same way.
    """
    columns = SPECS[kind].columns
    unknown = [(n, c) for n, row in enumerate(rows) for c in row if c not in columns]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} unknown fields; nothing was written",
            [
                {
                    "field": _field(name, n, c),
                    "message": f"unknown field; fields are {', '.join(columns)}",
                }
                for n, c in unknown
            ],
        )
    raw = [
        RawRow(k, source, n, {c: ("" if v is None else v) for c, v in row.items()})
        for k, rows_of_kind in ((kind, rows), *(along or {}).items())
        for n, row in enumerate(rows_of_kind, 1)
    ]
    report = ingest_rows(raw, [], store, dry_run=dry_run)
    if report.errors:
        raise InvalidInput(
            refusal(report.errors),
            [
                {"field": _field(name, e.line - 1, e.column), "message": e.message}
                for e in report.errors
            ],
        )
    return report


def first_problems(errors: Sequence[RowError], limit: int = 3) -> str:
    """The first few problems, located (``request:2 [country]: ...``), for a message."""
    return "; ".join(str(e) for e in errors[:limit])


def _field(name: str | None, index: int, column: str | None) -> str:
    return f"{name}[{index}].{column or ''}" if name else column or ""
