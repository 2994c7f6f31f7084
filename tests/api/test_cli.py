"""The iccmatch command: ingest, export and summary as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from tests.helpers import tiny, write_csvs

runner = CliRunner()


def test_ingest_json_report_has_the_documented_shape(store_url: str, tmp_path: Path) -> None:
    folder = write_csvs(tmp_path / "ds", tiny())
    result = runner.invoke(app, ["ingest", str(folder), "--store", store_url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"created", "updated", "unchanged", "errors"} <= set(report)
    assert (report["created"], report["updated"], report["errors"]) == (20, 0, [])
    again = json.loads(
        runner.invoke(app, ["ingest", str(folder), "--store", store_url, "--json"]).stdout
    )
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 20)


def test_bad_rows_exit_nonzero_and_write_nothing(store_url: str, tmp_path: Path) -> None:
    data = tiny()
    data["cities"][0]["lat"] = 200
    folder = write_csvs(tmp_path / "ds", data)
    result = runner.invoke(app, ["ingest", str(folder), "--store", store_url, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["errors"][0] == {
        "file": "cities.csv",
        "line": 2,
        "column": "lat",
        "message": "should be less than or equal to 90 (got '200')",
    }
    assert report["created"] == 0
    summary = runner.invoke(app, ["summary", "--store", store_url])
    assert summary.exit_code == 0 and "revision 0" in summary.stdout


def test_human_report_names_file_line_and_column(tmp_path: Path) -> None:
    data = tiny()
    data["themes"][1]["id"] = "anti-rumours"
    folder = write_csvs(tmp_path / "ds", data)
    result = runner.invoke(app, ["ingest", str(folder), "--store", f"sqlite:///{tmp_path}/x.db"])
    assert result.exit_code == 1
    assert "themes.csv:3 [id]: duplicate id 'anti-rumours' (first on line 2)" in result.stderr
    assert "nothing was written" in result.stderr


def test_export_then_ingest_changes_nothing(store_url: str, tmp_path: Path) -> None:
    folder = write_csvs(tmp_path / "ds", tiny())
    assert runner.invoke(app, ["ingest", str(folder), "--store", store_url]).exit_code == 0
    result = runner.invoke(app, ["export", str(tmp_path / "out"), "--store", store_url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "cities.csv").read_text(encoding="utf-8").count("\n") == 6
    again = runner.invoke(app, ["ingest", str(tmp_path / "out"), "--store", store_url, "--json"])
    assert json.loads(again.stdout)["unchanged"] == 20


def test_summary_describes_the_network(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    runner.invoke(app, ["ingest", str(write_csvs(tmp_path / "ds", tiny())), "--store", url])
    result = runner.invoke(app, ["summary", "--store", url])
    assert result.exit_code == 0
    assert "5 cities in 5 countries" in result.stdout
    assert "Città del Dialogo (1)" in result.stdout


def test_unreachable_neo4j_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["summary", "--store", "bolt://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "unreachable" in result.stderr and "Traceback" not in result.output


def test_unknown_store_url_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["summary", "--store", "postgres://x"])
    assert result.exit_code == 2 and "unknown store URL" in result.stderr
