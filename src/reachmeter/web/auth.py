"""Access: who may read and who may write.

``require_reader`` lets anonymous visitors read when the organisation runs a public dashboard
and otherwise needs a logged-in user or an API token; ``require_role(role)`` needs an
authenticated user with at least that role (viewer < editor < admin).

A browser is known by a signed session cookie (HMAC-SHA256 with the settings' secret key, or
one generated once and kept in the store); a script by ``Authorization: Bearer <token>``,
whose SHA-256 alone is stored. Passwords are hashed with Argon2id. Every form carries a CSRF
token bound to the session.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request, Response
from sqlalchemy import select

from reachmeter.store import Store
from reachmeter.store.schema_web import ApiToken, User

__all__ = [
    "ROLES",
    "AuthError",
    "User",
    "authenticate",
    "create_token",
    "create_user",
    "csrf_token",
    "current_user",
    "reader",
    "require_reader",
    "require_role",
    "verify_csrf",
]

ROLES: dict[str, int] = {"viewer": 1, "editor": 2, "admin": 3}
SESSION_COOKIE = "reachmeter_session"
CSRF_FIELD = "csrf_token"
TOKEN_PREFIX = "rm_"  # noqa: S105  (a prefix, not a secret)
_SECRET_META_KEY = "web_secret_key"  # noqa: S105  (the name of a meta row)
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown address like a known one.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AuthError(ValueError):
    """A user or token cannot be created or used as asked."""


# Users and tokens.


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")


def create_user(store: Store, email: str, password: str, role: str = "viewer") -> User:
    """Add a user; ``AuthError`` when the address is taken, the role unknown or the password
    shorter than 8 characters."""
    email = email.strip().lower()
    _check_role(role)
    if "@" not in email:
        raise AuthError(f"{email!r} is not an e-mail address")
    if len(password) < 8:
        raise AuthError("the password must have at least 8 characters")
    with store.session() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise AuthError(f"a user {email} already exists")
        user = User(email=email, password_hash=hash_password(password), role=role)
        session.add(user)
        session.flush()
    return user


def get_user(store: Store, email: str) -> User | None:
    with store.session() as session:
        return session.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate(store: Store, email: str, password: str) -> User | None:
    """The enabled user with this address and password, or ``None``."""
    user = get_user(store, email)
    if user is None or user.disabled:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        with store.session() as session:
            stored = session.get(User, user.id)
            if stored is not None:
                stored.password_hash = user.password_hash = hash_password(password)
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, email: str, name: str = "") -> str:
    """A new API token for the user ``email``; shown once, only its hash is kept."""
    user = get_user(store, email)
    if user is None:
        raise AuthError(f"no user {email.strip().lower()}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.session() as session:
        session.add(ApiToken(user_id=user.id, token_sha256=_token_digest(token), name=name))
    return token


def user_for_token(store: Store, token: str) -> User | None:
    with store.session() as session:
        return session.scalar(
            select(User)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_sha256 == _token_digest(token),
                ApiToken.revoked_at.is_(None),
                User.disabled.is_(False),
            )
        )


def revoke_tokens(store: Store, email: str) -> int:
    """Revoke every token of a user; returns how many were live."""
    user = get_user(store, email)
    if user is None:
        raise AuthError(f"no user {email.strip().lower()}")
    now = dt.datetime.now(dt.UTC)
    with store.session() as session:
        tokens = session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ).all()
        for token in tokens:
            token.revoked_at = now
    return len(tokens)


# Signed session cookies.


def secret_key(request: Request) -> bytes:
    """The key signing session cookies: the settings' ``secret_key``, else one kept in the
    store (generated on first use, so logins survive restarts)."""
    state = request.app.state
    key: bytes | None = getattr(state, "secret_key_bytes", None)
    if key is None:
        configured: str = state.settings.secret_key
        if configured:
            key = configured.encode()
        else:
            store: Store = state.store
            stored = store.get_meta(_SECRET_META_KEY)
            if stored is None:
                store.set_meta(_SECRET_META_KEY, secrets.token_urlsafe(48))
                stored = store.get_meta(_SECRET_META_KEY)
            key = str(stored).encode()
        state.secret_key_bytes = key
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(data: dict[str, Any], key: bytes, now: float | None = None) -> str:
    body = _b64(orjson.dumps(data)) + "." + str(int(now if now is not None else time.time()))
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return body + "." + _b64(mac)


def unsign(value: str, key: bytes, max_age: int, now: float | None = None) -> dict[str, Any]:
    """The data of a signed value; empty when it is forged, malformed or older than
    ``max_age`` seconds."""
    try:
        payload, stamp, mac = value.split(".")
        expected = hmac.new(key, f"{payload}.{stamp}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return {}
        if (now if now is not None else time.time()) - int(stamp) > max_age:
            return {}
        data = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def session_data(request: Request) -> dict[str, Any]:
    """The request's session (``uid``, ``csrf``), read once from the cookie."""
    data: dict[str, Any] | None = getattr(request.state, "session", None)
    if data is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        max_age = request.app.state.settings.session_max_age
        data = unsign(cookie, secret_key(request), max_age) if cookie else {}
        request.state.session = data
        request.state.session_dirty = False
    return data


