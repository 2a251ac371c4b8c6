"""Generate the demo organisation: pure, seeded, and written as ordinary input files.

Everything comes from one ``random.Random(seed)`` and a fixed reference time ``as_of``, so the
same arguments give byte-identical files. Names, titles and identifiers are fictional: DOIs use
the example prefix ``10.5555``, web addresses use ``.example`` domains, and PMIDs, arXiv ids,
SSRN ids and ORCIDs are drawn from ranges not (yet) issued.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_SEED",
    "OUTPUT_TYPES",
    "DemoAccount",
    "DemoData",
    "DemoFiles",
    "DemoGroup",
    "DemoMention",
    "DemoObservation",
    "DemoOutput",
    "DemoPerson",
    "build_demo",
    "generate_demo",
    "orcid_check_digit",
    "write_demo",
]

DEFAULT_SEED = 20261101
DEFAULT_AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
WINDOW_DAYS = 730
BASE_OUTPUTS = 600
BASE_PEOPLE = 160
BASE_MENTIONS = 15_000

ORG_NAME = "Demo University Library"
ORG_DOMAIN = "demo-university.example"
DOI_PREFIX = "10.5555"

# Output types, spelled as the catalogue spells them (``store.catalog.OUTPUT_TYPES``).
ARTICLE = "article"
PREPRINT = "preprint"
DATASET = "dataset"
REPORT = "report"
LEGAL_BRIEFING = "briefing"
BOOK = "book"
CHAPTER = "chapter"
BLOG_POST = "blog-post"
VIDEO = "video"
WEB_PAGE = "web-page"
OUTPUT_TYPES = (
    ARTICLE,
    PREPRINT,
    DATASET,
    REPORT,
    LEGAL_BRIEFING,
    BOOK,
    CHAPTER,
    BLOG_POST,
    VIDEO,
    WEB_PAGE,
)

OUTPUT_COLUMNS = (
    "title",
    "type",
    "venue",
    "published_on",
    "doi",
    "pmid",
    "pmcid",
    "arxiv",
    "isbn",
    "handle",
    "urn",
    "ssrn",
    "url",
    "identifiers",
    "authors",
)
PEOPLE_COLUMNS = ("name", "orcid", "email", "role", "groups", "accounts")
ACCOUNT_COLUMNS = ("platform", "handle", "url", "owner")


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class DemoGroup:
    """A group; ``path`` runs from the top of the hierarchy down to this group."""

    path: tuple[str, ...]
    kind: str

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def path_text(self) -> str:
        return " > ".join(self.path)


@dataclass(frozen=True)
class DemoAccount:
    """One presence on one platform; ``owner`` is a person's key, or None for the organisation."""

    platform: str
    handle: str
    url: str
    owner: str | None
    is_bot: bool = False

    @property
    def ref(self) -> str:
        return f"{self.platform}:{self.handle}"


@dataclass
class DemoPerson:
    key: str
    name: str
    orcid: str | None
    email: str
    role: str
    discipline: str
    groups: list[DemoGroup]
    accounts: list[DemoAccount] = field(default_factory=list)

    @property
    def author_ref(self) -> str:
        return f"{self.name} ({self.orcid})" if self.orcid else self.name


@dataclass
class DemoOutput:
    key: str
    type: str
    discipline: str
    title: str
    venue: str
    published_on: dt.date
    authors: list[DemoPerson]
    topic: str
    external_authors: list[str] = field(default_factory=list)
    doi: str | None = None
    pmid: str | None = None
    pmcid: str | None = None
    arxiv: str | None = None
    isbn: str | None = None
    ssrn: str | None = None
    url: str | None = None

    @property
    def obj_ids(self) -> list[str]:
        """Every ``obj_id`` a mention may use for this output; the primary one first."""
        ids: list[str] = []
        if self.doi:
            ids.append(f"https://doi.org/{self.doi}")
        if self.arxiv:
            ids.append(f"https://arxiv.org/abs/{self.arxiv}")
        if self.pmid:
            ids.append(f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/")
        if self.url:
            ids.append(self.url)
        return ids

    @property
    def primary_id(self) -> str:
        return self.obj_ids[0]


@dataclass(frozen=True)
class DemoMention:
    id: str
    subj_id: str
    relation_type_id: str
    obj_id: str
    source_id: str
    occurred_at: dt.datetime
    title: str
    author_url: str
    output_key: str

    def to_event(self) -> dict[str, object]:
        """The mention as one Crossref Event Data event."""
        return {
            "id": self.id,
            "subj_id": self.subj_id,
            "relation_type_id": self.relation_type_id,
            "obj_id": self.obj_id,
            "source_id": self.source_id,
            "occurred_at": _iso(self.occurred_at),
            "subj": {"pid": self.subj_id, "title": self.title, "author": {"url": self.author_url}},
            "evidence_record": None,
        }


@dataclass(frozen=True)
class DemoObservation:
    id: str
    metric: str
    value: int
    cumulative: bool
    period_start: dt.date
    period_end: dt.date
    observed_at: dt.datetime
    source_id: str
    obj_id: str | None = None
    account: str | None = None

    def to_record(self) -> dict[str, object]:
        """The observation as one line of the generic observation JSON Lines format."""
        record: dict[str, object] = {"id": self.id, "metric": self.metric, "value": self.value}
        if self.obj_id is not None:
            record["obj_id"] = self.obj_id
        if self.account is not None:
            record["account"] = self.account
        record.update(
            cumulative=self.cumulative,
            period_start=self.period_start.isoformat(),
            period_end=self.period_end.isoformat(),
            observed_at=_iso(self.observed_at),
            source_id=self.source_id,
        )
        return record


@dataclass
class DemoData:
    """The whole generated organisation, before it is written to files."""

    seed: int
    scale: float
    as_of: dt.datetime
    groups: list[DemoGroup]
    people: list[DemoPerson]
    org_accounts: list[DemoAccount]
    outputs: list[DemoOutput]
    mentions: list[DemoMention]
    observations: list[DemoObservation]

    @property
    def accounts(self) -> list[DemoAccount]:
        """Accounts of the organisation and of its people (not the public's or bots')."""
        return [*self.org_accounts, *(a for p in self.people for a in p.accounts)]

    def outputs_by_type(self) -> Counter[str]:
        return Counter(o.type for o in self.outputs)

    def mentions_by_source(self) -> Counter[str]:
        return Counter(m.source_id for m in self.mentions)

    def mentions_by_output(self) -> Counter[str]:
        return Counter(m.output_key for m in self.mentions)


@dataclass(frozen=True)
class DemoFiles:
    """The files written for one demo, in the order they are loaded."""

    directory: Path
    people: Path
    outputs: Path
    accounts: Path
    mentions: Path
    observations: Path


# --------------------------------------------------------------------------- vocabulary

FIRST_NAMES = (
    "Amara", "Ben", "Chiara", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonah",
    "Kavya", "Lena", "Mateo", "Nia", "Oskar", "Priya", "Quentin", "Rosa", "Samir", "Tamsin",
    "Uma", "Viktor", "Wren", "Xiu", "Yusuf", "Zofia", "Aisha", "Bram", "Carmen", "Dmitri",
    "Esther", "Femi", "Gwen", "Hamza", "Isla", "Jun", "Kofi", "Leila", "Marek", "Noor",
    "Orla", "Pablo", "Rhiannon", "Sven", "Thandi", "Ulla", "Vera", "Wei", "Yara", "Zain",
    "Alba", "Cormac", "Delphine", "Emeka", "Freya", "Gideon", "Hana", "Idris", "Joanna", "Kenji",
)  # fmt: skip
SURNAME_HEADS = (
    "Ash", "Bram", "Cal", "Dun", "Elm", "Fen", "Gor", "Hollo", "Ives", "Kettle",
    "Lark", "March", "Nor", "Oak", "Pember", "Quill", "Rook", "Stan", "Thorn", "Wex",
)  # fmt: skip
SURNAME_TAILS = (
    "combe", "bridge", "wright", "field", "hurst", "mere", "bank", "well", "stead", "ford",
    "worth", "ley", "by", "mont", "gate", "thwaite", "wick", "holt", "rigg", "dale",
)  # fmt: skip

MASTODON_INSTANCES = ("mastodon.social", "scholar.social", "fediscience.example")

DISCIPLINES = ("health", "science", "social", "law", "library")
DISCIPLINE_SHARE = {"health": 35, "science": 25, "social": 15, "law": 17, "library": 8}
PEOPLE_SHARE = {"health": 35, "science": 25, "social": 15, "law": 15, "library": 10}

GROUP_TREE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "health": (
        "Faculty of Medicine and Health",
        "faculty",
        ("Public Health", "Nursing and Midwifery", "Clinical Sciences"),
    ),
    "science": (
        "Faculty of Science and Engineering",
        "faculty",
        ("Computer Science", "Environmental Science", "Physics"),
    ),
    "social": (
        "Faculty of Arts and Social Sciences",
        "faculty",
        ("History", "Education", "Economics"),
    ),
    "law": (
        "School of Law",
        "school",
        ("Commercial Law", "Human Rights and Public Law", "Legal Practice Clinic"),
    ),
    "library": ("University Library", "service", ("Research Support", "Scholarly Communications")),
}

