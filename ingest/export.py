"""Write a snapshot back in the interchange format: one CSV per kind, rows sorted by key.

Export then ingest changes nothing, and two exports of the same data are byte-identical,
so they can be diffed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from graph.model import LIST_SEPARATOR, SPECS, Kind
from graph.snapshot import NetworkSnapshot


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def export_csv(snapshot: NetworkSnapshot, folder: Path) -> dict[str, int]:
    """Write every kind that has rows (cities.csv always); return rows written per file."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for kind in Kind:
        rows = snapshot.export_rows(kind)
        if not rows and kind != Kind.CITIES:
            continue
        columns = SPECS[kind].columns
        path = folder / f"{kind.value}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(columns)
            for row in rows:
                out.writerow([_cell(row[c]) for c in columns])
        written[path.name] = len(rows)
    return written
