"""Data-quality and gaming flags: detected from the facts, stored, shown, applied by profile.

=================  ==========================================================================
kind               when
=================  ==========================================================================
``burst``          one author posts about one output ``burst_posts`` times or more within
                   ``burst_minutes``: every post of the burst is flagged
``bot``            an author mentions ``bot_outputs`` outputs or more at ``bot_posts_per_day``
                   posts a day or more (over their active span): all their mentions
``repeated-text``  the same text (case and spacing aside) about one output ``repeat_copies``
                   times or more: every copy after the first
``count-jump``     a cumulative count that falls, or rises faster than ``jump_rise_per_day``
``self-promotion`` a mention by an account of one of the output's authors, or of the
                   organisation
=================  ==========================================================================

Flags are recomputed with every full scoring run. They are never used to delete anything;
a profile's ``flags.exclude`` decides which flagged mentions stop counting.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
)

from reachmeter.scoring.load import (
    author_expr,
    counted_event_filter,
    deleted_event_ids,
    driver_executemany,
    driver_rows,
)
from reachmeter.scoring.profiles import FlagRules, Profile
from reachmeter.store.schema import (
    Account,
    Authorship,
    Event,
    EventMatch,
    Observation,
    Output,
    OutputIdentifier,
    ScoreFlag,
    UTCDateTime,
)
from reachmeter.store.writer import storage_time, stored_time

__all__ = [
    "EventRow",
    "FlagRow",
    "ObservationRow",
    "account_key",
    "detect_flags",
    "detect_new_flags",
    "find_bots",
    "find_bursts",
    "find_count_jumps",
    "find_repeated_texts",
    "find_self_promotion",
    "flags_of",
]


class EventRow(NamedTuple):
    event_id: int
    output_id: int
    source_id: str
    author: str
    occurred_at: dt.datetime
    text: str


class ObservationRow(NamedTuple):
    observation_id: int
    output_id: int
    metric: str
    source_id: str
    value: float
    observed_at: dt.datetime


class FlagRow(NamedTuple):
    kind: str
    output_id: int | None
    event_id: int | None
    observation_id: int | None
    source_id: str | None
    subj_author: str | None
    detail: dict[str, Any]


def _event_flag(kind: str, event: EventRow, detail: dict[str, Any]) -> FlagRow:
    return FlagRow(
        kind, event.output_id, event.event_id, None, event.source_id, event.author, detail
    )


def find_bursts(events: Iterable[EventRow], rules: FlagRules) -> list[FlagRow]:
    """Posts of one author about one output, many within a short window."""
    groups: dict[tuple[int, str, str], list[EventRow]] = defaultdict(list)
    for event in events:
        groups[(event.output_id, event.source_id, event.author)].append(event)
    window = dt.timedelta(minutes=rules.burst_minutes)
    flags: list[FlagRow] = []
    for posts in groups.values():
        if len(posts) < rules.burst_posts:
            continue
        posts.sort(key=lambda e: (e.occurred_at, e.event_id))
        flagged: set[int] = set()
        low = 0
        for high in range(len(posts)):
            while posts[high].occurred_at - posts[low].occurred_at > window:
                low += 1
            if high - low + 1 >= rules.burst_posts:
                flagged.update(range(low, high + 1))
        for index in sorted(flagged):
            detail = {
                "posts": len(flagged),
                "within_minutes": rules.burst_minutes,
                "threshold": rules.burst_posts,
            }
            flags.append(_event_flag("burst", posts[index], detail))
    return flags


_SPACE = re.compile(r"\s+")
_URL = re.compile(r"https?://\S+|\b(?:doi:)?10\.\d{4,9}/\S+", re.IGNORECASE)


def _normal_text(text: str, title: str = "") -> str:
    if not text:
        return ""
    text = _SPACE.sub(" ", _URL.sub(" ", text)).casefold()
    title = _SPACE.sub(" ", title).strip().casefold()
    # The longest start of the title found in the text (posts often cut titles short).
    low, high = 0, len(title)
    while low < high:
        middle = (low + high + 1) // 2
        if title[:middle] in text:
            low = middle
        else:
            high = middle - 1
    if low >= 20:
        text = text.replace(title[:low], " ")
    return _SPACE.sub(" ", text.replace("...", " ").replace("\u2026", " ")).strip()


def find_repeated_texts(
    events: Iterable[EventRow], rules: FlagRules, titles: dict[int, str] | None = None
) -> list[FlagRow]:
    """Identical texts about one output: every copy after the first.

    Links and the output's own title are left out before comparing, so share buttons
    (title and link only) are not flagged; what remains must be ``repeat_min_chars`` long.
    """
    titles = titles or {}
    groups: dict[tuple[int, str], list[EventRow]] = defaultdict(list)
    for event in events:
        text = _normal_text(event.text, titles.get(event.output_id, ""))
        if len(text) >= rules.repeat_min_chars:
            groups[(event.output_id, text)].append(event)
    flags: list[FlagRow] = []
    for copies in groups.values():
        if len(copies) < rules.repeat_copies:
            continue
        copies.sort(key=lambda e: (e.occurred_at, e.event_id))
        first = copies[0]
        for copy in copies[1:]:
            detail = {"copies": len(copies), "first_event_id": first.event_id}
            flags.append(_event_flag("repeated-text", copy, detail))
    return flags


class AuthorActivity(NamedTuple):
    source_id: str
    author: str
    posts: int
    outputs: int
    first_at: dt.datetime
    last_at: dt.datetime
    fresh_posts: int  # posted within a week of the output's publication


def author_activity(
    events: Iterable[EventRow], published: dict[int, dt.date | None]
) -> list[AuthorActivity]:
    """Per author and source: posts, outputs, active span, posts in an output's first week."""
    groups: dict[tuple[str, str], list[EventRow]] = defaultdict(list)
    for event in events:
        groups[(event.source_id, event.author)].append(event)
    result: list[AuthorActivity] = []
    for (source_id, author), posts in groups.items():
        fresh = 0
        for post in posts:
            day = published.get(post.output_id)
            if day is not None and 0 <= (post.occurred_at.date() - day).days <= 7:
                fresh += 1
        result.append(
            AuthorActivity(
                source_id,
                author,
                len(posts),
                len({p.output_id for p in posts}),
                min(p.occurred_at for p in posts),
                max(p.occurred_at for p in posts),
                fresh,
            )
        )
    return result


