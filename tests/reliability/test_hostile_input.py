"""Proof 4: hostile input, generated, never crashes an ingest, is always located, changes nothing.

Hypothesis builds CSV folders and JSON documents from valid values mixed with hostile
ones: random bytes, wrong encodings (Latin-1, UTF-16), BOMs, unknown and duplicated
columns, duplicate ids, unknown references, numbers as text, NaN and infinities, Unicode
everywhere, injection strings for Cypher, SQL, CSV formulas and HTML; a few cases add
megabyte fields, thousands of columns or deep nesting. For every one, through
``ingest.load.ingest_path`` on both stores:

* nothing but a report comes back (no exception);
* every error names a file that was given and a line inside it (1 .. its lines + 1);
* a rejected dataset leaves the store exactly as it was (rows and revision).

The same datasets go through ``POST /v1/ingest`` (JSON, and the CSV files zipped) and
``POST /v1/cities``: never a 5xx, every error problem+json and located, nothing changed
when refused. Hostile text that is valid (names, descriptions) is stored verbatim and comes
back verbatim from ``GET /v1/cities/{id}`` as JSON (the pages' escaping is tested in
tests/web).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from graph.model import SPECS, Kind
from graph.open import open_store
from graph.store import GraphStore
from ingest.load import IngestReport, ingest_path
from tests.helpers import HOSTILE
from tests.reliability.conftest import Served
from tests.reliability.support import State, state

MAX_EXAMPLES = 200
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a red run can be repeated
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one store per test, examples compare against it
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

INJECTION = [
    *HOSTILE,
    "'; DROP TABLE nodes; --",
    '" OR 1=1 --',
    "') RETURN 1 UNION MATCH (n) DETACH DELETE n //",
    "a' }) MERGE (x:City {id: 'pwned'}) //",
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+1",
    "<img src=x onerror=alert(1)>",
    '"><svg/onload=alert(1)>',
    "</script><script>alert(1)</script>",
    "javascript:alert(1)",
    "{{7*7}} ${7*7} %s%s%n",
    "\u202eevil\u202c",
    "Zürich \u2013 Ελλάδα \u2013 東京 \u2013 القاهرة \u2013 😀",
    "A\u0301\u0327 ﬁ",
    "\ufeffbom inside",
    "nul\x00byte",
    "line\u2028separator",
]
NUMBERS_AS_TEXT = [
    "1",
    "1.5",
    " 42 ",
    "1e3",
    "1e309",
    "-1e309",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "0x10",
    "1_000",
    "١٢٣",
    "",
    "   ",
    "-0",
    "9" * 40,
]
EXISTING = ["fo-klaksvik", "gr-ioannina", "it-messina", "es-getxo", "pt-amadora"]
VALID: dict[str, list[str]] = {
    "id": [*EXISTING, "new-1", "new-2", "x;y", "", "a" * 201],
    "name": ["Nova", "Ville", *INJECTION[:8]],
    "title": ["A practice", *INJECTION[:4]],
    "country": ["PT", "pt", "XX", "UK", "", "PRT"],
    "lat": ["38.7", "-91", "90", *NUMBERS_AS_TEXT],
    "lon": ["-9.1", "181", "0", *NUMBERS_AS_TEXT],
    "population": ["1000", "-5", "1e3", *NUMBERS_AS_TEXT],
    "languages": ["en;pt", "en;;", "xx", "EN", ""],
    "networks": ["cdd", "cdd;reci", "nope", ""],
    "membership": ["international", "national", "other", ""],
    "joined": ["2015", "1800", "2015.5", ""],
    "city_id": [*EXISTING, "nope", ""],
    "city_a": [*EXISTING, "nope"],
    "city_b": [*EXISTING, "nope"],
    "partner_id": [*EXISTING, "nope"],
    "theme_id": ["anti-rumours", "education", "nope"],
    "themes": ["anti-rumours", "anti-rumours;education", "nope", ""],
    "priority": ["1", "5", "0", "6", "3.0", *NUMBERS_AS_TEXT],
    "score": ["0", "100", "100.5", "-1", *NUMBERS_AS_TEXT],
    "kind": ["twinning", "project", "ngo", "x"],
    "since": ["2016", "3000", ""],
    "year": ["2017", "0", ""],
}
KINDS = [
    Kind.NETWORKS,
    Kind.THEMES,
    Kind.CITIES,
    Kind.STAKEHOLDERS,
    Kind.PRACTICES,
    Kind.CITY_THEMES,
    Kind.INDEX_SCORES,
    Kind.PARTNERSHIPS,
]
ENCODINGS = ["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]

unicode_text = st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30
)  # every plane, no lone surrogates (those cannot be written as UTF-8 at all)


def cell(column: str) -> st.SearchStrategy[str]:
    pool = VALID.get(column, ["x", *INJECTION[:6]])
    return st.one_of(
        st.sampled_from(pool),
        st.sampled_from(pool),
        st.sampled_from(INJECTION),
        st.sampled_from(NUMBERS_AS_TEXT),
        unicode_text,
    )


@dataclass
class CsvFile:
    kind: Kind
    header: list[str]
    rows: list[list[str]]
    encoding: str
    newline: str
    damage: tuple[str, int, bytes] | None = None  # (how, where, what)
    huge_field: int = 0  # bytes of one giant cell
    extra_columns: int = 0  # unknown columns appended to the header and every row


@dataclass
class Dataset:
    files: list[CsvFile] = field(default_factory=list)


@st.composite
def csv_files(draw: st.DrawFn) -> CsvFile:
    kind = draw(st.sampled_from(KINDS))
    spec = SPECS[kind]
    optional = [c for c in spec.columns if c not in spec.required]
    header = [c for c in spec.columns if c in spec.required]
    if optional:
        header += draw(st.lists(st.sampled_from(optional), unique=True))
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    if draw(st.integers(0, 9)) == 0:
        header.append(draw(st.sampled_from(["unknown", header[0], " id ", "ID", "\ufeffid"])))
    if draw(st.integers(0, 9)) == 0 and len(header) > 1:
        header.pop(draw(st.integers(0, len(header) - 1)))  # a required column may go
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row = [draw(cell(c.strip())) for c in header]
        if draw(st.integers(0, 14)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, "spare"]
        rows.append(row)
    damage = None
    if draw(st.integers(0, 5)) == 0:
        damage = (
            draw(st.sampled_from(["insert", "truncate", "replace"])),
            draw(st.integers(0, 400)),
            draw(st.binary(min_size=1, max_size=8)),
        )
    return CsvFile(
        kind=kind,
        header=header,
        rows=rows,
        encoding=draw(st.sampled_from(ENCODINGS)),
        newline=draw(st.sampled_from(["\n", "\n", "\r\n", "\r"])),
        damage=damage,
        huge_field=draw(st.sampled_from([0] * 30 + [2_500_000])),
        extra_columns=draw(st.sampled_from([0] * 30 + [3000])),
    )


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    files = draw(st.lists(csv_files(), min_size=1, max_size=3, unique_by=lambda f: f.kind))
    return Dataset(files)


def _encode(text: str, encoding: str) -> bytes:
    if encoding in ("latin-1", "cp1252"):
        return text.encode(encoding, errors="replace")
    return text.encode(encoding, errors="surrogatepass")


def write_csv_file(folder: Path, f: CsvFile) -> tuple[str, bytes]:
    header, rows = list(f.header), [list(r) for r in f.rows]
    if f.extra_columns:
        header += [f"col{i}" for i in range(f.extra_columns)]
        rows = [r + [""] * f.extra_columns for r in rows]
    if f.huge_field and rows:
        rows[0][-1] = ("<script>" + "A" * 64) * (f.huge_field // 72)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=f.newline)
    writer.writerow(header)
    writer.writerows(rows)
    data = _encode(out.getvalue(), f.encoding)
    if f.damage:
        how, where, what = f.damage
        at = min(where, len(data))
        if how == "insert":
            data = data[:at] + what + data[at:]
        elif how == "truncate":
            data = data[:at]
        else:
            data = data[:at] + what + data[at + len(what) :]
    name = f"{f.kind.value}.csv"
    (folder / name).write_bytes(data)
    return name, data


def lines_in(data: bytes) -> int:
    return max(len(data.splitlines()), data.count(b"\n"), 1)


def check_report(report: IngestReport, files: dict[str, bytes]) -> None:
    """Every error names one of the files and a line inside it."""
    for e in report.errors:
        assert e.file in files, f"{e} names no file given ({sorted(files)})"
        assert 1 <= e.line <= lines_in(files[e.file]) + 1, f"{e}: line outside the file"
        assert e.message.strip(), f"{e} says nothing"
    if report.errors:
        assert not report.written


def ingest_and_judge(store: GraphStore, path: Path, files: dict[str, bytes]) -> IngestReport:
    before = state(store)
    report = ingest_path(path, store)  # any exception fails the test: it must not raise
    if currently_in_test_context():
        event("rejected" if report.errors else "accepted")
    check_report(report, files)
    if report.errors:
        assert state(store) == before, "a rejected dataset changed the store"
    return report


@pytest.fixture
def seeded(store: GraphStore, tmp_path: Path) -> Iterator[GraphStore]:
    from tests.helpers import tiny, write_csvs

    assert ingest_path(write_csvs(tmp_path / "tiny", tiny()), store).ok
    yield store


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder emptied before each example (tmp_path is per test, not per example)."""
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def served_store(served: Served) -> Iterator[GraphStore]:
    store = open_store(served.url)
    yield store
    store.close()


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@SETTINGS
@given(data=datasets())
def test_generated_csv_datasets_are_reported_never_raised(
    seeded: GraphStore, scratch: Path, data: Dataset
) -> None:
    folder = _fresh(scratch / "ds")
    files = dict(write_csv_file(folder, f) for f in data.files)
    for f in data.files:
        event(f"encoding {f.encoding}")
        if f.huge_field or f.extra_columns or f.damage:
            event("megabyte field" if f.huge_field else "columns" if f.extra_columns else "damaged")
    ingest_and_judge(seeded, folder, files)


