"""Fake provider servers (OpenAI + Azure, Anthropic, Gemini, Ollama) over real HTTP.

Independent, hand-written implementations of each provider's wire format,
used by the gateway's tests and as the upstream baseline in benchmarks::

    from aistrata.testing.fake_upstream import FakeUpstream, Faults

    with FakeUpstream(api_key=None, faults=Faults(reply_words=5)) as fake:
        openai.OpenAI(base_url=fake.url + "/v1", api_key="k")...
        fake.faults.status = 429            # live knob
        fake.requests[-1]["usage"]          # what the fake reported

Fault profiles ride on the model name: ``gpt-4o@status=429,retry_after=2``
(see `faults`). Content and token rules are in `content`; each dialect
module's docstring lists the wire facts it reproduces.
"""

from .app import FakeApp
from .content import Prompt, Reply, count_input_tokens, make_reply
from .faults import KIND_STATUS, USAGE_VARIANTS, Faults
from .server import FakeUpstream

__all__ = ["KIND_STATUS", "USAGE_VARIANTS", "FakeApp", "FakeUpstream", "Faults", "Prompt", "Reply",
           "count_input_tokens", "make_reply"]
