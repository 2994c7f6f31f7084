"""The network's domain model: what a city, a theme, an expert... is, and how they relate.

One frozen dataclass per row kind of the interchange format (see docs/data-format.md).
The same classes serve two purposes:

* validation at the edge: ``validator(kind)`` returns a pydantic ``TypeAdapter`` whose
  annotated constraints (ISO codes, ranges, lengths) check untrusted rows;
* plain data for the matchers: stores build them directly (no validation cost) when
  they take a snapshot.

``SPECS`` says, per kind, how rows map onto the graph: a node with a label, or a
relationship between two nodes, plus the references a row makes to other rows (each
of which is also a relationship in Neo4j). Labels and relationship types are closed
enums: nothing outside them can ever reach a query.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, TypeAdapter

YEAR_MIN, YEAR_MAX = 1900, 2100
LIST_SEPARATOR = ";"


class Kind(StrEnum):
    """Row kinds, named after the files of the interchange format, in load order."""

    NETWORKS = "networks"
    THEMES = "themes"
    CITIES = "cities"
    EXPERTS = "experts"
    COORDINATORS = "coordinators"
    STAKEHOLDERS = "stakeholders"
    PRACTICES = "practices"
    CLUSTERS = "clusters"
    CITY_THEMES = "city_themes"
    INDEX_SCORES = "index_scores"
    EXPERT_THEMES = "expert_themes"
    PARTNERSHIPS = "partnerships"
    ASSIGNMENTS = "assignments"
    PARTNER_INTERESTS = "partner_interests"
    MATCH_STATUSES = "match_statuses"
    OUTCOMES = "outcomes"
    EXPERT_CONFLICTS = "expert_conflicts"
    SUGGESTIONS = "suggestions"


class Label(StrEnum):
    """Node labels. The only labels any query may use."""

    CITY = "City"
    NETWORK = "Network"
    THEME = "Theme"
    COORDINATOR = "Coordinator"
    STAKEHOLDER = "Stakeholder"
    EXPERT = "Expert"
    PRACTICE = "Practice"
    CLUSTER = "Cluster"
    OUTCOME = "Outcome"


class RelType(StrEnum):
    """Relationship types. The only types any query may use."""

    PRIORITISES = "PRIORITISES"  # City -> Theme {priority}
    SCORES = "SCORES"  # City -> Theme {score}
    EXPERT_IN = "EXPERT_IN"  # Expert -> Theme {level}
    PARTNER_OF = "PARTNER_OF"  # City -> City {kind, since}
    IN_NETWORK = "IN_NETWORK"  # City -> Network
    COORDINATES = "COORDINATES"  # Coordinator -> City
    FOR_NETWORK = "FOR_NETWORK"  # Coordinator -> Network
    BASED_IN = "BASED_IN"  # Stakeholder -> City / Practice -> City
    WORKS_ON = "WORKS_ON"  # Stakeholder -> Theme
    PRACTICE_OF = "PRACTICE_OF"  # Practice -> City
    ABOUT = "ABOUT"  # Practice -> Theme, Cluster -> Theme
    MEMBER_OF_CLUSTER = "MEMBER_OF_CLUSTER"  # City -> Cluster
    LED_BY = "LED_BY"  # Cluster -> City
    ASSIGNED_TO = "ASSIGNED_TO"  # Expert -> Cluster {score, reasons}
    INTERESTED_IN = "INTERESTED_IN"  # City -> City {status, note}: a coordinator's answer
    FOLLOWED_UP = "FOLLOWED_UP"  # City -> City {status, on, note}: a mutual match's next step
    OUTCOME_OF = "OUTCOME_OF"  # Outcome -> Cluster
    VISIT_BY = "VISIT_BY"  # Outcome -> Expert: the outcome of that expert's visit
    RATED_BY = "RATED_BY"  # Outcome -> City: a member city's own rating
    CONFLICTS_WITH = "CONFLICTS_WITH"  # Expert -> City {reason}: may not serve its clusters
    SUGGESTED = "SUGGESTED"  # City -> City {on, rank}: a partner suggested to the city


# --- field types: each carries its own check and a message a person understands ---------


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _split_list(value: Any) -> Any:
    """Lists arrive as ``a;b`` in CSV cells and as arrays in JSON; both become tuples."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(LIST_SEPARATOR) if part.strip())
    return value


