#!/usr/bin/env python3
"""Generate a synthetic city network in the interchange format, for benchmarks.

``generate(n_cities, seed)`` returns ``{file stem: [row, ...]}`` with one dict per row and
every column present (``None`` where a CSV cell would be blank, lists for list columns),
i.e. exactly what ``graph.model.to_props`` makes of a validated row. The same seed
always gives the same rows (one ``random.Random(seed)``, no other source of randomness).

Proportions, per city (``n`` cities):

=================  ===================  ===========================================
kind               rows                 relationships it makes
=================  ===================  ===========================================
networks           n / 15               --
themes             30                   --
cities             n                    IN_NETWORK: 0-2 per city (mean 1)
experts            n / 5                --
coordinators       n + n / 15           COORDINATES (city ones), FOR_NETWORK (national)
stakeholders       0.6 n                BASED_IN 1, WORKS_ON 1-2 (mean 1.5)
practices          0.3 n                PRACTICE_OF 1, ABOUT 1-2 (mean 1.5)
city_themes        4 n  (3-5 each)      PRIORITISES
index_scores       6.5 n (5-8 each)     SCORES
expert_themes      3 per expert (0.6 n) EXPERT_IN
partnerships       5 n                  PARTNER_OF (city_a < city_b, no self pair,
                                        no pair twice whatever the kind)
=================  ===================  ===========================================

That is about 16 relationship rows and 4.4 reference edges per city: ~20.5
relationships per city, ~19.3 rows per city. ``extras=True`` (``--extras``) adds accepted
clusters (n / 50), expert assignments (1-2 per cluster) and partner interests (n / 5),
without changing the other rows.

``to_batch(data, validate=...)`` turns the rows into a ``graph.store.GraphBatch``:
``validate=True`` runs them through ``ingest.validate.check_rows`` (the real ingest
path: pydantic validation, ``to_props``, reference and duplicate checks);
``validate=False`` uses the rows as they are (they already are canonical props; the
``--check`` option proves it on a sample).

Usage::

    .venv/bin/python -m scripts.netgen 1000 --seed 0 --write-csv /tmp/net1k
    .venv/bin/python -m scripts.netgen 100000 --stats        # counts and timings only
    .venv/bin/python -m scripts.netgen 2000 --check           # validated batch == fast batch
    .venv/bin/python -m scripts.netgen 2000 --extras --check  # with clusters & co.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from pathlib import Path
from typing import Any

from graph.csv_format import cell_text, csv_writer
from graph.model import SPECS, Kind

Rows = dict[str, list[dict[str, Any]]]

# Valid ISO 3166-1 alpha-2 and ISO 639-1 codes (checked by --check against graph.model).
COUNTRIES = [
    "PT",
    "ES",
    "IT",
    "FR",
    "DE",
    "GB",
    "IE",
    "NL",
    "BE",
    "LU",
    "CH",
    "AT",
    "NO",
    "SE",
    "DK",
    "FI",
    "IS",
    "PL",
    "CZ",
    "SK",
    "HU",
    "RO",
    "BG",
    "GR",
    "CY",
    "MT",
    "HR",
    "SI",
    "RS",
    "UA",
    "MD",
    "GE",
    "AM",
    "AZ",
    "TR",
    "MA",
    "TN",
    "IL",
    "JO",
    "CA",
    "US",
    "MX",
    "AU",
    "NZ",
    "JP",
    "KR",
    "FO",
    "LT",
    "LV",
    "EE",
]
LANGUAGES = [
    "en",
    "fr",
    "de",
    "es",
    "it",
    "pt",
    "pl",
    "uk",
    "tr",
    "ar",
    "nl",
    "sv",
    "no",
    "da",
    "el",
    "ro",
    "hu",
    "ko",
    "ja",
    "he",
    "ru",
    "ca",
    "eu",
    "gl",
    "fi",
    "cs",
    "sk",
    "sl",
    "hr",
    "sr",
]
THEMES = [
    "anti-discrimination",
    "anti-rumours",
    "business-and-labour-market",
    "commitment",
    "cultural-and-social-life",
    "education",
    "gender-equality",
    "health-and-social-care",
    "housing-and-urban-planning",
    "intercultural-competence",
    "interaction",
    "language",
    "leadership-and-citizenship",
    "media-and-communication",
    "mediation",
    "neighbourhoods",
    "political-participation",
    "public-services",
    "public-space",
    "welcoming",
    "international-outlook",
    "sport",
    "youth",
    "digital-inclusion",
    "climate-and-environment",
    "refugees",
    "roma-inclusion",
    "faith-and-dialogue",
    "safety-and-policing",
    "data-and-evaluation",
]
assert len(THEMES) == 30 and len(set(THEMES)) == 30
WORDS = [
    "intercultural",
    "city",
    "network",
    "migrants",
    "residents",
    "dialogue",
    "diversity",
    "inclusion",
    "equality",
    "council",
    "strategy",
    "neighbourhood",
    "youth",
    "schools",
    "culture",
    "festival",
    "public",
    "services",
    "participation",
    "welcome",
    "programme",
    "language",
    "housing",
    "employers",
    "mediation",
    "community",
    "local",
    "policy",
    "campaign",
    "rumours",
    "trust",
    "open",
    "citizens",
]
STAKEHOLDER_KINDS = (
    "ngo",
    "academia",
    "business",
    "migrant_association",
    "foundation",
    "media",
    "public_body",
)
PARTNERSHIP_KINDS = ("twinning", "project", "visit", "cluster")
FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dara",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kasia",
    "Luca",
    "Mara",
    "Nadia",
    "Omar",
    "Pia",
]
LAST = [
    "Silva",
    "Rossi",
    "Novak",
    "Kaya",
    "Haddad",
    "Berg",
    "Moreau",
    "Costa",
    "Weber",
    "Horvat",
    "Popescu",
    "Jensen",
    "Ali",
]


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choices(WORDS, k=n_words)).capitalize() + "."


def generate(n_cities: int, seed: int = 0, *, extras: bool = False) -> Rows:
    """Rows of every kind for a network of ``n_cities`` cities (deterministic in ``seed``).

    ``extras=True`` adds the kinds the matching workflow writes back (accepted
    ``clusters`` with their ``assignments`` of experts, and ``partner_interests``); the
    other kinds are the same rows as without it.

    The cyclic garbage collector is paused meanwhile: millions of new dicts (none in a
    cycle) would otherwise trigger it thousands of times, which costs ~45% of the time.
    """
    if n_cities < 2:
        raise ValueError("need at least 2 cities")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        data = _generate(n_cities, seed)
        if extras:
            data.update(_extras(data, random.Random(f"{seed}-extras")))
        return data
    finally:
        if was_enabled:
            gc.enable()


def _generate(n_cities: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rand, sample, uniform = rng.random, rng.sample, rng.uniform

    # random.randrange/choice are three Python calls deep; these are one (same determinism).
    def randrange(k: int) -> int:
        return int(rand() * k)

    def choice(seq: Any) -> Any:
        return seq[int(rand() * len(seq))]

    n = n_cities
    width = max(6, len(str(n)))
    n_networks = max(1, n // 15)
    n_experts = max(1, n // 5)
    n_stake = max(1, round(0.6 * n))
    n_pract = max(1, round(0.3 * n))

    themes = [
        {"id": t, "name": t.replace("-", " ").capitalize(), "description": _text(rng, 12)}
        for t in THEMES
    ]
    net_ids = [f"net-{j:0{width}d}" for j in range(n_networks)]
    networks = [
        {"id": nid, "name": f"National network {j}", "country": choice(COUNTRIES)}
        for j, nid in enumerate(net_ids)
    ]
    city_ids = [f"city-{i:0{width}d}" for i in range(n)]
    cities = []
    for i, cid in enumerate(city_ids):
        k_net = (0, 1, 1, 2)[randrange(4)]  # mean 1
        nets = sample(net_ids, k_net) if k_net <= n_networks else net_ids[:]
        desc = _text(rng, 10 + randrange(20)) if rand() < 0.7 else None
        cities.append(
            {
                "id": cid,
                "name": f"City {i}",
                "country": choice(COUNTRIES),
                "lat": round(uniform(-60.0, 70.0), 5),
                "lon": round(uniform(-170.0, 170.0), 5),
                "population": 5000 + randrange(3_000_000) if rand() < 0.9 else None,
                "languages": sample(LANGUAGES, 1 + randrange(3)),
                "membership": "international" if rand() < 0.6 else "national",
                "networks": nets,
                "joined": 2008 + randrange(17) if rand() < 0.9 else None,
                "coordinator_hours": float(4 + randrange(40)) if rand() < 0.8 else None,
                "description": desc,
            }
        )

    exp_ids = [f"exp-{e:0{width}d}" for e in range(n_experts)]
    experts = []
    for e, eid in enumerate(exp_ids):
        has_geo = rand() < 0.8
        experts.append(
            {
                "id": eid,
                "name": f"{choice(FIRST)} {choice(LAST)} {e}",
                "languages": sample(LANGUAGES, 1 + randrange(3)),
                "country": choice(COUNTRIES),
                "lat": round(uniform(-60.0, 70.0), 5) if has_geo else None,
                "lon": round(uniform(-170.0, 170.0), 5) if has_geo else None,
                "max_assignments": 1 + randrange(5),
                "bio": _text(rng, 15 + randrange(15)),
            }
        )

    coordinators = [
        {
            "id": f"co-{cid}",
            "name": f"{choice(FIRST)} {choice(LAST)}",
            "city_id": cid,
            "network_id": None,
            "role": "city",
            "languages": sample(LANGUAGES, 1 + randrange(2)),
            "hours_per_month": float(4 + randrange(40)),
        }
        for cid in city_ids
    ]
    coordinators += [
        {
            "id": f"co-{nid}",
            "name": f"{choice(FIRST)} {choice(LAST)}",
            "city_id": None,
            "network_id": nid,
            "role": "national",
            "languages": sample(LANGUAGES, 1 + randrange(2)),
            "hours_per_month": float(10 + randrange(60)),
        }
        for nid in net_ids
    ]
    stakeholders = [
        {
            "id": f"sh-{s:0{width}d}",
            "name": f"Stakeholder {s}",
            "kind": choice(STAKEHOLDER_KINDS),
            "city_id": city_ids[randrange(n)],
            "themes": sample(THEMES, 1 + randrange(2)),
            "description": _text(rng, 8 + randrange(10)) if rand() < 0.5 else None,
        }
        for s in range(n_stake)
    ]
    practices = [
        {
            "id": f"pr-{p:0{width}d}",
            "city_id": city_ids[randrange(n)],
            "title": f"Practice {p}: {_text(rng, 4)}",
            "themes": sample(THEMES, 1 + randrange(2)),
            "year": 2010 + randrange(15) if rand() < 0.9 else None,
            "description": _text(rng, 15 + randrange(20)),
        }
        for p in range(n_pract)
    ]

    city_themes = []
    index_scores = []
    for cid in city_ids:
        for t in sample(THEMES, 3 + randrange(3)):  # 3-5, mean 4
            city_themes.append({"city_id": cid, "theme_id": t, "priority": 1 + randrange(5)})
        for t in sample(THEMES, 5 + randrange(4)):  # 5-8, mean 6.5
            index_scores.append(
                {"city_id": cid, "theme_id": t, "score": round(uniform(0.0, 100.0), 1)}
            )
    expert_themes = [
        {"expert_id": eid, "theme_id": t, "level": 1 + randrange(5)}
        for eid in exp_ids
        for t in sample(THEMES, 2 + randrange(3))  # 2-4, mean 3
    ]

    # 5 n distinct undirected pairs, each city starting 5 of them (so each is in ~10).
    target = 5 * n if n > 11 else n * (n - 1) // 2
    pairs: set[tuple[int, int]] = set()
    partnerships = []
    i = 0
    while len(pairs) < target:
        a, b = i % n, randrange(n)
        i += 1
        if a == b:
            continue
        ca, cb = city_ids[a], city_ids[b]
        if ca > cb:
            ca, cb, a, b = cb, ca, b, a
        if (a, b) in pairs:
            continue
        pairs.add((a, b))
        partnerships.append(
            {
                "city_a": ca,
                "city_b": cb,
                "kind": choice(PARTNERSHIP_KINDS),
                "since": 2000 + randrange(25) if rand() < 0.7 else None,
            }
        )

    return {
        "networks": networks,
        "themes": themes,
        "cities": cities,
        "experts": experts,
        "coordinators": coordinators,
        "stakeholders": stakeholders,
        "practices": practices,
        "city_themes": city_themes,
        "index_scores": index_scores,
        "expert_themes": expert_themes,
        "partnerships": partnerships,
    }


def _extras(data: Rows, rng: random.Random) -> Rows:
    """Accepted clusters (n/50, 3-8 member cities, a lead among them), 1-2 expert
    assignments per cluster, and a partner interest for one city in five."""
    rand, sample = rng.random, rng.sample
    city_ids = [c["id"] for c in data["cities"]]
    exp_ids = [e["id"] for e in data["experts"]]
    n = len(city_ids)
    width = max(6, len(str(n)))
    clusters = []
    for c in range(max(1, n // 50)):
        members = sample(city_ids, min(n, 3 + int(rand() * 6)))
        clusters.append(
            {
                "id": f"cl-{c:0{width}d}",
                "name": f"Cluster {c}",
                "kind": "thematic" if rand() < 0.7 else "geographic",
                "members": members,
                "theme_ids": sample(THEMES, 1 + int(rand() * 2)),
                "lead_city": members[0],
                "working_languages": sample(LANGUAGES, 1 + int(rand() * 2)),
                "period": "2026-2027",
                "revision": 1,
                "seed": int(rand() * 1000),
                "params": None,
                "accepted_on": "2026-01-15",
            }
        )
    assignments = [
        {"expert_id": eid, "cluster_id": cl["id"], "score": round(rand(), 3), "reasons": None}
        for cl in clusters
        for eid in sample(exp_ids, min(len(exp_ids), 1 + int(rand() * 2)))
    ]
    interests, seen = [], set()
    for i in range(0, n, 5):
        j = int(rand() * n)
        if j == i or (i, j) in seen:
            continue
        seen.add((i, j))
        interests.append(
            {
                "city_id": city_ids[i],
                "partner_id": city_ids[j],
                "status": "interested" if rand() < 0.7 else "not_for_us",
                "note": None,
            }
        )
    return {"clusters": clusters, "assignments": assignments, "partner_interests": interests}


# --- counting -----------------------------------------------------------------------------


def count_relationships(data: Rows) -> dict[str, int]:
    """Relationships the dataset makes, by type: one per relationship-kind row, plus one
    per id named in a node's reference field (``cities.networks``, ``stakeholders.city_id``,
    ``stakeholders.themes``...), which Neo4j stores as a relationship too."""
    out: dict[str, int] = {}
    for kind, spec in SPECS.items():
        rows = data.get(kind.value, ())
        if spec.rel is not None:
            out[spec.rel.value] = out.get(spec.rel.value, 0) + len(rows)
            continue
        for ref in spec.refs:
            assert ref.rel is not None
            if ref.many:
                c = sum(len(r.get(ref.field) or ()) for r in rows)
            else:
                c = sum(1 for r in rows if r.get(ref.field))
            out[ref.rel.value] = out.get(ref.rel.value, 0) + c
    return out


def stats(data: Rows) -> dict[str, Any]:
    rels = count_relationships(data)
    node_rows = sum(len(data.get(k.value, ())) for k, s in SPECS.items() if s.is_node)
    rel_rows = sum(len(data.get(k.value, ())) for k, s in SPECS.items() if not s.is_node)
    n = len(data["cities"])
    return {
        "cities": n,
        "rows": node_rows + rel_rows,
        "node_rows": node_rows,
        "relationship_rows": rel_rows,
        "reference_edges": sum(rels.values()) - rel_rows,
        "relationships": sum(rels.values()),
        "relationships_per_city": round(sum(rels.values()) / n, 2),
        "rows_by_kind": {k: len(v) for k, v in data.items()},
        "relationships_by_type": rels,
    }


# --- into a batch / onto disk ---------------------------------------------------------------


def to_batch(data: Rows, *, validate: bool = False) -> Any:
    """A ``GraphBatch`` of the rows.

    ``validate=True``: the real ingest path (``ingest.validate.check_rows`` with an empty
    store: pydantic checks, ``to_props``, references, duplicates); raises on any error.
    ``validate=False``: the rows as they are, in a batch (no copy of the dicts).
    """
    from graph.store import GraphBatch

    if not validate:
        return GraphBatch({k: list(data[k.value]) for k in Kind if data.get(k.value)})
    from ingest.read import RawRow
    from ingest.validate import check_rows

    raw = [
        RawRow(kind, f"{kind.value}.json", i + 1, row)
        for kind in Kind
        for i, row in enumerate(data.get(kind.value, ()))
    ]
    checked = check_rows(raw, lambda kind: set())
    if checked.errors:
        raise ValueError(f"{len(checked.errors)} invalid rows, first: {checked.errors[0]}")
    return checked.batch


def write_csv(data: Rows, folder: Path) -> dict[str, int]:
    """One CSV per kind, in the interchange format (``ingest.read`` reads it back)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind in Kind:
        rows = data.get(kind.value, [])
        columns = SPECS[kind].columns
        with (folder / f"{kind.value}.csv").open("w", encoding="utf-8", newline="") as fh:
            out = csv_writer(fh)
            out.writerow(columns)
            for row in rows:
                out.writerow([cell_text(row.get(c)) for c in columns])
        written[f"{kind.value}.csv"] = len(rows)
    return written


