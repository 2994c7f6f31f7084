"""Proposals as first-class things on the real sample network, through the API and the CLI:
list, show, compare, evaluate, discard; keep-apart and keep-together; the planner's lead.

One store and app for the module (embedding the sample's profiles once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.settings import Settings
from tests.conftest import SAMPLE
from tests.helpers import load_with_keys

runner = CliRunner()


@pytest.fixture(scope="module")
def planner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('proposals') / 'p.db'}"
    keys = load_with_keys(url, SAMPLE)
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as c:
        yield c, keys, url


def propose(c: TestClient, keys: dict, **body: object) -> dict:
    r = c.post("/v1/clusters/proposals", json={"kind": "geographic", **body}, headers=keys["admin"])
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_list_show_compare_and_discard(planner: tuple[TestClient, dict, str]) -> None:
    c, keys, _ = planner
    first = propose(c, keys, seed=0)
    second = propose(c, keys, seed=0, max_span_km=900)
    r = c.get("/v1/clusters/proposals", headers=keys["analyst"])
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    ids = [x["id"] for x in items]
    assert ids.index(second["id"]) < ids.index(first["id"])  # newest first
    row = items[ids.index(first["id"])]
    assert row["status"] == "proposed" and row["kind"] == "geographic"
    assert row["n_clusters"] == len(first["clusters"]) and row["objective"] == first["objective"]
    assert row["revision"] == first["revision"] and row["created"] == first["created"]

    shown = c.get(f"/v1/clusters/proposals/{first['id']}", headers=keys["analyst"]).json()
    assert shown["clusters"] == first["clusters"] and shown["status"] == "proposed"

    cmp = c.get(
        f"/v1/clusters/proposals/{first['id']}/compare/{second['id']}", headers=keys["analyst"]
    )
    assert cmp.status_code == 200, cmp.text
    body = cmp.json()
    assert (body["a"], body["b"]) == (first["id"], second["id"])
    # a tighter span regroups the sample: someone moves or leaves, and the reasons say so
    assert body["moved"] or body["left_out"] or body["added"]
    assert not body["same_clusters"]
    rules = {x["name"] for x in body["rules"]}
    assert "max_span" in rules
    terms = {t["name"]: t for t in body["terms"]}
    assert terms["objective"]["before"] == pytest.approx(first["objective"])
    assert terms["objective"]["after"] == pytest.approx(second["objective"])
    same = c.get(
        f"/v1/clusters/proposals/{first['id']}/compare",
        params={"with": first["id"]},
        headers=keys["analyst"],
    ).json()
    assert same["same_clusters"] and not same["moved"]
    assert (
        c.get(f"/v1/clusters/proposals/{first['id']}/compare/nope", headers=keys["analyst"])
    ).status_code == 404

    assert (
        c.post(
            f"/v1/clusters/proposals/{second['id']}/discard", headers=keys["analyst"]
        ).status_code
        == 403
    )
    r = c.post(f"/v1/clusters/proposals/{second['id']}/discard", headers=keys["admin"])
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    listed = {
        x["id"]: x["status"]
        for x in c.get("/v1/clusters/proposals", headers=keys["analyst"]).json()["items"]
    }
    assert listed[second["id"]] == "discarded"
    r = c.post(f"/v1/clusters/proposals/{second['id']}/accept", json={}, headers=keys["admin"])
    assert r.status_code == 409 and "discarded" in r.json()["detail"]


def test_the_planners_lead_is_honoured_or_refused_with_why(
    planner: tuple[TestClient, dict, str],
) -> None:
    c, keys, _ = planner
    p = propose(c, keys, seed=0)
    dublin = next(x for x in p["clusters"] if "ie-dublin" in x["members"])
    other = next(x for x in p["clusters"] if "ie-dublin" not in x["members"])
    edits = [
        {**{k: x[k] for k in ("id", "members", "theme_ids")}, "lead_city": "ie-dublin"}
        for x in (dublin, other)
    ]
    r = c.post(
        f"/v1/clusters/proposals/{p['id']}/evaluate",
        json={"clusters": edits},
        headers=keys["admin"],
    )
    assert r.status_code == 200, r.text
    out = {x["id"]: x for x in r.json()["clusters"]}
    kept = out[dublin["id"]]
    assert kept["lead_city"] == "ie-dublin" and kept["lead_request"]["honoured"]
    refused = out[other["id"]]
    req = refused["lead_request"]
    assert not req["honoured"] and refused["lead_city"] != "ie-dublin"
    assert req["reason"].startswith("Dublin (ie-dublin) cannot lead: it is not a member")
    assert req["could_lead"] and refused["lead_city"] in req["could_lead"]
    assert set(req["could_lead"]) <= set(other["members"])
    # no internal slot ids in what the planner reads
    assert not any("slot" in reason["text"] for x in out.values() for reason in x["reasons"])
    # accepting the edit keeps the lead the planner chose
    r = c.post(
        f"/v1/clusters/proposals/{p['id']}/accept",
        json={"clusters": edits[:1]},
        headers=keys["admin"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"][0]["lead_city"] == "ie-dublin"
    status = c.get(f"/v1/clusters/proposals/{p['id']}", headers=keys["analyst"]).json()["status"]
    assert status == "accepted"
    assert (
        c.post(f"/v1/clusters/proposals/{p['id']}/discard", headers=keys["admin"]).status_code
        == 409
    )


def test_keep_apart_and_keep_together_through_the_api(
    planner: tuple[TestClient, dict, str],
) -> None:
    c, keys, _ = planner
    plain = propose(c, keys, seed=0)
    a, b = plain["clusters"][0]["members"][:2]
    x, y, z = plain["clusters"][1]["members"][:3]
    p = propose(c, keys, seed=0, keep_apart=[[a, b]], keep_together=[[x, z]])
    assert not any(a in k["members"] and b in k["members"] for k in p["clusters"])
    assert any(x in k["members"] and z in k["members"] for k in p["clusters"])
    statuses = {s["name"]: s["status"] for s in p["constraints"]}
    assert statuses["keep_apart"] == "satisfied" and statuses["locked"] == "satisfied"
    assert p["params"]["keep_apart"] == [sorted([a, b])]

    r = c.post(
        "/v1/clusters/proposals",
        json={"kind": "geographic", "keep_apart": [[x, z]], "keep_together": [[x, y, z]]},
        headers=keys["admin"],
    )
    assert r.status_code == 409 and x in r.json()["detail"] and z in r.json()["detail"]
    # an edit that puts a kept-apart pair in one cluster is refused, naming the pair
    edit = [{"id": "mine", "members": [a, b, x, y], "theme_ids": []}]
    r = c.post(
        f"/v1/clusters/proposals/{p['id']}/evaluate", json={"clusters": edit}, headers=keys["admin"]
    )
    assert r.status_code == 409 and a in r.json()["detail"] and b in r.json()["detail"]
    r = c.post(
        f"/v1/clusters/proposals/{plain['id']}/evaluate",
        json={"clusters": edit, "keep_apart": [[x, y]]},
        headers=keys["admin"],
    )
    assert r.status_code == 409 and "'mine'" in r.json()["detail"]


def test_the_cli_lists_shows_compares_evaluates_and_discards(
    planner: tuple[TestClient, dict, str], tmp_path: Path
) -> None:
    _, _, url = planner
    made = runner.invoke(
        cli,
        [
            "clusters",
            "propose",
            "--kind",
            "geographic",
            "--store",
            url,
            "--json",
            "--keep-apart",
            "ie-dublin,ie-limerick",
        ],
    )
    assert made.exit_code == 0, made.output
    doc = json.loads(made.stdout)
    assert not any({"ie-dublin", "ie-limerick"} <= set(k["members"]) for k in doc["clusters"])
    listed = runner.invoke(cli, ["clusters", "proposals", "--store", url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["items"][0]["id"] == doc["id"]
    shown = runner.invoke(cli, ["clusters", "show", doc["id"], "--store", url])
    assert shown.exit_code == 0 and f"Proposal {doc['id']}" in shown.stdout
    other = json.loads(listed.stdout)["items"][1]["id"]
    cmp = runner.invoke(cli, ["clusters", "compare", other, doc["id"], "--store", url])
    assert cmp.exit_code == 0, cmp.output
    assert "objective:" in cmp.stdout

    first = doc["clusters"][0]
    edits = tmp_path / "edits.json"
    edits.write_text(
        json.dumps({"clusters": [{**first, "lead_city": "gb-manchester"}]}), encoding="utf-8"
    )
    ev = runner.invoke(
        cli, ["clusters", "evaluate", doc["id"], "--edits", str(edits), "--store", url, "--json"]
    )
    assert ev.exit_code == 0, ev.output
    checked = json.loads(ev.stdout)["clusters"][0]
    req = checked["lead_request"]
    if "gb-manchester" in first["members"]:
        assert req["honoured"] and checked["lead_city"] == "gb-manchester"
    else:
        assert not req["honoured"] and "Manchester (gb-manchester) cannot lead" in req["reason"]

    gone = runner.invoke(cli, ["clusters", "discard", doc["id"], "--store", url])
    assert gone.exit_code == 0 and "discarded" in gone.output
    refused = runner.invoke(cli, ["clusters", "accept", doc["id"], "--store", url])
    assert refused.exit_code != 0 and "discarded" in refused.output