def _check_id(value: str) -> str:
    """Ids travel in cells, lists and URL paths (``/v1/cities/{id}``): each must survive all three.

    A ``/`` (even escaped as ``%2F``) splits the path segment, and ``.`` and ``..`` are
    path steps that clients and proxies collapse, so such ids could be stored but never
    addressed.
    """
    if LIST_SEPARATOR in value:
        raise ValueError(f"ids may not contain {LIST_SEPARATOR!r}, the list separator")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("ids may not contain control characters")
    if "/" in value:
        raise ValueError("ids may not contain '/': they are part of URL paths")
    if value in {".", ".."}:
        raise ValueError(f"{value!r} is not an id: it is a step in a URL path")
    return value


def _check_country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. PT, IT, UA)")
    return code


def _check_day(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date as YYYY-MM-DD (e.g. 2026-03-15)") from None


def _check_language(value: str) -> str:
    code = value.strip().lower()
    if len(code) != 2 or pycountry.languages.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 639-1 language code (e.g. en, pt, uk)")
    return code


Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_check_id),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
_Text = Annotated[str, StringConstraints(max_length=20_000)]
Country = Annotated[str, AfterValidator(_check_country)]
Language = Annotated[str, AfterValidator(_check_language)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
_Year = Annotated[int, Field(ge=YEAR_MIN, le=YEAR_MAX)]
_Hours = Annotated[float, Field(ge=0, le=744, allow_inf_nan=False)]
_Count = Annotated[int, Field(ge=0, le=10**10)]
Level = Annotated[int, Field(ge=1, le=5)]
Rank = Annotated[int, Field(ge=1, le=10_000)]
Score = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
StakeholderKind = Literal[
    "ngo", "academia", "business", "migrant_association", "foundation", "media", "public_body"
]
PartnershipKind = Literal["twinning", "project", "visit", "cluster", "agreement"]
"""``agreement``: a partnership signed after a mutual match (``match_statuses``)."""
MatchStep = Literal[
    "introduced", "meeting_held", "project_started", "partnership_signed", "no_further_contact"
]

# Optional fields: a blank cell means "no value".
_blank = BeforeValidator(_blank_to_none)
Text = Annotated[_Text | None, _blank]
OptId = Annotated[Id | None, _blank]
OptCountry = Annotated[Country | None, _blank]
OptLat = Annotated[Lat | None, _blank]
OptLon = Annotated[Lon | None, _blank]
Year = Annotated[_Year | None, _blank]
Hours = Annotated[_Hours | None, _blank]
Count = Annotated[_Count | None, _blank]
Membership = Annotated[Literal["international", "national"] | None, _blank]
Role = Annotated[Literal["city", "national"] | None, _blank]
Short = Annotated[Annotated[str, StringConstraints(max_length=40)] | None, _blank]
Day = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_check_day)]
Languages = Annotated[tuple[Language, ...], BeforeValidator(_split_list)]
Ids = Annotated[tuple[Id, ...], BeforeValidator(_split_list)]

# --- the rows ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Network:
    id: Id
    name: Name
    country: OptCountry = None


@dataclass(frozen=True, slots=True)
class Theme:
    id: Id
    name: Name
    description: Text = None


@dataclass(frozen=True, slots=True)
class City:
    id: Id
    name: Name
    country: Country
    lat: Lat
    lon: Lon
    population: Count = None
    languages: Languages = ()
    membership: Membership = None
    networks: Ids = ()
    joined: Year = None
    coordinator_hours: Hours = None
    description: Text = None


@dataclass(frozen=True, slots=True)
class Expert:
    id: Id
    name: Name
    languages: Languages = ()
    country: OptCountry = None
    lat: OptLat = None
    lon: OptLon = None
    max_assignments: Count = None
    bio: Text = None


@dataclass(frozen=True, slots=True)
class Coordinator:
    id: Id
    name: Name
    city_id: OptId = None
    network_id: OptId = None
    role: Role = None
    languages: Languages = ()
    hours_per_month: Hours = None


