"""Layer 2, observability: request records, the batched durable recorder, pricing."""

from ..providers.pricing import Price, price
from .recorder import Recorder, Sink
from .records import RequestRecord

__all__ = ["Price", "Recorder", "RequestRecord", "Sink", "price"]
