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
from rich.markup import escape
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
    rich_markup_mode="markdown",  # docstrings are rewrapped to the terminal, not cut mid-line
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
        encoder = default_encoder(settings.embedding_model)
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
    only_if_empty: Annotated[
        bool,
        typer.Option(
            "--only-if-empty",
            help="Load only into a store that holds no cities yet (a deployment's first "
            "start); otherwise say so and change nothing.",
        ),
    ] = False,
) -> None:
    """Check a dataset and load it into the store (all or nothing, unless --skip-invalid)."""
    if only_if_empty:
        with _store(store) as s:
            held = len(s.ids(Kind.CITIES))
        if held:
            console.print(
                f"the store already holds {held} cities: {path} was not loaded (--only-if-empty)",
                markup=False,
            )
            return
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
    if report.written:
        _embed_after_ingest(store, quiet=as_json)
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


def _embed_after_ingest(store: str | None, *, quiet: bool) -> None:
    """Embed every new or changed profile and expert text now, into the store's vector
    cache: the server and the other commands then find them there and never embed while
    someone waits. Unchanged texts are cache hits, so a re-ingest costs no model load."""
    with _service(store) as service, _embedding_progress() as bar:
        if quiet:
            bar.disable = True
        task = bar.add_task("embed", total=None)
        service.embeddings(
            progress=lambda done, total: bar.update(task, completed=done, total=total)
        )


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


_NEO4J_LOCAL = Path(__file__).resolve().parents[1] / "scripts" / "neo4j-local" / "neo4j-local"
_DOCKER_IMPORT_DIR = "/import/iccmatch"  # where the one-off container sees --out
_NEO4J_IMPORT_HELP = (
    "First load of a large network into an EMPTY Neo4j database with Neo4j's own bulk "
    "importer (neo4j-admin database import full), many times faster than `ingest`."
    "\n\n"
    "DATA is checked exactly as `ingest` checks it (every bad row named with its file, line "
    "and column; nothing is written when any row is bad), against an empty store: every "
    "reference must name a row of the same data. The import gives the graph `ingest` would "
    "write, at revision 1; the server must be stopped while it runs."
    "\n\n"
    "Afterwards the first write through iccmatch creates the uniqueness constraints, and the "
    "embedding cache starts empty: a server computes the profile embeddings while it "
    "prepares (before /health/ready), and so does the first command that ranks (e.g. "
    "`iccmatch partners`). Later changes go through `iccmatch ingest` as usual."
)


