"""Cost in USD of one model call, from `genai-prices` (the maintained price table).

Usage semantics line up: genai-prices' `input_tokens` is the *total* input, cache reads and
cache writes included (its unit tree prices `cache_read_tokens` and `cache_write_tokens` as
children of `input_tokens` and bills `input - cache_read - cache_write` at the plain input
rate; its Anthropic extractor sums the three Anthropic fields into `input_tokens`). That is
our `core.Usage` rule too, so the counts pass through unchanged. Reasoning tokens are billed
as output and are already inside our `output_tokens`, so they are not passed separately.

A model the table does not know costs None, never a guess. Local runtimes cost 0.
Configuration can override a deployment's prices with LiteLLM's `model_info` names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import genai_prices
from genai_prices import Usage as PricesUsage
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, Provider, TieredPrices

from ..core import Usage
from .base import Deployment

# Our provider ids that genai-prices spells differently; the rest are the same word.
PROVIDER_ALIASES = {"gemini": "google", "xai": "x-ai"}
FREE_PROVIDERS = frozenset({"ollama", "local"})
OVERRIDE_VERSION = "override"


class Price(NamedTuple):  # a tuple: built for every priced request, several times
    cost_usd: float
    version: str


# LiteLLM's names for prices set on a deployment (`model_info`), which override the table.
PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
              "cache_creation_input_token_cost")


def price_override(dep: Deployment) -> Mapping[str, float] | None:
    # Read on every priced request: kept per deployment, for as long as its `info` is the same dict.
    found = _overrides.get(dep.id)
    if found is None or found[0] is not dep.info:
        found = _overrides[dep.id] = (dep.info, {k: float(dep.info[k]) for k in PRICE_KEYS if k in dep.info} or None)
    return found[1]


_overrides: dict[str, tuple[dict, Mapping[str, float] | None]] = {}


class Rates(NamedTuple):
    """USD per token of a deployment whose price is linear: its configured prices, a free local
    runtime, or a table entry without tiers or conditions."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    version: str


def deployment_rates(dep: Deployment) -> Rates | None:
    """This deployment's `Rates`; None when its price is tiered or unknown. Worked out once per
    deployment (and price data): stages price each request two or three times."""
    snapshot = get_snapshot()
    found = _rates.get(dep.id)
    if found is None or found[0] is not dep or found[1] is not dep.info or found[2] is not snapshot:
        found = _rates[dep.id] = (dep, dep.info, snapshot, _rates_of(dep))
    return found[3]


def _rates_of(dep: Deployment) -> Rates | None:
    override = price_override(dep)
    if override:
        return _override_rates(override)
    if dep.provider in FREE_PROVIDERS:
        return Rates(0.0, 0.0, 0.0, 0.0, prices_version())
    found = _models.rates(dep.provider, dep.model)
    return None if found is None else Rates(*found, prices_version())


# deployment id -> (the deployment, its info, the price data, its rates): a new deployment
# object, new prices in its config or new price data are worked out anew.
_rates: dict[str, tuple[Deployment, dict, DataSnapshot, Rates | None]] = {}


def deployment_price(dep: Deployment, usage: Usage) -> Price | None:
    """The cost of `usage` on this deployment: its configured prices, else the table's."""
    rates = deployment_rates(dep)
    if rates is None or usage.cache_read_tokens + usage.cache_write_tokens > usage.input_tokens:
        return price(dep.provider, dep.model, usage, price_override(dep))  # the table's walk, or odd counts
    return Price(_linear_cost(usage, rates), rates.version)


def price(
    provider: str,
    model: str,
    usage: Usage,
    override: Mapping[str, float] | None = None,
) -> Price | None:
    """The cost of `usage` on `provider`'s `model`, or None when no price is known."""
    if override:
        return _override_price(usage, override)
    if provider in FREE_PROVIDERS:
        return Price(0.0, prices_version())
    found = _models.lookup(provider, model)
    if found is None:
        return None
    if usage.cache_read_tokens + usage.cache_write_tokens > usage.input_tokens:
        return None  # inconsistent counts: no honest price
    rates = _models.rates(provider, model)
    if rates is not None:
        return Price(_linear_cost(usage, rates), prices_version())
    cost = _exact_cost(found, usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)
    return None if cost is None else Price(cost, prices_version())


