"""What makes two chat requests "the same": cache keys and per-request cache controls.

A key is the SHA-256 of three things, so that no two of them can be confused:

- the caller's tenant (by default the virtual key's team, else the key itself), so that
  tenants never see each other's answers;
- the per-request `namespace` (LiteLLM's `cache.namespace`), chosen by the caller;
- the neutral request as sorted-keys JSON: every field that can change the answer (model as
  requested, messages, tools, tool choice, response format, sampling parameters, `n`, stop,
  seed, pass-through parameters) and none that cannot (`user`, `metadata`, `stream`,
  `include_usage`, gateway options).

Because the key is computed from the neutral request, the same question asked through the
OpenAI and the Anthropic ingress shares one entry; each is rendered in its own dialect.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote

import orjson

from ...core import ChatRequest, bad_request
from ..auth import Principal

NamespaceBy = Literal["key", "team", "none"]
MAX_NAMESPACE = 200


def fingerprint(req: ChatRequest) -> bytes:
    """The answer-shaping part of a request as canonical JSON."""
    neutral = {
        "model": req.model,
        "messages": req.messages,
        "tools": req.tools,
        "tool_choice": req.tool_choice,
        "parallel_tool_calls": req.parallel_tool_calls,
        "response_format": req.response_format,
        # `1` and `1.0` arrive as int and float from JSON; they ask for the same thing.
        "temperature": None if req.temperature is None else float(req.temperature),
        "top_p": None if req.top_p is None else float(req.top_p),
        "max_tokens": req.max_tokens,
        "stop": req.stop,
        "seed": req.seed,
        "n": req.n,
        "extra": req.extra,
    }
    return orjson.dumps(neutral, option=orjson.OPT_SORT_KEYS)


def tenant(principal: Principal, namespace_by: NamespaceBy) -> str:
    """Who may share answers with whom. The master key and anonymous local callers are
    tenants of their own, so a virtual key never reads an answer an admin stored."""
    if namespace_by == "none":
        return ""
    if principal.key is None:
        return principal.kind
    if namespace_by == "team" and principal.team_id:
        return f"team:{principal.team_id}"
    return f"key:{principal.key_id}"


def cache_key(req: ChatRequest, tenant_id: str, namespace: str) -> str:
    """`<namespace, URL-quoted>:<sha256 hex>`. The namespace stays readable in the key so a
    flush can target it; quoting keeps glob characters out of Redis `SCAN MATCH` patterns."""
    digest = hashlib.sha256(_partition(tenant_id, namespace))
    digest.update(fingerprint(req))
    return f"{namespace_prefix(namespace)}{digest.hexdigest()}"


@lru_cache(maxsize=4096)
def _partition(tenant_id: str, namespace: str) -> bytes:
    """What a key's hash starts with: who asked, in which namespace, then a newline."""
    return orjson.dumps([tenant_id, namespace]) + b"\n"


@lru_cache(maxsize=4096)
def namespace_prefix(namespace: str) -> str:
    return quote(namespace, safe="") + ":"


@dataclass(frozen=True, slots=True)
class CacheControls:
    """Per-request controls, LiteLLM's names: `no-cache` skips the lookup (the answer is still
    stored), `no-store` keeps the answer out of the cache, `ttl` is this entry's lifetime in
    seconds, `s-maxage` the oldest stored answer this request accepts, `namespace` a
    caller-chosen partition."""

    no_cache: bool = False
    no_store: bool = False
    ttl: float | None = None
    s_maxage: float | None = None
    namespace: str = ""

    @classmethod
    def parse(cls, raw: Any) -> CacheControls:
        if raw is None:
            return NO_CONTROLS
        if not isinstance(raw, dict):
            raise bad_request("'cache' must be an object", "cache")
        namespace = raw.get("namespace") or ""
        if not isinstance(namespace, str) or len(namespace) > MAX_NAMESPACE:
            raise bad_request(f"cache namespace must be a string of at most {MAX_NAMESPACE} characters", "cache")
        return cls(
            no_cache=_flag(raw, "no-cache"),
            no_store=_flag(raw, "no-store"),
            ttl=_seconds(raw, "ttl"),
            s_maxage=_seconds(raw, "s-maxage"),
            namespace=namespace,
        )


NO_CONTROLS = CacheControls()


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name, raw.get(name.replace("-", "_"), False))
    # Headers arrive as True; bodies may say "true".
    return value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true", "yes"))


def _seconds(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name, raw.get(name.replace("-", "_")))
    if value is None:
        return None
    try:
        seconds = float(value)  # headers carry strings
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise bad_request(f"cache {name} must be a positive number of seconds", "cache")
    return seconds
