"""Alerts: raised from a hand-built store, delivered to a real local SMTP server (aiosmtpd)
and a real local HTTP receiver; never sent twice, never lost when the server is down."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from typer.testing import CliRunner

from reachmeter.cli import app
from reachmeter.framework import add_objective
from reachmeter.monitor.alerts import (
    AlertError,
    add_filter,
    add_rule,
    find_spikes,
    list_alerts,
    raise_alerts,
)
from reachmeter.monitor.deliver import deliver_pending, render_text, retry_failed
from reachmeter.settings import Settings
from reachmeter.store import Store, open_store
from reachmeter.store.schema import Group, PersonGroup, Run, Score
from reachmeter.store.schema_monitor import Alert, AlertDelivery, AlertRule
from tests.fixtures.scoring.builder import Builder

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


class _Receiver:
    """A local HTTP server recording webhook POSTs; ``delay`` makes it slow."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], Any]] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                if receiver.delay:
                    time.sleep(receiver.delay)
                else:
                    receiver.posts.append((dict(self.headers), body))
                try:
                    self.send_response(204)
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    found = _Receiver()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()
        found.thread.join(5)


def _settings(port: int, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "alert_from": "alerts@library.example",
        "alert_backoff": 2.0,
        "webhook_allow_private": True,
        "webhook_timeout": 5.0,
    }
    values.update(changes)
    return Settings(**values)


NOW = dt.datetime.now(dt.UTC)
TOMORROW = NOW + dt.timedelta(days=1)
NOON = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


def _mentions(store: Store) -> dict[str, int]:
    b = Builder(store)
    paper = b.output("10.5555/paper", title="Rivers and Rain")
    other = b.output("10.5555/other", title="Mountains")
    b.event(paper, "twitter", "https://twitter.com/ann", NOW - dt.timedelta(hours=1))
    b.event(paper, "bluesky", "https://bsky.app/profile/bob", NOW - dt.timedelta(hours=2))
    b.event(other, "reddit", "https://reddit.com/u/cat", NOW - dt.timedelta(hours=3))
    return {"paper": paper, "other": other}


