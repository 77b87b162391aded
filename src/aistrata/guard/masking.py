"""Masking for storage: the pattern-based PII and secret checks, applied to any text (a stored
prompt or completion) without a policy. Needs the `guard` extra."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .detectors import GROUPS, make_check
from .findings import Env, mask

STORAGE_CHECKS = (*GROUPS["pii"], "secrets")


@lru_cache(maxsize=1)
def _checks() -> tuple[Any, ...]:
    return tuple(make_check(name, {}) for name in STORAGE_CHECKS)


def mask_text(text: str) -> str:
    """`text` with emails, phones, cards, IBANs, national ids, IPs and secrets as `<LABEL>`."""
    env = Env()
    return mask(text, [f for check in _checks() for f in check.scan(text, env)])
