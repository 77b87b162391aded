"""Ingress dialects: how a client's wire format becomes core types and back.

Each dialect module provides the same four things:
- `parse_chat(body: dict) -> ChatRequest`: validate and convert; bad input raises
  `GatewayError(bad_request)` naming the field.
- `render_chat(resp: ChatResponse, model: str) -> dict`: the whole answer, `model` being the
  name the client asked for.
- `StreamEncoder(model: str, include_usage: bool)`: `.start(event: StreamStart) -> bytes`,
  `.encode(event) -> bytes`, `.error(err) -> bytes` (an explicit in-band error event that
  ends the stream), `.end() -> bytes`.
- `render_error(err: GatewayError) -> tuple[int, dict]`: status and body in the dialect's
  own error shape.
"""
