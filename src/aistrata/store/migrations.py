"""Named, ordered, idempotent schema migrations, recorded in `schema_migrations`.

Each migration is SQL written once, with type words both engines spell differently left as
`{json}`, `{bool}`, `{float}` placeholders, plus optional statements for one engine only
(a GIN index in PostgreSQL, say). `migrate` applies what is pending, each migration in its
own transaction that re-checks the record under a lock, so two replicas running it at once
apply every migration exactly once.

`ensure_schema` is what a server calls at start: it migrates a database nobody has migrated
yet (first start) and otherwise refuses to start on pending migrations. Changing a schema
users already have is an explicit act: `aistrata migrate`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from aistrata.core import now_ms

from .db import Database

TYPES = {
    "sqlite": {"json": "TEXT", "bool": "INTEGER", "float": "REAL"},
    "postgres": {"json": "JSONB", "bool": "BOOLEAN", "float": "DOUBLE PRECISION"},
}

# Any fixed number: serialises concurrent `migrate` runs on one PostgreSQL database.
PG_MIGRATION_LOCK = 0x61697374


class SchemaOutOfDate(RuntimeError):
    """The database exists but lacks migrations this version of AI Strata needs."""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: tuple[str, ...]
    sqlite_only: tuple[str, ...] = ()
    postgres_only: tuple[str, ...] = ()

    def statements(self, engine: str) -> list[str]:
        extra = self.sqlite_only if engine == "sqlite" else self.postgres_only
        return [s.format(**TYPES[engine]) for s in self.sql] + list(extra)


_REQUEST_INDEXES = tuple(
    f"CREATE INDEX IF NOT EXISTS requests_{name}_idx ON requests ({cols})"
    for name, cols in [
        ("ts", "ts, id"), ("key", "key_id, ts"), ("user", "user_id, ts"), ("team", "team_id, ts"),
        ("model", "requested_model, ts"), ("status", "status, ts"),
    ]
)

_PARTIAL_INDEXES = (
    ("requests", "key", "key_id", "ts"), ("requests", "user", "user_id", "ts"), ("requests", "team", "team_id", "ts"),
    ("spans", "session", "session_id", "start_us"), ("spans", "user", "user_id", "start_us"),
    ("spans", "key", "key_id", "start_us"), ("spans", "team", "team_id", "start_us"),
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_requests",
        (
            """CREATE TABLE IF NOT EXISTS requests (
                id TEXT PRIMARY KEY,
                ts BIGINT NOT NULL,
                endpoint TEXT NOT NULL,
                ingress TEXT NOT NULL,
                key_id TEXT,
                key_alias TEXT,
                user_id TEXT,
                team_id TEXT,
                requested_model TEXT,
                deployment_id TEXT,
                provider TEXT,
                upstream_model TEXT,
                stream {bool} NOT NULL,
                status INTEGER NOT NULL,
                error_kind TEXT,
                error_message TEXT,
                latency_ms {float},
                ttft_ms {float},
                overhead_ms {float},
                input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL,
                cache_read_tokens INTEGER NOT NULL,
                cache_write_tokens INTEGER NOT NULL,
                reasoning_tokens INTEGER NOT NULL,
                cost_usd {float},
                price_version TEXT,
                tags {json} NOT NULL,
                metadata {json} NOT NULL
            )""",
            *_REQUEST_INDEXES,
        ),
        # Tag filters are containment tests; GIN makes them indexable in PostgreSQL.
        postgres_only=("CREATE INDEX IF NOT EXISTS requests_tags_idx ON requests USING GIN (tags)",),
    ),
    Migration(
        "0002_api_keys",
        (
            """CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY,
                key_hash TEXT NOT NULL UNIQUE,
                key_prefix TEXT NOT NULL,
                alias TEXT,
                user_id TEXT,
                team_id TEXT,
                models {json} NOT NULL,
                metadata {json} NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT,
                last_used_at BIGINT
            )""",
            "CREATE INDEX IF NOT EXISTS api_keys_user_idx ON api_keys (user_id)",
            "CREATE INDEX IF NOT EXISTS api_keys_team_idx ON api_keys (team_id)",
        ),
    ),
    Migration(
        "0003_request_routing",
        (
            "ALTER TABLE requests ADD COLUMN cache_hit {bool} NOT NULL DEFAULT FALSE",
            "ALTER TABLE requests ADD COLUMN saved_usd {float}",
            "ALTER TABLE requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE requests ADD COLUMN route {json}",
        ),
    ),
    Migration(
        "0004_budgets",
        (
            """CREATE TABLE IF NOT EXISTS budgets (
                id TEXT PRIMARY KEY,
                scope TEXT NOT NULL,
                subject TEXT,
                max_usd {float} NOT NULL,
                soft_usd {float},
                period TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS budgets_subject_idx ON budgets (scope, subject)",
        ),
    ),
    Migration(
        "0005_spans",
        (
            """CREATE TABLE IF NOT EXISTS spans (
                trace_id TEXT NOT NULL,
                span_id TEXT NOT NULL,
                name TEXT NOT NULL,
                start_us BIGINT NOT NULL,
                end_us BIGINT NOT NULL,
                parent_span_id TEXT,
                kind TEXT NOT NULL,
                type TEXT NOT NULL,
                status TEXT NOT NULL,
                status_message TEXT,
                error_type TEXT,
                source TEXT NOT NULL,
                service_name TEXT,
                session_id TEXT,
                user_id TEXT,
                key_id TEXT,
                team_id TEXT,
                tags {json} NOT NULL,
                metadata {json} NOT NULL,
                provider_name TEXT,
                operation_name TEXT,
                request_model TEXT,
                response_model TEXT,
                input_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                cache_read_tokens BIGINT NOT NULL,
                cache_creation_tokens BIGINT NOT NULL,
                reasoning_tokens BIGINT NOT NULL,
                cost_usd {float},
                input TEXT,
                output TEXT,
                input_bytes BIGINT NOT NULL,
                output_bytes BIGINT NOT NULL,
                request_id TEXT,
                deployment_id TEXT,
                cache_hit {bool},
                attempts INTEGER,
                overhead_ms {float},
                is_root {bool} NOT NULL,
                duration_ms {float} NOT NULL,
                PRIMARY KEY (trace_id, span_id)
            )""",
            *(
                f"CREATE INDEX IF NOT EXISTS spans_{name}_idx ON spans ({cols})"
                for name, cols in [
                    ("start", "start_us, span_id"), ("session", "session_id, start_us"),
                    ("user", "user_id, start_us"), ("key", "key_id, start_us"), ("team", "team_id, start_us"),
                    ("model", "request_model, start_us"), ("provider", "provider_name, start_us"),
                    ("status", "status, start_us"),
                ]
            ),
        ),
        postgres_only=("CREATE INDEX IF NOT EXISTS spans_tags_idx ON spans USING GIN (tags)",),
    ),
    Migration(
        "0006_evaluation",
        (
            """CREATE TABLE IF NOT EXISTS scores (
                id TEXT PRIMARY KEY,
                target_type TEXT NOT NULL,
                target_id TEXT NOT NULL,
                name TEXT NOT NULL,
                data_type TEXT NOT NULL,
                value {float},
                label TEXT,
                comment TEXT,
                source TEXT NOT NULL,
                evaluator TEXT,
                judge_request_id TEXT,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS scores_target_idx ON scores (target_id, created_at)",
            "CREATE INDEX IF NOT EXISTS scores_name_idx ON scores (name, created_at)",
            """CREATE TABLE IF NOT EXISTS datasets (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                description TEXT,
                metadata {json} NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS dataset_items (
                id TEXT PRIMARY KEY,
                dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
                input {json} NOT NULL,
                expected_output TEXT,
                metadata {json} NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS dataset_items_dataset_idx ON dataset_items (dataset_id, created_at)",
            """CREATE TABLE IF NOT EXISTS eval_runs (
                id TEXT PRIMARY KEY,
                dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
                models {json} NOT NULL,
                evaluators {json} NOT NULL,
                status TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                finished_at BIGINT
            )""",
            """CREATE TABLE IF NOT EXISTS eval_run_items (
                id TEXT PRIMARY KEY,
                run_id TEXT NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
                item_id TEXT NOT NULL,
                model TEXT NOT NULL,
                request_id TEXT NOT NULL,
                output TEXT,
                error TEXT,
                latency_ms {float},
                cost_usd {float},
                scores {json} NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS eval_run_items_run_idx ON eval_run_items (run_id, created_at)",
        ),
    ),
    Migration(
        "0007_alerts",
        (
            """CREATE TABLE IF NOT EXISTS alert_rules (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                spec {json} NOT NULL,
                source TEXT NOT NULL,
                state TEXT NOT NULL,
                state_since BIGINT NOT NULL,
                pending_since BIGINT,
                last_value {float},
                created_at BIGINT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS alert_deliveries (
                id TEXT PRIMARY KEY,
                rule_id TEXT NOT NULL,
                event TEXT NOT NULL,
                url TEXT NOT NULL,
                format TEXT NOT NULL,
                payload {json} NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                attempt_log {json} NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS alert_deliveries_rule_idx ON alert_deliveries (rule_id, created_at)",
            "CREATE INDEX IF NOT EXISTS alert_deliveries_status_idx ON alert_deliveries (status)",
        ),
    ),
    Migration("0008_key_roles", ("ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'member'",)),
    Migration(
        "0009_audit_log",
        (
            # Append-only and hash-chained (see aistrata.security.audit); `details` is the
            # canonical JSON text that was hashed, kept as TEXT so no engine re-encodes it.
            """CREATE TABLE IF NOT EXISTS audit_log (
                seq BIGINT PRIMARY KEY,
                ts BIGINT NOT NULL,
                actor TEXT NOT NULL,
                role TEXT,
                action TEXT NOT NULL,
                target TEXT,
                from_ip TEXT,
                result TEXT NOT NULL,
                details TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS audit_log_ts_idx ON audit_log (ts)",
            "CREATE INDEX IF NOT EXISTS audit_log_action_idx ON audit_log (action, ts)",
        ),
    ),
    Migration(
        "0010_partial_indexes",
        # These columns are NULL on many rows (no session, user or team; no key for the master
        # key), and each NULL was an index entry written per request that no query reads: the
        # filters are `col = ?`, which both engines answer from a partial index.
        tuple(
            stmt
            for table, name, col, ts in _PARTIAL_INDEXES
            for stmt in (
                f"DROP INDEX IF EXISTS {table}_{name}_idx",
                f"CREATE INDEX {table}_{name}_idx ON {table} ({col}, {ts}) WHERE {col} IS NOT NULL",
            )
        ),
    ),
    Migration(
        "0011_gateway_spans_in_requests",
        # A gateway request is written once: its row in `requests` is also its span (read back
        # as one by the span queries), instead of a second, wider row in `spans` with nine
        # more index entries. Spans the gateway already wrote move onto their request rows.
        (
            *(f"ALTER TABLE requests ADD COLUMN {column}" for column in (
                "trace_id TEXT", "span_id TEXT", "parent_span_id TEXT", "session_id TEXT", "end_user_id TEXT",
                "response_model TEXT", "input TEXT", "output TEXT", "input_bytes BIGINT NOT NULL DEFAULT 0",
                "output_bytes BIGINT NOT NULL DEFAULT 0",
            )),
            "UPDATE requests SET trace_id = s.trace_id, span_id = s.span_id, parent_span_id = s.parent_span_id, "
            "session_id = s.session_id, end_user_id = s.user_id, response_model = s.response_model, "
            "input = s.input, output = s.output, input_bytes = s.input_bytes, output_bytes = s.output_bytes "
            "FROM spans s WHERE s.source = 'gateway' AND s.request_id = requests.id",
            "DELETE FROM spans WHERE source = 'gateway' AND EXISTS (SELECT 1 FROM requests r "
            "WHERE r.id = spans.request_id AND r.trace_id = spans.trace_id)",
            "CREATE INDEX requests_trace_idx ON requests (trace_id, span_id) WHERE trace_id IS NOT NULL",
            # Status filters look for errors; the successes' entries, nearly every row's, went unread.
            "DROP INDEX IF EXISTS requests_status_idx",
            "CREATE INDEX requests_status_idx ON requests (status, ts) WHERE status >= 400",
            "CREATE INDEX requests_session_idx ON requests (session_id, ts) WHERE session_id IS NOT NULL",
            "CREATE INDEX requests_end_user_idx ON requests (end_user_id, ts) WHERE end_user_id IS NOT NULL",
        ),
    ),
)

_CREATE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)"
)


@contextmanager
def _locked(db: Database) -> Iterator[None]:
    """A transaction that holds the migration lock (SQLite's write lock already is one)."""
    with db.transaction():
        if db.engine == "postgres":
            db.execute("SELECT pg_advisory_xact_lock(?)", (PG_MIGRATION_LOCK,))
        yield


def applied(db: Database) -> list[str]:
    """Names of the migrations recorded in this database, oldest first."""
    with _locked(db):  # concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL
        db.execute(_CREATE_LEDGER)
    rows = db.fetchall("SELECT name FROM schema_migrations ORDER BY applied_at, name")
    return [r["name"] for r in rows]


def pending(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    done = set(applied(db))
    return [m.name for m in migrations if m.name not in done]


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the pending migrations in order; returns the names applied by this call."""
    todo = set(pending(db, migrations))
    ran: list[str] = []
    for m in migrations:
        if m.name not in todo:
            continue
        with _locked(db):
            # Another process may have applied it while we waited for the lock.
            if db.fetchone("SELECT 1 AS done FROM schema_migrations WHERE name = ?", (m.name,)):
                continue
            for stmt in m.statements(db.engine):
                db.execute(stmt)
            db.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (m.name, now_ms())
            )
        ran.append(m.name)
    return ran


def ensure_schema(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Migrate a never-migrated database; refuse a migrated one that is behind."""
    if not applied(db):
        return migrate(db, migrations)
    missing = pending(db, migrations)
    if missing:
        raise SchemaOutOfDate(
            f"the database is missing {len(missing)} migration(s) ({', '.join(missing)}); "
            "back it up, then run `aistrata migrate` to apply them"
        )
    return []
