"""Two proposals side by side: who moved, who joined or left, what each term and rule did.

A planner who re-runs a request with another seed, a span or a keep-apart pair, or who
edits a proposal, needs to see what changed, not two long lists. :func:`compare_proposals`
takes two proposals as plain data (the documents the API keeps, or
``ClusterProposal.to_dict()``) and says it:

* clusters are matched per theme (``"geo"`` for geographic ones) by the members they
  share, largest overlap first, so a renumbered cluster is still "the same" cluster;
* a city *moved* when, within one theme, its cluster in the second proposal is not the
  match of its cluster in the first; it was *added* when it has a cluster of that theme
  only in the second, *left out* when only in the first;
* every objective term (``objective`` and the metrics behind it) and every rule check
  (status and violated count) is given before and after.

Pure: no store, no solver; the reasons are the sentences a planner reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matching.kernel.wording import and_join, plural

TERMS = (
    "objective",
    "objective_coverage",
    "objective_cohesion",
    "mean_cohesion",
    "worst_benefit",
    "coverage",
    "n_clusters",
    "n_cities_placed",
    "n_unassigned",
)
"""The objective and the metrics behind it, in the order a planner reads them."""


@dataclass(frozen=True, slots=True)
class CityMove:
    """One city whose place changed within one theme (``to_cluster`` None: left out;
    ``from_cluster`` None: added)."""

    city_id: str
    name: str
    theme: str
    from_cluster: str | None
    to_cluster: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "city_id": self.city_id,
            "name": self.name,
            "theme": self.theme,
            "from_cluster": self.from_cluster,
            "to_cluster": self.to_cluster,
        }


@dataclass(frozen=True, slots=True)
class TermChange:
    """One objective term or metric before and after (``change = after - before``)."""

    name: str
    before: float
    after: float
    change: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "change": self.change,
        }


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One hard rule's status and violated count before and after (``None``: not
    checked in that proposal)."""

    name: str
    before: str | None
    after: str | None
    violated_before: int
    violated_after: int

    @property
    def changed(self) -> bool:
        return self.before != self.after or self.violated_before != self.violated_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "violated_before": self.violated_before,
            "violated_after": self.violated_after,
            "changed": self.changed,
        }


@dataclass(frozen=True, slots=True)
class ProposalComparison:
    """What changed from proposal ``a`` to proposal ``b`` (see the module doc).

    ``matched`` pairs each cluster of ``a`` with its counterpart in ``b`` (None: it has
    none); ``moved``, ``added`` and ``left_out`` are per city and theme; ``reasons`` says
    it all in sentences, the most telling first."""

    a: str
    b: str
    matched: tuple[tuple[str, str | None], ...]
    moved: tuple[CityMove, ...]
    added: tuple[CityMove, ...]
    left_out: tuple[CityMove, ...]
    terms: tuple[TermChange, ...]
    rules: tuple[RuleChange, ...]
    reasons: tuple[str, ...]

    @property
    def same_clusters(self) -> bool:
        return not (self.moved or self.added or self.left_out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "matched": [{"a": x, "b": y} for x, y in self.matched],
            "moved": [m.to_dict() for m in self.moved],
            "added": [m.to_dict() for m in self.added],
            "left_out": [m.to_dict() for m in self.left_out],
            "terms": [t.to_dict() for t in self.terms],
            "rules": [r.to_dict() for r in self.rules],
            "reasons": list(self.reasons),
            "same_clusters": self.same_clusters,
        }


