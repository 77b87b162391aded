"""Alert rules and their stored state, plus the delivery log.

    alerts:
      - name: spend
        type: cost                 # cost | error_rate | latency_p95 | quality | budget_soft_limit
        threshold: 25.0            # USD; error rate 0..1; p95 ms; mean score (fires BELOW it)
        window_s: 3600             # the window the metric is computed over
        for_s: 300                 # how long the condition must hold before firing (pending)
        filters: {team_id: research}       # model, provider, key_id, user_id, team_id, tag;
                                           # budget rules: scope, scope_id
        evaluator: helpful                 # quality rules: the score name
        min_requests: 20                   # no judgement on fewer requests (or scores)
        notify:
          - {url: "https://hooks.slack.com/...", format: slack}      # generic | slack | pagerduty
          - {url: "https://events.pagerduty.com/v2/enqueue", format: pagerduty, routing_key: "..."}

Rules from the config are stored with the id `cfg:<name>` (their state survives restarts);
rules created through the API get a fresh id. A state change and the deliveries it causes
are written in one transaction, before anything is sent: delivery is at least once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ...core import new_id, now_ms
from ...store.db import Database, from_json, to_json

State = Literal["ok", "pending", "firing"]
KINDS = ("cost", "error_rate", "latency_p95", "quality", "budget_soft_limit")
FORMATS = ("generic", "slack", "pagerduty")
FILTER_KEYS = {"model": "requested_model", "requested_model": "requested_model", "provider": "provider",
               "key_id": "key_id", "user_id": "user_id", "team_id": "team_id", "tag": "tag",
               "scope": "scope", "scope_id": "scope_id"}
_RULE_COLUMNS = "id, name, kind, spec, source, state, state_since, pending_since, last_value, created_at"
_DELIVERY_COLUMNS = "id, rule_id, event, url, format, payload, status, attempts, attempt_log, created_at, updated_at"


@dataclass(slots=True)
class Channel:
    url: str
    format: str = "generic"
    routing_key: str | None = None  # PagerDuty's integration key


@dataclass(slots=True)
class AlertRule:
    name: str
    kind: str
    threshold: float = 0.0
    window_s: float = 300.0
    for_s: float = 0.0
    filters: dict[str, str] = field(default_factory=dict)
    evaluator: str | None = None
    min_requests: int = 1
    channels: list[Channel] = field(default_factory=list)
    source: str = "api"
    id: str = field(default_factory=lambda: new_id("alert_"))
    state: State = "ok"
    state_since: int = field(default_factory=now_ms)
    pending_since: int | None = None
    last_value: float | None = None
    created_at: int = field(default_factory=now_ms)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], source: str = "api") -> AlertRule:
        """Validate a rule from the config or the API; ValueError says what is wrong."""
        name, kind = spec.get("name"), spec.get("type") or spec.get("kind")
        if not isinstance(name, str) or not name:
            raise ValueError("an alert rule needs a name")
        if kind not in KINDS:
            raise ValueError(f"alert {name!r}: type must be one of {', '.join(KINDS)}")
        if kind == "quality" and not spec.get("evaluator"):
            raise ValueError(f"alert {name!r}: a quality rule names the score in 'evaluator'")
        filters = spec.get("filters") or {}
        allowed = set(FILTER_KEYS) - ({"scope", "scope_id"} if kind != "budget_soft_limit" else set())
        unknown = sorted(set(filters) - allowed)
        if unknown:
            raise ValueError(f"alert {name!r}: unknown filters {', '.join(unknown)}")
        channels = []
        for ch in spec.get("notify") or ():
            fmt = ch.get("format", "generic")
            if not ch.get("url") or fmt not in FORMATS:
                raise ValueError(f"alert {name!r}: each notify entry needs a url and a format in {FORMATS}")
            if fmt == "pagerduty" and not ch.get("routing_key"):
                raise ValueError(f"alert {name!r}: a pagerduty channel needs a routing_key")
            channels.append(Channel(str(ch["url"]), fmt, ch.get("routing_key")))
        rule = cls(name, kind, float(spec.get("threshold", 0.0)), float(spec.get("window_s", 300)),
                   float(spec.get("for_s", 0)), {FILTER_KEYS[k]: str(v) for k, v in filters.items()},
                   spec.get("evaluator"), int(spec.get("min_requests", 1)), channels, source)
        if source == "config":
            rule.id = f"cfg:{name}"
        return rule

    def spec(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "window_s": self.window_s, "for_s": self.for_s, "filters": self.filters,
                "evaluator": self.evaluator, "min_requests": self.min_requests,
                "channels": [{"url": c.url, "format": c.format, "routing_key": c.routing_key} for c in self.channels]}

    def to_json(self) -> dict[str, Any]:
        spec = self.spec()
        spec["channels"] = [{**c, "routing_key": "***" if c["routing_key"] else None} for c in spec["channels"]]
        return {"id": self.id, "name": self.name, "type": self.kind, "source": self.source, "state": self.state,
                "state_since": self.state_since, "pending_since": self.pending_since, "last_value": self.last_value,
                "created_at": self.created_at, **spec}


def _rule(row: dict[str, Any]) -> AlertRule:
    spec = from_json(row["spec"])
    channels = [Channel(**c) for c in spec.pop("channels")]
    return AlertRule(row["name"], row["kind"], channels=channels, source=row["source"], id=row["id"],
                     state=row["state"], state_since=row["state_since"], pending_since=row["pending_since"],
                     last_value=row["last_value"], created_at=row["created_at"], **spec)


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, rule: AlertRule) -> AlertRule:
        """Insert a rule; a config rule already stored keeps its state but takes the new spec."""
        self.db.execute(
            f"INSERT INTO alert_rules ({_RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, spec = excluded.spec",
            (rule.id, rule.name, rule.kind, to_json(rule.spec()), rule.source, rule.state, rule.state_since,
             rule.pending_since, rule.last_value, rule.created_at))
        return rule

    def list(self) -> list[AlertRule]:
        return [_rule(r) for r in self.db.fetchall(f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY created_at, id")]

    def get(self, id: str) -> AlertRule | None:
        row = self.db.fetchone(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE id = ?", (id,))
        return None if row is None else _rule(row)

    def delete(self, id: str) -> bool:
        with self.db.transaction():
            self.db.execute("DELETE FROM alert_deliveries WHERE rule_id = ?", (id,))
            return self.db.execute("DELETE FROM alert_rules WHERE id = ?", (id,)) > 0

    def save_state(self, rule: AlertRule, deliveries: list[dict[str, Any]]) -> None:
        """The rule's new state and the deliveries it causes, together or not at all."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE alert_rules SET state = ?, state_since = ?, pending_since = ?, last_value = ? WHERE id = ?",
                (rule.state, rule.state_since, rule.pending_since, rule.last_value, rule.id))
            if deliveries:
                self.db.executemany(
                    f"INSERT INTO alert_deliveries ({_DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(d["id"], d["rule_id"], d["event"], d["url"], d["format"], to_json(d["payload"]), d["status"],
                      d["attempts"], to_json(d["attempt_log"]), d["created_at"], d["updated_at"]) for d in deliveries])

    def deliveries(self, rule_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("rule_id", rule_id), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM alert_deliveries" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self.db.fetchall(sql + " ORDER BY created_at, id", params)
        return [{**r, "payload": from_json(r["payload"]), "attempt_log": from_json(r["attempt_log"])} for r in rows]

    def update_delivery(self, d: dict[str, Any]) -> None:
        self.db.execute("UPDATE alert_deliveries SET status = ?, attempts = ?, attempt_log = ?, updated_at = ? "
                        "WHERE id = ?", (d["status"], d["attempts"], to_json(d["attempt_log"]), now_ms(), d["id"]))