@app.command("neo4j-import", help=_NEO4J_IMPORT_HELP)
def neo4j_import(
    path: Annotated[
        Path, typer.Argument(metavar="DATA", help="A folder of CSV files or one JSON file.")
    ],
    out_folder: Annotated[
        Path,
        typer.Option("--out", help="A new or empty folder for the importer's CSV files."),
    ],
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="A scripts/neo4j-local home (its --data DIR, server stopped): run the "
            "import into it. Without it, print the neo4j-admin command for your own Neo4j.",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite-destination",
            help="With --home: DELETE the database the home holds already (from an earlier "
            "start or import) and import in its place.",
        ),
    ] = False,
) -> None:
    """Check DATA as `ingest` does, write the bulk importer's files, then print or run the
    import (the help text below says what the user needs to know)."""
    import shlex
    import subprocess
    from pathlib import PurePosixPath

    from graph.neo4j_bulk import write_import
    from ingest.read import read_dataset
    from ingest.validate import check_rows

    if overwrite and home is None:
        raise InvalidInput(
            "--overwrite-destination goes with --home; for your own Neo4j, add "
            "--overwrite-destination=true to the printed command"
        )
    if home is not None:
        if not _NEO4J_LOCAL.is_file():
            raise InvalidInput(f"--home needs {_NEO4J_LOCAL}, which is not there")
        status = subprocess.run(
            [str(_NEO4J_LOCAL), "status", "--data", str(home)],
            capture_output=True,
            text=True,
            check=False,
        )
        if status.returncode == 0:
            raise InvalidInput(
                f"the Neo4j server for {home} is running: the importer needs it stopped "
                f"(run {_NEO4J_LOCAL} stop --data {home}); nothing was written"
            )
        if (home / "data" / "databases" / "neo4j").exists() and not overwrite:
            raise InvalidInput(
                f"{home} already holds the database 'neo4j' (from an earlier start or "
                "import): the importer loads only into a new database; --overwrite-destination "
                "DELETES it and imports in its place; nothing was written"
            )
    raw = read_dataset(path)
    checked = check_rows(raw.rows, lambda kind: set())  # the target database is empty
    errors = sorted(raw.errors + checked.errors, key=lambda e: (e.file, e.line))
    if errors:
        for err in errors:
            console.print(str(err), style="red", markup=False, highlight=False)
        console.print(
            f"{len(errors)} bad rows — nothing was written (fix them and run again)",
            markup=False,
        )
        raise typer.Exit(1)
    files = write_import(checked.batch, out_folder.resolve())
    console.print(
        f"wrote {files.nodes} nodes and {files.relationships} relationships "
        f"({len(files.files)} files) into {files.folder}",
        markup=False,
    )
    if home is None:
        out.print(
            "Import them into an EMPTY database, its server stopped (the importer refuses a "
            "database that exists already; --overwrite-destination=true DELETES it first):",
            markup=False,
        )
        out.print("  " + files.shell(), markup=False, highlight=False, soft_wrap=True)
        docker = files.shell(
            (
                "docker",
                "compose",
                "run",
                "--rm",
                "-v",
                f"{files.folder}:{_DOCKER_IMPORT_DIR}",
                "neo4j",
                "neo4j-admin",
            ),
            root=PurePosixPath(_DOCKER_IMPORT_DIR),
        )
        out.print(
            "With docker compose: the server is the neo4j container's own process, so "
            "stop it and run the importer in a one-off container on the same volume "
            "(`docker compose exec` would need the server running):",
            markup=False,
        )
        for line in ("docker compose stop neo4j", docker, "docker compose up -d --wait"):
            out.print("  " + line, markup=False, highlight=False, soft_wrap=True)
        return
    extra = ["--overwrite-destination=true"] if overwrite else []
    command = [str(_NEO4J_LOCAL), "import", "--data", str(home), "--", *extra, *files.arguments()]
    console.print("running: " + shlex.join(command), markup=False, highlight=False)
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise InvalidInput(
            f"the import into {home} failed (neo4j-local exit {done.returncode}; its "
            f"messages are above); the files stay in {files.folder}"
        )
    console.print(
        f"imported; start the server with: {_NEO4J_LOCAL} start --data {home}", markup=False
    )


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
        list[str] | None,
        typer.Option("--language", help="The partner speaks it (repeatable, ISO 639-1)."),
    ] = None,
    max_km: Annotated[float | None, typer.Option("--max-km", help="Maximum distance.")] = None,
    membership: Annotated[
        str | None, typer.Option("--membership", help="international or national")
    ] = None,
    include_current: Annotated[
        bool, typer.Option("--include-current", help="Also list current partners.")
    ] = False,
    interpretation: Annotated[
        bool,
        typer.Option(
            "--allow-interpretation",
            help="Also list cities sharing no working language with the city (default: only "
            "cities it can talk to directly).",
        ),
    ] = False,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="City id always listed (repeatable)."),
    ] = None,
    forbid: Annotated[
        list[str] | None, typer.Option("--forbid", help="City id never listed (repeatable).")
    ] = None,
    again: Annotated[
        str | None,
        typer.Option(
            "--again",
            help="A partner suggested to the city before: mark (list it, saying when) or hide "
            "(leave it out). Default: the setting ICCMATCH_SUGGESTIONS_AGAIN (mark).",
        ),
    ] = None,
    remember: Annotated[
        bool,
        typer.Option(
            "--remember",
            help="Remember each list as shown to its city today (the next lists mark or hide it).",
        ),
    ] = False,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Suggest partner cities, ranked, each with its reasons."""
    from matching.partners import PartnerFilters
    from matching.partners.memory import AGAIN

    if membership not in (None, "international", "national"):
        raise InvalidInput("--membership is international or national")
    shown_again = again or get_settings().suggestions_again
    if shown_again not in AGAIN:
        raise InvalidInput(f"--again is {' or '.join(AGAIN)}, not {again!r}")
    filters = PartnerFilters(
        theme=theme,
        languages=tuple(language or ()),
        max_distance_km=max_km,
        membership=membership,  # type: ignore[arg-type]  # checked just above
        exclude_current=not include_current,
        shared_language=not interpretation,
        forced=tuple(dict.fromkeys(force or ())),
        forbidden=tuple(dict.fromkeys(forbid or ())),
    )
    with _service(store) as service, _embedding_progress() as bar:
        task = bar.add_task("embed", total=None)
        ready = service.prepared(lambda done, total: bar.update(task, completed=done, total=total))
        results = service.partners(city_ids, k=k, filters=filters, again=shown_again)
        names = {c: ready.arrays.names[i] for c, i in ready.arrays.index.items()}
        shown = [
            service.remember_suggestions(r.city_id, [s.city_id for s in r.suggestions])
            for r in results
            if remember and r.suggestions
        ]

    if as_json:
        doc = {"results": jsonable(results)} | ({"remembered": shown} if remember else {})
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    for result in results:
        hidden = (
            f"; {plural(result.hidden_as_suggested, 'partner')} suggested before left out"
            if result.hidden_as_suggested
            else ""
        )
        out.print(
            f"[bold]Partners for {escape(names.get(result.city_id, result.city_id))} "
            f"({result.city_id})[/bold] "
            f"({plural(result.considered, 'city', 'cities')} considered; ranked by "
            f"{result.ranker}{hidden})"
        )
        for rank, s in enumerate(result.suggestions, 1):
            out.print(f"{rank:>2}. {s.name} ({s.country})  score {s.score:.3f}", markup=False)
            for reason in s.reasons:
                out.print(f"      - {reason.text}", markup=False, highlight=False)
    for memo in shown:
        out.print(
            f"Remembered {plural(memo['remembered'], 'suggestion')} as shown to "
            f"{names.get(memo['city_id'], memo['city_id'])} on {memo['on']}."
        )


@app.command()
def interests(
    city: Annotated[
        str | None, typer.Option("--city", help="Only this city's answers and matches.")
    ] = None,
    mutual: Annotated[
        bool, typer.Option("--mutual", help="Only mutual matches (both answered interested).")
    ] = False,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Coordinators' answers to suggested partners, and the mutual matches among them."""
    with _service(store) as service:
        if city is not None:
            doc = service.city_interests(city)
        else:
            doc = {"mutual": jsonable(service.mutual_matches())}
            if not mutual:
                doc["answers"] = jsonable(service.snapshot().partner_interests)
        names = {c.id: c.name for c in service.snapshot().cities}
    if mutual:
        doc = {"mutual": doc["mutual"]}
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    matches = doc["mutual"]
    out.print(f"[bold]{plural(len(matches), 'mutual match', 'mutual matches')}[/bold]")
    for m in matches:
        due = "  ASK HOW IT WENT" if m["follow_up_due"] else ""
        out.print(f"  {m['name_a']} <-> {m['name_b']}{due}", markup=False)
        for reason in m["reasons"][1:]:
            out.print(f"      - {reason['text']}", markup=False, highlight=False)
    for title, key in (
        ("answers", "answers"),
        ("answers given", "given"),
        ("answers received", "received"),
    ):
        if key not in doc:
            continue
        out.print(f"[bold]{plural(len(doc[key]), title[:-1], title)}[/bold]")
        for a in doc[key]:
            said = "interested" if a["status"] == "interested" else "not for us"
            line = f"  {names.get(a['city_id'], a['city_id'])} -> {names.get(a['partner_id'], a['partner_id'])}: {said}"
            out.print(line + (f" ({a['note']})" if a.get("note") else ""), markup=False)


