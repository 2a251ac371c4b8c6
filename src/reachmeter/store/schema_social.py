"""Tables of the social sources and analytics exports.

Imported at the end of ``reachmeter.store.schema`` so every table is on ``Base.metadata``."""

from __future__ import annotations
