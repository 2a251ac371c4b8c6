"""Computing scores over a store and keeping them: full recompute, incremental update, reads.

Scores are views: ``compute_scores`` replaces every stored score of a profile for an
``as_of`` date, so running it twice gives the same rows. Each run records the profile in
the methods log when its content is new.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np
import orjson
from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, tuple_

from reachmeter.scoring.compute import (
    HISTORY_PERIODS,
    ContextInput,
    ContextTable,
    CountScorer,
    as_of_end,
    context_of,
    no_collection,
    observation_totals,
)
from reachmeter.scoring.load import (
    CountPlan,
    OutputRow,
    count_by_author,
    count_range,
    counting,
    driver_executemany,
    event_ids_by_key,
    load_counts,
    load_merged,
    load_observations,
    load_outputs,
    members_of,
    roots,
)
from reachmeter.scoring.profiles import Profile
from reachmeter.store import Store
from reachmeter.store.corrections import MATCH_KEY
from reachmeter.store.engine import make_engine
from reachmeter.store.schema import (
    Correction,
    EventMatch,
    Meta,
    Observation,
    Output,
    OutputIdentifier,
    Score,
    ScoreFlag,
    ScoreSnapshot,
    ScoringMethod,
)
from reachmeter.store.writer import storage_time

__all__ = [
    "ScoreRun",
    "compute_scores",
    "iter_scores",
    "latest_as_of",
    "methods_log",
    "read_score",
    "record_method",
    "top_scores",
    "update_scores",
]

_CHUNK = 5000
_LOOKUP_CHUNK = 400


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass
class ScoreRun:
    """What a (re)computation did."""

    profile: str
    version: str
    as_of: dt.date
    outputs: int = 0
    scored: int = 0
    flags: int = 0
    new_method: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def record_method(connection: Connection, profile: Profile) -> bool:
    """Add the profile to the methods log if this content of it is new; True if added."""
    known = connection.execute(
        select(ScoringMethod.id).where(
            ScoringMethod.profile_name == profile.name,
            ScoringMethod.profile_sha256 == profile.sha256,
        )
    ).first()
    if known is not None:
        return False
    connection.execute(
        insert(ScoringMethod).values(
            profile_name=profile.name,
            profile_version=profile.version,
            profile_sha256=profile.sha256,
            changed_at=dt.datetime.now(dt.UTC),
            description=profile.description,
            profile_text=profile.text,
        )
    )
    return True


def methods_log(store: Store, profile_name: str | None = None) -> list[dict[str, Any]]:
    """The methods log, oldest first: each profile content with the date it was first used."""
    query = select(ScoringMethod).order_by(ScoringMethod.changed_at, ScoringMethod.id)
    if profile_name:
        query = query.where(ScoringMethod.profile_name == profile_name)
    with store.session() as session:
        return [
            {
                "profile": m.profile_name,
                "version": m.profile_version,
                "sha256": m.profile_sha256,
                "changed_at": m.changed_at.isoformat(),
                "description": m.description,
            }
            for m in session.scalars(query)
        ]


class _Scored(NamedTuple):
    """An output's score as stored, its breakdown and history already JSON text."""

    output_id: int
    score: float
    mentions: int
    breakdown: str
    history: str
    flags: int


def _score_rows(
    connection: Connection,
    profile: Profile,
    as_of: dt.date,
    root: dict[int, int],
    member_ids: Collection[int] | None,
    kept_ids: Collection[int],
) -> list[_Scored]:
    """Score, breakdown and history of each kept output.

    An output with counts alone (most of them) is written as JSON straight from the
    parts of its score (``CountScorer.texts``).
    """
    end = as_of_end(as_of)
    cutoffs = [end] + [end - length for length in HISTORY_PERIODS.values() if length is not None]
    observed = load_observations(connection, end, root, member_ids)
    flag_counts = _flag_counts(connection, root, member_ids)
    texts: dict[int, tuple[float, int, str, str]] = {}
    if member_ids is None and len(kept_ids) >= SPLIT_OUTPUTS and _may_split():
        counts, texts = _counted_in_two(connection, profile, cutoffs, root, kept_ids, observed)
    else:
        counts = load_counts(connection, profile, cutoffs, root, member_ids)
    scorer = CountScorer(profile)
    empty = scorer.texts({})
    rows: list[_Scored] = []
    for output_id in kept_ids:
        seen = counts.get(output_id)
        points = observed.get(output_id)
        done = texts.get(output_id)
        if done is not None:
            score, mentions, breakdown, history = done
        elif points is None:
            score, mentions, breakdown, history = scorer.texts(seen) if seen else empty
        else:
            totals_at = {"now": observation_totals(points, end)}
            for period, length in HISTORY_PERIODS.items():
                if length is not None:
                    totals_at[period] = observation_totals(points, end - length)
            result, changes = scorer.score(seen or {}, totals_at)
            score, mentions = result.score, result.mentions
            breakdown = orjson.dumps(result.breakdown()).decode()
            history = orjson.dumps(changes).decode()
        rows.append(
            _Scored(output_id, score, mentions, breakdown, history, flag_counts.get(output_id, 0))
        )
    return rows


