"""The provider registry: vendors (data rows) and dialects (code), filled through one small
plugin door — the `aistrata.providers` entry-point group. Each entry point is a callable
taking the registry; the built-ins register through the same door.
"""

from __future__ import annotations

from importlib import resources
from importlib.metadata import entry_points
from typing import Any, Callable

import yaml

from .base import Dialect, Vendor

ENTRY_POINT_GROUP = "aistrata.providers"


class Registry:
    def __init__(self) -> None:
        self.vendors: dict[str, Vendor] = {}
        self.dialects: dict[str, Callable[[], Dialect]] = {}
        self._aliases: dict[str, str] = {}
        self._dialect_instances: dict[str, Dialect] = {}

    def add_vendor(self, vendor: Vendor, aliases: tuple[str, ...] = ()) -> None:
        self.vendors[vendor.name] = vendor
        for alias in aliases:
            self._aliases[alias] = vendor.name

    def add_vendor_row(self, row: dict[str, Any]) -> Vendor:
        row = dict(row)
        aliases = tuple(row.pop("aliases", ()) or ())
        headers = tuple((row.pop("headers", None) or {}).items())
        vendor = Vendor(headers=headers, **row)
        self.add_vendor(vendor, aliases)
        return vendor

    def add_dialect(self, name: str, factory: Callable[[], Dialect]) -> None:
        self.dialects[name] = factory

    def vendor(self, name: str) -> Vendor | None:
        return self.vendors.get(self._aliases.get(name, name))

    def dialect(self, name: str) -> Dialect:
        inst = self._dialect_instances.get(name)
        if inst is None:
            try:
                inst = self.dialects[name]()
            except KeyError:
                raise LookupError(f"no dialect named {name!r} is registered") from None
            self._dialect_instances[name] = inst
        return inst


    async def aclose(self) -> None:
        """Release what dialects hold (worker processes, pools)."""
        for dialect in self._dialect_instances.values():
            close = getattr(dialect, "aclose", None)
            if close is not None:
                await close()


def register_builtins(registry: Registry) -> None:
    from .dialects.anthropic_messages import AnthropicMessages
    from .dialects.gemini import GeminiGenerateContent
    from .dialects.ollama import OllamaChat
    from .dialects.openai_chat import AzureOpenAIChat, OpenAIChat

    for cls in (OpenAIChat, AzureOpenAIChat, AnthropicMessages, GeminiGenerateContent, OllamaChat):
        registry.add_dialect(cls.name, cls)
    rows = yaml.safe_load(resources.files(__package__).joinpath("vendors.yaml").read_text())
    for row in rows:
        registry.add_vendor_row(row)


def load_registry() -> Registry:
    registry = Registry()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name != "builtin", e.name)):
        ep.load()(registry)
    if not registry.dialects:  # running from a source tree without installed metadata
        register_builtins(registry)
    return registry