@dataclass(frozen=True, slots=True)
class Stakeholder:
    id: Id
    name: Name
    kind: StakeholderKind
    city_id: Id
    themes: Ids = ()
    description: Text = None


@dataclass(frozen=True, slots=True)
class Practice:
    id: Id
    city_id: Id
    title: Name
    themes: Ids = ()
    year: Year = None
    description: Text = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """An accepted cluster: the record of a proposal the secretariat took, and how it was made."""

    id: Id
    name: Name
    kind: Literal["thematic", "geographic"]
    members: Ids
    theme_ids: Ids = ()
    lead_city: OptId = None
    working_languages: Languages = ()
    period: Short = None
    revision: Count = None  # the data revision the proposal was computed from
    seed: Count = None
    params: Text = None  # the proposal's parameters, as JSON
    accepted_on: Short = None


@dataclass(frozen=True, slots=True)
class CityTheme:
    city_id: Id
    theme_id: Id
    priority: Level


@dataclass(frozen=True, slots=True)
class IndexScore:
    city_id: Id
    theme_id: Id
    score: Score


@dataclass(frozen=True, slots=True)
class ExpertTheme:
    expert_id: Id
    theme_id: Id
    level: Level


@dataclass(frozen=True, slots=True)
class Partnership:
    """An undirected tie; stored with ``city_a < city_b`` so each pair has one key."""

    city_a: Id
    city_b: Id
    kind: PartnershipKind
    since: Year = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """An expert assigned to an accepted cluster."""

    expert_id: Id
    cluster_id: Id
    score: Annotated[float | None, _blank, Field(allow_inf_nan=False)] = None
    reasons: Text = None


@dataclass(frozen=True, slots=True)
class PartnerInterest:
    """A city's answer to a suggested partner: interested, or not for us."""

    city_id: Id
    partner_id: Id
    status: Literal["interested", "not_for_us"]
    note: Text = None


@dataclass(frozen=True, slots=True)
class MatchStatus:
    """One dated step of the secretariat's follow-up of a mutual match (``city_a`` <
    ``city_b``): introduced, meeting held, project started, partnership signed, or no
    further contact. A pair's rows are its history; the latest step is where it stands."""

    city_a: Id
    city_b: Id
    status: MatchStep
    on: Day
    note: Text = None


@dataclass(frozen=True, slots=True)
class ExpertConflict:
    """An expert who may not serve any cluster with this city among its members, and why
    ("works for the city", "advised it last cycle", "asked not to")."""

    expert_id: Id
    city_id: Id
    reason: Name


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A partner suggested to a city on a day, at a rank (1 = first): the secretariat's
    memory of what each city has been shown. A pair's rows are its history."""

    city_id: Id
    partner_id: Id
    on: Day
    rank: Rank


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an accepted cluster, or one expert's visit to it, went at the end of its period:
    a rating from 1 (poor) to 5 (excellent) and a note, from the secretariat (no
    ``city_id``) or from one member city. The API and the CLI write one per (cluster,
    expert, rater): ``id`` is ``cluster:expert-or-dash:city-or-secretariat``."""

    id: Id
    cluster_id: Id
    rating: Level
    on: Day
    expert_id: OptId = None
    city_id: OptId = None
    note: Text = None


# --- how rows map onto the graph -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """A row class's fields in declaration order, and which of them hold lists.

    ``dataclasses.fields`` builds a new tuple on every call; the ingest and snapshot paths
    need the fields once per row (millions of times at 100,000 cities), so they are
    worked out once per class.
    """

    names: tuple[str, ...]
    lists: tuple[int, ...]  # positions of the list columns
    flags: tuple[tuple[str, bool], ...]  # (name, holds a list) per field

    @classmethod
    def of(cls, model: type[Any]) -> _Layout:
        hints = get_type_hints(model, include_extras=True)
        names = tuple(f.name for f in fields(model))
        lists = tuple(i for i, name in enumerate(names) if _is_list(hints[name]))
        return cls(names, lists, tuple((name, i in lists) for i, name in enumerate(names)))


def _is_list(hint: Any) -> bool:
    base = get_args(hint)[0] if get_origin(hint) is Annotated else hint
    return get_origin(base) is tuple


def _layout(model: type[Any]) -> _Layout:
    layout = _LAYOUTS.get(model)
    return layout if layout is not None else _Layout.of(model)


@dataclass(frozen=True, slots=True)
class Ref:
    """A row's field that names rows of another kind (and is a relationship in the graph)."""

    field: str
    target: Kind
    rel: RelType | None  # None: the field is the endpoint of the row's own relationship
    many: bool = False
    reverse: bool = False  # the relationship points from the named row to this one


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: Kind
    model: type[Any]
    key: tuple[str, ...]
    label: Label | None = None  # node kinds
    rel: RelType | None = None  # relationship kinds: (src) -[rel]-> (dst)
    refs: tuple[Ref, ...] = ()

    @property
    def is_node(self) -> bool:
        return self.label is not None

    @property
    def columns(self) -> tuple[str, ...]:
        return _layout(self.model).names

    @property
    def list_columns(self) -> tuple[int, ...]:
        """Positions of the columns that hold lists (tuples in rows, lists in properties)."""
        return _layout(self.model).lists

    @property
    def required(self) -> frozenset[str]:
        return frozenset(f.name for f in fields(self.model) if f.default is MISSING)

    @property
    def endpoints(self) -> tuple[Ref, Ref]:
        """The (source, target) references of a relationship kind."""
        src, dst = (r for r in self.refs if r.rel is None)
        return src, dst

    def key_of(self, row: Any) -> tuple[str, ...]:
        """The row's key (a dict of properties or a row object), as strings."""
        if isinstance(row, dict):
            return tuple([str(row.get(f)) for f in self.key])
        return tuple([str(getattr(row, f)) for f in self.key])