# A full run over this many outputs or more counts and scores the upper half of them in
# a second process (when the machine has a second core).
SPLIT_OUTPUTS = 200_000


def _may_split() -> bool:
    """Whether a second process may help: a second core, and a process allowed children
    (a daemonic one is not)."""
    return (os.cpu_count() or 1) > 1 and not multiprocessing.current_process().daemon


def _counted_in_two(
    connection: Connection,
    profile: Profile,
    cutoffs: list[dt.datetime],
    root: dict[int, int],
    kept_ids: Collection[int],
    observed: Collection[int],
) -> tuple[dict[int, dict[str, list[int]]], dict[int, tuple[float, int, str, str]]]:
    """``load_counts`` of every output, half of it in a second process, each process
    scoring what it counted: the scores of the outputs without observations (as
    ``CountScorer.texts``), and the counts of those with observations (scored with them by
    the caller).

    The second process reads what this transaction read: on SQLite this transaction
    holds the write lock (it has written the run's cursor), so nothing is committed in
    between; on PostgreSQL it imports this transaction's snapshot.
    """
    ordered = sorted(kept_ids)
    middle = ordered[len(ordered) // 2]
    url = connection.engine.url.render_as_string(hide_password=False)
    snapshot = None
    if connection.dialect.name == "postgresql":
        snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
    spawn = multiprocessing.get_context("spawn")
    with (
        counting(connection, profile, cutoffs, root) as (plan, counted),
        ProcessPoolExecutor(1, mp_context=spawn) as pool,
    ):
        upper = pool.submit(_count_and_score, url, snapshot, profile, plan, set(observed), middle)
        counts = count_range(connection, plan, None, middle)
        counts.update(count_by_author(connection, plan, counted, plan.by_author))
        # Scored here while the second process works on the upper half.
        texts, counts = _scored_texts(profile, counts, observed)
        upper_texts, upper_counts = upper.result()
    texts.update(upper_texts)
    counts.update(upper_counts)
    return counts, texts


def _scored_texts(
    profile: Profile, counts: dict[int, dict[str, list[int]]], observed: Collection[int]
) -> tuple[dict[int, tuple[float, int, str, str]], dict[int, dict[str, list[int]]]]:
    """``CountScorer.texts`` of the outputs without observations; the counts of those with
    observations as they are (they are scored with their observations)."""
    scorer = CountScorer(profile)
    with no_collection():
        texts = {o: scorer.texts(kinds) for o, kinds in counts.items() if o not in observed}
    return texts, {o: kinds for o, kinds in counts.items() if o in observed}


_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+)+")


