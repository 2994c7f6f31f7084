"""Cluster planner: propose, move cities (drag and drop, the Move to list, the keyboard), lock and
propose again, accept; others see proposals read-only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web
OUT = "__out__"


def _propose(page: Page, themes: list[str]) -> dict[str, Any]:
    for name in themes:
        page.get_by_label(name, exact=True).check()
    with page.expect_response(
        lambda r: r.url.endswith("/v1/clusters/proposals") and r.request.method == "POST"
    ) as info:
        page.get_by_role("button", name="Propose clusters").click()
    assert info.value.status == 201, info.value.text()
    proposal: dict[str, Any] = info.value.json()
    expect(page.locator("#columns .column").first).to_be_visible()
    return proposal


def _columns(page: Page) -> Locator:
    return page.locator(f'#columns .column:not([data-cluster="{OUT}"])')


def _members(column: Locator) -> list[str]:
    return [m.get_attribute("data-city") or "" for m in column.locator(".member").all()]


def _constraint_states(page: Page) -> dict[str, str]:
    items = page.locator("#constraints li.constraint").all()
    return {i.get_attribute("data-name") or "": i.get_attribute("data-status") or "" for i in items}


def _movable(page: Page) -> tuple[str, Locator, Locator]:
    """A city in the first cluster, and a column it can move to (another cluster, else 'none')."""
    cols = _columns(page)
    first = cols.nth(0)
    for j in range(1, cols.count()):
        target = cols.nth(j)
        here = set(_members(target))
        for city in _members(first):
            if city not in here:
                return city, first, target
    return _members(first)[0], first, page.locator(f'#columns .column[data-cluster="{OUT}"]')


def _check_against(page: Page, result: dict[str, Any]) -> None:
    """The checks and scores on the page are those the API just returned."""
    expect(page.locator("#constraints li.constraint")).to_have_count(len(result["constraints"]))
    assert _constraint_states(page) == {c["name"]: c["status"] for c in result["constraints"]}
    for c in result["clusters"]:
        facts = page.locator(f'#columns .column[data-cluster="{c["id"]}"] .facts').inner_text()
        shown = re.search(r"cohesion (-?[\d.]+)", facts)
        assert shown and abs(float(shown.group(1)) - c["score"]) <= 0.006, (facts, c["score"])


def test_secretariat_plans_adjusts_and_accepts_clusters(tab: Tab, server: Server) -> None:
    page = tab.open("/clusters", server.keys["admin"])
    proposal = _propose(page, ["Education", "Anti-rumours"])
    cols = _columns(page)
    expect(cols).to_have_count(len(proposal["clusters"]))
    assert len(proposal["clusters"]) >= 1
    expect(page.locator("#plan-summary")).to_contain_text(f"Proposal {proposal['id']}")
    # the checks, in words, each met, broken or relaxed
    states = _constraint_states(page)
    assert states and set(states.values()) <= {"satisfied", "violated", "relaxed"}
    assert re.search(r"met|broken|relaxed", page.locator("#constraints").inner_text())
    # every cluster shows its lead and why it was formed
    for c in proposal["clusters"]:
        col = page.locator(f'#columns .column[data-cluster="{c["id"]}"]')
        expect(col.locator(".member")).to_have_count(len(c["members"]))
        expect(col.locator(".badge", has_text="lead")).to_have_count(1)
    expect(page.locator("#map circle.pt").first).to_be_attached()

    # 1. drag a city to another column: the checks and scores come back from /evaluate
    city, source, target = _movable(page)
    card = source.locator(f'.member[data-city="{city}"]')
    with page.expect_response(lambda r: "/evaluate" in r.url) as info:
        # drop on the column's heading, level with the card: nothing scrolls while dragging
        card.drag_to(target, source_position={"x": 10, "y": 10}, target_position={"x": 40, "y": 12})
    assert info.value.ok, info.value.text()
    sent = info.value.request.post_data_json
    target_id = target.get_attribute("data-cluster")
    moved_into = [c for c in sent["clusters"] if c["id"] == target_id]
    assert (moved_into and city in moved_into[0]["members"]) or target_id == OUT
    assert all(
        city not in c["members"]
        for c in sent["clusters"]
        if c["id"] == source.get_attribute("data-cluster")
    )
    expect(page.locator("#status")).to_contain_text("Checks updated")
    expect(target.locator(f'.member[data-city="{city}"]')).to_have_count(1)
    expect(target.locator(f'.member[data-city="{city}"]')).to_have_class(re.compile(r"\bmoved\b"))
    _check_against(page, info.value.json())

    # 2. and back with the "Move to" list
    source_title = source.locator("h3").inner_text()
    with page.expect_response(lambda r: "/evaluate" in r.url) as info:
        target.locator(f'.member[data-city="{city}"]').get_by_label("Move to").select_option(
            label=source_title
        )
    assert info.value.ok
    expect(
        page.locator(
            f'#columns .column[data-cluster="{source.get_attribute("data-cluster")}"] .member[data-city="{city}"]'
        )
    ).to_have_count(1)
    _check_against(page, info.value.json())

    # 3. keep two cities in place and propose again
    first = _columns(page).nth(0)
    keep = _members(first)[:2]
    for c in keep:
        first.locator(f'.member[data-city="{c}"]').get_by_label(re.compile("^Keep here")).check()
    again = page.get_by_role("button", name="Propose again, keeping 2 cities in place")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/clusters/proposals") and r.request.method == "POST"
    ) as info:
        again.click()
    assert info.value.status == 201, info.value.text()
    locked = info.value.request.post_data_json["locked"]
    assert [sorted(v) for v in locked.values()] == [sorted(keep)]
    second = info.value.json()
    home = [c for c in second["clusters"] if set(keep) <= set(c["members"])]
    assert home, "the kept cities are together in one cluster"
    col = page.locator(f'#columns .column[data-cluster="{home[0]["id"]}"]')
    for c in keep:
        expect(
            col.locator(f'.member[data-city="{c}"]').get_by_label(re.compile("^Keep here"))
        ).to_be_checked()

    # 4. accept: the clusters become part of the network
    page.get_by_label("Period (optional)").fill("2025-2027")
    with page.expect_response(lambda r: r.url.endswith("/accept")) as info:
        page.get_by_role("button", name=re.compile(r"^Accept these \d+ clusters?$")).click()
    assert info.value.ok, info.value.text()
    accepted = info.value.json()["accepted"]
    expect(page.locator("#accept-result")).to_contain_text(f"Accepted {len(accepted)} cluster")
    sent_groups = {frozenset(c["members"]) for c in info.value.request.post_data_json["clusters"]}
    with server.api("analyst") as api:
        rows = api.get("/v1/clusters", params={"limit": 500}).raise_for_status().json()["items"]
    stored = {frozenset(r["members"]): r for r in rows}
    assert sent_groups <= set(stored), "every accepted cluster is in GET /v1/clusters"
    assert all(stored[g]["period"] == "2025-2027" for g in sent_groups)
    for row in accepted:
        expect(page.locator(f'#accepted tbody tr[data-id="{row["id"]}"]')).to_have_count(1)

    tab.screenshots("clusters")
    tab.watch.check()


def test_move_control_works_with_the_keyboard_alone(tab: Tab, server: Server) -> None:
    page = tab.open("/clusters", server.keys["admin"])
    box = page.get_by_label("Education", exact=True)
    box.focus()
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    page.get_by_role("button", name="Propose clusters").focus()
    with page.expect_response(lambda r: r.url.endswith("/v1/clusters/proposals")):
        page.keyboard.press("Enter")
    expect(_columns(page).first).to_be_visible()

    city, source, _ = _movable(page)
    card = source.locator(f'.member[data-city="{city}"]')
    lock = card.get_by_label(re.compile("^Keep here"))
    lock.focus()
    page.keyboard.press("Space")
    expect(lock).to_be_checked()
    page.keyboard.press("Tab")  # the next stop is the same city's Move to list
    move = card.get_by_label("Move to")
    expect(move).to_be_focused()
    with page.expect_response(lambda r: "/evaluate" in r.url) as info:
        page.keyboard.press("ArrowDown")  # the first other place
    assert info.value.ok
    expect(page.locator("#status")).to_contain_text("moved to")
    expect(page.locator("#status")).to_contain_text("Checks updated")
    expect(source.locator(f'.member[data-city="{city}"]')).to_have_count(0)
    moved = page.locator(f'#columns .member[data-city="{city}"].moved')
    expect(moved).to_have_count(1)
    # focus follows the city, so the next key press goes on from where it is now
    expect(moved.get_by_label("Move to")).to_be_focused()
    # a moved city is no longer kept in place
    if moved.get_by_label(re.compile("^Keep here")).count():
        expect(moved.get_by_label(re.compile("^Keep here"))).not_to_be_checked()
    _check_against(page, info.value.json())
    tab.watch.check()


def test_an_impossible_request_says_what_to_relax(tab: Tab, server: Server) -> None:
    body = {"kind": "thematic", "themes": ["roma"], "min_size": 20, "max_size": 20}
    with server.api("admin") as api:
        answer = api.post("/v1/clusters/proposals", json=body)
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    tab.watch.allow(409, "/v1/clusters/proposals")
    page = tab.open("/clusters", server.keys["admin"])
    page.get_by_label("Roma inclusion", exact=True).check()
    page.get_by_label("Smallest cluster").fill("20")
    page.get_by_label("Largest cluster").fill("20")
    page.get_by_role("button", name="Propose clusters").click()
    error = page.locator("#error")
    expect(error).to_contain_text("Not possible with these rules")
    expect(error).to_contain_text(detail)
    tab.watch.check()


def test_the_rules_form_explains_its_own_mistakes(tab: Tab, server: Server) -> None:
    page = tab.open("/clusters", server.keys["admin"])
    page.get_by_label("Smallest cluster").fill("6")
    page.get_by_label("Largest cluster").fill("3")
    page.get_by_role("button", name="Propose clusters").click()
    expect(page.locator("#rules-error")).to_contain_text(
        "Largest cluster: give a whole number no smaller than the smallest cluster."
    )
    tab.watch.check()


def test_others_see_a_proposal_read_only(tab: Tab, server: Server) -> None:
    with server.api("admin") as api:
        proposal = (
            api.post("/v1/clusters/proposals", json={"themes": ["education"]})
            .raise_for_status()
            .json()
        )
    page = tab.open(f"/clusters?proposal={proposal['id']}", server.keys["analyst"])
    expect(page.locator("#readonly")).to_be_visible()
    expect(page.locator("#rules")).to_be_hidden()
    expect(_columns(page)).to_have_count(len(proposal["clusters"]))
    expect(page.locator("#columns select.move")).to_have_count(0)
    expect(page.locator("#columns .member[draggable=true]")).to_have_count(0)
    expect(page.locator("#actions")).to_be_hidden()
    expect(page.locator("#accepted")).to_be_visible()
    tab.watch.check()
