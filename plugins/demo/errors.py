"""The one error of ``deploybot demo``: :class:`DemoError`, raised by every part of it."""

from __future__ import annotations

__all__ = ["DemoError"]


class DemoError(Exception):
    """Something the demo needed did not happen; the text is the one-line error."""