def _password_tag(user: User) -> str:
    # A changed password ends the sessions opened with the old one.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def log_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too)."""
    request.state.session = {
        "uid": user.id,
        "pw": _password_tag(user),
        "csrf": secrets.token_urlsafe(32),
    }
    request.state.session_dirty = True
    request.state.user = user


def log_out(request: Request) -> None:
    request.state.session = {"csrf": secrets.token_urlsafe(32)}
    request.state.session_dirty = True
    request.state.user = None


def save_session(request: Request, response: Response) -> None:
    """Set the session cookie on ``response`` when the session changed in this request."""
    if not getattr(request.state, "session_dirty", False):
        return
    response.set_cookie(
        SESSION_COOKIE,
        sign(request.state.session, secret_key(request)),
        max_age=request.app.state.settings.session_max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created (and the cookie marked for saving) when missing."""
    data = session_data(request)
    token = data.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        data["csrf"] = token
        request.state.session_dirty = True
    return token


def verify_csrf(request: Request, submitted: str | None) -> None:
    """403 unless ``submitted`` is the session's CSRF token."""
    expected = session_data(request).get("csrf")
    if not (
        isinstance(expected, str)
        and expected
        and submitted
        and hmac.compare_digest(expected.encode(), submitted.encode())
    ):
        raise HTTPException(403, "the form expired or did not come from this site: reload it")


# Who is asking.


def current_user(request: Request) -> User | None:
    """The user of a valid bearer token or session cookie, else ``None``."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    store: Store = request.app.state.store
    user: User | None = None
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        user = user_for_token(store, credentials.strip())
        if user is None:
            raise HTTPException(
                401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"}
            )
    else:
        uid = session_data(request).get("uid")
        if isinstance(uid, int):
            with store.session() as session:
                found = session.get(User, uid)
            if (
                found is not None
                and not found.disabled
                and session_data(request).get("pw") == _password_tag(found)
            ):
                user = found
    request.state.user = user
    return user


def _unauthenticated() -> HTTPException:
    return HTTPException(401, "log in or send an API token", headers={"WWW-Authenticate": "Bearer"})


def reader(request: Request) -> User | None:
    """The user, or ``None`` for an anonymous visitor of a public dashboard; 401 when the
    dashboard is not public and nobody is authenticated."""
    user = current_user(request)
    if user is None and not request.app.state.settings.public_dashboard:
        raise _unauthenticated()
    return user


async def require_reader(request: Request) -> User | None:
    """FastAPI dependency: ``reader``, run in the event loop rather than on a worker thread
    (an anonymous visitor needs no query; a session, one lookup by primary key)."""
    return reader(request)


def require_role(role: str) -> Callable[[Request], User]:
    """A FastAPI dependency yielding the authenticated user with at least ``role``;
    401 when nobody is authenticated, 403 when the user's role is lower."""
    _check_role(role)
    needed = ROLES[role]

    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            raise _unauthenticated()
        if ROLES.get(user.role, 0) < needed:
            raise HTTPException(403, f"this needs the {role} role")
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


def has_role(user: User | None, role: str) -> bool:
    return user is not None and ROLES.get(user.role, 0) >= ROLES[role]
