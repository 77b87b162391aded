"""Cross-cutting security: guard policies (input and output checks), and later audit, kill
switches and encryption of stored payloads."""

from __future__ import annotations

from typing import Any


def build_guards(settings: Any) -> tuple[list[Any], list[Any]]:
    """(input admission stages, output checks) the settings configure."""
    return [], []
