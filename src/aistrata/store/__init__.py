"""Persistence: one `Database` over SQLite or PostgreSQL, its migrations, the request log
and the virtual-key store."""

from .db import Database, from_json, to_json
from .keys import KeyRecord, KeyStore, generate_key, hash_key
from .migrations import MIGRATIONS, Migration, SchemaOutOfDate, ensure_schema, migrate, pending
from .request_log import RequestFilters, RequestLog

__all__ = [
    "MIGRATIONS", "Database", "KeyRecord", "KeyStore", "Migration", "RequestFilters",
    "RequestLog", "SchemaOutOfDate", "ensure_schema", "from_json", "generate_key", "hash_key",
    "migrate", "pending", "to_json",
]
