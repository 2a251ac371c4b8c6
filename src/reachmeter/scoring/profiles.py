"""Weight profiles: named, versioned TOML data, shipped in ``scoring/profiles`` or read from a file.

A profile is checked completely before anything is computed. Every error names the file and
the line: a TOML syntax error (from ``tomllib``), an unknown source or kind, a negative
weight or cap, a flag kind that does not exist, a missing name or version.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from reachmeter.scoring.kinds import EVENT_KINDS, KINDS

__all__ = [
    "FLAG_KINDS",
    "FlagRules",
    "Profile",
    "ProfileError",
    "builtin_profiles",
    "load_profile",
    "parse_profile",
]

FLAG_KINDS = ("burst", "bot", "repeated-text", "count-jump", "self-promotion")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class FlagRules:
    """Thresholds of the data-quality flags, and which flags stop a mention counting."""

    exclude: frozenset[str] = frozenset()
    burst_posts: int = 5
    burst_minutes: int = 60
    bot_outputs: int = 20
    bot_posts_per_day: float = 20.0
    bot_fresh_share: float = 0.9
    repeat_copies: int = 3
    repeat_min_chars: int = 30
    jump_rise_per_day: float = 1000.0


@dataclass(frozen=True)
class Profile:
    """Weights per kind (points per distinct author), caps per kind, and source aliases."""

    name: str
    version: str
    description: str
    weights: Mapping[str, float]
    caps: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    flags: FlagRules = FlagRules()
    text: str = ""

    @property
    def sha256(self) -> str:
        """The hash of the profile's text, which the methods log keys changes by."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def kind_of_source(self, source_id: str) -> str:
        """The kind an event source counts as under this profile (``other`` if unknown)."""
        return self.sources.get(source_id) or EVENT_KINDS.get(source_id, "other")

    def weight(self, kind: str) -> float:
        return float(self.weights.get(kind, 0.0))

    def points(self, kind: str, count: float) -> float:
        """The points ``count`` distinct authors (or units) of a kind add, capped."""
        value = self.weight(kind) * count
        cap = self.caps.get(kind)
        return min(value, cap) if cap is not None else value


def _line_of(text: str, table: str | None, key: str) -> int:
    """The line where ``key`` is set (inside ``[table]`` when given), or 0 if not found."""
    current: str | None = None
    pattern = re.compile(rf"""^\s*(?:"{re.escape(key)}"|'{re.escape(key)}'|{re.escape(key)})\s*=""")
    header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        found = header.match(line)
        if found:
            current = found.group(1).strip().strip('"')
            continue
        if current == table and pattern.match(line):
            return number
    return 0


def parse_profile(text: str, origin: str = "<profile>") -> Profile:
    """Parse and check a profile's TOML text; raise ``ProfileError`` naming the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        where = f"{origin}, line {at.group(1)}" if at else origin
        raise ProfileError(f"{where}: TOML syntax error: {exc}") from None

    def fail(table: str | None, key: str, message: str) -> ProfileError:
        line = _line_of(text, table, key)
        where = f"{origin}, line {line}" if line else origin
        return ProfileError(f"{where}: {message}")

    known_top = {"name", "version", "description", "weights", "caps", "sources", "flags"}
    for key in data:
        if key not in known_top:
            raise fail(None, key, f"unknown setting {key!r}; known: {', '.join(sorted(known_top))}")
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail(None, "name", "name must be a lower-case slug such as 'default'")
    if not isinstance(version, str | int) or isinstance(version, bool) or not str(version):
        raise fail(None, "version", "version must be a string such as '1' or '2026.1'")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail(None, "description", "description must be a string")

    def numbers(table: str) -> dict[str, float]:
        raw = data.get(table, {})
        if not isinstance(raw, dict):
            raise fail(None, table, f"[{table}] must be a table")
        values: dict[str, float] = {}
        for kind, value in raw.items():
            if kind not in KINDS:
                raise fail(
                    table,
                    kind,
                    f"unknown source {kind!r} in [{table}]; known: {', '.join(sorted(KINDS))}",
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(table, kind, f"{table}.{kind} must be a number, not {value!r}")
            if value < 0 or value != value:
                raise fail(table, kind, f"{table}.{kind} is {value}: it must not be negative")
            values[kind] = float(value)
        return values

    weights, caps = numbers("weights"), numbers("caps")
    sources_raw = data.get("sources", {})
    if not isinstance(sources_raw, dict):
        raise fail(None, "sources", "[sources] must be a table of source_id = kind")
    sources: dict[str, str] = {}
    for source_id, kind in sources_raw.items():
        if not isinstance(kind, str) or kind not in KINDS:
            raise fail("sources", source_id, f"source {source_id!r} maps to unknown kind {kind!r}")
        sources[source_id] = kind
    return Profile(
        name=name,
        version=str(version),
        description=description,
        weights=weights,
        caps=caps,
        sources=sources,
        flags=_flag_rules(data.get("flags", {}), fail),
        text=text,
    )


def _flag_rules(raw: Any, fail: Any) -> FlagRules:
    if not isinstance(raw, dict):
        raise fail(None, "flags", "[flags] must be a table")
    defaults = FlagRules()
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "exclude":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail("flags", key, "flags.exclude must be a list of flag kinds")
            unknown = [v for v in value if v not in FLAG_KINDS]
            if unknown:
                raise fail(
                    "flags",
                    key,
                    f"unknown flag kind {unknown[0]!r}; known: {', '.join(FLAG_KINDS)}",
                )
            settings["exclude"] = frozenset(value)
            continue
        attribute = key.replace("-", "_")
        if not hasattr(defaults, attribute):
            raise fail("flags", key, f"unknown flag setting {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise fail("flags", key, f"flags.{key} must be a positive number")
        default = getattr(defaults, attribute)
        settings[attribute] = type(default)(value)
    return FlagRules(**settings)


def builtin_profiles() -> list[str]:
    """The names of the profiles shipped with ReachMeter."""
    folder = resources.files("reachmeter.scoring") / "profiles"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``default``, ``altmetric-like``) or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read the profile: {exc}") from None
        return parse_profile(text, str(path))
    resource = resources.files("reachmeter.scoring") / "profiles" / f"{name_or_path}.toml"
    if not resource.is_file():
        raise ProfileError(
            f"no profile named {str(name_or_path)!r}; shipped: {', '.join(builtin_profiles())}"
            " (or give a path to a .toml file)"
        )
    return parse_profile(resource.read_text(encoding="utf-8"), f"{name_or_path}.toml")
