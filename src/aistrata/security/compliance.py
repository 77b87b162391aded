"""The compliance report: who holds which key and role, which policies are in force, what was
blocked over a window, and how long each data class is kept. JSON for machines, Markdown for
people; the same data either way (`GET /api/compliance/report`, `aistrata compliance report`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from ..core import now_ms
from ..store.keys import KeyStore
from .audit import MIN_RETENTION_DAYS, AuditLog
from .crypto import ENV_VAR

DEFAULT_WINDOW_MS = 30 * 86_400_000


def build_report(raw: Mapping[str, Any], env: Mapping[str, str], keys: KeyStore, audit: AuditLog,
                 overrides: Mapping[str, Any], since: int | None = None, until: int | None = None) -> dict[str, Any]:
    until = until or now_ms()
    since = since or until - DEFAULT_WINDOW_MS
    records = keys.list()
    now = now_ms()
    observe = raw.get("observe") or {}
    retention = observe.get("retention") or {}
    default_days = observe.get("retention_days")
    audit_days = (raw.get("audit") or {}).get("retention_days")
    counts = audit.counts(since, until)
    return {
        "generated_at": now,
        "window": {"since": since, "until": until},
        "keys": [{"id": k.id, "alias": k.alias, "team_id": k.team_id, "user_id": k.user_id, "role": k.role,
                  "created_at": k.created_at, "expires_at": k.expires_at, "revoked_at": k.revoked_at,
                  "active": k.is_active(now), "allowed_ips": k.metadata.get("allowed_ips")} for k in records],
        "roles_in_use": dict(Counter(k.role for k in records if k.is_active(now))),
        "authentication": {"master_key": bool((raw.get("general_settings") or {}).get("master_key")
                                              or env.get("AISTRATA_MASTER_KEY")),
                           "jwt": _jwt_summary(raw)},
        "policies": {
            "guards": raw.get("guards") or {},
            "limits": raw.get("limits") or [],
            "budgets": raw.get("budgets") or [],
            "residency": raw.get("residency") or {},
            "kill_switches": list((overrides.get("switches") or {}).values()),
            "read_only": overrides.get("read_only"),
            "payload_encryption": bool(env.get(ENV_VAR)),
            "payload_masking": bool((raw.get("security") or {}).get("mask_payloads")),
        },
        "blocked": {
            "kill_switch": counts.get("policy.kill_switch refused", 0),
            "residency": counts.get("policy.residency refused", 0),
            "guard": counts.get("policy.guard refused", 0),
            "management_refused": sum(n for k, n in counts.items() if not k.startswith("policy.")
                                      and k.endswith(" refused")),
        },
        "retention_days": {
            "requests": retention.get("requests", default_days), "spans": retention.get("spans", default_days),
            "payloads": retention.get("payloads"),
            "audit": None if audit_days is None else max(float(audit_days), MIN_RETENTION_DAYS),
        },
    }


def _jwt_summary(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    jwt = (raw.get("auth") or {}).get("jwt")
    if not jwt:
        return None
    source = "jwks_url" if jwt.get("jwks_url") else "jwks" if jwt.get("jwks") else "secret"
    return {"keys": source, "issuer": jwt.get("issuer"), "audience": jwt.get("audience")}


def to_markdown(report: Mapping[str, Any]) -> str:
    p = report["policies"]
    lines = [
        "# AI Strata compliance report", "",
        f"Window: {report['window']['since']} .. {report['window']['until']} (epoch ms)", "",
        "## Keys", "", "| id | alias | team | role | active | expires_at | allowed_ips |", "| --- | --- | --- | --- | --- | --- | --- |",
        *(f"| {k['id']} | {k['alias'] or ''} | {k['team_id'] or ''} | {k['role']} | {'yes' if k['active'] else 'no'} | "
          f"{k['expires_at'] or 'never'} | {', '.join(k['allowed_ips'] or []) or 'any'} |" for k in report["keys"]),
        "", "## Roles in use", "",
        *(f"- {role}: {n}" for role, n in sorted(report["roles_in_use"].items())),
        "", "## Authentication", "",
        f"- master key: {'set' if report['authentication']['master_key'] else 'not set (loopback only)'}",
        f"- JWT: {report['authentication']['jwt'] or 'off'}",
        "", "## Policies in force", "",
        f"- guards: {', '.join(map(str, p['guards'])) if p['guards'] else 'none'}",
        f"- rate limits: {len(p['limits'])}; budgets in the config: {len(p['budgets'])}",
        f"- residency: {p['residency'] or 'none'}",
        f"- kill switches: {', '.join(s['id'] for s in p['kill_switches']) or 'none'}",
        f"- read-only mode: {'on' if p['read_only'] else 'off'}",
        f"- payload encryption at rest: {'on' if p['payload_encryption'] else 'off'}; "
        f"masking before storage: {'on' if p['payload_masking'] else 'off'}",
        "", "## Blocked in the window", "",
        *(f"- {name}: {n}" for name, n in report["blocked"].items()),
        "", "## Retention (days; empty = kept forever)", "",
        *(f"- {name}: {days if days is not None else ''}" for name, days in report["retention_days"].items()),
    ]
    return "\n".join(lines) + "\n"
