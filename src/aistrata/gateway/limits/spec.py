"""What is limited, for whom: rate-limit rules and money budgets, read from the config file,
from virtual keys' metadata (LiteLLM's names) and, for budgets, from the database.

    limits:
      - {scope: key, requests_per_minute: 60, input_tokens_per_minute: 10000,
         output_tokens_per_minute: 5000, concurrent: 4, algorithm: sliding_window}
      - {scope: team, id: kids, tokens_per_minute: 20000, algorithm: token_bucket}
      - {scope: key_model, model: gpt-4o, requests_per_minute: 5}
    limits_settings: {default_max_tokens: 4096, slot_ttl_s: 600}
    budgets:
      - {scope: team, id: kids, max_usd: 10, period: monthly, soft_usd: 8}
    budgets_settings: {unknown_price: deny, team_orgs: {kids: acme}}

A rule or budget without `id` applies to each subject of its scope separately; `model`
narrows a rule to one requested model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..auth import Principal
from ..config import ConfigError
from .periods import litellm_period, parse_period

SCOPES = ("key", "user", "team", "org", "model", "key_model")
BUDGET_SCOPES = ("key", "user", "team", "org")
ALGORITHMS = ("sliding_window", "token_bucket")
# Config field -> the dimension it caps (per minute).
RATE_FIELDS = {
    "requests_per_minute": "requests", "rpm": "requests",
    "input_tokens_per_minute": "input_tokens",
    "output_tokens_per_minute": "output_tokens",
    "tokens_per_minute": "tokens", "tpm": "tokens",
}
TOKEN_DIMENSIONS = ("input_tokens", "output_tokens", "tokens")


@dataclass(frozen=True, slots=True)
class Subjects:
    """Who a request counts against, per scope (None: the scope does not apply)."""

    key: str | None
    user: str | None
    team: str | None
    org: str | None
    model: str

    @classmethod
    def of(cls, principal: Principal, model: str, team_orgs: Mapping[str, str]) -> Subjects:
        meta = principal.key.metadata if principal.key else {}
        team = principal.team_id
        org = meta.get("org_id") or (team_orgs.get(team) if team else None)
        return cls(principal.key_id, principal.user_id, team, org, model)

    @classmethod
    def for_request(cls, ctx: Any, model: str, team_orgs: Mapping[str, str]) -> Subjects:
        """`of` for a request, worked out once and shared by the stages that need it."""
        key = ("subjects", model)
        found = ctx.estimates.get(key)
        if found is None:
            found = ctx.estimates[key] = cls.of(ctx.principal, model, team_orgs)
        return found

    def get(self, scope: str) -> str | None:
        if scope == "key_model":
            return f"{self.key}|{self.model}" if self.key else None
        return getattr(self, scope)


@dataclass(frozen=True, slots=True)
class LimitRule:
    scope: str
    id: str | None
    model: str | None
    caps: dict[str, int]               # dimension -> per-minute cap
    concurrent: int | None = None
    algorithm: str = "sliding_window"
    origin: str = "config"             # "config#<n>" or "key": keeps counters of rules apart
    counts_tokens: bool = field(init=False, repr=False, compare=False)  # caps a token dimension

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts_tokens", any(d in TOKEN_DIMENSIONS for d in self.caps))

    def subject(self, subjects: Subjects) -> str | None:
        """The subject this rule counts the request against, or None when it does not apply."""
        if self.model is not None and self.model != subjects.model:
            return None
        subject = subjects.get(self.scope)
        if subject is None:
            return None
        if self.id is not None and self.id != (subjects.key if self.scope == "key_model" else subject):
            return None
        return subject

    def as_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "id": self.id, "model": self.model, "algorithm": self.algorithm,
                "per_minute": dict(self.caps), "concurrent": self.concurrent, "origin": self.origin}


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    scope: str
    id: str | None
    max_usd: float
    period: str = "monthly"
    soft_usd: float | None = None
    origin: str = "config"              # "config", "key" or "api"
    budget_id: str | None = None        # "config#<n>", or the database row of an API budget
    extra: dict[str, Any] = field(default_factory=dict)

    def subject(self, subjects: Subjects) -> str | None:
        subject = subjects.get(self.scope)
        return subject if subject is not None and self.id in (None, subject) else None

    def label(self, subject: str) -> str:
        return f"{self.scope}:{subject} {self.period}"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.budget_id, "scope": self.scope, "subject": self.id, "max_usd": self.max_usd,
                "soft_usd": self.soft_usd, "period": self.period, "origin": self.origin}


def _positive_int(row: Mapping[str, Any], name: str, where: str) -> int | None:
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}.{name} must be a positive number")
    return int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_limits(rows: Any) -> list[LimitRule]:
    if not isinstance(rows, list):
        raise ConfigError("limits must be a list of rules")
    rules = []
    for i, row in enumerate(rows):
        where = f"limits[{i}]"
        if not isinstance(row, Mapping) or row.get("scope") not in SCOPES:
            raise ConfigError(f"{where}.scope must be one of {', '.join(SCOPES)}")
        algorithm = row.get("algorithm", "sliding_window")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"{where}.algorithm must be one of {', '.join(ALGORITHMS)}")
        caps = {dim: n for name, dim in RATE_FIELDS.items() if (n := _positive_int(row, name, where)) is not None}
        concurrent = _positive_int(row, "concurrent", where) or _positive_int(row, "max_parallel_requests", where)
        if not caps and concurrent is None:
            raise ConfigError(f"{where} limits nothing: set requests_per_minute, *_tokens_per_minute or concurrent")
        rules.append(LimitRule(row["scope"], _str_or_none(row.get("id")), _str_or_none(row.get("model")), caps,
                               concurrent, algorithm, f"config#{i}"))
    return rules


def key_limits(metadata: Mapping[str, Any]) -> list[LimitRule]:
    """A virtual key's own limits, under LiteLLM's metadata names."""
    rules: list[LimitRule] = []
    caps = {dim: int(metadata[name]) for name, dim in (("rpm_limit", "requests"), ("tpm_limit", "tokens"))
            if metadata.get(name)}
    parallel = metadata.get("max_parallel_requests")
    if caps or parallel:
        rules.append(LimitRule("key", None, None, caps, int(parallel) if parallel else None, origin="key"))
    for name, dim in (("model_rpm_limit", "requests"), ("model_tpm_limit", "tokens")):
        for model, n in (metadata.get(name) or {}).items():
            rules.append(LimitRule("key_model", None, str(model), {dim: int(n)}, origin="key"))
    return rules


def parse_budget(row: Any, where: str, origin: str = "config", budget_id: str | None = None) -> BudgetSpec:
    if not isinstance(row, Mapping) or row.get("scope") not in BUDGET_SCOPES:
        raise ConfigError(f"{where}.scope must be one of {', '.join(BUDGET_SCOPES)}")
    max_usd, soft = row.get("max_usd"), row.get("soft_usd")
    if isinstance(max_usd, bool) or not isinstance(max_usd, (int, float)) or max_usd < 0:
        raise ConfigError(f"{where}.max_usd must be a number of dollars, 0 or more")
    if soft is not None and (isinstance(soft, bool) or not isinstance(soft, (int, float)) or soft < 0):
        raise ConfigError(f"{where}.soft_usd must be a number of dollars, 0 or more")
    period = str(row.get("period") or "monthly")
    parse_period(period)  # reject a bad period when the budget is made, not on first use
    return BudgetSpec(row["scope"], _str_or_none(row.get("id")), float(max_usd), period,
                      None if soft is None else float(soft), origin, budget_id)


def parse_budgets(rows: Any) -> list[BudgetSpec]:
    if not isinstance(rows, list):
        raise ConfigError("budgets must be a list")
    return [parse_budget(row, f"budgets[{i}]", budget_id=f"config#{i}") for i, row in enumerate(rows)]


def key_budget(key_id: str, metadata: Mapping[str, Any]) -> BudgetSpec | None:
    """LiteLLM's `max_budget` / `budget_duration` / `soft_budget` on a virtual key."""
    max_budget = metadata.get("max_budget")
    if max_budget is None:
        return None
    duration = metadata.get("budget_duration")
    soft = metadata.get("soft_budget")
    return BudgetSpec("key", key_id, float(max_budget), litellm_period(duration) if duration else "none",
                      None if soft is None else float(soft), "key")
