"""Memory across cycles: a list remembered as shown to a city marks (or hides) those
partners in the next lists, through the API, the CLI and the setting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.keys import create_key
from api.settings import Settings
from graph.open import open_store
from ingest.load import ingest_path
from matching.partners.memory import suggested_before, words
from tests.helpers import tiny, wait_ready, write_csvs

runner = CliRunner()
Served = tuple[TestClient, dict[str, dict[str, str]], str]
MESSINA = "/v1/cities/it-messina"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("memory")
    url = f"sqlite:///{tmp}/net.db"
    store = open_store(url)
    try:
        assert ingest_path(write_csvs(tmp / "ds", tiny()), store).ok
        keys = {
            name: {"Authorization": f"Bearer {create_key(store, role, city_id=city)[0]}"}
            for name, role, city in (
                ("admin", "admin", None),
                ("analyst", "analyst", None),
                ("messina", "coordinator", "it-messina"),
                ("getxo", "coordinator", "es-getxo"),
            )
        }
    finally:
        store.close()
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client, keys, url


def _list(client: TestClient, keys: dict[str, str], query: str = "") -> dict[str, object]:
    r = client.get(f"{MESSINA}/partners?k=10&include_current=true{query}", headers=keys)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_remembered_list_marks_its_partners_and_hides_them_when_asked(served: Served) -> None:
    client, keys, _ = served
    first = _list(client, keys["messina"])
    ids = [s["city_id"] for s in first["suggestions"]]  # type: ignore[attr-defined]
    assert len(ids) >= 3 and not any(s["suggested_before"] for s in first["suggestions"])  # type: ignore[attr-defined]
    shown, rest = ids[:2], ids[2:]

    r = client.post(
        f"{MESSINA}/suggestions",
        json={"partner_ids": shown, "on": "2026-03-02"},
        headers=keys["messina"],
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"city_id": "it-messina", "on": "2026-03-02", "remembered": 2}
    marked = {s["city_id"]: s for s in _list(client, keys["messina"])["suggestions"]}  # type: ignore[attr-defined]
    for rank, city in enumerate(shown, 1):
        before = marked[city]["suggested_before"]
        assert before == {
            "first_on": "2026-03-02",
            "last_on": "2026-03-02",
            "rank": rank,
            "times": 1,
            "answer": None,
        }
        assert marked[city]["reasons"][0] == {
            "kind": "suggested_before",
            "text": f"Suggested on 2 March 2026 (rank {rank}); no answer yet",
            "weight": 0.0,
        }
    assert all(marked[c]["suggested_before"] is None for c in rest)

    # the next cycle: shown again in the other order, and the city answered one of them
    r = client.post(
        f"{MESSINA}/suggestions",
        json={"partner_ids": shown[::-1], "on": "2026-09-14"},
        headers=keys["admin"],
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"{MESSINA}/interests",
        json={"partner_id": shown[0], "status": "interested"},
        headers=keys["messina"],
    )
    assert r.status_code == 200, r.text
    marked = {s["city_id"]: s for s in _list(client, keys["messina"])["suggestions"]}  # type: ignore[attr-defined]
    assert marked[shown[0]]["reasons"][0]["text"] == (
        "Suggested 2 times, first on 2 March 2026, last on 14 September 2026 (rank 2); "
        "you answered interested"
    )

    hidden = _list(client, keys["messina"], "&again=hide")
    left = [s["city_id"] for s in hidden["suggestions"]]  # type: ignore[attr-defined]
    assert not set(left) & set(shown) and set(rest) <= set(left)
    assert hidden["hidden_as_suggested"] == 2
    forced = _list(client, keys["messina"], f"&again=hide&force={shown[1]}")
    assert shown[1] in [s["city_id"] for s in forced["suggestions"]]  # type: ignore[attr-defined]

    mine = client.get(f"{MESSINA}/interests", headers=keys["messina"]).json()
    assert [(s["partner_id"], s["times"], s["rank"]) for s in mine["suggested"]] == [
        (shown[1], 2, 1),
        (shown[0], 2, 2),
    ]
    rows = client.get("/v1/suggestions?city_id=it-messina", headers=keys["analyst"]).json()
    assert sorted((r["on"], r["rank"]) for r in rows["items"]) == [
        ("2026-03-02", 1),
        ("2026-03-02", 2),
        ("2026-09-14", 1),
        ("2026-09-14", 2),
    ]


def test_only_the_city_or_the_secretariat_remembers_and_bad_lists_are_refused(
    served: Served,
) -> None:
    client, keys, _ = served
    body = {"partner_ids": ["es-getxo"]}
    assert (
        client.post(f"{MESSINA}/suggestions", json=body, headers=keys["getxo"]).status_code == 403
    )
    assert (
        client.post(f"{MESSINA}/suggestions", json=body, headers=keys["analyst"]).status_code == 403
    )
    r = client.post(
        f"{MESSINA}/suggestions", json={"partner_ids": ["xx-nowhere"]}, headers=keys["admin"]
    )
    assert r.status_code == 422 and "xx-nowhere" in r.text
    assert r.headers["content-type"] == "application/problem+json"
    r = client.post(
        f"{MESSINA}/suggestions",
        json={"partner_ids": ["es-getxo", "es-getxo"]},
        headers=keys["admin"],
    )
    assert r.status_code == 422 and "named twice: es-getxo" in r.text
    r = client.post(
        f"{MESSINA}/suggestions", json={"partner_ids": ["it-messina"]}, headers=keys["admin"]
    )
    assert r.status_code == 422 and "cannot be suggested to itself" in r.text


def test_the_cli_remembers_a_list_and_the_setting_hides_it(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, url = served

    def partners(*args: str) -> dict[str, object]:
        out = runner.invoke(
            cli, ["partners", "es-getxo", "--include-current", "--json", "--store", url, *args]
        )
        assert out.exit_code == 0, out.output
        return dict(json.loads(out.stdout))

    shown = partners("--k", "1", "--remember")
    (first,) = shown["results"][0]["suggestions"]  # type: ignore[index]
    assert shown["remembered"][0]["remembered"] == 1  # type: ignore[index]
    again = partners()["results"][0]["suggestions"]  # type: ignore[index]
    assert next(s for s in again if s["city_id"] == first["city_id"])["suggested_before"]
    hidden = partners("--again", "hide")["results"][0]  # type: ignore[index]
    assert first["city_id"] not in [s["city_id"] for s in hidden["suggestions"]]
    monkeypatch.setenv("ICCMATCH_SUGGESTIONS_AGAIN", "hide")
    from api.settings import get_settings

    get_settings.cache_clear()
    try:
        by_setting = partners()["results"][0]  # type: ignore[index]
    finally:
        get_settings.cache_clear()
    assert by_setting["hidden_as_suggested"] == 1
    text = runner.invoke(cli, ["partners", "es-getxo", "--again", "hide", "--store", url])
    words = " ".join(text.stdout.split())
    assert "Partners for Getxo (es-getxo)" in words  # the city by name, not only its id
    assert "1 partner suggested before left out" in words
    bad = runner.invoke(cli, ["partners", "es-getxo", "--again", "never", "--store", url])
    assert bad.exit_code != 0 and "--again is mark or hide" in bad.output


def test_the_mark_words_when_and_what_the_city_answered() -> None:
    history = suggested_before(
        [("a", "b", "2026-09-14", 1), ("a", "b", "2026-03-02", 4), ("a", "c", "2026-03-02", 2)],
        [("a", "c", "not_for_us")],
    )
    assert words(history["a"]["b"]) == (
        "Suggested 2 times, first on 2 March 2026, last on 14 September 2026 (rank 1); "
        "no answer yet"
    )
    assert words(history["a"]["c"]) == "Suggested on 2 March 2026 (rank 2); you answered not for us"