def _count_and_score(
    url: str,
    snapshot: str | None,
    profile: Profile,
    plan: CountPlan,
    observed: set[int],
    low: int,
) -> tuple[dict[int, tuple[float, int, str, str]], dict[int, dict[str, list[int]]]]:
    """In a second process: count the outputs from ``low`` up (``count_range``), and score
    those without observations; the counts of those with observations come back as they
    are."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if snapshot is not None:
                if not _SNAPSHOT_ID.fullmatch(snapshot):
                    raise ValueError(f"not a PostgreSQL snapshot id: {snapshot!r}")
                connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # A utility statement: no parameters, so the checked id goes in as text.
                connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            with no_collection():
                counts = count_range(connection, plan, low)
    finally:
        engine.dispose()
    return _scored_texts(profile, counts, observed)


_SCORE_COLUMNS = (
    "output_id",
    "profile_name",
    "profile_version",
    "as_of",
    "score",
    "mentions",
    "breakdown",
    "context",
    "history",
    "flags",
    "computed_at",
)


def _store_scores(
    connection: Connection,
    profile: Profile,
    as_of: dt.date,
    rows: list[_Scored],
    contexts: dict[int, dict[str, Any]],
) -> None:
    """Store score rows, replacing those stored for the same profile, date and output.

    Through the DBAPI, since SQLAlchemy's per-row JSON processing is slow, and as an upsert:
    on a second run for a day, changing rows in place costs half of deleting them and
    inserting them again.
    """
    sqlite = connection.dialect.name == "sqlite"
    columns, marks = ", ".join(_SCORE_COLUMNS), ", ".join(["{mark}"] * len(_SCORE_COLUMNS))
    changed = ", ".join(
        f"{column} = excluded.{column}"
        for column in _SCORE_COLUMNS
        if column not in ("output_id", "profile_name", "as_of")
    )
    sql = (
        f"INSERT INTO scores ({columns}) VALUES ({marks})"  # noqa: S608  (constant names)
        f" ON CONFLICT (profile_name, as_of, output_id) DO UPDATE SET {changed}"
    )
    day = as_of.isoformat() if sqlite else as_of
    now = storage_time(dt.datetime.now(dt.UTC), sqlite)
    name, version = profile.name, profile.version
    dumps = orjson.dumps
    for start in range(0, len(rows), _CHUNK):
        batch = [
            (
                row.output_id,
                name,
                version,
                day,
                row.score,
                row.mentions,
                row.breakdown,
                dumps(contexts[row.output_id]).decode(),
                row.history,
                row.flags,
                now,
            )
            for row in rows[start : start + _CHUNK]
        ]
        driver_executemany(connection, sql, batch)


def _flag_counts(
    connection: Connection, root: dict[int, int], member_ids: Collection[int] | None
) -> dict[int, int]:
    query = (
        select(ScoreFlag.output_id, func.count())
        .where(ScoreFlag.output_id.is_not(None))
        .group_by(ScoreFlag.output_id)
    )
    if member_ids is not None:
        query = query.where(ScoreFlag.output_id.in_(sorted(member_ids)))
    counts: dict[int, int] = {}
    for output_id, count in connection.execute(query):
        if output_id is None:
            continue
        kept = root.get(int(output_id), int(output_id))
        counts[kept] = counts.get(kept, 0) + int(count)
    return counts


def _context_inputs(rows: list[_Scored], outputs: dict[int, OutputRow]) -> list[ContextInput]:
    return [
        ContextInput(
            row.output_id,
            row.score,
            row.mentions,
            outputs[row.output_id].venue,
            outputs[row.output_id].published_on,
        )
        for row in rows
    ]


class _Steps:
    """How long each step of a run took, in ``ScoreRun.seconds``."""

    def __init__(self, run: ScoreRun) -> None:
        self.run = run
        self.started = self.last = time.perf_counter()

    def done(self, step: str) -> None:
        now = time.perf_counter()
        self.run.seconds[step] = now - self.last
        self.last = now

    def finish(self) -> None:
        self.run.seconds["total"] = time.perf_counter() - self.started


def compute_scores(
    store: Store,
    profile: Profile,
    as_of: dt.date | None = None,
    *,
    flags: bool = True,
) -> ScoreRun:
    """Recompute and store every output's score, breakdown, history and context.

    ``as_of`` (default today, UTC) counts facts up to the end of that day. With ``flags``,
    the data-quality flags are detected again first (the profile decides which of them
    stop a mention counting). ``ScoreRun.seconds`` says how long each step took.
    """
    from reachmeter.scoring.flags import detect_flags  # flags use the loaders above

    as_of = as_of or _today()
    run = ScoreRun(profile.name, profile.version, as_of)
    steps = _Steps(run)
    with store.begin(checkpoint_later=True) as connection:
        _roomy(connection)
        cursor = _cursor(connection)
        # Written first: on SQLite the run then holds the write lock, so a second process
        # reading the store sees what this one read (``_counted_in_two``).
        _set_meta(connection, _cursor_key(profile, as_of), orjson.dumps(cursor).decode())
        run.new_method = record_method(connection, profile)
        if flags:
            run.flags = detect_flags(connection, profile, as_of_end(as_of))
            steps.done("flags")
        # Millions of small objects, none of them in a cycle: collecting would walk them
        # again and again for nothing.
        with no_collection():
            outputs = load_outputs(connection)
            root = roots(outputs)
            kept = [i for i, row in outputs.items() if row.merged_into_id is None]
            run.outputs = len(kept)
            rows = _score_rows(connection, profile, as_of, root, None, kept)
            steps.done("scores")
            table = ContextTable.from_inputs(_context_inputs(rows, outputs))
            contexts = context_of(table)
            steps.done("context")
            _store_scores(connection, profile, as_of, rows, contexts)
        # Rows of outputs merged since an earlier run of the day are no longer scores.
        merged = sorted(i for i, row in outputs.items() if row.merged_into_id is not None)
        for start in range(0, len(merged), _LOOKUP_CHUNK):
            connection.execute(
                delete(Score).where(
                    Score.profile_name == profile.name,
                    Score.as_of == as_of,
                    Score.output_id.in_(merged[start : start + _LOOKUP_CHUNK]),
                )
            )
        _save_table(connection, profile, as_of, table)
        run.scored = len(rows)
        steps.done("store")
    steps.finish()
    return run


# An incremental run adds the rows it changed as a part of their own; past this many parts
# the table is kept whole again.
_TABLE_PARTS = 32
_TABLE_DAYS = 7  # a full run keeps the tables of this many days before its own


def _save_table(
    connection: Connection,
    profile: Profile,
    as_of: dt.date,
    table: ContextTable,
    changed: ContextTable | None = None,
) -> None:
    """Keep the outputs with mentions of ``table``: what an incremental run compares with.

    With ``changed`` (an incremental run's fresh rows, already in ``table``), only those
    are added, as the next part, while there are fewer than ``_TABLE_PARTS``: writing a
    million rows again for ten thousand changed ones would cost more than the run.
    """
    snapshot = (ScoreSnapshot.profile_name == profile.name, ScoreSnapshot.as_of == as_of)
    now = dt.datetime.now(dt.UTC)
    if changed is not None:
        last = connection.execute(select(func.max(ScoreSnapshot.part)).where(*snapshot)).scalar()
        if last is not None and last + 1 < _TABLE_PARTS:
            connection.execute(
                insert(ScoreSnapshot).values(
                    profile_name=profile.name,
                    as_of=as_of,
                    part=last + 1,
                    data=changed.to_bytes(),
                    saved_at=now,
                )
            )
            return
    kept = table.where(table.mentions > 0)
    connection.execute(delete(ScoreSnapshot).where(*snapshot))
    # Tables of days long past go: an incremental run for such a day reads the stored
    # scores instead.
    connection.execute(
        delete(ScoreSnapshot).where(
            ScoreSnapshot.profile_name == profile.name,
            ScoreSnapshot.as_of < as_of - dt.timedelta(days=_TABLE_DAYS),
        )
    )
    connection.execute(
        insert(ScoreSnapshot).values(
            profile_name=profile.name, as_of=as_of, part=0, data=kept.to_bytes(), saved_at=now
        )
    )


def _stored_table(
    connection: Connection, profile: Profile, as_of: dt.date, leave_out: Collection[int]
) -> ContextTable:
    """The outputs with mentions that the stored scores of a profile and day compare with
    (those in ``leave_out`` aside): the kept table with its parts applied in order, or if
    there is none (a store scored before tables were kept), the stored scores with each
    output's venue and date."""
    parts = connection.execute(
        select(ScoreSnapshot.data)
        .where(ScoreSnapshot.profile_name == profile.name, ScoreSnapshot.as_of == as_of)
        .order_by(ScoreSnapshot.part)
    ).scalars()
    table: ContextTable | None = None
    try:
        for data in parts:
            part = ContextTable.from_bytes(data)
            table = part if table is None else table.updated(part.inputs())
    except ValueError:
        table = None  # unreadable: worked out again from the stored scores below
    if table is None:
        outputs = load_outputs(connection)
        table = ContextTable.from_inputs(
            ContextInput(
                int(output_id),
                float(score),
                int(mentions),
                outputs[int(output_id)].venue,
                outputs[int(output_id)].published_on,
            )
            for output_id, score, mentions in connection.execute(
                select(Score.output_id, Score.score, Score.mentions).where(
                    Score.profile_name == profile.name, Score.as_of == as_of, Score.mentions > 0
                )
            )
            if int(output_id) in outputs
        )
    if leave_out:
        left_out = np.fromiter(leave_out, np.int64, len(leave_out))
        table = table.where(~np.isin(table.output_ids, left_out))
    return table


def _cursor_key(profile: Profile, as_of: dt.date) -> str:
    return f"scoring.last_event_id.{profile.name}.{as_of.isoformat()}"


def _set_meta(connection: Connection, key: str, value: str) -> None:
    connection.execute(delete(Meta).where(Meta.key == key))
    connection.execute(insert(Meta).values(key=key, value=value))


def _roomy(connection: Connection) -> None:
    """A larger SQLite page cache and memory map for a run that reads every event."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA cache_size=-262144")
        connection.exec_driver_sql("PRAGMA mmap_size=1073741824")


def _cursor(connection: Connection) -> dict[str, int]:
    """The last match, correction and observation ids: what a score run has seen."""
    return {
        name: int(connection.execute(select(func.max(column))).scalar() or 0)
        for name, column in (
            ("match", EventMatch.id),
            ("correction", Correction.id),
            ("observation", Observation.id),
        )
    }


def _changed_outputs(connection: Connection, since: dict[str, int]) -> set[int]:
    """Outputs with matches, corrections or observations added after ``since``.

    The few new corrections and observations are read first and their events and outputs
    then looked up by index (an event by its key's hash, an output by its identifier), so
    the cost follows what is new, not the size of the store.
    """
    # Without DISTINCT, which would read the whole (output, ...) index rather than the new
    # matches by id.
    changed = {
        int(o)
        for (o,) in connection.execute(
            select(EventMatch.output_id).where(EventMatch.id > since.get("match", 0))
        )
    }
    keys = {
        key
        for (key,) in connection.execute(
            select(Correction.target_key).where(
                Correction.target_kind == "event", Correction.id > since.get("correction", 0)
            )
        )
    }
    event_ids = sorted({i for ids in event_ids_by_key(connection, keys).values() for i in ids})
    for start in range(0, len(event_ids), _LOOKUP_CHUNK):
        changed |= {
            int(o)
            for (o,) in connection.execute(
                select(EventMatch.output_id).where(
                    EventMatch.event_id.in_(event_ids[start : start + _LOOKUP_CHUNK])
                )
            )
        }
    # An accepted wrong-match report removed a match: its output is rescored.
    for (key,) in connection.execute(
        select(Correction.target_key).where(
            Correction.target_kind == "match", Correction.id > since.get("correction", 0)
        )
    ):
        found = MATCH_KEY.match(key)
        if found:
            changed.add(int(found.group(2)))
    identifiers = sorted(
        {
            (scheme, value)
            for scheme, value in connection.execute(
                select(Observation.obj_scheme, Observation.obj_value)
                .where(
                    Observation.id > since.get("observation", 0),
                    Observation.obj_scheme.is_not(None),
                )
                .distinct()
            )
        }
    )
    for start in range(0, len(identifiers), _LOOKUP_CHUNK):
        chunk = identifiers[start : start + _LOOKUP_CHUNK]
        changed |= {
            int(o)
            for (o,) in connection.execute(
                select(OutputIdentifier.output_id).where(
                    tuple_(OutputIdentifier.scheme, OutputIdentifier.value).in_(chunk)
                )
            )
        }
    return changed


def update_scores(store: Store, profile: Profile, as_of: dt.date | None = None) -> ScoreRun:
    """Rescore only the outputs with new matches, corrections or observations since the last
    run for this profile and day.

    The new events are flagged (``detect_new_flags``), and the changed outputs get fresh
    scores, history and context against the others as the last run left them (kept as a
    ``ContextTable``); the others' context is refreshed by the next full
    ``compute_scores``. Falls back to a full recompute when the profile changed or nothing
    is stored yet. The cost follows what changed: no step reads every output or score.
    """
    from reachmeter.scoring.flags import detect_new_flags

    as_of = as_of or _today()
    with store.engine.connect() as connection:
        stored = connection.execute(
            select(Meta.value).where(Meta.key == _cursor_key(profile, as_of))
        ).scalar()
        known_profile = connection.execute(
            select(ScoringMethod.id).where(
                ScoringMethod.profile_name == profile.name,
                ScoringMethod.profile_sha256 == profile.sha256,
            )
        ).first()
    if stored is None or known_profile is None:
        return compute_scores(store, profile, as_of)
    since = orjson.loads(stored)
    run = ScoreRun(profile.name, profile.version, as_of)
    steps = _Steps(run)
    with store.begin(checkpoint_later=True) as connection:
        cursor = _cursor(connection)
        changed = _changed_outputs(connection, since)
        if not changed:
            _set_meta(connection, _cursor_key(profile, as_of), orjson.dumps(cursor).decode())
            steps.finish()
            return run
        merged = load_merged(connection)
        members = members_of(merged, changed)
        root = roots(merged)
        kept = sorted(set(members.values()))
        steps.done("changed")
        # Hundreds of thousands of small objects, none of them in a cycle (see
        # ``compute_scores``).
        with no_collection():
            run.flags = detect_new_flags(
                connection, profile, as_of_end(as_of), since.get("match", 0)
            )
            steps.done("flags")
            rows = _score_rows(connection, profile, as_of, root, set(members), kept)
            run.outputs = run.scored = len(rows)
            steps.done("scores")
            outputs: dict[int, OutputRow] = {}
            for start in range(0, len(kept), _LOOKUP_CHUNK):
                outputs.update(
                    load_outputs(connection, Output.id.in_(kept[start : start + _LOOKUP_CHUNK]))
                )
            fresh = _context_inputs(rows, outputs)
            table = _stored_table(connection, profile, as_of, merged).updated(fresh)
            contexts = context_of(table, only=kept)
            steps.done("context")
        _store_scores(connection, profile, as_of, rows, contexts)
        _save_table(connection, profile, as_of, table, ContextTable.from_inputs(fresh))
        _set_meta(connection, _cursor_key(profile, as_of), orjson.dumps(cursor).decode())
        steps.done("store")
    steps.finish()
    return run


def latest_as_of(store: Store, profile_name: str) -> dt.date | None:
    """The latest date a profile's scores were computed for."""
    with store.engine.connect() as connection:
        value: dt.date | None = connection.execute(
            select(func.max(Score.as_of)).where(Score.profile_name == profile_name)
        ).scalar()
        return value


_STORED_SCORE = tuple(cast(Table, Score.__table__).columns)
_SCORE_OF = select(*_STORED_SCORE).where(
    Score.profile_name == bindparam("profile"), Score.output_id == bindparam("output_id")
)
_SCORE_ON_DAY = _SCORE_OF.where(Score.as_of == bindparam("as_of")).limit(1)
_LATEST_SCORE = _SCORE_OF.order_by(Score.as_of.desc()).limit(1)


def _score_dict(score: Any) -> dict[str, Any]:
    """A stored score (a ``Score`` or a row of its columns) as the API and CLI show it."""
    return {
        "output_id": score.output_id,
        "profile": score.profile_name,
        "profile_version": score.profile_version,
        "as_of": score.as_of.isoformat(),
        "score": score.score,
        "mentions": score.mentions,
        "breakdown": score.breakdown,
        "context": score.context,
        "history": score.history,
        "flags": score.flags,
        "computed_at": score.computed_at.isoformat(),
    }


def read_score(
    store: Store, output_id: int, profile_name: str = "default", as_of: dt.date | None = None
) -> dict[str, Any] | None:
    """A stored score with its breakdown, context and history (latest ``as_of`` by default)."""
    # Read on every page, badge and API call: columns rather than an ORM object, and
    # statements built once (building them cost more than running them).
    with store.engine.connect() as connection:
        if as_of:
            found = connection.execute(
                _SCORE_ON_DAY, {"profile": profile_name, "output_id": output_id, "as_of": as_of}
            )
        else:
            found = connection.execute(
                _LATEST_SCORE, {"profile": profile_name, "output_id": output_id}
            )
        row = found.first()
    return _score_dict(row) if row is not None else None


def top_scores(
    store: Store, profile_name: str, as_of: dt.date, limit: int = 10
) -> list[dict[str, Any]]:
    """The highest stored scores, with each output's title and venue."""
    with store.session() as session:
        rows = session.execute(
            select(Score, Output.title, Output.venue)
            .join(Output, Output.id == Score.output_id)
            .where(Score.profile_name == profile_name, Score.as_of == as_of)
            .order_by(Score.score.desc(), Score.output_id)
            .limit(limit)
        )
        return [
            {**_score_dict(score), "title": title, "venue": venue} for score, title, venue in rows
        ]


def iter_scores(store: Store, profile_name: str, as_of: dt.date) -> Iterator[dict[str, Any]]:
    """Every stored score of a profile for a date, by output id."""
    with store.session() as session:
        rows = session.scalars(
            select(Score)
            .where(Score.profile_name == profile_name, Score.as_of == as_of)
            .order_by(Score.output_id)
            .execution_options(yield_per=_CHUNK)
        )
        for score in rows:
            yield _score_dict(score)
