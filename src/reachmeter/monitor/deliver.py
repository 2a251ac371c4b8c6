"""Delivering alerts: e-mail over SMTP and JSON webhooks, each delivery at most once.

A delivery row is claimed before sending (so two senders never send it both), marked
``sent`` as soon as the server accepted it, and otherwise kept ``pending`` with its error
and a later ``next_attempt_at``: a mail server that is down loses nothing, the digest goes
out on a later run. Within one run a delivery is tried ``alert_attempts`` times with
exponential backoff (``alert_backoff`` seconds, doubling); after ``alert_give_up_after``
failed tries in all, or at once for an error that trying again cannot mend (no SMTP
server configured, a webhook refused by the guard or answering 4xx), it is marked
``failed`` (``reachmeter alerts send --retry-failed`` queues it again).

Webhooks go through the shared HTTP client and its SSRF guard: a hook on a private or
loopback address is refused unless ``REACHMETER_WEBHOOK_ALLOW_PRIVATE`` is set.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import tenacity
from sqlalchemy import and_, or_, select, update

from reachmeter.http import HttpClient, UnsafeURLError, UpstreamError, redact_url
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.schema_monitor import Alert, AlertDelivery, AlertRule

__all__ = ["DeliveryError", "DeliverySummary", "deliver_pending", "render_text", "retry_failed"]

CLAIM_SECONDS = 600
MAX_RETRY_DELAY = 6 * 3600


class DeliveryError(Exception):
    """A delivery that did not go through; ``retriable`` when trying again may help."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


@dataclass
class DeliverySummary:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _lines_of(detail: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in detail.items():
        if key in ("latest", "alerts", "by_source", "period", "rule"):
            continue
        lines.append(f"{key.replace('_', ' ')}: {value}")
    return lines


def render_text(alert: Alert, rule: AlertRule) -> tuple[str, str]:
    """The subject and plain-text body of an alert sent for ``rule``."""
    # Titles hold untrusted text (output titles): one line, or the header would break.
    subject = " ".join(f"[ReachMeter] {alert.title}".split())
    if len(subject) > 200:
        subject = subject[:197] + "..."
    body = [alert.title, ""]
    detail = dict(alert.detail or {})
    if alert.kind == "mentions":
        if detail.get("by_source"):
            body.append("New mentions by source:")
            body += [f"  {source}: {count}" for source, count in detail["by_source"].items()]
            body.append("")
        if detail.get("latest"):
            body.append("Latest mentions:")
            for m in detail["latest"]:
                who = m.get("author") or "unknown author"
                body.append(f"  - {m['output']} ({m['source_id']}, {m['occurred_at'][:10]})")
                body.append(f"    {who}: {m['subj_id']}")
            body.append("")
        if detail.get("alerts"):
            body.append("Alerts in this period:")
            body += [f"  - [{a['kind']}] {a['title']}" for a in detail["alerts"]]
            body.append("")
    else:
        body += _lines_of(detail)
        body.append("")
    body.append(f"Rule: {rule.name} ({rule.frequency}). Alert {alert.id}, {alert.kind}.")
    return subject, "\n".join(body) + "\n"


def _send_email(settings: Settings, delivery: AlertDelivery, alert: Alert, rule: AlertRule) -> None:
    if not settings.smtp_host:
        raise DeliveryError("no SMTP server is configured (REACHMETER_SMTP_HOST)", retriable=False)
    subject, body = render_text(alert, rule)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.alert_from
    message["To"] = delivery.target
    domain = settings.alert_from.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=f"alert-{alert.id}-rule-{rule.id}", domain=domain)
    message.set_content(body)
    try:
        smtp: smtplib.SMTP
        if settings.smtp_security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=settings.smtp_timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
            )
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        text = (
            str(exc).replace(settings.smtp_password, "REDACTED")
            if settings.smtp_password
            else str(exc)
        )
        raise DeliveryError(
            f"SMTP {settings.smtp_host}:{settings.smtp_port}: {type(exc).__name__}: {text}"
        ) from exc


