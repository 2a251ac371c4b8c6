"""Appending facts in batches: events, observations, corrections and quarantined records.

Each batch is one transaction, so a process killed mid-way leaves whole batches behind and
a re-run stores the rest exactly once: every fact has a key and duplicates are ignored by
the database (``INSERT ... ON CONFLICT DO NOTHING``), never updated.

Rows are written through the DBAPI ``executemany`` of the connection with values already
in storage form; SQLAlchemy's per-row type processing would cost more than the insert.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from reachmeter.records import (
    CorrectionRecord,
    EventRecord,
    ObservationRecord,
    key_hash,
)
from reachmeter.store import Store, create_deferrable_indexes
from reachmeter.store.schema import DEFERRABLE_INDEXES, Account, Event, Evidence

__all__ = [
    "BatchResult",
    "FactWriter",
    "PreparedBatch",
    "Quarantine",
    "ensure_evidence",
    "event_row",
    "prepare_batch",
    "storage_time",
    "stored_time",
]


@dataclass(frozen=True, slots=True)
class Quarantine:
    origin: str
    line: int
    reason: str
    raw: str


@dataclass(slots=True)
class BatchResult:
    events: int = 0
    duplicates: int = 0
    observations: int = 0
    corrections: int = 0
    quarantined: int = 0
    problems: list[Quarantine] = field(default_factory=list)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def ensure_evidence(
    connection: Connection,
    *,
    source_id: str,
    source_version: str,
    request_url: str,
    payload_sha256: str,
    collected_at: dt.datetime,
    run_id: int | None,
    payload: str | None = None,
) -> int:
    """The id of the evidence record for what was seen, created once."""
    table = Evidence.__table__
    found = connection.execute(
        select(table.c.id).where(
            table.c.source_id == source_id,
            table.c.request_url == request_url,
            table.c.payload_sha256 == payload_sha256,
        )
    ).scalar()
    if found is not None:
        return int(found)
    result = connection.execute(
        insert(Evidence).values(
            source_id=source_id,
            source_version=source_version,
            request_url=request_url,
            payload_sha256=payload_sha256,
            payload=payload,
            collected_at=collected_at,
            run_id=run_id,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def storage_time(value: dt.datetime, sqlite: bool) -> Any:
    """A time as the column stores it: SQLAlchemy's SQLite text form, or the datetime."""
    if sqlite:
        if value.utcoffset():
            value = value.astimezone(dt.UTC)
        return value.isoformat(" ", "microseconds")[:26]
    return value


