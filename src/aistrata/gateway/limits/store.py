"""Budgets made through the API or the CLI, kept in the `budgets` table."""

from __future__ import annotations

from typing import Any

from ...core import new_id, now_ms
from ...store.db import Database
from .spec import BudgetSpec, parse_budget


class BudgetStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, row: dict[str, Any]) -> BudgetSpec:
        """Validates like a config entry (raises `ConfigError`), then stores it."""
        spec = parse_budget(row, "budget", origin="api", budget_id=new_id("bud_"))
        self.db.execute(
            "INSERT INTO budgets (id, scope, subject, max_usd, soft_usd, period, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (spec.budget_id, spec.scope, spec.id, spec.max_usd, spec.soft_usd, spec.period, now_ms()),
        )
        return spec

    def list(self) -> list[BudgetSpec]:
        rows = self.db.fetchall(
            "SELECT id, scope, subject, max_usd, soft_usd, period FROM budgets ORDER BY created_at, id")
        return [
            BudgetSpec(r["scope"], r["subject"], float(r["max_usd"]), r["period"],
                       None if r["soft_usd"] is None else float(r["soft_usd"]), "api", r["id"])
            for r in rows
        ]

    def delete(self, budget_id: str) -> bool:
        return self.db.execute("DELETE FROM budgets WHERE id = ?", (budget_id,)) > 0

    def spent_since(self, scope: str, subject: str, since_ms: int) -> float | None:
        """What the request log says `subject` spent since `since_ms`; None for scopes the log
        has no column for."""
        column = SPEND_COLUMNS.get(scope)
        if column is None:
            return None
        row = self.db.fetchone(
            f"SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM requests WHERE {column} = ? AND ts >= ?",
            (subject, since_ms))
        return float(row["spent"]) if row else 0.0


# Budget scopes -> request-log columns (indexed with ts).
SPEND_COLUMNS = {"key": "key_id", "user": "user_id", "team": "team_id"}
