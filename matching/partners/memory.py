"""What each city has been shown before: the secretariat's memory across cycles.

Every list sent to a city can be remembered (``suggestions`` rows: the day, each
partner's rank). The next list then either shows a partner suggested before again,
marked ("Suggested on 2 March 2026 (rank 2); no answer yet"), so nobody takes an old
suggestion for a new one, or hides it to make room for cities not suggested yet
(``AGAIN``). Plain data in, dataclasses with reasons out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from typing import Literal

from matching.kernel.wording import Reason, plural
from matching.partners.model import PartnerResult, SuggestedBefore

Again = Literal["mark", "hide"]
AGAIN: tuple[Again, ...] = ("mark", "hide")
"""``mark``: a partner suggested before is listed again, saying when; ``hide``: it is left
out (unless forced), so the list holds only cities the city has not been shown."""

Shown = tuple[str, str, str, int]
"""(city id, partner id, day as YYYY-MM-DD, rank)."""
Answer = tuple[str, str, str]
"""(city id, partner id, "interested" or "not_for_us")."""

ANSWER_WORDS = {
    None: "no answer yet",
    "interested": "you answered interested",
    "not_for_us": "you answered not for us",
}


def suggested_before(
    shown: Iterable[Shown], answers: Iterable[Answer] = ()
) -> dict[str, dict[str, SuggestedBefore]]:
    """City id -> each partner suggested to it -> when (first and last day), the rank it
    had the last time, how many times, and the city's answer if it gave one."""
    days: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for city, partner, on, rank in shown:
        days.setdefault((city, partner), []).append((on, rank))
    answered = {(city, partner): status for city, partner, status in answers}
    out: dict[str, dict[str, SuggestedBefore]] = {}
    for (city, partner), seen in days.items():
        seen.sort()
        out.setdefault(city, {})[partner] = SuggestedBefore(
            first_on=seen[0][0],
            last_on=seen[-1][0],
            rank=seen[-1][1],
            times=len(seen),
            answer=answered.get((city, partner)),
        )
    return out


MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def day_words(day: str) -> str:
    """``2026-03-02`` as "2 March 2026" (the same in every locale)."""
    d = date.fromisoformat(day)
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def words(before: SuggestedBefore) -> str:
    """The mark a partner suggested before carries, first among its reasons."""
    if before.times == 1:
        when = f"Suggested on {day_words(before.first_on)} (rank {before.rank})"
    else:
        when = (
            f"Suggested {plural(before.times, 'time')}, first on {day_words(before.first_on)}, "
            f"last on {day_words(before.last_on)} (rank {before.rank})"
        )
    return f"{when}; {ANSWER_WORDS.get(before.answer, before.answer)}"


def mark(result: PartnerResult, before: Mapping[str, SuggestedBefore]) -> PartnerResult:
    """The list with each partner suggested before marked (field and first reason)."""
    if not before:
        return result
    suggestions = tuple(
        replace(
            s,
            suggested_before=before[s.city_id],
            reasons=(Reason("suggested_before", words(before[s.city_id])), *s.reasons),
        )
        if s.city_id in before
        else s
        for s in result.suggestions
    )
    return replace(result, suggestions=suggestions)


def remembered(partner_ids: Iterable[str], city_id: str, on: str) -> list[dict[str, object]]:
    """``suggestions`` rows for a list shown to ``city_id`` on ``on``, ranked in order.
    A city named twice is an error: a list ranks each partner once."""
    ids = list(partner_ids)
    twice = sorted({p for p in ids if ids.count(p) > 1})
    if twice:
        raise ValueError(f"a list names each partner once; named twice: {', '.join(twice)}")
    return [
        {"city_id": city_id, "partner_id": p, "on": on, "rank": rank}
        for rank, p in enumerate(ids, 1)
    ]