def _post_webhook(
    client: HttpClient, settings: Settings, delivery: AlertDelivery, alert: Alert, rule: AlertRule
) -> None:
    payload = {
        "alert": {
            "id": alert.id,
            "kind": alert.kind,
            "subject": alert.subject,
            "title": alert.title,
            "detail": alert.detail,
            "raised_at": alert.raised_at.isoformat(),
        },
        "rule": {"id": rule.id, "name": rule.name, "frequency": rule.frequency},
    }
    try:
        client.post_json(
            delivery.target,
            payload,
            headers={"Idempotency-Key": f"reachmeter-alert-{alert.id}-rule-{rule.id}"},
            timeout=settings.webhook_timeout,
        )
    except UnsafeURLError as exc:
        raise DeliveryError(
            f"webhook {redact_url(delivery.target)} refused: {exc} "
            "(REACHMETER_WEBHOOK_ALLOW_PRIVATE=true allows an administrator's own hooks)",
            retriable=False,
        ) from exc
    except UpstreamError as exc:
        raise DeliveryError(f"webhook: {exc}", retriable=exc.retriable) from exc


def _claim(store: Store, delivery_id: int, now: dt.datetime) -> bool:
    with store.begin() as connection:
        result = connection.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.id == delivery_id,
                or_(
                    AlertDelivery.status == "pending",
                    and_(AlertDelivery.status == "sending", AlertDelivery.claimed_until < now),
                ),
            )
            .values(status="sending", claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS))
        )
        return bool(result.rowcount)


def deliver_pending(
    store: Store,
    settings: Settings | None = None,
    *,
    now: dt.datetime | None = None,
    http: HttpClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliverySummary:
    """Send every delivery that is due; see the module docs for retries."""
    settings = settings or Settings()
    now = now or dt.datetime.now(dt.UTC)
    summary = DeliverySummary()
    with store.session() as session:
        due = list(
            session.scalars(
                select(AlertDelivery.id)
                .where(
                    or_(
                        and_(
                            AlertDelivery.status == "pending",
                            or_(
                                AlertDelivery.next_attempt_at.is_(None),
                                AlertDelivery.next_attempt_at <= now,
                            ),
                        ),
                        and_(AlertDelivery.status == "sending", AlertDelivery.claimed_until < now),
                    )
                )
                .order_by(AlertDelivery.id)
            )
        )
    if not due:
        return summary
    own_client = http is None
    client = http or HttpClient(settings, allow_private=settings.webhook_allow_private)
    try:
        for delivery_id in due:
            if _claim(store, delivery_id, now):
                _deliver_one(store, settings, client, delivery_id, now, sleep, summary)
    finally:
        if own_client:
            client.close()
    return summary


def _deliver_one(
    store: Store,
    settings: Settings,
    client: HttpClient,
    delivery_id: int,
    now: dt.datetime,
    sleep: Callable[[float], None],
    summary: DeliverySummary,
) -> None:
    with store.session() as session:
        delivery = session.get(AlertDelivery, delivery_id)
        alert = session.get(Alert, delivery.alert_id) if delivery else None
        rule = session.get(AlertRule, delivery.rule_id) if delivery else None
    if delivery is None or alert is None or rule is None:
        return  # removed meanwhile (deliveries go with their alert and rule)
    tries = 0

    def attempt() -> None:
        nonlocal tries
        tries += 1
        if delivery.channel == "email":
            _send_email(settings, delivery, alert, rule)
        else:
            _post_webhook(client, settings, delivery, alert, rule)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(settings.alert_attempts),
        wait=tenacity.wait_exponential(multiplier=settings.alert_backoff, max=300),
        retry=tenacity.retry_if_exception(
            lambda exc: isinstance(exc, DeliveryError) and exc.retriable
        ),
        sleep=sleep,
        reraise=True,
    )
    error: str | None = None
    permanent = False
    try:
        retrying(attempt)
    except DeliveryError as exc:
        error, permanent = str(exc), not exc.retriable
    with store.session() as session:
        row = session.get(AlertDelivery, delivery_id)
        if row is None:
            return
        row.attempts = (row.attempts or 0) + tries
        row.claimed_until = None
        if error is None:
            row.status = "sent"
            row.sent_at = dt.datetime.now(dt.UTC)
            row.last_error = None
            summary.sent += 1
            return
        row.last_error = error
        summary.errors.append(f"alert {alert.id} to {delivery.channel}: {error}")
        if permanent or row.attempts >= settings.alert_give_up_after:
            row.status = "failed"
            summary.failed += 1
        else:
            row.status = "pending"
            delay = min(MAX_RETRY_DELAY, 60 * 2 ** min(row.attempts, 12))
            row.next_attempt_at = now + dt.timedelta(seconds=delay)
            summary.retrying += 1


def retry_failed(store: Store) -> int:
    """Queue deliveries marked failed again, due now; how many."""
    with store.begin() as connection:
        result = connection.execute(
            update(AlertDelivery)
            .where(AlertDelivery.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=None)
        )
        return int(result.rowcount or 0)
