#!/usr/bin/env python3
"""Planted-partition city networks: a known plan of thematic groups, plus noise.

``planted(n_cities, seed=..., noise=...)`` returns a :class:`Planted`: a
``matching.clusters.ClusterInput`` and the plan (``labels[i]``: the group of city ``i``;
``group_theme[g]``: its theme). Every planted group satisfies the cluster rules, so a
perfect proposal exists:

* group sizes are drawn between ``min_size`` and ``max_size``;
* each group has a theme (themes are dealt round-robin, then shuffled), a working
  language every member speaks (English for 60 % of groups, else French, Spanish,
  Italian, Portuguese, German or Ukrainian), members from at least two countries, at
  least one international and one national-network member, and one lead scoring
  72-95 on its theme;
* each member prioritises its group's theme at 4-5 and two or three other themes at
  1-3. With probability ``priority_noise`` a member other than the lead sees its group
  theme drop to 2-3 and another theme get 5 (stated priorities that mislead: with
  capacity 1 such a city is rightly placed in its top theme, away from its planted group,
  so this noise caps the reachable ARI);
* the affinity blends a latent profile similarity (each group has a centre in 16
  dimensions; a city is its centre plus ``noise`` times Gaussian noise, so the
  within-group cosine is about ``1 / (1 + noise**2)``), the cosine of priority vectors and
  shared languages: ``0.6 * profile + 0.25 * priorities + 0.15 * languages``;
* ``capacity`` is 1 by default, so the plan is a partition and the adjusted Rand index
  against it is well defined.

Randomness: one ``numpy.random.default_rng(seed)``.

Usage::

    .venv/bin/python -m scripts.planted 300 --noise 1.0 --seed 0      # prints a summary
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from matching.clusters import ClusterInput

COUNTRIES = [
    ("ES", "es", 41.0, -3.7),
    ("IT", "it", 42.5, 12.5),
    ("PT", "pt", 39.5, -8.0),
    ("UA", "uk", 49.0, 31.0),
    ("FR", "fr", 46.5, 2.5),
    ("DE", "de", 51.0, 10.0),
    ("GB", "en", 53.0, -1.5),
    ("IE", "en", 53.3, -7.7),
    ("NO", "no", 61.0, 9.0),
    ("PL", "pl", 52.0, 19.5),
    ("GR", "el", 39.0, 22.0),
    ("MA", "ar", 32.0, -6.0),
    ("CA", "en", 45.5, -73.5),
    ("AT", "de", 47.5, 14.5),
    ("BE", "nl", 50.6, 4.6),
    ("CH", "de", 46.8, 8.2),
    ("SE", "sv", 60.0, 15.0),
    ("LU", "fr", 49.6, 6.1),
]
GROUP_LANGS = ["fr", "es", "it", "pt", "de", "uk"]
THEMES = [
    "anti-rumours",
    "education",
    "participation",
    "business",
    "public-space",
    "culture",
    "housing",
    "health",
    "media",
    "policing",
    "sport",
    "welcoming",
    "women",
    "youth",
    "employment",
    "refugees",
    "heritage",
    "language",
    "religion",
    "arts",
]


@dataclass(frozen=True, eq=False)
class Planted:
    inp: ClusterInput
    labels: npt.NDArray[np.int64]
    group_theme: tuple[int, ...]


def _sizes(n: int, lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    sizes: list[int] = []
    left = n
    while left > 0:
        if left <= hi:
            if left >= lo:
                sizes.append(left)
            else:  # spread the rest over earlier groups that have room
                for g in range(len(sizes)):
                    while left and sizes[g] < hi:
                        sizes[g] += 1
                        left -= 1
                if left:
                    sizes.append(left)  # tiny networks: one small group
            break
        s = int(rng.integers(lo, hi + 1))
        if left - s < lo and left - s > 0:
            s = left - lo if left - lo >= lo else left
            s = min(s, hi)
        sizes.append(s)
        left -= s
    return sizes


def _blocks(
    similarity: Callable[[int, int], npt.NDArray[np.float64]],
    priority: npt.NDArray[np.float64],
    languages: npt.NDArray[np.bool_],
) -> Callable[[int, int], npt.NDArray[np.float64]]:
    """Rows ``lo:hi`` of a planted affinity: 0.6 text or profile ``similarity`` + 0.25
    priority cosine + 0.15 language Jaccard (symmetric by construction, zero diagonal);
    one formula for both generators."""
    pn = priority / np.maximum(np.linalg.norm(priority, axis=1, keepdims=True), 1e-9)
    lf = languages.astype(np.float64)
    n_lang = lf.sum(axis=1)

    def block(lo: int, hi: int) -> npt.NDArray[np.float64]:
        prio = np.clip(pn[lo:hi] @ pn.T, 0.0, 1.0)
        inter = lf[lo:hi] @ lf.T
        lang = inter / np.maximum(n_lang[lo:hi, None] + n_lang[None, :] - inter, 1.0)
        rows: npt.NDArray[np.float64] = 0.6 * similarity(lo, hi) + 0.25 * prio + 0.15 * lang
        rows[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        return rows

    return block


def _assemble(
    block: Callable[[int, int], npt.NDArray[np.float64]], n: int, sparse_k: int | None
) -> npt.NDArray[np.float64] | sp.csr_matrix:
    """The whole affinity from its row blocks: dense, or each city's ``sparse_k`` strongest
    pairs (symmetrised) in blocks, so 100,000 cities never hold the dense n x n matrix."""
    if sparse_k is None or n <= sparse_k:
        return block(0, n)
    step = max(1, 20_000_000 // n)
    cols = np.empty((n, sparse_k), dtype=np.int64)
    vals = np.empty((n, sparse_k))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        rows = block(lo, hi)
        top = np.argpartition(-rows, sparse_k, axis=1)[:, :sparse_k]
        cols[lo:hi] = top
        vals[lo:hi] = np.take_along_axis(rows, top, axis=1)
    M = sp.csr_matrix(
        (vals.ravel(), (np.repeat(np.arange(n), sparse_k), cols.ravel())), shape=(n, n)
    )
    return sp.csr_matrix(M.maximum(M.T))


def _input(
    affinity: npt.NDArray[np.float64] | sp.csr_matrix,
    countries: Sequence[str],
    networks: Sequence[tuple[str, ...]],
    membership: Sequence[str],
    languages: npt.NDArray[np.bool_],
    lang_codes: Sequence[str],
    priority: npt.NDArray[np.int64],
    strength: npt.NDArray[np.float64],
    capacity: npt.NDArray[np.int64],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    ties: sp.csr_matrix | None = None,
) -> ClusterInput:
    """A generated network as the matcher takes it: cities c00000.., the first themes."""
    n, t = priority.shape
    return ClusterInput(
        city_ids=tuple(f"c{i:05d}" for i in range(n)),
        names=tuple(f"City {i}" for i in range(n)),
        affinity=affinity,
        countries=tuple(countries),
        networks=tuple(networks),
        membership=tuple(membership),
        languages=languages,
        language_codes=tuple(lang_codes),
        theme_ids=tuple(THEMES[:t]),
        theme_names=tuple(x.replace("-", " ").capitalize() for x in THEMES[:t]),
        priority=priority,
        strength=strength,
        capacity=capacity,
        lat=lat,
        lon=lon,
        ties=ties,
    )


def planted(
    n_cities: int,
    *,
    n_themes: int = 12,
    min_size: int = 4,
    max_size: int = 8,
    noise: float = 1.0,
    priority_noise: float = 0.0,
    capacity: int = 1,
    seed: int = 0,
    sparse_k: int | None = None,
) -> Planted:
    """A network of ``n_cities`` with a planted plan of thematic groups (see the module doc).

    ``sparse_k`` keeps only each city's ``sparse_k`` strongest affinities (CSR output),
    as a caller would for large networks.
    """
    rng = np.random.default_rng(seed)
    T = min(n_themes, len(THEMES))
    sizes = _sizes(n_cities, min_size, max_size, rng)
    G = len(sizes)
    labels = np.repeat(np.arange(G), sizes).astype(np.int64)
    perm = rng.permutation(n_cities)
    labels = labels[perm]
    group_theme = [g % T for g in range(G)]
    rng.shuffle(group_theme)
    lang_codes = sorted({c[1] for c in COUNTRIES} | set(GROUP_LANGS) | {"en"})
    L = len(lang_codes)
    n = n_cities
    countries = [""] * n
    languages = np.zeros((n, L), dtype=bool)
    membership = ["national"] * n
    networks: list[tuple[str, ...]] = [()] * n
    lat = np.zeros(n)
    lon = np.zeros(n)
    strength = rng.uniform(15, 72, size=(n, T))
    strength[rng.random((n, T)) < 0.1] = np.nan
    priority = np.zeros((n, T), dtype=np.int64)
    dim = 16
    centres = rng.normal(size=(G, dim)) / np.sqrt(dim)
    vectors = np.zeros((n, dim))
    for g in range(G):
        members = np.flatnonzero(labels == g)
        t = group_theme[g]
        glang = "en" if rng.random() < 0.6 else str(rng.choice(GROUP_LANGS))
        n_c = int(min(len(members), rng.integers(2, 5)))
        picks = rng.choice(len(COUNTRIES), size=n_c, replace=False)
        for a, i in enumerate(members.tolist()):
            code, nat_lang, clat, clon = COUNTRIES[int(picks[a % n_c])]
            countries[i] = code
            languages[i, lang_codes.index(nat_lang)] = True
            languages[i, lang_codes.index(glang)] = True
            if rng.random() < 0.5:
                languages[i, lang_codes.index("en")] = True
            lat[i] = clat + rng.normal(scale=1.5)
            lon[i] = clon + rng.normal(scale=2.0)
            intl = rng.random() < 0.45
            if a == 0:
                intl = True
            elif a == 1:
                intl = False
            membership[i] = "international" if intl else "national"
            if not intl or rng.random() < 0.2:
                networks[i] = (f"net-{code.lower()}",)
            # priorities: the group's theme high, a few others lower
            priority[i, t] = int(rng.integers(4, 6))
            others = [x for x in range(T) if x != t]
            for x in rng.choice(
                others, size=min(len(others), int(rng.integers(2, 4))), replace=False
            ):
                priority[i, int(x)] = int(rng.integers(1, 4))
            if a > 0 and rng.random() < priority_noise and others:
                priority[i, t] = int(rng.integers(2, 4))
                priority[i, int(rng.choice(others))] = 5
            vectors[i] = centres[g] + noise * rng.normal(size=dim) / np.sqrt(dim)
        lead = int(members[0])
        strength[lead, t] = float(rng.uniform(72, 95))
        if len(members) > 4 and rng.random() < 0.25:  # some groups have a second strong city
            strength[int(members[2]), t] = float(rng.uniform(70, 90))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    affinity = _assemble(
        _blocks(lambda lo, hi: np.clip(unit[lo:hi] @ unit.T, 0.0, 1.0), priority, languages),
        n,
        sparse_k,
    )
    inp = _input(
        affinity,
        countries,
        networks,
        membership,
        languages,
        lang_codes,
        priority,
        strength,
        np.full(n, capacity, dtype=np.int64),
        lat,
        lon,
    )
    return Planted(inp, labels, tuple(group_theme))


@dataclass(frozen=True, eq=False)
class Signed:
    """A :func:`signatures` network: the input, the plan and what made it.

    ``labels[i]`` is city ``i``'s group, -1 for an outsider (it belongs nowhere: the ARI
    counts it as a singleton). ``signature[g]`` is group ``g``'s three themes, the first its
    cluster's theme. ``texts[i]`` is the description whose similarity the affinity reads.
    """

    inp: ClusterInput
    labels: npt.NDArray[np.int64]
    signature: tuple[tuple[int, int, int], ...]
    texts: tuple[str, ...]


def _concept_words(n_concepts: int, forms: int) -> list[list[str]]:
    """Made-up words for ``n_concepts`` concepts, ``forms`` surface forms each (a
    paraphrase swaps a word for another form of the same concept)."""
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "fe"]
    out = []
    for c in range(n_concepts):
        base = "".join(syll[(c // 12**k) % 12] for k in range(4))
        out.append([base + s for s in ("", "ing", "ation", "ity", "ment")[:forms]])
    return out


def signatures(
    n_cities: int,
    *,
    n_themes: int = 20,
    min_size: int = 4,
    max_size: int = 8,
    overlap: float = 0.5,
    priority_noise: float = 0.3,
    text_share: float = 0.3,
    paraphrase: float = 0.5,
    ties_per_city: float = 2.0,
    ties_inside: float = 0.8,
    outsiders: float = 0.05,
    seed: int = 0,
    sparse_k: int | None = None,
) -> Signed:
    """A realistic planted network: groups share a *signature* of three themes.

    Knobs (each one a test checks):

    * ``overlap``: the chance that a group reuses two of an earlier group's three themes
      (its cluster theme among them), so groups look alike on priorities and differ in
      their texts and languages;
    * ``priority_noise``: the chance that a member's priorities are perturbed: its
      secondary themes move by one, it adds an unrelated theme at 1-3, and (a quarter of
      those) its cluster theme drops from 5 to 4, tying it with its second;
    * ``text_share`` and ``paraphrase``: a description is 30 words; ``text_share`` of
      them are concepts of its group's project (12 concepts per group, each member uses a
      random subset), the rest words of its themes and common words. ``paraphrase`` is the
      chance a concept appears in another of its five surface forms, so members of a group
      write alike but never identically;
    * ``ties_per_city`` and ``ties_inside``: existing partnerships (``inp.ties``), on
      average ``ties_per_city`` per city, ``ties_inside`` of them inside its group;
    * ``outsiders``: the share of cities that belong to no group (label -1): random
      themes, texts, country and languages.

    The affinity is the same blend as :func:`planted`'s, with the text similarity
    (TF-IDF cosine of the descriptions, scikit-learn) in place of the latent profile:
    ``0.6 * text + 0.25 * priorities + 0.15 * languages`` (ties are not in it, as in
    ``matching.clusters.affinity``). Groups satisfy every cluster rule, as in
    :func:`planted`. ``sparse_k`` keeps each city's ``sparse_k`` strongest affinities
    (CSR, built in row blocks), as ``affinity.py`` does above 3,000 cities.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(seed)
    T = min(n_themes, len(THEMES))
    n = n_cities
    n_out = round(outsiders * n)
    sizes = _sizes(n - n_out, min_size, max_size, rng)
    G = len(sizes)
    labels = np.concatenate([np.repeat(np.arange(G), sizes), np.full(n_out, -1)])
    labels = labels[rng.permutation(n)].astype(np.int64)
    sig: list[tuple[int, int, int]] = []
    for g in range(G):
        if g and rng.random() < overlap:
            a, b, _ = sig[int(rng.integers(g))]
            third = int(rng.choice([x for x in range(T) if x not in (a, b)]))
            sig.append((a, b, third) if rng.random() < 0.5 else (a, third, b))
        else:
            a, b, c = (int(x) for x in rng.choice(T, size=3, replace=False))
            sig.append((a, b, c))
    concepts = _concept_words(12 * G + 200, 5)
    theme_words = [
        [f"{THEMES[t][:4]}{w}" for w in ("", "x", "al", "ic", "ness", "er")] for t in range(T)
    ]
    common = [f"w{j}" for j in range(60)]
    group_concepts = rng.permutation(len(concepts))[: 12 * G].reshape(G, 12)

    lang_codes = sorted({c[1] for c in COUNTRIES} | set(GROUP_LANGS) | {"en"})
    L = len(lang_codes)
    countries = [""] * n
    languages = np.zeros((n, L), dtype=bool)
    membership = ["national"] * n
    networks: list[tuple[str, ...]] = [()] * n
    lat = np.zeros(n)
    lon = np.zeros(n)
    strength = rng.uniform(15, 69, size=(n, T))
    strength[rng.random((n, T)) < 0.1] = np.nan
    priority = np.zeros((n, T), dtype=np.int64)
    texts = [""] * n

    def describe(cs: npt.NDArray[np.int64], themes: Sequence[int]) -> str:
        k = round(30 * text_share)
        words = []
        for c in rng.choice(cs, size=k, replace=True):
            forms = concepts[int(c)]
            words.append(forms[int(rng.integers(1, 5))] if rng.random() < paraphrase else forms[0])
        for _ in range(30 - k):
            if rng.random() < 0.5:
                t = themes[int(rng.integers(len(themes)))]
                words.append(theme_words[t][int(rng.integers(6))])
            else:
                words.append(common[int(rng.integers(len(common)))])
        return " ".join(words)

    def place(i: int, code_row: tuple[str, str, float, float]) -> None:
        code, nat_lang, clat, clon = code_row
        countries[i] = code
        languages[i, lang_codes.index(nat_lang)] = True
        lat[i] = clat + rng.normal(scale=1.5)
        lon[i] = clon + rng.normal(scale=2.0)

    for g in range(G):
        members = np.flatnonzero(labels == g)
        s = sig[g]
        glang = "en" if rng.random() < 0.6 else str(rng.choice(GROUP_LANGS))
        n_c = int(min(len(members), rng.integers(2, 5)))
        picks = rng.choice(len(COUNTRIES), size=n_c, replace=False)
        for a, i in enumerate(members.tolist()):
            place(i, COUNTRIES[int(picks[a % n_c])])
            languages[i, lang_codes.index(glang)] = True
            if rng.random() < 0.5:
                languages[i, lang_codes.index("en")] = True
            intl = True if a == 0 else False if a == 1 else bool(rng.random() < 0.45)
            membership[i] = "international" if intl else "national"
            if not intl or rng.random() < 0.2:
                networks[i] = (f"net-{countries[i].lower()}",)
            priority[i, s[0]], priority[i, s[1]], priority[i, s[2]] = 5, 4, 3
            if rng.random() < priority_noise:
                priority[i, s[1]] = int(np.clip(4 + rng.integers(-1, 1), 1, 4))
                priority[i, s[2]] = int(np.clip(3 + rng.integers(-1, 2), 1, 4))
                extra = int(rng.choice([x for x in range(T) if x not in s]))
                priority[i, extra] = int(rng.integers(1, 4))
                if rng.random() < 0.25:
                    priority[i, s[0]] = 4
                    priority[i, s[1]] = 4
            mine = group_concepts[g][rng.random(12) < 0.75]
            texts[i] = describe(mine if len(mine) else group_concepts[g], s)
        strength[int(members[0]), s[0]] = float(rng.uniform(72, 95))
        if len(members) > 4 and rng.random() < 0.25:
            strength[int(members[2]), s[0]] = float(rng.uniform(70, 90))
    for i in np.flatnonzero(labels < 0).tolist():
        place(i, COUNTRIES[int(rng.integers(len(COUNTRIES)))])
        if rng.random() < 0.6:
            languages[i, lang_codes.index("en")] = True
        membership[i] = "international" if rng.random() < 0.45 else "national"
        if membership[i] == "national":
            networks[i] = (f"net-{countries[i].lower()}",)
        themes = [int(x) for x in rng.choice(T, size=3, replace=False)]
        for t, v in zip(themes, (5, 4, 3), strict=True):
            priority[i, t] = v
        if rng.random() < 0.2:
            strength[i, themes[0]] = float(rng.uniform(70, 90))
        texts[i] = describe(rng.choice(len(concepts), size=12, replace=False), themes)

    # ties: ``ties_inside`` of them inside the group, the rest anywhere
    n_ties = round(ties_per_city * n / 2)
    ta, tb = [], []
    grouped = np.flatnonzero(labels >= 0)
    for _ in range(n_ties):
        if rng.random() < ties_inside and len(grouped):
            i = int(rng.choice(grouped))
            mates = np.flatnonzero(labels == labels[i])
            j = int(rng.choice(mates[mates != i]))
        else:
            i, j = (int(x) for x in rng.choice(n, size=2, replace=False))
        ta.append(min(i, j))
        tb.append(max(i, j))
    T_ = sp.coo_matrix((np.ones(len(ta)), (ta, tb)), shape=(n, n)).tocsr()
    T_.data[:] = 1.0
    ties = sp.csr_matrix(((T_ + T_.T) > 0).astype(np.float64))

    tf = TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+").fit_transform(texts)
    affinity = _assemble(
        _blocks(lambda lo, hi: np.asarray((tf[lo:hi] @ tf.T).todense()), priority, languages),
        n,
        sparse_k,
    )
    inp = _input(
        affinity,
        countries,
        networks,
        membership,
        languages,
        lang_codes,
        priority,
        strength,
        np.ones(n, dtype=np.int64),
        lat,
        lon,
        ties,
    )
    return Signed(inp, labels, tuple(sig), tuple(texts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--priority-noise", type=float, default=0.0)
    ap.add_argument("--themes", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    p = planted(a.n, noise=a.noise, priority_noise=a.priority_noise, n_themes=a.themes, seed=a.seed)
    sizes = np.bincount(p.labels)
    print(
        json.dumps(
            {
                "cities": p.inp.n,
                "groups": len(sizes),
                "group_sizes": {
                    "min": int(sizes.min()),
                    "max": int(sizes.max()),
                    "mean": float(sizes.mean()),
                },
                "themes": len(p.inp.theme_ids),
                "languages": len(p.inp.language_codes),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
