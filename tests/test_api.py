"""The REST API on the demo organisation: the same numbers as the CLI and the scoring
functions, complete pagination, re-ingestable exports, clear errors, and access rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app as cli
from reachmeter.ingest import ingest_paths
from reachmeter.matching.match import mentions_of
from reachmeter.scoring import iter_scores, load_profile, read_score
from reachmeter.scoring.accounts import account_report
from reachmeter.scoring.explain import explain_account, explain_output, explain_person
from reachmeter.scoring.reach import reach_report
from reachmeter.store import Store
from reachmeter.store.export import export_events
from reachmeter.store.schema import (
    Account,
    Authorship,
    Event,
    EventMatch,
    Group,
    Observation,
    Output,
    OutputIdentifier,
    Person,
    PersonGroup,
    Score,
)
from reachmeter.store.schema_web import CorrectionRequest
from reachmeter.web.auth import create_token, create_user
from tests.apidemo import AS_OF, BACKENDS, AppClient, client, demo_stores, make_app


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request: pytest.FixtureRequest) -> Iterator[Store]:
    yield from demo_stores(request)


@pytest.fixture(scope="module")
def api(demo: Store) -> Iterator[AppClient]:
    with client(make_app(demo)) as opened:
        yield opened


def _json(value: Any) -> Any:
    """A value as it reads back from JSON (dates become strings, tuples lists)."""
    return orjson.loads(orjson.dumps(value))


def _utc_z(value: Any) -> Any:
    """A JSON value with UTC times spelled with ``Z``, as the API's models write them."""
    if isinstance(value, dict):
        return {key: _utc_z(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_utc_z(item) for item in value]
    if isinstance(value, str) and value.endswith("+00:00") and "T" in value:
        return value.removesuffix("+00:00") + "Z"
    return value


def _walk(api: AppClient, url: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get(url, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= params.get("limit", 50)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page before the last is never empty"
    raise AssertionError("pagination did not end")


def _ids(store: Store, query: Any) -> set[int]:
    with store.engine.connect() as connection:
        return {int(i) for i in connection.execute(query).scalars()}


LIVE = Output.merged_into_id.is_(None)


# -- outputs: pagination and filters --------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("score", None),
        ("score", "asc"),
        ("published_on", "desc"),
        ("published_on", "asc"),
        ("title", "asc"),
        ("title", "desc"),
        ("id", "asc"),
        ("id", "desc"),
    ],
)
def test_walking_every_page_gives_every_output_once_in_order(
    api: AppClient, demo: Store, sort: str, order: str | None
) -> None:
    params: dict[str, Any] = {"sort": sort, "limit": 7}
    if order:
        params["order"] = order
    items = _walk(api, "/api/v1/outputs", **params)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == _ids(demo, select(Output.id).where(LIVE))
    descending = order == "desc" or (order is None and sort in ("score", "published_on"))
    if sort == "score":
        scores = [item["score"] for item in items]
        assert scores == sorted(scores, reverse=descending)
    elif sort == "published_on":
        days = [item["published_on"] or "0001-01-01" for item in items]
        assert days == sorted(days, reverse=descending)
    elif sort == "id":
        assert ids == sorted(ids, reverse=descending)


def test_outputs_scored_later_than_the_scores_are_listed_last_with_no_score(
    sqlite_store: Store,
) -> None:
    from reachmeter.matching.identifiers import normalize
    from reachmeter.scoring import compute_scores
    from reachmeter.store.catalog import upsert_output

    with sqlite_store.session() as session:
        for number in range(5):
            upsert_output(session, identifiers=[normalize(f"10.1234/early.{number}")])
    compute_scores(sqlite_store, load_profile("default"), AS_OF)
    with sqlite_store.session() as session:
        late = [
            upsert_output(session, identifiers=[normalize(f"10.1234/late.{n}")])[0].id
            for n in range(3)
        ]
    with client(make_app(sqlite_store)) as api:
        for limit in (1, 2, 5, 8):
            items = _walk(api, "/api/v1/outputs", limit=limit)
            assert [i["id"] for i in items][-3:] == late
            assert [i["score"] for i in items[-3:]] == [None, None, None]
            assert [i["score"] for i in items[:5]] == [0.0] * 5
        assert len(_walk(api, "/api/v1/outputs", limit=2, score_min=0)) == 5


def test_date_pages_keep_the_undated_first_ascending_and_last_descending(store: Store) -> None:
    from reachmeter.matching.identifiers import normalize
    from reachmeter.store.catalog import upsert_output

    days = [None, dt.date(2024, 5, 1), None, dt.date(2023, 1, 9), dt.date(2024, 5, 1), None]
    days += [dt.date(2022, 12, 31), dt.date(2024, 5, 1), None]
    with store.session() as session:
        ids = [
            upsert_output(session, identifiers=[normalize(f"10.1234/day.{n}")], published_on=d)[
                0
            ].id
            for n, d in enumerate(days)
        ]
    dated = sorted((d, i) for d, i in zip(days, ids, strict=True) if d is not None)
    undated = sorted(i for d, i in zip(days, ids, strict=True) if d is None)
    ascending = undated + [i for _, i in dated]
    descending = [i for _, i in reversed(dated)] + undated[::-1]
    with client(make_app(store)) as api:
        for limit in (1, 2, 4, 50):
            up = _walk(api, "/api/v1/outputs", sort="published_on", order="asc", limit=limit)
            down = _walk(api, "/api/v1/outputs", sort="published_on", limit=limit)
            assert [i["id"] for i in up] == ascending
            assert [i["id"] for i in down] == descending
        within = _walk(api, "/api/v1/outputs", sort="published_on", limit=1,
                       published_to="2024-04-30")  # fmt: skip
        assert [i["id"] for i in within] == [ids[3], ids[6]]


def test_output_list_scores_are_the_stored_scores(api: AppClient, demo: Store) -> None:
    items = _walk(api, "/api/v1/outputs", limit=100, profile="altmetric-like")
    stored = {row["output_id"]: row for row in iter_scores(demo, "altmetric-like", AS_OF)}
    assert len(items) == len(stored)
    for item in items:
        assert item["score"] == stored[item["id"]]["score"]
        assert item["mentions"] == stored[item["id"]]["mentions"]
        assert item["flags"] == stored[item["id"]]["flags"]


def test_filters_select_exactly_the_matching_outputs(api: AppClient, demo: Store) -> None:
    def listed(**params: Any) -> set[int]:
        return {item["id"] for item in _walk(api, "/api/v1/outputs", limit=9, **params)}

    assert listed(type="dataset") == _ids(
        demo, select(Output.id).where(LIVE, Output.type == "dataset")
    )
    with demo.engine.connect() as connection:
        person = connection.execute(
            select(Authorship.person_id)
            .group_by(Authorship.person_id)
            .order_by(func.count().desc(), Authorship.person_id)
        ).scalar()
        source = connection.execute(
            select(Event.source_id).group_by(Event.source_id).order_by(func.count())
        ).first()[0]
        parent = connection.execute(
            select(Group.id).where(Group.parent_id.is_(None)).order_by(Group.id)
        ).scalar()
        children = set(
            connection.execute(select(Group.id).where(Group.parent_id == parent)).scalars()
        )
    assert children, "the demo nests groups"
    assert listed(person=person) == _ids(
        demo, select(Authorship.output_id).where(Authorship.person_id == person)
    )
    in_group = _ids(
        demo,
        select(Authorship.output_id)
        .join(PersonGroup, PersonGroup.person_id == Authorship.person_id)
        .where(PersonGroup.group_id.in_(children | {parent})),
    )
    assert in_group
    assert listed(group=parent) == in_group
    mentioned = _ids(
        demo,
        select(EventMatch.output_id)
        .join(Event, Event.id == EventMatch.event_id)
        .where(Event.source_id == source),
    )
    assert mentioned
    assert listed(source=source) == mentioned
    assert listed(source=source, sort="id") == mentioned
    assert listed(published_from="2025-01-01", published_to="2025-06-30", sort="title") == _ids(
        demo,
        select(Output.id).where(
            LIVE,
            Output.published_on >= dt.date(2025, 1, 1),
            Output.published_on <= dt.date(2025, 6, 30),
        ),
    )
    in_range = _ids(
        demo,
        select(Score.output_id).where(
            Score.profile_name == "default",
            Score.as_of == AS_OF,
            Score.score >= 2,
            Score.score <= 40,
        ),
    )
    assert in_range
    assert listed(score_min=2, score_max=40) == in_range
    assert listed(score_min=2, score_max=40, sort="published_on") == in_range
    assert listed(type="dataset", source=source, person=person) == (
        listed(type="dataset") & mentioned & listed(person=person)
    )


def test_a_cursor_only_works_for_its_own_list_and_sort(api: AppClient) -> None:
    page = api.get("/api/v1/outputs", params={"limit": 2}).json()
    other = api.get("/api/v1/outputs", params={"cursor": page["next_cursor"], "sort": "title"})
    assert other.status_code == 422
    assert "another list or sort order" in other.json()["detail"]
    people = api.get("/api/v1/people", params={"cursor": page["next_cursor"]})
    assert people.status_code == 422
    garbage = api.get("/api/v1/outputs", params={"cursor": "bm90LWpzb24"})
    assert garbage.status_code == 422


# -- output detail, scores and explanations: the CLI's numbers ------------------------------


def test_output_detail_and_score_are_read_score_exactly(api: AppClient, demo: Store) -> None:
    best = api.get("/api/v1/outputs", params={"limit": 3}).json()["items"]
    for item in best:
        expected = _utc_z(_json(read_score(demo, item["id"], "default", AS_OF)))
        assert api.get(f"/api/v1/outputs/{item['id']}/score").json() == expected
        detail = api.get(f"/api/v1/outputs/{item['id']}").json()
        assert detail["score"] == expected
        assert detail["identifiers"] == item["identifiers"]
        with demo.engine.connect() as connection:
            mentioned = mentions_of(connection, item["id"])
        assert sum(detail["mentions_by_source"].values()) == len(mentioned)
        older = api.get(
            f"/api/v1/outputs/{item['id']}/score",
            params={"profile": "altmetric-like", "as_of": AS_OF.isoformat()},
        )
        assert older.json() == _utc_z(_json(read_score(demo, item["id"], "altmetric-like", AS_OF)))


def test_an_output_is_found_by_any_spelling_of_its_identifier(api: AppClient) -> None:
    item = api.get("/api/v1/outputs", params={"limit": 1}).json()["items"][0]
    doi = next(i for i in item["identifiers"] if i.startswith("doi:")).removeprefix("doi:")
    for spelling in (doi, doi.upper(), f"https://doi.org/{doi}", f"doi:{doi}"):
        found = api.get("/api/v1/outputs/lookup", params={"identifier": spelling})
        assert found.status_code == 200, spelling
        assert found.json()["id"] == item["id"]


def test_explain_equals_the_cli_explain_json(api: AppClient, demo: Store) -> None:
    top = api.get("/api/v1/outputs", params={"limit": 1}).json()["items"][0]
    explained = api.get(f"/api/v1/explain/output/{top['id']}").json()
    expected = _json(explain_output(demo, top["id"], load_profile("default"), AS_OF))
    assert explained == expected
    assert explained["score"] == top["score"]
    assert explained["stored"]["score"] == top["score"]
    if demo.dialect == "sqlite":
        db = str(demo.engine.url.database)
        result = CliRunner().invoke(cli, ["explain", str(top["id"]), "--json", "--db", db])
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.stdout) == explained


