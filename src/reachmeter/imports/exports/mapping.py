"""Column mappings of analytics exports: built-in TOML files, overridable by the user's own.

A mapping names, for each *layout* of a platform's export (per-post CSV, per-day CSV, a
sheet of a workbook, a file in a ZIP), the columns that say which layout it is (``detect``),
the columns of its fields (post id, link, text, time or date) and of its metrics. Every
column is a list of the names it has gone by; names are compared without regard to case or
repeated spaces. A user's mapping file (TOML or YAML) has the same shape: a layout with a
built-in name changes only what it gives, a new name adds a layout.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "KINDS",
    "PLATFORMS",
    "Layout",
    "MappingError",
    "PlatformMapping",
    "builtin_mapping_text",
    "column_key",
    "load_mappings",
]

PLATFORMS = ("x", "linkedin", "meta", "gsc")
KINDS = ("posts", "daily", "pages", "breakdown", "ignore")
_FIELDS = {"post_id", "url", "text", "time", "date", "key", "account"}
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the entry."""


def column_key(name: object) -> str:
    """A column name as compared: lower case, single spaces, no byte-order mark."""
    return " ".join(str(name).replace("\ufeff", "").split()).casefold()


@dataclass(frozen=True)
class Layout:
    """One layout of one platform's export."""

    platform: str
    name: str
    kind: str
    title: str
    detect: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]
    metrics: dict[str, tuple[str, ...]]
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)
    time_formats: tuple[str, ...] = ()
    account_metrics: tuple[str, ...] = ()
    zero_is_missing: tuple[str, ...] = ()
    dimension: str = ""
    file_account: str = ""
    url_account: str = ""
    account_platform: str = ""
    event_source: str = ""

    @property
    def label(self) -> str:
        return f"{self.platform}/{self.name}"

    def matches(self, header: set[str]) -> bool:
        """Whether a header (``column_key`` names) has every column this layout needs."""
        return all(column_key(name) in header for name in self.detect)


@dataclass(frozen=True)
class PlatformMapping:
    """A platform's export layouts and what its figures are stored as."""

    platform: str
    title: str
    source_id: str
    account_platform: str
    event_source: str
    own_hosts: tuple[str, ...]
    layouts: tuple[Layout, ...]


def builtin_mapping_text(platform: str) -> str:
    """The built-in mapping of a platform, as the TOML text shipped with ReachMeter."""
    if platform not in PLATFORMS:
        raise MappingError(f"unknown platform {platform!r}; use one of {', '.join(PLATFORMS)}")
    return resources.files(__package__).joinpath("mappings", f"{platform}.toml").read_text("utf-8")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise MappingError(f"{where}: expected a column name or a list of column names")
    return tuple(value)


def _table(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected a table")
    return value


def _layout(platform: str, defaults: dict[str, Any], name: str, raw: dict[str, Any]) -> Layout:
    where = f"layouts.{name}"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise MappingError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    fields = {
        key: _strings(value, f"{where}.fields.{key}")
        for key, value in _table(raw.get("fields"), f"{where}.fields").items()
    }
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise MappingError(
            f"{where}.fields: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_FIELDS))}"
        )
    metrics = {
        key: _strings(value, f"{where}.metrics.{key}")
        for key, value in _table(raw.get("metrics"), f"{where}.metrics").items()
    }
    derived = {
        key: _strings(value, f"{where}.derived.{key}")
        for key, value in _table(raw.get("derived"), f"{where}.derived").items()
    }
    for metric in [*metrics, *derived]:
        if not _METRIC_NAME.match(metric):
            raise MappingError(
                f"{where}: metric name {metric!r} is not lower_case_with_underscores"
            )
    needed = {"posts": ("time",), "daily": ("date",), "pages": ("key",), "breakdown": ("key",)}
    for wanted in needed.get(kind, ()):
        if wanted not in fields:
            raise MappingError(f"{where}.fields: a {kind} layout needs the field {wanted!r}")
    if kind == "posts" and "url" not in fields:
        raise MappingError(f"{where}.fields: a posts layout needs the field 'url'")
    if kind == "breakdown" and not raw.get("dimension"):
        raise MappingError(f"{where}: a breakdown layout needs a dimension (e.g. query)")
    detect = _strings(raw.get("detect"), f"{where}.detect")
    for pattern_name in ("file_account", "url_account"):
        pattern = raw.get(pattern_name, "")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise MappingError(f"{where}.{pattern_name}: not a regular expression: {exc}") from exc
        if pattern and "account" not in compiled.groupindex:
            raise MappingError(f"{where}.{pattern_name}: needs a group named 'account'")
    return Layout(
        platform=platform,
        name=name,
        kind=kind,
        title=str(raw.get("title") or name),
        detect=detect,
        fields=fields,
        metrics=metrics,
        derived=derived,
        time_formats=tuple(raw.get("time_formats") or ()),
        account_metrics=tuple(raw.get("account_metrics") or ()),
        zero_is_missing=tuple(raw.get("zero_is_missing") or ()),
        dimension=str(raw.get("dimension") or ""),
        file_account=str(raw.get("file_account") or ""),
        url_account=str(raw.get("url_account") or ""),
        account_platform=str(raw.get("account_platform") or defaults["account_platform"]),
        event_source=str(raw.get("event_source", defaults.get("event_source", ""))),
    )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _platform(platform: str, document: dict[str, Any]) -> PlatformMapping:
    layouts = _table(document.get("layouts"), "layouts")
    if not layouts:
        raise MappingError(f"{platform}: no layouts")
    return PlatformMapping(
        platform=platform,
        title=str(document.get("title") or platform),
        source_id=str(document.get("source_id") or f"export-{platform}"),
        account_platform=str(document.get("account_platform") or platform),
        event_source=str(document.get("event_source") or ""),
        own_hosts=tuple(document.get("own_hosts") or ()),
        layouts=tuple(
            _layout(platform, document, name, _table(raw, f"layouts.{name}"))
            for name, raw in layouts.items()
        ),
    )


def _read_user_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read the mapping file: {exc}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            document = yaml.safe_load(text)
        else:
            document = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: {exc}") from exc
    if not isinstance(document, dict):
        raise MappingError(f"{path}: a mapping file is a table (platform = ..., [layouts.NAME])")
    return document


def load_mappings(user_file: Path | None = None) -> dict[str, PlatformMapping]:
    """Every platform's mapping: the built-in ones, with ``user_file`` laid over its platform.

    The user's file names its ``platform``; layouts with a built-in name are merged key by
    key, others are added. Raises ``MappingError`` naming the file and the bad entry.
    """
    documents = {platform: tomllib.loads(builtin_mapping_text(platform)) for platform in PLATFORMS}
    if user_file is not None:
        user = _read_user_mapping(user_file)
        platform = user.get("platform")
        if platform not in PLATFORMS:
            raise MappingError(
                f"{user_file}: platform {platform!r} is not one of {', '.join(PLATFORMS)}"
            )
        documents[platform] = _merge(documents[platform], user)
        try:
            return {name: _platform(name, document) for name, document in documents.items()}
        except MappingError as exc:
            raise MappingError(f"{user_file}: {exc}") from exc
    return {name: _platform(name, document) for name, document in documents.items()}
