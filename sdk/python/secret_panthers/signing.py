"""HMAC request signing (X-Timestamp / X-Signature), for servers that require it."""

from __future__ import annotations

import hashlib
import hmac


def signing_string(method: str, path: str, body: bytes, timestamp: int | str) -> str:
    """``timestamp \\n METHOD \\n path \\n sha256hex(body)``; ``path`` includes /v1 and ``?query``."""
    return f"{timestamp}\n{method.upper()}\n{path}\n{hashlib.sha256(body).hexdigest()}"


def sign_request(signing_key: str, method: str, path: str, body: bytes, timestamp: int | str) -> str:
    """X-Signature: hex HMAC-SHA256 keyed with the raw bytes of the hex ``signing_key``."""
    msg = signing_string(method, path, body, timestamp).encode("utf-8")
    return hmac.new(bytes.fromhex(signing_key), msg, hashlib.sha256).hexdigest()
