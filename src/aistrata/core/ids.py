"""Identifiers: request ids, response ids, tool-call ids."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    return f"{prefix}{os.urandom(12).hex()}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000
