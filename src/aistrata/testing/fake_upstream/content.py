"""Deterministic reply content shared by every dialect.

Each dialect parses its request into a `Prompt`; `make_reply` turns that into
a `Reply` that the dialect then renders in its own wire shape. Everything is
a pure function of the request and the knobs, so tests can assert exact text
and token numbers.

Token rule (exposed as `count_input_tokens` / `Reply.output_tokens`):

* input  = words (whitespace-split) in every input text — system prompt,
  message text parts, tool-result text — plus 3 per message (a system prompt
  counts as one message in every dialect); images, tool schemas and
  tool-call arguments count 0;
* output = number of streamed pieces: one per word of prose, one per 8
  characters of a JSON-mode document, and for each tool call 1 + its
  argument fragments (8 characters each).

Reply text: ``Hello from fake <model>. [I see N image(s).] You said: <first 8
words of the last user text>`` padded with filler words (or trimmed) to
exactly ``reply_words`` words. After a tool result it starts with
``Tool result: <result text>.`` instead. A tool call is made when the request
has tools and either forces one or the last user text contains the word
"weather" or "tool"/"tools"; arguments are built from the schema's required
properties (string "Paris" or the first enum value, number/integer 1,
boolean true, array [one item], object recursively, null null).
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from .faults import Faults

FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
JSON_PIECE = 8
DEFAULT_EMBED_DIMS = 16
_TOOL_WORD = re.compile(r"\b(weather|tools?)\b", re.IGNORECASE)
_PIECE = re.compile(r"\s*\S+|\s+$")


@dataclass(slots=True)
class Tool:
    name: str
    schema: dict[str, Any]


@dataclass(slots=True)
class Prompt:
    """A dialect-neutral view of a chat request."""

    model: str
    texts: list[str] = field(default_factory=list)
    messages: int = 0
    last_user_text: str = ""
    tool_result: str | None = None  # set when the last message is a tool result
    images: int = 0
    tools: list[Tool] = field(default_factory=list)
    tool_mode: str = "auto"  # auto | none | any | named
    tool_name: str | None = None
    parallel_ok: bool = True
    json_mode: bool = False
    json_schema: dict[str, Any] | None = None
    n: int = 1
    stop: list[str] = field(default_factory=list)
    max_tokens: int | None = None
    stream: bool = False


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    arguments_json: str
    fragments: list[str]


@dataclass(slots=True)
class Reply:
    text: str | None
    pieces: list[str]
    tool_calls: list[ToolCall]
    finish: str  # stop | stop_sequence | length | tool
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int  # per choice, excluding reasoning
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


def count_input_tokens(texts: list[str], messages: int) -> int:
    return sum(len(t.split()) for t in texts) + 3 * messages


def chop(text: str, size: int = JSON_PIECE) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def prose(prompt: Prompt, words: int) -> str:
    if prompt.tool_result is not None:
        head = f"Tool result: {prompt.tool_result}."
    else:
        seen = f" I see {prompt.images} image{'s' if prompt.images > 1 else ''}." if prompt.images else ""
        said = " ".join(prompt.last_user_text.split()[:8])
        head = f"Hello from fake {prompt.model}.{seen} You said: {said}"
    parts = head.split()
    i = 0
    while len(parts) < words:
        parts.append(FILLER[i % len(FILLER)])
        i += 1
    return " ".join(parts[:max(words, 1)])


def value_for(schema: dict[str, Any], root: dict[str, Any], required_only: bool, depth: int = 0) -> Any:
    """A deterministic value satisfying a (simple) JSON Schema / OpenAPI schema."""
    if depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key, {}) if isinstance(target, dict) else {}
        return value_for(target, root, required_only, depth + 1)
    for combo in ("anyOf", "oneOf", "allOf"):
        if schema.get(combo):
            return value_for(schema[combo][0], root, required_only, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower()
    if kind == "string":
        return "Paris"
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        return [value_for(schema.get("items") or {}, root, required_only, depth + 1)]
    props: dict[str, Any] = schema.get("properties") or {}
    names = schema.get("required", list(props)) if required_only else list(props)
    return {name: value_for(props.get(name) or {}, root, required_only, depth + 1) for name in names}


def _tool_calls(prompt: Prompt, faults: Faults) -> list[ToolCall]:
    first = next((t for t in prompt.tools if t.name == prompt.tool_name), prompt.tools[0])
    chosen = [first]
    if faults.parallel_tools and prompt.parallel_ok and prompt.tool_mode != "named":
        chosen.append(prompt.tools[1] if len(prompt.tools) > 1 else first)
    calls = []
    for tool in chosen:
        args = value_for(tool.schema, tool.schema, required_only=True)
        args_json = orjson.dumps(args).decode()
        calls.append(ToolCall(tool.name, args, args_json, chop(args_json)))
    return calls


def wants_tool(prompt: Prompt) -> bool:
    if not prompt.tools or prompt.tool_mode == "none" or prompt.tool_result is not None:
        return False
    return prompt.tool_mode in ("any", "named") or bool(_TOOL_WORD.search(prompt.last_user_text))


def make_reply(prompt: Prompt, faults: Faults) -> Reply:
    input_tokens = count_input_tokens(prompt.texts, prompt.messages)
    cached = min(faults.cached_tokens, input_tokens)
    cache_write = min(faults.cache_write_tokens, input_tokens - cached)
    finish, stop_seq = "stop", None
    text: str | None = None
    calls: list[ToolCall] = []
    if wants_tool(prompt):
        calls = _tool_calls(prompt, faults)
        pieces: list[str] = []
        finish = "tool"
        output = sum(1 + len(c.fragments) for c in calls)
    else:
        if prompt.json_mode:
            doc = value_for(prompt.json_schema, prompt.json_schema, False) if prompt.json_schema else \
                {"reply": prose(prompt, faults.reply_words)}
            text = orjson.dumps(doc).decode()
            pieces = chop(text)
        else:
            text = prose(prompt, faults.reply_words)
            hits = [(text.find(s), s) for s in prompt.stop if s and s in text]
            if hits:
                cut, stop_seq = min(hits)
                text, finish = text[:cut], "stop_sequence"
            pieces = _PIECE.findall(text)
        if prompt.max_tokens is not None and len(pieces) > prompt.max_tokens:
            pieces, finish, stop_seq = pieces[:prompt.max_tokens], "length", None
            text = "".join(pieces)
        output = len(pieces)
    return Reply(text, pieces, calls, finish, stop_seq, input_tokens, output,
                 cached, cache_write, faults.reasoning_tokens)


def embedding(text: str, dims: int) -> list[float]:
    """A deterministic pseudo-embedding in [-1, 1) derived from the text."""
    raw = hashlib.shake_128(text.encode()).digest(dims * 2)
    return [round((v - 32768) / 32768, 6) for v in struct.unpack(f"<{dims}H", raw)]


def embedding_b64(values: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
