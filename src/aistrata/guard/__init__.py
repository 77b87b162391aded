"""Cross-cutting security: guard policies (input and output checks), and later audit, kill
switches and encryption of stored payloads.

`build_guards(settings)` reads the `guards:` section (see `policy`) and returns the input
admission stage and the output check the pipeline runs; `stats()` returns the decision and
run counters for the metrics layer.
"""

from __future__ import annotations

from typing import Any

from .counters import stats

__all__ = ["build_guards", "stats"]


def build_guards(settings: Any) -> tuple[list[Any], list[Any]]:
    """(input admission stages, output checks) the settings configure; none without `guards:`."""
    section = (getattr(settings, "raw", None) or {}).get("guards")
    if not section:
        return [], []
    # Imported here: the detectors need the `guard` extra, which a gateway without guards lacks.
    from .policy import parse_policies
    from .stages import InputGuard, OutputGuard

    policies = parse_policies(section)
    if not policies:
        return [], []
    canaries: dict[str, str] = {}  # request id -> canary, from admission until the request settles
    return [InputGuard(policies, canaries)], [OutputGuard(policies, canaries)]
