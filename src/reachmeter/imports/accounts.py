"""Accounts: listing them with what was observed, and recording profile counts by hand."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import orjson
from sqlalchemy import func, select

from reachmeter import __version__
from reachmeter.records import KEY_NAMESPACE, ObservationRecord
from reachmeter.store import Store
from reachmeter.store.catalog import CatalogError, normalize_account
from reachmeter.store.schema import Account, Observation, Person
from reachmeter.store.writer import FactWriter, ensure_evidence

__all__ = ["account_rows", "observe_account"]


def account_rows(store: Store) -> list[dict[str, Any]]:
    """Every account with its owner, latest follower count and number of observations."""
    latest = (
        select(
            Observation.account_id,
            Observation.metric,
            func.max(Observation.observed_at).label("observed_at"),
        )
        .where(Observation.account_id.is_not(None), Observation.metric == "followers")
        .group_by(Observation.account_id, Observation.metric)
        .subquery()
    )
    with store.session() as session:
        accounts = session.execute(
            select(Account, Person.name)
            .outerjoin(Person, Person.id == Account.owner_person_id)
            .order_by(Account.platform, Account.handle)
        ).all()
        followers: dict[int, tuple[float, dt.datetime]] = {}
        for account_id, value, when in session.execute(
            select(Observation.account_id, Observation.value, Observation.observed_at)
            .join(
                latest,
                (latest.c.account_id == Observation.account_id)
                & (latest.c.metric == Observation.metric)
                & (latest.c.observed_at == Observation.observed_at),
            )
            .order_by(Observation.id)
        ):
            if account_id is not None:
                followers[int(account_id)] = (float(value), when)
        counts: dict[int, int] = {}
        for owner_id, count in session.execute(
            select(Observation.account_id, func.count())
            .where(Observation.account_id.is_not(None))
            .group_by(Observation.account_id)
        ):
            if owner_id is not None:
                counts[int(owner_id)] = int(count)
        rows = []
        for account, owner_name in accounts:
            known = followers.get(account.id)
            rows.append(
                {
                    "id": account.id,
                    "platform": account.platform,
                    "handle": account.handle,
                    "url": account.url,
                    "owner": "org" if account.owned_by_org else owner_name,
                    "owner_person_id": account.owner_person_id,
                    "followers": known[0] if known else None,
                    "followers_at": known[1].isoformat() if known else None,
                    "observations": int(counts.get(account.id, 0)),
                }
            )
    return rows


def observe_account(
    store: Store,
    platform: str,
    handle: str,
    values: dict[str, float],
    on: dt.date,
) -> tuple[tuple[str, str], int]:
    """Record an account's counts (followers, following) as seen on its profile on ``on``.

    One figure per account, metric and day: a second, different figure for the same day is
    refused with a ``CatalogError`` rather than stored beside the first.
    """
    account = normalize_account(platform, handle)
    with store.engine.connect() as connection:
        known = connection.execute(
            select(Account.id).where(Account.platform == account[0], Account.handle == account[1])
        ).scalar()
        if known is None:
            raise CatalogError(
                f"the account {account[0]}:{account[1]} is not known; add it first with "
                "`reachmeter accounts add`"
            )
        records = []
        for metric, value in values.items():
            key = uuid.uuid5(KEY_NAMESPACE, f"manual|{account[0]}|{account[1]}|{metric}|{on}")
            stored = connection.execute(
                select(Observation.value).where(Observation.observation_key == f"manual:{key}")
            ).scalar()
            if stored is not None and float(stored) != value:
                raise CatalogError(
                    f"{metric} of {account[0]}:{account[1]} on {on} is already recorded as "
                    f"{float(stored):g}"
                )
            records.append(
                ObservationRecord(
                    observation_key=f"manual:{key}",
                    metric=metric,
                    value=value,
                    observed_at=dt.datetime.combine(on, dt.time(), tzinfo=dt.UTC),
                    source_id="manual",
                    account=account,
                    cumulative=True,
                )
            )
    payload = orjson.dumps(
        {"account": list(account), "on": on.isoformat(), "values": values},
        option=orjson.OPT_SORT_KEYS,
    ).decode()
    with store.begin() as connection:
        evidence_id = ensure_evidence(
            connection,
            source_id="manual",
            source_version=f"reachmeter {__version__}",
            request_url=f"reachmeter:accounts observe {account[0]}:{account[1]}",
            payload_sha256=hashlib.sha256(payload.encode()).hexdigest(),
            collected_at=dt.datetime.now(dt.UTC),
            run_id=None,
            payload=payload,
        )
    result = FactWriter(store, run_id=None).write(
        [("accounts observe", 0, record) for record in records], [], evidence_id
    )
    return account, result.observations
