"""Rate limits and money budgets: admission stages that reserve before a call and settle after."""

from __future__ import annotations

from typing import Any

from ..config import Settings


def build_admissions(settings: Settings, state: Any, db: Any, router: Any) -> list[Any]:
    """The admission stages the settings configure, in the order they run."""
    return []
