"""The ``iccmatch`` command: a thin shell over the same services as the HTTP API."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from api.schemas import jsonable
from api.services import MAX_K
from api.settings import Settings, get_settings, open_configured_store
from graph.errors import IccmatchError, InvalidInput
from graph.model import Kind
from graph.store import GraphStore
from ingest.export import export_csv
from ingest.load import ingest_path
from matching.kernel.wording import plural

if TYPE_CHECKING:
    from api.services.network import NetworkService

# Only what every command needs is imported up here: the matchers (seconds to import) wait
# for the commands that use them, so ``--help``, ``ingest`` or ``keys`` start at once, and so
# do the worker processes of ``serve --workers N``, which import this module first.


class _Commands(TyperGroup):
    """Runs every command (sub-commands too) under one handler for iccmatch's own errors:
    the message, in red, on stderr, and exit status 2, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer now carries its own click)
        try:
            return super().invoke(ctx)
        except IccmatchError as e:
            console.print(f"[red]error:[/red] {e.detail}")
            raise typer.Exit(2) from e


app = typer.Typer(
    cls=_Commands,
    help="iccmatch: match cities, clusters and experts in a network of cities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console()

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store URL (default: $ICCMATCH_STORE or sqlite:///./iccmatch.db)."
    ),
]


def _settings(store: str | None) -> Settings:
    """The settings, with the ``--store`` URL (when given) in place of the configured one."""
    settings = get_settings()
    return settings.model_copy(update={"store": store}) if store else settings


@contextmanager
def _store(url: str | None) -> Iterator[GraphStore]:
    store = open_configured_store(_settings(url))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _service(url: str | None) -> Iterator[NetworkService]:
    from api.services.network import NetworkService
    from matching.kernel.embeddings import default_encoder

    settings = get_settings()
    try:
        encoder = default_encoder(settings.embedding_model, settings.embedding_bf16)
    except ValueError as e:
        raise InvalidInput(str(e)) from e
    with _store(url) as store:
        yield NetworkService(store, encoder, partner_ranker=settings.partner_ranker)


