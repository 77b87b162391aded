"""Budget periods and their boundaries, in UTC.

`daily`, `weekly` (from Monday), `monthly` (calendar month), `none` (never resets), or a fixed
length like `12h` / `3d` counted from the Unix epoch. The period's start is part of the
counter's key, so a reset is simply a new, empty key; the old one expires on its own.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..config import ConfigError

NAMED = ("daily", "weekly", "monthly", "none")
DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
KEEP_S = 3600  # an old period's counter outlives the period by this much, then expires


def parse_period(period: str) -> int | None:
    """Seconds of a fixed-length period, None for a named one; raises on anything else."""
    if period in NAMED:
        return None
    match = DURATION.match(period)
    if not match or match.group(2) == "mo" or int(match.group(1)) == 0:
        raise ConfigError(f"period {period!r}: use daily, weekly, monthly, none or a length like 12h or 3d")
    return int(match.group(1)) * SECONDS[match.group(2)]


def litellm_period(duration: str) -> str:
    """LiteLLM's `budget_duration` (`30d`, `1mo`, `7d`, `24h`...) as one of our periods."""
    match = DURATION.match(str(duration).strip())
    if not match:
        raise ConfigError(f"budget_duration {duration!r} is not like 30d, 1mo or 24h")
    n, unit = int(match.group(1)), match.group(2)
    seconds = n * SECONDS.get(unit, 0)
    if unit == "mo" or 28 * 86400 <= seconds <= 31 * 86400:
        return "monthly"
    if seconds == 7 * 86400:
        return "weekly"
    if seconds == 86400:
        return "daily"
    return f"{n}{unit}"


def bounds(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(start, end) of the period holding `now`; (None, None) for `none`."""
    now = now.astimezone(timezone.utc)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "none":
        return None, None
    if period == "daily":
        return day, day + timedelta(days=1)
    if period == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "monthly":
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    length = parse_period(period)
    assert length is not None
    n = int((now - EPOCH).total_seconds()) // length
    start = EPOCH + timedelta(seconds=n * length)
    return start, start + timedelta(seconds=length)


def period_tag(start: datetime | None) -> str:
    return "all" if start is None else start.strftime("%Y%m%dT%H%M%SZ")


def counter_ttl_s(end: datetime | None, now: datetime) -> float | None:
    return None if end is None else (end - now).total_seconds() + KEEP_S
