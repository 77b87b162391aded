"""Roles, what each may do on the management API, and which rows each may read.

    role        management reads          management writes                    data plane
    admin       everything                everything                           yes
    team_admin  its team's data           its team's keys and budgets, scores  yes
    member      its own data (key/user)   scores on its own requests, spans    yes
    viewer      its team's data           nothing                              no

The master key and the anonymous loopback caller are admins; a virtual key carries its role
in its record (default `member`); a JWT carries it in a claim. Global objects (alerts,
routing, the cache, datasets, limits, kill switches, the audit log) are admin-only.

This module imports nothing from the gateway, so `gateway.auth` can build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Mapping

from ..core import ErrorKind, GatewayError

Role = Literal["admin", "team_admin", "member", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "team_admin", "member", "viewer")
DEFAULT_ROLE: Role = "member"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Roles a team admin may hand out: never a global admin.
TEAM_GRANTABLE: frozenset[str] = frozenset({"team_admin", "member", "viewer"})


class Access(str, Enum):
    """What an endpoint needs, beyond a valid credential."""

    admin = "admin"    # global objects: the admin role only
    team = "team"      # admin or team_admin; the handler keeps a team admin inside its team
    scoped = "scoped"  # every role; the handler narrows reads and writes to the caller's reach


def parse_role(value: Any, where: str = "role") -> Role:
    if value in ROLES:
        return value  # type: ignore[no-any-return]
    raise GatewayError(ErrorKind.bad_request, f"'{where}' must be one of {', '.join(ROLES)}", param=where)


@dataclass(frozen=True, slots=True)
class Reach:
    """The rows a caller may read: everything, one team's, one key's, or one user's (a JWT
    member has no key). Exactly one of the ids is set unless `everything`."""

    everything: bool = False
    team_id: str | None = None
    key_id: str | None = None
    user_id: str | None = None

    def narrow(self, filters: Any) -> None:
        """Force the caller's reach onto a filter object with `key_id`/`user_id`/`team_id`
        fields; a caller's own filter on another team then simply matches nothing."""
        if self.everything:
            return
        for name in ("team_id", "key_id", "user_id"):
            value = getattr(self, name)
            if value is not None:
                setattr(filters, name, value)

    def allows(self, row: Mapping[str, Any]) -> bool:
        if self.everything:
            return True
        return all(value is None or row.get(name) == value
                   for name, value in (("team_id", self.team_id), ("key_id", self.key_id), ("user_id", self.user_id)))


EVERYTHING = Reach(everything=True)
# A caller with nothing to be narrowed by (a team role without a team): matches no row.
NOTHING = Reach(key_id="\x00none")


def reach_of(role: Role, key_id: str | None, user_id: str | None, team_id: str | None) -> Reach:
    if role == "admin":
        return EVERYTHING
    if role in ("team_admin", "viewer") and team_id is not None:
        return Reach(team_id=team_id)
    if key_id is not None:
        return Reach(key_id=key_id)
    if user_id is not None:
        return Reach(user_id=user_id)
    return NOTHING


def authorise(role: Role, access: Access, method: str) -> None:
    """Refuse (403) what `role` may not do on an endpoint needing `access`."""
    if role == "admin":
        return
    if access is Access.admin:
        raise GatewayError(ErrorKind.permission, "this endpoint needs the admin role")
    if role == "viewer" and method in WRITES:
        raise GatewayError(ErrorKind.permission, "the viewer role is read-only")
    if access is Access.team and role != "team_admin":
        raise GatewayError(ErrorKind.permission, "this endpoint needs the admin or team_admin role")
