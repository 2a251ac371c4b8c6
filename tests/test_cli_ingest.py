"""The ingest, stats and export commands, as a user runs them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from reachmeter.cli import app
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
runner = CliRunner()


def test_ingest_prints_a_summary_and_stats_counts_it(store_url: str) -> None:
    path = shared_data("crossref-event-data", "events_from_docs.json")
    result = runner.invoke(app, ["ingest", "--db", store_url, str(path)])
    assert result.exit_code == 0, result.output
    assert "events stored" in result.output
    stats = runner.invoke(app, ["stats", "--json", "--db", store_url])
    assert stats.exit_code == 0
    counts = json.loads(stats.stdout)
    assert counts["demo"] is False
    assert counts["tables"]["events"] == 15
    assert counts["tables"]["runs"] == 1
    assert counts["events_by_source"]["twitter"] == 2


def test_ingest_exits_non_zero_only_when_nothing_could_be_read(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    junk = tmp_path / "junk.txt"
    junk.write_text("this is not an event file\n")
    result = runner.invoke(app, ["ingest", "--db", db, str(junk)])
    assert result.exit_code == 1
    assert "not a recognised event file" in result.output
    mixed = runner.invoke(app, ["ingest", "--db", db, str(junk), str(FIXTURES / "mixed.jsonl")])
    assert mixed.exit_code == 0
    bad_format = runner.invoke(app, ["ingest", "--db", db, "--format", "xml", str(junk)])
    assert bad_format.exit_code == 2


def test_export_then_ingest_again_loses_nothing(store_url: str, tmp_path: Path) -> None:
    sources = [
        shared_data("crossref-event-data", "events_from_docs.json"),
        FIXTURES / "deletion.json",
    ]
    assert runner.invoke(app, ["ingest", "--db", store_url, *map(str, sources)]).exit_code == 0
    original = tmp_path / "original.jsonl"
    runner.invoke(
        app, ["export", "events", "--format", "jsonl", "--db", store_url, "-o", str(original)]
    )
    records = [orjson.loads(line) for line in original.read_bytes().splitlines()]
    assert len(records) == 17
    assert sum(1 for r in records if r.get("updated") == "deleted") == 1
    for fmt in ("jsonl", "csv", "eventdata"):
        exported = tmp_path / f"events.{fmt}"
        result = runner.invoke(
            app, ["export", "events", "--format", fmt, "--db", store_url, "-o", str(exported)]
        )
        assert result.exit_code == 0, result.output
        copy = str(tmp_path / f"copy-{fmt}.db")
        again = runner.invoke(app, ["ingest", "--db", copy, str(exported)])
        assert again.exit_code == 0, again.output
        round_trip = tmp_path / f"round-{fmt}.jsonl"
        runner.invoke(
            app, ["export", "events", "--format", "jsonl", "--db", copy, "-o", str(round_trip)]
        )
        assert round_trip.read_bytes() == original.read_bytes(), fmt


def test_exported_outputs_import_again_unchanged(tmp_path: Path) -> None:
    first = str(tmp_path / "first.db")
    catalogue = Path(__file__).parent / "fixtures" / "catalog" / "outputs.csv"
    assert runner.invoke(app, ["import", "outputs", "--db", first, str(catalogue)]).exit_code == 0
    exported = tmp_path / "outputs.csv"
    result = runner.invoke(
        app, ["export", "outputs", "--format", "csv", "--db", first, "-o", str(exported)]
    )
    assert result.exit_code == 0, result.output
    second = str(tmp_path / "second.db")
    again = runner.invoke(app, ["import", "outputs", "--db", second, str(exported)])
    assert again.exit_code == 0, again.output
    round_trip = tmp_path / "round.csv"
    runner.invoke(
        app, ["export", "outputs", "--format", "csv", "--db", second, "-o", str(round_trip)]
    )
    assert round_trip.read_text() == exported.read_text()
    assert len(exported.read_text().splitlines()) > 2


def test_the_database_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "from-env.db"
    monkeypatch.setenv("REACHMETER_DATABASE_URL", str(db))
    result = runner.invoke(app, ["ingest", str(FIXTURES / "mentions.csv")])
    assert result.exit_code == 0, result.output
    stats = runner.invoke(app, ["stats", "--json"])
    assert json.loads(stats.stdout)["tables"]["events"] == 3
    assert db.exists()


def test_a_large_file_is_read_in_a_forked_process_under_the_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The progress bar runs no thread, so the reading process can be forked (it starts
    at once, with nothing to import again)."""
    import reachmeter.reading as reading
    from reachmeter.reading import process_context

    chosen: list[str] = []

    def recording() -> object:
        context = process_context()
        chosen.append(context.get_start_method())
        return context

    monkeypatch.setattr(reading, "process_context", recording)
    monkeypatch.setenv("REACHMETER_INGEST_PARALLEL_BYTES", "1")
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "id": f"f-{n}",
                    "subj_id": f"https://x.example/{n}",
                    "relation_type_id": "discusses",
                    "obj_id": "https://doi.org/10.5555/forked",
                    "source_id": "web",
                    "occurred_at": "2024-03-05T06:07:08Z",
                }
            )
            + b"\n"
            for n in range(5)
        )
    )
    result = runner.invoke(app, ["ingest", "--db", str(tmp_path / "s.db"), str(path)])
    assert result.exit_code == 0, result.output
    assert chosen == ["fork" if sys.platform == "linux" else "spawn"]
