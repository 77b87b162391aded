"""The audit log: management writes are chained with who/what/where/result, the chain
verifies, and editing one row in the database is detected and named."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import yaml

from aistrata.security.audit import AuditEvent, AuditLog
from aistrata.store import Database
from aistrata.store.migrations import migrate
from tests.conftest import MASTER_KEY

from .conftest import Tenancy

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def test_management_writes_are_audited(tenancy: Tenancy) -> None:
    with tenancy.client() as http:
        created = http.post("/api/keys", headers=ADMIN, json={"alias": "audited"}).json()
        assert http.delete(f"/api/keys/{created['id']}", headers=ADMIN).status_code == 200
        refused = http.post("/api/keys", headers=tenancy.headers("member"), json={})
        assert refused.status_code == 403
        rows = http.get("/api/audit?limit=50", headers=ADMIN).json()["data"]
    by_action = {(r["action"], r["target"], r["result"]) for r in rows}
    assert ("POST /api/keys", created["id"], "ok") in by_action
    assert ("DELETE /api/keys/{id}", created["id"], "ok") in by_action
    refusal = next(r for r in rows if r["result"] == "refused")
    assert refusal["actor"] == tenancy.ids["member"] and refusal["role"] == "member"
    assert refusal["from_ip"] == "127.0.0.1"
    assert all(created["key"] not in str(r) for r in rows)  # the raw key is never logged
    with tenancy.client() as http:
        assert http.get("/api/audit/verify", headers=ADMIN).json()["ok"] is True


def test_tampering_is_detected(database: Database) -> None:
    migrate(database)
    log = AuditLog(database)
    for i in range(5):
        log.append(AuditEvent(actor="master", role="admin", action="POST /api/keys", target=f"key_{i}"))
    assert log.verify().ok and log.verify().rows == 5
    database.execute("UPDATE audit_log SET result = 'refused' WHERE seq = 3")
    result = log.verify()
    assert (result.ok, result.broken_seq) == (False, 3) and "edited" in str(result.reason)

    # Recomputing the edited row's own hash moves the break to the next row, which still names it.
    row = database.fetchone("SELECT * FROM audit_log WHERE seq = 3")
    from aistrata.security.audit import row_hash
    database.execute("UPDATE audit_log SET hash = ? WHERE seq = 3", (row_hash(row["prev_hash"], row),))
    result = log.verify()
    assert (result.ok, result.broken_seq) == (False, 4) and "row 3" in str(result.reason)

    database.execute("DELETE FROM audit_log WHERE seq = 4")
    assert log.verify().broken_seq == 4


def test_concurrent_appends_never_fork(database: Database) -> None:
    migrate(database)
    log = AuditLog(database)

    def writer(n: int) -> None:
        for i in range(10):
            log.append(AuditEvent(actor=f"w{n}", action="test", target=str(i)))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = log.verify()
    assert result.ok and result.rows == 40 and result.last_seq == 40


def test_cli_verify_names_the_broken_row(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'aistrata.db'}")
    migrate(db)
    log = AuditLog(db)
    log.append_many([AuditEvent(actor="master", action="x", target=str(i)) for i in range(3)])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({}))
    cmd = [sys.executable, "-m", "aistrata.interface.cli", "audit", "verify", "--data-dir", str(tmp_path)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    db.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 1 and "broken at row 2" in done.stderr
    db.close()
