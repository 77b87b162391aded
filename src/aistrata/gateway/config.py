"""Configuration: the YAML file (a LiteLLM `config.yaml` is accepted as-is) plus the standard
environment variables, turned into typed settings and model groups.

    model_list:                       # model groups; several entries may share a model_name
      - model_name: smart
        litellm_params:               # or `params:`
          model: anthropic/claude-sonnet-4-5
          api_key: os.environ/ANTHROPIC_API_KEY    # never a plain secret in logs
          api_base: ...; api_version: ...; timeout: 30; weight: 2
        model_info: {max_input_tokens: 200000, region: eu}
    aliases: {fast: smart}            # also router_settings.model_group_alias
    vendors:                          # OpenAI-compatible vendors as data
      - {name: myvllm, dialect: openai_chat, api_base: "http://gpu:8000/v1", key_env: MYVLLM_KEY}
    general_settings: {master_key: os.environ/AISTRATA_MASTER_KEY, database_url: ...}

Secrets are wrapped in `Secret` the moment they are read.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..providers.base import Deployment, Secret
from ..providers.registry import Registry

log = logging.getLogger("aistrata.config")

ENV_PREFIX = "os.environ/"
# LiteLLM keys we read; the rest of a LiteLLM config is accepted and reported as ignored.
KNOWN_TOP_LEVEL = {"model_list", "aliases", "vendors", "general_settings", "router_settings",
                   "litellm_settings", "environment_variables", "groups", "routes", "limits", "budgets",
                   "budgets_settings", "cache", "observe", "evaluations", "alerts", "guards",
                   "auth", "security", "audit", "residency"}


class ConfigError(ValueError):
    pass


@dataclass(slots=True)
class Settings:
    data_dir: Path
    master_key: Secret | None = None
    database_url: str | None = None
    groups: dict[str, list[Deployment]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    routing_strategy: str = "simple-shuffle"
    redis_url: str | None = None
    # The whole config file: each stage reads its own section (limits, budgets, cache, ...).
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)  # holds secrets


def resolve_secret(value: Any, env: Mapping[str, str], where: str) -> Secret | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        if name not in env:
            log.warning("%s refers to environment variable %s, which is not set", where, name)
            return None
        return Secret(env[name])
    return Secret(value)


def resolve_value(value: Any, env: Mapping[str, str]) -> Any:
    """`os.environ/NAME` for non-secret fields too (api_base, api_version)."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return env.get(value[len(ENV_PREFIX):])
    return value


def split_model(name: str, registry: Registry) -> tuple[str, str] | None:
    """`openai/gpt-4o` -> ("openai", "gpt-4o") when the prefix names a known vendor."""
    prefix, sep, rest = name.partition("/")
    if sep and rest:
        vendor = registry.vendor(prefix)
        if vendor is not None:
            return vendor.name, rest
    return None


def normalise_base(url: str) -> str:
    # OLLAMA_HOST is often "host:port" without a scheme.
    return url if "://" in url else f"http://{url}"


def make_deployment(
    registry: Registry, group: str, index: int, params: Mapping[str, Any], info: Mapping[str, Any],
    env: Mapping[str, str],
) -> Deployment:
    where = f"model_list[{group}][{index}]"
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}.model is required (e.g. openai/gpt-4o-mini)")
    provider_name = params.get("custom_llm_provider")
    split = split_model(model, registry)
    if provider_name:
        upstream = split[1] if split and split[0] == provider_name else model
    elif split:
        provider_name, upstream = split
    else:
        provider_name, upstream = "openai", model  # LiteLLM's default for bare names
    vendor = registry.vendor(provider_name)
    if vendor is None:
        raise ConfigError(f"{where}: unknown provider {provider_name!r}")
    api_base = resolve_value(params.get("api_base") or params.get("base_url"), env)
    if not api_base:
        api_base = (vendor.base_env and env.get(vendor.base_env)) or vendor.api_base
    if not api_base:
        raise ConfigError(f"{where}: provider {vendor.name} needs api_base")
    key = params.get("api_key")
    api_key = resolve_secret(key, env, f"{where}.api_key") if key is not None else (
        Secret(env[vendor.key_env]) if vendor.key_env and env.get(vendor.key_env) else None
    )
    version = resolve_value(params.get("api_version"), env) or (vendor.version_env and env.get(vendor.version_env)) or None
    headers = dict(vendor.headers)
    headers.update({str(k): str(v) for k, v in (params.get("extra_headers") or params.get("headers") or {}).items()})
    return Deployment(
        id=str(info.get("id") or f"{group}#{index}"),
        group=group,
        provider=vendor.name,
        dialect=vendor.dialect,
        model=upstream,
        api_base=normalise_base(str(api_base)),
        api_key=api_key,
        api_version=version,
        headers=headers,
        timeout=float(params.get("timeout") or params.get("request_timeout") or 600),
        connect_timeout=float(params.get("connect_timeout") or 10),
        weight=float(params.get("weight") or 1),
        info=dict(info),
    )


def load_settings(
    registry: Registry, config_path: Path | None, data_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    env = dict(os.environ if env is None else env)
    raw: dict[str, Any] = {}
    if config_path is not None:
        try:
            raw = yaml.safe_load(config_path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {config_path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_path} must hold a mapping at the top level")
        ignored = sorted(set(raw) - KNOWN_TOP_LEVEL)
        if ignored:
            log.warning("config keys not used by AI Strata: %s", ", ".join(ignored))
    # LiteLLM sets these into the process environment; we read them as environment.
    env.update({str(k): str(v) for k, v in (raw.get("environment_variables") or {}).items()})
    for row in raw.get("vendors") or ():
        registry.add_vendor_row(row)

    general = raw.get("general_settings") or {}
    router_settings = raw.get("router_settings") or {}
    master = general.get("master_key")
    settings = Settings(
        data_dir=Path(data_dir or env.get("AISTRATA_DATA_DIR") or Path.home() / ".aistrata"),
        master_key=resolve_secret(master, env, "general_settings.master_key") if master
        else resolve_secret(env.get("AISTRATA_MASTER_KEY"), env, "AISTRATA_MASTER_KEY"),
        database_url=env.get("AISTRATA_DATABASE_URL") or resolve_value(general.get("database_url"), env),
        routing_strategy=str(router_settings.get("routing_strategy") or "simple-shuffle"),
        redis_url=env.get("AISTRATA_REDIS_URL") or resolve_value(general.get("redis_url"), env),
        raw=raw,
        env=env,
    )
    for i, entry in enumerate(raw.get("model_list") or ()):
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
            raise ConfigError(f"model_list[{i}] needs a model_name")
        group = entry["model_name"]
        params = entry.get("litellm_params") or entry.get("params") or {}
        deployments = settings.groups.setdefault(group, [])
        deployments.append(make_deployment(registry, group, len(deployments), params, entry.get("model_info") or {}, env))
    aliases = dict(router_settings.get("model_group_alias") or {})
    aliases.update(raw.get("aliases") or {})
    settings.aliases = {str(k): str(v) for k, v in aliases.items()}
    return settings