@app.command()
def answer(
    city_id: Annotated[str, typer.Argument(help="The city answering.")],
    partner_id: Annotated[str, typer.Argument(help="The suggested partner.")],
    status: Annotated[str, typer.Argument(help="interested or not_for_us")],
    note: Annotated[str | None, typer.Option("--note", help="A note for the record.")] = None,
    store: StoreOpt = None,
) -> None:
    """Record a city's answer to a suggested partner, as its coordinator would.

    As on the partner page: "not for us" is never suggested to that city again."""
    with _service(store) as service:
        service.record_answer(city_id, partner_id, status, note)
        match = next(
            (m for m in service.mutual_matches(city_id) if partner_id in (m.city_a, m.city_b)), None
        )
    out.print(f"{city_id} -> {partner_id}: {status}", markup=False)
    if match is not None:
        out.print(f"mutual match: {match.name_a} and {match.name_b}", markup=False)


@app.command("follow-up")
def follow_up(
    city_a: Annotated[str, typer.Argument(help="One city of a mutual match.")],
    city_b: Annotated[str, typer.Argument(help="The other city.")],
    status: Annotated[
        str,
        typer.Argument(
            help="introduced, meeting_held, project_started, partnership_signed or "
            "no_further_contact"
        ),
    ],
    on: Annotated[
        str | None, typer.Option("--on", help="When (YYYY-MM-DD; default: today).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the record.")] = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Record the next step of a mutual match, with its date and a note.

    A signed partnership also records the partnership, so the next cycle treats the pair
    as partners."""
    with _service(store) as service:
        match = jsonable(service.record_match_status(city_a, city_b, status, on, note))
    if as_json:
        out.print_json(json.dumps(match, ensure_ascii=False))
        return
    out.print(f"{match['name_a']} <-> {match['name_b']}", markup=False)
    for reason in match["reasons"][1:]:
        out.print(f"  - {reason['text']}", markup=False, highlight=False)


outcomes_app = typer.Typer(
    help="How accepted clusters and expert visits went: record, list.", no_args_is_help=True
)
app.add_typer(outcomes_app, name="outcomes")


@outcomes_app.command("record")
def outcomes_record(
    cluster_id: Annotated[str, typer.Argument(help="An accepted cluster's id.")],
    rating: Annotated[int, typer.Option("--rating", min=1, max=5, help="1 (poor) to 5.")],
    expert: Annotated[
        str | None, typer.Option("--expert", help="Rate this expert's visit instead.")
    ] = None,
    city: Annotated[
        str | None, typer.Option("--city", help="The member city rating (default: secretariat).")
    ] = None,
    on: Annotated[str | None, typer.Option("--on", help="YYYY-MM-DD (default: today).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="What happened.")] = None,
    store: StoreOpt = None,
) -> None:
    """Record how an accepted cluster, or one expert's visit to it, went."""
    with _service(store) as service:
        o = service.record_outcome(
            cluster_id, rating, on=on, expert_id=expert, city_id=city, note=note
        )
    console.print(f"recorded {o.id}: {o.rating}/5 on {o.on}", markup=False)


@outcomes_app.command("list")
def outcomes_list(
    cluster_id: Annotated[str | None, typer.Option("--cluster", help="One cluster only.")] = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every recorded outcome, by cluster."""
    with _store(store) as s:
        snap = s.snapshot()
    rows = [o for o in snap.outcomes if cluster_id in (None, o.cluster_id)]
    if as_json:
        out.print_json(json.dumps(jsonable(rows), ensure_ascii=False))
        return
    names = {c.id: c.name for c in snap.clusters}
    experts = {e.id: e.name for e in snap.experts}
    cities = {c.id: c.name for c in snap.cities}
    for o in rows:
        what = names.get(o.cluster_id, o.cluster_id)
        if o.expert_id:
            what += f", the visit of {experts.get(o.expert_id, o.expert_id)}"
        by = cities.get(o.city_id, o.city_id) if o.city_id else "the secretariat"
        line = f"{what}: {o.rating}/5 from {by} on {o.on}" + (f" ({o.note})" if o.note else "")
        out.print(line, markup=False, soft_wrap=True)
    if not rows:
        out.print("no outcomes recorded yet", markup=False)


clusters_app = typer.Typer(
    help="Cluster proposals: propose, list, show, compare, evaluate an edit, discard, accept;"
    " and the accepted clusters.",
    no_args_is_help=True,
)
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
    max_span_km: Annotated[
        float | None,
        typer.Option(
            "--max-span-km",
            min=0,
            max=20100,
            help="Largest distance between two members (km); 0: no limit. Default: "
            "$ICCMATCH_CLUSTER_MAX_SPAN_KM (1500) for geographic clusters, none for thematic.",
        ),
    ] = None,
    fair: Annotated[
        bool, typer.Option("--fair", help="First raise the worst-off city, then the total.")
    ] = False,
    keep_apart: Annotated[
        list[str] | None,
        typer.Option("--keep-apart", help="Two city ids never in one cluster: A,B (repeatable)."),
    ] = None,
    keep_together: Annotated[
        list[str] | None,
        typer.Option("--keep-together", help="City ids kept in one cluster: A,B,C (repeatable)."),
    ] = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Propose clusters under the constraints; the proposal is saved and can be accepted."""
    from api.services.clusters import ClusterService
    from matching.clusters import ClusterParams

    if kind not in ("thematic", "geographic"):
        raise InvalidInput("--kind is thematic or geographic")
    if max_span_km is None:
        max_span_km = get_settings().cluster_max_span_km if kind == "geographic" else 0.0
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
        max_span_km=max_span_km or None,
        fair=fair,
        keep_apart=tuple(_pair(x) for x in keep_apart or ()),
    )
    with _service(store) as service:
        clusters = ClusterService(service)
        groups = [_ids(x) for x in keep_together or ()]
        doc = clusters.propose(clusters.keep_together(params, groups))
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    _print_proposal(doc)


def _ids(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _pair(text: str) -> tuple[str, str]:
    ids = _ids(text)
    if len(ids) != 2:
        raise InvalidInput(f"--keep-apart takes two city ids as A,B, not {text!r}")
    return ids[0], ids[1]


def _print_proposal(doc: dict[str, Any]) -> None:
    out.print(
        f"[bold]Proposal {doc['id']}[/bold] ({doc['method']}, objective {doc['objective']:.2f})"
    )
    m = doc["metrics"]
    if doc.get("fair"):
        out.print(
            f"fair: worst-off benefit {m['worst_benefit']:.3f} (plain {m['plain_worst_benefit']:.3f}), "
            f"objective {doc['objective']:.2f} (plain {m['plain_objective']:.2f}; "
            f"price of fairness {m['price_of_fairness']:.2f})",
            markup=False,
        )
    if "max_span_km" in m:
        out.print(f"no cluster spans more than {m['max_span_km']:,.0f} km", markup=False)
    for c in doc["clusters"]:
        out.print(
            f"{c['id']}: {', '.join(c['members'])} (lead {c['lead_city']}, {'/'.join(c['working_languages'])})",
            markup=False,
            highlight=False,
        )
        for reason in c["reasons"]:
            out.print(f"      - {reason['text']}", markup=False, highlight=False)
    if doc.get("status", "proposed") != "proposed":
        out.print(f"status: {doc['status']}", markup=False)
    for city, why in (doc.get("limited") or {}).items():
        out.print(f"  {city}: {why}", markup=False, highlight=False)
    for st in doc["constraints"]:
        out.print(f"  {st['name']}: {st['status']} {st['detail']}", markup=False)
    if doc["unassigned"]:
        out.print(
            f"{len(doc['unassigned'])} cities left out, e.g. "
            + "; ".join(f"{u['name']}: {u['reason']}" for u in doc["unassigned"][:3]),
            markup=False,
            highlight=False,
        )
    if doc.get("status", "proposed") == "proposed" and not doc.get("evaluated"):
        console.print(f"accept with: iccmatch clusters accept {doc['id']}", markup=False)


@clusters_app.command("proposals")
def clusters_proposals(
    store: StoreOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The saved proposals, newest first: kind, created, revision, clusters, objective, status."""
    from api.services.clusters import ClusterService

    with _service(store) as service:
        rows = ClusterService(service).list()
    if as_json:
        out.print_json(json.dumps({"items": rows}, ensure_ascii=False))
        return
    for r in rows:
        out.print(
            f"{r['id']}  {r['status']:<9} {r['kind']:<10} {r['created']}  revision {r['revision']}  "
            f"{r['n_clusters']} clusters  objective {r['objective']:.2f}",
            markup=False,
            highlight=False,
        )


@clusters_app.command("show")
def clusters_show(
    proposal_id: Annotated[str, typer.Argument(help="A proposal id (see `clusters proposals`).")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One saved proposal: its clusters with reasons, the rules and who was left out."""
    from api.services.clusters import ClusterService

    with _service(store) as service:
        doc = ClusterService(service).get(proposal_id)
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    _print_proposal(doc)


@clusters_app.command("compare")
def clusters_compare(
    a: Annotated[str, typer.Argument(help="The first proposal id.")],
    b: Annotated[str, typer.Argument(help="The proposal to compare it with.")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What changed from A to B: cities moved, added and left out, objective terms, rules."""
    from api.services.clusters import ClusterService

    with _service(store) as service:
        cmp = ClusterService(service).compare(a, b)
    if as_json:
        out.print_json(json.dumps(cmp, ensure_ascii=False))
        return
    for line in cmp["reasons"]:
        out.print(line, markup=False, highlight=False)
    for t in cmp["terms"]:
        out.print(
            f"  {t['name']}: {t['before']:,.3f} -> {t['after']:,.3f} ({t['change']:+,.3f})",
            markup=False,
        )


@clusters_app.command("evaluate")
def clusters_evaluate(
    proposal_id: Annotated[str, typer.Argument(help="The proposal the edit starts from.")],
    edits: Annotated[
        Path,
        typer.Option(
            "--edits",
            exists=True,
            dir_okay=False,
            help='JSON: {"clusters": [{"id", "members", "theme_ids", "lead_city"}], '
            '"keep_apart": [[A, B]]} (or the list of clusters alone).',
        ),
    ],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Re-check an edit of a proposal: scores, reasons, every rule and the leads asked for."""
    from api.services.clusters import ClusterService

    try:
        body = json.loads(edits.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{edits}: not JSON ({e})") from e
    if isinstance(body, list):
        body = {"clusters": body}
    if not isinstance(body, dict) or not isinstance(body.get("clusters"), list):
        raise InvalidInput(f'{edits}: give {{"clusters": [...]}} or a list of clusters')
    with _service(store) as service:
        doc = ClusterService(service).evaluate(
            proposal_id, body["clusters"], body.get("keep_apart") or ()
        )
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    _print_proposal(doc)


@clusters_app.command("discard")
def clusters_discard(
    proposal_id: Annotated[str, typer.Argument(help="The proposal to discard.")],
    store: StoreOpt = None,
) -> None:
    """Discard a proposal: it stays listed as discarded and can no longer be accepted."""
    from api.services.clusters import ClusterService

    with _service(store) as service:
        row = ClusterService(service).discard(proposal_id)
    console.print(f"{row['id']} discarded", markup=False)


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
    same_country: Annotated[
        bool | None,
        typer.Option(
            "--same-country/--no-same-country",
            help="No expert for a cluster with a member in the expert's country; default: "
            "ICCMATCH_EXPERT_CONFLICT_SAME_COUNTRY.",
        ),
    ] = None,
    conflict: Annotated[
        list[str] | None,
        typer.Option(
            "--conflict",
            metavar="EXPERT:CITY[:REASON]",
            help="The expert serves no cluster with that city (repeatable).",
        ),
    ] = None,
    conflicts_file: Annotated[
        Path | None,
        typer.Option(
            "--conflicts",
            exists=True,
            dir_okay=False,
            metavar="FILE.csv",
            help="Conflicts as CSV with the columns expert_id, city_id and (optional) reason.",
        ),
    ] = None,
    fix: Annotated[
        list[str] | None,
        typer.Option(
            "--fix",
            metavar="EXPERT:CLUSTER",
            help="Keep this pair, if the rules allow (repeatable).",
        ),
    ] = None,
    save: Annotated[
        bool,
        typer.Option("--save", help="Record the pairs (replacing these clusters' earlier ones)."),
    ] = False,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Assign experts to clusters: provably optimal under capacities, languages and conflicts."""
    import csv

    ids = None if clusters == "accepted" else [c.strip() for c in clusters.split(",") if c.strip()]
    declared: list[tuple[str, str, str]] = []
    for text in conflict or []:
        expert_id, _, rest = text.partition(":")
        city_id, _, reason = rest.partition(":")
        if not expert_id.strip() or not city_id.strip():
            raise InvalidInput(f"--conflict takes EXPERT:CITY[:REASON], not {text!r}")
        declared.append((expert_id.strip(), city_id.strip(), reason.strip()))
    if conflicts_file is not None:
        with conflicts_file.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not {"expert_id", "city_id"} <= set(reader.fieldnames or ()):
                raise InvalidInput(
                    f"{conflicts_file}: the header must name expert_id and city_id "
                    "(and optionally reason)"
                )
            for row in reader:
                if not (row["expert_id"] or "").strip() or not (row["city_id"] or "").strip():
                    raise InvalidInput(
                        f"{conflicts_file}, line {reader.line_num}: expert_id and city_id are required"
                    )
                declared.append(
                    (
                        row["expert_id"].strip(),
                        row["city_id"].strip(),
                        (row.get("reason") or "").strip(),
                    )
                )
    fixed: list[tuple[str, str]] = []
    for text in fix or []:
        expert_id, _, cluster_id = text.partition(":")
        if not expert_id.strip() or not cluster_id.strip():
            raise InvalidInput(f"--fix takes EXPERT:CLUSTER, not {text!r}")
        fixed.append((expert_id.strip(), cluster_id.strip()))
    if same_country is None:
        same_country = get_settings().expert_conflict_same_country
    with _service(store) as service:
        result, rows, sources = service.assign_experts(
            ids,
            per_cluster=per_cluster,
            fair=fair,
            conflict_same_country=same_country,
            conflicts=declared,
            fixed=fixed,
        )
        saved = service.save_assignment(result, rows) if save else 0
    members = {c.id: c.members for c in rows}
    source = {
        (x.expert_id, x.cluster_id): sources.source_of(x.expert_id, members[x.cluster_id])
        for x in result.excluded
    }
    if as_json:
        doc = jsonable(result) | {
            "conflict_same_country": same_country,
            "conflict_counts": sources.counts(),
            "saved": saved,
        }
        for x in doc["excluded"]:
            x["source"] = source[(x["expert_id"], x["cluster_id"])]
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    out.print(
        f"objective {result.objective:.3f}{' (fair)' if result.fair else ''}; same-country "
        f"rule {'on' if same_country else 'off'}; conflicts: {sources.stored} stored, "
        f"{sources.request} from this run",
        markup=False,
    )
    table = Table("cluster", "expert", "fit", "why")
    for pair in result.pairs:
        table.add_row(
            f"{pair.cluster_name} ({pair.cluster_id})",
            f"{pair.expert_name} ({pair.expert_id})",
            f"{pair.score:.3f}",
            "\n".join(reason.text for reason in pair.reasons),
        )
    out.print(table)
    for pin in result.fixed:
        out.print(f"{'fixed' if pin.honoured else 'not fixed'}: {pin.reason}", markup=False)
    for x in result.excluded:
        out.print(f"{x.reason} [{source[(x.expert_id, x.cluster_id)]}]", markup=False)
    for u in result.unserved:
        out.print(f"not fully served: {u.cluster_name}: {u.relax}", markup=False)
    for note in result.notes:
        out.print(note, markup=False)
    if save:
        out.print(f"saved {plural(saved, 'pair')}", markup=False)


conflicts_app = typer.Typer(
    help="Expert conflicts kept in the network (every expert assignment applies them): "
    "add, list, remove.",
    no_args_is_help=True,
)
app.add_typer(conflicts_app, name="conflicts")


@conflicts_app.command("add")
def conflicts_add(
    expert_id: Annotated[str, typer.Argument(help="The expert's id.")],
    city_id: Annotated[str, typer.Argument(help="The city's id.")],
    reason: Annotated[
        str,
        typer.Option("--reason", help='Why, e.g. "advised it last cycle" (shown with the result).'),
    ],
    store: StoreOpt = None,
) -> None:
    """Keep an expert from every cluster with this city (a second add re-words the reason)."""
    from api.services.expert_conflicts import add_conflict

    with _store(store) as s:
        row = add_conflict(s, s.snapshot(), expert_id, city_id, reason)
    what = "stored" if row["created"] else "updated"
    out.print(
        f"{what}: {row['expert_name']} ({expert_id}) serves no cluster with "
        f"{row['city_name']} ({city_id}): {row['reason']}",
        markup=False,
    )


@conflicts_app.command("list")
def conflicts_list(
    expert_id: Annotated[str | None, typer.Option("--expert", help="One expert only.")] = None,
    city_id: Annotated[str | None, typer.Option("--city", help="One city only.")] = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The stored expert conflicts, with names, by expert."""
    from api.services.expert_conflicts import named_conflicts

    with _store(store) as s:
        rows = named_conflicts(s.snapshot(), expert_id, city_id)
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        out.print("no expert conflicts stored", markup=False)
        return
    for r in rows:
        out.print(
            f"{r['expert_name']} ({r['expert_id']}) serves no cluster with "
            f"{r['city_name']} ({r['city_id']}): {r['reason']}",
            markup=False,
            soft_wrap=True,
        )


@conflicts_app.command("remove")
def conflicts_remove(
    expert_id: Annotated[str, typer.Argument(help="The expert's id.")],
    city_id: Annotated[str, typer.Argument(help="The city's id.")],
    store: StoreOpt = None,
) -> None:
    """Delete one stored conflict."""
    from api.services.expert_conflicts import remove_conflict

    with _store(store) as s:
        gone = remove_conflict(s, s.snapshot(), expert_id, city_id)["deleted"]
    out.print(
        f"removed: {gone['expert_name']} ({expert_id}) may serve clusters with "
        f"{gone['city_name']} ({city_id}) again",
        markup=False,
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
        f"agreement with national networks: ARI {comm.ari_vs_networks:.3f}"
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
