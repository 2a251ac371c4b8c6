"""Zenodo: views and downloads of the records behind tracked Zenodo DOIs (10.5281/zenodo.N).

``GET /api/records/{id}`` carries ``stats``: ``views``, ``unique_views``, ``downloads`` and
``unique_downloads`` (all versions are in ``version_*``). Each is stored as a cumulative
observation of the DOI for the day it was read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import ClassVar

from reachmeter.http import UpstreamError
from reachmeter.sources._common import identifier, observation
from reachmeter.sources.base import (
    BadPayloadError,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
)

__all__ = ["ZenodoSource"]

API = "https://zenodo.org/api/records"
_ZENODO_DOI = re.compile(r"^10\.5281/zenodo\.(\d+)$", re.IGNORECASE)
METRICS = {
    "views": "views",
    "unique_views": "unique-views",
    "downloads": "downloads",
    "unique_downloads": "unique-downloads",
}


class ZenodoSource(Source):
    id = "zenodo"
    name = "Zenodo"
    version = "1"
    description = "Views and downloads of Zenodo records."
    settings_model = SourceSettings
    rate_limits: ClassVar[dict[str, float]] = {"zenodo.org": 1.0}

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        records = [
            (doi, match.group(1)) for doi in ctx.targets("doi") if (match := _ZENODO_DOI.match(doi))
        ]
        after = ctx.cursors.get("dois", "")
        todo = [r for r in records if r[0] > after] if after else records
        for number, (doi, record_id) in enumerate(todo, start=1):
            url = f"{API}/{record_id}"
            try:
                fetched = ctx.get_json(url)
            except UpstreamError as exc:
                if exc.retriable or exc.status in (None, 401, 403, 429):
                    raise
                yield ctx.skip(url, exc)
                continue
            stats = fetched.data.get("stats") if isinstance(fetched.data, Mapping) else None
            if not isinstance(stats, Mapping):
                raise BadPayloadError(fetched.url, "record has no stats")
            obj = identifier(doi, "doi")
            page = ctx.page(fetched, cursors={"dois": "" if number == len(todo) else doi})
            for field, metric in METRICS.items():
                value = stats.get(field)
                if (
                    obj is not None
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    page.facts.append(
                        observation(
                            self.id, obj, metric, value, ctx.collected_at, qualifier="this-version"
                        )
                    )
                total = stats.get(f"version_{field}")
                if (
                    obj is not None
                    and isinstance(total, int | float)
                    and not isinstance(total, bool)
                ):
                    page.facts.append(
                        observation(
                            self.id, obj, metric, total, ctx.collected_at, qualifier="all-versions"
                        )
                    )
            yield page
