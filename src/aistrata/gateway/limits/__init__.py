"""Rate limits and money budgets: admission stages that reserve before a call and settle after.

`build_admissions` reads the `limits`, `limits_settings`, `budgets` and `budgets_settings`
sections of the config (see `spec`) and returns the stage that charges both in one step
(`admission.LimitsAndBudgets`).
"""

from __future__ import annotations

from typing import Any, Mapping

from ...store.db import Database
from ..config import ConfigError, Settings
from ..pipeline import Admission
from ..router import Router
from ..state import SharedState
from .admission import LimitsAndBudgets
from .budget import BudgetEvent, BudgetGuard
from .rate import RateLimiter
from .spec import BudgetSpec, LimitRule, Subjects, parse_budgets, parse_limits
from .store import BudgetStore

__all__ = [
    "BudgetEvent", "BudgetGuard", "BudgetSpec", "BudgetStore", "LimitRule", "LimitsAndBudgets", "RateLimiter",
    "Subjects",
    "build_admissions",
]


def _section(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping")
    return value


def build_admissions(settings: Settings, state: SharedState, db: Database | None, router: Router) -> list[Admission]:
    """The admission stage the settings configure. It always checks budgets, even with none
    configured: budgets can be added through the API at any time, and virtual keys carry
    their own."""
    raw = settings.raw
    limit_settings = _section(raw, "limits_settings")
    budget_settings = _section(raw, "budgets_settings")
    team_orgs = {str(k): str(v) for k, v in (budget_settings.get("team_orgs") or {}).items()}
    default_max = int(limit_settings.get("default_max_tokens") or 4096)
    unknown = str(budget_settings.get("unknown_price") or "deny")
    if unknown not in ("deny", "allow"):
        raise ConfigError("budgets_settings.unknown_price must be deny or allow")
    limiter = RateLimiter(parse_limits(raw.get("limits") or []), state, router, team_orgs=team_orgs,
                          default_max_tokens=default_max, slot_ttl_s=float(limit_settings.get("slot_ttl_s") or 600))
    budgets = BudgetGuard(parse_budgets(raw.get("budgets") or []), BudgetStore(db) if db is not None else None, state,
                          router, team_orgs=team_orgs, unknown_price=unknown, default_max_tokens=default_max)
    return [LimitsAndBudgets(limiter, budgets, state)]
