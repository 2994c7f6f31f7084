"""What every suggestion carries, and the words it is written with.

``Reason`` is a sentence a person reads with the number behind it; the helpers below are
the one way the matchers count ("3 cities"), list ("Lyon, Turin and Porto") and name
languages and countries ("Portuguese", "the Netherlands"), so every page reads alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import pycountry

DASH = "\u2013"
"""En dash, between two names or two years ("Lyon\u2013Turin", "2025\u20132027")."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One plain-language reason.

    ``kind`` is a stable machine tag ("shared_theme", "complementary_strength",
    "language", "distance", "graph_proximity", ...); ``text`` is the sentence shown to
    people ("Both prioritise anti-rumours (5/5 and 4/5)"); ``weight`` is its share of
    the score it explains (0 when it is information rather than a score term).
    """

    kind: str
    text: str
    weight: float = 0.0


def plural(n: int, one: str, many: str | None = None) -> str:
    """``plural(1, "city", "cities")`` -> "1 city"; ``plural(3, "expert")`` -> "3 experts"."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def and_join(items: Iterable[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def name_list(names: Sequence[str], limit: int = 3) -> str:
    """Up to ``limit`` names spelled out, then "and N others" (never "and 1 others")."""
    if len(names) <= limit + 1:
        return and_join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} others"


def is_are(n: int) -> str:
    return "is" if n == 1 else "are"


def percent(x: float) -> str:
    return f"{round(100 * x)}%"


@cache
def language_name(code: str) -> str:
    """ISO 639-1 code -> English name ("pt" -> "Portuguese"); unknown codes stay as given."""
    lang = pycountry.languages.get(alpha_2=code)
    return str(lang.name) if lang is not None else code


def language_names(codes: Iterable[str]) -> str:
    return and_join([language_name(code) for code in codes])


_THE_COUNTRIES = frozenset(
    [
        "AE",
        "BS",
        "CD",
        "CF",
        "CZ",
        "DO",
        "FO",
        "GB",
        "GM",
        "KY",
        "MH",
        "NL",
        "PH",
        "SB",
        "SC",
        "US",
        "VA",
    ]
)


@cache
def country_name(code: str) -> str:
    """ISO 3166-1 alpha-2 -> a name that reads after "in": "Italy", "the Netherlands"."""
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    name = str(getattr(country, "common_name", None) or country.name)
    return f"the {name}" if code in _THE_COUNTRIES else name
