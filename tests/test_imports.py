"""Importing outputs (CSV, BibTeX, RIS) and people (CSV): merging, quarantine, idempotence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.imports import ImportFileError, import_outputs, import_people
from reachmeter.matching.identifiers import Identifier
from reachmeter.store import Store
from reachmeter.store.catalog import find_output, find_person, output_identifiers, person_accounts
from reachmeter.store.schema import Group, Output, QuarantinedRecord, Run

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"
SCREEN_DOI = "10.1136/bmjopen-2020-044444"


def _outputs(store: Store) -> list[tuple[int, list[str]]]:
    with store.session() as session:
        outputs = session.scalars(
            select(Output).where(Output.merged_into_id.is_(None)).order_by(Output.id)
        ).all()
        return [(o.id, [str(i) for i in output_identifiers(session, o)]) for o in outputs]


def _quarantine(store: Store) -> list[tuple[int, str]]:
    with store.session() as session:
        rows = session.execute(
            select(QuarantinedRecord.line, QuarantinedRecord.reason).order_by(QuarantinedRecord.id)
        ).all()
        return [(line, reason) for line, reason in rows]


def test_csv_import_stores_good_rows_and_quarantines_bad_ones(store: Store) -> None:
    summary = import_outputs(store, FIXTURES / "outputs.csv")
    assert (summary.read, summary.created, summary.updated, summary.quarantined) == (7, 5, 0, 2)
    assert _quarantine(store) == [
        (
            6,
            "line 6 ('A record without identifiers'): no usable identifier "
            "(DOI, PMID, arXiv, ISBN, URL, ...)",
        ),
        (
            7,
            "line 7 ('Bad date'): published_on: unparseable date 'March 2020' "
            "(use YYYY-MM-DD, YYYY-MM or YYYY)",
        ),
    ]
    assert [identifiers for _, identifiers in _outputs(store)] == [
        [f"doi:{SCREEN_DOI}", "pmid:33722865"],
        ["doi:10.1101/2020.11.02.20224451"],
        ["url:https://www.example-law.com/insights/dsa-data-retention"],
        ["handle:10044/1/98765", "isbn:9780306406157"],
        ["arxiv:2101.00001"],
    ]
    with store.session() as session:
        article = find_output(session, f"https://doi.org/{SCREEN_DOI.upper()}")
        assert article is not None
        assert (article.type, article.venue, article.published_on) == (
            "article",
            "BMJ Open",
            dt.date(2021, 3, 15),
        )
        assert article.extra == {
            "published_precision": "day",
            "authors": ["Jane Smith", "Unknown Author"],
        }
        preprint = find_output(session, "10.1101/2020.11.02.20224451")
        assert preprint is not None
        assert (preprint.published_on, preprint.extra["published_precision"]) == (
            dt.date(2020, 11, 1),
            "month",
        )
        run = session.scalars(select(Run)).one()
        assert (run.kind, run.status, run.read, run.stored, run.quarantined) == (
            "import-outputs",
            "partial",
            7,
            5,
            2,
        )
        assert run.finished_at is not None
        assert run.finished_at.tzinfo is not None


def test_reimport_is_idempotent(store: Store) -> None:
    import_outputs(store, FIXTURES / "outputs.csv")
    before = _outputs(store)
    again = import_outputs(store, FIXTURES / "outputs.csv")
    assert (again.read, again.created, again.updated, again.merged, again.quarantined) == (
        7,
        0,
        0,
        0,
        2,
    )
    assert _outputs(store) == before
    assert len(_quarantine(store)) == 2  # not duplicated


def test_bibtex_and_ris_entries_of_one_doi_are_one_output(store: Store) -> None:
    bib = import_outputs(store, FIXTURES / "outputs.bib")
    ris = import_outputs(store, FIXTURES / "outputs.ris")
    assert (bib.read, bib.created, bib.quarantined) == (4, 3, 1)
    assert (ris.read, ris.created, ris.updated, ris.quarantined) == (3, 1, 1, 1)
    assert _quarantine(store) == [
        (
            27,
            "entry 'nodoi2018' at line 27 ('An Article Nobody Can Find'): no usable "
            "identifier (DOI, PMID, arXiv, ISBN, URL, ...)",
        ),
        (19, "line 19 ('An entry with a broken DOI'): DO: 'not-a-doi' is not a valid doi"),
    ]
    with store.session() as session:
        article = find_output(session, SCREEN_DOI)
        assert article is not None
        assert output_identifiers(session, article) == [
            Identifier("doi", SCREEN_DOI),
            Identifier("pmid", "33722865"),
        ]
        assert article.title == "Screen time and sleep in adolescents: a cohort study"
        assert (article.type, article.venue, article.published_on) == (
            "article",
            "BMJ Open",
            dt.date(2021, 3, 15),
        )
        assert article.extra["issn"] == "2044-6055"
        book = find_output(session, "isbn:978-0-306-40615-7")
        assert book is not None
        assert (book.type, book.venue, book.published_on) == (
            "book",
            "Facet Publishing",
            dt.date(2019, 1, 1),
        )
        preprint = find_output(session, "arXiv:2101.00001")
        assert preprint is not None
        assert preprint.type == "preprint"
        report = find_output(session, "https://www.example.org/reports/loneliness-later-life")
        assert report is not None
        assert (report.type, report.title) == ("report", "Loneliness in later life")
        assert report.extra["authors"] == ["Sam Brown"]


def test_duplicates_across_rows_merge(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "versions.csv"
    path.write_text(
        "title,doi,identifiers\n"
        "Preprint,10.1101/2020.01.01.111111,\n"
        "Published,10.1000/published,\n"
        "Both,,https://doi.org/10.1000/PUBLISHED;doi:10.1101/2020.01.01.111111\n",
        encoding="utf-8",
    )
    summary = import_outputs(store, path)
    assert (summary.created, summary.updated, summary.merged) == (2, 1, 1)
    assert _outputs(store) == [
        (1, ["doi:10.1101/2020.01.01.111111", "doi:10.1000/published"]),
    ]


def test_people_import_links_groups_accounts_and_authors(store: Store) -> None:
    people = import_people(store, FIXTURES / "people.csv")
    assert (people.read, people.created, people.quarantined) == (4, 3, 1)
    assert _quarantine(store) == [(5, "line 5 ('Bad Orcid'): invalid ORCID '0000-0002-1825-0098'")]
    again = import_people(store, FIXTURES / "people.csv")
    assert (again.created, again.updated, again.quarantined) == (0, 0, 1)
    outputs = import_outputs(store, FIXTURES / "outputs.csv")
    assert outputs.created == 5
    with store.session() as session:
        jane = find_person(session, "0000-0002-1825-0097")
        ana = find_person(session, "ana lima")
        sam = find_person(session, "Sam Brown")
        assert jane is not None
        assert ana is not None
        assert sam is not None
        assert person_accounts(session, jane) == [
            ("bluesky", "jane.smith.bsky.social"),
            ("mastodon", "jsmith@scholar.social"),
        ]
        assert person_accounts(session, ana) == [
            ("website", "https://analima.example.org"),
            ("x", "analima"),
        ]
        assert person_accounts(session, sam) == [("bluesky", "sambrown.bsky.social")]
        groups = {g.name: g for g in session.scalars(select(Group))}
        assert sorted(groups) == [
            "Faculty of Medicine",
            "Library",
            "Public Health",
            "Research Office",
        ]
        assert groups["Public Health"].parent_id == groups["Faculty of Medicine"].id
        article = find_output(session, SCREEN_DOI)
        assert article is not None
        assert article.extra["authors"] == ["Unknown Author"]
        report = find_output(session, "hdl:10044/1/98765")
        assert report is not None
        assert "authors" not in report.extra  # Ana Lima by name, Ana Lima again by ORCID


def test_non_utf8_file_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("title,doi\nCaf\u00e9 culture,10.1000/cafe\n".encode("latin-1"))
    with pytest.raises(
        ImportFileError,
        match=r"latin1\.csv: not UTF-8 text \(invalid byte 0xe9 at byte position 13\)",
    ):
        import_outputs(store, path)
    with store.session() as session:
        run = session.scalars(select(Run)).one()
        assert (run.kind, run.status) == ("import-outputs", "failed")


def test_file_without_identifier_column_is_an_error(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "titles.csv"
    path.write_text("title,venue\nA,B\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no identifier column"):
        import_outputs(store, path)


def test_format_override(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text((FIXTURES / "outputs.ris").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ImportFileError, match="cannot tell the format"):
        import_outputs(store, path)
    assert import_outputs(store, path, fmt="ris").created == 2


# -- command line ------------------------------------------------------------------------

runner = CliRunner()


def test_cli_import_and_list(sqlite_store: Store, tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    result = runner.invoke(
        app,
        [
            "import",
            "outputs",
            str(FIXTURES / "outputs.bib"),
            str(FIXTURES / "outputs.ris"),
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "nodoi2018" in result.output
    listed = runner.invoke(app, ["outputs", "list", "--json", "--db", db])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [row["identifiers"] for row in rows] == [
        [f"doi:{SCREEN_DOI}", "pmid:33722865"],
        ["isbn:9780306406157"],
        ["arxiv:2101.00001"],
        ["url:https://www.example.org/reports/loneliness-later-life"],
    ]
    limited = runner.invoke(app, ["outputs", "list", "--limit", "1", "--db", db])
    assert limited.exit_code == 0
    assert "Screen time" in limited.output


def test_cli_import_exit_codes(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"title,doi\n\xff\n")
    failed = runner.invoke(app, ["import", "outputs", str(bad), "--db", db])
    assert failed.exit_code == 1
    assert "not UTF-8" in failed.output
    usage = runner.invoke(app, ["import", "outputs", str(bad), "--format", "xml", "--db", db])
    assert usage.exit_code == 2
    people = runner.invoke(app, ["import", "people", str(FIXTURES / "people.csv"), "--db", db])
    assert people.exit_code == 0, people.output


def test_cli_outputs_add_and_accounts_add(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    added = runner.invoke(
        app,
        [
            "outputs",
            "add",
            "https://doi.org/10.1000/ABC",
            "pmid:123",
            "--title",
            "A study",
            "--published",
            "2021-05",
            "--author",
            "Jane Smith (0000-0002-1825-0097)",
            "--db",
            db,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "created output 1: doi:10.1000/abc, pmid:123" in added.output
    again = runner.invoke(app, ["outputs", "add", "doi:10.1000/abc", "--db", db])
    assert "updated output 1" in again.output
    bad = runner.invoke(app, ["outputs", "add", "not-an-identifier", "--db", db])
    assert bad.exit_code == 2
    org = runner.invoke(
        app, ["accounts", "add", "twitter", "@UniNews", "--owner", "org", "--db", db]
    )
    assert org.exit_code == 0, org.output
    assert "account x uninews owned by the organisation" in org.output
    nobody = runner.invoke(
        app, ["accounts", "add", "x", "someone", "--owner", "Nobody", "--db", db]
    )
    assert nobody.exit_code == 2
    people = tmp_path / "people.csv"
    people.write_text("name\nJane Smith\n", encoding="utf-8")
    runner.invoke(app, ["import", "people", str(people), "--db", db])
    taken = runner.invoke(
        app, ["accounts", "add", "x", "uninews", "--owner", "jane smith", "--db", db]
    )
    assert taken.exit_code == 1
    assert "already owned by the organisation" in taken.output
