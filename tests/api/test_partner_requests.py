"""What a planner asks of partner lists, through the API and the CLI: a shared working
language unless interpretation is allowed, forced and forbidden partners, mutual matches
for the secretariat and for each coordinator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.keys import create_key
from api.settings import Settings
from graph.open import open_store
from ingest.load import ingest_path
from matching.partners.interests import mutual_matches
from tests.helpers import tiny, wait_ready, wait_serving, write_csvs

runner = CliRunner()
Served = tuple[TestClient, dict[str, dict[str, str]], str]


def _network() -> dict[str, list[dict[str, object]]]:
    """The tiny network, with Klaksvík speaking only Faroese and Danish: it shares no
    working language with Messina (Italian, English)."""
    data = tiny()
    data["cities"][0]["languages"] = "fo;da"
    return data


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], str]]:
    tmp = tmp_path_factory.mktemp("partner-requests")
    url = f"sqlite:///{tmp}/net.db"
    store = open_store(url)
    try:
        assert ingest_path(write_csvs(tmp / "ds", _network()), store).ok
        keys = {
            role: {"Authorization": f"Bearer {create_key(store, role, city_id=city)[0]}"}
            for role, city in (
                ("admin", None),
                ("analyst", None),
                ("coordinator", "it-messina"),
            )
        }
        keys["getxo"] = {
            "Authorization": f"Bearer {create_key(store, 'coordinator', city_id='es-getxo')[0]}"
        }
    finally:
        store.close()
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client, keys, url


def _ids(r: httpx.Response) -> list[str]:
    return [s["city_id"] for s in r.json()["suggestions"]]


def test_partners_share_a_working_language_unless_interpretation_is_allowed(served: Served) -> None:
    client, keys, _ = served
    r = client.get(
        "/v1/cities/it-messina/partners?k=10&include_current=true", headers=keys["admin"]
    )
    assert r.status_code == 200
    assert "fo-klaksvik" not in _ids(r) and r.json()["considered"] == 3
    r = client.get(
        "/v1/cities/it-messina/partners?k=10&include_current=true&interpretation=true",
        headers=keys["admin"],
    )
    assert "fo-klaksvik" in _ids(r) and r.json()["considered"] == 4
    # "speaks X" is another question: only Klaksvík speaks Danish
    r = client.get(
        "/v1/cities/it-messina/partners?language=da&interpretation=true", headers=keys["admin"]
    )
    assert _ids(r) == ["fo-klaksvik"]


def test_forced_and_forbidden_partners(served: Served) -> None:
    client, keys, _ = served
    base = "/v1/cities/it-messina/partners?k=1"
    top = _ids(client.get(base, headers=keys["coordinator"]))
    assert len(top) == 1
    r = client.get(f"{base}&forbid={top[0]}", headers=keys["coordinator"])
    assert r.status_code == 200 and top[0] not in _ids(r)
    r = client.get(f"{base}&force=fo-klaksvik", headers=keys["coordinator"])
    (forced,) = r.json()["suggestions"]
    assert forced["city_id"] == "fo-klaksvik" and forced["forced"]
    assert "Listed because you asked for it" in [x["text"] for x in forced["reasons"]]
    r = client.get(f"{base}&force=es-getxo&forbid=es-getxo", headers=keys["coordinator"])
    assert r.status_code == 422 and "both forced and forbidden" in r.json()["detail"]
    assert r.headers["content-type"] == "application/problem+json"
    r = client.get(f"{base}&force=xx-nowhere", headers=keys["coordinator"])
    assert r.status_code == 404 and "xx-nowhere" in r.json()["detail"]


def test_mutual_matches_for_the_secretariat_and_each_coordinator(served: Served) -> None:
    client, keys, url = served
    said = {"partner_id": "es-getxo", "status": "interested", "note": "youth exchanges"}
    assert (
        client.post(
            "/v1/cities/it-messina/interests", json=said, headers=keys["coordinator"]
        ).status_code
        == 200
    )
    assert client.get("/v1/interests/mutual", headers=keys["analyst"]).json() == []
    back = {"partner_id": "it-messina", "status": "interested"}
    assert (
        client.post("/v1/cities/es-getxo/interests", json=back, headers=keys["getxo"]).status_code
        == 200
    )

    (match,) = client.get("/v1/interests/mutual", headers=keys["analyst"]).json()
    assert (match["city_a"], match["city_b"]) == ("es-getxo", "it-messina")
    assert match["reasons"][0]["text"] == 'Getxo and Messina each answered "interested"'
    assert "Messina about Getxo: youth exchanges" in [x["text"] for x in match["reasons"]]

    mine = client.get("/v1/cities/it-messina/interests", headers=keys["coordinator"]).json()
    assert [a["partner_id"] for a in mine["given"]] == ["es-getxo"]
    assert [a["city_id"] for a in mine["received"]] == ["es-getxo"]
    assert [m["city_b"] for m in mine["mutual"]] == ["it-messina"]
    # a coordinator sees its own city only; the secretariat's list stays theirs
    assert (
        client.get("/v1/cities/es-getxo/interests", headers=keys["coordinator"]).status_code == 403
    )
    assert client.get("/v1/interests/mutual", headers=keys["coordinator"]).status_code == 403

    # the CLI shows the same
    out = runner.invoke(cli, ["interests", "--mutual", "--json", "--store", url])
    assert out.exit_code == 0, out.output
    assert [m["city_a"] for m in json.loads(out.stdout)["mutual"]] == ["es-getxo"]
    out = runner.invoke(cli, ["interests", "--city", "it-messina", "--store", url])
    assert out.exit_code == 0 and "Getxo <-> Messina" in out.stdout
    assert "Messina -> Getxo: interested (youth exchanges)" in out.stdout


def test_the_cli_takes_the_same_partner_requests(served: Served) -> None:
    _, _, url = served

    def ids(*args: str) -> list[str]:
        out = runner.invoke(cli, ["partners", "it-messina", "--json", "--store", url, *args])
        assert out.exit_code == 0, out.output
        return [s["city_id"] for s in json.loads(out.stdout)["results"][0]["suggestions"]]

    assert "fo-klaksvik" not in ids("--include-current")
    assert "fo-klaksvik" in ids("--include-current", "--allow-interpretation")
    assert ids("--k", "1", "--force", "fo-klaksvik") == ["fo-klaksvik"]
    assert "es-getxo" not in ids("--forbid", "es-getxo")
    bad = runner.invoke(
        cli,
        ["partners", "it-messina", "--force", "es-getxo", "--forbid", "es-getxo", "--store", url],
    )
    assert bad.exit_code == 2 and "both forced and forbidden" in bad.output


def test_mutual_matches_are_each_pair_once_with_both_notes() -> None:
    answers = [
        ("b", "a", "interested", "from b"),
        ("a", "b", "interested", None),
        ("a", "c", "interested", None),
        ("c", "a", "not_for_us", None),
        ("d", "c", "interested", None),
        ("c", "d", "interested", "from c"),
    ]
    names = {"a": "Alpha", "b": "Beta", "c": "Gamma", "d": "Delta"}
    matches = mutual_matches(answers, names)
    assert [(m.city_a, m.city_b) for m in matches] == [("a", "b"), ("c", "d")]
    ab = matches[0]
    assert (ab.note_a, ab.note_b) == (None, "from b")
    assert [r.text for r in ab.reasons] == [
        'Alpha and Beta each answered "interested"',
        "Beta about Alpha: from b",
        "Not introduced yet",
    ]
    assert [(m.city_a, m.city_b) for m in mutual_matches(answers, names, "d")] == [("c", "d")]
    assert mutual_matches(answers, names, "b")[0].name_b == "Beta"


def test_a_partner_already_in_an_accepted_cluster_with_the_city_says_so(served: Served) -> None:
    client, keys, url = served
    cluster = {
        "id": "edu-1",
        "name": "Education 1",
        "kind": "thematic",
        "members": ["it-messina", "pt-amadora", "es-getxo"],
        "theme_ids": ["education"],
        "period": "2025-2027",
    }
    store = open_store(url)  # accepted elsewhere (the CLI): the server prepares it unasked
    try:
        (tmp := Path(url.removeprefix("sqlite:///")).parent / "cluster.json").write_text(
            json.dumps({"clusters": [cluster]}), encoding="utf-8"
        )
        assert ingest_path(tmp, store).written
        revision = store.revision()
    finally:
        store.close()
    wait_serving(client, revision)
    r = client.get("/v1/cities/it-messina/partners?k=10", headers=keys["admin"])
    by_id = {s["city_id"]: [x["text"] for x in s["reasons"]] for s in r.json()["suggestions"]}
    said = "Already with you in the accepted cluster Education 1 (2025-2027)"
    assert by_id["es-getxo"][0] == said
    assert all(said not in texts for city, texts in by_id.items() if city != "es-getxo")


def test_the_follow_up_of_a_match_with_dates_down_to_a_signed_partnership(
    served: Served,
) -> None:
    client, keys, url = served
    for city, other, key in (
        ("it-messina", "es-getxo", "coordinator"),
        ("es-getxo", "it-messina", "getxo"),
    ):
        said = {"partner_id": other, "status": "interested"}
        assert (
            client.post(f"/v1/cities/{city}/interests", json=said, headers=keys[key]).status_code
            == 200
        )
    step = {  # in either order: the pair is stored in id order
        "city_a": "it-messina",
        "city_b": "es-getxo",
        "status": "introduced",
        "on": "2025-01-10",
    }
    r = client.post("/v1/interests/mutual/status", json=step, headers=keys["admin"])
    assert r.status_code == 200, r.text
    match = r.json()
    assert (match["city_a"], match["city_b"], match["status"]) == (
        "es-getxo",
        "it-messina",
        "introduced",
    )
    assert match["follow_up_due"]  # more than six months ago, nothing since
    texts = [x["text"] for x in match["reasons"]]
    assert "Introduced on 10 January 2025" in texts
    assert "Ask how it went: introduced on 10 January 2025, nothing recorded since" in texts

    # only the secretariat records steps, only for mutual matches, only real dates
    assert (
        client.post(
            "/v1/interests/mutual/status", json=step, headers=keys["coordinator"]
        ).status_code
        == 403
    )
    lone = {**step, "city_a": "fo-klaksvik"}
    r = client.post("/v1/interests/mutual/status", json=lone, headers=keys["admin"])
    assert r.status_code == 409 and "not a mutual match" in r.json()["detail"]
    r = client.post(
        "/v1/interests/mutual/status", json={**step, "on": "2025-02-30"}, headers=keys["admin"]
    )
    assert r.status_code == 422
    r = client.post(
        "/v1/interests/mutual/status", json={**step, "status": "married"}, headers=keys["admin"]
    )
    assert r.status_code == 422

    # the CLI records the next step; a signed partnership becomes a partnership
    out = runner.invoke(
        cli,
        [
            "follow-up",
            "it-messina",
            "es-getxo",
            "partnership_signed",
            "--on",
            "2025-09-01",
            "--note",
            "signed in Lisbon",
            "--store",
            url,
        ],
    )
    assert out.exit_code == 0, out.output
    assert "Partnership signed on 1 September 2025" in out.stdout
    (match,) = [
        m
        for m in client.get("/v1/interests/mutual", headers=keys["analyst"]).json()
        if m["city_a"] == "es-getxo"
    ]
    assert match["status"] == "partnership_signed" and not match["follow_up_due"]
    assert [h[0] for h in match["history"]] == ["introduced", "partnership_signed"]
    ties = client.get("/v1/partnerships", headers=keys["analyst"]).json()["items"]
    assert {
        "city_a": "es-getxo",
        "city_b": "it-messina",
        "kind": "agreement",
        "since": 2025,
    } in ties
    # the next cycle: a partner now, not suggested again unless current partners are asked for
    store = open_store(url)  # the CLI wrote: the server prepares that revision unasked
    try:
        wait_serving(client, store.revision())
    finally:
        store.close()
    base = "/v1/cities/it-messina/partners?k=10"
    assert "es-getxo" not in _ids(client.get(base, headers=keys["admin"]))
    assert "es-getxo" in _ids(client.get(f"{base}&include_current=true", headers=keys["admin"]))


def test_an_answer_from_the_cli_and_the_mutual_match_it_makes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/answers.db"
    store = open_store(url)
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", _network()), store).ok
    finally:
        store.close()
    first = runner.invoke(
        cli, ["answer", "gr-ioannina", "fo-klaksvik", "interested", "--store", url]
    )
    assert first.exit_code == 0 and "mutual match" not in first.stdout
    second = runner.invoke(
        cli,
        ["answer", "fo-klaksvik", "gr-ioannina", "interested", "--note", "ferries", "--store", url],
    )
    assert second.exit_code == 0 and "mutual match: Klaksvík and Ιωάννινα" in second.stdout
    bad = runner.invoke(cli, ["answer", "fo-klaksvik", "gr-ioannina", "maybe", "--store", url])
    assert bad.exit_code == 2 and "interested" in bad.output
