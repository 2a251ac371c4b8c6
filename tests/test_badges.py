"""Badges: well-formed, escaped SVG with the stored score and the sources' colours, cache
headers, identifiers in any spelling, people, and an "unknown" badge for the rest."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from reachmeter.charts import source_colour
from reachmeter.matching.identifiers import normalize
from reachmeter.scoring import compute_scores, load_profile, read_score
from reachmeter.scoring.reach import reach_report
from reachmeter.store import Store
from reachmeter.store.catalog import upsert_output, upsert_person
from reachmeter.store.schema import Authorship, OutputIdentifier, Person
from reachmeter.web.badges import Badge, badge_svg, embed_snippet
from tests.apidemo import AS_OF, AppClient, client, demo_stores, make_app

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module", params=["sqlite"])
def demo(request: pytest.FixtureRequest) -> Iterator[Store]:
    yield from demo_stores(request)


@pytest.fixture(scope="module")
def web(demo: Store) -> Iterator[AppClient]:
    with client(make_app(demo)) as opened:
        yield opened


def _parse(text: str) -> ET.Element:
    root = ET.fromstring(text)  # noqa: S314  (our own output, checked to be well-formed)
    assert root.tag == f"{SVG}svg"
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def _arc_colours(root: ET.Element) -> list[str]:
    group = root.find(f"{SVG}g")
    assert group is not None
    return [c.get("stroke", "") for c in group.findall(f"{SVG}circle")[1:]]


def _top(demo: Store, rank: int = 0) -> tuple[int, str]:
    with demo.engine.connect() as connection:
        from reachmeter.store.schema import Score

        output_id = connection.execute(
            select(Score.output_id)
            .join(OutputIdentifier, OutputIdentifier.output_id == Score.output_id)
            .where(
                Score.profile_name == "default",
                Score.as_of == AS_OF,
                OutputIdentifier.scheme == "doi",
            )
            .order_by(Score.score.desc(), Score.output_id)
            .offset(rank)
            .limit(1)
        ).scalar()
        doi = connection.execute(
            select(OutputIdentifier.value).where(
                OutputIdentifier.output_id == output_id, OutputIdentifier.scheme == "doi"
            )
        ).scalar()
    assert output_id is not None
    return int(output_id), str(doi)


def test_an_output_badge_shows_its_stored_score_in_its_sources_colours(
    web: AppClient, demo: Store
) -> None:
    output_id, doi = _top(demo)
    response = web.get(f"/badge/doi/{doi}.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    root = _parse(response.text)
    stored = read_score(demo, output_id, "default", AS_OF)
    assert stored is not None
    assert _texts(root)[0] == f"{stored['score']:.0f}"
    assert _texts(root)[2] == f"{stored['mentions']:,} mentions"
    title = root.find(f"{SVG}title")
    assert title is not None
    assert f"attention score {stored['score']:g}" in (title.text or "")
    parts = {
        kind: part["points"]
        for kind, part in stored["breakdown"]["sources"].items()
        if part["points"] > 0
    }
    assert len(parts) >= 2
    assert _arc_colours(root) == [source_colour(kind) for kind in sorted(parts)]
    lengths = [
        float(c.get("stroke-dasharray", "0 0").split()[0])
        for c in root.iter(f"{SVG}circle")
        if c.get("stroke-dasharray")
    ]
    total = sum(parts.values())
    expected = [2 * 3.141592653589793 * 15 * parts[kind] / total for kind in sorted(parts)]
    assert lengths == pytest.approx(expected, abs=0.01)


def test_every_spelling_of_an_identifier_gives_the_same_badge(web: AppClient, demo: Store) -> None:
    _output_id, doi = _top(demo, 1)
    first = web.get(f"/badge/doi/{doi}.svg")
    for spelling in (doi.upper(), f"https://doi.org/{doi}", f"doi:{doi}"):
        again = web.get(f"/badge/doi/{spelling}.svg")
        assert again.status_code == 200, spelling
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
    by_id = web.get(f"/badge/output/{_output_id}.svg")
    assert by_id.content == first.content


def test_badges_are_cached_and_revalidated(web: AppClient, demo: Store) -> None:
    _output_id, doi = _top(demo)
    first = web.get(f"/badge/doi/{doi}.svg")
    assert first.headers["cache-control"] == "public, max-age=3600"
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    unchanged = web.get(f"/badge/doi/{doi}.svg", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    weak = web.get(f"/badge/doi/{doi}.svg", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = web.get(f"/badge/doi/{doi}.svg", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/badge/doi/10.9999/not-tracked.svg",
        "/badge/doi/not a doi.svg",
        "/badge/pmid/12345.svg",
        "/badge/person/999999.svg",
        "/badge/orcid/0000-0002-1825-0097.svg",
        "/badge/output/12abc.svg",
        "/badge/nonsense/value.svg",
        "/badge/doi/10.5555/x.svg?profile=no-such-profile",
    ],
)
def test_anything_unknown_gets_an_unknown_badge(web: AppClient, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "public, max-age=300"
    root = _parse(response.text)
    assert _texts(root)[0] == "?"
    assert _texts(root)[2] == "not tracked"


def test_a_person_badge_shows_the_attention_total_of_reach(web: AppClient, demo: Store) -> None:
    with demo.engine.connect() as connection:
        person_id, orcid = connection.execute(
            select(Person.id, Person.orcid)
            .join(Authorship, Authorship.person_id == Person.id)
            .where(Person.orcid.is_not(None))
            .group_by(Person.id, Person.orcid)
            .order_by(func.count().desc(), Person.id)
        ).first()
    report = reach_report(demo, "default", AS_OF, person_id=person_id)
    total = report["components"]["attention_total"]["value"]
    assert total > 0
    by_orcid = web.get(f"/badge/orcid/{orcid}.svg")
    by_id = web.get(f"/badge/person/{person_id}.svg")
    assert by_orcid.status_code == 200
    assert by_orcid.content == by_id.content
    root = _parse(by_orcid.text)
    title = root.find(f"{SVG}title")
    assert title is not None
    assert f" {total:g} (default profile" in (title.text or "")
    outputs = len(report["outputs"])
    assert _texts(root)[2] == f"{outputs} output{'' if outputs == 1 else 's'}"
    orcid_url = web.get(f"/badge/orcid/https://orcid.org/{orcid}.svg")
    assert orcid_url.content == by_orcid.content


def test_without_svg_the_badge_address_leads_to_the_dashboard(web: AppClient, demo: Store) -> None:
    output_id, doi = _top(demo)
    response = web.get(f"/badge/doi/{doi}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/outputs/{output_id}"
    assert web.get("/badge/doi/10.9999/none", follow_redirects=False).status_code == 404


HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> \x01\x1b]]>'


@pytest.fixture
def hostile(store: Store) -> Store:
    """An output and a person whose names are markup, scored."""
    with store.session() as session:
        person, _ = upsert_person(
            session, name=HOSTILE.replace("\x01", ""), orcid="0000-0002-1825-0097"
        )
        output, _ = upsert_output(
            session, identifiers=[normalize("10.1234/hostile")], title=HOSTILE
        )
        session.add(Authorship(output_id=output.id, person_id=person.id, position=1))
    compute_scores(store, load_profile("default"), AS_OF)
    return store


def test_badge_text_is_escaped_and_well_formed(hostile: Store) -> None:
    with client(make_app(hostile)) as web:
        for path in ("/badge/doi/10.1234/hostile.svg", "/badge/orcid/0000-0002-1825-0097.svg"):
            response = web.get(path)
            assert response.status_code == 200
            assert "<script" not in response.text
            assert "<img" not in response.text
            root = _parse(response.text)
            title = root.find(f"{SVG}title")
            assert title is not None
            assert (title.text or "").startswith(
                '<script>alert("x")</script> & <img src=x onerror=alert(1)> \x1b'.replace(
                    "\x1b", ""
                )
            )
            assert root.get("aria-label", "").startswith("<script>")
        weird = web.get("/badge/doi/10.1234/<b>&amp;.svg")
        assert weird.status_code == 404
        unknown = _parse(weird.text)
        assert "10.1234/<b>&amp;" in (unknown.find(f"{SVG}title").text or "")  # type: ignore[union-attr]


def test_badge_svg_escapes_every_text() -> None:
    svg = badge_svg(Badge(1.5, {'"><script>': 2.0}, caption="</text><x>", title="a&b<c>"))
    root = _parse(svg)
    assert _texts(root) == ["1.5", "ReachMeter", "</text><x>"]
    arc = root.find(f"{SVG}g/{SVG}circle[2]/{SVG}title")
    assert arc is not None
    assert arc.text == '"><script>: 2'


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "?"), (0.0, "0"), (0.25, "0.2"), (3.0, "3"), (12.4, "12"), (1234.0, "1.2k"),
     (98765.0, "99k")],
)  # fmt: skip
def test_the_donut_shows_a_short_number(value: float | None, shown: str) -> None:
    assert _texts(_parse(badge_svg(Badge(value))))[0] == shown


def test_a_private_dashboard_gives_a_log_in_badge(demo: Store) -> None:
    _output_id, doi = _top(demo)
    with client(make_app(demo, public=False)) as web:
        response = web.get(f"/badge/doi/{doi}.svg")
        assert response.status_code == 401
        assert response.headers["cache-control"].startswith("private")
        assert _texts(_parse(response.text))[2] == "log in to see"


def test_the_embed_script_and_snippets(web: AppClient) -> None:
    script = web.get("/badge/embed.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "reachmeter-badge" in script.text
    snippet: dict[str, Any] = embed_snippet("https://rm.example.org/", "doi", "10.1234/abc")
    assert snippet["img"] == (
        '<a href="https://rm.example.org/badge/doi/10.1234/abc"><img '
        'src="https://rm.example.org/badge/doi/10.1234/abc.svg" alt="ReachMeter attention" '
        'width="164" height="44"></a>'
    )
    assert 'data-id="doi:10.1234/abc"' in snippet["script"]
    assert 'src="https://rm.example.org/badge/embed.js"' in snippet["script"]
