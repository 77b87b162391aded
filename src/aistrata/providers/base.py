"""What a provider is: a vendor (endpoint, credentials, dialect) as data, and a dialect
adapter that speaks one wire format. A `Deployment` is one concrete upstream model a model
group can route to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

from ..core import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from .http import HttpClient


class Secret:
    """A credential that never shows itself in reprs, logs or errors."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(slots=True)
class Deployment:
    """One upstream model behind a model group."""

    id: str
    group: str
    provider: str
    dialect: str
    model: str
    api_base: str
    api_key: Secret | None = None
    api_version: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    connect_timeout: float = 10.0
    weight: float = 1.0
    # model_info from the config: context window, capabilities, price overrides, region...
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.api_key.reveal() if self.api_key else ""


@dataclass(slots=True, frozen=True)
class Vendor:
    """A provider as data. OpenAI-compatible vendors are just rows of these."""

    name: str
    dialect: str
    api_base: str | None = None
    key_env: str | None = None
    base_env: str | None = None
    version_env: str | None = None
    # Vendors whose models appear without configuration when their key env var is set.
    discoverable: bool = True
    headers: tuple[tuple[str, str], ...] = ()


class Dialect(Protocol):
    """One wire format, spoken as a client to a provider."""

    name: str

    async def chat(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> ChatResponse: ...

    def stream(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> AsyncIterator[StreamEvent]: ...

    async def embed(self, http: HttpClient, req: EmbeddingRequest, dep: Deployment) -> EmbeddingResponse: ...

    async def list_models(self, http: HttpClient, dep: Deployment) -> list[str]: ...
