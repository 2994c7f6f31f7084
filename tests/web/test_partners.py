"""Partner finder: a coordinator ranks partners for its own city and answers; the secretariat sees it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.conftest import COORDINATOR_CITY, Server, Tab

pytestmark = pytest.mark.web


def test_coordinator_ranks_partners_for_its_own_city_and_answers(tab: Tab, server: Server) -> None:
    page = tab.open("/partners", server.keys["coordinator"])
    expect(page.locator("#who-text")).to_have_text("Signed in as the coordinator for Amadora")
    city = page.get_by_label("City", exact=True)
    expect(city).to_be_disabled()
    expect(city).to_have_value(COORDINATOR_CITY)

    page.get_by_label("Theme").select_option(label="Anti-rumours")
    page.get_by_label("Number of suggestions").fill("8")
    page.get_by_role("button", name="Find partners").click()

    cards = page.locator("#cards .card")
    expect(cards.first).to_be_visible()
    expect(page.locator("#results-title")).to_have_text(
        re.compile(r"^\d+ suggested partners? for Amadora$")
    )
    n = cards.count()
    assert 1 <= n <= 8
    # every card: a name, a score and at least one reason in words
    for i in range(n):
        card = cards.nth(i)
        expect(card.locator(".partner-name")).not_to_be_empty()
        # two decimals always, so scores side by side read alike ("0.60", not "0.6")
        expect(card.locator(".score")).to_have_text(re.compile(r"^Score \d\.\d\d$"))
        assert card.locator(".reasons li").count() >= 1
        # the distance in the figures is the one the reason words
        said = re.search(r"([\d,]+) km apart", card.locator(".reasons").inner_text())
        shown = card.locator("dl.numbers div", has_text="Distance").locator("dd")
        if said and shown.count():
            assert shown.inner_text() == f"{said.group(1)} km"
    # the theme asked for shows up among the reasons
    expect(page.locator("#cards .reason-text", has_text="Anti-rumours").first).to_be_visible()
    # the map: one dot per partner and one for Amadora
    expect(page.locator("#map circle.pt")).to_have_count(n + 1)

    # the answers, as a coordinator gives them
    first, second = cards.nth(0), cards.nth(1)
    first_id = first.get_attribute("data-id")
    second_id = second.get_attribute("data-id")
    first_name = first.locator(".partner-name").inner_text()
    first.get_by_role("button", name=f"Interested: {first_name}").click()
    expect(first.locator(".answer")).to_have_text(re.compile("^Saved: interested"))
    expect(first.get_by_role("button", name=f"Interested: {first_name}")).to_have_attribute(
        "aria-pressed", "true"
    )

    second.get_by_text("Add a note (optional)").click()
    second.get_by_label(re.compile("^Note about")).fill("Too far for a study visit this year")
    second.get_by_role("button", name=re.compile("^Not for us")).click()
    expect(second.locator(".answer")).to_have_text(re.compile("^Saved: not for us"))

    tab.screenshots("partners-coordinator")
    tab.watch.check()

    # the secretariat sees both answers through the API
    with server.api("admin") as api:
        answers = api.get("/v1/interests").raise_for_status().json()
    mine = {
        (a["partner_id"], a["status"], a.get("note"))
        for a in answers
        if a["city_id"] == COORDINATOR_CITY
    }
    assert (first_id, "interested", None) in mine
    assert (second_id, "not_for_us", "Too far for a study visit this year") in mine


def test_secretariat_filters_any_city_and_sees_the_answers(tab: Tab, server: Server) -> None:
    page = tab.open("/partners", server.keys["admin"])
    page.get_by_label("City", exact=True).select_option(label="Barcelona")
    page.get_by_label("The partner speaks").select_option(label="Spanish")
    page.get_by_label("Maximum distance in km").fill("1500")
    page.get_by_label("Membership").select_option(label="International members")
    page.get_by_role("button", name="Find partners").click()

    cards = page.locator("#cards .card")
    expect(cards.first).to_be_visible()
    expect(page.locator("#results-title")).to_contain_text("for Barcelona")
    for i in range(cards.count()):
        text = cards.nth(i).inner_text()
        assert "Spanish" in text, text
        assert "international member" in text, text
        km = re.search(r"Distance\s+([\d,]+) km", text)
        assert km and int(km.group(1).replace(",", "")) <= 1500, text

    # an answer for Barcelona, then it appears in the table of answers
    name = cards.first.locator(".partner-name").inner_text()
    cards.first.get_by_role("button", name=f"Interested: {name}").click()
    rows = page.locator("#answers-table tbody tr", has_text="Barcelona")
    expect(rows.filter(has_text=name).first).to_be_visible()
    expect(rows.filter(has_text=name).first).to_contain_text("Interested")

    # the other side says yes too: a mutual match, listed for the secretariat
    other = cards.first.get_attribute("data-id")
    with server.api("admin") as api:
        api.post(
            f"/v1/cities/{other}/interests",
            json={"partner_id": "es-barcelona", "status": "interested"},
        ).raise_for_status()
    page.reload()
    match = page.locator("#mutual li", has_text="Barcelona")
    expect(match).to_contain_text(name)
    expect(match).to_contain_text("mutual match")
    expect(match).to_contain_text("Not introduced yet")
    # the secretariat records the introduction, long ago: the match asks for a follow-up
    match.get_by_label(re.compile("^Next step for")).select_option("introduced")
    match.get_by_label(re.compile("^Date of the step")).fill("2025-01-10")
    match.get_by_role("button", name="Record step").click()
    expect(match).to_contain_text("Introduced on 10 January 2025")
    expect(match).to_contain_text("Ask how it went")

    # a shared link runs the same search
    url = page.url
    assert "city=es-barcelona" in url and "max_km=1500" in url
    tab.screenshots("partners-admin")
    tab.watch.check()


def test_interpretation_and_a_forced_partner(tab: Tab, server: Server) -> None:
    page = tab.open("/partners", server.keys["admin"])
    page.get_by_label("City", exact=True).select_option(label="Barcelona")
    page.get_by_label("Number of suggestions").fill("5")
    page.get_by_role("button", name="Find partners").click()
    expect(page.locator("#cards .card").first).to_be_visible()
    shared = page.locator("#status").inner_text()

    page.get_by_label("Also show cities we share no working language with").check()
    page.get_by_label("Always include").select_option(label="Auckland (New Zealand)")
    page.get_by_role("button", name="Find partners").click()
    forced = page.locator("#cards .card", has_text="Auckland")
    expect(forced).to_contain_text("Listed because you asked for it")
    expect(page.locator("#status")).not_to_have_text(shared)  # more cities considered
    assert _considered(page.locator("#status").inner_text()) > _considered(shared)
    assert "interpretation=true" in page.url and "force=nz-auckland" in page.url
    tab.watch.check()


def test_analyst_reads_partners_but_cannot_answer(tab: Tab, server: Server) -> None:
    page = tab.open("/partners?city=pt-lisbon&k=5", server.keys["analyst"])
    expect(page.locator("#cards .card").first).to_be_visible()
    expect(page.locator("#results-title")).to_contain_text("for Lisbon")
    expect(page.get_by_role("button", name=re.compile("^Interested"))).to_have_count(0)
    expect(page.locator("#answers")).to_be_visible()
    tab.watch.check()


def test_a_wrong_key_is_refused_in_words(tab: Tab, server: Server) -> None:
    tab.watch.allow(401, "/v1/me")
    page = tab.open("/partners")
    page.get_by_label("API key").fill("icc_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text(
        "That key did not work: this API key is unknown or revoked"
    )
    expect(page.locator("main")).to_be_hidden()
    tab.watch.check()


def test_the_form_explains_a_bad_distance(tab: Tab, server: Server) -> None:
    page = tab.open("/partners", server.keys["admin"])
    page.get_by_label("City", exact=True).select_option(label="Lisbon")
    page.get_by_label("Maximum distance in km").fill("-5")
    page.get_by_role("button", name="Find partners").click()
    expect(page.locator("#form-error")).to_contain_text(
        "give a number of kilometres between 1 and 25,000"
    )
    expect(page.locator("#cards .card")).to_have_count(0)
    tab.watch.check()


def _considered(status: str) -> int:
    found = re.search(r"([\d,]+) cities were considered", status)
    assert found, status
    return int(found.group(1).replace(",", ""))
