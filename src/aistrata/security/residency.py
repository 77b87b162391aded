"""Data residency: keep a team's requests on deployments in its regions.

    model_list:
      - model_name: gpt
        litellm_params: {...}
        model_info: {region: eu}
    residency:
      teams: {acme: [eu]}      # acme's requests only reach deployments tagged eu
      default: [eu, us]        # optional: every other caller (omit: no restriction)

The dispatcher has no per-request deployment filter, so this admission stage refuses (403
`permission`, naming the team, the regions and the deployment outside them) any request
whose model group, condition route or fallback chain could reach a deployment outside the
allowed regions, including one with no region tag. Keep mixed-region groups apart and route
teams to their region's group with condition routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Mapping

from ..core import ErrorKind, GatewayError
from ..gateway.config import ConfigError
from ..gateway.context import RequestContext
from ..gateway.router import Router
from ..gateway.routing.conditions import first_match
from ..providers.base import Deployment


def parse_residency(raw: Mapping[str, Any]) -> tuple[dict[str, frozenset[str]], frozenset[str] | None]:
    section = raw.get("residency") or {}
    teams = section.get("teams") or {}
    if not isinstance(teams, dict) or not all(isinstance(v, list) for v in teams.values()):
        raise ConfigError("residency.teams must map team ids to lists of regions")
    default = section.get("default")
    return ({str(t): frozenset(map(str, r)) for t, r in teams.items()},
            frozenset(map(str, default)) if default is not None else None)


class ResidencyStage:
    """An admission stage; built only when `residency:` is configured."""

    def __init__(self, teams: dict[str, frozenset[str]], default: frozenset[str] | None, router: Router,
                 dispatcher: Any) -> None:
        self.teams = teams
        self.default = default
        self.router = router
        self.policy = getattr(dispatcher, "policy", None)  # routing policy: condition routes, fallbacks

    async def admit(self, req: Any, ctx: RequestContext) -> None:
        team = ctx.principal.team_id
        regions = self.teams.get(team, self.default) if team is not None else self.default
        if regions is None:
            return None
        for dep in self._reachable(req.model, ctx):
            if dep.info.get("region") not in regions:
                ctx.route["residency"] = {"team": team, "regions": sorted(regions), "deployment": dep.id}
                where = dep.info.get("region") or "no region"
                raise GatewayError(
                    ErrorKind.permission,
                    f"residency policy: requests of team '{team}' must stay in {', '.join(sorted(regions))}; "
                    f"model '{req.model}' can reach deployment '{dep.id}' ({where})", param="model")
        return None

    def _reachable(self, model: str, ctx: RequestContext) -> Iterable[Deployment]:
        groups = [model]
        if self.policy is not None:
            rule = first_match(self.policy.rules, model, ctx) if self.policy.rules else None
            if rule is not None:
                groups = [rule.use]
        seen: set[str] = set()
        while groups:
            name = groups.pop()
            try:
                deps = self.router.resolve(name)
            except GatewayError:  # a fallback naming an unknown group is skipped by the dispatcher too
                continue
            group = deps[0].group if deps else name
            if group in seen:
                continue
            seen.add(group)
            yield from deps
            if self.policy is not None:
                gp = self.policy.group(group)
                groups.extend((*gp.fallbacks, *gp.context_window_fallbacks, *gp.content_policy_fallbacks))