def find_bots(
    activity: Iterable[AuthorActivity], rules: FlagRules
) -> dict[tuple[str, str], dict[str, Any]]:
    """Authors posting about many outputs at a very high rate, or nearly always at once.

    Bot-like: at least ``bot_outputs`` distinct outputs, and either ``bot_posts_per_day``
    posts a day over the author's active span, or ``bot_fresh_share`` of the posts within
    a week of the output's publication (a feed of new papers, not a reader).
    """
    bots: dict[tuple[str, str], dict[str, Any]] = {}
    for row in activity:
        if row.outputs < rules.bot_outputs:
            continue
        days = max((row.last_at - row.first_at).total_seconds() / 86400.0, 1.0)
        rate = row.posts / days
        fresh_share = row.fresh_posts / row.posts
        if rate >= rules.bot_posts_per_day or fresh_share >= rules.bot_fresh_share:
            bots[(row.source_id, row.author)] = {
                "posts": row.posts,
                "outputs": row.outputs,
                "posts_per_day": round(rate, 2),
                "fresh_share": round(fresh_share, 3),
            }
    return bots


def find_count_jumps(points: Iterable[ObservationRow], rules: FlagRules) -> list[FlagRow]:
    """Cumulative counts that fall, or rise faster than the profile allows."""
    series: dict[tuple[int, str, str], list[ObservationRow]] = defaultdict(list)
    for point in points:
        series[(point.output_id, point.metric, point.source_id)].append(point)
    flags: list[FlagRow] = []
    for values in series.values():
        values.sort(key=lambda p: (p.observed_at, p.observation_id))
        for before, after in itertools.pairwise(values):
            change = after.value - before.value
            days = max((after.observed_at - before.observed_at).total_seconds() / 86400.0, 1.0)
            if change < 0 or change / days > rules.jump_rise_per_day:
                detail = {
                    "metric": after.metric,
                    "from": before.value,
                    "to": after.value,
                    "days": round(days, 2),
                    "direction": "fall" if change < 0 else "rise",
                }
                flags.append(
                    FlagRow(
                        "count-jump",
                        after.output_id,
                        None,
                        after.observation_id,
                        after.source_id,
                        None,
                        detail,
                    )
                )
    return flags