def test_reach_and_kpis_equal_the_cli(api: AppClient, demo: Store) -> None:
    with demo.engine.connect() as connection:
        person = connection.execute(select(func.min(Authorship.person_id))).scalar()
        group = connection.execute(select(func.min(Group.id))).scalar()
        account = connection.execute(
            select(Observation.account_id).where(Observation.account_id.is_not(None))
        ).scalar()
    assert person is not None
    assert group is not None
    assert account is not None
    reach = api.get(f"/api/v1/people/{person}/reach").json()
    assert reach == _json(explain_person(demo, person, "default", AS_OF))
    components = reach_report(demo, "default", AS_OF, person_id=person)["components"]
    assert reach["components"] == _json(components)
    assert api.get(f"/api/v1/explain/person/{person}").json() == reach
    group_reach = api.get(f"/api/v1/groups/{group}/reach").json()
    assert group_reach == _json(reach_report(demo, "default", AS_OF, group_id=group))
    kpis = api.get(
        f"/api/v1/accounts/{account}/kpis", params={"from": "2025-11-01", "to": "2026-10-31"}
    ).json()
    expected = account_report(demo, account, dt.date(2025, 11, 1), dt.date(2026, 10, 31))
    assert kpis == _json(expected)
    explained = api.get(f"/api/v1/explain/account/{account}", params={"as_of": "2026-10-31"})
    assert explained.json() == _json(
        explain_account(demo, account, dt.date(2025, 11, 1), dt.date(2026, 10, 31))
    )
    if demo.dialect == "sqlite":
        db = str(demo.engine.url.database)
        result = CliRunner().invoke(cli, ["reach", "person", str(person), "--json", "--db", db])
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.stdout) == reach


