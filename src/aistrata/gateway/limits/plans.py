"""What a caller's requests for a model count against, worked out once per caller and model.

Which rules and budgets apply, their subjects and their counter keys depend only on the config,
the caller (key, user, team, the key's metadata) and the requested model; working them out
again on every request cost more than the counting itself. A plan is kept while the caller's
key record is the same object: the authenticator re-reads a key at most a second after it
changed, so a plan is never more than about a second behind its key.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from ..context import RequestContext

T = TypeVar("T")
MAX_PLANS = 100_000  # callers x models remembered; past it, start again


class Plans(Generic[T]):
    def __init__(self, build: Callable[[RequestContext, str], T]) -> None:
        self.build = build
        self._plans: dict[tuple[Any, ...], tuple[Any, T]] = {}

    def get(self, ctx: RequestContext, model: str) -> T:
        p = ctx.principal
        ident = (p.kind, p.key_id, p.user_id, p.team_id, model)
        found = self._plans.get(ident)
        if found is not None and found[0] is p.key:
            return found[1]
        plan = self.build(ctx, model)
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        self._plans[ident] = (p.key, plan)
        return plan

    def clear(self) -> None:
        """Forget every plan (the rules or budgets they were made from changed)."""
        self._plans.clear()
