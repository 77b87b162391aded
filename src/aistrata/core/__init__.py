"""Provider-neutral types: messages and parts, requests, responses, stream events, usage,
errors. No I/O; every other package speaks these."""

from .errors import ErrorKind, GatewayError, bad_request, kind_for_status
from .ids import new_id, now_ms
from .messages import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    ImagePart,
    Message,
    ModelInfo,
    Part,
    ResponseFormat,
    Role,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from .stream import (
    StreamAccumulator,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UsageReport,
)

__all__ = [
    "ChatRequest", "ChatResponse", "Choice", "EmbeddingRequest", "EmbeddingResponse",
    "ErrorKind", "FinishReason", "GatewayError", "ImagePart", "Message", "ModelInfo", "Part",
    "ResponseFormat", "Role", "StreamAccumulator", "StreamEvent", "StreamFinish", "StreamStart", "TextDelta",
    "TextPart", "ThinkingDelta", "ThinkingPart", "ToolCallDelta", "ToolCallPart", "ToolChoice",
    "ToolResultPart", "ToolSpec", "Usage", "UsageReport", "bad_request", "kind_for_status",
    "new_id", "now_ms",
]
