"""Altmetric API v1 import, and our scores against Altmetric's on the shared camlib records."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.imports.altmetric import (
    AltmetricFileError,
    import_altmetric,
    post_author,
    read_altmetric_file,
)
from reachmeter.scoring import compute_scores, load_profile, read_score
from reachmeter.scoring.altmetric import compare_with_altmetric, spearman
from reachmeter.store import Store
from tests.conftest import shared_data

runner = CliRunner()
AS_OF = dt.date(2026, 11, 1)


def _camlib() -> list[Path]:
    root = shared_data("altmetric", "camlib")
    return sorted(root.glob("tests*/json_data/*.json"))


def test_post_authors_are_counted_as_altmetric_counts_unique_users() -> None:
    tweet = {"author": {"id_on_source": "OECD_Pubs", "url": "http://www.oecd-ilibrary.org/"}}
    assert post_author("twitter", tweet) == "https://twitter.com/OECD_Pubs"
    page = {"page_url": "http://en.wikipedia.org/?curid=42381912", "wiki_lang": "en"}
    assert post_author("wikipedia", page) == "wikipedia:en:42381912"
    policy = {"source": {"name": "National Academies Press", "url": "https://www.nap.edu"}}
    assert post_author("policy", policy) == "https://www.nap.edu"
    assert post_author("blogs", {"author": {"name": "B", "url": "http://b.example/"}}) == (
        "http://b.example/"
    )
    assert post_author("blogs", {}) is None


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9487, abs=1e-4)
    assert spearman([1, 2], [1, 2]) is None


def test_a_malformed_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    broken = shared_data("altmetric", "api-docs", "fetch.json")
    with pytest.raises(AltmetricFileError, match=r"fetch\.json"):
        list(read_altmetric_file(broken))
    lines = tmp_path / "records.jsonl"
    lines.write_text('{"doi": "10.1000/a", "score": 1}\n{"doi": "10.1000/b", "score": 2}\n')
    assert [line for line, _ in read_altmetric_file(lines)] == [1, 2]
    assert len(list(read_altmetric_file(shared_data("altmetric", "api-docs", "citations.json"))))


def test_api_v1_counts_become_observations(store: Store) -> None:
    path = shared_data("altmetric", "cos-pyaltmetric", "average.json")
    empty = shared_data("altmetric", "cos-pyaltmetric", "empty.json")
    summary = import_altmetric(store, [path, empty])
    assert summary.records == 1
    assert summary.outputs == 1
    assert summary.events == 0
    assert summary.observations >= 5  # score and cited_by_* counts
    record = json.loads(path.read_text())
    compute_scores(store, load_profile("altmetric-like"), AS_OF)
    result = compare_with_altmetric(store, load_profile("altmetric-like"), AS_OF)
    assert [row["theirs"] for row in result.outputs] == [record["score"]]


def test_camlib_posts_reproduce_altmetric_author_counts_and_track_its_score(
    store: Store,
) -> None:
    files = _camlib()
    summary = import_altmetric(store, files)
    assert summary.records == len(files)
    assert summary.skipped == 0
    again = import_altmetric(store, files)
    assert again.events == 0  # importing twice stores nothing new
    assert again.duplicates == summary.events + summary.observations
    profile = load_profile("altmetric-like")
    compute_scores(store, profile, AS_OF, flags=False)
    result = compare_with_altmetric(store, profile, AS_OF)
    assert result.count_checks >= 75
    assert result.count_mismatches == []
    # Figures reported in docs/scoring.md: Spearman 0.97, median relative error 0.28.
    assert result.spearman is not None
    assert result.spearman > 0.95
    assert result.median_relative_error is not None
    assert result.median_relative_error < 0.35
    exact = [row for row in result.outputs if row["ours"] == row["theirs"]]
    assert len(exact) >= 20  # policy, Wikipedia, news and blog-only records agree exactly
    top = max(result.outputs, key=lambda row: row["theirs"])
    stored = read_score(store, top["output_id"], "altmetric-like", AS_OF)
    assert stored is not None
    assert stored["breakdown"]["sources"]["twitter"]["count"] > 0


def test_import_and_compare_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    files = [str(p) for p in _camlib()[:10]]
    imported = runner.invoke(app, ["import", "altmetric", "--db", db, *files])
    assert imported.exit_code == 0, imported.output
    assert "10 records" in imported.output
    assert runner.invoke(app, ["score", "--db", db, "--profile", "altmetric-like"]).exit_code == 0
    compared = runner.invoke(app, ["scores", "compare-altmetric", "--db", db, "--json"])
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["count_mismatches"] == []