def test_scores_pages_are_iter_scores(api: AppClient, demo: Store) -> None:
    walked = _walk(api, "/api/v1/scores", limit=11)
    assert walked == _utc_z(_json(list(iter_scores(demo, "default", AS_OF))))
    methods = api.get("/api/v1/scores/methods").json()
    assert {m["profile"] for m in methods} == {"default", "altmetric-like"}
    profiles = api.get("/api/v1/profiles").json()
    assert profiles == [
        {"name": "altmetric-like", "latest_as_of": AS_OF.isoformat()},
        {"name": "default", "latest_as_of": AS_OF.isoformat()},
    ]


# -- people, groups, accounts, events, observations -----------------------------------------


def test_people_groups_and_accounts_are_listed_completely(api: AppClient, demo: Store) -> None:
    people = _walk(api, "/api/v1/people", limit=4)
    assert [p["id"] for p in people] == sorted(
        _ids(demo, select(Person.id)), key=lambda i: (_name(demo, i), i)
    )
    assert all("email" not in p for p in people)
    groups = _walk(api, "/api/v1/groups", limit=3)
    assert [g["id"] for g in groups] == sorted(_ids(demo, select(Group.id)))
    accounts = _walk(api, "/api/v1/accounts", limit=4)
    assert [a["id"] for a in accounts] == sorted(_ids(demo, select(Account.id)))
    org = _walk(api, "/api/v1/accounts", organisation="true")
    assert {a["id"] for a in org} == _ids(demo, select(Account.id).where(Account.owned_by_org))
    person = people[0]
    detail = api.get(f"/api/v1/people/{person['id']}").json()
    assert detail["outputs"] == len(
        _ids(demo, select(Authorship.output_id).where(Authorship.person_id == person["id"]))
    )
    assert detail["accounts"] == sorted(
        _ids(demo, select(Account.id).where(Account.owner_person_id == person["id"]))
    )
    named = _walk(api, "/api/v1/people", name=person["name"].split()[0].lower())
    assert person["id"] in {p["id"] for p in named}