def _count(store: Store, model: Any) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_daily_digest_is_emailed_once_with_the_new_mentions(
    store: Store, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    _mentions(store)
    add_rule(store, "library", email="team@library.example, head@library.example")
    first = raise_alerts(store, NOW)
    assert first.raised["mentions"] == 0  # today's period has not ended
    assert raise_alerts(store, TOMORROW).raised["mentions"] == 1
    sent = deliver_pending(store, _settings(port), now=TOMORROW)
    assert (sent.sent, sent.errors) == (1, [])
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["Subject"] == (
        f"[ReachMeter] Daily digest for library, {NOW.date()}: 3 new mention(s)"
    )
    assert message["From"] == "alerts@library.example"
    assert inbox.envelopes[0][1] == ["team@library.example", "head@library.example"]
    body = message.get_content().replace("\r\n", "\n")
    assert "  bluesky: 1\n  reddit: 1\n  twitter: 1\n" in body
    assert "Rivers and Rain (twitter," in body
    assert "https://twitter.com/ann" in body
    # Nothing is raised or sent a second time.
    assert raise_alerts(store, TOMORROW).total == 0
    assert deliver_pending(store, _settings(port), now=TOMORROW).sent == 0
    assert len(inbox.messages) == 1
    assert list_alerts(store)[0]["deliveries"][0]["status"] == "sent"


def test_smtp_down_retries_with_backoff_then_sends_the_digest_later(
    store: Store, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    _mentions(store)
    add_rule(store, "library", email="team@library.example")
    raise_alerts(store, TOMORROW)
    waits: list[float] = []
    down = deliver_pending(
        store, _settings(_free_port(), alert_attempts=3), now=TOMORROW, sleep=waits.append
    )
    assert (down.sent, down.retrying, down.failed) == (0, 1, 0)
    assert waits == [2.0, 4.0]  # three tries, the wait doubling
    assert "ConnectionRefusedError" in down.errors[0]
    with store.session() as session:
        delivery = session.scalars(select(AlertDelivery)).one()
        assert (delivery.status, delivery.attempts) == ("pending", 3)
        assert delivery.next_attempt_at is not None
        assert delivery.next_attempt_at > TOMORROW
        retry_at = delivery.next_attempt_at
    # Not due again yet; then due, with the server up: delivered once.
    assert deliver_pending(store, _settings(port), now=TOMORROW).sent == 0
    later = deliver_pending(store, _settings(port), now=retry_at)
    assert later.sent == 1
    assert len(inbox.messages) == 1
    assert "3 new mention(s)" in inbox.messages[0]["Subject"]


def test_no_smtp_server_configured_fails_clearly_and_can_be_retried(
    store: Store, smtp: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp
    _mentions(store)
    add_rule(store, "library", email="team@library.example")
    raise_alerts(store, TOMORROW)
    result = deliver_pending(store, _settings(port, smtp_host=""), now=TOMORROW)
    assert result.failed == 1
    assert "no SMTP server is configured (REACHMETER_SMTP_HOST)" in result.errors[0]
    assert retry_failed(store) == 1
    assert deliver_pending(store, _settings(port), now=TOMORROW).sent == 1
    assert len(inbox.messages) == 1


def _failed_run(store: Store, source_id: str = "crossref") -> None:
    with store.session() as session:
        session.add(
            Run(
                kind="collect",
                source_id=source_id,
                started_at=NOW - dt.timedelta(minutes=5),
                finished_at=NOW,
                status="failed",
                errors=1,
                detail={"errors": ["https://api.crossref.org/works: HTTP 503"]},
            )
        )


def test_an_immediate_webhook_gets_a_failing_source_as_json(
    store: Store, receiver: _Receiver
) -> None:
    add_rule(store, "ops", kinds=["data-quality"], frequency="immediate", webhook=receiver.url)
    _failed_run(store)
    raised = raise_alerts(store, NOW)
    assert raised.raised["data-quality"] == 1
    assert raised.queued == 1
    result = deliver_pending(store, _settings(1), now=NOW)
    assert result.sent == 1, result.errors
    headers, body = receiver.posts[0]
    assert body["alert"]["kind"] == "data-quality"
    assert body["alert"]["title"].startswith("Source crossref failed (run ")
    assert body["alert"]["detail"]["errors"] == ["https://api.crossref.org/works: HTTP 503"]
    assert body["rule"]["name"] == "ops"
    assert headers["Idempotency-Key"] == f"reachmeter-alert-{body['alert']['id']}-rule-1"
    assert headers["Content-Type"] == "application/json"
    assert raise_alerts(store, NOW).total == 0
    assert deliver_pending(store, _settings(1), now=NOW).sent == 0
    assert len(receiver.posts) == 1


def test_a_loopback_webhook_is_refused_unless_allowed(store: Store, receiver: _Receiver) -> None:
    add_rule(store, "ops", kinds=["data-quality"], frequency="immediate", webhook=receiver.url)
    _failed_run(store)
    raise_alerts(store, NOW)
    result = deliver_pending(store, _settings(1, webhook_allow_private=False), now=NOW)
    assert result.failed == 1
    assert "non-public address (127.0.0.1)" in result.errors[0]
    assert "REACHMETER_WEBHOOK_ALLOW_PRIVATE" in result.errors[0]
    assert receiver.posts == []


def test_a_webhook_that_times_out_is_retried_and_delivered_later(
    store: Store, receiver: _Receiver
) -> None:
    add_rule(store, "ops", kinds=["data-quality"], frequency="immediate", webhook=receiver.url)
    _failed_run(store)
    raise_alerts(store, NOW)
    receiver.delay = 1.0
    slow = _settings(1, webhook_timeout=0.2, alert_attempts=2)
    result = deliver_pending(store, slow, now=NOW, sleep=lambda _s: None)
    assert result.retrying == 1
    assert "webhook: timed out" in result.errors[0]
    receiver.delay = 0.0
    later = NOW + dt.timedelta(days=1)
    assert deliver_pending(store, _settings(1), now=later).sent == 1
    assert len(receiver.posts) == 1
    with store.session() as session:
        assert session.scalars(select(AlertDelivery.attempts)).one() == 3


def test_spikes_are_days_far_above_the_outputs_own_baseline() -> None:
    today = dt.date(2025, 5, 31)
    steady = {today - dt.timedelta(days=n): 3 for n in range(1, 29)}
    daily = {
        1: {**steady, today: 15},  # baseline 3 a day: 15 is 5 times
        2: {**steady, today: 14},  # under 5 times
        3: {today: 10},  # no earlier mentions: the minimum is enough
        4: {today: 9},  # under the minimum
    }
    assert find_spikes(daily, [today]) == [(1, today, 15, 3.0), (3, today, 10, 0.0)]


def test_spikes_milestones_and_count_jumps_are_raised_once(store: Store) -> None:
    # Spikes and milestones depend on when things occurred, not on when they were stored.
    b = Builder(store)
    hot = b.output("10.5555/hot", title="Hot paper")
    for n in range(12):
        b.event(hot, "twitter", f"https://twitter.com/u{n}", NOON - dt.timedelta(minutes=n))
    b.event(hot, "newsfeed", "https://news.example/", NOON - dt.timedelta(hours=2))
    b.event(hot, "newsfeed", "https://other-news.example/", NOON - dt.timedelta(hours=1))
    old = b.output("10.5555/old", title="Old paper")
    b.event(old, "wikipedia", "https://en.wikipedia.org/wiki/A", NOON - dt.timedelta(days=60))
    b.event(old, "wikipedia", "https://en.wikipedia.org/wiki/B", NOON - dt.timedelta(hours=5))
    b.observation("10.5555/hot", "citations", 10, NOON - dt.timedelta(days=3))
    b.observation("10.5555/hot", "citations", 6, NOON - dt.timedelta(days=1))
    raised = raise_alerts(store, NOON)
    titles = sorted(a["title"] for a in list_alerts(store))
    assert titles == [
        "Citations of Hot paper fell: 10 to 6 in 2 days (source crossref)",
        "First news story: Hot paper",
        f"Spike: 14 mentions of Hot paper on {NOON.date()} (usually 0 a day)",
    ]
    assert raised.raised["milestone"] == 1  # the old paper's Wikipedia reference is not its first
    b.event(hot, "newsfeed", "https://third.example/", NOON)
    assert raise_alerts(store, NOON).total == 0


def test_a_score_passing_a_threshold_is_a_milestone(store: Store) -> None:
    b = Builder(store)
    paper = b.output("10.5555/rising", title="Rising paper")
    with store.session() as session:
        for day, value in ((NOW.date() - dt.timedelta(days=1), 20.0), (NOW.date(), 60.0)):
            session.add(
                Score(output_id=paper, profile_name="default", profile_version="1", as_of=day,
                      score=value, mentions=3)
            )  # fmt: skip
    raise_alerts(store, NOW)
    alert = list_alerts(store, kind="milestone")[0]
    assert alert["title"] == (
        f"Attention score passed 50: Rising paper (20 on {NOW.date() - dt.timedelta(days=1)}, "
        f"60 on {NOW.date()})"
    )
    assert raise_alerts(store, NOW).total == 0


def test_an_objective_falling_behind_is_raised_once_a_week(store: Store) -> None:
    _mentions(store)
    start = NOW.date() - dt.timedelta(days=9)
    add_objective(
        store, title="Be mentioned", kpi="mentions", over="outputs", target=1000,
        start=start, deadline=start + dt.timedelta(days=99), owner="Sam",
    )  # fmt: skip
    raised = raise_alerts(store, NOW)
    assert raised.raised["objective"] == 1
    alert = list_alerts(store, kind="objective")[0]
    assert alert["title"] == (
        f"Objective behind: Be mentioned (mentions 3 of 1000, projected 30 by "
        f"{start + dt.timedelta(days=99)})"
    )
    assert raise_alerts(store, NOW).raised["objective"] == 0  # once in a week
    assert raise_alerts(store, NOW + dt.timedelta(days=7)).raised["objective"] == 1


def test_digests_follow_the_rules_scope(store: Store, smtp: tuple[_Inbox, int]) -> None:
    inbox, port = smtp
    ids = _mentions(store)
    b = Builder(store)
    author = b.author(ids["other"], "Cat Writer")
    with store.session() as session:
        group = Group(name="Geography")
        session.add(group)
        session.flush()
        session.add(PersonGroup(person_id=author, group_id=group.id))
    add_rule(store, "geography", scope="group:Geography", email="geo@library.example")
    add_filter(store, "social", {"source": ["twitter", "bluesky"]})
    add_rule(store, "social", scope="filter:social", email="social@library.example")
    add_rule(store, "cat", scope="person:Cat Writer", email="cat@library.example",
             frequency="weekly")  # fmt: skip
    raise_alerts(store, TOMORROW)
    deliver_pending(store, _settings(port), now=TOMORROW)
    subjects = {m["To"]: m["Subject"] for m in inbox.messages}
    assert subjects["geo@library.example"].endswith(": 1 new mention(s)")
    assert subjects["social@library.example"].endswith(": 2 new mention(s)")
    assert "cat@library.example" not in subjects  # the week has not ended
    next_week = NOW + dt.timedelta(days=8)
    raise_alerts(store, next_week)
    deliver_pending(store, _settings(port), now=next_week)
    weekly = [m for m in inbox.messages if m["To"] == "cat@library.example"]
    assert len(weekly) == 1
    assert weekly[0]["Subject"].startswith("[ReachMeter] Weekly digest for cat, ")
    assert weekly[0]["Subject"].endswith(": 1 new mention(s)")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"email": "not-an-address"}, "'not-an-address' is not an e-mail address"),
        ({}, "give --email recipients or a --webhook URL"),
        ({"email": "a@b.example", "kinds": ["gossip"]}, "unknown alert kind(s) gossip"),
        ({"email": "a@b.example", "frequency": "hourly"}, "unknown frequency 'hourly'"),
        ({"email": "a@b.example", "frequency": "immediate"}, "daily or weekly, not immediate"),
        ({"webhook": "ftp://x.example/"}, "is not an http(s) URL"),
        ({"email": "a@b.example", "scope": "group:Nowhere"}, "no group 'Nowhere'"),
        ({"email": "a@b.example", "scope": "filter:none"}, "no saved filter 'none'"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(
    store: Store, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(AlertError) as caught:
        add_rule(store, "bad", **kwargs)
    assert words in str(caught.value)


def test_bad_filters_are_refused(store: Store) -> None:
    with pytest.raises(AlertError, match="unknown filter key"):
        add_filter(store, "x", {"colour": "red"})
    with pytest.raises(AlertError, match="no group 'Nowhere'"):
        add_filter(store, "x", {"group": "Nowhere"})


def test_the_cli_adds_rules_sends_and_lists(
    store_url: str, smtp: tuple[_Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    opened = open_store(store_url)
    _failed_run(opened)
    opened.close()
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
                       "SMTP_SECURITY": "none"}.items():  # fmt: skip
        monkeypatch.setenv(f"REACHMETER_{key}", value)
    db = ["--db", store_url]
    result = runner.invoke(
        app,
        ["alerts", "rules", "add", "ops", "--kinds", "data-quality", "--frequency", "immediate",
         "--email", "ops@library.example", *db],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["alerts", "send", *db])
    assert result.exit_code == 0, result.output
    assert "sent: 1, to retry: 0, failed: 0" in result.output
    assert inbox.messages[0]["Subject"].startswith("[ReachMeter] Source crossref failed")
    result = runner.invoke(app, ["alerts", "list", *db])
    assert "email sent" in result.output
    result = runner.invoke(app, ["alerts", "rules", "add", "bad", "--email", "nope", *db])
    assert result.exit_code == 2
    assert "'nope' is not an e-mail address" in result.output
    opened = open_store(store_url)
    assert _count(opened, Alert) == 1
    opened.close()


def test_an_untrusted_title_cannot_break_the_mail_header() -> None:
    alert = Alert(id=7, kind="spike", title="Spike: 12 mentions of A\r\nBcc: x@evil.example",
                  detail={"day": "2026-06-15"}, subject="output:1")  # fmt: skip
    rule = AlertRule(id=1, name="r", frequency="immediate")
    subject, body = render_text(alert, rule)
    assert subject == "[ReachMeter] Spike: 12 mentions of A Bcc: x@evil.example"
    assert body.endswith("day: 2026-06-15\n\nRule: r (immediate). Alert 7, spike.\n")


def test_a_collection_that_suddenly_stores_nothing_is_a_data_quality_alert(store: Store) -> None:
    with store.session() as session:
        for hours, stored in ((60, 40), (50, 30), (40, 20), (30, 10), (20, 50), (10, 0)):
            session.add(
                Run(kind="collect", source_id="openalex", status="ok", stored=stored,
                    started_at=NOW - dt.timedelta(hours=hours))
            )  # fmt: skip
    raise_alerts(store, NOW)
    titles = [a["title"] for a in list_alerts(store, kind="data-quality")]
    assert len(titles) == 1
    assert titles[0].startswith("Source openalex stored nothing in run 6 (")
    assert titles[0].endswith("its previous 5 runs stored 30 on average")