def _node(kind: Kind, model: type[Any], label: Label, *refs: Ref) -> KindSpec:
    return KindSpec(kind, model, ("id",), label=label, refs=refs)


def _rel(kind: Kind, model: type[Any], rel: RelType, src: Ref, dst: Ref, *key: str) -> KindSpec:
    return KindSpec(kind, model, (src.field, dst.field, *key), rel=rel, refs=(src, dst))


SPECS: dict[Kind, KindSpec] = {
    s.kind: s
    for s in (
        _node(Kind.NETWORKS, Network, Label.NETWORK),
        _node(Kind.THEMES, Theme, Label.THEME),
        _node(
            Kind.CITIES,
            City,
            Label.CITY,
            Ref("networks", Kind.NETWORKS, RelType.IN_NETWORK, many=True),
        ),
        _node(Kind.EXPERTS, Expert, Label.EXPERT),
        _node(
            Kind.COORDINATORS,
            Coordinator,
            Label.COORDINATOR,
            Ref("city_id", Kind.CITIES, RelType.COORDINATES),
            Ref("network_id", Kind.NETWORKS, RelType.FOR_NETWORK),
        ),
        _node(
            Kind.STAKEHOLDERS,
            Stakeholder,
            Label.STAKEHOLDER,
            Ref("city_id", Kind.CITIES, RelType.BASED_IN),
            Ref("themes", Kind.THEMES, RelType.WORKS_ON, many=True),
        ),
        _node(
            Kind.PRACTICES,
            Practice,
            Label.PRACTICE,
            Ref("city_id", Kind.CITIES, RelType.PRACTICE_OF),
            Ref("themes", Kind.THEMES, RelType.ABOUT, many=True),
        ),
        _node(
            Kind.CLUSTERS,
            Cluster,
            Label.CLUSTER,
            Ref("members", Kind.CITIES, RelType.MEMBER_OF_CLUSTER, many=True, reverse=True),
            Ref("theme_ids", Kind.THEMES, RelType.ABOUT, many=True),
            Ref("lead_city", Kind.CITIES, RelType.LED_BY),
        ),
        _rel(
            Kind.CITY_THEMES,
            CityTheme,
            RelType.PRIORITISES,
            Ref("city_id", Kind.CITIES, None),
            Ref("theme_id", Kind.THEMES, None),
        ),
        _rel(
            Kind.INDEX_SCORES,
            IndexScore,
            RelType.SCORES,
            Ref("city_id", Kind.CITIES, None),
            Ref("theme_id", Kind.THEMES, None),
        ),
        _rel(
            Kind.EXPERT_THEMES,
            ExpertTheme,
            RelType.EXPERT_IN,
            Ref("expert_id", Kind.EXPERTS, None),
            Ref("theme_id", Kind.THEMES, None),
        ),
        _rel(
            Kind.PARTNERSHIPS,
            Partnership,
            RelType.PARTNER_OF,
            Ref("city_a", Kind.CITIES, None),
            Ref("city_b", Kind.CITIES, None),
            "kind",
        ),
        _rel(
            Kind.ASSIGNMENTS,
            Assignment,
            RelType.ASSIGNED_TO,
            Ref("expert_id", Kind.EXPERTS, None),
            Ref("cluster_id", Kind.CLUSTERS, None),
        ),
        _rel(
            Kind.PARTNER_INTERESTS,
            PartnerInterest,
            RelType.INTERESTED_IN,
            Ref("city_id", Kind.CITIES, None),
            Ref("partner_id", Kind.CITIES, None),
        ),
        _node(
            Kind.OUTCOMES,
            Outcome,
            Label.OUTCOME,
            Ref("cluster_id", Kind.CLUSTERS, RelType.OUTCOME_OF),
            Ref("expert_id", Kind.EXPERTS, RelType.VISIT_BY),
            Ref("city_id", Kind.CITIES, RelType.RATED_BY),
        ),
        _rel(
            Kind.MATCH_STATUSES,
            MatchStatus,
            RelType.FOLLOWED_UP,
            Ref("city_a", Kind.CITIES, None),
            Ref("city_b", Kind.CITIES, None),
            "status",
        ),
        _rel(
            Kind.EXPERT_CONFLICTS,
            ExpertConflict,
            RelType.CONFLICTS_WITH,
            Ref("expert_id", Kind.EXPERTS, None),
            Ref("city_id", Kind.CITIES, None),
        ),
        _rel(
            Kind.SUGGESTIONS,
            Suggestion,
            RelType.SUGGESTED,
            Ref("city_id", Kind.CITIES, None),
            Ref("partner_id", Kind.CITIES, None),
            "on",
        ),
    )
}
NODE_KINDS = tuple(k for k, s in SPECS.items() if s.is_node)
REL_KINDS = tuple(k for k, s in SPECS.items() if not s.is_node)
KIND_OF_LABEL = {s.label: k for k, s in SPECS.items() if s.label is not None}
_LAYOUTS: dict[type[Any], _Layout] = {s.model: _Layout.of(s.model) for s in SPECS.values()}