def _name(store: Store, person_id: int) -> str:
    with store.engine.connect() as connection:
        return str(connection.execute(select(Person.name).where(Person.id == person_id)).scalar())


def test_events_and_observations_of_an_output(api: AppClient, demo: Store) -> None:
    top = api.get("/api/v1/outputs", params={"limit": 1}).json()["items"][0]
    events = _walk(api, f"/api/v1/outputs/{top['id']}/events", limit=25)
    with demo.engine.connect() as connection:
        assert [e["id"] for e in events] == mentions_of(connection, top["id"])
        pairs = connection.execute(
            select(OutputIdentifier.scheme, OutputIdentifier.value).where(
                OutputIdentifier.output_id == top["id"]
            )
        ).all()
        observed = {
            int(i)
            for i, scheme, value in connection.execute(
                select(Observation.id, Observation.obj_scheme, Observation.obj_value)
            )
            if (scheme, value) in set(pairs)
        }
    assert all(top["id"] in e["outputs"] for e in events)
    observations = _walk(api, f"/api/v1/outputs/{top['id']}/observations", limit=10)
    assert {o["id"] for o in observations} == observed
    one = api.get(f"/api/v1/events/{events[0]['id']}").json()
    assert one == events[0]


def test_events_are_listed_completely_and_filtered(api: AppClient, demo: Store) -> None:
    everything = _walk(api, "/api/v1/events", limit=500)
    assert [e["id"] for e in everything] == sorted(_ids(demo, select(Event.id)))
    source = everything[0]["source_id"]
    since = "2025-06-01T00:00:00"
    chosen = _walk(api, "/api/v1/events", limit=50, source=source, occurred_from=since)
    assert {e["id"] for e in chosen} == _ids(
        demo,
        select(Event.id).where(
            Event.source_id == source,
            Event.occurred_at >= dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
        ),
    )


