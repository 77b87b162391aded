"""Pricing against hand-computed figures from the providers' published price sheets."""

from __future__ import annotations

import pytest

from aistrata.core import Usage
from aistrata.providers.pricing import price
from aistrata.providers.pricing import OVERRIDE_VERSION

M = 1_000_000


def test_gpt_4o_with_cached_input() -> None:
    # $2.50/M input, $1.25/M cached input, $10/M output. Our input includes the cached part.
    usage = Usage(input_tokens=100_000, output_tokens=20_000, cache_read_tokens=40_000, reasoning_tokens=0)
    expected = 60_000 * 2.50 / M + 40_000 * 1.25 / M + 20_000 * 10.0 / M
    p = price("openai", "gpt-4o", usage)
    assert p is not None
    assert p.cost_usd == pytest.approx(expected)  # 0.15 + 0.05 + 0.20 = 0.40
    assert p.version.startswith("genai-prices 0.2.3")


def test_claude_cache_read_and_write() -> None:
    # Claude Sonnet 4.5 (under 200k input): $3/M input, $0.30/M cache read, $3.75/M cache
    # write (5 minutes), $15/M output.
    usage = Usage(input_tokens=100_000, output_tokens=10_000, cache_read_tokens=40_000, cache_write_tokens=20_000)
    expected = 40_000 * 3.0 / M + 40_000 * 0.30 / M + 20_000 * 3.75 / M + 10_000 * 15.0 / M
    p = price("anthropic", "claude-sonnet-4-5", usage)
    assert p is not None and p.cost_usd == pytest.approx(expected)  # 0.357


def test_reasoning_tokens_are_billed_once_as_output() -> None:
    # o3-mini: $1.10/M input, $4.40/M output; the 300 reasoning tokens are inside the 500.
    p = price("openai", "o3-mini", Usage(input_tokens=1000, output_tokens=500, reasoning_tokens=300))
    assert p is not None and p.cost_usd == pytest.approx(1000 * 1.10 / M + 500 * 4.40 / M)


def test_provider_aliases() -> None:
    assert price("gemini", "gemini-2.5-flash", Usage(1000, 1000)) is not None
    assert price("xai", "grok-4", Usage(1000, 1000)) is not None


def test_unknown_is_none_and_local_is_free() -> None:
    assert price("openai", "no-such-model", Usage(10, 10)) is None
    assert price("no-such-provider", "gpt-4o", Usage(10, 10)) is None
    assert price("openai", "gpt-4o", Usage(input_tokens=10, cache_read_tokens=20)) is None  # inconsistent
    local = price("ollama", "llama3.2", Usage(10_000, 10_000))
    assert local is not None and local.cost_usd == 0.0


def test_override_uses_litellm_names() -> None:
    override = {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6, "cache_read_input_token_cost": 5e-7}
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=400, cache_write_tokens=100)
    # Cache writes have no override price here, so they cost the input price.
    expected = 500 * 2e-6 + 400 * 5e-7 + 100 * 2e-6 + 100 * 8e-6
    p = price("my-vllm", "anything", usage, override=override)
    assert p is not None and p.cost_usd == pytest.approx(expected)
    assert p.version == OVERRIDE_VERSION


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o-mini"), ("openai", "o3-mini"),
                                                 ("gemini", "gemini-2.5-flash"), ("anthropic", "claude-sonnet-4-5")])
def test_linear_fast_path_agrees_with_genai_prices(provider: str, model: str) -> None:
    """Linear prices are computed from cached per-token rates; they must equal genai-prices' own
    calculation (tiered models, like Claude Sonnet 4.5, take the exact path)."""
    import random

    from aistrata.providers import pricing

    rng = random.Random(7)
    found = pricing._models.lookup(provider, model)
    for _ in range(200):
        inp = rng.randint(0, 400_000)
        read = rng.randint(0, inp // 2)
        write = rng.randint(0, (inp - read) // 2)
        out = rng.randint(0, 8000)
        fast = price(provider, model, Usage(inp, out, read, write))
        exact = pricing._exact_cost(found, inp, out, read, write)
        assert fast is not None and exact is not None
        assert fast.cost_usd == pytest.approx(exact, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("provider", "model", "info"), [
    ("openai", "gpt-4o", {}),                                                     # the table, linear
    ("anthropic", "claude-sonnet-4-5", {}),                                       # the table, tiered
    ("ollama", "llama3.2", {}),                                                   # free
    ("my-vllm", "anything", {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6}),  # configured
    ("openai", "no-such-model", {}),                                              # unknown
])
def test_a_deployments_price_is_the_tables_or_its_own(provider: str, model: str, info: dict[str, float]) -> None:
    """`deployment_price` takes per-token rates worked out once per deployment; every usage,
    odd counts included, must cost what `price` says."""
    import random

    from aistrata.providers.base import Deployment
    from aistrata.providers.pricing import deployment_price, deployment_rates, price_override

    dep = Deployment("d1", "g", provider, "openai", model, "http://127.0.0.1:9", info=info)
    assert (deployment_rates(dep) is None) == (model in ("claude-sonnet-4-5", "no-such-model"))
    rng = random.Random(3)
    usages = [Usage(10, 5, 20, 0), Usage(0, 0)] + [
        Usage(inp, rng.randint(0, 5000), (read := rng.randint(0, inp // 2)), rng.randint(0, (inp - read) // 2))
        for inp in (rng.randint(0, 300_000) for _ in range(50))]
    for usage in usages:
        assert deployment_price(dep, usage) == price(provider, model, usage, price_override(dep))
    # A deployment whose configured prices change is priced anew.
    dep.info = {"input_cost_per_token": 1.0, "output_cost_per_token": 1.0}
    assert deployment_price(dep, Usage(2, 3)) == (5.0, OVERRIDE_VERSION)
