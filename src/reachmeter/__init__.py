"""ReachMeter: open, self-hosted altmetrics and social-media impact measurement."""

__version__ = "0.1.0"

__all__ = ["__version__"]
