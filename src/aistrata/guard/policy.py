"""Guard policies from the `guards:` section of the config, and which ones apply to a caller.

    guards:
      default: [secrets, injection]        # optional; see below
      policies:
        - name: pii-input
          on: input                          # input | output | [input, output]
          checks: [email, phone, credit_card, iban, national_id]   # or `pii` for all of them
          action: mask                       # block | mask | flag
          actions: {credit_card: block}      # per-check override
          roles: [user, tool]                # input: which messages are scanned (default)
        - {name: injection, on: input, checks: [injection], action: block, threshold: 0.5,
           classifier: /var/lib/aistrata/injection-model.json}
        - {name: no-leaks, on: output, checks: [leakage], action: block, canary: true}
      teams: {kids: [pii-input, content-kids]}
      keys: {<key id or alias>: [...]}

A key's `metadata.guards` (a list of names) adds policies for that key. Every other option
of a policy entry is handed to its checks (`threshold`, `regions`, `words`, `topics`, ...).
Policies in `default` apply to everyone; without `default`, every policy that no team or
key names applies to everyone, and the ones named there apply only to those callers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from .detectors import GROUPS, OUTPUT_ONLY, REQUEST_CHECKS, make_check

log = logging.getLogger("aistrata.guard")
ACTIONS = ("block", "mask", "flag")
_RESERVED = {"name", "on", "checks", "action", "actions", "roles", "hold_chars"}


class PolicyError(ValueError):
    pass


@dataclass(slots=True)
class Rule:
    """One check of one policy, with the action it takes."""

    name: str
    check: Any
    action: str

    @property
    def request_level(self) -> bool:
        return self.name in REQUEST_CHECKS


@dataclass(slots=True)
class Policy:
    name: str
    where: frozenset[str]
    rules: list[Rule]
    roles: frozenset[str] = frozenset({"user", "tool"})
    hold_chars: int = 64     # stream text held back to mask a match that spans chunks
    canary: bool = False     # inject a canary into the system prompt (leakage check)


@dataclass(slots=True)
class PolicySet:
    policies: dict[str, Policy] = field(default_factory=dict)
    default: list[str] = field(default_factory=list)
    teams: dict[str, list[str]] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.policies)

    def for_principal(self, principal: Any) -> list[Policy]:
        names = list(self.default)
        key = getattr(principal, "key", None)
        if key is not None:
            names += self.teams.get(key.team_id or "", [])
            names += self.keys.get(key.id, []) + self.keys.get(key.alias or "", [])
            extra = (key.metadata or {}).get("guards") or []
            names += [str(n) for n in extra] if isinstance(extra, list) else []
        out: list[Policy] = []
        for name in dict.fromkeys(names):  # first mention wins the order, duplicates dropped
            policy = self.policies.get(name)
            if policy is None:
                log.warning("guard policy %r is referenced but not defined; ignored", name)
            else:
                out.append(policy)
        return out


def _names_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of names")
    return list(value)


def parse_policy(entry: Mapping[str, Any], index: int) -> Policy:
    name = entry.get("name")
    where = f"guards.policies[{index}]"
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{where} needs a name")
    where = f"guards policy {name!r}"
    sides = frozenset(_names_list(entry.get("on", "input"), f"{where}.on"))
    if not sides or not sides <= {"input", "output"}:
        raise PolicyError(f"{where}.on must be input, output or both")
    action = entry.get("action", "block")
    overrides = dict(entry.get("actions") or {})
    for a in [action, *overrides.values()]:
        if a not in ACTIONS:
            raise PolicyError(f"{where}: action {a!r} is not one of {', '.join(ACTIONS)}")
    options = {k: v for k, v in entry.items() if k not in _RESERVED}
    check_names = [c for raw in _names_list(entry.get("checks"), f"{where}.checks") for c in GROUPS.get(raw, [raw])]
    if not check_names:
        raise PolicyError(f"{where} has no checks")
    rules = []
    for check_name in check_names:
        try:
            check = make_check(check_name, options)
        except (ValueError, TypeError) as exc:
            raise PolicyError(f"{where}: {exc}") from exc
        rule = Rule(check_name, check, overrides.get(check_name, action))
        if rule.action == "mask" and not getattr(check, "maskable", False):
            raise PolicyError(f"{where}: check {check_name!r} judges whole texts and cannot mask; use block or flag")
        if check_name in OUTPUT_ONLY and "input" in sides:
            raise PolicyError(f"{where}: check {check_name!r} inspects answers; use `on: output`")
        if rule.request_level and "output" in sides:
            raise PolicyError(f"{where}: check {check_name!r} inspects requests; use `on: input`")
        rules.append(rule)
    roles = frozenset(_names_list(entry.get("roles"), f"{where}.roles") or ["user", "tool"])
    canary = any(r.name == "leakage" for r in rules) and bool(entry.get("canary", True))
    return Policy(name, sides, rules, roles, int(entry.get("hold_chars", 64)), canary)


def parse_policies(raw: Mapping[str, Any] | None) -> PolicySet:
    """The `guards:` section, validated; errors name the policy and the field."""
    if not raw:
        return PolicySet()
    if not isinstance(raw, Mapping):
        raise PolicyError("guards must be a mapping")
    result = PolicySet()
    for i, entry in enumerate(raw.get("policies") or []):
        if not isinstance(entry, Mapping):
            raise PolicyError(f"guards.policies[{i}] must be a mapping")
        policy = parse_policy(entry, i)
        if policy.name in result.policies:
            raise PolicyError(f"guards policy {policy.name!r} is defined twice")
        result.policies[policy.name] = policy
    result.teams = {str(t): _names_list(v, f"guards.teams.{t}") for t, v in (raw.get("teams") or {}).items()}
    result.keys = {str(k): _names_list(v, f"guards.keys.{k}") for k, v in (raw.get("keys") or {}).items()}
    assigned = {n for names in [*result.teams.values(), *result.keys.values()] for n in names}
    for name in assigned - set(result.policies):
        raise PolicyError(f"guards: policy {name!r} is assigned but not defined")
    if "default" in raw:
        result.default = _names_list(raw["default"], "guards.default")
        for name in set(result.default) - set(result.policies):
            raise PolicyError(f"guards.default: policy {name!r} is not defined")
    else:
        result.default = [n for n in result.policies if n not in assigned]
    return result