def _embedding_progress() -> Progress:
    return Progress(
        TextColumn("embedding profiles"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A folder of CSV files or one JSON file.")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON report.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count, write nothing.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Write the good rows, report the bad ones.")
    ] = False,
) -> None:
    """Check a dataset and load it into the store (all or nothing, unless --skip-invalid)."""
    with (
        _store(store) as s,
        Progress(
            TextColumn("writing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json or not console.is_terminal,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("write", total=None)
        report = ingest_path(
            path,
            s,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        out.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for err in report.errors:
            console.print(str(err), style="red", markup=False, highlight=False)
        verb = "would create" if dry_run else "created"
        summary = (
            f"{verb} {report.upsert.created}, updated {report.upsert.updated}, "
            f"unchanged {report.upsert.unchanged}; {len(report.errors)} bad rows"
        )
        if report.errors and not skip_invalid:
            summary += " — nothing was written (fix them, or use --skip-invalid)"
        console.print(summary, markup=False)
    if report.errors:
        raise typer.Exit(1)


@app.command()
def export(
    folder: Annotated[Path, typer.Argument(help="Folder to write the CSV files into.")],
    store: StoreOpt = None,
) -> None:
    """Write the store back as CSV files in the interchange format, rows sorted by id."""
    with _store(store) as s:
        written = export_csv(s.snapshot(), folder)
    for name, n in written.items():
        console.print(f"{name}: {n} rows", markup=False)


@app.command()
def summary(store: StoreOpt = None) -> None:
    """Print what the network holds: counts per kind, countries, national networks, themes."""
    with _store(store) as s:
        snap = s.snapshot()
        url = s.url
    table = Table(title=f"Network in {url} (revision {snap.revision})")
    table.add_column("kind")
    table.add_column("rows", justify="right")
    for kind in Kind:
        table.add_row(kind.value, str(len(snap.rows(kind))))
    out.print(table)
    countries = Counter(c.country for c in snap.cities)
    members = Counter(n for c in snap.cities for n in c.networks)
    names = {n.id: n.name for n in snap.networks}
    out.print(
        f"{len(snap.cities)} cities in {len(countries)} countries; most: "
        + ", ".join(f"{c} {n}" for c, n in countries.most_common(5))
    )
    out.print(
        "national networks: "
        + ", ".join(f"{names.get(n, n)} ({k})" for n, k in members.most_common())
    )
    wanted = Counter(ct.theme_id for ct in snap.city_themes if ct.priority >= 4)
    themes = {t.id: t.name for t in snap.themes}
    out.print(
        "most wanted themes (priority 4-5): "
        + ", ".join(f"{themes.get(t, t)} ({k})" for t, k in wanted.most_common(5))
    )


@app.command()
def partners(
    city_ids: Annotated[list[str], typer.Argument(help="One or more city ids.")],
    k: Annotated[
        int, typer.Option("--k", min=1, max=MAX_K, help="How many partners per city.")
    ] = 10,
    theme: Annotated[
        str | None, typer.Option("--theme", help="Partners for this theme id.")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Partner must speak it (repeatable).")
    ] = None,
    max_km: Annotated[float | None, typer.Option("--max-km", help="Maximum distance.")] = None,
    membership: Annotated[
        str | None, typer.Option("--membership", help="international or national")
    ] = None,
    include_current: Annotated[
        bool, typer.Option("--include-current", help="Also list current partners.")
    ] = False,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Suggest partner cities, ranked, each with its reasons."""
    from matching.partners import PartnerFilters

    if membership not in (None, "international", "national"):
        raise InvalidInput("--membership is international or national")
    filters = PartnerFilters(
        theme=theme,
        languages=tuple(language or ()),
        max_distance_km=max_km,
        membership=membership,  # type: ignore[arg-type]  # checked just above
        exclude_current=not include_current,
    )
    with _service(store) as service, _embedding_progress() as bar:
        task = bar.add_task("embed", total=None)
        service.prepared(lambda done, total: bar.update(task, completed=done, total=total))
        results = service.partners(city_ids, k=k, filters=filters)
    if as_json:
        out.print_json(json.dumps({"results": jsonable(results)}, ensure_ascii=False))
        return
    for result in results:
        out.print(
            f"[bold]Partners for {result.city_id}[/bold] "
            f"({plural(result.considered, 'city', 'cities')} considered; ranked by {result.ranker})"
        )
        for rank, s in enumerate(result.suggestions, 1):
            out.print(f"{rank:>2}. {s.name} ({s.country})  score {s.score:.3f}", markup=False)
            for reason in s.reasons:
                out.print(f"      - {reason.text}", markup=False, highlight=False)


clusters_app = typer.Typer(help="Cluster proposals: propose, accept, list.", no_args_is_help=True)
app.add_typer(clusters_app, name="clusters")


@clusters_app.command("propose")
def clusters_propose(
    kind: Annotated[str, typer.Option("--kind", help="thematic or geographic")] = "thematic",
    themes: Annotated[
        list[str] | None,
        typer.Option("--themes", help="Theme id (repeatable); default: the most wanted."),
    ] = None,
    min_size: Annotated[int, typer.Option("--min-size", min=2)] = 4,
    max_size: Annotated[int, typer.Option("--max-size", min=2)] = 8,
    max_per_city: Annotated[
        int | None, typer.Option("--max-per-city", min=1, help="Default: from coordinator hours.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="City id to leave out (repeatable).")
    ] = None,
    allow_single_country: Annotated[bool, typer.Option("--allow-single-country")] = False,
    no_common_language: Annotated[
        bool, typer.Option("--no-common-language", help="Do not require a shared language.")
    ] = False,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Propose clusters under the constraints; the proposal is saved and can be accepted."""
    from api.services.clusters import ClusterService
    from matching.clusters import ClusterParams

    if kind not in ("thematic", "geographic"):
        raise InvalidInput("--kind is thematic or geographic")
    params = ClusterParams(
        kind=kind,  # type: ignore[arg-type]  # checked above
        themes=tuple(themes) if themes else None,
        min_size=min_size,
        max_size=max_size,
        max_per_city=max_per_city,
        seed=seed,
        excluded=frozenset(exclude or ()),
        allow_single_country=allow_single_country,
        require_common_language=not no_common_language,
    )
    with _service(store) as service:
        doc = ClusterService(service).propose(params)
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    out.print(
        f"[bold]Proposal {doc['id']}[/bold] ({doc['method']}, objective {doc['objective']:.2f})"
    )
    for c in doc["clusters"]:
        out.print(
            f"{c['id']}: {', '.join(c['members'])} (lead {c['lead_city']}, {'/'.join(c['working_languages'])})",
            markup=False,
            highlight=False,
        )
        for reason in c["reasons"]:
            out.print(f"      - {reason['text']}", markup=False, highlight=False)
    for st in doc["constraints"]:
        out.print(f"  {st['name']}: {st['status']} {st['detail']}", markup=False)
    if doc["unassigned"]:
        out.print(
            f"{len(doc['unassigned'])} cities left out, e.g. "
            + "; ".join(f"{u['name']}: {u['reason']}" for u in doc["unassigned"][:3]),
            markup=False,
            highlight=False,
        )
    console.print(f"accept with: iccmatch clusters accept {doc['id']}", markup=False)


@clusters_app.command("accept")
def clusters_accept(
    proposal_id: Annotated[str, typer.Argument(help="The id printed by `clusters propose`.")],
    period: Annotated[str | None, typer.Option("--period", help="e.g. 2025-2027")] = None,
    store: StoreOpt = None,
) -> None:
    """Accept a proposal: its clusters become Cluster nodes in the graph."""
    from api.services.clusters import ClusterService

    with _service(store) as service:
        result = ClusterService(service).accept(proposal_id, None, period)
    console.print(
        f"accepted {len(result['accepted'])} clusters (revision {result['revision']})", markup=False
    )


@clusters_app.command("list")
def clusters_list(
    store: StoreOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The accepted clusters."""
    with _store(store) as s:
        rows = s.snapshot().clusters
    if as_json:
        out.print_json(json.dumps(jsonable(rows), ensure_ascii=False))
        return
    for c in rows:
        out.print(
            f"{c.id}  {c.name}: {', '.join(c.members)} (lead {c.lead_city})",
            markup=False,
            highlight=False,
        )


experts_app = typer.Typer(help="Expert assignment.", no_args_is_help=True)
app.add_typer(experts_app, name="experts")


@experts_app.command("assign")
def experts_assign(
    clusters: Annotated[
        str,
        typer.Option(
            "--clusters", help="'accepted' (all accepted clusters) or ids separated by commas."
        ),
    ] = "accepted",
    per_cluster: Annotated[
        int, typer.Option("--per-cluster", min=1, max=10, help="Experts per cluster.")
    ] = 1,
    fair: Annotated[
        bool, typer.Option("--fair", help="First raise the worst-served cluster, then the total.")
    ] = False,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Assign experts to clusters: provably optimal under capacities, languages and conflicts."""
    ids = None if clusters == "accepted" else [c.strip() for c in clusters.split(",") if c.strip()]
    with _service(store) as service:
        result, rows = service.assign_experts(
            ids,
            per_cluster=per_cluster,
            fair=fair,
            conflict_same_country=get_settings().expert_conflict_same_country,
        )
    if as_json:
        out.print_json(json.dumps(jsonable(result), ensure_ascii=False))
        return
    names = {c.id: c.name for c in rows}
    out.print(f"objective {result.objective:.3f}{' (fair)' if result.fair else ''}")
    for pair in result.pairs:
        out.print(
            f"{names.get(pair.cluster_id, pair.cluster_id)} <- {pair.expert_id}  ({pair.score:.3f})",
            markup=False,
        )
        for reason in pair.reasons:
            out.print(f"      - {reason.text}", markup=False, highlight=False)
    for u in result.unserved:
        out.print(
            f"[red]not fully served:[/red] {names.get(u.cluster_id, u.cluster_id)}: {u.relax}"
        )


network_app = typer.Typer(help="Network analytics and exports.", no_args_is_help=True)
app.add_typer(network_app, name="network")


@network_app.command("stats")
def network_stats_command(
    store: StoreOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for community detection.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Components, centrality, bridges, communities vs national networks, gaps."""
    with _service(store) as service:
        stats = service.stats(seed=seed)
    if as_json:
        out.print_json(json.dumps(stats.to_dict(), ensure_ascii=False))
        return
    c = stats.components
    out.print(
        f"{stats.cities} cities, {stats.ties} ties; {c.count} components, the largest holds {c.largest_size}"
    )
    sections: list[tuple[str, Sequence[Any]]] = [
        ("Most connected", stats.top_degree[:5]),
        ("Bridges", stats.bridges[:5]),
        ("Articulation points", stats.articulation_points[:5]),
        ("Isolated", stats.isolated[:8]),
        ("Newcomers who need a buddy", stats.needs_buddy[:5]),
        ("Themes without an expert", stats.themes.without_expert[:5]),
    ]
    for title, items in sections:
        if not items:
            continue
        out.print(f"[bold]{title}[/bold]")
        for item in items:
            text = item.reasons[0].text if item.reasons else str(item)
            out.print(f"  - {text}", markup=False, highlight=False)
    comm = stats.communities
    out.print(
        f"[bold]Communities[/bold]: {len(comm.communities)} (modularity {comm.modularity:.2f}); "
        f"agreement with national networks: ARI {comm.ari_vs_networks}"
    )


@network_app.command("export")
def network_export(
    path: Annotated[Path, typer.Argument(help="File (.graphml, .gexf) or folder (CSV).")],
    store: StoreOpt = None,
) -> None:
    """Export the city graph for Gephi or a spreadsheet: GraphML, GEXF or CSV (by the path)."""
    from matching.analytics import export as graph_export

    with _store(store) as s:
        view = graph_export.network_view(s.snapshot(), themes=True, networks=True)
    suffix = path.suffix.lower()
    if suffix == ".graphml":
        graph_export.write_graphml(view, path)
    elif suffix == ".gexf":
        graph_export.write_gexf(view, path)
    else:
        graph_export.write_csv(view, path)
    console.print(
        f"wrote {len(view.nodes)} nodes and {len(view.edges)} edges to {path}", markup=False
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    store: StoreOpt = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (and the web pages) with uvicorn."""
    from api import server

    server.run(_settings(store), host=host, port=port, workers=workers)


keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="admin, coordinator or analyst")],
    city: Annotated[
        str | None, typer.Option("--city", help="The city a coordinator key acts for.")
    ] = None,
    label: Annotated[str, typer.Option("--label", help="Who holds it.")] = "",
    store: StoreOpt = None,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from api.keys import create_key

    with _store(store) as s:
        key, principal = create_key(s, role, city_id=city, label=label)
    out.print(key, markup=False, highlight=False)
    console.print(
        f"{principal.role} key {principal.key_id[:12]}… created; it will not be shown again",
        markup=False,
    )


@keys_app.command("list")
def keys_list(store: StoreOpt = None) -> None:
    """List keys by id (hash), role, city and whether revoked."""
    from api.keys import list_keys

    with _store(store) as s:
        rows = list_keys(s)
    for k in rows:
        state = f"revoked {k['revoked']}" if k.get("revoked") else "active"
        out.print(
            f"{k['key_id']}  {k['role']:<11} {k.get('city_id') or '-':<20} {state}  {k.get('label', '')}",
            markup=False,
            highlight=False,
        )


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key itself, or its id from `keys list`.")],
    store: StoreOpt = None,
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    from api.keys import revoke_key

    with _store(store) as s:
        revoke_key(s, key)
    console.print("revoked", markup=False)


# --- evaluate: the matchers measured on the network's own ties ------------------------------

evaluate_app = typer.Typer(help="Measure suggestions on the network itself.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


def _share(value: float | None, se: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if se is None else f"{value:.3f} ± {se:.3f}"


@evaluate_app.command("partners")
def evaluate_partners_command(
    holdout: Annotated[
        float, typer.Option("--holdout", help="Share of the ties each split hides.")
    ] = 0.1,
    splits: Annotated[int, typer.Option("--splits", min=1, max=20, help="Random splits.")] = 5,
    k: Annotated[int, typer.Option("--k", min=1, max=MAX_K, help="Hits within the top k.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the splits and random order.")] = 0,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Hide some ties, ask each method for them back: hits@k and MRR against baselines."""
    from matching.partners.evaluate import GROUPS

    with _service(store) as service, _embedding_progress() as bar:
        task = bar.add_task("embed", total=None)
        service.prepared(lambda done, total: bar.update(task, completed=done, total=total))
        doc = service.evaluate_partners(holdout=holdout, splits=splits, k=k, seed=seed)
    if as_json:
        out.print_json(json.dumps(jsonable(doc), ensure_ascii=False))
        return
    result = doc["evaluation"]
    out.print(f"Live suggestions are ranked by {doc['live_ranker']['description']}.", markup=False)
    out.print(
        f"{result.cities} cities, {result.ties} ties; {result.splits} splits each hiding "
        f"{result.holdout:.0%}: {result.pairs} held-out ties, each asked for from both ends",
        markup=False,
    )
    titles = {
        "overall": f"All held-out ties ({result.pairs})",
        "with_common_neighbour": f"With a common neighbour ({result.pairs_with_common_neighbour})",
        "without_common_neighbour": f"Without one ({result.pairs_without_common_neighbour})",
    }
    for group in GROUPS:
        table = Table(title=titles[group])
        table.add_column("method")
        table.add_column(f"hits@{result.k} ± SE", justify="right")
        table.add_column("MRR ± SE", justify="right")
        for m in result.methods:
            s = getattr(m, group)
            table.add_row(m.name, _share(s.hits_at_k, s.hits_at_k_se), _share(s.mrr, s.mrr_se))
        out.print(table)


def main() -> None:
    # The driver logs each retry as a warning; our own message says what failed.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    app()
