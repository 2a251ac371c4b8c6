"""The Europe PMC source: PMID / PMCID metadata of tracked DOIs through ``/search``.

The answers are real Europe PMC search responses recorded by Lagotto (../shared/data/
lagotto, read in place): one hit (``vcr_cassettes/Work/HTTP/metadata``, asked there by
``ext_id`` with ``resultType=lite``: the same ``resultList.result`` shape the source reads)
and an empty result list (``europe_pmc_fulltext_nil.json``).
"""

from __future__ import annotations

import yaml
from sqlalchemy import select

from reachmeter.matching.identifiers import Identifier
from reachmeter.sources.runner import run_source, update_settings
from reachmeter.sources.testing import Replay, replay_client
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output
from reachmeter.store.schema import Observation, Output, OutputIdentifier, SourceCursor
from tests.conftest import shared_data

SEARCH = "https://www.ebi.ac.uk/europepmc/webservices/rest/search"


def _recorded_search() -> bytes:
    path = shared_data(
        "lagotto", "vcr_cassettes", "Work", "HTTP", "metadata", "get_metadata_pubmed.yml"
    )
    cassette = yaml.safe_load(path.read_text(encoding="utf-8"))
    body: str = cassette["http_interactions"][0]["response"]["body"]["string"]
    return body.encode()


def _search_url(doi: str) -> str:
    return f'{SEARCH}?query=DOI:"{doi}"&resultType=core&format=json'


def test_a_tracked_doi_gets_its_pmid_pmcid_metadata_and_citation_count(store: Store) -> None:
    doi = "10.1371/journal.pone.0000030"
    replay = Replay().add(
        _search_url(doi), _recorded_search(), headers={"content-type": "application/json"}
    )
    with store.session() as session:
        upsert_output(session, identifiers=[Identifier("doi", doi)])
    update_settings(store, "europepmc", {"track_pmids": False})
    summary = run_source(store, "europepmc", http=replay_client(replay))
    assert summary.status == "ok", summary.errors
    assert (summary.fetched, summary.outputs, summary.stored) == (1, 1, 1)
    with store.session() as session:
        output = session.scalars(select(Output)).one()
        identifiers = dict(
            session.execute(select(OutputIdentifier.scheme, OutputIdentifier.value)).all()
        )
        citations = session.execute(
            select(Observation.obj_scheme, Observation.obj_value, Observation.value)
        ).one()
        cursor = session.scalars(select(SourceCursor)).one()
    # The PMID and PMCID join the DOI on the output already tracked (not a new output).
    assert identifiers == {"doi": doi, "pmid": "17183658", "pmcid": "PMC1762313"}
    assert output.title == (
        "Triose phosphate isomerase deficiency is caused by altered dimerization--not "
        "catalytic inactivity--of the mutant enzymes."
    )
    assert output.venue == "PLoS One"
    # A lite result has no firstPublicationDate, and a year alone is not a date.
    assert output.published_on is None
    assert tuple(citations) == ("doi", doi, 23.0)
    assert (cursor.stream, cursor.value) == ("dois", "")


def test_a_doi_europe_pmc_does_not_know_adds_nothing_and_the_run_goes_on(store: Store) -> None:
    known, unknown = "10.1371/journal.pone.0000030", "10.1371/journal.pone.0000031"
    replay = (
        Replay()
        .add(_search_url(known), _recorded_search(), headers={"content-type": "application/json"})
        .add_file(_search_url(unknown), shared_data("lagotto", "europe_pmc_fulltext_nil.json"))
    )
    with store.session() as session:
        for doi in (known, unknown):
            upsert_output(session, identifiers=[Identifier("doi", doi)])
    update_settings(store, "europepmc", {"track_pmids": False})
    summary = run_source(store, "europepmc", http=replay_client(replay))
    assert (summary.status, summary.fetched, summary.outputs, summary.stored) == ("ok", 2, 1, 1)
    with store.session() as session:
        pmids = list(
            session.scalars(select(OutputIdentifier.value).where(OutputIdentifier.scheme == "pmid"))
        )
    assert pmids == ["17183658"]
