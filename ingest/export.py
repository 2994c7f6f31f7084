"""Write a snapshot back in the interchange format: one CSV per kind, rows sorted by key.

Export then ingest changes nothing, and two exports of the same data are byte-identical,
so they can be diffed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from graph.model import LIST_SEPARATOR, SPECS, Kind
from graph.snapshot import NetworkSnapshot


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


class _LfLines:
    """A text file that ends each row ``csv.writer`` hands it with LF instead of CRLF.

    ``csv.writer`` quotes a cell only for the delimiter, the quote and the characters of
    its own line terminator: with ``lineterminator="\n"`` a cell holding a bare carriage
    return goes out unquoted, and reading it back splits the row. Writing with ``"\r\n"``
    makes it quote every cell holding CR or LF; this wrapper then swaps each row's CRLF
    (the writer emits one row per ``write`` call) for LF, so files keep LF line endings.
    """

    def __init__(self, fh: TextIO) -> None:
        self._fh = fh

    def write(self, text: str) -> int:
        if text.endswith("\r\n"):
            text = text[:-2] + "\n"
        return self._fh.write(text)


def csv_writer(fh: TextIO) -> Any:
    """A ``csv.writer`` with LF line endings that quotes every cell holding CR or LF."""
    return csv.writer(_LfLines(fh), lineterminator="\r\n")


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
                out.writerow([_cell(row[c]) for c in columns])
        written[path.name] = len(rows)
    return written