# -- exports --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "eventdata"])
def test_event_exports_are_the_cli_bytes_and_ingest_adds_nothing(
    api: AppClient, demo: Store, tmp_path: Path, fmt: str
) -> None:
    response = api.get(f"/api/v1/export/events.{fmt}")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    expected = tmp_path / "expected"
    with expected.open("wb") as stream:
        count = export_events(demo, stream, fmt)
    assert response.content == expected.read_bytes()
    assert count == len(_ids(demo, select(Event.id)))
    suffix = {"csv": "csv", "jsonl": "jsonl", "eventdata": "json"}[fmt]
    path = tmp_path / f"events.{suffix}"
    path.write_bytes(response.content)
    before = len(_ids(demo, select(Event.id)))
    summary = ingest_paths(demo, [path])
    assert summary.stored == 0
    assert summary.quarantined == 0
    assert summary.duplicates == count
    assert len(_ids(demo, select(Event.id))) == before


def test_output_and_score_exports(api: AppClient, demo: Store) -> None:
    outputs = api.get("/api/v1/export/outputs.jsonl")
    rows = [orjson.loads(line) for line in outputs.content.splitlines()]
    assert [r["id"] for r in rows] == sorted(_ids(demo, select(Output.id).where(LIVE)))
    scores = api.get("/api/v1/export/scores.jsonl", params={"profile": "altmetric-like"})
    assert [orjson.loads(line) for line in scores.content.splitlines()] == _json(
        list(iter_scores(demo, "altmetric-like", AS_OF))
    )
    table = api.get("/api/v1/export/scores.csv")
    assert table.headers["content-type"].startswith("text/csv")
    assert table.text.splitlines()[0].startswith("output_id,profile,profile_version,as_of,score")
    assert len(table.text.splitlines()) == len(rows) + 1
    assert api.get("/api/v1/export/outputs.eventdata").status_code == 422


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/v1/outputs/999999", 404, "no output with id 999999"),
        ("/api/v1/outputs/999999/score", 404, "no output with id 999999"),
        ("/api/v1/outputs/999999/events", 404, "no output with id 999999"),
        ("/api/v1/explain/output/999999", 404, "no output with id 999999"),
        ("/api/v1/people/999999", 404, "no person with id 999999"),
        ("/api/v1/people/999999/reach", 404, "no person with id 999999"),
        ("/api/v1/groups/999999", 404, "no group with id 999999"),
        ("/api/v1/accounts/999999/kpis", 404, "no account with id 999999"),
        ("/api/v1/events/999999", 404, "no event with id 999999"),
        ("/api/v1/outputs/lookup?identifier=10.9999/none", 404, "doi:10.9999/none"),
        ("/api/v1/outputs/lookup?identifier=nonsense", 404, "not a recognised identifier"),
        ("/api/v1/outputs?profile=nope", 422, "no profile named 'nope'"),
        ("/api/v1/outputs?profile=../../etc/passwd", 422, "profile"),
        ("/api/v1/outputs?limit=0", 422, "limit"),
        ("/api/v1/outputs?sort=venue", 422, "sort"),
        ("/api/v1/outputs/1/score?as_of=2001-01-01", 404, "no score under default"),
        ("/api/v1/accounts/1/kpis?from=2026-01-01&to=2025-01-01", 422, "is after"),
    ],
)
def test_errors_are_clear(api: AppClient, url: str, status: int, words: str) -> None:
    response = api.get(url)
    assert response.status_code == status
    assert words in response.text


# -- access and writes ----------------------------------------------------------------------


