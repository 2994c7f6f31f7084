"""Read a dataset from disk into raw rows, remembering where each row came from.

A dataset is a folder of UTF-8 CSV files named after the row kinds (``cities.csv``...)
or one JSON file whose top-level keys are those names. Nothing here checks values; it
only turns bytes into rows with their file and physical line, and reports what cannot
even be read (bad encoding, broken quoting, unknown files or columns) as row errors.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.model import SPECS, Kind

MAX_FILE_BYTES = 512 * 1024 * 1024
csv.field_size_limit(64 * 1024 * 1024)  # big enough to read a huge cell and then reject it


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem, located: the file, the physical line (header = 1), the column."""

    file: str
    line: int
    column: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f" [{self.column}]" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class RawRow:
    kind: Kind
    file: str
    line: int
    values: dict[str, Any]  # only the columns the input has


@dataclass(slots=True)
class RawDataset:
    rows: list[RawRow]
    errors: list[RowError]


def read_dataset(path: Path) -> RawDataset:
    """Read a folder of CSV files or one JSON file."""
    if path.is_dir():
        return _read_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".csv" and path.stem in {k.value for k in Kind}:
            return _read_csv_files([path])
        return _read_json(path)
    return RawDataset([], [RowError(str(path), 0, None, "no such file or folder")])


def _read_folder(folder: Path) -> RawDataset:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    if not files:
        msg = "no CSV files here; expected cities.csv and optionally " + ", ".join(
            f"{k.value}.csv" for k in Kind if k != Kind.CITIES
        )
        return RawDataset([], [RowError(str(folder), 0, None, msg)])
    return _read_csv_files(files)


def _read_csv_files(files: list[Path]) -> RawDataset:
    out = RawDataset([], [])
    known = {k.value: k for k in Kind}
    for file in files:
        kind = known.get(file.stem)
        if kind is None:
            out.errors.append(
                RowError(
                    file.name,
                    0,
                    None,
                    f"unknown file {file.name!r}: expected one of "
                    + ", ".join(f"{k}.csv" for k in known),
                )
            )
            continue
        _read_csv(file, kind, out)
    return out


