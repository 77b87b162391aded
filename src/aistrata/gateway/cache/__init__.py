"""The exact-match response cache."""

from __future__ import annotations

from typing import Any

from ..config import Settings


def build_cache(settings: Settings, state: Any) -> Any:
    """The response cache the settings configure, or None."""
    return None
