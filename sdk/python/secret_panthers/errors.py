"""The one exception the SDK raises for answers the API refused."""

from __future__ import annotations

from typing import Any, Mapping, Optional


class PanthersError(Exception):
    """An API error: the server's ``{"error": {code, message, details}}`` plus the HTTP status.

    ``code`` is one of the API's codes (UNAUTHORIZED, FORBIDDEN, TOKEN_EXPIRED, INVALID_SIGNATURE,
    NOT_FOUND, ALREADY_EXISTS, CONFLICT, INVALID_REQUEST, MISSING_FIELD, INVALID_FIELD,
    RATE_LIMITED, QUOTA_EXCEEDED, INTERNAL_ERROR, SERVICE_UNAVAILABLE, TIMEOUT, ...) or, for
    failures that never got an API answer, NETWORK_ERROR / INVALID_RESPONSE (status 0 for a
    network error). ``status`` is 0 for errors that arrived inside a stream (WebSocket frames).
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 0,
        details: Optional[Mapping[str, Any]] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details: dict[str, Any] = dict(details or {})
        self.request_id = request_id
        self.retry_after = retry_after

    @classmethod
    def from_body(cls, body: Any, status: int = 0, request_id: Optional[str] = None, retry_after: Optional[float] = None) -> "PanthersError":
        """Builds the error from a response body (or a frame's ``error`` object)."""
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            return cls(err["code"], str(err.get("message", "")), status, err.get("details") or {}, request_id, retry_after)
        return cls("INVALID_RESPONSE", f"unexpected error body (HTTP {status})", status, {"body": body}, request_id, retry_after)

    def __repr__(self) -> str:
        return f"PanthersError(code={self.code!r}, status={self.status}, message={self.message!r}, details={self.details!r})"