def _decode(data: bytes, name: str) -> tuple[str | None, RowError | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return None, RowError(
            name,
            line,
            None,
            f"byte 0x{data[e.start]:02x} is not valid UTF-8; save the file as UTF-8",
        )


def _read_csv(file: Path, kind: Kind, out: RawDataset) -> None:
    name = file.name
    if file.stat().st_size > MAX_FILE_BYTES:
        out.errors.append(RowError(name, 0, None, f"file is larger than {MAX_FILE_BYTES} bytes"))
        return
    text, error = _decode(file.read_bytes(), name)
    if error:
        out.errors.append(error)
        return
    assert text is not None
    spec = SPECS[kind]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        out.errors.append(RowError(name, 1, None, "the file is empty; it needs a header row"))
        return
    except csv.Error as e:
        out.errors.append(RowError(name, 1, None, f"cannot read the header: {e}"))
        return
    problems = _check_header(header, spec.columns, spec.required)
    if problems:
        out.errors.extend(RowError(name, 1, col, msg) for col, msg in problems)
        return
    previous_end = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            out.errors.append(RowError(name, previous_end + 1, None, f"broken CSV quoting: {e}"))
            break  # the reader cannot resynchronise after broken quoting
        line = previous_end + 1
        previous_end = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines are allowed
        if len(cells) != len(header):
            out.errors.append(
                RowError(
                    name,
                    line,
                    None,
                    f"has {len(cells)} fields but the header has {len(header)}; "
                    "quote cells that contain commas",
                )
            )
            continue
        out.rows.append(RawRow(kind, name, line, dict(zip(header, cells, strict=True))))


def _check_header(
    header: list[str], columns: tuple[str, ...], required: frozenset[str]
) -> list[tuple[str | None, str]]:
    problems: list[tuple[str | None, str]] = []
    seen: set[str] = set()
    for col in header:
        if col in seen:
            problems.append((col, f"column {col!r} appears twice"))
        elif col not in columns:
            problems.append((col, f"unknown column {col!r}; columns are: {', '.join(columns)}"))
        seen.add(col)
    for col in sorted(required - seen):
        problems.append((col, f"required column {col!r} is missing"))
    return problems


def _read_json(file: Path) -> RawDataset:
    name = file.name
    out = RawDataset([], [])
    if file.stat().st_size > MAX_FILE_BYTES:
        out.errors.append(RowError(name, 0, None, f"file is larger than {MAX_FILE_BYTES} bytes"))
        return out
    text, error = _decode(file.read_bytes(), name)
    if error:
        out.errors.append(error)
        return out
    assert text is not None
    try:
        items = list(_json_arrays(text))
    except json.JSONDecodeError as e:
        out.errors.append(RowError(name, e.lineno, None, f"not valid JSON: {e.msg}"))
        return out
    except RecursionError:
        out.errors.append(RowError(name, 1, None, "JSON is nested too deeply"))
        return out
    except _ShapeError as e:
        out.errors.append(RowError(name, e.line, None, str(e)))
        return out
    known = {k.value: k for k in Kind}
    for key, line, value in items:
        kind = known.get(key)
        if kind is None:
            out.errors.append(
                RowError(
                    name, line, key, f"unknown key {key!r}; expected one of {', '.join(known)}"
                )
            )
            continue
        spec = SPECS[kind]
        if not isinstance(value, dict):
            out.errors.append(RowError(name, line, None, f"each {key} entry must be an object"))
            continue
        unknown = [c for c in value if c not in spec.columns]
        if unknown:
            out.errors.append(
                RowError(
                    name,
                    line,
                    unknown[0],
                    f"unknown field {unknown[0]!r}; fields are: {', '.join(spec.columns)}",
                )
            )
            continue
        too_long = _too_long_integer(value)
        if too_long is not None:
            column, digits = too_long
            out.errors.append(
                RowError(name, line, column, f"a number of {digits} digits is too long to read")
            )
            continue
        values = {k: ("" if v is None else v) for k, v in value.items()}
        out.rows.append(RawRow(kind, name, line, values))
    return out


class _TooLongInteger:
    """An integer literal longer than Python will convert (``sys.get_int_max_str_digits``).

    ``int()`` refuses such a literal with ValueError, which would end the whole read; the
    decoder keeps it as this marker instead, and the row that holds it is reported with
    its field, like any other bad value.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _TooLongInteger:
    try:
        return int(text)
    except ValueError:
        return _TooLongInteger(len(text.lstrip("-")))


def _too_long_integer(value: dict[str, Any]) -> tuple[str, int] | None:
    """The first field (or item of a list field) holding a too-long integer, and its digits."""
    for column, cell in value.items():
        items = cell if isinstance(cell, list) else (cell,)
        for item in items:
            if isinstance(item, _TooLongInteger):
                return column, item.digits
    return None


class _ShapeError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _json_arrays(text: str) -> list[tuple[str, int, Any]]:
    """Walk ``{"kind": [ {...}, ... ], ...}`` keeping each element's starting line.

    ``json.loads`` forgets positions; decoding element by element with ``raw_decode``
    keeps them, so an error can name the line of the object it is about.
    """
    decoder = json.JSONDecoder(parse_int=_parse_int)
    ws = " \t\r\n"
    pos = 0

    def skip(p: int) -> int:
        while p < len(text) and text[p] in ws:
            p += 1
        return p

    counted = [0, 1]  # (position, line there): counting forward keeps this linear

    def line_at(p: int) -> int:
        if p < counted[0]:
            counted[:] = [0, 1]
        counted[1] += text.count("\n", counted[0], p)
        counted[0] = p
        return counted[1]

    def expect(p: int, ch: str) -> int:
        p = skip(p)
        if p >= len(text) or text[p] != ch:
            found = text[p] if p < len(text) else "end of file"
            raise json.JSONDecodeError(f"expected {ch!r}, found {found!r}", text, p)
        return p + 1

    out: list[tuple[str, int, Any]] = []
    pos = expect(0, "{")
    pos = skip(pos)
    if pos < len(text) and text[pos] == "}":
        return out
    while True:
        pos = skip(pos)
        key, pos = decoder.raw_decode(text, pos)
        if not isinstance(key, str):
            raise json.JSONDecodeError("object keys must be strings", text, pos)
        pos = expect(pos, ":")
        pos = skip(pos)
        if pos >= len(text) or text[pos] != "[":
            raise _ShapeError(f"{key!r} must be an array of objects", line_at(pos))
        pos = skip(pos + 1)
        if pos < len(text) and text[pos] == "]":
            pos += 1
        else:
            while True:
                pos = skip(pos)
                line = line_at(pos)
                value, pos = decoder.raw_decode(text, pos)
                out.append((key, line, value))
                pos = skip(pos)
                if pos < len(text) and text[pos] == ",":
                    pos += 1
                    continue
                pos = expect(pos, "]")
                break
        pos = skip(pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        pos = expect(pos, "}")
        if skip(pos) != len(text):
            raise json.JSONDecodeError("extra data after the top-level object", text, skip(pos))
        return out