_HOSTS = {"x.com": "twitter.com", "mobile.twitter.com": "twitter.com"}


@functools.lru_cache(maxsize=1 << 16)
def account_key(value: str) -> str:
    """An author URL or account URL, reduced so that the two spellings of one account meet."""
    text = value.strip().casefold()
    text = re.sub(r"^https?://", "", text)
    text = text.removeprefix("www.").rstrip("/")
    host, _, path = text.partition("/")
    return f"{_HOSTS.get(host, host)}/{path}" if path else _HOSTS.get(host, host)


def find_self_promotion(
    events: Iterable[EventRow],
    authors_of: dict[int, set[int]],
    accounts: dict[str, tuple[int | None, bool]],
) -> list[FlagRow]:
    """Mentions by an account owned by one of the output's authors, or by the organisation.

    ``accounts`` maps ``account_key`` of each account to (owner person id, owned by org).
    """
    flags: list[FlagRow] = []
    for event in events:
        owner = accounts.get(account_key(event.author))
        if owner is None:
            continue
        person, by_org = owner
        if by_org:
            flags.append(_event_flag("self-promotion", event, {"owner": "organisation"}))
        elif person is not None and person in authors_of.get(event.output_id, set()):
            flags.append(_event_flag("self-promotion", event, {"owner_person_id": person}))
    return flags


def _text_of(subj: Any) -> str:
    if isinstance(subj, dict):
        title = subj.get("title") or subj.get("text") or ""
        return title if isinstance(title, str) else ""
    return ""


def detect_flags(
    connection: Connection,
    profile: Profile,
    before: dt.datetime,
    *,
    output_ids: Collection[int] | None = None,
) -> int:
    """Detect and store all flags (or those of some outputs); return how many were stored."""
    rules = profile.flags
    scope: list[Any] = []
    if output_ids is not None:
        scope.append(EventMatch.output_id.in_(sorted(output_ids)))
    base = counted_event_filter(before, ())
    rows = connection.execute(
        select(
            Event.id,
            EventMatch.output_id,
            Event.source_id,
            author_expr,
            Event.occurred_at,
            Event.subj,
        )
        .join(EventMatch, EventMatch.event_id == Event.id)
        .where(and_(*base, *scope))
    )
    events = [EventRow(int(i), int(o), s, a, t, _text_of(subj)) for i, o, s, a, t, subj in rows]
    titles = {int(i): t or "" for i, t in connection.execute(select(Output.id, Output.title))}
    flags = find_bursts(events, rules) + find_repeated_texts(events, rules, titles)

    published: dict[int, dt.date | None] = {
        int(i): d for i, d in connection.execute(select(Output.id, Output.published_on))
    }
    bots = find_bots(author_activity(events, published), rules)
    if output_ids is not None:
        # An incremental run sees only some outputs: keep the bots found before.
        for source_id, author, detail in connection.execute(
            select(ScoreFlag.source_id, ScoreFlag.subj_author, ScoreFlag.detail).where(
                ScoreFlag.kind == "bot"
            )
        ):
            bots.setdefault((source_id, author), detail)
    for event in events:
        found = bots.get((event.source_id, event.author))
        if found is not None:
            flags.append(_event_flag("bot", event, found))

    flags += find_self_promotion(events, *_owners(connection))

    observation_scope: list[Any] = [
        Observation.cumulative.is_(True),
        Observation.observed_at < before,
    ]
    if output_ids is not None:
        observation_scope.append(OutputIdentifier.output_id.in_(sorted(output_ids)))
    points = connection.execute(
        select(
            Observation.id,
            OutputIdentifier.output_id,
            Observation.metric,
            Observation.source_id,
            Observation.value,
            Observation.observed_at,
        )
        .join(
            OutputIdentifier,
            and_(
                OutputIdentifier.scheme == Observation.obj_scheme,
                OutputIdentifier.value == Observation.obj_value,
            ),
        )
        .where(*observation_scope)
    )
    flags += find_count_jumps(
        (ObservationRow(int(i), int(o), m, s, float(v), t) for i, o, m, s, v, t in points), rules
    )

    clear = delete(ScoreFlag)
    if output_ids is not None:
        clear = clear.where(
            or_(ScoreFlag.output_id.in_(sorted(output_ids)), ScoreFlag.output_id.is_(None))
        )
    connection.execute(clear)
    now = dt.datetime.now(dt.UTC)
    payload = [{**flag._asdict(), "detected_at": now} for flag in flags]
    for start in range(0, len(payload), 5000):
        connection.execute(insert(ScoreFlag), payload[start : start + 5000])
    return len(flags)


