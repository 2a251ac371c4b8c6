"""Access to the dashboard: users and roles, hashed passwords, signed sessions, CSRF on every
form, API tokens, and the public (anonymous read-only) switch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends
from sqlalchemy import select
from typer.testing import CliRunner

from reachmeter.cli import app as cli
from reachmeter.settings import Settings
from reachmeter.store import Store, open_store
from reachmeter.store.schema import EventMatch
from reachmeter.store.schema_web import ApiToken, CorrectionRequest, User
from reachmeter.web import auth, create_app
from tests.webdemo import TestClient, demo_store_path

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)
PASSWORD = "correct horse battery"  # noqa: S105  (a test password)


@pytest.fixture(autouse=True)
def quick_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id still, with small cost parameters so the tests stay quick."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def _log_in(client: TestClient, email: str, password: str = PASSWORD, next_: str = "/") -> None:
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": next_},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_passwords_are_argon2_hashes_and_checked(store: Store) -> None:
    user = auth.create_user(store, " Ada@Example.org ", PASSWORD, "editor")
    assert user.email == "ada@example.org"
    with store.session() as session:
        stored = session.scalars(select(User)).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    assert auth.authenticate(store, "ADA@example.org", PASSWORD) is not None
    assert auth.authenticate(store, "ada@example.org", "wrong password") is None
    assert auth.authenticate(store, "nobody@example.org", PASSWORD) is None


@pytest.mark.parametrize(
    ("email", "password", "role", "message"),
    [
        ("ada@example.org", PASSWORD, "editor", "already exists"),
        ("bob@example.org", PASSWORD, "owner", "unknown role"),
        ("bob@example.org", "short", "viewer", "at least 8"),
        ("not-an-address", PASSWORD, "viewer", "not an e-mail"),
    ],
)
def test_bad_users_are_refused(
    sqlite_store: Store, email: str, password: str, role: str, message: str
) -> None:
    auth.create_user(sqlite_store, "ada@example.org", PASSWORD, "editor")
    with pytest.raises(auth.AuthError, match=message):
        auth.create_user(sqlite_store, email, password, role)


def test_api_tokens_are_stored_hashed_and_revocable(store: Store) -> None:
    auth.create_user(store, "script@example.org", PASSWORD, "viewer")
    token = auth.create_token(store, "script@example.org", "nightly export")
    assert token.startswith("rm_")
    with store.session() as session:
        row = session.scalars(select(ApiToken)).one()
    assert token not in row.token_sha256
    assert len(row.token_sha256) == 64
    found = auth.user_for_token(store, token)
    assert found is not None
    assert found.email == "script@example.org"
    assert auth.user_for_token(store, token + "x") is None
    assert auth.revoke_tokens(store, "script@example.org") == 1
    assert auth.user_for_token(store, token) is None
    with pytest.raises(auth.AuthError, match="no user"):
        auth.create_token(store, "ghost@example.org")


def test_signed_values_reject_tampering_and_age() -> None:
    key = b"k" * 32
    value = auth.sign({"uid": 1}, key, now=1000)
    assert auth.unsign(value, key, 60, now=1030) == {"uid": 1}
    assert auth.unsign(value, key, 60, now=1061) == {}
    assert auth.unsign(value, b"other", 60, now=1030) == {}
    _payload, stamp, mac = value.split(".")
    forged = auth.sign({"uid": 2}, b"attacker", now=1000).split(".")[0]
    assert auth.unsign(f"{forged}.{stamp}.{mac}", key, 60, now=1030) == {}
    assert auth.unsign("garbage", key, 60) == {}


probe = APIRouter(prefix="/api/probe")
require_editor = auth.require_role("editor")


@probe.get("/read")
def probe_read(
    user: Annotated[auth.User | None, Depends(auth.require_reader)],
) -> dict[str, str | None]:
    return {"user": user.email if user else None}


@probe.get("/edit")
def probe_edit(user: Annotated[auth.User, Depends(require_editor)]) -> dict[str, str]:
    return {"user": user.email}


@pytest.fixture
def guarded(sqlite_store: Store) -> Iterator[tuple[Store, TestClient]]:
    """A private dashboard with one user of each role and a probe of both dependencies."""
    for role in auth.ROLES:
        auth.create_user(sqlite_store, f"{role}@example.org", PASSWORD, role)
    app = create_app(sqlite_store, Settings(public_dashboard=False))

    app.include_router(probe)
    with TestClient(app) as client:
        yield sqlite_store, client


def test_dependencies_answer_401_and_403(guarded: tuple[Store, TestClient]) -> None:
    store, client = guarded
    assert client.get("/api/probe/read").status_code == 401
    assert client.get("/api/probe/edit").status_code == 401
    viewer = auth.create_token(store, "viewer@example.org")
    editor = auth.create_token(store, "editor@example.org")
    admin = auth.create_token(store, "admin@example.org")
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    assert client.get("/api/probe/read", headers=as_viewer).json() == {"user": "viewer@example.org"}
    assert client.get("/api/probe/edit", headers=as_viewer).status_code == 403
    assert client.get("/api/probe/edit", headers={"Authorization": f"Bearer {editor}"}).json() == {
        "user": "editor@example.org"
    }
    assert client.get(
        "/api/probe/edit", headers={"Authorization": f"Bearer {admin}"}
    ).status_code == (200)
    bad = client.get("/api/probe/read", headers={"Authorization": "Bearer rm_not-a-token"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    with pytest.raises(ValueError, match="unknown role"):
        auth.require_role("owner")


def test_private_dashboard_sends_browsers_to_log_in(guarded: tuple[Store, TestClient]) -> None:
    _, client = guarded
    response = client.get("/outputs?type=article", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Foutputs%3Ftype%3Darticle"
    _log_in(client, "viewer@example.org", next_="/outputs?type=article")
    page = client.get("/outputs")
    assert page.status_code == 200
    assert "viewer@example.org (viewer)" in page.text
    assert client.get("/api/probe/read").json() == {"user": "viewer@example.org"}
    assert client.get("/api/probe/edit").status_code == 403


def test_login_needs_the_csrf_token_and_the_right_password(
    guarded: tuple[Store, TestClient],
) -> None:
    _, client = guarded
    token = _csrf(client.get("/login").text)
    form = {"email": "viewer@example.org", "password": PASSWORD}
    assert client.post("/login", data=form).status_code == 403
    assert client.post("/login", data={**form, "csrf_token": "forged"}).status_code == 403
    wrong = client.post("/login", data={**form, "password": "nope nope", "csrf_token": token})
    assert wrong.status_code == 400
    assert "Wrong e-mail address or password" in wrong.text
    assert client.get("/api/probe/read").status_code == 401


def test_login_redirects_only_within_the_site(guarded: tuple[Store, TestClient]) -> None:
    _, client = guarded
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "email": "viewer@example.org",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()


def test_logout_needs_csrf_and_ends_the_session(guarded: tuple[Store, TestClient]) -> None:
    _, client = guarded
    _log_in(client, "admin@example.org")
    page = client.get("/")
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/api/probe/read").status_code == 200
    response = client.post("/logout", data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/probe/read").status_code == 401


def test_tampered_cookie_is_anonymous(guarded: tuple[Store, TestClient]) -> None:
    _, client = guarded
    _log_in(client, "admin@example.org")
    value = client.cookies[auth.SESSION_COOKIE]
    payload, stamp, mac = value.split(".")
    client.cookies.set(auth.SESSION_COOKIE, f"{payload}.{int(stamp) + 1}.{mac}")
    assert client.get("/api/probe/read").status_code == 401


def test_changed_password_ends_old_sessions(guarded: tuple[Store, TestClient]) -> None:
    store, client = guarded
    _log_in(client, "editor@example.org")
    assert client.get("/api/probe/edit").status_code == 200
    with store.session() as session:
        user = session.scalars(select(User).where(User.email == "editor@example.org")).one()
        user.password_hash = auth.hash_password("a brand new password")
    assert client.get("/api/probe/edit").status_code == 401


def test_secret_key_is_generated_once_and_kept(sqlite_store: Store) -> None:
    auth.create_user(sqlite_store, "ada@example.org", PASSWORD, "viewer")
    first = TestClient(create_app(sqlite_store, Settings()))
    _log_in(first, "ada@example.org")
    cookie = first.cookies[auth.SESSION_COOKIE]
    stored = sqlite_store.get_meta("web_secret_key")
    assert stored
    assert len(stored) >= 48
    # A restarted server (a new app on the same store) keeps the login.
    second = TestClient(create_app(sqlite_store, Settings()))
    second.cookies.set(auth.SESSION_COOKIE, cookie)
    assert "ada@example.org (viewer)" in second.get("/methods").text
    # A configured key wins, and then the old cookie is no longer valid.
    third = TestClient(create_app(sqlite_store, Settings(secret_key="x" * 40)))
    third.cookies.set(auth.SESSION_COOKIE, cookie)
    assert third.get("/methods", follow_redirects=False).status_code == 303


@pytest.fixture(scope="module")
def demo_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, TestClient]]:
    path, _ = demo_store_path(tmp_path_factory.getbasetemp())
    store = open_store(path)
    if auth.get_user(store, "reporter@example.org") is None:
        auth.create_user(store, "reporter@example.org", PASSWORD, "viewer")
    with TestClient(create_app(store, Settings(public_dashboard=True))) as client:
        yield store, client
    store.close()


def test_public_dashboard_reads_anonymously_but_reporting_needs_a_login(
    demo_client: tuple[Store, TestClient],
) -> None:
    store, client = demo_client
    client.cookies.clear()
    with store.engine.connect() as connection:
        output_id = connection.execute(
            select(EventMatch.output_id).order_by(EventMatch.id).limit(1)
        ).scalar_one()
    page = client.get(f"/outputs/{output_id}")
    assert page.status_code == 200
    assert "Log in</a> to report a mention" in page.text
    response = client.post(
        f"/outputs/{output_id}/report",
        data={"reason": "not about this", "csrf_token": _csrf(client.get("/login").text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    with store.engine.connect() as connection:
        assert connection.execute(select(CorrectionRequest.id)).first() is None


def test_report_a_wrong_match_records_a_correction_request(
    demo_client: tuple[Store, TestClient],
) -> None:
    store, client = demo_client
    client.cookies.clear()
    with store.engine.connect() as connection:
        output_id, event_id = connection.execute(
            select(EventMatch.output_id, EventMatch.event_id).order_by(EventMatch.id).limit(1)
        ).one()
        other = connection.execute(
            select(EventMatch.event_id).where(EventMatch.output_id != output_id).limit(1)
        ).scalar_one()
    _log_in(client, "reporter@example.org")
    page = client.get(f"/outputs/{output_id}")
    assert 'action="/outputs/' in page.text
    token = _csrf(page.text)
    url = f"/outputs/{output_id}/report"
    assert client.post(url, data={"reason": "x", "event_id": str(event_id)}).status_code == 403
    mismatched = client.post(url, data={"reason": "x", "event_id": str(other), "csrf_token": token})
    assert mismatched.status_code == 400
    response = client.post(
        url,
        data={"reason": "a namesake's paper", "event_id": str(event_id), "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/outputs/{output_id}?reported=1#report"
    with store.session() as session:
        request = session.scalars(select(CorrectionRequest)).one()
        reporter = session.get(User, request.user_id)
    assert (request.output_id, request.event_id) == (output_id, event_id)
    assert request.reason == "a namesake's paper"
    assert request.kind == "wrong_match"
    assert request.status == "open"
    assert reporter is not None
    assert reporter.email == "reporter@example.org"
    assert "1 report recorded" in client.get(f"/outputs/{output_id}?reported=1").text


def test_cli_adds_users_and_creates_tokens(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(sqlite_store.engine.url.database)
    runner = CliRunner()
    monkeypatch.setenv("REACHMETER_PASSWORD", PASSWORD)
    added = runner.invoke(cli, ["users", "add", "Ed@Example.org", "--role", "editor", "--db", db])
    assert added.exit_code == 0, added.output
    assert "Added ed@example.org as editor." in added.output
    again = runner.invoke(cli, ["users", "add", "ed@example.org", "--db", db])
    assert again.exit_code == 2
    assert "already exists" in again.output
    bad = runner.invoke(cli, ["users", "add", "x@example.org", "--role", "boss", "--db", db])
    assert bad.exit_code == 2
    assert "unknown role" in bad.output
    created = runner.invoke(cli, ["tokens", "create", "ed@example.org", "--db", db])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    user = auth.user_for_token(sqlite_store, token)
    assert user is not None
    assert user.role == "editor"
    listed = runner.invoke(cli, ["users", "list", "--db", db])
    assert "ed@example.org\teditor" in listed.output
    missing = runner.invoke(cli, ["tokens", "create", "nobody@example.org", "--db", db])
    assert missing.exit_code == 2
