"""Every management endpoint × every role, and team isolation: a key of team A never sees
team B's data anywhere.

The endpoint list comes from the app's own routes, and each must be classified in `ACCESS`:
a new endpoint fails this test until someone decides who may call it.
"""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from .conftest import Tenancy

# (method, path) -> what it needs: "public", "admin", "team" (admin, team_admin) or "scoped" (every role,
# narrowed by the handler; writes not for viewers).
ACCESS = {
    ("GET", "/health"): "public", ("GET", "/ready"): "public", ("GET", "/openapi.json"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/v1/models"): "scoped", ("GET", "/models"): "scoped",
    ("POST", "/api/keys"): "team", ("GET", "/api/keys"): "team", ("GET", "/api/keys/{id}"): "team",
    ("DELETE", "/api/keys/{id}"): "team",
    ("GET", "/api/budgets"): "team", ("POST", "/api/budgets"): "team", ("DELETE", "/api/budgets/{id}"): "team",
    ("GET", "/api/limits"): "admin", ("GET", "/api/usage"): "admin",
    ("GET", "/api/requests"): "scoped", ("GET", "/api/requests/{id}"): "scoped",
    ("GET", "/api/requests/export"): "scoped",
    ("POST", "/v1/traces"): "scoped", ("POST", "/api/spans"): "scoped", ("GET", "/api/spans"): "scoped",
    ("GET", "/api/traces"): "scoped", ("GET", "/api/traces/{trace_id}"): "scoped",
    ("GET", "/api/sessions/{id}"): "scoped", ("GET", "/api/users/{id}"): "scoped",
    ("GET", "/api/stats"): "scoped", ("GET", "/api/costs"): "scoped",
    ("POST", "/api/scores"): "scoped", ("GET", "/api/scores"): "admin",
    ("POST", "/api/datasets"): "admin", ("GET", "/api/datasets"): "admin", ("GET", "/api/datasets/{id}"): "admin",
    ("POST", "/api/datasets/{id}/items"): "admin", ("POST", "/api/datasets/{id}/runs"): "admin",
    ("GET", "/api/runs/{id}"): "admin",
    ("POST", "/api/alerts"): "admin", ("GET", "/api/alerts"): "admin", ("GET", "/api/alerts/{id}"): "admin",
    ("DELETE", "/api/alerts/{id}"): "admin", ("GET", "/api/alerts/{id}/deliveries"): "admin",
    ("GET", "/api/cache"): "admin", ("DELETE", "/api/cache"): "admin",
    ("GET", "/api/groups"): "admin", ("GET", "/api/deployments"): "admin",
    ("POST", "/api/deployments/{id:path}/reset"): "admin",
    ("GET", "/api/kill-switches"): "admin", ("POST", "/api/kill-switches"): "admin",
    ("DELETE", "/api/kill-switches/{id:path}"): "admin", ("GET", "/api/read-only"): "admin",
    ("POST", "/api/read-only"): "admin", ("GET", "/api/audit"): "admin", ("GET", "/api/audit/verify"): "admin",
    ("GET", "/api/compliance/report"): "admin", ("GET", "/api/whoami"): "scoped",
}
ROLES = ("admin", "team_admin", "member", "viewer", "anonymous")
ROLE_REFUSALS = ("needs the admin role", "needs the admin or team_admin role", "viewer role is read-only")
# Writes the matrix must not make for real (they would change what the other rows see).
HARMLESS_BODY = {("POST", "/api/read-only"): {"enabled": "maybe"}, ("POST", "/api/kill-switches"): {"scope": "none"}}


def app_routes(t: Tenancy) -> set[tuple[str, str]]:
    return {(m, r.path) for r in t.gw.gateway_app.starlette.routes if isinstance(r, Route)
            for m in (r.methods or ()) if m != "HEAD"}


def test_every_endpoint_is_classified(tenancy: Tenancy) -> None:
    routes = app_routes(tenancy)
    assert routes - ACCESS.keys() == set(), "classify the new endpoints in ACCESS"
    assert ACCESS.keys() - routes == set(), "ACCESS lists endpoints that no longer exist"


def allowed(access: str, role: str, method: str) -> bool:
    if access == "public" or role == "admin":
        return True
    if role == "anonymous" or access == "admin":
        return False
    if role == "viewer" and method != "GET":
        return False
    return access == "scoped" or role == "team_admin"


@pytest.mark.parametrize("role", ROLES)
def test_matrix(tenancy: Tenancy, role: str) -> None:
    checked = 0
    with tenancy.client() as http:
        for (method, template), access in sorted(ACCESS.items()):
            path = re.sub(r"{[^}]+}", "nope", template)
            body = HARMLESS_BODY.get((method, template), {}) if method in ("POST", "DELETE") else None
            r = http.request(method, path, headers=tenancy.headers(role), json=body if method == "POST" else None)
            where = f"{role} {method} {template} -> {r.status_code} {r.text[:200]}"
            assert r.status_code < 500, where
            if allowed(access, role, method):
                assert r.status_code != 401, where
                assert not (r.status_code == 403 and any(m in r.text for m in ROLE_REFUSALS)), where
            elif role == "anonymous":
                assert r.status_code == 401, where
            else:
                assert r.status_code == 403 and any(m in r.text for m in ROLE_REFUSALS), where
            checked += 1
    assert checked == len(ACCESS)


@pytest.mark.parametrize("who", ["team_admin", "member", "viewer"])
def test_team_a_never_sees_team_b(tenancy: Tenancy, who: str) -> None:
    t = tenancy
    h = t.headers(who)
    with t.client() as http:
        for path in ("/api/requests", "/api/spans", "/api/traces", "/api/requests?team_id=beta",
                     f"/api/requests?key_id={t.ids['b_member']}", "/api/spans?team_id=beta"):
            r = http.get(path, headers=h)
            assert r.status_code == 200, r.text
            assert all(row.get("team_id") != "beta" for row in r.json()["data"]), (path, r.text)
        assert http.get(f"/api/requests/{t.b_request_id}", headers=h).status_code == 404
        assert http.get(f"/api/traces/{t.b_trace_id}", headers=h).status_code == 404
        for path in ("/api/stats?group_by=team", "/api/costs?group_by=team"):
            r = http.get(path, headers=h)
            assert r.status_code == 200 and "beta" not in r.text, (path, r.text)
        r = http.get("/api/requests/export", headers=h)
        assert r.status_code == 200 and t.b_request_id not in r.text
        r = http.get("/api/users/user-b_member", headers=h)
        assert r.status_code == 200 and r.json()["span_count"] == 0
        if who != "viewer":
            r = http.post("/api/scores", headers=h, json={"request_id": t.b_request_id, "name": "q", "value": 1})
            assert r.status_code == 404, r.text
        if who == "team_admin":
            keys = http.get("/api/keys", headers=h).json()["data"]
            assert keys and {k["team_id"] for k in keys} == {"acme"}
            assert http.get(f"/api/keys/{t.ids['b_member']}", headers=h).status_code == 404
            assert http.delete(f"/api/keys/{t.ids['b_member']}", headers=h).status_code == 404
            budgets = http.get("/api/budgets", headers=h).json()["data"]
            assert all(b["subject"] != "beta" for b in budgets)
            r = http.post("/api/budgets", headers=h, json={"scope": "team", "id": "beta", "max_usd": 1})
            assert r.status_code == 403
            r = http.post("/api/keys", headers=h, json={"team_id": "beta"})
            assert r.status_code == 403
            r = http.post("/api/keys", headers=h, json={"role": "admin"})
            assert r.status_code == 403


def test_team_b_sees_its_own(tenancy: Tenancy) -> None:
    """The isolation above is not vacuous: team B's own keys do see the row."""
    with tenancy.client() as http:
        for who in ("b_member", "b_team_admin"):
            r = http.get(f"/api/requests/{tenancy.b_request_id}", headers=tenancy.headers(who))
            assert r.status_code == 200, (who, r.text)
            r = http.get(f"/api/traces/{tenancy.b_trace_id}", headers=tenancy.headers(who))
            assert r.status_code == 200, (who, r.text)


def test_team_admin_issues_keys_in_its_team(tenancy: Tenancy) -> None:
    with tenancy.client() as http:
        r = http.post("/api/keys", headers=tenancy.headers("team_admin"), json={"role": "viewer", "alias": "v2"})
        assert r.status_code == 201, r.text
        assert r.json()["team_id"] == "acme" and r.json()["role"] == "viewer"
        new = {"authorization": f"Bearer {r.json()['key']}"}
        assert http.get("/api/whoami", headers=new).json()["reads"] == {"team_id": "acme"}
        r = http.post("/v1/chat/completions", headers=new, json={"model": "gpt", "messages": [
            {"role": "user", "content": "hi"}]})
        assert r.status_code == 403 and "viewer" in r.text  # viewers do not use the data plane
