"""Ingest a dataset into a store: read, check everything, then write in one transaction.

By default any bad row means nothing is written; ``skip_invalid`` writes the good rows
and reports the rest. Either way the report lists every problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.model import Kind
from graph.store import GraphStore, Progress, UpsertReport
from ingest.read import RawRow, RowError, read_dataset
from ingest.validate import check_rows


@dataclass(slots=True)
class IngestReport:
    upsert: UpsertReport = field(default_factory=UpsertReport)
    errors: list[RowError] = field(default_factory=list)
    written: bool = False
    rows_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.upsert.created,
            "updated": self.upsert.updated,
            "unchanged": self.upsert.unchanged,
            "errors": [e.as_dict() for e in self.errors],
            "written": self.written,
            "dry_run": self.upsert.dry_run,
            "revision": self.upsert.revision,
            "by_kind": {
                k.value: {"created": c.created, "updated": c.updated, "unchanged": c.unchanged}
                for k, c in self.upsert.by_kind.items()
            },
        }


def ingest_rows(
    rows: list[RawRow],
    read_errors: list[RowError],
    store: GraphStore,
    *,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Check raw rows and write them; shared by files on disk and API uploads."""
    checked = check_rows(rows, store.ids)
    report = IngestReport(
        errors=sorted(read_errors + checked.errors, key=lambda e: (e.file, e.line))
    )
    report.rows_read = len(rows)
    if report.errors and not skip_invalid:
        report.upsert = UpsertReport(dry_run=dry_run, revision=store.revision())
        return report
    report.upsert = store.upsert(checked.batch, dry_run=dry_run, progress=progress)
    report.written = not dry_run and report.upsert.changed > 0
    return report


def ingest_path(
    path: Path,
    store: GraphStore,
    *,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    raw = read_dataset(path)
    return ingest_rows(
        raw.rows, raw.errors, store, dry_run=dry_run, skip_invalid=skip_invalid, progress=progress
    )


__all__ = ["IngestReport", "Kind", "ingest_path", "ingest_rows"]
