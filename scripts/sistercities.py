#!/usr/bin/env python3
"""Wikidata's sister cities of 25 EU countries (2017) as an iccmatch dataset.

Why: partner suggestions must be proven on a network nobody here invented. This turns
``shared/data/sistercities-wikidata-2017/*.tsv`` (one row per "twinned administrative
body" statement; see its README) into the interchange format (docs/data-format.md):
``cities.csv`` (id, name, country, lat, lon, population, languages, membership) and
``partnerships.csv`` (city_a, city_b, kind=twinning). What the source makes us decide:

- a city is its English label, its country and its place: mentions with the same label
  and country within ``SAME_PLACE_DEG`` of each other (in latitude and longitude) are one
  city (Wikidata gives some items two coordinates, up to ~10 km apart); its place
  is the coordinate its mentions give most, its population the largest they give;
- countries are English names, mapped with pycountry plus ``COUNTRY_NAMES`` for the ones
  it misses (old names, disputed territories as ISO 3166 places them); a row naming a
  country neither knows (former states, blank Wikidata nodes, Kosovo) is dropped;
- a file's own cities take the country Wikidata gives them where they also appear as a
  sister city: in the source, denmark.tsv lists Swedish cities and sweden.tsv Danish ones
  under their file's country, and the majority vote puts them right;
- languages are the main official languages of the country (``LANGUAGES``), since the
  source has none; ids are slugs such as ``de-rotenburg-an-der-wumme``, made unique;
- a tie listed from both sides (or twice) is one tie; a city twinned with itself is dropped.

    .venv/bin/python -m scripts.sistercities OUT_DIR [--source DIR]

prints the counts (cities, ties, dropped rows by reason) as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycountry

from graph.csv_format import cell_text, csv_writer

ROOT = Path(__file__).resolve().parents[1]

SOURCE = ROOT.parent / "shared" / "data" / "sistercities-wikidata-2017"
CITY_COLUMNS = ("id", "name", "country", "lat", "lon", "population", "languages", "membership")
TIE_COLUMNS = ("city_a", "city_b", "kind")
DROP_REASONS = (
    "a country with no ISO 3166-1 code",
    "missing or impossible coordinates",
    "a city without a label",
    "a city twinned with itself",
)
SAME_PLACE_DEG = 0.1
"""Two mentions of one label and country this close (degrees, both axes; about 10 km) are one
city: Wikidata gives some items two coordinates (Vilnius, Rotterdam, Liberec: 5-10 km apart),
while towns sharing a name in one country are mostly farther apart (one exception in the
source: Kansas City, Kansas and Missouri, become one)."""

COUNTRY_NAMES = {
    "Russia": "RU",
    "Turkey": "TR",
    "Palestine": "PS",
    "Palestinian territories": "PS",
    "Palestinian National Authority": "PS",
    "Gaza Strip": "PS",
    "Democratic Republic of the Congo": "CD",
    "Republic of Macedonia": "MK",
    "Ivory Coast": "CI",
    "Swaziland": "SZ",
    "Cape Verde": "CV",
    "East Timor": "TL",
    "Sao Tomé and Príncipe": "ST",
    "Falkland Islands": "FK",
    "Somaliland": "SO",
    "Transnistria": "MD",
    "Luhansk People's Republic": "UA",
}
"""English names pycountry does not resolve (ISO 3166 places the territories as here)."""

# Main official languages (ISO 639-1) of each country the source names; a country missing
# here gets no languages (and is counted in the report).
_LANGUAGE_TABLE = """
AD ca; AE ar; AF ps fa; AL sq; AM hy; AO pt; AR es; AT de; AU en; AZ az; BA bs hr sr;
BD bn; BE nl fr de; BF fr; BG bg; BI rn fr; BJ fr; BO es; BR pt; BW en tn; BY be ru;
CA en fr; CD fr; CF fr sg; CG fr; CH de fr it; CI fr; CL es; CM fr en; CN zh; CO es;
CR es; CU es; CV pt; CW nl; CY el tr; CZ cs; DE de; DJ fr ar; DK da; DO es; DZ ar; EC es;
EE et; EG ar; EH ar; ER ti ar; ES es; ET am; FI fi sv; FK en; FO fo da; FR fr; GA fr;
GB en; GE ka; GG en; GH en; GL kl; GM en; GQ es fr; GR el; GT es; GW pt; HN es; HR hr;
HT fr ht; HU hu; ID id; IE en ga; IL he; IN hi en; IQ ar ku; IR fa; IS is; IT it; JE en;
JM en; JO ar; JP ja; KE sw en; KH km; KP ko; KR ko; KW ar; KZ kk ru; LB ar; LI de; LK si ta;
LS st en; LT lt; LU lb fr de; LV lv; LY ar; MA ar; MC fr; MD ro; ME sr; MG mg fr; MK mk;
ML fr; MN mn; MR ar; MT mt en; MU en fr; MW en ny; MX es; MY ms; MZ pt; NA en; NE fr;
NG en; NI es; NL nl; NO no; NZ en mi; OM ar; PA es; PE es; PH tl en; PK ur en; PL pl;
PS ar; PT pt; PY es gn; QA ar; RO ro; RS sr; RU ru; RW rw fr en; SA ar; SD ar en; SE sv;
SI sl; SK sk; SL en; SM it; SN fr; SO so ar; SR nl; ST pt; SV es; SY ar; SZ en ss; TD fr ar;
TG fr; TH th; TJ tg; TL pt; TM tk; TN ar; TR tr; TT en; TW zh; TZ sw en; UA uk; UG en sw;
US en; UY es; UZ uz; VE es; VN vi; ZA en af zu xh; ZM en; ZW en sn nd
"""
LANGUAGES: dict[str, tuple[str, ...]] = {
    code: tuple(langs) for entry in _LANGUAGE_TABLE.split(";") for code, *langs in [entry.split()]
}

_LETTERS = str.maketrans(
    {"ß": "ss", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l"}
    | {"Ł": "l", "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "\u0131": "i"}
)


def slug(text: str) -> str:
    """Lower-case ASCII words joined by dashes: 'Rotenburg an der Wümme' -> 'rotenburg-an-der-wumme'."""
    plain = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    ascii_text = plain.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:80].strip("-")


_codes: dict[str, str | None] = {}


def country_code(name: str) -> str | None:
    """ISO 3166-1 alpha-2 code of an English country name; None when neither table knows it."""
    if name not in _codes:
        code = COUNTRY_NAMES.get(name)
        if code is None:
            try:
                code = str(pycountry.countries.lookup(name).alpha_2)
            except LookupError:
                code = None
        _codes[name] = code
    return _codes[name]


@dataclass(frozen=True, slots=True)
class Mention:
    """One end of one row: a city as that row names it."""

    label: str
    country: str  # ISO code
    lat: float
    lon: float
    population: int | None


@dataclass
class Place:
    label: str
    country: str
    coordinates: Counter[tuple[float, float]] = field(default_factory=Counter)
    population: int | None = None
    id: str = ""

    def near(self, lat: float, lon: float) -> bool:
        return any(
            abs(a - lat) <= SAME_PLACE_DEG and abs(b - lon) <= SAME_PLACE_DEG
            for a, b in self.coordinates
        )

    @property
    def where(self) -> tuple[float, float]:
        return max(self.coordinates.items(), key=lambda kv: kv[1])[0]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _population(text: str) -> int | None:
    value = _number(text) if text.strip() else None
    return int(value) if value is not None and 0 < value <= 1e10 else None  # 0: unknown


def read_rows(source: Path) -> list[tuple[str, dict[str, str]]]:
    """Every row of every file, as (file name, row), files in name order."""
    files = sorted(source.glob("*.tsv"))
    if not files:
        raise SystemExit(f"no .tsv files in {source}: pass the data folder with --source")
    rows = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as fh:
            rows += [(path.name, row) for row in csv.DictReader(fh, delimiter="\t")]
    return rows


def file_countries(rows: list[tuple[str, dict[str, str]]]) -> dict[str, str | None]:
    """Each file's country: the one Wikidata gives most to the file's cities where they
    also appear as sister cities; else the file's own ``origincountry``."""
    as_sister: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for _, r in rows:
        code, lat, lon = (
            country_code(r["destination_countryLabel"]),
            _number(r["destinationlat"]),
            _number(r["destinationlong"]),
        )
        if code and lat is not None and lon is not None:
            as_sister[r["sistercityLabel"]].append((lat, lon, code))
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    stated: dict[str, str] = {}
    for name, r in rows:
        stated.setdefault(name, r["origincountry"])
        lat, lon = _number(r["originlat"]), _number(r["originlong"])
        if lat is None or lon is None:
            continue
        for a, b, code in as_sister.get(r["origincityLabel"], ()):
            if abs(a - lat) <= SAME_PLACE_DEG and abs(b - lon) <= SAME_PLACE_DEG:
                votes[name][code] += 1
                break
    return {
        name: votes[name].most_common(1)[0][0] if votes[name] else country_code(label)
        for name, label in stated.items()
    }