@pytest.fixture
def private(store: Store) -> tuple[Store, dict[str, str]]:
    """An empty store behind a private dashboard, with a viewer's and an editor's token."""
    create_user(store, "viewer@example.org", "a long enough password", "viewer")
    create_user(store, "editor@example.org", "another long password", "editor")
    tokens = {
        "viewer": create_token(store, "viewer@example.org"),
        "editor": create_token(store, "editor@example.org"),
    }
    return store, tokens


def _private_app(store: Store) -> Any:
    return make_app(store, public=False)


def test_a_private_dashboard_needs_a_token_to_read(
    private: tuple[Store, dict[str, str]],
) -> None:
    store, tokens = private
    with client(_private_app(store)) as anonymous:
        assert anonymous.get("/api/v1/outputs").status_code == 401
        bad = anonymous.get("/api/v1/outputs", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
    with client(_private_app(store), {"Authorization": f"Bearer {tokens['viewer']}"}) as viewer:
        assert viewer.get("/api/v1/outputs").json() == {"items": [], "next_cursor": None}


def test_adding_an_output_needs_an_editor_token(private: tuple[Store, dict[str, str]]) -> None:
    store, tokens = private
    body = {
        "identifiers": ["https://doi.org/10.1234/ABC.5", "pmid:123456"],
        "title": "A new study",
        "type": "Journal article",
        "published": "2024-03",
    }
    with client(_private_app(store)) as anonymous:
        assert anonymous.post("/api/v1/outputs", json=body).status_code == 401
    with client(_private_app(store), {"Authorization": f"Bearer {tokens['viewer']}"}) as viewer:
        refused = viewer.post("/api/v1/outputs", json=body)
        assert refused.status_code == 403
        assert "editor" in refused.json()["detail"]
    with client(_private_app(store), {"Authorization": f"Bearer {tokens['editor']}"}) as editor:
        created = editor.post("/api/v1/outputs", json=body)
        assert created.status_code == 201, created.text
        output = created.json()
        assert output["identifiers"] == ["doi:10.1234/abc.5", "pmid:123456"]
        assert output["type"] == "article"
        assert output["published_on"] == "2024-03-01"
        again = editor.post("/api/v1/outputs", json={"identifiers": ["10.1234/abc.5"]})
        assert again.status_code == 200
        assert again.json()["id"] == output["id"]
        bad = editor.post("/api/v1/outputs", json={"identifiers": ["not an identifier"]})
        assert bad.status_code == 422
        assert "not a recognised identifier" in bad.json()["detail"]
        wrong_type = editor.post(
            "/api/v1/outputs", json={"identifiers": ["10.1234/x"], "type": "poem"}
        )
        assert wrong_type.status_code == 422
        assert "unknown output type" in wrong_type.json()["detail"]
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Output)).scalar() == 1


def test_a_correction_request_is_recorded_for_a_matched_mention(
    private: tuple[Store, dict[str, str]], tmp_path: Path
) -> None:
    store, tokens = private
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        orjson.dumps(
            {
                "id": "e-1",
                "subj_id": "https://example.org/post/1",
                "relation_type_id": "discusses",
                "obj_id": "https://doi.org/10.1234/abc.5",
                "source_id": "newsfeed",
                "occurred_at": "2025-01-02T03:04:05Z",
            }
        )
        + b"\n"
    )
    with client(_private_app(store), {"Authorization": f"Bearer {tokens['editor']}"}) as editor:
        output = editor.post("/api/v1/outputs", json={"identifiers": ["10.1234/abc.5"]}).json()
        ingest_paths(store, [events])
        event = editor.get(f"/api/v1/outputs/{output['id']}/events").json()["items"][0]
        url = f"/api/v1/outputs/{output['id']}/corrections"
        made = editor.post(url, json={"event_id": event["id"], "reason": "about another study"})
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "open"
        unmatched = editor.post(url, json={"event_id": event["id"] + 1, "reason": "x"})
        assert unmatched.status_code == 422
        assert (
            editor.post("/api/v1/outputs/424242/corrections", json={"reason": "x"}).status_code
            == 404
        )
    with client(_private_app(store), {"Authorization": f"Bearer {tokens['viewer']}"}) as viewer:
        assert viewer.post(url, json={"reason": "x"}).status_code == 403
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(CorrectionRequest.event_id, CorrectionRequest.reason)
        ).all()
    assert [tuple(r) for r in rows] == [(event["id"], "about another study")]