def check(data: Rows) -> None:
    """Prove the fast batch equals the validated one (the whole dataset: keep it small)."""
    fast = to_batch(data, validate=False)
    slow = to_batch(data, validate=True)
    for kind in Kind:
        a, b = fast.rows.get(kind, []), slow.rows.get(kind, [])
        if a != b:
            bad = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
            raise AssertionError(
                f"{kind.value}: fast batch differs from validated batch "
                f"({len(a)} vs {len(b)} rows; first difference at {bad}: "
                f"{a[bad] if bad is not None else ''} != {b[bad] if bad is not None else ''})"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n_cities", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--extras", action="store_true", help="also clusters, assignments and partner_interests"
    )
    ap.add_argument("--write-csv", type=Path, metavar="DIR", help="write one CSV per kind here")
    ap.add_argument("--write-json", type=Path, metavar="FILE", help="write one JSON file")
    ap.add_argument("--check", action="store_true", help="validated batch == fast batch")
    ap.add_argument("--stats", action="store_true", help="print counts and timings (JSON)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = generate(args.n_cities, args.seed, extras=args.extras)
    gen_s = time.perf_counter() - t0
    info: dict[str, Any] = {"seed": args.seed, "generate_s": round(gen_s, 3), **stats(data)}
    if args.check:
        t0 = time.perf_counter()
        check(data)
        info["check"] = "ok"
        info["check_s"] = round(time.perf_counter() - t0, 3)
    if args.write_csv:
        info["csv"] = write_csv(data, args.write_csv)
    if args.write_json:
        args.write_json.parent.mkdir(parents=True, exist_ok=True)
        args.write_json.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    if args.stats or args.check or not (args.write_csv or args.write_json):
        print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
