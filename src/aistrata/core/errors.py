"""The gateway's exception tree. Every failure the client can see is a `GatewayError` with
an `ErrorKind`; the ingress dialect renders it in the client's own error shape and status.

    GatewayError
     ├─ kind=authentication        401  bad or missing key (ours or the provider's)
     ├─ kind=permission            403  key not allowed this model, revoked, expired
     ├─ kind=not_found             404  unknown model
     ├─ kind=bad_request           400  malformed or unsupported request
     ├─ kind=request_too_large     413
     ├─ kind=context_length        400  prompt longer than the model's window
     ├─ kind=content_policy        400  refused by the provider's safety system
     ├─ kind=rate_limit            429  `retry_after` seconds when known
     ├─ kind=budget_exceeded       429  a money budget is spent; the message names it
     ├─ kind=upstream_unavailable  503  provider 5xx, overloaded (529), connection refused
     ├─ kind=timeout               504  provider too slow
     └─ kind=internal              500  a bug of ours

Messages never carry secrets: provider bodies are reduced to their message text.
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    authentication = "authentication"
    permission = "permission"
    not_found = "not_found"
    bad_request = "bad_request"
    request_too_large = "request_too_large"
    context_length = "context_length"
    content_policy = "content_policy"
    rate_limit = "rate_limit"
    budget_exceeded = "budget_exceeded"
    upstream_unavailable = "upstream_unavailable"
    timeout = "timeout"
    internal = "internal"


STATUS = {
    ErrorKind.authentication: 401,
    ErrorKind.permission: 403,
    ErrorKind.not_found: 404,
    ErrorKind.bad_request: 400,
    ErrorKind.request_too_large: 413,
    ErrorKind.context_length: 400,
    ErrorKind.content_policy: 400,
    ErrorKind.rate_limit: 429,
    ErrorKind.budget_exceeded: 429,
    ErrorKind.upstream_unavailable: 503,
    ErrorKind.timeout: 504,
    ErrorKind.internal: 500,
}


class GatewayError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status or STATUS[kind]
        self.retry_after = retry_after
        self.provider = provider
        self.param = param

    @property
    def retryable(self) -> bool:
        return self.kind in (ErrorKind.rate_limit, ErrorKind.upstream_unavailable, ErrorKind.timeout)

    def __repr__(self) -> str:
        return f"GatewayError({self.kind.value}, {self.message!r}, status={self.status})"


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(ErrorKind.bad_request, message, param=param)


def kind_for_status(status: int) -> ErrorKind:
    """The error kind a provider's HTTP status means when its body says nothing better."""
    if status == 401:
        return ErrorKind.authentication
    if status == 403:
        return ErrorKind.permission
    if status == 404:
        return ErrorKind.not_found
    if status == 413:
        return ErrorKind.request_too_large
    if status == 429:
        return ErrorKind.rate_limit
    if status in (408, 504):
        return ErrorKind.timeout
    if status >= 500:
        return ErrorKind.upstream_unavailable
    return ErrorKind.bad_request
