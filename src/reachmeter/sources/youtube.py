"""YouTube: the videos of tracked channels (accounts on ``youtube``), with the YouTube Data
API v3 and an API key.

For each channel: ``channels.list`` (by ``@handle`` or channel id) gives the subscribers
(stored as the account's ``followers``), the channel's total views and video count, and its
uploads playlist; ``playlistItems.list`` pages through the uploads (newest first, up to
``max_videos``); ``videos.list`` (50 ids a request) gives each video's views, likes and
comments, stored as cumulative observations of the video's URL. Each video is one of the
account's ``posts`` on the day it was published, and a video whose title or description
links to an output is a mention of it (``discusses``). The mentions of each video are the
cursor: a later run that finds a video edited (the link gone) or no longer public records a
``deleted`` correction of the mentions that stopped standing.

Every call costs 1 unit of the key's daily quota (10,000 by default). A refused key or a
used-up quota (HTTP 400/403) stops the run with a message saying what to set; the runner
pauses the source after repeated failures.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

import orjson
from pydantic import Field

from reachmeter.http import UpstreamError
from reachmeter.matching.extract import scan
from reachmeter.records import (
    KEY_NAMESPACE,
    CorrectionRecord,
    ObservationRecord,
    RecordError,
    parse_time,
)
from reachmeter.sources._common import chunks
from reachmeter.sources._social import (
    ConfigurationError,
    LinkFilter,
    account_observation,
    mention_events,
    post_observation,
)
from reachmeter.sources.base import (
    BadPayloadError,
    Fetched,
    Page,
    Skipped,
    Source,
    SourceContext,
    SourceSettings,
    require,
)

__all__ = ["YouTubeSettings", "YouTubeSource", "channel_query"]

API = "https://www.googleapis.com/youtube/v3"
PLATFORM = "youtube"
_CHANNEL_ID = re.compile(r"^UC[\w-]{22}$")
_VIDEO_METRICS = {"viewCount": "views", "likeCount": "likes", "commentCount": "comments"}
_HELP = (
    "set a YouTube Data API v3 key with `reachmeter sources set youtube api_key='\"KEY\"'` "
    "(Google Cloud console: enable the YouTube Data API v3 for the key's project)"
)


class YouTubeSettings(SourceSettings):
    #: A YouTube Data API v3 key (a secret: never logged or stored in evidence).
    api_key: str = ""
    #: At most this many of each channel's newest videos are read each run.
    max_videos: int = Field(default=500, ge=1, le=20000)


def _raw(item: Any) -> str:
    return orjson.dumps(item, default=str).decode()


def _post(
    source_id: str, account: tuple[str, str], video_id: str, published: dt.datetime
) -> ObservationRecord:
    """One post of the account on the day the video was published (one per video, so a
    day's posts add up however many runs saw them)."""
    day = published.date()
    key = uuid.uuid5(
        KEY_NAMESPACE, f"{source_id}|account:{account[0]}:{account[1]}|post|{video_id}"
    )
    return ObservationRecord(
        observation_key=f"{source_id}:{key}",
        metric="posts",
        value=1.0,
        observed_at=published,
        source_id=source_id,
        account=account,
        cumulative=False,
        period_start=day,
        period_end=day,
    )


def _withdrawn(
    saved: str | None,
    mentions: dict[str, list[str]],
    listed: set[str],
    complete: bool,
    at: dt.datetime,
    *,
    unreadable: set[str],
) -> tuple[list[CorrectionRecord], dict[str, list[str]]]:
    """The corrections of mentions that stopped standing since the last run, and the
    mention keys of each video to remember.

    A video read again whose title and description no longer link to an output loses that
    mention; a video no longer public (missing from a complete list of uploads, or listed
    but not returned) loses all of them. A video outside this run's window, or quarantined
    this time, is unknown and its mentions are kept as they were.
    """
    try:
        previous = orjson.loads(saved or "{}")
    except orjson.JSONDecodeError:
        previous = {}
    corrections: list[CorrectionRecord] = []
    kept = {video: keys for video, keys in mentions.items() if keys}
    for video, keys in sorted(previous.items()) if isinstance(previous, dict) else []:
        if not isinstance(keys, list):
            continue
        if video in unreadable:
            kept[video] = keys
            continue
        if video in mentions:
            gone = [k for k in keys if k not in mentions[video]]
            reason = f"video {video} no longer links to the output (edited)"
        elif complete or video in listed:
            gone = keys
            reason = f"video {video} is no longer public (deleted or made private)"
        else:
            kept[video] = keys
            continue
        corrections.extend(
            CorrectionRecord(
                target_kind="event",
                target_key=str(key),
                action="deleted",
                reason=reason,
                corrected_at=at,
            )
            for key in gone
        )
    return corrections, dict(sorted(kept.items()))


def channel_query(handle: str) -> dict[str, str] | None:
    """The ``channels.list`` parameter that finds a stored YouTube account, or None."""
    text = handle.strip()
    if text.startswith(("http://", "https://")):
        segments = [s for s in urlsplit(text).path.split("/") if s]
        if len(segments) >= 2 and segments[0] == "channel":
            text = segments[1]
        elif len(segments) >= 2 and segments[0] == "user":
            return {"forUsername": segments[1]}
        elif segments and segments[0].startswith("@"):
            text = segments[0]
        else:
            return None
    if text.startswith("@") and len(text) > 1:
        return {"forHandle": text}
    if _CHANNEL_ID.match(text):
        return {"id": text}
    return None


def _count(value: Any) -> int | None:
    """YouTube sends counts as strings ("1234"); hidden counts are absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class YouTubeSource(Source):
    id = "youtube"
    name = "YouTube"
    version = "1"
    kind = "social"
    description = "Videos of tracked YouTube channels: views, likes, comments, mentions."
    settings_model = YouTubeSettings
    rate_limits: ClassVar[dict[str, float]] = {"www.googleapis.com": 5.0}
    secret_fields = ("api_key",)

    def _get(self, ctx: SourceContext, endpoint: str, params: dict[str, str]) -> Fetched:
        settings = cast(YouTubeSettings, self.settings)
        url = f"{API}/{endpoint}"
        try:
            return ctx.get_json(url, params={**params, "key": settings.api_key})
        except UpstreamError as exc:
            if exc.status in (400, 401, 403):
                raise ConfigurationError(
                    f"YouTube refused the request (HTTP {exc.status}): the API key is not "
                    f"valid for the YouTube Data API v3, or its daily quota is used up; {_HELP}",
                    url=exc.url,
                ) from None
            raise

    def collect(self, ctx: SourceContext) -> Iterator[Page | Skipped]:
        settings = cast(YouTubeSettings, self.settings)
        handles = ctx.accounts(PLATFORM)
        if not handles:
            return
        if not settings.api_key:
            raise ConfigurationError(f"YouTube needs an API key: {_HELP}", url=API)
        links = LinkFilter(ctx)
        for handle in handles:
            query = channel_query(handle)
            if query is None:
                yield Skipped(
                    f"youtube account {handle}",
                    "not a channel id (UC...), @handle or channel URL",
                )
                continue
            yield from self._channel(ctx, settings, links, handle, query)

    def _channel(
        self,
        ctx: SourceContext,
        settings: YouTubeSettings,
        links: LinkFilter,
        handle: str,
        query: dict[str, str],
    ) -> Iterator[Page | Skipped]:
        account = (PLATFORM, handle)
        fetched = self._get(ctx, "channels", {"part": "snippet,statistics,contentDetails", **query})
        if not isinstance(fetched.data, Mapping):
            raise BadPayloadError(fetched.url, "channels answer is not a JSON object")
        # A handle or id YouTube does not know gives no ``items`` at all.
        items = fetched.data.get("items") or []
        if not isinstance(items, list) or not items:
            yield Skipped(fetched.url, f"YouTube has no channel {handle}")
            return
        channel = items[0]
        page = ctx.page(fetched)
        stats = channel.get("statistics") if isinstance(channel, Mapping) else None
        if isinstance(stats, Mapping):
            figures = [("viewCount", "views"), ("videoCount", "videos")]
            if not stats.get("hiddenSubscriberCount"):
                figures.append(("subscriberCount", "followers"))
            for field, metric in figures:
                fact = account_observation(
                    self.id, PLATFORM, handle, metric, _count(stats.get(field)), ctx.collected_at
                )
                if fact is not None:
                    page.facts.append(fact)
        uploads = (
            channel.get("contentDetails", {}).get("relatedPlaylists", {}).get("uploads")
            if isinstance(channel, Mapping)
            else None
        )
        channel_id = channel.get("id") if isinstance(channel, Mapping) else None
        page.cursors[f"channel:{handle}"] = ctx.collected_at.date().isoformat()
        if not isinstance(uploads, str) or not uploads:
            yield page
            return
        video_ids: list[str] = []
        pages: list[Page] = [page]
        token = ""
        # Whether every upload was listed (so a video missing from the list is gone).
        complete = False
        while len(video_ids) < settings.max_videos:
            params = {
                "part": "contentDetails",
                "playlistId": uploads,
                "maxResults": "50",
            }
            if token:
                params["pageToken"] = token
            try:
                listing = self._get(ctx, "playlistItems", params)
            except UpstreamError as exc:
                if exc.status == 404:  # a channel without uploads
                    complete = True
                    break
                raise
            problems: list[tuple[str, str]] = []
            for item in require(listing.data, "items", listing.url) or []:
                video = (
                    item.get("contentDetails", {}).get("videoId")
                    if isinstance(item, Mapping)
                    else None
                )
                if isinstance(video, str) and video:
                    if video not in video_ids:
                        video_ids.append(video)
                else:
                    problems.append(("playlist item without a video id", _raw(item)))
            pages.append(ctx.page(listing, problems=problems))
            token = listing.data.get("nextPageToken") or ""
            if not token:
                complete = True
                break
        listed = video_ids[: settings.max_videos]
        mentions: dict[str, list[str]] = {}
        unreadable: set[str] = set()
        for batch in chunks(listed, 50):
            fetched = self._get(
                ctx, "videos", {"part": "snippet,statistics", "id": ",".join(batch)}
            )
            page = ctx.page(fetched)
            for video in require(fetched.data, "items", fetched.url) or []:
                try:
                    mentions[video["id"]] = self._video(
                        ctx, links, video, account, channel_id, page
                    )
                except RecordError as exc:
                    page.problems.append((str(exc), _raw(video)))
                    if isinstance(video, Mapping) and isinstance(video.get("id"), str):
                        unreadable.add(video["id"])
            pages.append(page)
        stream = f"mentions:{handle}"
        corrections, kept = _withdrawn(
            ctx.cursors.get(stream),
            mentions,
            set(listed),
            complete,
            ctx.collected_at,
            unreadable=unreadable,
        )
        pages[-1].facts.extend(corrections)
        pages[-1].cursors[stream] = orjson.dumps(kept).decode()
        yield from pages

    def _video(
        self,
        ctx: SourceContext,
        links: LinkFilter,
        video: Any,
        account: tuple[str, str],
        channel_id: Any,
        page: Page,
    ) -> list[str]:
        """Add one video's observations, its post and its mentions to ``page``; the keys of
        its mentions."""
        if not isinstance(video, Mapping) or not isinstance(video.get("id"), str):
            raise RecordError("video without an id")
        snippet = video.get("snippet")
        if not isinstance(snippet, Mapping):
            raise RecordError(f"video {video['id']} has no snippet")
        published = parse_time(snippet.get("publishedAt"), "publishedAt")
        url = f"https://www.youtube.com/watch?v={video['id']}"
        stats = video.get("statistics")
        for field, metric in _VIDEO_METRICS.items():
            value = _count(stats.get(field)) if isinstance(stats, Mapping) else None
            fact = post_observation(self.id, url, metric, value, ctx.collected_at)
            if fact is not None:
                page.facts.append(fact)
        page.facts.append(_post(self.id, account, video["id"], published))
        raw_title, description = snippet.get("title"), snippet.get("description")
        title = raw_title if isinstance(raw_title, str) else ""
        text = f"{title}\n{description}" if isinstance(description, str) else title
        channel_url = (
            f"https://www.youtube.com/channel/{channel_id}" if isinstance(channel_id, str) else None
        )
        urls, _ = scan(text)
        events = mention_events(
            self.id,
            subj_id=url,
            found=links.identifiers(urls, text),
            occurred_at=published,
            collected_at=ctx.collected_at,
            author=channel_url,
            subj={
                "pid": url,
                "type": "video",
                "title": title,
                "issued": published.isoformat(),
                "author": {"url": channel_url, "name": snippet.get("channelTitle")},
                "account": f"{account[0]}:{account[1]}",
            },
        )
        page.facts.extend(events)
        return [event.event_key for event in events]
