"""The catalogue: outputs merged by identifier, people, nested groups and accounts."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from reachmeter.matching.identifiers import Identifier, normalize
from reachmeter.store import Store
from reachmeter.store.catalog import (
    AuthorRef,
    CatalogError,
    add_account,
    ensure_group,
    find_output,
    merge_outputs,
    normalize_account,
    output_identifiers,
    person_accounts,
    person_groups,
    upsert_output,
    upsert_person,
)
from reachmeter.store.schema import Account, Authorship, Group, Output, OutputIdentifier, Person

ORCID = "0000-0002-1825-0097"


def _count(store: Store, model: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_identifier_spellings_are_one_output(store: Store) -> None:
    with store.session() as session:
        first, created = upsert_output(
            session, identifiers=[normalize("https://doi.org/10.1000/ABC")], title="A study"
        )
        second, created_again = upsert_output(
            session, identifiers=[Identifier("doi", "doi:10.1000/abc")], venue="J. Things"
        )
        assert (created, created_again) == (True, False)
        assert second.id == first.id
        assert output_identifiers(session, first) == [Identifier("doi", "10.1000/abc")]
        assert (second.title, second.venue) == ("A study", "J. Things")
    assert _count(store, Output) == 1


def test_output_without_identifier_is_an_error(store: Store) -> None:
    with store.session() as session, pytest.raises(CatalogError, match="at least one identifier"):
        upsert_output(session, identifiers=[], title="Nothing")


def test_new_identifiers_are_added_to_the_output(store: Store) -> None:
    with store.session() as session:
        output, _ = upsert_output(session, identifiers=[normalize("10.1000/abc")])
        upsert_output(
            session, identifiers=[normalize("10.1000/abc"), normalize("pmid:12345")], type="report"
        )
        assert output_identifiers(session, output) == [
            Identifier("doi", "10.1000/abc"),
            Identifier("pmid", "12345"),
        ]
        assert output.type == "report"


def test_identifiers_of_two_outputs_merge_them(store: Store) -> None:
    with store.session() as session:
        preprint, _ = upsert_output(
            session, identifiers=[normalize("10.1101/2020.01.01.111111")], title="Preprint"
        )
        article, _ = upsert_output(
            session, identifiers=[normalize("10.1000/published")], venue="BMJ"
        )
        merged, created = upsert_output(
            session,
            identifiers=[normalize("10.1000/published"), normalize("10.1101/2020.01.01.111111")],
        )
        assert not created
        assert merged.id == preprint.id
        assert article.merged_into_id == preprint.id
        assert sorted(output_identifiers(session, merged)) == [
            Identifier("doi", "10.1000/published"),
            Identifier("doi", "10.1101/2020.01.01.111111"),
        ]
        assert (merged.title, merged.venue) == ("Preprint", "BMJ")
        assert find_output(session, "10.1000/published") is merged
        assert find_output(session, str(article.id)) is merged
    assert _count(store, Output) == 2  # never deleted


def test_merge_moves_authorships(store: Store) -> None:
    with store.session() as session:
        person, _ = upsert_person(session, name="Jane Smith", orcid=ORCID)
        other_person, _ = upsert_person(session, name="Ana Lima")
        keep, _ = upsert_output(
            session, identifiers=[normalize("10.1000/a")], authors=[AuthorRef("Jane Smith")]
        )
        other, _ = upsert_output(
            session,
            identifiers=[normalize("10.1000/b")],
            authors=[AuthorRef("", ORCID), AuthorRef("ana lima")],
        )
        merge_outputs(session, keep, other)
        rows = session.execute(
            select(Authorship.output_id, Authorship.person_id).order_by(Authorship.person_id)
        ).all()
        assert [tuple(row) for row in rows] == [(keep.id, person.id), (keep.id, other_person.id)]
        assert other.merged_into_id == keep.id


def test_unknown_authors_are_kept_as_names(store: Store) -> None:
    with store.session() as session:
        person, _ = upsert_person(session, name="Jane Smith", orcid=ORCID)
        output, _ = upsert_output(
            session,
            identifiers=[normalize("10.1000/abc")],
            authors=[AuthorRef("Someone Else"), AuthorRef("JANE SMITH")],
        )
        assert output.extra["authors"] == ["Someone Else"]
        assert session.scalars(select(Authorship.person_id)).all() == [person.id]
    assert _count(store, Person) == 1


def test_find_output_by_any_spelling(store: Store) -> None:
    with store.session() as session:
        output, _ = upsert_output(
            session, identifiers=[normalize("arXiv:2101.00001"), normalize("10.1000/xyz")]
        )
        for text in (
            "2101.00001",
            "arxiv:2101.00001",
            "https://doi.org/10.1000/XYZ",
            "doi:10.1000/xyz",
        ):
            assert find_output(session, text) is output
        assert find_output(session, str(output.id)) is output
        assert find_output(session, "10.1000/unknown") is None
        assert find_output(session, "not an identifier") is None


def test_person_matched_by_orcid_then_by_name(store: Store) -> None:
    with store.session() as session:
        first, created = upsert_person(
            session, name="Jane Smith", orcid=f"https://orcid.org/{ORCID}"
        )
        renamed, created_again = upsert_person(
            session, name="Jane A. Smith", orcid=ORCID, role="reader"
        )
        assert (created, created_again) == (True, False)
        assert renamed.id == first.id
        assert (renamed.name, renamed.orcid, renamed.role) == ("Jane A. Smith", ORCID, "reader")
        by_name, created_by_name = upsert_person(
            session, name="jane a. smith", email="j@example.org"
        )
        assert not created_by_name
        assert by_name.id == first.id
        assert by_name.email == "j@example.org"


def test_person_with_new_orcid_takes_over_same_name_without_orcid(store: Store) -> None:
    with store.session() as session:
        person, _ = upsert_person(session, name="Sam Brown")
        same, created = upsert_person(session, name="Sam Brown", orcid="0000-0001-5109-3700")
        assert not created
        assert same.id == person.id
        assert same.orcid == "0000-0001-5109-3700"


def test_invalid_orcid_is_an_error(store: Store) -> None:
    with store.session() as session, pytest.raises(CatalogError, match="invalid ORCID"):
        upsert_person(session, name="Bad", orcid="0000-0002-1825-0098")


def test_group_paths_nest(store: Store) -> None:
    with store.session() as session:
        leaf = ensure_group(session, "Faculty of Medicine > Public Health")
        again = ensure_group(session, " Faculty of Medicine>Public Health ")
        faculty = session.scalars(select(Group).where(Group.name == "Faculty of Medicine")).one()
        assert again.id == leaf.id
        assert leaf.parent_id == faculty.id
        assert faculty.parent_id is None
        person, _ = upsert_person(
            session, name="Jane Smith", groups=["Faculty of Medicine > Public Health", "Library"]
        )
        assert person_groups(session, person) == ["Library", "Public Health"]
        with pytest.raises(CatalogError, match="already under 'Faculty of Medicine'"):
            ensure_group(session, "Faculty of Law > Public Health")
    assert _count(store, Group) == 3


@pytest.mark.parametrize(
    ("platform", "handle", "expected"),
    [
        ("bluesky", "@Alice.bsky.social", ("bluesky", "alice.bsky.social")),
        ("bluesky", "https://bsky.app/profile/Alice.bsky.social", ("bluesky", "alice.bsky.social")),
        ("Twitter", "@Alice_1", ("x", "alice_1")),
        ("x", "https://twitter.com/Alice_1", ("x", "alice_1")),
        ("x", "https://x.com/alice_1/", ("x", "alice_1")),
        ("mastodon", "@Alice@Scholar.Social", ("mastodon", "alice@scholar.social")),
        ("mastodon", "https://mastodon.social/@alice", ("mastodon", "alice@mastodon.social")),
        ("website", "Example.org/blog/", ("website", "https://example.org/blog")),
        ("youtube", "UCabcDEF123", ("youtube", "UCabcDEF123")),
        ("instagram", "@Alice", ("instagram", "alice")),
    ],
)
def test_account_handles_are_normalised(
    platform: str, handle: str, expected: tuple[str, str]
) -> None:
    assert normalize_account(platform, handle) == expected


@pytest.mark.parametrize(
    ("platform", "handle", "message"),
    [
        ("myspace", "alice", "unknown platform 'myspace'"),
        ("mastodon", "alice", "user@instance"),
        ("x", "https://bsky.app/profile/alice.bsky.social", "is a bluesky URL, not x"),
        ("x", "this handle is far too long", "not a valid x handle"),
    ],
)
def test_bad_account_handles_are_errors(platform: str, handle: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        normalize_account(platform, handle)


def test_accounts_belong_to_one_owner(store: Store) -> None:
    with store.session() as session:
        alice, _ = upsert_person(
            session, name="Alice", accounts=[("bluesky", "@alice.bsky.social")]
        )
        bob, _ = upsert_person(session, name="Bob")
        org = add_account(session, "x", "@UniNews", owner=None, org=True)
        assert (org.handle, org.url, org.owned_by_org) == ("uninews", "https://x.com/uninews", True)
        assert person_accounts(session, alice) == [("bluesky", "alice.bsky.social")]
        with pytest.raises(CatalogError, match=r"already owned by Alice \(person \d+\)"):
            add_account(
                session,
                "bluesky",
                "https://bsky.app/profile/alice.bsky.social",
                owner=bob,
                org=False,
            )
        with pytest.raises(CatalogError, match="already owned by the organisation"):
            upsert_person(session, name="Bob", accounts=[("x", "uninews")])
        again = add_account(session, "bluesky", "alice.bsky.social", owner=alice, org=False)
        assert again.owner_person_id == alice.id
    assert _count(store, Account) == 2


def test_published_on_and_extra_are_updated(store: Store) -> None:
    with store.session() as session:
        output, _ = upsert_output(session, identifiers=[normalize("10.1000/abc")], extra={"a": 1})
        upsert_output(
            session,
            identifiers=[normalize("10.1000/abc")],
            published_on=dt.date(2021, 3, 15),
            extra={"b": 2},
        )
        assert output.published_on == dt.date(2021, 3, 15)
        assert output.extra == {"a": 1, "b": 2}
        assert session.scalar(select(func.count()).select_from(OutputIdentifier)) == 1


def test_people_are_found_by_name_in_any_case_and_spacing(store: Store) -> None:
    with store.session() as session:
        person, created = upsert_person(session, name="Ana  Lima")
        person_id = person.id
    assert created
    with store.session() as session:
        found, created = upsert_person(session, name=" ANA LIMA ")
        assert (found.id, created) == (person_id, False)
        renamed = session.get(Person, person_id)
        assert renamed is not None
        renamed.name = "Ana Lima-Souza"
    with store.session() as session:
        assert upsert_person(session, name="ana lima-souza")[0].id == person_id
