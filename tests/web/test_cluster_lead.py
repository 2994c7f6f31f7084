"""Cluster planner: the planner's chosen lead city is sent with every re-check (…/evaluate),
after a move too, and a lead the rules refuse is shown with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


def _evaluate(api: Any, proposal: dict[str, Any], cluster: dict[str, Any], lead: str) -> Any:
    edits = [
        {k: c[k] for k in ("id", "members", "theme_ids")}
        | ({"lead_city": lead} if c["id"] == cluster["id"] else {})
        for c in proposal["clusters"]
    ]
    r = api.post(f"/v1/clusters/proposals/{proposal['id']}/evaluate", json={"clusters": edits})
    r.raise_for_status()
    return next(c for c in r.json()["clusters"] if c["id"] == cluster["id"])


def _lead_choices(api: Any, proposal: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """A cluster, a member the rules refuse as its lead, and another member they accept
    that is not the proposal's own lead (asked of the API, as the page will)."""
    for cluster in proposal["clusters"]:
        refused = honoured = None
        for m in cluster["members"]:
            got = _evaluate(api, proposal, cluster, m)["lead_request"]
            if not got["honoured"] and refused is None:
                refused = m
            elif got["honoured"] and m != cluster["lead_city"] and honoured is None:
                honoured = m
            if refused and honoured:
                return cluster, refused, honoured
    raise AssertionError("no cluster with both a refused and another possible lead")


def _sent(info: Any, cluster_id: str) -> dict[str, Any]:
    body = info.value.request.post_data_json
    sent: dict[str, Any] = next(c for c in body["clusters"] if c["id"] == cluster_id)
    return sent


def test_the_chosen_lead_is_sent_with_each_check_and_a_refusal_says_why(
    tab: Tab, server: Server
) -> None:
    with server.api("admin") as api:
        r = api.post("/v1/clusters/proposals", json={"themes": ["education"], "seed": 5})
        assert r.status_code == 201, r.text
        proposal = r.json()
        cluster, refused, honoured = _lead_choices(api, proposal)
    names = {c: server.api().get(f"/v1/cities/{c}").json()["name"] for c in (refused, honoured)}

    page = tab.open(f"/clusters?proposal={proposal['id']}", server.keys["admin"])
    column = page.locator(f'#columns .column[data-cluster="{cluster["id"]}"]')
    pick = column.locator("select.lead-pick")
    expect(pick).to_have_value("")  # iccmatch's own lead until the planner chooses

    def checked(action: Any) -> Any:
        with page.expect_response(
            lambda r: r.url.endswith("/evaluate") and r.request.method == "POST"
        ) as info:
            action()
        assert info.value.ok, info.value.text()
        return info

    # a lead the rules refuse: sent, and the reason shown in the cluster's column
    info = checked(lambda: pick.select_option(refused))
    assert _sent(info, cluster["id"])["lead_city"] == refused
    assert all(
        "lead_city" not in _sent(info, c["id"]) for c in proposal["clusters"] if c != cluster
    )
    answer = next(c for c in info.value.json()["clusters"] if c["id"] == cluster["id"])
    assert answer["lead_request"]["honoured"] is False
    refusal = column.locator(".lead-refusal")
    expect(refusal).to_have_text(answer["lead_request"]["reason"])
    expect(refusal).to_contain_text(f"{names[refused]} ({refused}) cannot lead")
    expect(column.locator(f'.member[data-city="{refused}"] .badge')).to_have_count(0)

    # a lead it can take: sent, honoured, the badge moves and the refusal goes
    info = checked(lambda: column.locator("select.lead-pick").select_option(honoured))
    assert _sent(info, cluster["id"])["lead_city"] == honoured
    expect(column.locator(".lead-refusal")).to_have_count(0)
    expect(column.locator(f'.member[data-city="{honoured}"] .badge')).to_have_text("lead")
    expect(column.locator("select.lead-pick")).to_have_value(honoured)

    # after an edit (a member moved out) the check still sends the planner's lead
    mover = next(m for m in cluster["members"] if m not in (honoured, refused))
    other = next(c for c in proposal["clusters"] if c["id"] != cluster["id"])
    info = checked(
        lambda: column.locator(f'.member[data-city="{mover}"] select.move').select_option(
            other["id"]
        )
    )
    sent = _sent(info, cluster["id"])
    assert mover not in sent["members"] and sent["lead_city"] == honoured
    expect(column.locator(f'.member[data-city="{honoured}"] .badge')).to_have_text("lead")
    tab.screenshots("clusters-lead")
