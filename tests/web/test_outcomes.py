"""The next cycle knows the last one: outcomes on the cluster page (the secretariat rates an
accepted cluster at the end of its period, everyone sees the rating in the accepted
clusters' table), and partner lists remembered as suggested, marked or left out later."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


def test_the_secretariat_rates_an_accepted_cluster(copy_tab: Tab, copy_server: Server) -> None:
    with copy_server.api("admin") as api:
        proposal = api.post("/v1/clusters/proposals", json={"themes": ["education"]})
        proposal.raise_for_status()
        api.post(
            f"/v1/clusters/proposals/{proposal.json()['id']}/accept", json={"period": "2023-2025"}
        ).raise_for_status()
        name = api.get("/v1/clusters").raise_for_status().json()["items"][0]["name"]
    page = copy_tab.open("/clusters", copy_server.keys["admin"])
    row = page.locator("#accepted tbody tr", has_text=name)
    expect(row).to_contain_text("Not rated yet")
    row.get_by_label(f"Rating for {name}").select_option("4")
    row.get_by_label(f"Outcome note for {name}").fill("Two joint projects")
    row.get_by_role("button", name="Record outcome").click()
    row = page.locator("#accepted tbody tr", has_text=name)
    expect(row).to_contain_text(f"4/5 on {date.today().isoformat()}: Two joint projects")

    # an analyst sees the rating, without the form
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").fill(copy_server.keys["analyst"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who-text")).to_contain_text("analyst")
    row = page.locator("#accepted tbody tr", has_text=name)
    expect(row).to_contain_text(re.compile(r"4/5 on .*Two joint projects"))
    expect(row.get_by_role("button", name="Record outcome")).to_have_count(0)
    copy_tab.watch.check()


def test_a_proposal_says_who_its_accepted_clusters_limited(
    copy_tab: Tab, copy_server: Server
) -> None:
    year = date.today().year
    with copy_server.api("admin") as api:
        first = (
            api.post(
                "/v1/clusters/proposals",
                json={"themes": ["housing-and-urban-planning"], "max_per_city": 1},
            )
            .raise_for_status()
            .json()
        )
        api.post(
            f"/v1/clusters/proposals/{first['id']}/accept", json={"period": f"{year}-{year + 2}"}
        ).raise_for_status()
        again = (
            api.post(
                "/v1/clusters/proposals",
                json={"themes": ["housing-and-urban-planning"], "max_per_city": 2},
            )
            .raise_for_status()
            .json()
        )
    assert again["limited"]
    why = sorted(again["limited"].values())[0]
    page = copy_tab.open(f"/clusters?proposal={again['id']}", copy_server.keys["admin"])
    box = page.locator("#limited")
    expect(box).to_be_visible()
    expect(box.locator("summary")).to_contain_text("limited by the clusters they already run")
    box.locator("summary").click()
    expect(box).to_contain_text(why)
    copy_tab.watch.check()


def test_a_coordinator_remembers_a_list_and_sees_it_marked_or_left_out(
    copy_tab: Tab, copy_server: Server
) -> None:
    page = copy_tab.open("/partners", copy_server.keys["coordinator"])
    page.get_by_label("Number of suggestions").fill("3")
    page.get_by_role("button", name="Find partners").click()
    cards = page.locator("#cards .card")
    expect(cards).to_have_count(3)
    expect(page.locator("#cards .badge", has_text="suggested before")).to_have_count(0)
    names = [cards.nth(i).locator(".partner-name").inner_text() for i in range(3)]

    page.get_by_role("button", name="Remember this list as suggested to Amadora").click()
    expect(page.locator("#remember-status")).to_have_text(
        re.compile(r"^Remembered 3 suggestions as made to Amadora on \d{4}-\d\d-\d\d\.$")
    )
    remembered = page.locator("#suggested li")
    expect(remembered).to_have_count(3)
    for name in names:
        expect(remembered.filter(has_text=name)).to_contain_text("(rank ")

    page.get_by_role("button", name="Find partners").click()  # the write is prepared first
    expect(page.locator("#cards .badge", has_text="suggested before")).to_have_count(3)
    mark = cards.nth(0).locator(".reasons li", has_text="Suggested on")
    expect(mark).to_have_text(re.compile(r"Suggested on \d+ \w+ \d{4} \(rank 1\); no answer yet"))

    page.get_by_label("Partners suggested before").select_option(label="Leave them out")
    page.get_by_role("button", name="Find partners").click()
    expect(page.locator("#status")).to_contain_text("3 partners suggested before are left out")
    expect(cards.first).to_be_visible()
    for name in names:
        expect(page.locator("#cards .partner-name", has_text=name)).to_have_count(0)
    copy_tab.watch.check()
