"""Configuration: LiteLLM configs as-is, environment discovery, vendors as data, secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aistrata.core import GatewayError
from aistrata.gateway.config import ConfigError, load_settings
from aistrata.gateway.router import Router
from aistrata.providers.registry import load_registry

LITELLM_CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      rpm: 600
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt4o-eu
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      api_version: "2024-10-21"
      weight: 3
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
    model_info: {max_input_tokens: 200000}
  - model_name: llama
    litellm_params: {model: together_ai/meta-llama/Llama-3-70b, api_key: "tg-plain-secret"}
  - model_name: local-vllm
    litellm_params: {model: hosted_vllm/qwen, api_base: "http://gpu:8000/v1"}
router_settings:
  routing_strategy: simple-shuffle
  model_group_alias: {gpt4: gpt-4o}
litellm_settings:
  drop_params: true
  success_callback: ["langfuse"]
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
environment_variables:
  AZURE_API_BASE: "https://eu.openai.azure.com"
"""

ENV = {"OPENAI_API_KEY": "sk-openai-secret", "AZURE_API_KEY": "az-secret", "ANTHROPIC_API_KEY": "sk-ant-secret",
       "LITELLM_MASTER_KEY": "sk-master-secret"}


def load(tmp_path: Path, text: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    registry = load_registry()
    return load_settings(registry, path, tmp_path, env=env), registry


def test_litellm_config_is_accepted_as_is(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings, registry = load(tmp_path, LITELLM_CONFIG, ENV)
    gpt = settings.groups["gpt-4o"]
    assert [(d.provider, d.model, d.weight) for d in gpt] == [("openai", "gpt-4o", 1.0), ("azure", "gpt4o-eu", 3.0)]
    assert gpt[0].api_base == "https://api.openai.com/v1" and gpt[0].key == "sk-openai-secret"
    assert gpt[1].api_base == "https://eu.openai.azure.com" and gpt[1].api_version == "2024-10-21"
    assert settings.groups["claude"][0].info["max_input_tokens"] == 200000
    llama = settings.groups["llama"][0]
    assert (llama.provider, llama.model, llama.api_base) == ("together", "meta-llama/Llama-3-70b", "https://api.together.xyz/v1")
    assert settings.groups["local-vllm"][0].provider == "vllm"
    assert settings.master_key is not None and settings.master_key.reveal() == "sk-master-secret"
    assert settings.aliases == {"gpt4": "gpt-4o"}
    assert Router(settings, registry).resolve("gpt4") is gpt
    # secrets never show in reprs or logs
    text = repr(settings) + caplog.text
    for secret in (*ENV.values(), "tg-plain-secret"):
        assert secret not in text


def test_weighted_round_robin_spreads_by_weight(tmp_path: Path) -> None:
    settings, registry = load(tmp_path, LITELLM_CONFIG, ENV)
    router = Router(settings, registry)
    picks = [router.pick("gpt-4o").provider for _ in range(40)]
    assert picks.count("azure") == 30 and picks.count("openai") == 10


def test_zero_config_discovery_from_environment(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": "k", "OLLAMA_HOST": "10.0.0.5:11434", "GEMINI_API_KEY": "g",
           "GEMINI_BASE_URL": "http://127.0.0.1:1"}
    settings = load_settings(load_registry(), None, tmp_path, env=env)
    router = Router(settings, load_registry())
    assert router.resolve("openai/gpt-4o-mini")[0].api_base == "https://api.openai.com/v1"
    assert router.resolve("ollama/llama3")[0].api_base == "http://10.0.0.5:11434"
    assert router.resolve("gemini/gemini-2.5-pro")[0].api_base == "http://127.0.0.1:1"
    with pytest.raises(GatewayError) as info:
        router.resolve("anthropic/claude-x")
    assert "ANTHROPIC_API_KEY" in info.value.message
    with pytest.raises(GatewayError) as info:
        router.resolve("mystery-model")
    assert info.value.status == 404
    assert set(router.discoverable_vendors()) >= {"openai", "ollama", "gemini"}


def test_vendor_rows_in_config(tmp_path: Path) -> None:
    text = """
vendors:
  - {name: acme, dialect: openai_chat, api_base: "https://llm.acme.test/v1", key_env: ACME_KEY}
model_list:
  - model_name: acme-large
    litellm_params: {model: acme/large-2}
"""
    settings, registry = load(tmp_path, text, {"ACME_KEY": "acme-secret"})
    dep = settings.groups["acme-large"][0]
    assert (dep.provider, dep.dialect, dep.model, dep.key) == ("acme", "openai_chat", "large-2", "acme-secret")
    assert Router(settings, registry).resolve("acme/other")[0].model == "other"


def test_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model is required"):
        load(tmp_path, "model_list: [{model_name: x, litellm_params: {}}]", {})
    with pytest.raises(ConfigError, match="unknown provider"):
        load(tmp_path, "model_list: [{model_name: x, litellm_params: {model: x, custom_llm_provider: nope}}]", {})
    with pytest.raises(ConfigError, match="needs api_base"):
        load(tmp_path, "model_list: [{model_name: x, litellm_params: {model: vllm/qwen}}]", {})
