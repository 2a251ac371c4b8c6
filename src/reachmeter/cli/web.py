"""The web dashboard, REST API and badges: ``serve``, ``users`` and ``tokens``."""

from __future__ import annotations

import os
import threading
from typing import Annotated

import typer
from sqlalchemy import func, select

from reachmeter.cli.app import DbOption, app, console, err_console, open_cli_store
from reachmeter.settings import Settings
from reachmeter.store import Store
from reachmeter.store.schema_web import User

users_app = typer.Typer(help="Dashboard users and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for scripts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

PASSWORD_ENV = "REACHMETER_PASSWORD"  # noqa: S105  (the name of a variable)


def serve_store(
    store: Store,
    host: str,
    port: int,
    settings: Settings | None = None,
    *,
    demo: bool = False,
    workers: int = 1,
    access_log: bool = True,
) -> None:
    """Serve the dashboard, API and badges of ``store`` with uvicorn until interrupted, in
    ``workers`` processes (each with its own connections to the store)."""
    from reachmeter import charts
    from reachmeter.web import create_app, serving

    settings = settings or Settings()
    with store.engine.connect() as connection:
        users = int(connection.execute(select(func.count()).select_from(User)).scalar() or 0)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"ReachMeter{' DEMO' if demo else ''} dashboard: http://{shown}:{port}/")
    console.print(f"REST API: http://{shown}:{port}/api/v1/docs   (Ctrl+C stops)")
    if not settings.public_dashboard and users == 0:
        err_console.print(
            "[yellow]note:[/yellow] the dashboard needs a login and there are no users: add one "
            "with `reachmeter users add EMAIL --role admin`, or set "
            "REACHMETER_PUBLIC_DASHBOARD=true for anonymous read-only access"
        )
    if workers > 1:
        url = store.engine.url.render_as_string(hide_password=False)
        serving.run_workers(
            settings.model_copy(update={"database_url": url}),
            workers=workers, host=host, port=port, access_log=access_log,
        )  # fmt: skip
        return
    # Build the charts' JavaScript while the server starts, not on the first page view.
    threading.Thread(target=charts.javascript_bundle, daemon=True).start()
    serving.run(create_app(store, settings), host=host, port=port, access_log=access_log)


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (one per CPU core serves most).")
    ] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log each request (method, path, status).")
    ] = True,
) -> None:
    """Serve the web dashboard, the REST API (/api/v1) and badges of a store."""
    store = open_cli_store(db)
    try:
        serve_store(store, host, port, workers=workers, access_log=access_log)
    finally:
        store.close()


def _password(confirm: bool = True) -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (their login).")],
    role: Annotated[
        str, typer.Option(help="viewer (read), editor (write), or admin (everything).")
    ] = "viewer",
    db: DbOption = None,
) -> None:
    """Add a dashboard user. The password is asked for, or read from $REACHMETER_PASSWORD."""
    from reachmeter.web import auth

    store = open_cli_store(db)
    try:
        if role not in auth.ROLES:
            raise auth.AuthError(f"unknown role {role!r}: use one of {', '.join(auth.ROLES)}")
        user = auth.create_user(store, email, _password(), role)
    except auth.AuthError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(f"Added {user.email} as {user.role}.")


@users_app.command("list")
def users_list(db: DbOption = None) -> None:
    """The dashboard users and their roles."""
    store = open_cli_store(db)
    try:
        with store.session() as session:
            users = session.scalars(select(User).order_by(User.email)).all()
    finally:
        store.close()
    for user in users:
        state = " (disabled)" if user.disabled else ""
        typer.echo(f"{user.email}\t{user.role}{state}")


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "",
    db: DbOption = None,
) -> None:
    """Create an API token (sent as `Authorization: Bearer TOKEN`). Shown once: only its
    hash is stored."""
    from reachmeter.web import auth

    store = open_cli_store(db)
    try:
        token = auth.create_token(store, email, name)
    except auth.AuthError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    err_console.print("Keep this token secret; it is not shown again:")
    typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(
    email: Annotated[str, typer.Argument(help="The user whose tokens to revoke.")],
    db: DbOption = None,
) -> None:
    """Revoke every API token of a user."""
    from reachmeter.web import auth

    store = open_cli_store(db)
    try:
        count = auth.revoke_tokens(store, email)
    except auth.AuthError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(f"Revoked {count} token(s) of {email}.")
