"""The ``iccmatch`` command: a thin shell over the same services as the HTTP API."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.schemas import jsonable
from api.services import NetworkService
from api.settings import get_settings
from graph.errors import IccmatchError, InvalidInput
from graph.model import Kind
from graph.store import GraphStore, open_store
from ingest.export import export_csv
from ingest.load import ingest_path
from matching.partners import PartnerFilters

app = typer.Typer(
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


@contextmanager
def _store(url: str | None) -> Iterator[GraphStore]:
    settings = get_settings()
    store = open_store(
        url or settings.store,
        user=settings.neo4j_user,
        password=settings.neo4j_password.get_secret_value(),
        connect_timeout_s=settings.neo4j_connect_timeout_s,
        retry_s=settings.neo4j_retry_s,
    )
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _service(url: str | None) -> Iterator[NetworkService]:
    from matching.embeddings import default_encoder

    settings = get_settings()
    try:
        encoder = default_encoder(settings.embedding_model, settings.embedding_bf16)
    except ValueError as e:
        raise InvalidInput(str(e)) from e
    with _store(url) as store:
        yield NetworkService(store, encoder)


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


def _fail(error: IccmatchError) -> None:
    console.print(f"[red]error:[/red] {error.detail}")
    raise typer.Exit(2)


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
    try:
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
    except IccmatchError as e:
        _fail(e)
        return
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
    try:
        with _store(store) as s:
            written = export_csv(s.snapshot(), folder)
    except IccmatchError as e:
        _fail(e)
        return
    for name, n in written.items():
        console.print(f"{name}: {n} rows", markup=False)


@app.command()
def summary(store: StoreOpt = None) -> None:
    """Print what the network holds: counts per kind, countries, national networks, themes."""
    try:
        with _store(store) as s:
            snap = s.snapshot()
            url = s.url
    except IccmatchError as e:
        _fail(e)
        return
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
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many partners per city.")] = 10,
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
    if membership not in (None, "international", "national"):
        _fail(InvalidInput("--membership is international or national"))
        return
    filters = PartnerFilters(
        theme=theme,
        languages=tuple(language or ()),
        max_distance_km=max_km,
        membership=membership,  # type: ignore[arg-type]  # checked just above
        exclude_current=not include_current,
    )
    try:
        with _service(store) as service, _embedding_progress() as bar:
            task = bar.add_task("embed", total=None)
            service.prepared(lambda done, total: bar.update(task, completed=done, total=total))
            results = service.partners(city_ids, k=k, filters=filters)
    except IccmatchError as e:
        _fail(e)
        return
    if as_json:
        out.print_json(json.dumps({"results": jsonable(results)}, ensure_ascii=False))
        return
    for result in results:
        out.print(
            f"[bold]Partners for {result.city_id}[/bold] ({result.considered} cities considered)"
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
    from api.clusters import ClusterService
    from matching.clusters import ClusterParams

    if kind not in ("thematic", "geographic"):
        _fail(InvalidInput("--kind is thematic or geographic"))
        return
    try:
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
    except IccmatchError as e:
        _fail(e)
        return
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
    from api.clusters import ClusterService

    try:
        with _service(store) as service:
            result = ClusterService(service).accept(proposal_id, None, period)
    except IccmatchError as e:
        _fail(e)
        return
    console.print(
        f"accepted {len(result['accepted'])} clusters (revision {result['revision']})", markup=False
    )


@clusters_app.command("list")
def clusters_list(
    store: StoreOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The accepted clusters."""
    try:
        with _store(store) as s:
            rows = s.snapshot().clusters
    except IccmatchError as e:
        _fail(e)
        return
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
    try:
        with _service(store) as service:
            result, rows = service.assign_experts(
                ids,
                per_cluster=per_cluster,
                fair=fair,
                conflict_same_country=get_settings().expert_conflict_same_country,
            )
    except IccmatchError as e:
        _fail(e)
        return
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
    try:
        with _service(store) as service:
            stats = service.stats(seed=seed)
    except IccmatchError as e:
        _fail(e)
        return
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
    from matching import graph_export

    try:
        with _store(store) as s:
            view = graph_export.network_view(s.snapshot(), themes=True, networks=True)
    except IccmatchError as e:
        _fail(e)
        return
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
    import os

    import uvicorn

    if store:
        os.environ["ICCMATCH_STORE"] = store  # the app reads its settings from the environment
        get_settings.cache_clear()
    uvicorn.run(
        "api.app:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
        server_header=False,
    )


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

    try:
        with _store(store) as s:
            key, principal = create_key(s, role, city_id=city, label=label)
    except IccmatchError as e:
        _fail(e)
        return
    out.print(key, markup=False, highlight=False)
    console.print(
        f"{principal.role} key {principal.key_id[:12]}… created; it will not be shown again",
        markup=False,
    )


@keys_app.command("list")
def keys_list(store: StoreOpt = None) -> None:
    """List keys by id (hash), role, city and whether revoked."""
    from api.keys import list_keys

    try:
        with _store(store) as s:
            rows = list_keys(s)
    except IccmatchError as e:
        _fail(e)
        return
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

    try:
        with _store(store) as s:
            revoke_key(s, key)
    except IccmatchError as e:
        _fail(e)
        return
    console.print("revoked", markup=False)


def main() -> None:
    # The driver logs each retry as a warning; our own message says what failed.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    try:
        app()
    except IccmatchError as e:  # a safety net; commands catch their own
        console.print(f"error: {e.detail}", markup=False)
        sys.exit(2)