def flags_of(connection: Connection, output_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The stored flags of some outputs."""
    rows = connection.execute(_FLAGS_OF, {"ids": sorted(output_ids)})
    return [dict(row._mapping) for row in rows]


# Read on every output page and explain: built once, the ids bound when it runs.
_FLAGS_OF = (
    select(
        ScoreFlag.kind,
        ScoreFlag.output_id,
        ScoreFlag.event_id,
        ScoreFlag.observation_id,
        ScoreFlag.source_id,
        ScoreFlag.subj_author,
        ScoreFlag.detail,
    )
    .where(ScoreFlag.output_id.in_(bindparam("ids", expanding=True)))
    .order_by(ScoreFlag.id)
)


# What an incremental run reads of an event: no text (only repeated texts need it, and
# they wait for the next full run), and the rest from the match, which copies it; so the
# event row itself is never read.
_MATCH_FIELDS = select(
    EventMatch.event_id,
    EventMatch.output_id,
    EventMatch.source_id,
    EventMatch.author,
    EventMatch.occurred_at,
)


def _event_rows(connection: Connection, query: Any, deleted: Collection[int]) -> list[EventRow]:
    """The events ``query`` (``_MATCH_FIELDS`` with joins and conditions) finds, but for
    the ``deleted`` ones. Rows come from the driver's cursor, times converted here."""
    return [
        EventRow(int(i), int(o), s, a, stored_time(t), "")
        for rows in driver_rows(connection, [query])
        for i, o, s, a, t in rows
        if i not in deleted
    ]


def detect_new_flags(
    connection: Connection, profile: Profile, before: dt.datetime, after_match: int
) -> int:
    """Flag the events matched after ``after_match`` (an incremental run); return how many.

    Self-promotion, mentions by authors already flagged as bots, and bursts that the new
    events make or join are flagged now; repeated texts, count jumps and new bots wait for
    the next full run, which re-detects everything.
    """
    rules = profile.flags
    deleted = deleted_event_ids(connection)
    new = _event_rows(
        connection,
        _MATCH_FIELDS.where(EventMatch.id > after_match, EventMatch.occurred_at < before),
        deleted,
    )
    if not new:
        return 0
    flags: list[FlagRow] = []
    bots = {
        (source_id, author): detail
        for source_id, author, detail in connection.execute(
            select(ScoreFlag.source_id, ScoreFlag.subj_author, ScoreFlag.detail).where(
                ScoreFlag.kind == "bot"
            )
        )
    }
    for event in new:
        found = bots.get((event.source_id, event.author))
        if found is not None:
            flags.append(_event_flag("bot", event, found))
    flags += find_self_promotion(new, *_owners(connection, {e.output_id for e in new}))
    # A burst that a new event makes or joins lies within the burst window of it: read the
    # same author's posts about the same output around the new ones (by the matches'
    # index), not every event of every output the new ones are about.
    nearby = _events_around(
        connection,
        new,
        dt.timedelta(minutes=rules.burst_minutes),
        before,
        deleted,
        at_least=rules.burst_posts,
    )
    flags += find_bursts(nearby, rules)
    known = {
        (kind, event_id)
        for kind, event_id in connection.execute(
            select(ScoreFlag.kind, ScoreFlag.event_id).where(
                ScoreFlag.event_id.in_(sorted({f.event_id for f in flags if f.event_id}))
            )
        )
    }
    fresh = [f for f in flags if (f.kind, f.event_id) not in known]
    now = dt.datetime.now(dt.UTC)
    payload = [{**flag._asdict(), "detected_at": now} for flag in fresh]
    for start in range(0, len(payload), 5000):
        connection.execute(insert(ScoreFlag), payload[start : start + 5000])
    return len(fresh)


# The periods to read events in, per output, source and author; a temporary table, so not
# in Base.metadata.
_periods_table = Table(
    "tmp_flag_periods",
    MetaData(),
    Column("output_id", BigInteger().with_variant(Integer(), "sqlite")),
    Column("source_id", String(100)),
    Column("author", Text),
    Column("low", UTCDateTime()),
    Column("high", UTCDateTime()),
    prefixes=["TEMPORARY"],
)


def _events_around(
    connection: Connection,
    events: Sequence[EventRow],
    reach: dt.timedelta,
    before: dt.datetime,
    deleted: Collection[int],
    at_least: int = 1,
) -> list[EventRow]:
    """The matched events (not ``deleted``) by the same author about the same output from
    the same source within ``reach`` of ``events`` and before ``before``, each once: the
    periods around the events are merged per output, source and author. Only those of
    an author with ``at_least`` posts in their periods (deleted ones included).

    Each period is read by the matches' (output, source, author, time) index with both
    its ends.
    """
    last = before - dt.timedelta(microseconds=1)
    sqlite = connection.dialect.name == "sqlite"
    periods: list[tuple[Any, ...]] = []
    for (output_id, source_id, author), group in itertools.groupby(
        sorted(events, key=lambda e: (e.output_id, e.source_id, e.author, e.occurred_at)),
        key=lambda e: (e.output_id, e.source_id, e.author),
    ):
        spans: list[list[dt.datetime]] = []
        for event in group:
            if spans and event.occurred_at - reach <= spans[-1][1]:
                spans[-1][1] = event.occurred_at + reach
            else:
                spans.append([event.occurred_at - reach, event.occurred_at + reach])
        periods += [
            (
                output_id,
                source_id,
                author,
                storage_time(low, sqlite),
                storage_time(min(high, last), sqlite),
            )
            for low, high in spans
        ]
    _periods_table.create(connection, checkfirst=True)
    try:
        connection.execute(_periods_table.delete())
        driver_executemany(
            connection,
            f"INSERT INTO {_periods_table.name} VALUES ({', '.join(['{mark}'] * 5)})",  # noqa: S608
            periods,
        )
        period = _periods_table.c
        within = and_(
            EventMatch.output_id == period.output_id,
            EventMatch.source_id == period.source_id,
            EventMatch.author == period.author,
            EventMatch.occurred_at >= period.low,
            EventMatch.occurred_at <= period.high,
        )
        # The database counts each author's posts in their periods first: most have too
        # few to make a burst, and their rows are never read.
        busy = (
            select(period.output_id, period.source_id, period.author)
            .join(EventMatch, within)
            .group_by(period.output_id, period.source_id, period.author)
            .having(func.count() >= at_least)
            .cte("busy")
        )
        return _event_rows(
            connection,
            _MATCH_FIELDS.join(_periods_table, within).join(
                busy,
                and_(
                    busy.c.output_id == period.output_id,
                    busy.c.source_id == period.source_id,
                    busy.c.author == period.author,
                ),
            ),
            deleted,
        )
    finally:
        _periods_table.drop(connection, checkfirst=True)


def _owners(
    connection: Connection, output_ids: Collection[int] | None = None
) -> tuple[dict[int, set[int]], dict[str, tuple[int | None, bool]]]:
    """The authors of the outputs (``output_ids``, or all) and the owners of the accounts."""
    authors_of: dict[int, set[int]] = defaultdict(set)
    query = select(Authorship.output_id, Authorship.person_id)
    chunks: list[Any] = [None]
    if output_ids is not None:
        ordered = sorted(output_ids)
        chunks = [ordered[start : start + 500] for start in range(0, len(ordered), 500)]
    for chunk in chunks:
        chosen = query if chunk is None else query.where(Authorship.output_id.in_(chunk))
        for output_id, person_id in connection.execute(chosen):
            authors_of[int(output_id)].add(int(person_id))
    accounts: dict[str, tuple[int | None, bool]] = {}
    for url, handle, person, by_org in connection.execute(
        select(Account.url, Account.handle, Account.owner_person_id, Account.owned_by_org)
    ):
        for value in (url, handle if handle and "/" in handle else None):
            if value:
                owner = int(person) if person is not None else None
                accounts[account_key(value)] = (owner, bool(by_org))
    return authors_of, accounts