def _exact_cost(found: tuple[Provider, ModelInfo], input_tokens: int, output_tokens: int, cache_read: int,
                cache_write: int) -> float | None:
    prov, info = found
    usage = PricesUsage(input_tokens=input_tokens, cache_read_tokens=cache_read, cache_write_tokens=cache_write,
                        output_tokens=output_tokens)
    try:
        return float(info.calc_price(usage, prov).total_price)
    except ValueError:
        return None


def _linear_cost(usage: Usage, rates: Rates | tuple[float, float, float, float]) -> float:
    """`rates`: (input, output, cache read, cache write) per token, as `Rates` begins. Counts
    with more cached than input tokens bill none as plain input."""
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    return ((uncached if uncached > 0 else 0) * rates[0] + usage.output_tokens * rates[1]
            + usage.cache_read_tokens * rates[2] + usage.cache_write_tokens * rates[3])


def prices_version() -> str:
    """`genai-prices <package version>`, plus `@<timestamp>` when the data was auto-updated."""
    version = f"genai-prices {genai_prices.__version__}"
    snapshot = get_snapshot()
    if snapshot.from_auto_update:
        version += f"@{snapshot.timestamp.isoformat(timespec='seconds')}"
    return version


class _ModelIndex:
    """(provider, model) -> genai-prices entry, misses included: an unknown model would
    otherwise scan the whole table on every call. Rebuilt when genai-prices swaps in
    updated price data."""

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._snapshot: DataSnapshot | None = None
        self._entries: dict[tuple[str, str], tuple[Provider, ModelInfo] | None] = {}
        self._rates: dict[tuple[str, str], tuple[float, float, float, float] | None] = {}

    def lookup(self, provider: str, model: str) -> tuple[Provider, ModelInfo] | None:
        snapshot = get_snapshot()
        if snapshot is not self._snapshot or len(self._entries) > self.MAX_ENTRIES:
            self._snapshot, self._entries, self._rates = snapshot, {}, {}
        key = (provider, model)
        if key not in self._entries:
            try:
                found = snapshot.find_provider_model(
                    model, None, PROVIDER_ALIASES.get(provider, provider), None
                )
            except LookupError:
                found = None
            self._entries[key] = found
        return self._entries[key]

    def rates(self, provider: str, model: str) -> tuple[float, float, float, float] | None:
        """Per-token (input, output, cache read, cache write) rates when the model's price is
        linear (no tiers, no conditions): then a cost is four multiplications instead of
        genai-prices' Decimal walk (~60 µs). Derived from genai-prices itself, at unit usages."""
        key = (provider, model)
        if key not in self._rates:
            found = self.lookup(provider, model)
            self._rates[key] = _unit_rates(found) if found is not None and _is_linear(found[1]) else None
        return self._rates[key]


_UNIT = 1_000_000


def _is_linear(info: ModelInfo) -> bool:
    prices = info.prices
    return isinstance(prices, ModelPrice) and not any(isinstance(v, TieredPrices) for v in vars(prices).values())


def _unit_rates(found: tuple[Provider, ModelInfo]) -> tuple[float, float, float, float] | None:
    costs = (_exact_cost(found, _UNIT, 0, 0, 0), _exact_cost(found, 0, _UNIT, 0, 0),
             _exact_cost(found, _UNIT, 0, _UNIT, 0), _exact_cost(found, _UNIT, 0, 0, _UNIT))
    if any(c is None for c in costs):
        return None
    return tuple(c / _UNIT for c in costs)  # type: ignore[return-value,operator]


_models = _ModelIndex()


def _override_price(usage: Usage, override: Mapping[str, float]) -> Price:
    """LiteLLM-style per-token prices; cached tokens fall back to the input price."""
    return Price(_linear_cost(usage, _override_rates(override)), OVERRIDE_VERSION)


def _override_rates(override: Mapping[str, float]) -> Rates:
    rate = override.get("input_cost_per_token", 0.0)
    return Rates(rate, override.get("output_cost_per_token", 0.0), override.get("cache_read_input_token_cost", rate),
                 override.get("cache_creation_input_token_cost", rate), OVERRIDE_VERSION)
