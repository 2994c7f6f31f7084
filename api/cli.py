"""The ``iccmatch`` command: a thin shell over the same services as the HTTP API."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.settings import get_settings
from graph.errors import IccmatchError
from graph.model import Kind
from graph.store import GraphStore, open_store
from ingest.export import export_csv
from ingest.load import ingest_path

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
    )
    try:
        yield store
    finally:
        store.close()


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
        with _store(store) as s, Progress(
            TextColumn("writing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json or not console.is_terminal,
            transient=True,
        ) as bar:
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


def main() -> None:
    # The driver logs each retry as a warning; our own message says what failed.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    try:
        app()
    except IccmatchError as e:  # a safety net; commands catch their own
        console.print(f"error: {e.detail}", markup=False)
        sys.exit(2)
