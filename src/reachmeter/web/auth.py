"""Access: who may read and who may write.

``require_reader`` lets anonymous visitors read when the organisation runs a public dashboard
and otherwise needs a logged-in user or an API token; ``require_role(role)`` needs an
authenticated user with at least that role (viewer < editor < admin).
"""

from __future__ import annotations
