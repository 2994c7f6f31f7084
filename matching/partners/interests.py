"""Coordinators' answers to suggested partners, read as a whole: who is a mutual match,
and where the secretariat's follow-up of each match stands.

A pair where both cities answered "interested" is worth an introduction by the
secretariat before anything else: each side already said yes. The secretariat then
records dated steps (introduced, meeting held, project started, partnership signed, no
further contact); an introduction with no later step after ``FOLLOW_UP_DAYS`` is due a
"how did it go?". Plain data in (answers as ``(city, partner, status, note)``, steps as
``(city_a, city_b, status, on, note)``), dataclasses with reasons out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from matching.kernel.wording import Reason

Answer = tuple[str, str, str, str | None]
"""(city id, partner id, "interested" or "not_for_us", note)."""
Step = tuple[str, str, str, str, str | None]
"""(city_a, city_b, step, date as YYYY-MM-DD, note), city_a < city_b."""

STEPS = (
    "introduced",
    "meeting_held",
    "project_started",
    "partnership_signed",
    "no_further_contact",
)
"""The follow-up steps, in the order a match usually takes them."""
STEP_WORDS = {
    "introduced": "Introduced",
    "meeting_held": "Meeting held",
    "project_started": "Project started",
    "partnership_signed": "Partnership signed",
    "no_further_contact": "No further contact",
}
FOLLOW_UP_DAYS = 182
"""An introduction with nothing after it for this long (six months) is due a follow-up."""


@dataclass(frozen=True, slots=True)
class MutualMatch:
    """Two cities that each answered "interested" in the other (``city_a`` < ``city_b``)."""

    city_a: str
    city_b: str
    name_a: str
    name_b: str
    note_a: str | None
    """What ``city_a``'s coordinator wrote about ``city_b``."""
    note_b: str | None
    reasons: tuple[Reason, ...]
    status: str | None = None
    """The latest step recorded (``STEPS``), or None: not introduced yet."""
    status_on: str | None = None
    history: tuple[tuple[str, str, str | None], ...] = ()
    """Every step as (step, date, note), oldest first."""
    follow_up_due: bool = False
    """Introduced ``FOLLOW_UP_DAYS`` ago or more and nothing since: ask how it went."""


def mutual_matches(
    answers: Iterable[Answer],
    names: Mapping[str, str],
    city_id: str | None = None,
    steps: Iterable[Step] = (),
    today: date | None = None,
) -> tuple[MutualMatch, ...]:
    """Every mutual match (only those of ``city_id`` when given) with its follow-up,
    sorted by the two names. ``today`` dates the follow-up check (default: today)."""
    day = today or date.today()
    interested = {(a, b): note for a, b, status, note in answers if status == "interested"}
    history: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {}
    for a, b, step, on, note in steps:
        history.setdefault((a, b), []).append((step, on, note))
    out = []
    for (a, b), note in interested.items():
        if a >= b or (b, a) not in interested:
            continue  # each pair once, from its smaller id
        if city_id is not None and city_id not in (a, b):
            continue
        name_a, name_b = names.get(a, a), names.get(b, b)
        reasons = [Reason("mutual", f'{name_a} and {name_b} each answered "interested"')]
        for who, other, text in ((name_a, name_b, note), (name_b, name_a, interested[(b, a)])):
            if text:
                reasons.append(Reason("note", f"{who} about {other}: {text}"))
        done = tuple(sorted(history.get((a, b), ()), key=lambda s: (s[1], STEPS.index(s[0]))))
        status, status_on, due = None, None, False
        if done:
            status, status_on, _ = done[-1]
            reasons.append(Reason("status", f"{STEP_WORDS[status]} on {_day(status_on)}"))
            due = (
                status == "introduced"
                and (day - date.fromisoformat(status_on)).days >= FOLLOW_UP_DAYS
            )
            if due:
                reasons.append(
                    Reason(
                        "follow_up",
                        f"Ask how it went: introduced on {_day(status_on)}, nothing recorded since",
                    )
                )
        else:
            reasons.append(Reason("status", "Not introduced yet"))
        out.append(
            MutualMatch(
                a,
                b,
                name_a,
                name_b,
                note,
                interested[(b, a)],
                tuple(reasons),
                status,
                status_on,
                done,
                due,
            )
        )
    return tuple(sorted(out, key=lambda m: (m.name_a, m.name_b)))


def _day(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day} {d.strftime('%B')} {d.year}"


GOOD_STEPS = frozenset({"meeting_held", "project_started", "partnership_signed"})


def outcome_labels(
    steps: Iterable[Step], rated_clusters: Iterable[tuple[Sequence[str], int]]
) -> list[tuple[str, str, bool]]:
    """What a cycle taught about pairs, as labels for the partner ranker beside the
    coordinators' answers: a mutual match whose latest step went on (a meeting, a project,
    a signed partnership) is a good pair, one with no further contact a poor one; the
    secretariat's rating of a cluster (its members, 1-5: 4-5 good, 1-2 poor, 3 says
    nothing) labels every pair of its members, a weaker signal the fit weighs like any
    other answer."""
    latest: dict[tuple[str, str], tuple[str, str]] = {}
    for a, b, step, on, _ in steps:
        if (a, b) not in latest or on >= latest[(a, b)][0]:
            latest[(a, b)] = (on, step)
    labels = [
        (a, b, step in GOOD_STEPS)
        for (a, b), (_, step) in latest.items()
        if step in GOOD_STEPS or step == "no_further_contact"
    ]
    for members, rating in rated_clusters:
        if rating != 3:
            labels += [(a, b, rating >= 4) for a in members for b in members if a < b]
    return labels
