"""The judge: asks a model, through the gateway, for `{score, reason}` in a JSON schema.

The call is an ordinary gateway request (master principal, tagged `eval`): limited, recorded
and priced like any other, so the evaluators' own cost shows in the request log and in
`/api/costs?group_by=tag`. Online evaluation skips requests tagged `eval`, so judging never
judges itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...core import ChatRequest, GatewayError, Message, ResponseFormat, TextPart, new_id
from ...gateway.auth import MASTER
from ...gateway.context import RequestContext
from ...gateway.pipeline import Gateway, internal_error

EVAL_TAG = "eval"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}
SYSTEM = ("You are an impartial evaluator. {criterion} Answer only with JSON: "
          '{{"score": <number from 0 to 1>, "reason": "<one sentence>"}}.')


class JudgeError(ValueError):
    """The judge answered, but not with a usable `{score, reason}`."""


class Judge:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def ask(self, model: str, criterion: str, content: str, **metadata: Any) -> tuple[float, str, str]:
        """(score in [0, 1], reason, the judge request's id)."""
        ctx = RequestContext(new_id("req_"), "openai", "chat", MASTER, tags=[EVAL_TAG],
                             metadata={k: v for k, v in metadata.items() if v is not None})
        req = ChatRequest(
            model=model, temperature=0.0,
            messages=[Message("system", [TextPart(SYSTEM.format(criterion=criterion))]),
                      Message("user", [TextPart(content)])],
            response_format=ResponseFormat("json_schema", SCHEMA, "judgement", True),
        )
        try:
            resp = await self.gateway.chat(req, ctx)
        except GatewayError as err:
            self.gateway.finish(ctx, err.status, err)
            raise
        except Exception as exc:
            err = internal_error(exc)
            self.gateway.finish(ctx, err.status, err)
            raise err from exc
        self.gateway.finish(ctx, 200)
        return (*parse_judgement(resp.choices[0].message.text), ctx.id)


def parse_judgement(text: str) -> tuple[float, str]:
    try:
        doc = orjson.loads(text)
        score = float(doc["score"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise JudgeError(f"the judge did not answer with {{score, reason}}: {text[:200]!r}") from exc
    return min(max(score, 0.0), 1.0), str(doc.get("reason") or "")
