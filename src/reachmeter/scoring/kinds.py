"""What each source counts as: its kind (the unit a profile weighs) and its PlumX category.

Events name their ``source_id`` (Event Data's and our sources' slugs); observations name a
``metric``. Both are mapped here to a *kind* such as ``news`` or ``twitter``, which is what a
profile gives a weight to, and each kind belongs to one of PlumX's five categories.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CATEGORIES",
    "EVENT_KINDS",
    "KINDS",
    "OBSERVATION_KINDS",
    "category_of",
]

USAGE, CAPTURES, MENTIONS, SOCIAL, CITATIONS = (
    "usage",
    "captures",
    "mentions",
    "social-media",
    "citations",
)
CATEGORIES: Final = (USAGE, CAPTURES, MENTIONS, SOCIAL, CITATIONS)

# kind -> PlumX category
KINDS: Final[dict[str, str]] = {
    "news": MENTIONS,
    "blog": MENTIONS,
    "wikipedia": MENTIONS,
    "qna": MENTIONS,
    "peer-review": MENTIONS,
    "syllabus": MENTIONS,
    "annotation": MENTIONS,
    "web": MENTIONS,
    "policy": CITATIONS,
    "guideline": CITATIONS,
    "patent": CITATIONS,
    "citations": CITATIONS,
    "twitter": SOCIAL,
    "bluesky": SOCIAL,
    "mastodon": SOCIAL,
    "facebook": SOCIAL,
    "linkedin": SOCIAL,
    "reddit": SOCIAL,
    "pinterest": SOCIAL,
    "youtube": SOCIAL,
    "weibo": SOCIAL,
    "googleplus": SOCIAL,
    "hackernews": SOCIAL,
    "readers": CAPTURES,
    "usage": USAGE,
    "other": MENTIONS,
}

# event source_id -> kind; a profile's [sources] table adds to this
EVENT_KINDS: Final[dict[str, str]] = {
    "newsfeed": "news",
    "news": "news",
    "msm": "news",
    "wordpressdotcom": "blog",
    "blog": "blog",
    "blogs": "blog",
    "feeds": "blog",
    "policy": "policy",
    "policies": "policy",
    "guideline": "guideline",
    "guidelines": "guideline",
    "patent": "patent",
    "patents": "patent",
    "wikipedia": "wikipedia",
    "f1000": "peer-review",
    "publons": "peer-review",
    "pubpeer": "peer-review",
    "peer-review": "peer-review",
    "peer_reviews": "peer-review",
    "syllabus": "syllabus",
    "syllabi": "syllabus",
    "stackexchange": "qna",
    "qna": "qna",
    "hypothesis": "annotation",
    "web": "web",
    "twitter": "twitter",
    "x": "twitter",
    "tweeters": "twitter",
    "bluesky": "bluesky",
    "mastodon": "mastodon",
    "facebook": "facebook",
    "fbwalls": "facebook",
    "linkedin": "linkedin",
    "reddit": "reddit",
    "reddit-links": "reddit",
    "rdts": "reddit",
    "pinterest": "pinterest",
    "youtube": "youtube",
    "videos": "youtube",
    "weibo": "weibo",
    "googleplus": "googleplus",
    "gplus": "googleplus",
    "hackernews": "hackernews",
    "crossref": "citations",
    "datacite": "citations",
}

# observation metric -> kind (others, such as account metrics, are not output attention)
OBSERVATION_KINDS: Final[dict[str, str]] = {
    "citations": "citations",
    "readers": "readers",
    "mendeley": "readers",
    "views": "usage",
    "downloads": "usage",
    "investigations": "usage",
    "requests": "usage",
    # COUNTER R5 item and title usage: the unique counts (one per user session), as COUNTER
    # recommends for comparisons; the Total_ counts would count the same use again.
    "unique-item-investigations": "usage",
    "unique-item-requests": "usage",
}


def category_of(kind: str) -> str:
    """The PlumX category of a kind (``mentions`` for kinds we do not know)."""
    return KINDS.get(kind, MENTIONS)