@cache
def validator(kind: Kind) -> TypeAdapter[Any]:
    """The pydantic adapter that checks one row of ``kind``."""
    return TypeAdapter(SPECS[kind].model)


def to_props(obj: Any, provided: frozenset[str] | None = None) -> dict[str, Any]:
    """A validated row as plain JSON-ready properties (tuples become lists).

    ``provided`` limits the result to the fields the input actually carried, so that a
    file leaving out an optional column never erases what is stored in it.
    """
    out: dict[str, Any] = {}
    for name in _layout(type(obj)).names:
        if provided is not None and name not in provided:
            continue
        value = getattr(obj, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def from_props(kind: Kind, props: dict[str, Any]) -> Any:
    """Build a row from trusted stored properties, without validation."""
    model = SPECS[kind].model
    get = props.get
    values = []
    for name, is_list in _layout(model).flags:
        value = get(name)
        if isinstance(value, list):
            value = tuple(value)
        elif value is None and is_list:
            value = ()
        values.append(value)
    return model(*values)


def canonical_props(kind: Kind, props: dict[str, Any]) -> dict[str, Any]:
    """Every column present, lists as lists, missing values as None.

    The same as ``to_props(from_props(kind, props))`` without building the row object in
    between: the ingest plan compares every incoming and stored row in this form.
    """
    get = props.get
    out: dict[str, Any] = {}
    for name, is_list in _layout(SPECS[kind].model).flags:
        value = get(name)
        if isinstance(value, list | tuple):
            value = list(value)
        elif value is None and is_list:
            value = []
        out[name] = value
    return out
