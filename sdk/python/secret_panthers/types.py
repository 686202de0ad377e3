"""Typed results of the API, as dataclasses. Unknown fields the server adds are kept in ``extra``."""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Type, TypeVar

T = TypeVar("T")


def from_dict(cls: Type[T], data: Any) -> T:
    """Builds dataclass ``cls`` from a JSON object: nested dataclasses and lists of them are
    converted, missing optional fields take their defaults, unknown fields go to ``extra``."""
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: Dict[str, Any] = {}
    for name in known - {"extra"}:
        if name in data:
            kwargs[name] = _convert(hints[name], data[name])
    if "extra" in known:
        kwargs["extra"] = {k: v for k, v in data.items() if k not in known}
    return cls(**kwargs)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin in (list, List):
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(item, v) for v in value]
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    return value


@dataclass
class Challenge:
    """A one-time sign-in message (POST /auth/challenge)."""
    message: str
    nonce: str
    expires_at: str
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    """Tokens from POST /auth/verify. ``signing_key`` is set when the server requires signed requests."""
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    session_id: str
    signing_key: Optional[str] = field(default=None, repr=False)
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TokenRefresh:
    """POST /auth/refresh: a new access token and the rotated refresh token."""
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionInfo:
    """GET /auth/session."""
    wallet_address: str
    nft_token_id: str
    session_id: str
    expires_at: str
    access_token_expires_at: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Resources:
    cpu: float = 0.5
    memory_mb: int = 512
    disk_mb: int = 1024
    gpu: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class AgentSpec:
    name: Optional[str] = None
    system_prompt: Optional[str] = None
    model: Optional[str] = None
    capabilities: Optional[List[str]] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Health:
    ok: bool
    checked_at: str
    latency_ms: float
    message: str
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployResult:
    """POST /deployments (202)."""
    deployment_id: str
    status: str
    endpoint_url: Optional[str] = None
    estimated_time: float = 0
    nft_token_id: Optional[str] = None
    provider: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Deployment:
    """GET /deployments/{nft}. status: pending, deploying, running, stopping, stopped, failed."""
    deployment_id: str
    nft_token_id: str
    status: str
    provider: str
    endpoint_url: Optional[str] = None
    progress: float = 0
    created_at: str = ""
    updated_at: str = ""
    resources: Optional[Resources] = None
    agent: Optional[AgentSpec] = None
    health: Optional[Health] = None
    error: Optional[str] = None
    details: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class StopResult:
    """DELETE /deployments/{nft}."""
    message: str
    status: str
    deployment_id: str
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Pagination:
    total: int
    limit: int
    offset: int
    has_more: bool
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DeploymentList:
    """GET /deployments."""
    deployments: List[Deployment]
    total: int
    pagination: Pagination
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DeploymentUpdate:
    """A ``deployment_status`` WebSocket frame."""
    deployment_id: str
    nft_token_id: str
    status: str
    progress: float = 0
    message: Optional[str] = None
    endpoint_url: Optional[str] = None
    timestamp: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatResponse:
    """POST /agents/{nft}/chat (not streamed)."""
    response: str
    conversation_id: str
    timestamp: str
    tokens_used: int
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatChunk:
    """One piece of a streamed answer. The last chunk has ``done=True`` and carries the whole
    ``response``, ``conversation_id``, ``tokens_used`` and whether the answer is ``incomplete``."""
    content: str = ""
    done: bool = False
    conversation_id: Optional[str] = None
    response: Optional[str] = None
    timestamp: Optional[str] = None
    tokens_used: Optional[int] = None
    incomplete: Optional[bool] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatMessage:
    role: str
    content: str
    timestamp: str
    tokens: int = 0
    incomplete: bool = False
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatHistory:
    """GET /agents/{nft}/chat/history, oldest first."""
    messages: List[ChatMessage]
    total: int
    conversation_id: str
    pagination: Pagination
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ClearResult:
    message: str
    conversation_id: str
    deleted: int
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class AgentToken:
    """POST /v1/agents/{nft}/token: a short-lived token only that NFT's agent accepts."""
    access_token: str
    token_type: str
    expires_in: float
    audience: str
    endpoint_url: str
    provider: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class AgentHealth:
    status: str
    version: str
    uptime: float
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class AgentInfo:
    name: str
    nft_token_id: str
    capabilities: List[str]
    model: str
    status: str
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceHealth:
    """GET /health."""
    status: str
    version: str
    uptime: float
    deployments_active: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class VersionInfo:
    version: str
    api_version: str
    openapi: str
    extra: Dict[str, Any] = field(default_factory=dict)
