"""Identifiers: request ids, response ids, tool-call ids."""

from __future__ import annotations

import random
import time

# Ids need to be unique, not secret: a seeded Mersenne Twister is ~100x cheaper than
# os.urandom on VMs where getrandom is slow, and request ids are minted on the hot path.
_random = random.Random()


def new_id(prefix: str) -> str:
    return f"{prefix}{_random.getrandbits(96):024x}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000