# --- JSON ------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    unicode_text,
    st.sampled_from(INJECTION + NUMBERS_AS_TEXT),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(unicode_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def json_rows(draw: st.DrawFn, kind: Kind) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in SPECS[kind].columns:
        choice = draw(st.integers(0, 5))
        if choice == 0:
            continue  # missing
        if choice <= 3:
            row[column] = draw(cell(column))
        elif choice == 4:
            row[column] = draw(json_values)
        else:
            row[column] = draw(st.sampled_from([1.5, float("nan"), float("inf"), -0.0, 10**30]))
    if draw(st.integers(0, 9)) == 0:
        row[draw(unicode_text)] = draw(json_values)  # an unknown field
    return row


@dataclass
class JsonDoc:
    text: str
    encoding: str
    prefix: bytes
    damage: tuple[int, bytes] | None


@st.composite
def json_docs(draw: st.DrawFn) -> JsonDoc:
    shape = draw(st.integers(0, 19))
    if shape == 0:
        text = draw(st.sampled_from(["", "[]", "null", '"cities"', "{", '{"cities": {}}', "1"]))
    elif shape == 1:
        depth = draw(st.sampled_from([50, 5000, 200_000]))
        text = '{"cities": [' + "[" * depth + "]" * depth + "]}"
    elif shape == 2:
        text = '{"cities": [{"id": "x", "name": ' + '{"a":' * 3000 + "1" + "}" * 3000 + "}]}"
    else:
        doc: dict[str, list[Any]] = {}
        for kind in draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True)):
            doc[kind.value] = draw(st.lists(json_rows(kind), max_size=4))
            if draw(st.integers(0, 9)) == 0:
                doc[kind.value].append(draw(json_values))  # an entry that is no object
        if draw(st.integers(0, 9)) == 0:
            doc[draw(unicode_text)] = []
        text = json.dumps(
            doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
        )
    damage = None
    if draw(st.integers(0, 6)) == 0:
        damage = (draw(st.integers(0, 300)), draw(st.binary(min_size=1, max_size=6)))
    return JsonDoc(
        text=text,
        encoding=draw(st.sampled_from(ENCODINGS)),
        prefix=draw(st.sampled_from([b"", b"", b"", b"\xef\xbb\xbf", b"\xff\xfe"])),
        damage=damage,
    )


