"""Tables of the web dashboard: users, roles, API tokens, correction requests.

Imported at the end of ``reachmeter.store.schema`` so every table is on ``Base.metadata``."""

from __future__ import annotations
