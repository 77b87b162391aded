"""Routing configuration: per-group strategy and resilience settings, complexity groups,
condition routes and the circuit breaker, read from the config file.

    router_settings:            # LiteLLM's names, the defaults for every group
      routing_strategy: simple-shuffle
      num_retries: 2
      retry_after_max: 30       # a longer retry-after is not waited for: the next deployment is tried
      timeout: 600              # the whole request, every attempt and wait included
      first_token_timeout: 10   # streams: longest wait for the first content event (alias stream_timeout)
      fallbacks: [{gpt-4o: [claude]}]
      context_window_fallbacks: [{gpt-4o-mini: [gpt-4o]}]
      content_policy_fallbacks: [{gpt-4o: [claude]}]
      allowed_fails: 3          # breaker: failures within failure_window open it
      failure_window: 60
      cooldown_time: 30         # open -> half-open after this many seconds
      max_parallel_requests: 256  # adaptive limit ceiling per deployment (model_info overrides)
    groups:                     # per group, over router_settings
      gpt-4o: {routing_strategy: latency-based, num_retries: 1, fallbacks: [claude]}
      auto: {routing_strategy: complexity-based, simple: small-model, complex: big-model, threshold: 0.5}
    routes:                     # conditions, first match wins, before any group's strategy
      - {when: {team: kids}, model: "*", use: kids-safe}
      - {when: {tag: batch}, model: gpt-4o, use: gpt-4o-mini}
      - {when: {metadata: {tier: free}, user: bob, key: ci-key}, use: cheap}
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..config import ConfigError, Settings

# Every name we accept -> the strategy it means. LiteLLM's usage-based routing balances
# load from live counters; least-busy is our equivalent.
STRATEGY_NAMES: dict[str, str] = {
    "round-robin": "round-robin",
    "weighted": "weighted",
    "simple-shuffle": "weighted",
    "capability-based": "weighted",  # capability filtering always runs; this names it explicitly
    "least-busy": "least-busy",
    "usage-based-routing": "least-busy",
    "usage-based-routing-v2": "least-busy",
    "latency-based": "latency-based",
    "latency-based-routing": "latency-based",
    "cost-based": "cost-based",
    "cost-based-routing": "cost-based",
    "complexity-based": "complexity-based",
}


def strategy_name(name: Any, where: str) -> str:
    canonical = STRATEGY_NAMES.get(str(name).strip().lower())
    if canonical is None:
        raise ConfigError(f"{where}: unknown routing strategy {name!r} (one of {', '.join(sorted(STRATEGY_NAMES))})")
    return canonical


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    strategy: str = "weighted"
    num_retries: int = 2
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    timeout: float | None = None
    first_token_timeout: float | None = None
    retry_after_max: float = 30.0
    backoff_base: float = 0.5
    backoff_max: float = 8.0


@dataclass(frozen=True, slots=True)
class ComplexityRule:
    """A virtual group: prompts scoring below `threshold` go to `simple`, the rest to `complex`."""

    simple: str
    complex: str
    threshold: float = 0.5


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    allowed_fails: int = 3
    window_s: float = 60.0
    cooldown_s: float = 30.0
    probe_lease_s: float = 60.0  # a probe that never reports back frees its slot after this


@dataclass(frozen=True, slots=True)
class RouteRule:
    """`when` conditions (all must hold) on the caller and request; `model` is a glob."""

    index: int
    use: str
    model: str = "*"
    team: str | None = None
    user: str | None = None
    key: str | None = None
    tags: frozenset[str] = frozenset()
    metadata: tuple[tuple[str, Any], ...] = ()

    def matches_model(self, model: str) -> bool:
        return self.model == "*" or self.model == model or fnmatch.fnmatchcase(model, self.model)


@dataclass(slots=True)
class RoutingPolicy:
    default: GroupPolicy = field(default_factory=GroupPolicy)
    groups: dict[str, GroupPolicy] = field(default_factory=dict)
    complexity: dict[str, ComplexityRule] = field(default_factory=dict)
    rules: tuple[RouteRule, ...] = ()
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    max_parallel_requests: int = 256

    def group(self, name: str) -> GroupPolicy:
        return self.groups.get(name, self.default)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where} must be a model group name or a list of them")


def _litellm_chains(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    """LiteLLM's `[{group: [fallback, ...]}, ...]` (a plain mapping is accepted too)."""
    rows = [value] if isinstance(value, dict) else value or []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{where} must be a list of {{group: [fallbacks]}} mappings")
    return {str(g): _names(chain, f"{where}.{g}") for row in rows for g, chain in row.items()}