ROLES: dict[str, tuple[tuple[str, int], ...]] = {
    "health": (("professor", 2), ("lecturer", 3), ("researcher", 4), ("phd student", 3)),
    "science": (("professor", 2), ("lecturer", 3), ("researcher", 4), ("phd student", 4)),
    "social": (("professor", 2), ("lecturer", 4), ("researcher", 2), ("phd student", 2)),
    "law": (("professor", 2), ("lecturer", 3), ("lawyer", 4), ("law student", 2)),
    "library": (("librarian", 5), ("research support officer", 2)),
}

TOPICS: dict[str, tuple[str, ...]] = {
    "health": (
        "hypertension", "type 2 diabetes", "antimicrobial resistance", "childhood asthma",
        "long COVID", "maternal anaemia", "falls in older adults", "adolescent depression",
        "smoking cessation", "vaccine uptake", "chronic kidney disease", "sleep quality",
        "loneliness", "heat-related illness", "obesity", "medication adherence",
    ),
    "science": (
        "graph neural networks", "coastal erosion", "microplastics in freshwater",
        "urban heat islands", "battery degradation", "quantum error correction",
        "protein structure prediction", "soil carbon", "wildfire smoke",
        "language model evaluation", "pollinator decline", "low-power sensor networks",
    ),
    "social": (
        "remote work", "school attendance", "housing affordability", "trust in science",
        "the minimum wage", "local news deserts", "reading for pleasure", "apprenticeships",
        "migration narratives", "climate anxiety", "public libraries", "the gig economy",
    ),
    "law": (
        "data protection", "tenancy deposits", "unfair dismissal", "AI and copyright",
        "judicial review", "climate litigation", "consumer credit", "online speech",
        "whistleblowing", "planning appeals", "modern slavery statements", "class actions",
    ),
    "library": (
        "open access compliance", "research data management", "citation metrics",
        "systematic searching", "digital preservation", "open peer review",
        "rights retention", "information literacy",
    ),
}  # fmt: skip

VENUES: dict[str, tuple[str, ...]] = {
    "health": (
        "Journal of Demonstrative Public Health", "Annals of Example Medicine",
        "Riverside Nursing Review", "International Journal of Placeholder Epidemiology",
    ),
    "science": (
        "Journal of Illustrative Computing", "Example Letters in Environmental Science",
        "Transactions on Demo Systems", "Northbridge Physics Reports",
    ),
    "social": (
        "Northbridge Review of Social Policy", "Journal of Example Education Studies",
        "Demo Economic Quarterly",
    ),
    "law": ("Demo University Law Review", "Journal of Illustrative Public Law"),
    "library": ("Journal of Example Librarianship", "Demo Scholarly Communication Notes"),
}  # fmt: skip

HEALTH_INTERVENTIONS = (
    "community pharmacist-led review", "text-message reminders", "nurse-led follow-up",
    "a digital self-management app", "school-based screening", "peer support groups",
    "a low-cost air filter", "social prescribing",
)  # fmt: skip
HEALTH_POPULATIONS = (
    "rural adults", "older adults in care homes", "urban primary care patients",
    "university students", "low-income households", "pregnant women", "children aged 5-11",
)  # fmt: skip
HEALTH_DESIGNS = (
    "a cluster randomised trial", "a systematic review and meta-analysis",
    "a prospective cohort study", "a qualitative study", "a cross-sectional survey",
    "a pragmatic randomised controlled trial",
)  # fmt: skip
SCIENCE_METHODS = (
    "satellite imagery", "transformer models", "Bayesian hierarchical models",
    "citizen science data", "high-resolution simulation", "active learning",
    "long-term field observations",
)  # fmt: skip
PLACES = (
    "the Demo Estuary", "Northbridge", "three upland catchments", "a national sensor network",
    "the Riverside campus", "Lower Examplefield",
)  # fmt: skip
LAW_ACTS = (
    "Renters' Security (Demo) Act 2025", "Online Harms (Example) Bill",
    "Data Sharing (Fictional Provisions) Act 2025", "Employment Rights (Demo) Act 2026",
)  # fmt: skip
LAW_CASES = (
    "Marchbank v Hollowell", "R (Ashcombe) v Secretary of State for Demo Affairs",
    "Northbridge Council v Fenwright", "Quillford Ltd v Rookdale",
)  # fmt: skip
LAW_AUDIENCES = (
    "landlords and tenants", "small charities", "NHS trusts", "employers", "universities",
    "app developers",
)  # fmt: skip