def json_bytes(doc: JsonDoc) -> bytes:
    data = doc.prefix + _encode(doc.text, doc.encoding)
    if doc.damage:
        at, what = doc.damage
        at = min(at, len(data))
        data = data[:at] + what + data[at:]
    return data


@SETTINGS
@given(doc=json_docs())
def test_generated_json_datasets_are_reported_never_raised(
    seeded: GraphStore, scratch: Path, doc: JsonDoc
) -> None:
    folder = _fresh(scratch / "json")
    data = json_bytes(doc)
    (folder / "network.json").write_bytes(data)
    ingest_and_judge(seeded, folder / "network.json", {"network.json": data})


# --- hand-picked extremes, always run ---------------------------------------------------

EXTREMES: dict[str, tuple[str, bytes]] = {
    "megabyte field": (
        "cities.csv",
        b"id,name,country,lat,lon,description\nx,X,PT,1,2," + b"<b>" * 1_500_000 + b"\n",
    ),
    "five thousand columns": (
        "cities.csv",
        ",".join(["id", "name", "country", "lat", "lon"] + [f"c{i}" for i in range(5000)]).encode()
        + b"\n",
    ),
    "utf-16 with bom": ("cities.csv", "id,name,country,lat,lon\nx,Ä,PT,1,2\n".encode("utf-16")),
    "latin-1": ("cities.csv", "id,name,country,lat,lon\nx,Zürich,CH,1,2\n".encode("latin-1")),
    "random bytes": ("cities.csv", bytes(range(256)) * 64),
    "nul bytes": ("cities.csv", b"id,name,country,lat,lon\nx\x00y,\x00,P\x00,1,2\n"),
    "broken quoting": ("cities.csv", b'id,name,country,lat,lon\nx,"open,PT,1,2\ny,Y,PT,1,2\n'),
    "only a bom": ("cities.csv", b"\xef\xbb\xbf"),
    "cr line endings": ("cities.csv", b"id,name,country,lat,lon\rx,X,PT,1,2\ry,Y,PT,1\r"),
    "deep json": ("d.json", b'{"cities": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"),
    "json nan and infinity": (
        "d.json",
        b'{"cities": [{"id": "x", "name": "X", "country": "PT", "lat": NaN, "lon": Infinity}]}',
    ),
    "json numbers as text": (
        "d.json",
        b'{"cities": [{"id": "x", "name": "X", "country": "PT", "lat": "1e309", "lon": "2",'
        b' "population": "12.5"}]}',
    ),
    "json duplicate ids": (
        "d.json",
        b'{"cities": [{"id": "x", "name": "X", "country": "PT", "lat": 1, "lon": 2},\n'
        b'{"id": "x", "name": "Y", "country": "PT", "lat": 1, "lon": 2}],\n'
        b' "partnerships": [{"city_a": "x", "city_b": "nowhere", "kind": "visit"}]}',
    ),
    "json escaped lone surrogate": (
        "d.json",
        b'{"cities": [{"id": "x", "name": "\\ud800", "country": "PT", "lat": 1, "lon": 2}]}',
    ),
}
HUGE_INTEGER = (
    "d.json",
    b'{"cities": [{"id": "x", "name": "X", "country": "PT", "lat": 1, "lon": 2, "population": '
    + b"9" * 5000
    + b"}]}",
)


def _extreme(store: GraphStore, folder: Path, name: str, data: bytes) -> IngestReport:
    (folder / name).write_bytes(data)
    target = folder if name.endswith(".csv") else folder / name
    return ingest_and_judge(store, target, {name: data})


@pytest.mark.parametrize("case", list(EXTREMES))
def test_extreme_inputs_are_reported_never_raised(
    seeded: GraphStore, tmp_path: Path, case: str
) -> None:
    name, data = EXTREMES[case]
    report = _extreme(seeded, tmp_path, name, data)
    assert report.errors, f"{case}: accepted"


def test_a_json_integer_too_long_for_python_is_reported_not_raised(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    report = _extreme(sqlite_store, tmp_path, *HUGE_INTEGER)
    assert report.errors


# --- through the API ------------------------------------------------------------------

API_SETTINGS = settings(SETTINGS, max_examples=100)


def _api_state(served: Served) -> State:
    store = open_store(served.url)
    try:
        return state(store)
    finally:
        store.close()


def _judge_refusal(r: Any, before: State, served: Served) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json", r.headers
        problem = r.json()
        assert problem["status"] == r.status_code and problem["detail"]
        assert _api_state(served) == before, "a refused request changed the store"


@API_SETTINGS
@given(doc=json_docs())
def test_generated_bodies_for_post_ingest_get_a_located_problem_or_a_report(
    served: Served, doc: JsonDoc
) -> None:
    before = _api_state(served)
    data = json_bytes(doc)
    r = served.client.post(
        "/v1/ingest",
        content=data,
        headers={**served.auth("admin"), "content-type": "application/json"},
    )
    _judge_refusal(r, before, served)
    if r.status_code == 422:
        lines = lines_in(data)
        for err in r.json().get("errors") or []:
            m = re.match(r"^request\.json:(\d+)", err["field"])
            assert m, err
            assert 1 <= int(m.group(1)) <= lines + 1, err


@API_SETTINGS
@given(data=datasets())
def test_generated_csv_zips_for_post_ingest_get_a_located_problem_or_a_report(
    served: Served, scratch: Path, data: Dataset
) -> None:
    before = _api_state(served)
    folder = _fresh(scratch / "zip")
    files = dict(write_csv_file(folder, f) for f in data.files)
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    r = served.client.post(
        "/v1/ingest",
        content=body.getvalue(),
        headers={**served.auth("admin"), "content-type": "application/zip"},
    )
    _judge_refusal(r, before, served)
    if r.status_code == 422:
        for err in r.json().get("errors") or []:
            m = re.match(r"^([a-z_]+\.csv):(\d+)", err["field"])
            assert m and m.group(1) in files, err
            assert 1 <= int(m.group(2)) <= lines_in(files[m.group(1)]) + 1, err


@API_SETTINGS
@given(rows=st.lists(json_rows(Kind.CITIES), max_size=5))
def test_generated_rows_for_post_cities_get_a_problem_or_a_report(
    served: Served, rows: list[dict[str, Any]]
) -> None:
    before = _api_state(served)
    try:
        body = json.dumps({"rows": rows}, allow_nan=True).encode()
    except ValueError:
        assume(False)
    r = served.client.post(
        "/v1/cities",
        content=body,
        headers={**served.auth("admin"), "content-type": "application/json"},
    )
    _judge_refusal(r, before, served)
    if r.status_code == 422:
        for err in r.json().get("errors") or []:
            assert re.match(r"^(rows(\[\d+\](\.\w*)?)?|request|body.*)", err["field"]), err


def test_post_ingest_with_a_json_integer_too_long_for_python_is_a_422(served: Served) -> None:
    before = _api_state(served)
    r = served.client.post(
        "/v1/ingest",
        content=HUGE_INTEGER[1],
        headers={**served.auth("admin"), "content-type": "application/json"},
    )
    _judge_refusal(r, before, served)
    assert r.status_code == 422


# --- hostile text that is valid is kept verbatim ------------------------------------------

names = (
    st.one_of(st.sampled_from(INJECTION), unicode_text)
    .map(str.strip)
    .filter(lambda s: 0 < len(s) <= 300)
)
descriptions = st.one_of(st.sampled_from(INJECTION), unicode_text, st.just("")).filter(
    lambda s: len(s) <= 20_000
)
safe_ids = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=";/"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(lambda s: s and s not in (".", ".."))
)


@settings(SETTINGS, max_examples=50)
@given(
    cities=st.lists(
        st.tuples(safe_ids, names, descriptions), min_size=1, max_size=4, unique_by=lambda c: c[0]
    ),
    as_json=st.booleans(),
)
def test_hostile_text_that_is_valid_is_stored_and_served_verbatim(
    served: Served,
    served_store: GraphStore,
    scratch: Path,
    cities: list[tuple[str, str, str]],
    as_json: bool,
) -> None:
    rows = [
        {"id": i, "name": n, "country": "PT", "lat": 38.7, "lon": -9.1, "description": d}
        for i, n, d in cities
    ]
    folder = _fresh(scratch / "verbatim")
    if as_json:
        target = folder / "cities.json"
        target.write_text(json.dumps({"cities": rows}), encoding="utf-8")
    else:
        target = _write_rfc4180(folder, "cities", rows)
    report = ingest_path(target, served_store)
    assert report.ok, [str(e) for e in report.errors]
    stored = {c.id: c for c in served_store.snapshot().cities}
    for id_, name, description in cities:
        assert stored[id_].name == name
        assert stored[id_].description == (description if description.strip() else None)
        r = served.client.get(f"/v1/cities/{quote(id_, safe='')}", headers=served.auth("analyst"))
        assert r.status_code == 200, (id_, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/json")
        got = r.json()
        assert (got["id"], got["name"]) == (id_, name)
        assert got["description"] == (description if description.strip() else None)


def _write_rfc4180(folder: Path, stem: str, rows: list[dict[str, Any]]) -> Path:
    """CSV as RFC 4180 has it: CRLF line ends, so any cell holding a CR or LF is quoted."""
    with (folder / f"{stem}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_export_then_ingest_keeps_text_with_a_carriage_return(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    from ingest.export import export_csv

    rows = [
        {"id": "c1", "name": "One", "country": "PT", "lat": 1.0, "lon": 2.0, "description": "a\rb"},
        {"id": "c2", "name": "Two", "country": "PT", "lat": 1.0, "lon": 2.0, "description": "b\r"},
    ]
    (tmp_path / "in.json").write_text(json.dumps({"cities": rows}), encoding="utf-8")
    assert ingest_path(tmp_path / "in.json", sqlite_store).ok
    export_csv(sqlite_store.snapshot(), tmp_path / "export")
    again = open_store(f"sqlite:///{tmp_path / 'again.db'}")
    try:
        report = ingest_path(tmp_path / "export", again)
        assert report.ok, [str(e) for e in report.errors]
        assert [c.description for c in again.snapshot().cities] == ["a\rb", "b\r"]
    finally:
        again.close()


UNADDRESSABLE = ("nl/amsterdam", ".", "..")


@pytest.mark.parametrize("id_", [*UNADDRESSABLE, "nl.amsterdam", "..x"])
def test_every_id_the_ingest_accepts_can_be_fetched_by_id(served: Served, id_: str) -> None:
    """Ids are URL path segments: one that could not be addressed is refused at the edge."""
    before = _api_state(served)
    row = {"id": id_, "name": "Amsterdam", "country": "NL", "lat": 52.4, "lon": 4.9}
    r = served.client.post("/v1/cities", json={"rows": [row]}, headers=served.auth("admin"))
    if id_ in UNADDRESSABLE:
        assert r.status_code == 422, r.text
        assert _api_state(served) == before
        return
    assert r.status_code == 200, r.text
    got = served.client.get(f"/v1/cities/{quote(id_, safe='')}", headers=served.auth("analyst"))
    assert got.status_code == 200, got.text
    assert got.json()["id"] == id_
