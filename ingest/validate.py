"""Check raw rows: types and ranges per row, then ids and references across rows.

Every problem is collected (never just the first) and located by file, line and column.
References are resolved against the rows of the same dataset that passed their own
checks plus what the store already holds, so a priority may name a city that was
ingested last month. Rows are checked in load order, which makes a row that names an
invalid row invalid too: with ``--skip-invalid`` nothing written can dangle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from graph.model import SPECS, Kind, to_props, validator
from graph.store import GraphBatch
from ingest.read import RawRow, RowError

IdsOf = Callable[[Kind], set[str]]
"""Ids already stored for a node kind."""


@dataclass(slots=True)
class Checked:
    batch: GraphBatch = field(default_factory=GraphBatch)
    errors: list[RowError] = field(default_factory=list)


def _message(err: Any) -> tuple[str, str]:
    """A pydantic error as (column, sentence)."""
    loc = err.get("loc", ())
    column = str(loc[0]) if loc else ""
    msg: str = err.get("msg", "invalid value")
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "is required; the cell is empty or the field is missing"
    elif err.get("type") == "literal_error":
        msg = msg.replace("Input should be", "must be")
    else:
        msg = msg.replace("Input should be", "should be")
    value = err.get("input")
    if isinstance(value, str) and value and len(value) <= 60 and repr(value) not in msg:
        msg = f"{msg} (got {value!r})"
    if len(loc) > 1:
        msg = f"item {int(loc[1]) + 1}: {msg}" if isinstance(loc[1], int) else msg
    return column, msg


def check_rows(rows: list[RawRow], stored_ids: IdsOf) -> Checked:
    out = Checked()
    by_kind: dict[Kind, list[RawRow]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    valid_ids: dict[Kind, set[str]] = {}

    def known(kind: Kind) -> set[str]:
        if kind not in valid_ids:
            valid_ids[kind] = set(stored_ids(kind))
        return valid_ids[kind]

    for kind in Kind:  # load order: a kind only names kinds before it
        spec = SPECS[kind]
        check = validator(kind)
        first_seen: dict[tuple[str, ...], int] = {}
        new_ids: set[str] = set()
        required = spec.required
        for raw in by_kind.get(kind, ()):
            # a blank required cell is a missing value, and is reported as "is required"
            values = {
                k: v
                for k, v in raw.values.items()
                if not (k in required and isinstance(v, str) and not v.strip())
            }
            try:
                obj = check.validate_python(values)
            except ValidationError as e:
                for err in e.errors(include_url=False):
                    column, msg = _message(err)
                    out.errors.append(RowError(raw.file, raw.line, column or None, msg))
                continue
            problems = _reference_problems(kind, obj, known) + _row_rules(kind, obj)
            props = to_props(obj, frozenset(raw.values))
            if kind == Kind.PARTNERSHIPS and props["city_a"] > props["city_b"]:
                props["city_a"], props["city_b"] = props["city_b"], props["city_a"]
            key = spec.key_of(props)
            if key in first_seen:
                what = "id" if spec.is_node else "row for " + ", ".join(spec.key)
                problems.append(
                    (
                        spec.key[-1],
                        f"duplicate {what} {'/'.join(key)!r} (first on line {first_seen[key]})",
                    )
                )
            if problems:
                out.errors.extend(RowError(raw.file, raw.line, c, m) for c, m in problems)
                continue
            first_seen[key] = raw.line
            if spec.is_node:
                new_ids.add(key[0])
            out.batch.add(kind, props)
        if spec.is_node:
            known(kind).update(new_ids)
    out.errors.sort(key=lambda e: (e.file, e.line))
    return out


def _row_rules(kind: Kind, obj: Any) -> list[tuple[str, str]]:
    """Rules that span fields of one row."""
    if kind == Kind.PARTNERSHIPS and obj.city_a == obj.city_b:
        return [("city_b", "a city cannot partner with itself")]
    if kind == Kind.PARTNER_INTERESTS and obj.city_id == obj.partner_id:
        return [("partner_id", "a city cannot be its own partner")]
    if kind == Kind.SUGGESTIONS and obj.city_id == obj.partner_id:
        return [("partner_id", "a city cannot be suggested to itself")]
    if kind == Kind.MATCH_STATUSES and obj.city_a >= obj.city_b:
        return [("city_b", "name the pair in id order, city_a before city_b (each pair once)")]
    if kind == Kind.CLUSTERS:
        if obj.lead_city and obj.lead_city not in obj.members:
            return [("lead_city", f"the lead city {obj.lead_city!r} is not among the members")]
        if len(set(obj.members)) != len(obj.members):
            return [("members", "a city is listed twice")]
    return []


def _reference_problems(
    kind: Kind, obj: Any, known: Callable[[Kind], set[str]]
) -> list[tuple[str, str]]:
    problems = []
    for ref in SPECS[kind].refs:
        value = getattr(obj, ref.field)
        names = value if ref.many else ((value,) if value else ())
        ids = known(ref.target)
        for name in names:
            if name not in ids:
                target = ref.target.value
                problems.append(
                    (
                        ref.field,
                        f"{name!r} names no row of {target} (neither in this dataset nor stored)",
                    )
                )
    return problems
