"""The documentation keeps up with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_generated_from_the_current_commands(tmp_path: Path) -> None:
    generated = tmp_path / "cli.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "typer",
            "reachmeter.cli",
            "utils",
            "docs",
            "--name",
            "reachmeter",
            "--output",
            str(generated),
        ],
        check=True,
        capture_output=True,
    )
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == generated.read_text(), "docs/cli.md is stale: run `make docs`"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
    missing = [page for page in pages if f"({page})" not in readme]
    assert missing == []
