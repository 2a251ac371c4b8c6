"""The ``reachmeter`` command line. Each module registers its commands on ``app``."""

from __future__ import annotations

from reachmeter.cli import catalog as _catalog  # noqa: F401  (registers commands)
from reachmeter.cli import corrections as _corrections  # noqa: F401
from reachmeter.cli import demo as _demo  # noqa: F401
from reachmeter.cli import feeds as _feeds  # noqa: F401
from reachmeter.cli import ingest as _ingest  # noqa: F401  (registers commands)
from reachmeter.cli import matching as _matching  # noqa: F401
from reachmeter.cli import monitor as _monitor  # noqa: F401
from reachmeter.cli import reports as _reports  # noqa: F401
from reachmeter.cli import scoring as _scoring  # noqa: F401  (registers commands)
from reachmeter.cli import social as _social  # noqa: F401
from reachmeter.cli import sources as _sources  # noqa: F401  (registers commands)
from reachmeter.cli import web as _web  # noqa: F401
from reachmeter.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