class Places:
    """Mentions -> cities, by label and country, then by place (``SAME_PLACE_DEG``)."""

    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], list[Place]] = defaultdict(list)

    def add(self, m: Mention) -> Place:
        group = self._by_name[(m.label, m.country)]
        place = next((p for p in group if p.near(m.lat, m.lon)), None)
        if place is None:
            place = Place(m.label, m.country)
            group.append(place)
        place.coordinates[(m.lat, m.lon)] += 1
        if m.population is not None:
            place.population = max(place.population or 0, m.population)
        return place

    def all(self) -> list[Place]:
        places = [p for group in self._by_name.values() for p in group]
        places.sort(key=lambda p: (p.country, p.label, p.where))
        taken: set[str] = set()
        for p in places:
            base = f"{p.country.lower()}-{slug(p.label) or 'place'}"
            p.id, n = base, 1
            while p.id in taken:
                n += 1
                p.id = f"{base}-{n}"
            taken.add(p.id)
        return places


def _mention(label: str, code: str | None, lat: str, lon: str, pop: str) -> Mention | str:
    """The mention, or why the row cannot place it."""
    name = label.strip()
    if not name:
        return "a city without a label"
    if code is None:
        return "a country with no ISO 3166-1 code"
    y, x = _number(lat), _number(lon)
    if y is None or x is None or not (-90 <= y <= 90 and -180 <= x <= 180):
        return "missing or impossible coordinates"
    return Mention(name[:300], code, y, x, _population(pop))


