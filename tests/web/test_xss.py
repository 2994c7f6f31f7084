"""Data is text, never markup: a city named like a script shows literally and runs nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import COORDINATOR_CITY, Server, Tab

pytestmark = pytest.mark.web
NAME = "<script>alert(1)</script><img src=x onerror=alert(2)>"
DESCRIPTION = '<img src=x onerror="window.__xss=1">A city whose <b>profile</b> is markup.'
CITY = "pt-xss-test"


@pytest.fixture(scope="module")
def evil(copy_server: Server) -> Server:
    """A city next to Amadora with a hostile name and description, added through the API."""
    with copy_server.api("admin") as api:
        api.post(
            "/v1/cities",
            json={
                "rows": [
                    {
                        "id": CITY,
                        "name": NAME,
                        "country": "PT",
                        "lat": 38.76,
                        "lon": -9.21,
                        "population": 50000,
                        "languages": "pt;en",
                        "membership": "international",
                        "networks": "",
                        "joined": 2024,
                        "coordinator_hours": 10,
                        "description": DESCRIPTION,
                    }
                ]
            },
        ).raise_for_status()
        api.post(
            "/v1/city-themes",
            json={
                "rows": [
                    {"city_id": CITY, "theme_id": "anti-rumours", "priority": 5},
                    {"city_id": CITY, "theme_id": "education", "priority": 4},
                ]
            },
        ).raise_for_status()
    with copy_server.api("coordinator") as api:
        api.post(
            f"/v1/cities/{COORDINATOR_CITY}/interests",
            json={"partner_id": CITY, "status": "interested", "note": "<i>maybe</i> next year"},
        ).raise_for_status()
        # embeds the new profile now, not while a page waits
        api.get(f"/v1/cities/{COORDINATOR_CITY}/partners", params={"k": 3}).raise_for_status()
    return copy_server


def _nothing_ran(page: Page) -> None:
    assert page.evaluate("window.__xss") is None
    expect(page.locator('img[src="x"]')).to_have_count(0)
    expect(page.locator("script:not([src])")).to_have_count(0)


def test_partner_cards_show_a_hostile_name_as_text(copy_tab: Tab, evil: Server) -> None:
    page = copy_tab.open("/partners", evil.keys["coordinator"])
    expect(page.get_by_label("City", exact=True)).to_have_value(COORDINATOR_CITY)
    page.get_by_label("Maximum distance in km").fill("40")
    page.get_by_label("Number of suggestions").fill("20")
    page.get_by_role("button", name="Find partners").click()
    expect(page.locator("#cards .card").first).to_be_visible()
    card = page.locator(f'#cards .card[data-id="{CITY}"]')
    expect(card).to_have_count(1)
    expect(card.locator(".partner-name")).to_have_text(NAME)
    # its name inside the reasons is text too, and the answer buttons name it literally
    expect(card.get_by_role("button", name=f"Interested: {NAME}")).to_be_visible()
    card.get_by_role("button", name=f"Interested: {NAME}").click()
    expect(card.locator(".answer")).to_contain_text("Saved: interested")
    _nothing_ran(page)
    assert not copy_tab.watch.dialogs
    copy_tab.screenshots("xss-partners")
    copy_tab.watch.check()


def test_secretariat_sees_the_hostile_city_as_text_everywhere(copy_tab: Tab, evil: Server) -> None:
    page = copy_tab.open("/partners", evil.keys["admin"])
    page.get_by_label("City", exact=True).select_option(CITY)
    page.get_by_role("button", name="Find partners").click()
    expect(page.locator("#results-title")).to_contain_text(f"for {NAME}")
    answer = page.locator("#answers-table tbody tr", has_text=NAME)  # Amadora's answer about it
    expect(answer.first).to_contain_text("<i>maybe</i> next year")
    _nothing_ran(page)

    page = copy_tab.open("/network")
    expect(page.locator("#graph[data-ready]")).to_be_visible()
    page.get_by_label("City", exact=True).select_option(CITY)
    profile = page.locator("#profile")
    expect(profile.locator("h2")).to_have_text(NAME)
    expect(profile.locator(".description")).to_have_text(DESCRIPTION)
    expect(page.locator("#t-isolated")).to_contain_text(NAME)
    page.get_by_role("tab", name="Map").click()
    expect(page.locator(f'#map circle.pt[data-id="{CITY}"] title')).to_have_text(
        f"{NAME} (Portugal): 0 ties"
    )
    _nothing_ran(page)
    assert not copy_tab.watch.dialogs
    copy_tab.watch.check()
