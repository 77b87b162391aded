"""The compliance report, as JSON and Markdown, from the API and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aistrata.store import Database
from aistrata.store.keys import KeyStore
from aistrata.store.migrations import migrate
from tests.conftest import MASTER_KEY

from .conftest import Tenancy

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def test_report_over_the_api(tenancy: Tenancy) -> None:
    with tenancy.client() as http:
        http.post("/api/kill-switches", headers=ADMIN, json={"scope": "team", "value": "beta"})
        assert http.post("/v1/chat/completions", headers=tenancy.headers("b_member"), json={
            "model": "gpt", "messages": [{"role": "user", "content": "hi"}]}).status_code == 503
        http.delete("/api/kill-switches/team%3Abeta", headers=ADMIN)
        tenancy.gw.flush()
        tenancy.gw.services.security.decisions.flush()
        report = http.get("/api/compliance/report", headers=ADMIN).json()
        markdown = http.get("/api/compliance/report?format=markdown", headers=ADMIN)
        assert http.get("/api/compliance/report?format=pdf", headers=ADMIN).status_code == 400
        assert http.get("/api/compliance/report", headers=tenancy.headers("team_admin")).status_code == 403
    assert report["roles_in_use"]["team_admin"] >= 2 and report["roles_in_use"]["viewer"] >= 1
    assert {k["id"] for k in report["keys"]} >= set(tenancy.ids.values())
    assert report["blocked"]["kill_switch"] >= 1
    assert report["authentication"]["jwt"]["keys"] == "secret"
    assert set(report["retention_days"]) == {"requests", "spans", "payloads", "audit"}
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "# AI Strata compliance report" in markdown.text and tenancy.ids["viewer"] in markdown.text


def test_report_from_the_cli(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'aistrata.db'}")
    migrate(db)
    KeyStore(db).create(alias="ops", team_id="acme", role="team_admin")
    db.close()
    cmd = [sys.executable, "-m", "aistrata.interface.cli", "compliance", "report", "--data-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "| ops | acme | team_admin | yes |" in done.stdout and "- team_admin: 1" in done.stdout