def test_the_openapi_description_documents_every_route(api: AppClient) -> None:
    described = api.get("/api/v1/openapi.json").json()
    paths = described["paths"]
    for path in (
        "/api/v1/outputs",
        "/api/v1/outputs/{output_id}",
        "/api/v1/outputs/{output_id}/score",
        "/api/v1/explain/output/{output_id}",
        "/api/v1/people/{person_id}/reach",
        "/api/v1/export/events.{fmt}",
        "/badge/{scheme}/{identifier}",
    ):
        assert path in paths, path
    listing = paths["/api/v1/outputs"]["get"]
    assert all(p.get("description") for p in listing["parameters"])
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("Page_OutputSummary_")
    explain = paths["/api/v1/explain/output/{output_id}"]["get"]["responses"]["200"]
    assert explain["content"]["application/json"]["schema"]["$ref"].endswith("OutputExplanation")


def test_merged_outputs_are_listed_once_with_all_their_mentions(
    store: Store, tmp_path: Path
) -> None:
    from reachmeter.matching.identifiers import normalize
    from reachmeter.scoring import compute_scores
    from reachmeter.store.catalog import upsert_output

    with store.session() as session:
        preprint = upsert_output(session, identifiers=[normalize("arXiv:2101.00001")])[0].id
        article = upsert_output(session, identifiers=[normalize("10.1234/paper")])[0].id
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "id": f"e-{n}",
                    "subj_id": f"https://example.org/post/{n}",
                    "relation_type_id": "discusses",
                    "obj_id": obj,
                    "source_id": "newsfeed",
                    "occurred_at": "2025-01-02T03:04:05Z",
                }
            )
            + b"\n"
            for n, obj in enumerate(
                ["https://arxiv.org/abs/2101.00001", "https://doi.org/10.1234/paper"]
            )
        )
    )
    ingest_paths(store, [events])
    with store.session() as session:
        kept = upsert_output(
            session, identifiers=[normalize("10.1234/paper"), normalize("arXiv:2101.00001")]
        )[0].id
    compute_scores(store, load_profile("default"), AS_OF)
    assert kept == preprint
    with client(make_app(store)) as api:
        listed = _walk(api, "/api/v1/outputs")
        assert [item["id"] for item in listed] == [kept]
        detail = api.get(f"/api/v1/outputs/{article}").json()
        assert detail["merged_into_id"] == kept
        kept_detail = api.get(f"/api/v1/outputs/{kept}").json()
        assert kept_detail["merged_from"] == [article]
        assert kept_detail["mentions_by_source"] == {"newsfeed": 2}
        assert kept_detail["score"]["mentions"] == 2
        mentions = _walk(api, f"/api/v1/outputs/{kept}/events")
        assert len(mentions) == 2
        assert {i["id"] for i in _walk(api, "/api/v1/outputs", source="newsfeed")} == {kept}
        found = api.get("/api/v1/outputs/lookup", params={"identifier": "10.1234/paper"})
        assert found.json()["id"] == kept
        badge = api.get("/badge/doi/10.1234/paper.svg")
        assert badge.status_code == 200
        assert badge.content == api.get(f"/badge/output/{article}.svg").content


def test_a_browser_session_cannot_write_through_the_api(
    private: tuple[Store, dict[str, str]],
) -> None:
    from reachmeter.web import auth
    from tests.apidemo import TEST_KEY

    store, _tokens = private
    user = auth.get_user(store, "editor@example.org")
    assert user is not None
    cookie = auth.sign({"uid": user.id, "pw": auth._password_tag(user)}, TEST_KEY.encode())
    with client(_private_app(store)) as browser:
        browser._client.cookies.set(auth.SESSION_COOKIE, cookie)
        assert browser.get("/api/v1/outputs").status_code == 200  # the session reads
        refused = browser.post("/api/v1/outputs", json={"identifiers": ["10.1234/x"]})
        assert refused.status_code == 403
        assert "API token" in refused.json()["detail"]
