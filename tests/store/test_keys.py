"""Virtual keys on both engines."""

from __future__ import annotations

import hashlib
import re

from aistrata.store import Database, KeyRecord, KeyStore, hash_key


def test_create_stores_only_the_hash(db: Database) -> None:
    keys = KeyStore(db)
    raw, rec = keys.create(alias="ci", user_id="u1", team_id="t1", models=["gpt-4o"], metadata={"env": "ci"})
    assert re.fullmatch(r"sk-ast-[A-Za-z0-9_-]{43}", raw)
    assert rec.key_hash == hashlib.sha256(raw.encode()).hexdigest() == hash_key(raw)
    assert rec.key_prefix == raw[:15]
    stored = db.fetchone("SELECT * FROM api_keys WHERE id = ?", (rec.id,))
    assert stored is not None and raw not in {str(v) for v in stored.values()}
    assert keys.get(rec.id) == rec
    assert keys.get_by_hash(hash_key(raw)) == rec
    assert keys.get_by_hash(hash_key(raw + "x")) is None
    assert keys.get("key_missing") is None


def test_list_filters(db: Database) -> None:
    keys = KeyStore(db)
    a = keys.create(user_id="u1", team_id="t1")[1]
    b = keys.create(user_id="u1", team_id="t2")[1]
    c = keys.create(user_id="u2", team_id="t1")[1]
    assert {k.id for k in keys.list()} == {a.id, b.id, c.id}
    assert {k.id for k in keys.list(user_id="u1")} == {a.id, b.id}
    assert [k.id for k in keys.list(user_id="u1", team_id="t1")] == [a.id]
    assert keys.list(team_id="none") == []


def test_revoke_and_touch(db: Database) -> None:
    keys = KeyStore(db)
    _, rec = keys.create()
    assert rec.is_active()
    keys.touch(rec.id, now=123)
    assert keys.revoke(rec.id, now=1000)
    assert not keys.revoke(rec.id)
    assert not keys.revoke("key_missing")
    after = keys.get(rec.id)
    assert after is not None and after.last_used_at == 123 and after.revoked_at == 1000
    assert after.is_active(now=999) and not after.is_active(now=1000)


def test_expiry() -> None:
    rec = KeyRecord(id="k", key_hash="h", key_prefix="p", expires_at=5000)
    assert rec.is_active(now=4999)
    assert not rec.is_active(now=5000)


def test_allows_models() -> None:
    anything = KeyRecord(id="k", key_hash="h", key_prefix="p")
    assert anything.allows("whatever")
    some = KeyRecord(id="k", key_hash="h", key_prefix="p", models=["gpt-4o", "claude-*"])
    assert some.allows("gpt-4o")
    assert not some.allows("gpt-4o-mini")
    assert some.allows("claude-sonnet-4-5") and some.allows("claude-")
    assert not some.allows("claud")