def _number(section: Mapping[str, Any], key: str, where: str, default: Any) -> Any:
    """`section[key]` as the type of `default` (an int or a float); absent -> `default`."""
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}.{key} must be a non-negative number")
    return type(default)(value)


CHAIN_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
# router_settings keys that are not group defaults: the strategy is parsed by `config`, and
# LiteLLM's chains there are per group ({group: [fallbacks]}).
NOT_DEFAULTS = frozenset({"routing_strategy", *CHAIN_KEYS})


GROUP_NUMBERS = ("num_retries", "timeout", "first_token_timeout", "retry_after_max", "backoff_base", "backoff_max")


def _group_policy(base: GroupPolicy, section: Mapping[str, Any], where: str) -> GroupPolicy:
    changes: dict[str, Any] = {}
    if "routing_strategy" in section:
        changes["strategy"] = strategy_name(section["routing_strategy"], where)
    if "stream_timeout" in section and "first_token_timeout" not in section:
        section = {**section, "first_token_timeout": section["stream_timeout"]}
    for key in GROUP_NUMBERS:
        if section.get(key) is not None:
            value = _number(section, key, where, 0 if key == "num_retries" else 0.0)
            # a zero timeout means "none", as in LiteLLM
            changes[key] = None if key in ("timeout", "first_token_timeout") and not value else value
    for key in CHAIN_KEYS:
        if key in section:
            changes[key] = _names(section[key], f"{where}.{key}")
    return dataclasses.replace(base, **changes) if changes else base


def _rule(index: int, row: Any) -> RouteRule:
    where = f"routes[{index}]"
    if not isinstance(row, dict) or not isinstance(row.get("use"), str):
        raise ConfigError(f"{where} needs `use: <model group>`")
    when = row.get("when") or {}
    if not isinstance(when, dict):
        raise ConfigError(f"{where}.when must be a mapping")
    unknown = set(when) - {"team", "user", "key", "tag", "tags", "metadata"}
    if unknown:
        raise ConfigError(f"{where}.when: unknown condition(s) {', '.join(sorted(unknown))}")
    metadata = when.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ConfigError(f"{where}.when.metadata must be a mapping")
    tags = _names(when.get("tag"), f"{where}.when.tag") + _names(when.get("tags"), f"{where}.when.tags")
    return RouteRule(
        index=index, use=row["use"], model=str(row.get("model") or "*"),
        team=_opt_str(when.get("team")), user=_opt_str(when.get("user")), key=_opt_str(when.get("key")),
        tags=frozenset(tags), metadata=tuple((str(k), v) for k, v in metadata.items()),
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def load_policy(settings: Settings) -> RoutingPolicy:
    raw = settings.raw
    rs = raw.get("router_settings") or {}
    if not isinstance(rs, dict):
        raise ConfigError("router_settings must be a mapping")
    default = _group_policy(GroupPolicy(strategy=strategy_name(settings.routing_strategy, "router_settings")),
                            {k: v for k, v in rs.items() if k not in NOT_DEFAULTS}, "router_settings")
    policy = RoutingPolicy(
        default=default,
        breaker=BreakerPolicy(
            allowed_fails=max(1, _number(rs, "allowed_fails", "router_settings", 3)),
            window_s=_number(rs, "failure_window", "router_settings", 60.0),
            cooldown_s=_number(rs, "cooldown_time", "router_settings", 30.0),
        ),
        max_parallel_requests=max(1, _number(rs, "max_parallel_requests", "router_settings", 256)),
    )
    # LiteLLM's per-group chains live in router_settings; they seed each group's policy.
    seeded: dict[str, dict[str, Any]] = {}
    for key in CHAIN_KEYS:
        for group, chain in _litellm_chains(rs.get(key), f"router_settings.{key}").items():
            seeded.setdefault(group, {})[key] = list(chain)
    groups = raw.get("groups") or {}
    if not isinstance(groups, dict):
        raise ConfigError("groups must be a mapping of group name -> settings")
    for name in set(seeded) | set(groups):
        section = groups.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"groups.{name} must be a mapping")
        where = f"groups.{name}"
        policy.groups[name] = _group_policy(default, {**seeded.get(name, {}), **section}, where)
        if policy.groups[name].strategy == "complexity-based":
            if not isinstance(section.get("simple"), str) or not isinstance(section.get("complex"), str):
                raise ConfigError(f"{where}: complexity-based needs `simple:` and `complex:` model groups")
            policy.complexity[name] = ComplexityRule(
                section["simple"], section["complex"], _number(section, "threshold", where, 0.5))
    rules = raw.get("routes") or []
    if not isinstance(rules, list):
        raise ConfigError("routes must be a list")
    policy.rules = tuple(_rule(i, row) for i, row in enumerate(rules))
    return policy
