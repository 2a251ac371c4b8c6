"""The OpenAlex source: import of a person's (ORCID) and an institution's (ROR) works.

The works are real OpenAlex entities (../shared/data/openalex, from openalexR's fixtures,
read in place); the list envelope around them (``meta.next_cursor``, ``results``) is the
documented shape of ``GET /works``. No recording of a whole list response exists there.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select

from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.schema import (
    Authorship,
    Observation,
    Output,
    OutputIdentifier,
    Person,
    SourceCursor,
)
from tests.conftest import shared_data

API = "https://api.openalex.org/works"


def _works() -> list[dict[str, Any]]:
    data = json.loads(shared_data("openalex", "entity_list_samples.json").read_text())
    works: list[dict[str, Any]] = data["works"]
    return works


def _listing(results: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {
        "meta": {"count": len(results), "per_page": 100, "next_cursor": next_cursor},
        "results": results,
        "group_by": [],
    }


def _identifiers(store: Store, output_id: int) -> dict[str, str]:
    with store.session() as session:
        rows = session.execute(
            select(OutputIdentifier.scheme, OutputIdentifier.value).where(
                OutputIdentifier.output_id == output_id
            )
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_import_by_orcid_creates_the_output_its_people_and_citations(store: Store) -> None:
    work = _works()[0]
    replay = Replay().add(
        f"{API}?filter=author.orcid:0000-0002-7019-5291&per-page=100&cursor=*",
        _listing([work], None),
    )
    update_settings(
        store,
        "openalex",
        {"orcids": ["https://orcid.org/0000-0002-7019-5291"], "track_dois": False},
    )
    summary = run_source(store, "openalex", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert (summary.fetched, summary.outputs) == (1, 1)
    with store.session() as session:
        output = session.scalars(select(Output)).one()
        people = dict(session.execute(select(Person.orcid, Person.name)).all())
        authors = session.scalar(
            select(func.count()).select_from(Authorship).where(Authorship.output_id == output.id)
        )
        observations = session.execute(
            select(
                Observation.metric,
                Observation.value,
                Observation.cumulative,
                Observation.period_start,
            ).where(Observation.obj_value == "10.1007/s00401-002-0654-1")
        ).all()
        cursor = session.scalars(select(SourceCursor)).one()
    assert output.title == (
        "Clinical, morphological and immunological evaluation of six patients with "
        "dysferlin deficiency"
    )
    assert (output.type, output.venue, output.published_on) == (
        "article", "Acta Neuropathologica", dt.date(2003, 3, 4),
    )  # fmt: skip
    assert output.extra["openalex_id"] == "https://openalex.org/W52443429"
    assert _identifiers(store, output.id) == {
        "doi": "10.1007/s00401-002-0654-1",
        "pmid": "12734659",
    }
    # Of the fourteen authors, the nine with an ORCID become people, linked as authors.
    assert len(people) == 9
    assert people["0000-0002-7019-5291"] == "A. Prelle"
    assert people["0000-0001-6387-6200"] == "Maurizio Moggio"
    assert authors == 9
    cumulative = [o for o in observations if o.cumulative]
    yearly = sorted((o.period_start.year, o.value) for o in observations if not o.cumulative)
    assert [(o.metric, o.value) for o in cumulative] == [("citations", 31.0)]
    assert yearly == [
        (2013, 1.0), (2014, 2.0), (2015, 1.0), (2016, 1.0), (2018, 1.0),
        (2020, 2.0), (2021, 2.0), (2022, 2.0), (2024, 1.0), (2025, 1.0),
    ]  # fmt: skip
    assert cursor.stream == "orcid:0000-0002-7019-5291"
    assert cursor.value == dt.datetime.now(dt.UTC).date().isoformat()


def test_import_by_ror_follows_the_cursor_and_keeps_works_without_a_doi(store: Store) -> None:
    _, with_doi, without_doi = _works()
    replay = (
        Replay()
        .add(
            f"{API}?filter=institutions.ror:029g42942&per-page=100&cursor=*",
            _listing([with_doi, without_doi], "IlsxNjk0NTYwMDAwMDAwXSI="),
        )
        .add(
            f"{API}?filter=institutions.ror:029g42942&per-page=100&cursor=IlsxNjk0NTYwMDAwMDAwXSI=",
            _listing([], None),
        )
    )
    update_settings(store, "openalex", {"rors": ["https://ror.org/029g42942"], "track_dois": False})
    summary = run_source(store, "openalex", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert (summary.fetched, summary.outputs) == (2, 2)
    assert [r.url.params["cursor"] for r in replay.requests] == ["*", "IlsxNjk0NTYwMDAwMDAwXSI="]
    with store.session() as session:
        outputs = {o.title: o for o in session.scalars(select(Output))}
        people = set(session.scalars(select(Person.orcid)))
        citations = dict(
            session.execute(
                select(Observation.obj_value, Observation.value).where(Observation.cumulative)
            ).all()
        )
        cursor = session.scalars(select(SourceCursor)).one()
    article = outputs[
        "Design, synthesis and biological evaluation of small molecule-based PET radioligands "
        "for the 5-hydroxytryptamine 7 receptor"
    ]
    assert (article.venue, article.published_on) == ("RSC Advances", dt.date(2015, 1, 1))
    assert _identifiers(store, article.id) == {"doi": "10.1039/c4ra15833d"}
    # A work without DOI, PMID or PMCID is kept under its OpenAlex URL.
    korean = outputs["주파수 안정도 측정"]
    assert _identifiers(store, korean.id) == {"url": "https://openalex.org/W3197312755"}
    assert people == {
        "0000-0001-6271-3055", "0000-0001-5986-6915", "0000-0001-7773-3665",
        "0000-0002-6472-322X", "0000-0002-0418-229X", "0000-0002-2372-7064",
        "0000-0003-2523-9045", "0000-0002-4104-8911",
    }  # fmt: skip
    assert citations == {
        "10.1039/c4ra15833d": 10.0,
        "https://openalex.org/W3197312755": 0.0,
    }
    assert cursor.stream == "ror:029g42942"


def test_a_second_run_asks_only_for_works_updated_since_less_the_lag(store: Store) -> None:
    first = Replay().add(
        f"{API}?filter=author.orcid:0000-0002-7019-5291&per-page=100&cursor=*",
        _listing([_works()[0]], None),
    )
    update_settings(store, "openalex", {"orcids": ["0000-0002-7019-5291"], "track_dois": False})
    run_source(store, "openalex", http=replay_client(first))
    since = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)).isoformat()
    again = Replay().add(
        f"{API}?filter=author.orcid:0000-0002-7019-5291,from_updated_date:{since}"
        "&per-page=100&cursor=*",
        _listing([], None),
    )
    summary = run_source(store, "openalex", http=replay_client(again))
    assert (summary.status, summary.stored, summary.outputs) == ("ok", 0, 0)