def compare_proposals(
    a: Mapping[str, Any], b: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> ProposalComparison:
    """What changed from proposal ``a`` to proposal ``b``; ``names`` (city id -> name)
    words the reasons (ids are used where a name is unknown)."""
    names = names or {}
    a_by_theme, b_by_theme = _by_theme(a), _by_theme(b)
    matched: list[tuple[str, str | None]] = []
    moved: list[CityMove] = []
    added: list[CityMove] = []
    left: list[CityMove] = []
    for theme in sorted(set(a_by_theme) | set(b_by_theme)):
        ca, cb = a_by_theme.get(theme, {}), b_by_theme.get(theme, {})
        pairs = _match(ca, cb)
        matched.extend((x, pairs.get(x)) for x in ca)
        where_a = {city: cid for cid, ms in ca.items() for city in ms}
        where_b = {city: cid for cid, ms in cb.items() for city in ms}
        for city in sorted(set(where_a) | set(where_b)):
            x, y = where_a.get(city), where_b.get(city)
            move = CityMove(city, names.get(city, city), theme, x, y)
            if x is None:
                added.append(move)
            elif y is None:
                left.append(move)
            elif pairs.get(x) != y:
                moved.append(move)
    terms = _terms(a, b)
    rules = _rules(a, b)
    return ProposalComparison(
        a=str(a.get("id", "a")),
        b=str(b.get("id", "b")),
        matched=tuple(matched),
        moved=tuple(moved),
        added=tuple(added),
        left_out=tuple(left),
        terms=terms,
        rules=rules,
        reasons=_reasons(moved, added, left, terms, rules),
    )


def _by_theme(doc: Mapping[str, Any]) -> dict[str, dict[str, tuple[str, ...]]]:
    """theme -> cluster id -> members (geographic clusters under ``"geo"``)."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    geographic = doc.get("kind") == "geographic"
    for c in doc.get("clusters", ()):
        themes = c.get("theme_ids") or ()
        key = "geo" if geographic or not themes else str(themes[0])
        out.setdefault(key, {})[str(c["id"])] = tuple(str(m) for m in c["members"])
    return out


def _match(ca: Mapping[str, Sequence[str]], cb: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each cluster of ``ca`` with the cluster of ``cb`` it shares most members with,
    largest overlap first, one to one (ties: the earlier ids)."""
    overlaps = sorted(
        (
            (-len(set(ma) & set(mb)), x, y)
            for x, ma in ca.items()
            for y, mb in cb.items()
            if set(ma) & set(mb)
        )
    )
    out: dict[str, str] = {}
    taken: set[str] = set()
    for _, x, y in overlaps:
        if x not in out and y not in taken:
            out[x] = y
            taken.add(y)
    return out


def _number(doc: Mapping[str, Any], name: str) -> float:
    value = doc.get(name) if name == "objective" else (doc.get("metrics") or {}).get(name)
    if name == "n_clusters" and value is None:
        value = len(doc.get("clusters", ()))
    if name == "n_unassigned" and value is None:
        value = len(doc.get("unassigned", ()))
    return float(value) if isinstance(value, int | float) else 0.0


def _terms(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[TermChange, ...]:
    out = []
    for name in TERMS:
        x, y = _number(a, name), _number(b, name)
        out.append(TermChange(name, round(x, 6), round(y, 6), round(y - x, 6)))
    return tuple(out)


def _rules(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[RuleChange, ...]:
    ra = {str(s["name"]): s for s in a.get("constraints", ())}
    rb = {str(s["name"]): s for s in b.get("constraints", ())}
    order = list(ra) + [n for n in rb if n not in ra]
    out = []
    for name in order:
        x, y = ra.get(name), rb.get(name)
        out.append(
            RuleChange(
                name,
                str(x["status"]) if x else None,
                str(y["status"]) if y else None,
                int(x["violated"]) if x else 0,
                int(y["violated"]) if y else 0,
            )
        )
    return tuple(out)


def _reasons(
    moved: Sequence[CityMove],
    added: Sequence[CityMove],
    left: Sequence[CityMove],
    terms: Sequence[TermChange],
    rules: Sequence[RuleChange],
) -> tuple[str, ...]:
    out: list[str] = []
    if not (moved or added or left):
        out.append("The same cities are in the same clusters")
    if moved:
        out.append(
            f"{plural(len(moved), 'city', 'cities')} moved: "
            + and_join([f"{m.name} ({m.from_cluster} → {m.to_cluster})" for m in moved[:8]])
            + (f" and {len(moved) - 8} more" if len(moved) > 8 else "")
        )
    if added:
        out.append(
            f"{plural(len(added), 'city', 'cities')} added: "
            + and_join([f"{m.name} (to {m.to_cluster})" for m in added[:8]])
            + (f" and {len(added) - 8} more" if len(added) > 8 else "")
        )
    if left:
        out.append(
            f"{plural(len(left), 'city', 'cities')} left out: "
            + and_join([f"{m.name} (was in {m.from_cluster})" for m in left[:8]])
            + (f" and {len(left) - 8} more" if len(left) > 8 else "")
        )
    for t in terms:
        if t.name == "objective" or (t.change and t.name in ("worst_benefit", "n_unassigned")):
            out.append(f"{t.name}: {t.before:,.3f} → {t.after:,.3f} ({t.change:+,.3f})")
    for r in rules:
        if r.changed:
            out.append(
                f"{r.name}: {r.before or 'not checked'} → {r.after or 'not checked'}"
                f" (violated {r.violated_before} → {r.violated_after})"
            )
    return tuple(out)
