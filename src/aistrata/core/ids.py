"""Identifiers: request ids, response ids, tool-call ids."""

from __future__ import annotations

import random
import time

# Ids need to be unique, not secret: a seeded Mersenne Twister is ~100x cheaper than
# os.urandom on VMs where getrandom is slow, and request ids are minted on the hot path.
_random = random.Random()


def new_id(prefix: str) -> str:
    """`prefix` + 12 hex of epoch ms + 16 random hex. Time first, so ids sort by creation
    and a table keyed by them grows at its right edge (B-tree appends, not page splits all
    over). The random tail is 64 bits on its own: a request id's last 16 hex are also its
    gateway span's id."""
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{_random.getrandbits(64):016x}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000
