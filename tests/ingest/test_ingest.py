"""Ingest: every kind of bad row is reported with file, line and column; nothing is half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.model import Kind
from graph.store import GraphStore
from ingest.load import IngestReport, ingest_path
from tests.helpers import tiny, write_csvs

HEADER = "id,name,country,lat,lon,population,languages,membership,networks,joined,coordinator_hours,description\n"
GOOD = "pt-amadora,Amadora,PT,38.75,-9.23,175000,pt;en,international,,2010,20,A city\n"


def _errors(report: IngestReport) -> set[tuple[str, int, str | None]]:
    return {(e.file, e.line, e.column) for e in report.errors}


def _cities(tmp_path: Path, body: str, header: str = HEADER, name: str = "cities.csv") -> Path:
    folder = tmp_path / "ds"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(header + body, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        ("x,X,XX,1,1,,,,,,,", "country", "ISO 3166-1"),
        ("x,X,PT,91,1,,,,,,,", "lat", "less than or equal to 90"),
        ("x,X,PT,1,-181,,,,,,,", "lon", "greater than or equal to -180"),
        ("x,X,PT,nan,1,,,,,,,", "lat", "finite"),
        ("x,X,PT,1,1,,pt;zz,,,,,", "languages", "ISO 639-1"),
        ("x,X,PT,1,1,-5,,,,,,", "population", "greater than or equal to 0"),
        ("x,X,PT,1,1,lots,,,,,,", "population", "integer"),
        ("x,X,PT,1,1,,,global,,,,", "membership", "international"),
        ("x,X,PT,1,1,,,,,1850,,", "joined", "1900"),
        ("x,X,PT,1,1,,,,nowhere,,,", "networks", "names no row of networks"),
        (",X,PT,1,1,,,,,,,", "id", "required"),
        ("x,,PT,1,1,,,,,,,", "name", "required"),
        ("x,   ,PT,1,1,,,,,,,", "name", "required"),
        ("x,X,PT,,1,,,,,,,", "lat", "required"),
        ("x;y,X,PT,1,1,,,,,,,", "id", "list separator"),
    ],
)
def test_a_bad_city_row_is_located_and_explained(
    sqlite_store: GraphStore, tmp_path: Path, row: str, column: str, words: str
) -> None:
    report = ingest_path(_cities(tmp_path, GOOD + row + "\n"), sqlite_store)
    assert not report.written
    assert ("cities.csv", 3, column) in _errors(report)
    assert any(words in e.message for e in report.errors), [str(e) for e in report.errors]
    assert sqlite_store.snapshot().counts()["cities"] == 0  # the good row was not written either


def test_every_bad_row_is_reported_not_just_the_first(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    body = (
        GOOD
        + "a,A,XX,1,1,,,,,,,\n"
        + "b,B,PT,99,1,,,,,,,\n"
        + "c,C,PT,1,1,,,,,,,\n"
        + "d,D,PT,1,1,,,,,3000,,\n"
    )
    report = ingest_path(_cities(tmp_path, body), sqlite_store)
    assert {line for _, line, _ in _errors(report)} == {3, 4, 6}
    assert sqlite_store.revision() == 0


def test_relationship_rows_check_ranges_and_references(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    data = tiny()
    data["city_themes"] += [
        {"city_id": "pt-amadora", "theme_id": "education", "priority": 6},
        {"city_id": "nowhere", "theme_id": "education", "priority": 2},
        {"city_id": "pt-amadora", "theme_id": "anti-rumours", "priority": 1},  # duplicate key
    ]
    data["index_scores"].append({"city_id": "pt-amadora", "theme_id": "anti-rumours", "score": 101})
    data["expert_themes"].append({"expert_id": "exp-9", "theme_id": "education", "level": 3})
    data["partnerships"] += [
        {"city_a": "it-messina", "city_b": "it-messina", "kind": "visit"},
        {"city_a": "it-messina", "city_b": "pt-amadora", "kind": "project"},  # same pair reversed
        {"city_a": "it-messina", "city_b": "es-getxo", "kind": "friendship"},
        {"city_a": "it-messina", "city_b": "es-getxo", "kind": "visit", "since": 1700},
    ]
    data["practices"].append(
        {"id": "pr-2", "city_id": "pt-amadora", "title": "T", "themes": "unknown"}
    )
    data["stakeholders"].append(
        {"id": "sh-2", "name": "N", "kind": "cartel", "city_id": "it-messina"}
    )
    data["coordinators"].append({"id": "co-1", "name": "Again", "city_id": "it-messina"})
    report = ingest_path(write_csvs(tmp_path / "ds", data), sqlite_store)
    found = _errors(report)
    assert {
        ("city_themes.csv", 4, "priority"),
        ("city_themes.csv", 5, "city_id"),
        ("city_themes.csv", 6, "theme_id"),
        ("index_scores.csv", 4, "score"),
        ("expert_themes.csv", 3, "expert_id"),
        ("partnerships.csv", 4, "city_b"),
        ("partnerships.csv", 5, "kind"),
        ("partnerships.csv", 6, "kind"),
        ("partnerships.csv", 7, "since"),
        ("practices.csv", 3, "themes"),
        ("stakeholders.csv", 3, "kind"),
        ("coordinators.csv", 3, "id"),
    } <= found, sorted(found)
    messages = " ".join(e.message for e in report.errors)
    assert "cannot partner with itself" in messages and "duplicate" in messages
    assert sqlite_store.revision() == 0 and not report.written


def test_references_may_name_rows_already_stored(sqlite_store: GraphStore, tmp_path: Path) -> None:
    data = tiny()
    assert ingest_path(write_csvs(tmp_path / "a", data), sqlite_store).ok
    later = {"city_themes": [{"city_id": "es-getxo", "theme_id": "education", "priority": 2}]}
    report = ingest_path(write_csvs(tmp_path / "b", later), sqlite_store)
    assert report.ok and report.upsert.created == 1


def test_skip_invalid_writes_the_good_rows_and_whatever_depends_on_bad_ones_is_reported(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    data = tiny()
    data["cities"][0]["country"] = "ZZ"  # fo-klaksvik is bad ...
    data["city_themes"].append({"city_id": "fo-klaksvik", "theme_id": "education", "priority": 3})
    folder = write_csvs(tmp_path / "ds", data)
    strict = ingest_path(folder, sqlite_store)
    assert not strict.written and sqlite_store.revision() == 0
    report = ingest_path(folder, sqlite_store, skip_invalid=True)
    assert report.written
    assert {("cities.csv", 2, "country"), ("city_themes.csv", 4, "city_id")} <= _errors(report)
    snap = sqlite_store.snapshot()
    assert "fo-klaksvik" not in {c.id for c in snap.cities} and len(snap.cities) == 4
    assert len(snap.city_themes) == 2  # ... and so is the priority that names it


def test_reingest_is_idempotent(sqlite_store: GraphStore, tmp_path: Path) -> None:
    folder = write_csvs(tmp_path / "ds", tiny())
    first = ingest_path(folder, sqlite_store)
    again = ingest_path(folder, sqlite_store)
    assert first.upsert.created == 20 and again.upsert.changed == 0 and again.upsert.unchanged == 20


def test_bom_and_crlf_are_accepted(sqlite_store: GraphStore, tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    text = (HEADER + GOOD).replace("\n", "\r\n")
    (folder / "cities.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    report = ingest_path(folder, sqlite_store)
    assert report.ok and report.upsert.created == 1
    assert sqlite_store.snapshot().cities[0].description == "A city"


def test_bytes_that_are_not_utf8_are_rejected_with_their_line(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    data = (HEADER + GOOD).encode() + "b,Málaga,ES,36.7,-4.4,,,,,,,\n".encode("latin-1")
    (folder / "cities.csv").write_bytes(data)
    report = ingest_path(folder, sqlite_store)
    assert _errors(report) == {("cities.csv", 3, None)}
    assert "UTF-8" in report.errors[0].message and not report.written


def test_line_numbers_are_physical_lines_even_with_multiline_cells(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    body = 'a,A,PT,1,1,,,,,,,"first line\nsecond line\nthird"\n' + "b,B,XX,1,1,,,,,,,\n"
    report = ingest_path(_cities(tmp_path, body), sqlite_store)
    assert _errors(report) == {("cities.csv", 5, "country")}


def test_file_level_problems_are_reported(sqlite_store: GraphStore, tmp_path: Path) -> None:
    folder = _cities(tmp_path, GOOD, header=HEADER.replace("population", "popluation"))
    (folder / "citys.csv").write_text("id\n", encoding="utf-8")
    (folder / "themes.csv").write_text("id,name\nt,T,extra\n", encoding="utf-8")
    (folder / "networks.csv").write_text('id,name\n"broken,N\n', encoding="utf-8")
    (folder / "experts.csv").write_text("", encoding="utf-8")
    (folder / "practices.csv").write_text("id,title\n", encoding="utf-8")
    report = ingest_path(folder, sqlite_store)
    found = _errors(report)
    assert ("cities.csv", 1, "popluation") in found
    assert ("citys.csv", 0, None) in found
    assert ("themes.csv", 2, None) in found
    assert ("experts.csv", 1, None) in found
    assert ("practices.csv", 1, "city_id") in found
    assert any(e.file == "networks.csv" and e.line == 2 for e in report.errors)
    assert sqlite_store.revision() == 0


def test_optional_columns_may_be_left_out(sqlite_store: GraphStore, tmp_path: Path) -> None:
    folder = _cities(
        tmp_path, "pt-amadora,Amadora,PT,38.75,-9.23\n", header="id,name,country,lat,lon\n"
    )
    report = ingest_path(folder, sqlite_store)
    assert report.ok and sqlite_store.snapshot().cities[0].languages == ()


def test_json_dataset_reports_the_line_of_each_bad_object(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    data = tiny()
    data["cities"][1]["lat"] = 123
    data["cities"][3]["languages"] = ["es", "xx"]
    data["city_themes"][0]["priority"] = "5"  # numbers as text are fine
    text = json.dumps(data, indent=2, ensure_ascii=False)
    (tmp_path / "ds.json").write_text(text, encoding="utf-8")
    report = ingest_path(tmp_path / "ds.json", sqlite_store)
    lines = text.splitlines()
    ioannina = (
        next(i for i, line in enumerate(lines, 1) if '"gr-ioannina"' in line) - 1
    )  # the "{" line
    getxo = next(i for i, line in enumerate(lines, 1) if '"es-getxo"' in line) - 1
    assert lines[ioannina - 1].strip() == "{"
    partnership = (
        next(i for i, line in enumerate(lines, 1) if '"city_a": "gr-ioannina"' in line) - 1
    )
    assert _errors(report) == {
        ("ds.json", ioannina, "lat"),
        ("ds.json", getxo, "languages"),
        ("ds.json", partnership, "city_a"),  # it names the bad city, so it is bad too
    }
    report = ingest_path(tmp_path / "ds.json", sqlite_store, skip_invalid=True)
    assert report.upsert.created == 17


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{", "not valid JSON"),
        ('{"cities": {"id": 1}}', "array"),
        ('{"towns": [{"id": "a"}]}', "unknown key"),
        ('{"cities": [5]}', "object"),
        ('{"cities": [{"id": "a", "nmae": "A"}]}', "unknown field"),
        ("[" * 100_000 + "]" * 100_000, "JSON"),
        ('{"cities": [{"id": "a", "name": "A", "country": "PT", "lat": NaN, "lon": 1}]}', "finite"),
    ],
)
def test_malformed_json_is_reported_not_crashed(
    sqlite_store: GraphStore, tmp_path: Path, text: str, words: str
) -> None:
    (tmp_path / "ds.json").write_text(text, encoding="utf-8")
    report = ingest_path(tmp_path / "ds.json", sqlite_store)
    assert report.errors and all(e.file == "ds.json" for e in report.errors)
    assert any(words in e.message for e in report.errors), [str(e) for e in report.errors]
    assert sqlite_store.revision() == 0


def test_dry_run_counts_without_writing(sqlite_store: GraphStore, tmp_path: Path) -> None:
    report = ingest_path(write_csvs(tmp_path / "ds", tiny()), sqlite_store, dry_run=True)
    assert report.upsert.created == 20 and not report.written
    assert sqlite_store.snapshot().counts()[Kind.CITIES.value] == 0


def test_huge_fields_are_rejected_not_crashed(sqlite_store: GraphStore, tmp_path: Path) -> None:
    body = GOOD.replace("A city", "x" * 3_000_000)
    report = ingest_path(_cities(tmp_path, body), sqlite_store)
    assert _errors(report) == {("cities.csv", 2, "description")}
