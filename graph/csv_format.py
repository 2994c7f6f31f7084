"""The CSV interchange format's writing side, shared by every writer of it.

One cell rule (lists joined with ``LIST_SEPARATOR``, ``None`` empty) and one writer (LF line
endings, every cell holding CR or LF quoted), so export, the network-view CSV, the data
generator and the tests all write what ``ingest.read`` reads back.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

from graph.model import LIST_SEPARATOR


def cell_text(value: Any) -> str:
    """A value as one CSV cell."""
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