def stored_time(value: Any) -> dt.datetime:
    """A time as the driver returns it from a column (``storage_time``'s text on SQLite, a
    datetime from PostgreSQL), as an aware UTC datetime."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a stored time: {value!r}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _storage_date(value: dt.date | None, sqlite: bool) -> Any:
    if value is None:
        return None
    return value.isoformat() if sqlite else value


@dataclass(slots=True)
class PreparedBatch:
    """A batch in storage form, ready for ``executemany``; built without the database.

    Event rows are ``EVENT_COLUMNS`` tuples, and ``event_origins`` gives each row's origin
    and line (for the rare hash collision). Observations keep their record: their account
    is looked up in the store when written. The lines of a batch read from a part of a
    file count from that part's start; ``line_base`` is the number of lines before it.
    """

    events: list[tuple[Any, ...]] = field(default_factory=list)
    event_origins: list[tuple[str, int]] = field(default_factory=list)
    observations: list[tuple[str, int, ObservationRecord]] = field(default_factory=list)
    corrections: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine: list[Quarantine] = field(default_factory=list)
    evidence_id: int = 0
    read: int = 0
    in_batch_duplicates: int = 0
    line_base: int = 0


EVENT_COLUMNS = (
    "key_hash",
    "event_key",
    "subj_id",
    "relation_type_id",
    "obj_id",
    "obj_scheme",
    "obj_value",
    "source_id",
    "occurred_at",
    "collected_at",
    "subj_author",
    "subj",
    "evidence_id",
    "evidence_url",
    "license",
)
OBSERVATION_COLUMNS = (
    "observation_key",
    "obj_id",
    "obj_scheme",
    "obj_value",
    "account_id",
    "metric",
    "qualifier",
    "value",
    "cumulative",
    "period_start",
    "period_end",
    "observed_at",
    "source_id",
    "evidence_id",
)
CORRECTION_COLUMNS = (
    "target_kind",
    "target_key",
    "action",
    "reason",
    "corrected_at",
    "recorded_at",
    "evidence_id",
)
QUARANTINE_COLUMNS = ("origin", "line", "reason", "raw", "raw_sha256", "recorded_at", "run_id")


def event_row(record: EventRecord, evidence_id: int, sqlite: bool) -> tuple[Any, ...]:
    """An event in storage form (``EVENT_COLUMNS``)."""
    subj = record.subj
    return (
        key_hash(record.event_key),
        record.event_key,
        record.subj_id,
        record.relation_type_id,
        record.obj_id,
        record.obj_scheme,
        record.obj_value,
        record.source_id,
        storage_time(record.occurred_at, sqlite),
        storage_time(record.collected_at, sqlite),
        record.subj_author,
        orjson.dumps(subj).decode() if subj is not None else None,
        evidence_id,
        record.evidence_url,
        record.license,
    )


def prepare_batch(
    items: Sequence[tuple[str, int, EventRecord | ObservationRecord | CorrectionRecord]],
    problems: Sequence[Quarantine],
    evidence_id: int,
    *,
    sqlite: bool,
    batch: PreparedBatch | None = None,
) -> PreparedBatch:
    """Put mapped records in storage form (pure: no database access)."""
    batch = batch or PreparedBatch()
    batch.evidence_id = evidence_id
    batch.quarantine.extend(problems)
    recorded_at = storage_time(dt.datetime.now(dt.UTC), sqlite)
    for origin, line, record in items:
        if type(record) is EventRecord:
            batch.events.append(event_row(record, evidence_id, sqlite))
            batch.event_origins.append((origin, line))
        elif type(record) is ObservationRecord:
            batch.observations.append((origin, line, record))
        elif type(record) is CorrectionRecord:
            batch.corrections.append(
                (
                    record.target_kind,
                    record.target_key,
                    record.action,
                    record.reason,
                    storage_time(record.corrected_at, sqlite),
                    recorded_at,
                    evidence_id,
                )
            )
    return batch


# Rows per multi-row INSERT in bulk paths on SQLite (14 columns x 64 rows stays far below
# SQLite's limit of 32,766 parameters).
_ROWS_PER_STATEMENT = 64


class FactWriter:
    """Writes batches of mapped records into a store, one transaction per batch."""

    def __init__(self, store: Store, *, run_id: int | None) -> None:
        self.store = store
        self.run_id = run_id
        self.sqlite = store.dialect == "sqlite"
        mark = "?" if self.sqlite else "%s"
        self._ignore = "INSERT OR IGNORE INTO" if self.sqlite else "INSERT INTO"
        self._conflict = "" if self.sqlite else " ON CONFLICT DO NOTHING"
        self._event_sql = self._insert_sql("events", EVENT_COLUMNS, mark)
        self._observation_sql = self._insert_sql("observations", OBSERVATION_COLUMNS, mark)
        self._observations_sql = self._insert_sql(
            "observations", OBSERVATION_COLUMNS, mark, rows=_ROWS_PER_STATEMENT
        )
        self._correction_sql = self._insert_sql("corrections", CORRECTION_COLUMNS, mark)
        self._quarantine_sql = self._insert_sql("quarantine", QUARANTINE_COLUMNS, mark)
        self._accounts: dict[tuple[str, str], int | None] = {}

    def _insert_sql(self, table: str, columns: Sequence[str], mark: str, rows: int = 1) -> str:
        values = ", ".join([f"({', '.join([mark] * len(columns))})"] * rows)
        return f"{self._ignore} {table} ({', '.join(columns)}) VALUES {values}{self._conflict}"

    def _account_id(self, connection: Connection, account: tuple[str, str]) -> int | None:
        if account not in self._accounts:
            table = Account.__table__
            self._accounts[account] = connection.execute(
                select(table.c.id).where(
                    table.c.platform == account[0], table.c.handle == account[1]
                )
            ).scalar()
        return self._accounts[account]

    def write(
        self,
        items: Sequence[tuple[str, int, EventRecord | ObservationRecord | CorrectionRecord]],
        problems: Sequence[Quarantine],
        evidence_id: int,
    ) -> BatchResult:
        """Store one batch of mapped records in one transaction; returns what was new."""
        return self.write_prepared(prepare_batch(items, problems, evidence_id, sqlite=self.sqlite))

    def write_prepared(self, batch: PreparedBatch) -> BatchResult:
        """Store one prepared batch in one transaction; returns what was new."""
        result = BatchResult(duplicates=batch.in_batch_duplicates)
        base = batch.line_base
        quarantine = [replace(q, line=q.line + base) if base else q for q in batch.quarantine]
        recorded_at = storage_time(dt.datetime.now(dt.UTC), self.sqlite)
        with self.store.begin() as connection:
            observations: list[tuple[Any, ...]] = []
            for origin, line, record in batch.observations:
                account_id = None
                if record.account is not None:
                    account_id = self._account_id(connection, record.account)
                    if account_id is None:
                        quarantine.append(
                            Quarantine(
                                origin,
                                line + base,
                                f"unknown account {record.account[0]}:{record.account[1]}"
                                " (add it with `reachmeter accounts add` first)",
                                record.observation_key,
                            )
                        )
                        continue
                observations.append(
                    (
                        record.observation_key,
                        record.obj_id,
                        record.obj_scheme,
                        record.obj_value,
                        account_id,
                        record.metric,
                        record.qualifier,
                        record.value,
                        record.cumulative,
                        _storage_date(record.period_start, self.sqlite),
                        _storage_date(record.period_end, self.sqlite),
                        storage_time(record.observed_at, self.sqlite),
                        record.source_id,
                        batch.evidence_id,
                    )
                )
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                if batch.events:
                    cursor.executemany(self._event_sql, batch.events)
                    stored = self._rowcount(cursor, len(batch.events))
                    result.events = stored
                    if stored < len(batch.events):
                        # An ignored row is a duplicate, or quarantined as a collision.
                        before = len(quarantine)
                        self._check_collisions(connection, batch, quarantine)
                        collided = len(quarantine) - before
                        result.duplicates += len(batch.events) - stored - collided
                if observations:
                    cursor.executemany(self._observation_sql, observations)
                    result.observations = self._rowcount(cursor, len(observations))
                    result.duplicates += len(observations) - result.observations
                if batch.corrections:
                    cursor.executemany(self._correction_sql, batch.corrections)
                    result.corrections = self._rowcount(cursor, len(batch.corrections))
                if quarantine:
                    rows = [
                        (
                            q.origin,
                            q.line,
                            q.reason,
                            q.raw,
                            _sha256(q.raw),
                            recorded_at,
                            self.run_id,
                        )
                        for q in quarantine
                    ]
                    cursor.executemany(self._quarantine_sql, rows)
                    result.quarantined = len(quarantine)
                    result.problems = quarantine
            finally:
                cursor.close()
        return result

    def insert_observation_rows(
        self, connection: Connection, rows: Sequence[tuple[Any, ...]]
    ) -> int:
        """Bulk path: insert observations already in storage form (``OBSERVATION_COLUMNS``,
        account resolved) in the caller's transaction; returns how many were new.

        For large imports that build their rows once and keep one transaction open (so
        that they can roll it all back); keys already stored are ignored, as in ``write``.
        """
        if not rows:
            return 0
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            stored = 0
            whole = 0
            if self.sqlite:
                # Many rows per statement: SQLite runs one statement for them, not one each.
                whole = len(rows) - len(rows) % _ROWS_PER_STATEMENT
                for start in range(0, whole, _ROWS_PER_STATEMENT):
                    chunk = rows[start : start + _ROWS_PER_STATEMENT]
                    cursor.execute(self._observations_sql, [v for row in chunk for v in row])
                    stored += self._rowcount(cursor, _ROWS_PER_STATEMENT)
            if whole < len(rows):
                cursor.executemany(self._observation_sql, rows[whole:])
                stored += self._rowcount(cursor, len(rows) - whole)
            return stored
        finally:
            cursor.close()

    @staticmethod
    def _rowcount(cursor: Any, expected: int) -> int:
        count = int(cursor.rowcount)
        return expected if count < 0 else count

    def _check_collisions(
        self, connection: Connection, batch: PreparedBatch, quarantine: list[Quarantine]
    ) -> None:
        """Ignored rows must be true duplicates: the same key, not just the same hash."""
        table = Event.__table__
        wanted = {
            row[0]: (row[1], origin)
            for row, origin in zip(batch.events, batch.event_origins, strict=True)
        }
        hashes = list(wanted)
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            stored = connection.execute(
                select(table.c.key_hash, table.c.event_key).where(table.c.key_hash.in_(chunk))
            )
            for digest, event_key in stored:
                key, (origin, line) = wanted[digest]
                if event_key != key:
                    quarantine.append(
                        Quarantine(
                            origin,
                            line + batch.line_base,
                            f"event key {key!r} has the same 64-bit hash as stored event "
                            f"{event_key!r}; it was not stored",
                            key,
                        )
                    )

    def drop_deferrable_indexes(self) -> None:
        """Drop the events' secondary indexes before a bulk load (rebuilt by ``restore``)."""
        with self.store.begin() as connection:
            for index in DEFERRABLE_INDEXES:
                index.drop(connection, checkfirst=True)

    def restore_indexes(self) -> None:
        with self.store.begin() as connection:
            create_deferrable_indexes(connection)
