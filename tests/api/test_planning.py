"""Planning on the real sample network through the API: propose, edit, accept, assign experts.

One app per store for the whole module (embedding the sample's profiles once per store).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import SAMPLE, _wipe
from tests.helpers import load_with_keys

HARD = (
    "size_bounds",
    "capacity",
    "lead",
    "common_language",
    "mixed_membership",
    "multi_country",
    "multi_network",
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('plan') / 'plan.db'}"
    else:
        url = request.getfixturevalue("neo4j_url")
        _wipe(url)
    keys = load_with_keys(url, SAMPLE)
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as c:
        yield c, keys


def test_a_proposal_meets_every_hard_constraint_and_explains_itself(
    client: tuple[TestClient, dict],
) -> None:
    c, keys = client
    r = c.post(
        "/v1/clusters/proposals",
        json={"themes": ["education", "anti-rumours"], "seed": 3},
        headers=keys["admin"],
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["clusters"] and all(s["status"] != "violated" for s in p["constraints"])
    assert {s["name"] for s in p["constraints"]} >= set(HARD)
    per_city: dict[str, int] = {}
    for cluster in p["clusters"]:
        assert 4 <= len(cluster["members"]) <= 8
        assert cluster["lead_city"] in cluster["members"] and cluster["working_languages"]
        assert any("leads" in reason["text"] for reason in cluster["reasons"])
        for m in cluster["members"]:
            per_city[m] = per_city.get(m, 0) + 1
    assert max(per_city.values()) <= 3
    assert all(u["reason"] for u in p["unassigned"])
    again = c.get(f"/v1/clusters/proposals/{p['id']}", headers=keys["analyst"]).json()
    assert again["clusters"] == p["clusters"]
    same_seed = c.post(
        "/v1/clusters/proposals",
        json={"themes": ["education", "anti-rumours"], "seed": 3},
        headers=keys["admin"],
    ).json()
    assert [x["members"] for x in same_seed["clusters"]] == [x["members"] for x in p["clusters"]]


def test_moving_the_lead_out_shows_the_broken_rule_then_accepting_writes_the_graph(
    client: tuple[TestClient, dict],
) -> None:
    c, keys = client
    p = c.post(
        "/v1/clusters/proposals", json={"themes": ["education"], "seed": 1}, headers=keys["admin"]
    ).json()
    first, second = (dict(x) for x in p["clusters"][:2])
    lead = first["lead_city"]
    first["members"] = [m for m in first["members"] if m != lead]
    second["members"] = [*second["members"], lead]
    edits = [{k: x[k] for k in ("id", "members", "theme_ids")} for x in (first, second)]
    r = c.post(
        f"/v1/clusters/proposals/{p['id']}/evaluate",
        json={"clusters": edits},
        headers=keys["admin"],
    )
    assert r.status_code == 200, r.text
    checked = r.json()
    assert {x["id"] for x in checked["clusters"]} == {first["id"], second["id"]}
    statuses = {s["name"]: s["status"] for s in checked["constraints"]}
    moved_to = next(x for x in checked["clusters"] if x["id"] == second["id"])
    assert lead in moved_to["members"]
    left = next(x for x in checked["clusters"] if x["id"] == first["id"])
    assert lead not in left["members"] and left["lead_city"] != lead
    assert set(HARD) <= set(statuses)  # every rule is re-checked after the move
    assert (
        c.post(
            f"/v1/clusters/proposals/{p['id']}/evaluate",
            json={"clusters": edits},
            headers=keys["analyst"],
        ).status_code
        == 403
    )
    r = c.post(
        f"/v1/clusters/proposals/{p['id']}/accept",
        json={"period": "2025-2027"},
        headers=keys["admin"],
    )
    assert r.status_code == 200, r.text
    accepted = r.json()["accepted"]
    assert len(accepted) == len(p["clusters"]) and all(a["period"] == "2025-2027" for a in accepted)
    assert {s["name"]: s["status"] for s in r.json()["constraints"]} == {
        s["name"]: s["status"] for s in p["constraints"]
    }
    listed = c.get("/v1/clusters", params={"limit": 500}, headers=keys["analyst"]).json()["items"]
    assert {a["id"] for a in accepted} <= {x["id"] for x in listed}
    assert all(x["revision"] == p["revision"] and x["params"] for x in listed)
    twice = c.post(f"/v1/clusters/proposals/{p['id']}/accept", json={}, headers=keys["admin"])
    assert twice.status_code == 409


def test_an_edit_that_breaks_a_rule_is_accepted_with_the_break_on_record(
    client: tuple[TestClient, dict],
) -> None:
    c, keys = client
    p = c.post(
        "/v1/clusters/proposals",
        json={"themes": ["anti-rumours"], "seed": 5},
        headers=keys["admin"],
    ).json()
    cut = dict(p["clusters"][0])
    cut["members"] = cut["members"][:2]  # below min_size 4
    edit = [{k: cut[k] for k in ("id", "members", "theme_ids")}]
    r = c.post(
        f"/v1/clusters/proposals/{p['id']}/accept", json={"clusters": edit}, headers=keys["admin"]
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["accepted"]) == 1
    assert set(body["accepted"][0]["members"]) == set(cut["members"])
    size = next(s for s in body["constraints"] if s["name"] == "size_bounds")
    assert size["status"] == "violated" and size["violated"] == 1


def test_experts_are_assigned_optimally_with_reasons(client: tuple[TestClient, dict]) -> None:
    c, keys = client
    listed = c.get("/v1/clusters", headers=keys["admin"]).json()["items"]
    if not listed:
        p = c.post(
            "/v1/clusters/proposals", json={"themes": ["education"]}, headers=keys["admin"]
        ).json()
        c.post(f"/v1/clusters/proposals/{p['id']}/accept", json={}, headers=keys["admin"])
        listed = c.get("/v1/clusters", headers=keys["admin"]).json()["items"]
    ids = [x["id"] for x in listed[:4]]
    r = c.post(
        "/v1/experts/assignments",
        json={"cluster_ids": ids, "per_cluster": 1},
        headers=keys["admin"],
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert {p["cluster_id"] for p in out["pairs"]} | {
        u["cluster_id"] for u in out["unserved"]
    } == set(ids)
    assert all(p["reasons"] and p["expert_name"] for p in out["pairs"])
    caps = {load["expert_id"]: load for load in out["loads"]}
    assert all(load["assigned"] <= load["capacity"] for load in caps.values())
    fair = c.post(
        "/v1/experts/assignments", json={"cluster_ids": ids, "fair": True}, headers=keys["admin"]
    ).json()
    assert fair["fair"] is True and fair["objective"] <= out["objective"] + 1e-9
    missing = c.post(
        "/v1/experts/assignments", json={"cluster_ids": ["nope"]}, headers=keys["admin"]
    )
    assert missing.status_code == 404


def test_an_infeasible_request_says_what_to_relax(client: tuple[TestClient, dict]) -> None:
    c, keys = client
    r = c.post(
        "/v1/clusters/proposals",
        json={"themes": ["roma"], "min_size": 40, "max_size": 45},
        headers=keys["admin"],
    )
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "lower min_size" in r.json()["detail"] or "relax" in r.json()["detail"]
