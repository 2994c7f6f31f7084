"""Write a snapshot back in the interchange format: one CSV per kind, rows sorted by key.

Export then ingest changes nothing, and two exports of the same data are byte-identical,
so they can be diffed.
"""

from __future__ import annotations

from pathlib import Path

from graph.csv_format import cell_text, csv_writer
from graph.model import SPECS, Kind
from graph.snapshot import NetworkSnapshot


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
            out = csv_writer(fh)
            out.writerow(columns)
            for row in rows:
                out.writerow([cell_text(row[c]) for c in columns])
        written[path.name] = len(rows)
    return written
