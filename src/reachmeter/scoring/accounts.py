"""Account KPIs, with the industry's definitions (Hootsuite, Sprout Social; anchors.md, 7).

Per period (calendar months by default), from the account's observations and the events it
authored:

===========================  ===============================================================
KPI                          definition
===========================  ===============================================================
``engagement_rate_impr``     engagements / impressions x 100
``engagement_rate_reach``    engagements / reach x 100 (ERR)
``engagement_rate_followers``engagements / followers at the period's end x 100
``follower_growth_rate``     (followers at end - at start) / followers at start x 100
``posting_frequency``        posts per day over the period (``posts_per_week`` too)
``average_reach_per_post``   reach / posts (never a summed "total reach")
``share_of_voice``           mentions of tracked outputs by this account / all mentions of
                             tracked outputs on the same source in the period x 100
===========================  ===============================================================

A KPI whose inputs are missing is ``None`` with a reason, never a division by zero.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import select

from reachmeter.scoring.flags import account_key
from reachmeter.scoring.load import author_expr
from reachmeter.store import Store
from reachmeter.store.schema import Account, Event, EventMatch, Observation

__all__ = ["AccountPoint", "account_kpis", "account_report", "months"]

PLATFORM_SOURCES = {"x": ("twitter", "x"), "blog": ("wordpressdotcom", "blog", "blogs")}


class AccountPoint(NamedTuple):
    observation_id: int
    metric: str
    value: float
    cumulative: bool
    period_start: dt.date | None
    period_end: dt.date | None
    observed_at: dt.datetime


def months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The calendar months from the one holding ``start`` to the one holding ``end``."""
    result: list[tuple[dt.date, dt.date]] = []
    current = start.replace(day=1)
    while current <= end:
        following = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        result.append((current, following - dt.timedelta(days=1)))
        current = following
    return result


def _latest_by(points: Sequence[AccountPoint], day: dt.date) -> float | None:
    """The latest value of a running total (followers, a post count) observed by ``day``."""
    best: tuple[dt.datetime, float] | None = None
    for point in points:
        if point.observed_at.date() <= day and (best is None or point.observed_at >= best[0]):
            best = (point.observed_at, point.value)
    return best[1] if best else None


def _ratio(numerator: float | None, denominator: float | None, scale: float = 100.0) -> Any:
    if numerator is None or denominator is None:
        return None
    if denominator == 0:
        return None
    return round(scale * numerator / denominator, 4)


def account_kpis(
    points: Iterable[AccountPoint],
    periods: Sequence[tuple[dt.date, dt.date]],
    own_mentions: Mapping[dt.date, int] | None = None,
    all_mentions: Mapping[dt.date, int] | None = None,
) -> list[dict[str, Any]]:
    """The KPIs of one account for each period (keyed by the period's first day)."""
    rows = list(points)
    followers = [p for p in rows if p.metric == "followers"]
    # A running total (a profile's post count) is not a figure for a period: it gives the
    # period's figure as the change between its values at the period's start and end,
    # where no per-period figure of the same metric exists.
    running: dict[str, list[AccountPoint]] = defaultdict(list)
    sums: dict[tuple[dt.date, str], float] = defaultdict(float)
    seen: set[tuple[dt.date, str]] = set()
    for point in rows:
        if point.metric == "followers":
            continue
        if point.cumulative:
            running[point.metric].append(point)
            continue
        day = point.period_start or point.observed_at.date()
        for start, end in periods:
            if start <= day <= end:
                sums[(start, point.metric)] += point.value
                seen.add((start, point.metric))
    for metric, values in running.items():
        for start, end in periods:
            if (start, metric) in seen:
                continue
            before = _latest_by(values, start - dt.timedelta(days=1))
            after = _latest_by(values, end)
            if before is not None and after is not None:
                sums[(start, metric)] = max(after - before, 0.0)
                seen.add((start, metric))
    result: list[dict[str, Any]] = []
    for start, end in periods:

        def total(metric: str, start: dt.date = start) -> float | None:
            return sums[(start, metric)] if (start, metric) in seen else None

        engagements, impressions = total("engagements"), total("impressions")
        reach, posts = total("reach"), total("posts")
        at_start = _latest_by(followers, start - dt.timedelta(days=1))
        at_end = _latest_by(followers, end)
        days = (end - start).days + 1
        own = (own_mentions or {}).get(start, 0)
        everyone = (all_mentions or {}).get(start, 0)
        kpis: dict[str, Any] = {
            "period": [start.isoformat(), end.isoformat()],
            "engagements": engagements,
            "impressions": impressions,
            "reach": reach,
            "posts": posts,
            "followers_start": at_start,
            "followers_end": at_end,
            "engagement_rate_impr": _ratio(engagements, impressions),
            "engagement_rate_reach": _ratio(engagements, reach),
            "engagement_rate_followers": _ratio(engagements, at_end),
            "follower_growth_rate": _ratio(
                None if at_end is None or at_start is None else at_end - at_start, at_start
            ),
            "posting_frequency": _ratio(posts, days, 1.0),
            "posts_per_week": _ratio(posts, days, 7.0),
            "average_reach_per_post": _ratio(reach, posts, 1.0),
            "mentions_of_outputs": own,
            "share_of_voice": _ratio(own, everyone) if everyone else None,
        }
        missing = [key for key, value in kpis.items() if value is None]
        if missing:
            kpis["missing"] = {
                key: "no data for this period, or a zero denominator" for key in missing
            }
        result.append(kpis)
    return result


def account_report(store: Store, account_id: int, start: dt.date, end: dt.date) -> dict[str, Any]:
    """An account's KPIs per calendar month between two dates, with the observations used."""
    periods = months(start, end)
    with store.engine.connect() as connection:
        account = connection.execute(
            select(
                Account.id, Account.platform, Account.handle, Account.url,
                Account.owner_person_id, Account.owned_by_org,
            ).where(Account.id == account_id)
        ).first()  # fmt: skip
        if account is None:
            raise LookupError(f"no account with id {account_id}")
        points = [
            AccountPoint(int(i), m, float(v), bool(c), ps, pe, t)
            for i, m, v, c, ps, pe, t in connection.execute(
                select(
                    Observation.id, Observation.metric, Observation.value, Observation.cumulative,
                    Observation.period_start, Observation.period_end, Observation.observed_at,
                )
                .where(Observation.account_id == account_id)
                .order_by(Observation.observed_at, Observation.id)
            )
        ]  # fmt: skip
        sources = PLATFORM_SOURCES.get(account.platform, (account.platform,))
        key = account_key(account.url or account.handle)
        own: dict[dt.date, int] = defaultdict(int)
        everyone: dict[dt.date, int] = defaultdict(int)
        own_ids: list[int] = []
        low = dt.datetime.combine(periods[0][0], dt.time(), tzinfo=dt.UTC) if periods else None
        if low is not None:
            rows = connection.execute(
                select(Event.id, author_expr, Event.occurred_at)
                .join(EventMatch, EventMatch.event_id == Event.id)
                .where(Event.source_id.in_(sources), Event.occurred_at >= low)
                .distinct()
            )
            for event_id, author, when in rows:
                month = when.date().replace(day=1)
                everyone[month] += 1
                if account_key(author) == key:
                    own[month] += 1
                    own_ids.append(int(event_id))
    return {
        "kind": "account",
        "account": dict(account._mapping),
        "kpis": account_kpis(points, periods, own, everyone),
        "observations": [p._asdict() for p in points],
        "own_mention_event_ids": sorted(own_ids),
    }
