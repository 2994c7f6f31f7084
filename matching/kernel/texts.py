"""The texts we embed: what a city, theme, expert or stakeholder is about, in words.

A city's profile joins its description, its priorities (strongest first) and its good
practices, so two cities that care about the same things in different words end up
close. Texts are deterministic for the same data, which is what makes the
content-hash cache work.
"""

from __future__ import annotations

from collections import defaultdict

from graph.snapshot import NetworkSnapshot

MAX_PRACTICES = 5


def city_profiles(snapshot: NetworkSnapshot) -> list[str]:
    """One profile text per city, in ``snapshot.cities`` order; empty when the city has no
    description, priorities or practices (a name alone says nothing about what a city
    works on, and two names would look "similar" by spelling)."""
    theme_names = {t.id: t.name for t in snapshot.themes}
    priorities: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for ct in snapshot.city_themes:
        priorities[ct.city_id].append((ct.priority, theme_names.get(ct.theme_id, ct.theme_id)))
    practices: dict[str, list[str]] = defaultdict(list)
    for p in sorted(snapshot.practices, key=lambda p: (-(p.year or 0), p.id)):
        text = p.title + (f": {p.description}" if p.description else "")
        practices[p.city_id].append(text)
    texts = []
    for c in snapshot.cities:
        parts = [f"{c.name}."]
        if c.description:
            parts.append(c.description)
        wanted = sorted(priorities.get(c.id, []), key=lambda x: (-x[0], x[1]))
        if wanted:
            parts.append("Priorities: " + ", ".join(name for _, name in wanted) + ".")
        done = practices.get(c.id, [])[:MAX_PRACTICES]
        if done:
            parts.append("Good practices: " + " ".join(done))
        texts.append(" ".join(parts) if len(parts) > 1 else "")
    return texts


def expert_texts(snapshot: NetworkSnapshot) -> list[str]:
    theme_names = {t.id: t.name for t in snapshot.themes}
    levels: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for et in snapshot.expert_themes:
        levels[et.expert_id].append((et.level, theme_names.get(et.theme_id, et.theme_id)))
    out = []
    for e in snapshot.experts:
        themes = ", ".join(
            name for _, name in sorted(levels.get(e.id, []), key=lambda x: (-x[0], x[1]))
        )
        out.append(
            " ".join(x for x in (e.bio or "", f"Expertise: {themes}." if themes else "") if x)
        )
    return out
