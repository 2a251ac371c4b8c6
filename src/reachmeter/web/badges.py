"""Embeddable SVG badges: ``/badge/{scheme}/{id}.svg``.

A badge shows an output's stored attention score (or a person's attention total, as
``reachmeter reach person`` computes it) inside a donut of its parts in the sources'
colours. ``{scheme}`` is an identifier scheme (``doi``, ``pmid``, ``arxiv``, ``isbn``,
``handle``, ``url``, ...; any spelling is normalised), ``orcid`` or ``person`` for people, or
``output`` for an output's id. Without ``.svg`` the same address leads to the dashboard page.

Badges carry ``Cache-Control`` and an ``ETag`` (a matching ``If-None-Match`` gets a 304);
something unknown gets an "unknown" badge with status 404, never an error page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection, bindparam, select

from reachmeter.charts import source_colour
from reachmeter.matching.identifiers import SCHEME_ORDER, IdentifierError, normalize
from reachmeter.store import Store
from reachmeter.store.schema import Authorship, Output, Person, Score
from reachmeter.web import queries
from reachmeter.web.auth import reader

__all__ = ["Badge", "badge_svg", "router"]

router = APIRouter(tags=["badges"])

MAX_AGE = 3600
UNKNOWN_MAX_AGE = 300
OUTPUT_SCHEMES = tuple(s for s in SCHEME_ORDER if s != "orcid")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FONT = "Verdana,'DejaVu Sans',Arial,sans-serif"
_RING = "#e3e6ea"


@dataclass
class Badge:
    """What a badge shows: a score, its parts (kind -> points) and two lines of text."""

    value: float | None
    parts: dict[str, float] = field(default_factory=dict)
    caption: str = ""
    title: str = ""


def _clean(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _short(value: float | None) -> str:
    if value is None:
        return "?"
    if value >= 9999.5:
        return f"{value / 1000:.0f}k"
    if value >= 999.5:
        return f"{value / 1000:.1f}k"
    if value >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def badge_svg(badge: Badge) -> str:
    """The badge as a standalone SVG document; every piece of text is escaped."""
    width, height, cx, cy, radius = 164, 44, 22, 22, 15.0
    circumference = 2 * math.pi * radius
    parts = [(kind, points) for kind, points in sorted(badge.parts.items()) if points > 0]
    total = sum(points for _, points in parts)
    arcs: list[str] = []
    start = 0.0
    for kind, points in parts:
        length = circumference * points / total
        arcs.append(
            f'<circle cx="{cx}" cy="{cy}" r="{radius}" stroke={quoteattr(source_colour(kind))}'
            f' stroke-dasharray="{length:.2f} {circumference:.2f}"'
            f' stroke-dashoffset="{-start:.2f}"><title>{escape(_clean(kind))}: '
            f"{points:g}</title></circle>"
        )
        start += length
    title = escape(_clean(badge.title))
    number = escape(_short(badge.value))
    size = 11 if len(number) <= 3 else 9
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(_clean(badge.title))}>'
        f"<title>{title}</title>"
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="6"'
        f' fill="#ffffff" stroke="#c9ced4"/>'
        f'<g fill="none" stroke-width="7" transform="rotate(-90 {cx} {cy})">'
        f'<circle cx="{cx}" cy="{cy}" r="{radius}" stroke="{_RING}"/>{"".join(arcs)}</g>'
        f'<text x="{cx}" y="{cy + 4}" text-anchor="middle" font-family="{_FONT}"'
        f' font-size="{size}" font-weight="bold" fill="#1f2328">{number}</text>'
        f'<text x="46" y="18" font-family="{_FONT}" font-size="10" fill="#57606a">'
        f"ReachMeter</text>"
        f'<text x="46" y="33" font-family="{_FONT}" font-size="11" font-weight="bold"'
        f' fill="#1f2328">{escape(_clean(badge.caption))}</text>'
        f"</svg>"
    )


# -- what a badge stands for ----------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


# Built once (badges are the most requested address); values are bound when it runs.
_OUTPUT_BADGE = (
    select(Output.title, Score.score, Score.mentions, Score.breakdown, Score.as_of)
    .select_from(Output)
    .outerjoin(
        Score,
        (Score.output_id == Output.id)
        & (Score.profile_name == bindparam("profile"))
        & (Score.as_of == bindparam("as_of")),
    )
    .where(Output.id == bindparam("output_id"))
)


def output_badge(store: Store, output_id: int, scoring: queries.Scoring) -> Badge:
    """The badge of an output: its stored score under the profile on the scoring day (the
    row ``read_score`` reads, fetched with the title in one query)."""
    with store.engine.connect() as connection:
        row = connection.execute(
            _OUTPUT_BADGE,
            {"output_id": output_id, "profile": scoring.profile, "as_of": scoring.as_of},
        ).first()
    name = (row.title if row is not None else "") or f"output {output_id}"
    if row is None or row.score is None:
        return Badge(None, caption="not scored yet", title=f"{name}: not scored yet")
    parts = {
        kind: float(part.get("points", 0.0))
        for kind, part in (row.breakdown or {}).get("sources", {}).items()
    }
    mentions = _plural(int(row.mentions), "mention")
    return Badge(
        float(row.score),
        parts,
        caption=mentions,
        title=f"{name}: attention score {row.score:g} ({scoring.profile} profile, "
        f"{row.as_of.isoformat()}), {mentions}",
    )


def _kept_outputs(connection: Connection, output_ids: set[int]) -> set[int]:
    kept: set[int] = set()
    for output_id in output_ids:
        found = queries.kept_output_id(connection, output_id)
        kept.add(found if found is not None else output_id)
    return kept


def person_attention(
    connection: Connection, person_id: int, profile: str, as_of: dt.date
) -> tuple[float, dict[str, float], int]:
    """A person's attention total (the sum of their kept outputs' stored scores, as
    ``reach_report`` counts it), the points per kind behind it, and their outputs."""
    authored = {
        int(o)
        for o in connection.execute(
            select(Authorship.output_id).where(Authorship.person_id == person_id)
        ).scalars()
    }
    merged = {
        int(i)
        for i in connection.execute(
            select(Output.id).where(
                Output.id.in_(sorted(authored)), Output.merged_into_id.isnot(None)
            )
        ).scalars()
    }
    outputs = (authored - merged) | _kept_outputs(connection, merged)
    total = 0.0
    parts: dict[str, float] = defaultdict(float)
    for score, breakdown in connection.execute(
        select(Score.score, Score.breakdown).where(
            Score.profile_name == profile,
            Score.as_of == as_of,
            Score.output_id.in_(sorted(outputs)),
        )
    ):
        total += float(score)
        for kind, part in (breakdown or {}).get("sources", {}).items():
            parts[kind] += float(part.get("points", 0.0))
    return round(total, 6), dict(parts), len(outputs)


def person_badge(store: Store, person_id: int, scoring: queries.Scoring) -> Badge | None:
    """The badge of a person: the attention of their outputs on the scoring day."""
    profile, as_of = scoring.profile, scoring.as_of
    with store.engine.connect() as connection:
        name = connection.execute(select(Person.name).where(Person.id == person_id)).scalar()
        if name is None:
            return None
        if as_of is None:
            return Badge(None, caption="not scored yet", title=f"{name}: not scored yet")
        total, parts, outputs = person_attention(connection, person_id, profile, as_of)
    return Badge(
        total,
        parts,
        caption=_plural(outputs, "output"),
        title=f"{name}: attention of their {_plural(outputs, 'output')} {total:g} "
        f"({profile} profile, {as_of.isoformat()})",
    )


def _find(store: Store, scheme: str, value: str) -> tuple[str, int] | None:
    """``("output" | "person", id)`` for a badge address, or None when unknown."""
    scheme = scheme.lower()
    with store.engine.connect() as connection:
        if scheme in ("output", "person"):
            if not value.isdigit() or len(value) > 18:
                return None
            if scheme == "person":
                found = connection.execute(select(Person.id).where(Person.id == int(value)))
                return ("person", int(value)) if found.first() else None
            kept = queries.kept_output_id(connection, int(value))
            return ("output", kept) if kept is not None else None
        try:
            identifier = normalize(value, scheme)
        except IdentifierError:
            return None
        if scheme == "orcid":
            person = queries.find_person_id(connection, identifier.value)
            return ("person", person) if person is not None else None
        if scheme not in OUTPUT_SCHEMES:
            return None
        output = queries.find_output_id(connection, identifier)
        return ("output", output) if output is not None else None


# -- routes ---------------------------------------------------------------------------------


def _svg_response(request: Request, svg: str, status: int, max_age: int) -> Response:
    body = svg.encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    public = request.app.state.settings.public_dashboard
    headers = {
        "Cache-Control": f"{'public' if public else 'private'}, max-age={max_age}",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    if not public:
        headers["Vary"] = "Authorization, Cookie"
    wanted = request.headers.get("if-none-match", "")
    if status == 200 and wanted:
        tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type="image/svg+xml", headers=headers)


_EMBED_JS = """\
/* ReachMeter badges: <a class="reachmeter-badge" data-id="doi:10.1234/abc"></a>
   (or data-id="orcid:0000-0002-1825-0097", "person:12", "output:34"), then this script. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(".", script ? script.src : location.href).href;
  function show(el) {
    if (el.getAttribute("data-reachmeter-done")) return;
    var id = el.getAttribute("data-id") || "";
    var cut = id.indexOf(":");
    if (cut < 1) return;
    var scheme = id.slice(0, cut).toLowerCase();
    var value = id.slice(cut + 1).trim();
    if (!/^[a-z]+$/.test(scheme) || !value) return;
    var path = scheme + "/" + encodeURIComponent(value).replace(/%2F/g, "/");
    var img = document.createElement("img");
    img.src = base + path + ".svg";
    img.alt = "ReachMeter attention for " + id;
    img.width = 164;
    img.height = 44;
    img.loading = "lazy";
    var link = document.createElement("a");
    link.href = base + path;
    link.appendChild(img);
    el.textContent = "";
    el.appendChild(link);
    el.setAttribute("data-reachmeter-done", "1");
  }
  function run() {
    var all = document.querySelectorAll(".reachmeter-badge[data-id]");
    for (var i = 0; i < all.length; i++) show(all[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
"""


@router.get(
    "/badge/embed.js",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}}}},
)
def embed_script() -> Response:
    """The embed script: it turns ``<a class="reachmeter-badge" data-id="doi:...">`` into a
    badge linked to the dashboard page."""
    return Response(
        _EMBED_JS,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={MAX_AGE}"},
    )


@router.get(
    "/badge/{scheme}/{identifier:path}",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "The badge."},
        303: {"description": "Without `.svg`: to the output's or person's dashboard page."},
        304: {"description": "Not modified (If-None-Match)."},
        404: {"content": {"image/svg+xml": {}}, "description": "An 'unknown' badge."},
    },
)
async def badge(
    request: Request,
    scheme: Annotated[
        str, Path(max_length=20, description="doi, pmid, arxiv, isbn, url, orcid, person, ...")
    ],
    identifier: Annotated[
        str, Path(max_length=2100, description="The identifier, then `.svg` for the image.")
    ],
    profile: Annotated[
        str, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", description="Scoring profile.")
    ] = "default",
) -> Response:
    """The badge of an output (by any identifier, or ``output/ID``) or of a person
    (``orcid/...``, ``person/ID``)."""
    # Run in the event loop, not queued for a worker thread behind dashboard pages: a badge
    # is a few small indexed reads, and it holds up the third-party page it is embedded in.
    store: Store = request.app.state.store
    image = identifier.endswith(".svg")
    value = identifier.removesuffix(".svg")
    try:
        reader(request)
    except HTTPException as exc:
        if not image:
            raise
        gate = Badge(None, caption="log in to see", title="ReachMeter: log in to see this")
        return _svg_response(request, badge_svg(gate), exc.status_code, UNKNOWN_MAX_AGE)
    try:
        chosen = queries.resolve_scoring(store, profile, None)
    except queries.NotFoundError:
        chosen = None
    found = _find(store, scheme, value) if chosen is not None else None
    if not image:
        if found is None:
            raise HTTPException(404, f"nothing tracked is known as {scheme}/{value}")
        kind, number = found
        return RedirectResponse(f"/{'outputs' if kind == 'output' else 'people'}/{number}", 303)
    shown: Badge | None = None
    if found is not None and chosen is not None:
        kind, number = found
        if kind == "output":
            shown = output_badge(store, number, chosen)
        else:
            shown = person_badge(store, number, chosen)
    if shown is None:
        unknown = Badge(None, caption="not tracked", title=f"ReachMeter: {scheme}:{value} unknown")
        return _svg_response(request, badge_svg(unknown), 404, UNKNOWN_MAX_AGE)
    return _svg_response(request, badge_svg(shown), 200, MAX_AGE)


def embed_snippet(base_url: str, scheme: str, value: str) -> dict[str, Any]:
    """The two ways to embed a badge: a plain ``<img>`` tag, or the script."""
    base = base_url.rstrip("/")
    path = f"{scheme}/{value}"
    return {
        "img": f"<a href={quoteattr(f'{base}/badge/{path}')}><img src="
        f'{quoteattr(f"{base}/badge/{path}.svg")} alt="ReachMeter attention" width="164"'
        f' height="44"></a>',
        "script": f'<a class="reachmeter-badge" data-id={quoteattr(f"{scheme}:{value}")}></a>'
        f"<script async src={quoteattr(f'{base}/badge/embed.js')}></script>",
    }
