"""Tables of monitoring: alerts and their deliveries, saved filters, and the framework
of aims, objectives and staffing.

Imported at the end of ``reachmeter.store.schema`` so every table is on ``Base.metadata``."""

from __future__ import annotations
