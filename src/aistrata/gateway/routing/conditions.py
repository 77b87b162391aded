"""Condition routes: send a request to another model group because of who asks or how it is
tagged (`team == kids` -> a filtered group, `tags contains batch` -> a cheap group).

Rules are tried in config order; the first whose conditions all hold and whose `model` glob
matches the requested model decides. Conditions read the caller's key (`team`, `user`,
`key` = the key's alias or id) and the request (`tag`: any of the listed tags present;
`metadata`: each listed field equal).
"""

from __future__ import annotations

from typing import Sequence

from ..context import RequestContext
from .policy import RouteRule


def matches(rule: RouteRule, model: str, ctx: RequestContext) -> bool:
    if not rule.matches_model(model):
        return False
    principal = ctx.principal
    if rule.team is not None and principal.team_id != rule.team:
        return False
    if rule.user is not None and principal.user_id != rule.user:
        return False
    if rule.key is not None and rule.key not in (principal.key_alias, principal.key_id):
        return False
    if rule.tags and rule.tags.isdisjoint(ctx.tags):
        return False
    metadata = ctx.metadata
    return all(metadata.get(k) == v for k, v in rule.metadata)


def first_match(rules: Sequence[RouteRule], model: str, ctx: RequestContext) -> RouteRule | None:
    for rule in rules:
        if matches(rule, model, ctx):
            return rule
    return None