TYPE_MIX: dict[str, tuple[tuple[str, int], ...]] = {
    "health": (
        (ARTICLE, 60), (PREPRINT, 8), (DATASET, 8), (REPORT, 10), (BOOK, 2), (CHAPTER, 4),
        (BLOG_POST, 4), (VIDEO, 4),
    ),
    "science": (
        (ARTICLE, 45), (PREPRINT, 30), (DATASET, 12), (REPORT, 3), (CHAPTER, 3), (BOOK, 2),
        (BLOG_POST, 3), (VIDEO, 2),
    ),
    "social": (
        (ARTICLE, 45), (PREPRINT, 5), (DATASET, 8), (REPORT, 15), (BOOK, 10), (CHAPTER, 12),
        (BLOG_POST, 5),
    ),
    "law": ((LEGAL_BRIEFING, 55), (ARTICLE, 25), (BOOK, 6), (CHAPTER, 8), (REPORT, 6)),
    "library": ((REPORT, 30), (BLOG_POST, 30), (WEB_PAGE, 20), (DATASET, 10), (ARTICLE, 10)),
}  # fmt: skip
# Each of these appears at least once, whatever the scale.
REQUIRED_TYPES = (
    ("health", ARTICLE), ("science", PREPRINT), ("science", DATASET), ("social", REPORT),
    ("law", LEGAL_BRIEFING), ("social", BOOK), ("social", CHAPTER), ("library", BLOG_POST),
    ("health", VIDEO), ("library", WEB_PAGE),
)  # fmt: skip

# How much attention a type draws, relative to an article.
TYPE_ATTENTION = {
    ARTICLE: 1.0, PREPRINT: 1.1, DATASET: 0.25, REPORT: 0.6, LEGAL_BRIEFING: 0.5, BOOK: 0.5,
    CHAPTER: 0.15, BLOG_POST: 0.4, VIDEO: 0.35, WEB_PAGE: 0.1,
}  # fmt: skip
DISCIPLINE_ATTENTION = {"health": 1.3, "science": 1.0, "social": 0.8, "law": 0.7, "library": 0.4}

# Where attention comes from (source_id: weight); X/Twitter and Bluesky most, policy rarest.
SOURCE_MIX: dict[str, dict[str, float]] = {
    "default": {
        "twitter": 30, "bluesky": 27, "mastodon": 11, "reddit": 5, "linkedin": 6,
        "facebook": 4, "wordpressdotcom": 4, "newsfeed": 3, "hackernews": 1, "youtube": 1,
        "stackexchange": 0.3, "wikipedia": 1.2, "policy": 0.5,
    },
    "health": {"newsfeed": 4.5, "policy": 1.0, "facebook": 6, "hackernews": 0.3},
    "science": {"hackernews": 4, "stackexchange": 1.0, "reddit": 7, "policy": 0.2},
    "law": {
        "linkedin": 28, "twitter": 20, "bluesky": 15, "policy": 2.5, "wordpressdotcom": 7,
        "hackernews": 0.2, "wikipedia": 0.6, "stackexchange": 0,
    },
    "library": {"linkedin": 10, "mastodon": 16, "newsfeed": 0.5, "hackernews": 0.5},
}  # fmt: skip
RELATION = {"wikipedia": "references", "newsfeed": "mentions", "policy": "mentions"}
# The event source a person's account on a platform posts through.
PLATFORM_SOURCE = {
    "x": "twitter", "bluesky": "bluesky", "mastodon": "mastodon", "linkedin": "linkedin",
    "youtube": "youtube", "facebook": "facebook", "blog": "wordpressdotcom",
}  # fmt: skip
# The observation source that reports an account's figures.
PLATFORM_OBSERVER = {
    "x": "twitter", "bluesky": "bluesky", "mastodon": "mastodon", "linkedin": "linkedin",
    "youtube": "youtube", "facebook": "facebook", "instagram": "instagram", "blog": "website",
}  # fmt: skip
# Platforms whose analytics exports report impressions.
IMPRESSION_PLATFORMS = frozenset({"x", "linkedin", "youtube", "facebook", "instagram"})

SUBREDDITS: dict[str, tuple[str, ...]] = {
    "health": ("science", "medicine", "publichealth", "nursing"),
    "science": ("science", "MachineLearning", "environment", "Physics", "dataisbeautiful"),
    "social": ("science", "Economics", "education", "AskAcademia"),
    "law": ("law", "LegalAdviceUK", "ukpolitics"),
    "library": ("libraries", "AskAcademia", "openaccess"),
}
NEWS_OUTLETS = (
    "dailyherald.example", "northbridge-times.example", "thescienceweekly.example",
    "healthwire.example", "legalgazette.example", "riverside-evening-post.example",
)  # fmt: skip
POLICY_BODIES = (
    "health-policy-institute.example", "education.gov.example", "justice.gov.example",
    "environment-agency.gov.example", "who-regional-office.example",
)  # fmt: skip
WIKI_PAGES: dict[str, tuple[str, ...]] = {
    "health": ("Hypertension", "Antimicrobial_resistance", "Long_COVID", "Social_prescribing",
               "Vaccine_hesitancy", "Medication_adherence", "Falls_in_older_adults"),
    "science": ("Graph_neural_network", "Coastal_erosion", "Microplastics", "Urban_heat_island",
                "Quantum_error_correction", "Soil_carbon", "Pollinator_decline"),
    "social": ("Remote_work", "Housing_affordability", "News_desert", "Minimum_wage",
               "Climate_anxiety", "Gig_worker"),
    "law": ("Judicial_review", "Climate_change_litigation", "Unfair_dismissal",
            "Data_protection", "Class_action"),
    "library": ("Open_access", "Research_data_management", "Citation_impact",
                "Digital_preservation", "Rights_retention_strategy"),
}  # fmt: skip
HANDLE_WORDS = (
    "quiet", "heron", "ember", "lumen", "mossy", "north", "paper", "pixel", "river", "sable",
    "tidal", "velvet", "willow", "zephyr", "atlas", "birch", "cobalt", "delta", "fable", "gully",
    "harbor", "indigo", "juniper", "kestrel", "lantern", "meadow", "nimbus", "orbit", "pebble",
)  # fmt: skip

SOCIAL_OPENERS = (
    "New paper:", "Interesting read:", "Worth a look:", "Just out:", "Fascinating study:",
    "Reading this today:", "Good thread material:", "Important work:", "Hmm, not convinced:",
)  # fmt: skip
SELF_OPENERS = ("Out now! Our paper", "Delighted to share our new work:", "Our latest:")

BASE32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
YOUTUBE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
DEMO_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"https://{ORG_DOMAIN}/reachmeter-demo")
TWITTER_EPOCH_MS = 1_288_834_974_657


# --------------------------------------------------------------------------- small helpers


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(*parts: object) -> str:
    return str(uuid.uuid5(DEMO_NAMESPACE, "|".join(str(p) for p in parts)))


