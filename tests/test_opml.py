"""OPML feed lists and the ``feeds`` / ``import opml`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.imports import ImportFileError
from reachmeter.imports.opml import import_opml, read_opml
from reachmeter.sources.feeds import configured
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_person
from reachmeter.store.schema import Account, QuarantinedRecord
from reachmeter.store.schema import Source as SourceRow

FEEDS = Path(__file__).parent / "fixtures" / "sources" / "feeds"
OPML = FEEDS / "feeds.opml"
runner = CliRunner()


def _feeds(store: Store) -> list[tuple[str, str, int | None, str | None]]:
    with store.session() as session:
        row = session.get(SourceRow, "feeds")
        settings = row.settings if row is not None else {}
    return [(f.url, f.kind, f.owner, f.title) for f in configured(settings)]


def test_nested_outlines_are_read_and_a_feed_listed_twice_is_one_feed() -> None:
    parsed = read_opml(OPML)
    feeds = [(p.value.url, p.value.title, p.value.categories) for p in parsed if p.value]
    assert feeds == [
        ("https://news.example.org/feed.rss", "Example Science News", ("Science news",)),
        ("https://journal.example.com/rss", "Le Journal", ("Science news", "Regional")),
        ("https://ada.example.org/feed.atom", "Ada's research notes", ("Blogs",)),
    ]
    [bad] = [p for p in parsed if p.error]
    assert bad.record.label == "outline 5 ('Not a web feed')"
    assert bad.error == "xmlUrl 'javascript:alert(1)' is not an http(s) URL"


def test_importing_an_opml_file_adds_its_feeds_once_and_quarantines_bad_outlines(
    store: Store,
) -> None:
    summary = import_opml(store, OPML, kind="news")
    assert (summary.read, summary.created, summary.quarantined) == (4, 3, 1)
    assert summary.problems == [
        "outline 5 ('Not a web feed'): xmlUrl 'javascript:alert(1)' is not an http(s) URL"
    ]
    expected = [
        ("https://news.example.org/feed.rss", "news", None, "Example Science News"),
        ("https://journal.example.com/rss", "news", None, "Le Journal"),
        ("https://ada.example.org/feed.atom", "news", None, "Ada's research notes"),
    ]
    assert _feeds(store) == expected
    again = import_opml(store, OPML, kind="news")
    assert (again.read, again.created, again.updated, again.quarantined) == (4, 0, 0, 1)
    assert _feeds(store) == expected
    with store.session() as session:
        assert len(session.scalars(select(QuarantinedRecord)).all()) == 1


def test_an_owner_makes_the_feeds_their_blogs_with_accounts(store: Store) -> None:
    with store.session() as session:
        person, _ = upsert_person(session, name="Ada Example")
        person_id = person.id
    summary = import_opml(store, OPML, kind="blog", owner="Ada Example")
    assert summary.created == 3
    with store.session() as session:
        accounts = session.execute(
            select(Account.platform, Account.handle, Account.owner_person_id).order_by(
                Account.handle
            )
        ).all()
    assert [tuple(a) for a in accounts] == [
        ("blog", "https://ada.example.org/feed.atom", person_id),
        ("blog", "https://journal.example.com/rss", person_id),
        ("blog", "https://news.example.org/feed.rss", person_id),
    ]
    assert {owner for _url, _kind, owner, _title in _feeds(store)} == {person_id}


@pytest.mark.parametrize(
    ("content", "kind", "owner", "message"),
    [
        (
            (FEEDS / "news.rss").read_bytes(),
            "blog",
            None,
            "not an OPML file (its root element is <rss>)",
        ),
        (b"<opml><body><outline", "blog", None, "not well-formed XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY x "y">]><opml><body/></opml>',
            "blog",
            None,
            "OPML with a DOCTYPE or ENTITY declaration is not read",
        ),
        (OPML.read_bytes(), "news", "Ada", "only a blog has an owner"),
        (OPML.read_bytes(), "blog", "Nobody Known", "no person 'Nobody Known'"),
    ],
)
def test_a_file_that_cannot_be_imported_says_why_and_adds_nothing(
    sqlite_store: Store,
    tmp_path: Path,
    content: bytes,
    kind: str,
    owner: str | None,
    message: str,
) -> None:
    path = tmp_path / "list.opml"
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as raised:
        import_opml(sqlite_store, path, kind=kind, owner=owner)
    assert message in str(raised.value)
    assert _feeds(sqlite_store) == []


def test_the_feeds_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    result = runner.invoke(app, ["import", "opml", str(OPML), "--kind", "news", "--db", db])
    assert result.exit_code == 0, result.output
    assert "javascript:alert(1)" in result.output
    added = runner.invoke(
        app, ["feeds", "add", "https://cafe.example.org/rss", "--kind", "blog", "--db", db]
    )
    assert added.exit_code == 0, added.output
    assert "feed https://cafe.example.org/rss added (blog)" in added.output
    same = runner.invoke(app, ["feeds", "add", "https://www.cafe.example.org/rss/", "--db", db])
    assert "was already configured" in same.output
    listed = runner.invoke(app, ["feeds", "list", "--json", "--db", db])
    assert listed.exit_code == 0
    urls = {feed["url"] for feed in json.loads(listed.output)}
    assert {"https://news.example.org/feed.rss", "https://cafe.example.org/rss"} <= urls
    bad = runner.invoke(app, ["feeds", "add", "ftp://files.example.org/feed", "--db", db])
    assert bad.exit_code == 2
    assert "is not an http(s) URL" in bad.output
    nobody = runner.invoke(
        app, ["feeds", "add", "https://x.example.org/rss", "--owner", "Nobody", "--db", db]
    )
    assert nobody.exit_code == 2
    removed = runner.invoke(app, ["feeds", "remove", "https://cafe.example.org/rss", "--db", db])
    assert removed.exit_code == 0
    gone = runner.invoke(app, ["feeds", "remove", "https://cafe.example.org/rss", "--db", db])
    assert gone.exit_code == 1


def test_a_dtd_after_a_long_preamble_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "late-dtd.opml"
    path.write_text(
        "<?xml version='1.0'?>\n<!--" + "x" * 5000 + "-->\n"
        '<!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>\n'
        '<opml version="2.0"><body><outline text="&b;" xmlUrl="https://b.example/feed"/>'
        "</body></opml>\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFileError, match="DOCTYPE or ENTITY declaration is not read"):
        read_opml(path)
