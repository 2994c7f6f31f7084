"""Small datasets and file writers for tests (test doubles live only in tests/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graph.csv_format import csv_writer
from graph.model import SPECS, Kind
from graph.store import GraphBatch
from ingest.read import read_dataset
from ingest.validate import check_rows

HOSTILE = [
    'Robert"); DROP TABLE nodes;--',
    "x' OR '1'='1",
    "MATCH (n) DETACH DELETE n //",
    "}) WITH n MATCH (m) DETACH DELETE m //",
    '=HYPERLINK("http://evil","click")',
    "<script>alert('x')</script>",
    "line one\nline two, with comma; and semicolon",
    "$rows {id: 'x'}",
]


def tiny() -> dict[str, list[dict[str, Any]]]:
    """A five-city network with Unicode names and every kind of row."""
    return {
        "networks": [
            {"id": "cdd", "name": "Città del Dialogo", "country": "IT"},
            {"id": "reci", "name": "RECI", "country": "ES"},
        ],
        "themes": [
            {"id": "anti-rumours", "name": "Anti-rumours", "description": "Countering prejudice."},
            {"id": "education", "name": "Education", "description": "Schools and learning."},
        ],
        "cities": [
            {
                "id": "fo-klaksvik",
                "name": "Klaksvík",
                "country": "FO",
                "lat": 62.2266,
                "lon": -6.589,
                "languages": "fo;da;en",
                "membership": "international",
            },
            {
                "id": "gr-ioannina",
                "name": "Ιωάννινα",
                "country": "GR",
                "lat": 39.665,
                "lon": 20.8537,
                "population": 112486,
                "languages": "el;en",
                "membership": "international",
                "joined": 2015,
            },
            {
                "id": "it-messina",
                "name": "Messina",
                "country": "IT",
                "lat": 38.1938,
                "lon": 15.554,
                "languages": "it;en",
                "membership": "national",
                "networks": "cdd",
                "coordinator_hours": 12.5,
                "description": "Port city on the Strait.",
            },
            {
                "id": "es-getxo",
                "name": "Getxo",
                "country": "ES",
                "lat": 43.3569,
                "lon": -3.0116,
                "languages": "es;eu;en",
                "membership": "national",
                "networks": "reci",
            },
            {
                "id": "pt-amadora",
                "name": "Amadora",
                "country": "PT",
                "lat": 38.7538,
                "lon": -9.2308,
                "languages": "pt;en",
                "membership": "international",
            },
        ],
        "experts": [
            {
                "id": "exp-1",
                "name": "Ana Exemplo",
                "languages": "pt;en",
                "country": "PT",
                "max_assignments": 2,
                "bio": "Works on anti-rumours campaigns.",
            },
        ],
        "coordinators": [
            {
                "id": "co-1",
                "name": "Maria Invent",
                "city_id": "it-messina",
                "network_id": "cdd",
                "role": "national",
                "languages": "it",
                "hours_per_month": 10,
            },
        ],
        "stakeholders": [
            {
                "id": "sh-1",
                "name": "Casa Aperta",
                "kind": "ngo",
                "city_id": "it-messina",
                "themes": "anti-rumours",
                "description": "Volunteers.",
            },
        ],
        "practices": [
            {
                "id": "pr-1",
                "city_id": "pt-amadora",
                "title": "Rumourless Amadora",
                "themes": "anti-rumours;education",
                "year": 2017,
                "description": "A campaign.",
            },
        ],
        "city_themes": [
            {"city_id": "pt-amadora", "theme_id": "anti-rumours", "priority": 5},
            {"city_id": "it-messina", "theme_id": "anti-rumours", "priority": 4},
        ],
        "index_scores": [
            {"city_id": "pt-amadora", "theme_id": "education", "score": 82},
            {"city_id": "it-messina", "theme_id": "education", "score": 35.5},
        ],
        "expert_themes": [{"expert_id": "exp-1", "theme_id": "anti-rumours", "level": 4}],
        "partnerships": [
            {"city_a": "pt-amadora", "city_b": "it-messina", "kind": "project", "since": 2016},
            {"city_a": "gr-ioannina", "city_b": "pt-amadora", "kind": "project"},
        ],
    }


def write_csvs(folder: Path, data: dict[str, list[dict[str, Any]]]) -> Path:
    """Write a dataset as CSV files, one column per key found in that kind's rows."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, rows in data.items():
        all_columns = SPECS[Kind(stem)].columns
        columns = (
            [c for c in all_columns if any(c in r for r in rows)] if rows else list(all_columns)
        )
        with (folder / f"{stem}.csv").open("w", encoding="utf-8", newline="") as fh:
            out = csv_writer(fh)
            out.writerow(columns)
            for row in rows:
                out.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return folder


def batch_of(folder: Path) -> GraphBatch:
    """A validated batch from a folder, failing loudly if the test data itself is bad."""
    raw = read_dataset(folder)
    checked = check_rows(raw.rows, lambda kind: set())
    errors = raw.errors + checked.errors
    assert not errors, [str(e) for e in errors]
    return checked.batch


def wait_ready(client: Any, timeout_s: float = 120) -> dict[str, Any]:
    """``/health/ready``'s body once it says ready (a server prepares its first revision
    before it is ready; the wait is bounded, and a server that never gets there fails)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get("/health/ready")
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return dict(r.json())
        assert r.status_code == 503, r.text
        time.sleep(0.05)


def wait_serving(client: Any, revision: int, timeout_s: float = 60) -> dict[str, Any]:
    """``/health/ready``'s body once the server answers from ``revision`` (a revision
    written elsewhere, or by an API ingest, is prepared in the background first)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        body = dict(client.get("/health/ready").json())
        if body["preparation"]["serving_revision"] == revision:
            return body
        assert time.monotonic() < deadline, f"revision {revision} not served: {body}"
        time.sleep(0.05)


def load_with_keys(url: str, data: Path, roles: tuple[str, ...] = ("admin", "analyst")) -> dict:
    """Ingest ``data`` into the store at ``url`` and make one key per role: each role's
    ``Authorization`` header, as a test client sends it."""
    from api.keys import create_key
    from graph.open import open_store
    from ingest.load import ingest_path

    store = open_store(url)
    try:
        assert ingest_path(data, store).ok
        return {role: {"Authorization": f"Bearer {create_key(store, role)[0]}"} for role in roles}
    finally:
        store.close()