def _slug(text: str, limit: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def orcid_check_digit(base_digits: str) -> str:
    """The ISO 7064 mod 11-2 check character of an ORCID's first 15 digits."""
    total = 0
    for digit in base_digits:
        total = (total + int(digit)) * 2
    result = (12 - total % 11) % 11
    return "X" if result == 10 else str(result)


def _orcid(number: int) -> str:
    digits = f"{number:015d}"
    full = digits + orcid_check_digit(digits)
    return "-".join(full[i : i + 4] for i in range(0, 16, 4))


def _isbn13(body12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def _month_starts(first: dt.date, last_exclusive: dt.date) -> list[dt.date]:
    months: list[dt.date] = []
    current = first.replace(day=1)
    while current < last_exclusive:
        months.append(current)
        current = (current + dt.timedelta(days=32)).replace(day=1)
    return months


def _month_end(start: dt.date) -> dt.date:
    return (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def _profile(platform: str, handle: str) -> str:
    if platform == "x":
        return f"https://twitter.com/{handle}"
    if platform == "mastodon":
        user, _, instance = handle.partition("@")
        return f"https://{instance}/@{user}"
    return f"https://bsky.app/profile/{handle}"


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- the generator


class _Builder:
    """One generation run; all randomness flows through ``self.rng`` in a fixed order."""

    def __init__(self, seed: int, scale: float, as_of: dt.datetime) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        # A seeded, reproducible simulation: not for anything secret.
        self.rng = random.Random(seed)  # noqa: S311
        self.seed = seed
        self.scale = scale
        self.as_of = as_of.astimezone(dt.UTC)
        self.window_start = self.as_of - dt.timedelta(days=WINDOW_DAYS)
        self.used_names: set[str] = set()
        self.used_handles: set[str] = set()
        self.used_subj: set[tuple[str, str]] = set()
        self.used_slugs: set[str] = set()
        self.groups: list[DemoGroup] = []
        self.leaf_groups: dict[str, list[DemoGroup]] = {}
        self.people: list[DemoPerson] = []
        self.org_accounts: list[DemoAccount] = []
        self.bots: list[tuple[DemoAccount, str, float]] = []
        self.outputs: list[DemoOutput] = []
        self.mentions: list[DemoMention] = []
        self.observations: list[DemoObservation] = []
        self.public_pools: dict[str, list[str]] = {}
        self.attention: dict[str, float] = {}

    # ---- catalogue

    def build_groups(self) -> None:
        for discipline in DISCIPLINES:
            top, kind, leaves = GROUP_TREE[discipline]
            self.groups.append(DemoGroup((top,), kind))
            leaf_kind = "team" if discipline == "library" else "department"
            self.leaf_groups[discipline] = []
            for leaf in leaves:
                group = DemoGroup((top, leaf), leaf_kind)
                self.groups.append(group)
                self.leaf_groups[discipline].append(group)

    def _unique_name(self) -> str:
        rng = self.rng
        while True:
            surname = rng.choice(SURNAME_HEADS) + rng.choice(SURNAME_TAILS)
            name = f"{rng.choice(FIRST_NAMES)} {surname}"
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    def _unique(self, candidate: str, used: set[str]) -> str:
        value, n = candidate, 1
        while value in used:
            n += 1
            value = f"{candidate}-{n}" if candidate[-1:].isdigit() else f"{candidate}{n}"
        used.add(value)
        return value

    def _person_accounts(self, key: str, name: str) -> list[DemoAccount]:
        rng = self.rng
        first, last = (part.lower() for part in name.split(" ", 1))
        accounts: list[DemoAccount] = []
        if rng.random() > 0.65:
            return accounts
        wanted = [
            p
            for p, chance in (
                ("bluesky", 0.55),
                ("x", 0.45),
                ("linkedin", 0.40),
                ("mastodon", 0.25),
                ("blog", 0.08),
                ("youtube", 0.03),
            )
            if rng.random() < chance
        ] or ["bluesky"]
        for platform in wanted:
            if platform == "bluesky":
                handle = self._unique(f"{first}{last}.bsky.social", self.used_handles)
                url = f"https://bsky.app/profile/{handle}"
            elif platform == "x":
                handle = self._unique(f"{first}_{last}"[:13], self.used_handles)
                url = f"https://twitter.com/{handle}"
            elif platform == "linkedin":
                handle = self._unique(f"{first}-{last}-demo", self.used_handles)
                url = f"https://www.linkedin.com/in/{handle}"
            elif platform == "mastodon":
                instance = rng.choice(MASTODON_INSTANCES)
                user = self._unique(f"{first}{last[:4]}", self.used_handles)
                handle = f"{user}@{instance}"
                url = f"https://{instance}/@{user}"
            elif platform == "blog":
                host = self._unique(f"{first}{last}.blogs.{ORG_DOMAIN}", self.used_handles)
                handle = url = f"https://{host}"
            else:
                handle = self._unique(f"@{first}{last}lab", self.used_handles)
                url = f"https://www.youtube.com/{handle}"
            accounts.append(DemoAccount(platform, handle, url, key))
        return accounts

    def build_people(self) -> None:
        rng = self.rng
        count = max(len(DISCIPLINES) * 3, round(BASE_PEOPLE * self.scale))
        disciplines = [
            d for d in DISCIPLINES for _ in range(max(3, round(count * PEOPLE_SHARE[d] / 100)))
        ]
        # ORCIDs from the top of the 0009 block, which ORCID has not reached.
        orcid_numbers = rng.sample(range(900_090_000_000, 900_099_999_999), len(disciplines))
        for index, discipline in enumerate(disciplines):
            name = self._unique_name()
            role = _weighted(rng, ROLES[discipline])
            has_orcid = rng.random() < {"librarian": 0.6, "lawyer": 0.35}.get(
                role, 0.5 if "student" in role else 0.92
            )
            leaves = self.leaf_groups[discipline]
            # Everyone's group exists in the store only through its people: fill each once.
            seen = disciplines[:index].count(discipline)
            groups = [leaves[seen] if seen < len(leaves) else rng.choice(leaves)]
            if rng.random() < 0.1:
                other = rng.choice(self.groups)
                if other not in groups and other.path[0] != groups[0].path[0]:
                    groups.append(other)
            key = f"person-{index + 1:04d}"
            first, last = name.lower().split(" ", 1)
            self.people.append(
                DemoPerson(
                    key=key,
                    name=name,
                    orcid=_orcid(orcid_numbers[index]) if has_orcid else None,
                    email=f"{first}.{last}@{ORG_DOMAIN}",
                    role=role,
                    discipline=discipline,
                    groups=groups,
                    accounts=self._person_accounts(key, name),
                )
            )

    def build_org_accounts(self) -> None:
        for platform, handle, url in (
            ("bluesky", f"library.{ORG_DOMAIN}", f"https://bsky.app/profile/library.{ORG_DOMAIN}"),
            ("x", "demounilibrary", "https://twitter.com/demounilibrary"),
            ("mastodon", "library@scholar.social", "https://scholar.social/@library"),
            ("linkedin", "demo-university-library", "https://www.linkedin.com/company/demo-university-library"),
            ("youtube", "@demouniversitylibrary", "https://www.youtube.com/@demouniversitylibrary"),
            ("facebook", "demouniversitylibrary", "https://www.facebook.com/demouniversitylibrary"),
            ("instagram", "demounilibrary", "https://www.instagram.com/demounilibrary/"),
            ("x", "demounilaw", "https://twitter.com/demounilaw"),
            ("linkedin", "demo-university-school-of-law", "https://www.linkedin.com/company/demo-university-school-of-law"),
        ):  # fmt: skip
            self.org_accounts.append(DemoAccount(platform, handle, url, None))
        # Bot-like feeds: (account, niche: a discipline, an output type or "*", coverage).
        self.bots = [
            (DemoAccount("x", "newpapersalert", _profile("x", "newpapersalert"), None, True),
             "*", 0.12),
            (DemoAccount("bluesky", "healthpapers-feed.bsky.social",
                         _profile("bluesky", "healthpapers-feed.bsky.social"), None, True),
             "health", 0.3),
            (DemoAccount("mastodon", "preprintfeed@bots.fediscience.example",
                         _profile("mastodon", "preprintfeed@bots.fediscience.example"), None,
                         True),
             PREPRINT, 0.5),
            (DemoAccount("bluesky", "legal-updates-bot.bsky.social",
                         _profile("bluesky", "legal-updates-bot.bsky.social"), None, True),
             "law", 0.3),
        ]  # fmt: skip

    def _external_authors(self) -> list[str]:
        """Co-authors from elsewhere: names only, so the import keeps them as text."""
        return [self._unique_name() for _ in range(int(self.rng.expovariate(0.6)))]

    def _authors(self, discipline: str) -> list[DemoPerson]:
        rng = self.rng
        pool = [p for p in self.people if p.discipline == discipline]
        # Productivity is skewed too: earlier people in the pool write more.
        weights = [1.0 / (i + 1) ** 0.7 for i in range(len(pool))]
        wanted = min(len(pool), 1 + min(3, int(rng.expovariate(0.8))))
        chosen: list[DemoPerson] = []
        while len(chosen) < wanted:
            person = rng.choices(pool, weights=weights)[0]
            if person not in chosen:
                chosen.append(person)
        return chosen

    def _title(self, discipline: str, kind: str, topic: str) -> tuple[str, str]:
        rng = self.rng
        if kind == LEGAL_BRIEFING:
            title = rng.choice(
                (
                    f"What the {rng.choice(LAW_ACTS)} means for {rng.choice(LAW_AUDIENCES)}",
                    f"Briefing: {topic} after {rng.choice(LAW_CASES)}",
                    f"{_capitalise(topic)}: five questions answered for "
                    f"{rng.choice(LAW_AUDIENCES)}",
                )
            )
            return title, "Demo University School of Law"
        if kind == DATASET:
            return (
                rng.choice(
                    (
                        f"{_capitalise(topic)} survey microdata, waves 1-{rng.randint(2, 6)}",
                        f"Replication data for a study of {topic} in {rng.choice(PLACES)}",
                        f"Riverside Cohort {topic} measurements, 2019-2025",
                    )
                ),
                "Demo University Research Data Repository",
            )
        if kind == REPORT:
            return (
                rng.choice(
                    (
                        f"{_capitalise(topic)}: annual monitoring report "
                        f"{rng.choice((2025, 2026))}",
                        f"Evaluation of a {topic} programme in {rng.choice(PLACES)}: final report",
                        f"{_capitalise(topic)} in practice: a review for decision makers",
                    )
                ),
                "Demo University",
            )
        if kind == BOOK:
            return (
                rng.choice(
                    (
                        f"{_capitalise(topic)}: A Critical Introduction",
                        f"Rethinking {_capitalise(topic)}",
                    )
                ),
                "Demo University Press",
            )
        if kind == CHAPTER:
            return (
                f"{_capitalise(topic)} and its discontents",
                f"The Demo Handbook of {_capitalise(rng.choice(TOPICS[discipline]))}",
            )
        if kind == BLOG_POST:
            return f"Five things we learned about {topic}", "Demo University Blogs"
        if kind == VIDEO:
            return f"Lecture: {topic} explained", "Demo University Media"
        if kind == WEB_PAGE:
            return f"Library guide: {topic}", ORG_NAME
        venue = "arXiv" if kind == PREPRINT else rng.choice(VENUES[discipline])
        if discipline == "health":
            title = rng.choice(
                (
                    f"{_capitalise(rng.choice(HEALTH_INTERVENTIONS))} for {topic} in "
                    f"{rng.choice(HEALTH_POPULATIONS)}: {rng.choice(HEALTH_DESIGNS)}",
                    f"Prevalence of {topic} among {rng.choice(HEALTH_POPULATIONS)}: "
                    f"{rng.choice(HEALTH_DESIGNS)}",
                    f"Trends in {topic} in the Riverside Cohort, 2010-2024",
                )
            )
        elif discipline == "science":
            title = rng.choice(
                (
                    f"{_capitalise(rng.choice(SCIENCE_METHODS))} for {topic}: evidence from "
                    f"{rng.choice(PLACES)}",
                    f"Measuring {topic} with {rng.choice(SCIENCE_METHODS)}",
                    f"On the limits of {rng.choice(SCIENCE_METHODS)} for {topic}",
                )
            )
        elif discipline == "law":
            title = rng.choice(
                (
                    f"{_capitalise(topic)} and the courts: lessons from {rng.choice(LAW_CASES)}",
                    f"Rethinking {topic} after the {rng.choice(LAW_ACTS)}",
                )
            )
        else:
            title = rng.choice(
                (
                    f"{_capitalise(topic)} in {rng.choice(PLACES)}: a mixed-methods study",
                    f"Who benefits from {topic}? Evidence from {rng.choice(PLACES)}",
                    f"The long shadow of {topic}",
                )
            )
        return title, venue

    def _publication_date(self) -> dt.date:
        rng = self.rng
        end = (self.as_of - dt.timedelta(days=3)).date()
        start = self.window_start.date()
        if rng.random() < 0.2:  # older work that is still talked about
            start, end = start - dt.timedelta(days=WINDOW_DAYS), start
        return start + dt.timedelta(days=rng.randrange((end - start).days))

    def build_outputs(self) -> None:
        rng = self.rng
        count = max(len(REQUIRED_TYPES), round(BASE_OUTPUTS * self.scale))
        plan: list[tuple[str, str]] = list(REQUIRED_TYPES)
        share = [(d, float(DISCIPLINE_SHARE[d])) for d in DISCIPLINES]
        while len(plan) < count:
            discipline = _weighted(rng, share)
            plan.append((discipline, _weighted(rng, TYPE_MIX[discipline])))
        for index, (discipline, kind) in enumerate(plan):
            serial = index + 1
            topic = rng.choice(TOPICS[discipline])
            title, venue = self._title(discipline, kind, topic)
            published = self._publication_date()
            output = DemoOutput(
                key=f"output-{index + 1:04d}",
                type=kind,
                discipline=discipline,
                title=title,
                venue=venue,
                published_on=published,
                authors=self._authors(discipline),
                topic=topic,
            )
            if kind in {ARTICLE, PREPRINT, DATASET, REPORT, CHAPTER}:
                output.external_authors = self._external_authors()
            year = published.year
            if kind in {ARTICLE, DATASET, BOOK, CHAPTER} or (kind == REPORT and rng.random() < 0.6):
                output.doi = f"{DOI_PREFIX}/demo.{discipline}.{year}.{serial:05d}"
            if kind == PREPRINT or (
                kind == ARTICLE and discipline == "science" and rng.random() < 0.25
            ):
                # arXiv numbers above 90000 in a month have never been issued.
                output.arxiv = f"{published:%y%m}.{rng.randint(90000, 99999)}"
            if discipline == "health" and kind in {ARTICLE, REPORT} and rng.random() < 0.85:
                output.pmid = str(rng.randint(99_000_000, 99_999_999))
                if rng.random() < 0.45:
                    output.pmcid = f"PMC{rng.randint(99_000_000, 99_999_999)}"
            if discipline == "law" and kind == ARTICLE and rng.random() < 0.6:
                output.ssrn = str(rng.randint(9_000_000, 9_999_999))
            if kind == BOOK:
                output.isbn = _isbn13(f"97819{rng.randint(0, 9_999_999):07d}")
            slug = self._unique(_slug(title), self.used_slugs)
            if kind == LEGAL_BRIEFING:
                output.url = f"https://law.{ORG_DOMAIN}/briefings/{year}/{slug}"
            elif kind in {DATASET, REPORT}:
                output.url = f"https://repository.{ORG_DOMAIN}/items/{serial:05d}/{slug}"
            elif kind == BLOG_POST:
                output.url = f"https://blogs.{ORG_DOMAIN}/{year}/{published:%m}/{slug}"
            elif kind == VIDEO:
                output.url = f"https://media.{ORG_DOMAIN}/videos/{slug}"
            elif kind == WEB_PAGE:
                output.url = f"https://library.{ORG_DOMAIN}/guides/{slug}"
            self.outputs.append(output)

    # ---- mentions

    def _public_handle(self, source: str) -> str:
        rng = self.rng
        pool = self.public_pools[source]
        # Power users: a few accounts post about many outputs, most post once.
        return pool[int(len(pool) * rng.random() ** 2.5)]

    def build_public_pools(self, total: int) -> None:
        rng = self.rng
        mix = SOURCE_MIX["default"]
        weight_sum = sum(mix.values())
        used: set[str] = set()
        for source in sorted(mix):
            size = max(12, int(total * 0.55 * mix[source] / weight_sum))
            pool: list[str] = []
            for _ in range(size):
                handle = ""
                while not handle or handle in used:
                    words = rng.choice(HANDLE_WORDS) + rng.choice(HANDLE_WORDS)
                    handle = f"{words}{rng.randint(1, 999)}"
                used.add(handle)
                pool.append(handle)
            self.public_pools[source] = pool

    def _mention_time(self, output: DemoOutput, bursts: Sequence[dt.datetime]) -> dt.datetime:
        rng = self.rng
        published = _midnight(output.published_on) + dt.timedelta(hours=9)
        low = max(published, self.window_start)
        for _ in range(8):
            u = rng.random()
            if u < 0.55:
                moment = rng.choice(bursts) + dt.timedelta(days=rng.expovariate(1 / 2.5))
            elif u < 0.85:
                moment = published + dt.timedelta(days=rng.expovariate(1 / 45))
            else:
                moment = low + (self.as_of - low) * rng.random()
            if low <= moment < self.as_of:
                break
        else:
            moment = low + (self.as_of - low) * rng.random()
        # People post in the day, not at 4 a.m.
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        hour = int(rng.triangular(6, 23.99, 14))
        moment = day + dt.timedelta(hours=hour, seconds=rng.randrange(3600))
        if moment >= self.as_of or moment < low:
            moment = low + (self.as_of - low) * rng.random()
        return moment.replace(microsecond=0)

    def _post(
        self, source: str, handle: str, author_url: str | None, output: DemoOutput, at: dt.datetime
    ) -> tuple[str, str]:
        """A fictional post URL on the platform's real URL shape, and its author's URL."""
        rng = self.rng
        ms = int(at.timestamp() * 1000)
        slug = _slug(output.title, 40)
        if source == "twitter":
            status = ((ms - TWITTER_EPOCH_MS) << 22) | rng.getrandbits(22)
            return f"https://twitter.com/{handle}/status/{status}", (
                author_url or f"https://twitter.com/{handle}"
            )
        if source == "bluesky":
            if "." not in handle:
                handle = f"{handle}.bsky.social"
            tid_value = (ms * 1000 << 10) | rng.getrandbits(10)
            tid = "".join(BASE32_SORTABLE[(tid_value >> (5 * i)) & 31] for i in range(12, -1, -1))
            return f"https://bsky.app/profile/{handle}/post/{tid}", (
                author_url or f"https://bsky.app/profile/{handle}"
            )
        if source == "mastodon":
            if "@" in handle:
                user, instance = handle.split("@", 1)
            else:
                user, instance = handle, MASTODON_INSTANCES[len(handle) % 2]
            status = (ms << 16) | rng.getrandbits(16)
            return f"https://{instance}/@{user}/{status}", (
                author_url or f"https://{instance}/@{user}"
            )
        if source == "reddit":
            post = "".join(rng.choice(BASE36) for _ in range(7))
            sub = rng.choice(SUBREDDITS[output.discipline])
            return (
                f"https://www.reddit.com/r/{sub}/comments/{post}/{slug}/",
                f"https://www.reddit.com/user/{handle}",
            )
        if source == "hackernews":
            return (
                f"https://news.ycombinator.com/item?id={rng.randint(41_000_000, 46_000_000)}",
                f"https://news.ycombinator.com/user?id={handle}",
            )
        if source == "linkedin":
            activity = rng.randint(7_200_000_000_000_000_000, 7_399_999_999_999_999_999)
            suffix = "".join(rng.choice(BASE36) for _ in range(4))
            return (
                f"https://www.linkedin.com/posts/{handle}_{slug}-activity-{activity}-{suffix}/",
                author_url or f"https://www.linkedin.com/in/{handle}",
            )
        if source == "facebook":
            return (
                f"https://www.facebook.com/{handle}/posts/{rng.randint(10**15, 10**16 - 1)}",
                author_url or f"https://www.facebook.com/{handle}",
            )
        if source == "youtube":
            video = "".join(rng.choice(YOUTUBE_CHARS) for _ in range(11))
            return f"https://www.youtube.com/watch?v={video}", (
                author_url or f"https://www.youtube.com/@{handle.lstrip('@')}"
            )
        if source == "stackexchange":
            question = rng.randint(600_000, 680_000)
            return (
                f"https://stats.stackexchange.com/questions/{question}/{slug}",
                f"https://stats.stackexchange.com/users/{rng.randint(1000, 450_000)}/{handle}",
            )
        if source == "wordpressdotcom":
            base = author_url or f"https://{handle}.wordpress.example"
            return f"{base}/{at:%Y/%m/%d}/{slug}/", f"{base}/"
        if source == "newsfeed":
            outlet = rng.choice(NEWS_OUTLETS)
            section = {"health": "health", "law": "law"}.get(output.discipline, "science")
            return (
                f"https://www.{outlet}/{section}/{at:%Y/%m/%d}/{slug}-{rng.randint(100, 999)}",
                f"https://www.{outlet}/",
            )
        if source == "wikipedia":
            page = rng.choice(WIKI_PAGES[output.discipline])
            return f"https://en.wikipedia.org/wiki/{page}", (
                f"https://en.wikipedia.org/wiki/User:{_capitalise(handle)}"
            )
        body = rng.choice(POLICY_BODIES)
        return (
            f"https://www.{body}/publications/{at:%Y}/{slug}-{rng.randint(10, 99)}.pdf",
            f"https://www.{body}/",
        )

    def _post_title(self, source: str, output: DemoOutput, opener: str | None = None) -> str:
        rng = self.rng
        short = output.title if len(output.title) <= 90 else output.title[:87] + "..."
        if source == "wikipedia":
            return _capitalise(output.topic)
        if source == "newsfeed":
            return f"{_capitalise(output.topic)}: what a new Demo University study shows"
        if source == "policy":
            return f"{_capitalise(output.topic)}: evidence review and recommendations"
        if source == "wordpressdotcom":
            return f"Reading notes: {short}"
        if source in {"reddit", "hackernews", "stackexchange"}:
            return short
        return f"{opener or rng.choice(SOCIAL_OPENERS)} {short} {output.primary_id}"

    def _add_mention(
        self,
        output: DemoOutput,
        source: str,
        at: dt.datetime,
        handle: str,
        author_url: str | None = None,
        opener: str | None = None,
    ) -> None:
        rng = self.rng
        ids = output.obj_ids
        obj_id = ids[0]
        if len(ids) > 1 and rng.random() < 0.2:
            obj_id = rng.choice(ids[1:])
        for _ in range(20):
            subj_id, author = self._post(source, handle, author_url, output, at)
            if (subj_id, obj_id) not in self.used_subj:
                break
        else:
            return
        self.used_subj.add((subj_id, obj_id))
        self.mentions.append(
            DemoMention(
                id=_key("event", subj_id, obj_id),
                subj_id=subj_id,
                relation_type_id=RELATION.get(source, "discusses"),
                obj_id=obj_id,
                source_id=source,
                occurred_at=at,
                title=self._post_title(source, output, opener),
                author_url=author,
                output_key=output.key,
            )
        )

    def build_mentions(self) -> None:
        rng = self.rng
        target = max(50, round(BASE_MENTIONS * self.scale))
        self.build_public_pools(target)
        # Heavy-tailed attention: a third of outputs draw none, most a little, a few a lot.
        weights: list[float] = []
        for output in self.outputs:
            if rng.random() < 0.35:
                weights.append(0.0)
                continue
            draw = rng.paretovariate(0.75) - 1
            weights.append(
                min(draw, 120.0)
                * rng.uniform(0.7, 1.3)
                * TYPE_ATTENTION[output.type]
                * DISCIPLINE_ATTENTION[output.discipline]
            )
        extra = self._planned_extra()
        factor = max(0.0, target - extra) / (sum(weights) or 1.0)
        for output, weight in zip(self.outputs, weights, strict=True):
            self.attention[output.key] = weight
            self._mentions_for(output, int(weight * factor + rng.random()))
        self.mentions.sort(key=lambda m: (m.occurred_at, m.id))

    def _planned_extra(self) -> float:
        """Roughly how many mentions self-promotion, the organisation and bots will add."""
        authored = sum(len(p.accounts) for o in self.outputs for p in o.authors)
        return authored * 0.25 + len(self.outputs) * 0.7

    def _mentions_for(self, output: DemoOutput, public: int) -> None:
        rng = self.rng
        published = _midnight(output.published_on) + dt.timedelta(hours=9)
        bursts = [published]
        if public >= 40 and rng.random() < 0.35:  # a second wave: press coverage, a debate
            bursts.append(published + dt.timedelta(days=rng.uniform(20, 300)))
        in_window = published >= self.window_start
        # Bots post about nearly everything new in their niche, within hours, sometimes twice.
        for bot, niche, chance in self.bots:
            if not in_window or niche not in {"*", output.discipline, output.type}:
                continue
            if niche == "*" and not output.doi:
                continue
            if rng.random() < chance:
                for repeat in range(1 + int(rng.random() < 0.25)):
                    at = published + dt.timedelta(hours=rng.uniform(0.2, 6) + 24 * 3 * repeat)
                    if at < self.as_of:
                        self._add_mention(
                            output, PLATFORM_SOURCE[bot.platform], at.replace(microsecond=0),
                            bot.handle, bot.url, "[New]",
                        )  # fmt: skip
        # Self-promotion from the authors' own accounts.
        if in_window:
            for person in output.authors:
                for account in person.accounts:
                    source = PLATFORM_SOURCE.get(account.platform)
                    if source and rng.random() < 0.25:
                        at = published + dt.timedelta(hours=rng.uniform(1, 72))
                        if at < self.as_of:
                            self._add_mention(
                                output, source, at.replace(microsecond=0),
                                account.handle, account.url, rng.choice(SELF_OPENERS),
                            )  # fmt: skip
            # The library (and the law school) share the organisation's work.
            for account in self.org_accounts:
                source = PLATFORM_SOURCE.get(account.platform)
                law_account = "law" in account.handle.lower()
                if not source or law_account != (output.discipline == "law"):
                    continue
                if rng.random() < (0.35 if law_account else 0.12):
                    at = published + dt.timedelta(hours=rng.uniform(12, 24 * 10))
                    if at < self.as_of:
                        self._add_mention(
                            output, source, at.replace(microsecond=0), account.handle, account.url
                        )
        mix = dict(SOURCE_MIX["default"])
        mix.update(SOURCE_MIX.get(output.discipline, {}))
        if output.type == DATASET:
            mix["newsfeed"] = mix["newsfeed"] / 4
            mix["stackexchange"] = mix["stackexchange"] + 1
        pairs = sorted(mix.items())
        for _ in range(public):
            source = _weighted(rng, pairs)
            self._add_mention(
                output, source, self._mention_time(output, bursts), self._public_handle(source)
            )

    # ---- observations

    def _observation(
        self,
        metric: str,
        value: int,
        start: dt.date,
        end: dt.date,
        source: str,
        *,
        cumulative: bool,
        obj_id: str | None = None,
        account: str | None = None,
    ) -> None:
        target = obj_id or account
        self.observations.append(
            DemoObservation(
                id=_key("observation", metric, target, start.isoformat()),
                metric=metric,
                value=value,
                cumulative=cumulative,
                period_start=start,
                period_end=end,
                observed_at=_midnight(end + dt.timedelta(days=1)),
                source_id=source,
                obj_id=obj_id,
                account=account,
            )
        )

    def build_output_observations(self) -> None:
        rng = self.rng
        last = self.as_of.date().replace(day=1)  # only complete months
        window_month = self.window_start.date().replace(day=1)
        mentions = self.mentions_count()
        citable = {ARTICLE, PREPRINT, BOOK, CHAPTER, REPORT, DATASET}
        downloadable = citable
        for output in self.outputs:
            first = max(output.published_on.replace(day=1), window_month)
            months = _month_starts(first, last)
            if not months:
                continue
            buzz = 1 + math.log1p(mentions.get(output.key, 0))
            quality = rng.lognormvariate(0, 0.8)
            obj_id = output.primary_id
            if output.doi and output.type in citable:
                rate = {DATASET: 0.05, CHAPTER: 0.1, REPORT: 0.15, BOOK: 0.3}.get(output.type, 0.4)
                age0 = (first - output.published_on.replace(day=1)).days / 30.4
                total = _poisson(rng, rate * quality * buzz * max(0.0, age0) * 0.6)
                for month in months:
                    age = (month - output.published_on.replace(day=1)).days / 30.4
                    ramp = min(1.0, (age + 1) / 18)
                    total += _poisson(rng, rate * quality * buzz * ramp)
                    self._observation(
                        "citations", total, month, _month_end(month), "crossref",
                        cumulative=True, obj_id=obj_id,
                    )  # fmt: skip
            base_views = 40 * quality * buzz * (0.5 if output.type == CHAPTER else 1.0)
            for month in months:
                age = (month - output.published_on.replace(day=1)).days / 30.4
                level = base_views * (0.35 + 2.5 * math.exp(-age / 3))
                views = _poisson(rng, level * rng.uniform(0.8, 1.2))
                self._observation(
                    "views", views, month, _month_end(month), "counter",
                    cumulative=False, obj_id=obj_id,
                )  # fmt: skip
                if output.type in downloadable:
                    share = 0.45 if output.type == DATASET else rng.uniform(0.15, 0.35)
                    self._observation(
                        "downloads", _poisson(rng, views * share), month, _month_end(month),
                        "counter", cumulative=False, obj_id=obj_id,
                    )  # fmt: skip

    def mentions_count(self) -> Counter[str]:
        return Counter(m.output_key for m in self.mentions)

    def build_account_observations(self) -> None:
        rng = self.rng
        start = self.window_start.date()
        first_monday = start + dt.timedelta(days=(7 - start.weekday()) % 7)
        weeks = (self.as_of.date() - first_monday).days // 7
        months = _month_starts(start, self.as_of.date().replace(day=1))
        accounts = [*self.org_accounts, *(a for p in self.people for a in p.accounts)]
        for account in accounts:
            observer = PLATFORM_OBSERVER[account.platform]
            org = account.owner is None
            followers = rng.lognormvariate(math.log(6000 if org else 400), 0.9)
            # Bluesky grew through the period; X drifted down; the rest grew slowly.
            trend = {"bluesky": 0.012, "x": -0.002, "mastodon": 0.003}.get(account.platform, 0.004)
            trend *= rng.uniform(0.5, 1.5)
            for week in range(weeks):
                monday = first_monday + dt.timedelta(days=7 * week)
                followers *= 1 + trend + rng.gauss(0, 0.004)
                self._observation(
                    "followers", round(followers), monday, monday + dt.timedelta(days=6),
                    observer, cumulative=True, account=account.ref,
                )  # fmt: skip
            cadence = rng.uniform(15, 45) if org else rng.uniform(0.5, 12)
            reach = followers * rng.uniform(0.8, 2.5)
            for month in months:
                posts = _poisson(rng, cadence)
                end = _month_end(month)
                self._observation(
                    "posts", posts, month, end, observer, cumulative=False, account=account.ref
                )
                impressions = _poisson(rng, reach * max(posts, 0.2) * rng.uniform(0.2, 0.5))
                if account.platform in IMPRESSION_PLATFORMS:
                    self._observation(
                        "impressions", impressions, month, end, observer,
                        cumulative=False, account=account.ref,
                    )  # fmt: skip
                engagements = _poisson(rng, impressions * rng.uniform(0.01, 0.05))
                self._observation(
                    "engagements", engagements, month, end, observer,
                    cumulative=False, account=account.ref,
                )  # fmt: skip

    def build(self) -> DemoData:
        self.build_groups()
        self.build_people()
        self.build_org_accounts()
        self.build_outputs()
        self.build_mentions()
        self.build_output_observations()
        self.build_account_observations()
        return DemoData(
            seed=self.seed,
            scale=self.scale,
            as_of=self.as_of,
            groups=self.groups,
            people=self.people,
            org_accounts=self.org_accounts,
            outputs=self.outputs,
            mentions=self.mentions,
            observations=self.observations,
        )


# --------------------------------------------------------------------------- public functions


def build_demo(
    *, seed: int = DEFAULT_SEED, scale: float = 1.0, as_of: dt.datetime = DEFAULT_AS_OF
) -> DemoData:
    """Generate the demo organisation in memory; the same arguments give the same data."""
    return _Builder(seed, scale, as_of).build()


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_jsonl(path: Path, records: Sequence[dict[str, object]]) -> None:
    with path.open("wb") as handle:
        for record in records:
            handle.write(orjson.dumps(record))
            handle.write(b"\n")


def write_demo(data: DemoData, directory: Path) -> DemoFiles:
    """Write the demo as ordinary input files in ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(
        directory=directory,
        people=directory / "people.csv",
        outputs=directory / "outputs.csv",
        accounts=directory / "organisation-accounts.csv",
        mentions=directory / "mentions.jsonl",
        observations=directory / "observations.jsonl",
    )
    _write_csv(
        files.people,
        PEOPLE_COLUMNS,
        [
            {
                "name": p.name,
                "orcid": p.orcid or "",
                "email": p.email,
                "role": p.role,
                "groups": "; ".join(g.path_text for g in p.groups),
                "accounts": "; ".join(a.ref for a in p.accounts),
            }
            for p in data.people
        ],
    )
    _write_csv(
        files.outputs,
        OUTPUT_COLUMNS,
        [
            {
                "title": o.title,
                "type": o.type,
                "venue": o.venue,
                "published_on": o.published_on.isoformat(),
                "doi": o.doi or "",
                "pmid": o.pmid or "",
                "pmcid": o.pmcid or "",
                "arxiv": o.arxiv or "",
                "isbn": o.isbn or "",
                "handle": "",
                "urn": "",
                "ssrn": o.ssrn or "",
                "url": o.url or "",
                "identifiers": "",
                "authors": "; ".join([*(a.author_ref for a in o.authors), *o.external_authors]),
            }
            for o in data.outputs
        ],
    )
    _write_csv(
        files.accounts,
        ACCOUNT_COLUMNS,
        [
            {"platform": a.platform, "handle": a.handle, "url": a.url, "owner": ORG_NAME}
            for a in data.org_accounts
        ],
    )
    _write_jsonl(files.mentions, [m.to_event() for m in data.mentions])
    _write_jsonl(files.observations, [o.to_record() for o in data.observations])
    return files


def generate_demo(
    directory: Path,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    as_of: dt.datetime = DEFAULT_AS_OF,
) -> tuple[DemoData, DemoFiles]:
    """Generate the demo organisation and write its input files into ``directory``."""
    data = build_demo(seed=seed, scale=scale, as_of=as_of)
    return data, write_demo(data, directory)