def convert(source: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(city rows, partnership rows, report) from the source folder."""
    rows = read_rows(source)
    origin_country = file_countries(rows)
    places = Places()
    pairs: list[tuple[Place, Place]] = []
    dropped: Counter[str] = Counter(dict.fromkeys(DROP_REASONS, 0))
    unknown_countries: Counter[str] = Counter()
    for name, r in rows:
        sister_code = country_code(r["destination_countryLabel"])
        if sister_code is None:
            unknown_countries[r["destination_countryLabel"]] += 1
        ends = (
            _mention(
                r["origincityLabel"],
                origin_country[name],
                r["originlat"],
                r["originlong"],
                r["originpopulation"],
            ),
            _mention(
                r["sistercityLabel"],
                sister_code,
                r["destinationlat"],
                r["destinationlong"],
                r["destinationpopulation"],
            ),
        )
        problem = next((e for e in ends if isinstance(e, str)), None)
        if problem is not None:
            dropped[problem] += 1
            continue
        a, b = (places.add(e) for e in ends if isinstance(e, Mention))
        if a is b:
            dropped["a city twinned with itself"] += 1
            continue
        pairs.append((a, b))
    cities = places.all()  # gives the ids
    ties = {(min(a.id, b.id), max(a.id, b.id)) for a, b in pairs}
    stated = {name: r["origincountry"] for name, r in rows}
    corrected = {
        name: f"{label} -> {origin_country[name]}"
        for name, label in stated.items()
        if origin_country[name] != country_code(label)
    }
    no_languages = sorted({p.country for p in cities} - set(LANGUAGES))
    city_rows = [
        {
            "id": p.id,
            "name": p.label,
            "country": p.country,
            "lat": round(p.where[0], 6),
            "lon": round(p.where[1], 6),
            "population": p.population,
            "languages": list(LANGUAGES.get(p.country, ())),
            "membership": "international",
        }
        for p in cities
    ]
    tie_rows = [{"city_a": a, "city_b": b, "kind": "twinning"} for a, b in sorted(ties)]
    report = {
        "rows": len(rows),
        "cities": len(city_rows),
        "countries": len({p.country for p in cities}),
        "ties": len(tie_rows),
        "rows_repeating_a_tie": len(pairs) - len(ties),
        "dropped_rows": dict(dropped.most_common()),
        "unknown_countries": dict(unknown_countries.most_common()),
        "origin_country_corrected": corrected,
        "countries_without_languages": no_languages,
    }
    return city_rows, tie_rows, report


def write_csv(path: Path, columns: Iterable[str], rows: list[dict[str, Any]]) -> None:
    names = list(columns)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv_writer(fh)
        writer.writerow(names)
        for row in rows:
            writer.writerow([cell_text(row[c]) for c in names])


def write_dataset(out: Path, source: Path = SOURCE) -> dict[str, Any]:
    """Convert ``source`` into ``out`` (created if needed); the report of ``convert``."""
    cities, ties, report = convert(source)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "cities.csv", CITY_COLUMNS, cities)
    write_csv(out / "partnerships.csv", TIE_COLUMNS, ties)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder to write cities.csv and partnerships.csv")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the folder of .tsv files")
    args = parser.parse_args()
    print(json.dumps(write_dataset(args.out, args.source), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
