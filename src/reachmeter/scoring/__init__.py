"""Scoring: pure, versioned views over the stored events and observations.

Profiles (``profiles``) say what each kind of mention is worth; ``compute`` holds the
arithmetic; ``load`` reads the store; ``run`` recomputes and stores scores; ``flags``
detects data-quality and gaming signals; ``explain`` lists every number behind a score.
"""

from __future__ import annotations

from reachmeter.scoring.compute import Attention, attention, context, history
from reachmeter.scoring.profiles import (
    Profile,
    ProfileError,
    builtin_profiles,
    load_profile,
    parse_profile,
)
from reachmeter.scoring.run import (
    ScoreRun,
    compute_scores,
    iter_scores,
    latest_as_of,
    methods_log,
    read_score,
    top_scores,
    update_scores,
)

__all__ = [
    "Attention",
    "Profile",
    "ProfileError",
    "ScoreRun",
    "attention",
    "builtin_profiles",
    "compute_scores",
    "context",
    "history",
    "iter_scores",
    "latest_as_of",
    "load_profile",
    "methods_log",
    "parse_profile",
    "read_score",
    "top_scores",
    "update_scores",
]
