"""The synchronous Secret Panthers client: one method per endpoint, standard library HTTP."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, is_dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from .errors import PanthersError
from .signing import sign_request
from .sse import iter_sse_data
from .types import (
    AgentToken,
    AgentHealth, AgentInfo, AgentSpec, Challenge, ChatChunk, ChatHistory, ChatResponse, ClearResult,
    DeployResult, Deployment, DeploymentList, DeploymentUpdate, Resources, ServiceHealth, Session,
    SessionInfo, StopResult, TokenRefresh, VersionInfo, from_dict,
)
from .wallet import Wallet
from .ws import WS_CLOSE_TOKEN_EXPIRED, WsClosed, WsConnection

__all__ = ["PanthersClient"]

TERMINAL_STATUSES = ("stopped", "failed")
_USER_AGENT = "secret-panthers-python/0.1.0"


def _clean(obj: Any) -> Any:
    """Dataclasses to dicts, dropping None values and the ``extra`` catch-all."""
    if is_dataclass(obj) and not isinstance(obj, type):
        d = asdict(obj)
        extra = d.pop("extra", {}) or {}
        d.update(extra)
        return {k: v for k, v in d.items() if v is not None}
    if isinstance(obj, Mapping):
        return {k: v for k, v in obj.items() if v is not None}
    return obj


class PanthersClient:
    """A client for one orchestrator.

    >>> client = PanthersClient("http://127.0.0.1:3000")
    >>> client.sign_in(Wallet("0x...private key..."), "42")
    >>> client.deploy("42", provider="local")

    Access tokens are refreshed before they expire (``refresh_skew`` seconds early) and again when
    a call answers TOKEN_EXPIRED; refresh tokens rotate on every refresh. When refresh no longer
    works and the client signed in with a wallet, it signs in again. Requests are HMAC-signed when
    the server handed out a ``signing_key`` at sign-in. RATE_LIMITED answers are retried up to
    ``max_retries`` times, waiting Retry-After (at most ``max_retry_wait`` seconds) or an
    exponential backoff. Every refused call raises :class:`PanthersError`.

    Thread-safe for concurrent calls; token refresh is serialised.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        refresh_skew: float = 60.0,
        session: Optional[Session] = None,
        user_agent: str = _USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.refresh_skew = refresh_skew
        self.user_agent = user_agent
        self._sleep = sleep
        self._lock = threading.RLock()
        self._wallet: Optional[Wallet] = None
        self._nft: Optional[str] = None
        self._access_token: Optional[str] = None
        self._refresh_token: Optional[str] = None
        self._expires_at = 0.0
        self._session_id: Optional[str] = None
        self._signing_key: Optional[str] = None
        self._used_signatures: Dict[str, float] = {}
        # per NFT: None (embedded: through this orchestrator) or its remote agent
        self._agents: Dict[str, Optional[_RemoteAgent]] = {}
        if session is not None:
            self.set_session(session)

    # ---- token state ---------------------------------------------------------------------

    @property
    def access_token(self) -> Optional[str]:
        return self._access_token

    @property
    def refresh_token(self) -> Optional[str]:
        return self._refresh_token

    @property
    def session_id(self) -> Optional[str]:
        return self._session_id

    @property
    def signing_key(self) -> Optional[str]:
        return self._signing_key

    def set_session(self, session: Session) -> None:
        """Uses tokens obtained elsewhere (e.g. saved from an earlier run)."""
        with self._lock:
            self._access_token = session.access_token
            self._refresh_token = session.refresh_token
            self._expires_at = time.time() + session.expires_in
            self._session_id = session.session_id
            self._signing_key = session.signing_key

    def set_access_token(self, token: str, expires_in: float = 3600) -> None:
        """Replaces the access token (keeps the refresh token and signing key)."""
        with self._lock:
            self._access_token = token
            self._expires_at = time.time() + expires_in

    # ---- auth ----------------------------------------------------------------------------

    def challenge(self, wallet_address: str, nft_token_id: str) -> Challenge:
        """POST /auth/challenge: a one-time message for the wallet to sign."""
        body = {"wallet_address": wallet_address, "nft_token_id": nft_token_id}
        return from_dict(Challenge, self._call("POST", "/v1/auth/challenge", body, auth=False))

    def verify(self, wallet_address: str, nft_token_id: str, signature: str, message: str, public_key: Optional[str] = None) -> Session:
        """POST /auth/verify: trades a signed challenge for a session; the client keeps its tokens."""
        body = {"wallet_address": wallet_address, "nft_token_id": nft_token_id, "signature": signature, "message": message, "public_key": public_key}
        session = from_dict(Session, self._call("POST", "/v1/auth/verify", _clean(body), auth=False))
        self.set_session(session)
        return session

    def sign_in(self, wallet: Union[Wallet, str], nft_token_id: str) -> Session:
        """Signs in with a private key (a :class:`Wallet` or 0x hex): challenge, personal_sign, verify.
        The client remembers the wallet to sign in again if the refresh token stops working."""
        w = wallet if isinstance(wallet, Wallet) else Wallet(wallet)
        ch = self.challenge(w.address, nft_token_id)
        session = self.verify(w.address, nft_token_id, w.sign_message(ch.message), ch.message)
        with self._lock:
            self._wallet, self._nft = w, nft_token_id
        return session

    def refresh(self) -> TokenRefresh:
        """POST /auth/refresh: a new access token; the refresh token rotates (the old one is spent)."""
        with self._lock:
            if not self._refresh_token:
                raise PanthersError("UNAUTHORIZED", "No refresh token: sign in first", 401)
            data = self._call("POST", "/v1/auth/refresh", {"refresh_token": self._refresh_token}, auth=False)
            out = from_dict(TokenRefresh, data)
            self._access_token = out.access_token
            self._refresh_token = out.refresh_token
            self._expires_at = time.time() + out.expires_in
            return out

    def logout(self) -> str:
        """POST /auth/logout: revokes the session; the client forgets its tokens."""
        data = self._call("POST", "/v1/auth/logout")
        with self._lock:
            self._access_token = self._refresh_token = self._signing_key = None
            self._wallet = None
            self._agents.clear()
        return str(data.get("message", ""))

    def session(self) -> SessionInfo:
        """GET /auth/session."""
        return from_dict(SessionInfo, self._call("GET", "/v1/auth/session"))

    def jwks(self) -> Dict[str, Any]:
        """GET /.well-known/jwks.json."""
        return self._call("GET", "/.well-known/jwks.json", auth=False)

    # ---- deployments ---------------------------------------------------------------------

    def deploy(
        self,
        nft_token_id: str,
        provider: str = "local",
        resources: Optional[Union[Resources, Mapping[str, Any]]] = None,
        agent: Optional[Union[AgentSpec, Mapping[str, Any]]] = None,
    ) -> DeployResult:
        """POST /deployments: starts deploying the NFT's agent (local, akash or secret_vm)."""
        body: Dict[str, Any] = {"nft_token_id": nft_token_id, "provider": provider}
        if resources is not None:
            body["resources"] = _clean(resources)
        if agent is not None:
            body["agent"] = _clean(agent)
        return from_dict(DeployResult, self._call("POST", "/v1/deployments", body, signed=True))

    def get_deployment(self, nft_token_id: str) -> Deployment:
        """GET /deployments/{nft}."""
        return from_dict(Deployment, self._call("GET", f"/v1/deployments/{_seg(nft_token_id)}"))

    def stop_deployment(self, nft_token_id: str) -> StopResult:
        """DELETE /deployments/{nft}."""
        return from_dict(StopResult, self._call("DELETE", f"/v1/deployments/{_seg(nft_token_id)}", signed=True))

    def list_deployments(
        self,
        *,
        status: Optional[str] = None,
        provider: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        sort: Optional[str] = None,
        order: Optional[str] = None,
    ) -> DeploymentList:
        """GET /deployments: the caller's deployments, filtered and paginated."""
        q = _clean({"status": status, "provider": provider, "limit": limit, "offset": offset, "sort": sort, "order": order})
        return from_dict(DeploymentList, self._call("GET", "/v1/deployments", query=q))

    def watch_deployment(
        self,
        nft_token_id: str,
        *,
        include_current: bool = True,
        timeout: Optional[float] = None,
        until: Tuple[str, ...] = TERMINAL_STATUSES,
    ) -> Iterator[DeploymentUpdate]:
        """Deployment updates over the WebSocket, as an iterator.

        Yields the current state first (``include_current``), then each ``deployment_status``
        frame; ends after a status in ``until`` (stopped/failed by default) or raises
        PanthersError TIMEOUT after ``timeout`` seconds. Reconnects with a refreshed token when
        the server closes the socket for an expired token. Break out of the loop to stop watching.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        first = True
        for _ in range(5):  # reconnects after token expiry, bounded
            conn = self._ws_connect()
            try:
                conn.send({"type": "subscribe", "channel": "deployment", "nft_token_id": nft_token_id})
                while True:
                    frame = conn.recv(deadline)
                    kind = frame.get("type")
                    if kind == "subscribed" and frame.get("channel") == "deployment":
                        view = frame.get("deployment")
                        if view and include_current and first:
                            update = from_dict(DeploymentUpdate, {**view, "message": "current state"})
                            yield update
                            if update.status in until:
                                return
                        first = False
                    elif kind == "deployment_status" and frame.get("nft_token_id") == nft_token_id:
                        update = from_dict(DeploymentUpdate, frame)
                        yield update
                        if update.status in until:
                            return
                    elif kind == "error":
                        err = PanthersError.from_body(frame)
                        if err.code != "TOKEN_EXPIRED":
                            raise err
            except WsClosed as closed:
                if closed.code != WS_CLOSE_TOKEN_EXPIRED:
                    raise PanthersError("NETWORK_ERROR", f"WebSocket closed ({closed.code}) {closed.reason}".strip()) from None
                self._refresh_or_sign_in()
            finally:
                conn.close()
        raise PanthersError("UNAUTHORIZED", "WebSocket kept closing for an expired token", 401)

    def wait_for_status(self, nft_token_id: str, status: str = "running", timeout: float = 120.0) -> DeploymentUpdate:
        """Blocks until the deployment reaches ``status``; PanthersError when it fails or times out."""
        for update in self.watch_deployment(nft_token_id, timeout=timeout):
            if update.status == status:
                return update
            if update.status == "failed":
                raise PanthersError("DEPLOYMENT_FAILED", f"Deployment failed: {update.message}", 0, update.extra)
        raise PanthersError("CONFLICT", f"Deployment ended before reaching {status}")

    # ---- the agent API ------------------------------------------------------------------
    # Embedded (local) agents answer through this orchestrator at /v1/agents/{nft}/...; a remote
    # agent is called at its endpoint_url with an agent-scoped token the client exchanges for
    # (POST /v1/agents/{nft}/token) and renews by itself: the session token never goes there.

    def agent_token(self, nft_token_id: str) -> AgentToken:
        """POST /v1/agents/{nft}/token: a short-lived token only that NFT's agent accepts."""
        return from_dict(AgentToken, self._call("POST", f"/v1/agents/{_seg(nft_token_id)}/token"))

    def is_remote_agent(self, nft_token_id: str) -> bool:
        return self._agent_route(nft_token_id) is not None

    def agent_health(self, nft_token_id: str) -> AgentHealth:
        path, remote = self._agent(nft_token_id, "health")
        return from_dict(AgentHealth, self._call("GET", path, auth=False, remote=remote))

    def agent_info(self, nft_token_id: str) -> AgentInfo:
        path, remote = self._agent(nft_token_id, "info")
        return from_dict(AgentInfo, self._call("GET", path, auth=False, remote=remote))

    def chat(self, nft_token_id: str, message: str, conversation_id: Optional[str] = None) -> ChatResponse:
        """POST chat: the whole answer at once."""
        body = _clean({"message": message, "conversation_id": conversation_id})
        path, remote = self._agent(nft_token_id, "chat")
        return from_dict(ChatResponse, self._call("POST", path, body, remote=remote))

    def chat_stream(self, nft_token_id: str, message: str, conversation_id: Optional[str] = None) -> Iterator[ChatChunk]:
        """POST chat with ``stream: true``: the answer as it is generated (Server-Sent Events).

        Yields chunks with ``content``; the last has ``done=True`` and the full ``response``.
        Raises PanthersError if the turn fails (details carry the partial ``response``).
        """
        body = _clean({"message": message, "conversation_id": conversation_id, "stream": True})
        path, remote = self._agent(nft_token_id, "chat")
        resp = self._send("POST", path, body, stream=True, remote=remote)
        try:
            for data in iter_sse_data(resp):
                try:
                    frame = json.loads(data)
                except ValueError:
                    continue
                chunk = _chunk(frame)
                yield chunk
                if chunk.done:
                    return
        finally:
            resp.close()
        raise PanthersError("NETWORK_ERROR", "The chat stream ended before its final event")

    def chat_stream_ws(
        self, nft_token_id: str, message: str, conversation_id: Optional[str] = None, timeout: float = 120.0,
    ) -> Iterator[ChatChunk]:
        """The same as :meth:`chat_stream`, over the WebSocket (``chat_stream`` message)."""
        deadline = time.monotonic() + timeout
        conn = self._ws_connect(self._agent_route(nft_token_id))
        try:
            conn.send(_clean({"type": "chat_stream", "nft_token_id": nft_token_id, "conversation_id": conversation_id, "message": message}))
            conv: Optional[str] = conversation_id
            while True:
                frame = conn.recv(deadline)
                kind = frame.get("type")
                if kind == "subscribed" and frame.get("channel") == "chat":
                    conv = conv or frame.get("conversation_id")
                elif kind == "chat_chunk" and (conv is None or frame.get("conversation_id") == conv):
                    chunk = _chunk(frame)
                    yield chunk
                    if chunk.done:
                        return
                elif kind == "error":
                    raise PanthersError.from_body(frame)
        except WsClosed as closed:
            code = "TOKEN_EXPIRED" if closed.code == WS_CLOSE_TOKEN_EXPIRED else "NETWORK_ERROR"
            raise PanthersError(code, f"WebSocket closed ({closed.code}) before the answer ended", 0) from None
        finally:
            conn.close()

    def chat_history(self, nft_token_id: str, conversation_id: str, limit: Optional[int] = None, offset: Optional[int] = None) -> ChatHistory:
        """GET chat/history: a conversation's messages, oldest first."""
        q = _clean({"conversation_id": conversation_id, "limit": limit, "offset": offset})
        path, remote = self._agent(nft_token_id, "chat/history")
        return from_dict(ChatHistory, self._call("GET", path, query=q, remote=remote))

    def clear_chat(self, nft_token_id: str, conversation_id: str) -> ClearResult:
        """POST chat/clear: deletes a conversation's messages."""
        path, remote = self._agent(nft_token_id, "chat/clear")
        return from_dict(ClearResult, self._call("POST", path, {"conversation_id": conversation_id}, signed=True, remote=remote))

    # ---- monitoring ----------------------------------------------------------------------

    def health(self) -> ServiceHealth:
        """GET /health (an unhealthy server answers 503, raised as PanthersError)."""
        return from_dict(ServiceHealth, self._call("GET", "/v1/health", auth=False))

    def version(self) -> VersionInfo:
        return from_dict(VersionInfo, self._call("GET", "/v1", auth=False))

    def metrics(self) -> str:
        """GET /metrics: Prometheus text."""
        resp = self._send("GET", "/metrics", None, auth=False, stream=True)
        try:
            return resp.read().decode("utf-8")
        finally:
            resp.close()

    # ---- plumbing ------------------------------------------------------------------------

    def _agent(self, nft_token_id: str, path: str) -> Tuple[str, Optional[_RemoteAgent]]:
        remote = self._agent_route(nft_token_id)
        if remote is None:
            return f"/v1/agents/{_seg(nft_token_id)}/{path}", None
        return f"/v1/{path}", remote

    def _agent_route(self, nft_token_id: str) -> Optional[_RemoteAgent]:
        """How the agent of an NFT is reached: found once per client (its deployment's provider)."""
        with self._lock:
            if nft_token_id in self._agents:
                return self._agents[nft_token_id]
        remote: Optional[_RemoteAgent] = None
        if self._access_token or self._refresh_token or self._wallet:
            try:
                d = self.get_deployment(nft_token_id)
            except PanthersError as e:
                if e.code != "NOT_FOUND":
                    raise
                return None  # no deployment: the orchestrator's embedded path answers (404)
            if d.provider != "local":
                if not d.endpoint_url:
                    return None  # remote but not serving yet: look again next call
                remote = _RemoteAgent(self, nft_token_id)
        else:
            return None
        with self._lock:
            return self._agents.setdefault(nft_token_id, remote)

    def _forget_agent(self, nft_token_id: str) -> None:
        with self._lock:
            self._agents.pop(nft_token_id, None)

    def _ws_connect(self, remote: Optional[_RemoteAgent] = None) -> WsConnection:
        if remote is not None:
            token = remote.token()
            base = remote.base_url
        else:
            self._ensure_fresh()
            token = self._access_token or ""
            base = self.base_url
        base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return WsConnection(f"{base}/ws?token={urllib.parse.quote(token, safe='')}", open_timeout=self.timeout)

    def _ensure_fresh(self) -> None:
        with self._lock:
            if self._access_token and time.time() < self._expires_at - self.refresh_skew:
                return
            if self._refresh_token or self._wallet:
                self._refresh_or_sign_in()

    def _refresh_or_sign_in(self) -> None:
        with self._lock:
            try:
                self.refresh()
            except PanthersError as e:
                if self._wallet is None or self._nft is None or e.code not in ("UNAUTHORIZED", "TOKEN_EXPIRED"):
                    raise
                self.sign_in(self._wallet, self._nft)

    def _call(
        self, method: str, path: str, body: Any = None, *, query: Optional[Mapping[str, Any]] = None, auth: bool = True, signed: bool = False,
        remote: Optional[_RemoteAgent] = None,
    ) -> Any:
        resp = self._send(method, path, body, query=query, auth=auth, signed=signed, remote=remote)
        try:
            raw = resp.read()
        finally:
            resp.close()
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise PanthersError("INVALID_RESPONSE", "The server answered with something that is not JSON", resp.status) from None

    def _send(
        self, method: str, path: str, body: Any = None, *, query: Optional[Mapping[str, Any]] = None,
        auth: bool = True, signed: bool = False, stream: bool = False, remote: Optional[_RemoteAgent] = None,
    ) -> Any:
        """Sends a request with refresh, signing and retries; returns the open 2xx response.
        With ``remote``, to that agent's endpoint with its agent token (no session signature)."""
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        if remote is not None:
            remote.token()  # knows its endpoint after the first exchange
        url = (remote.base_url if remote is not None else self.base_url) + target
        signed_path = urllib.parse.urlsplit(url).path + ("?" + urllib.parse.urlsplit(url).query if query else "")
        data = json.dumps(body, separators=(",", ":")).encode("utf-8") if body is not None else b""
        refreshed = False
        attempt = 0
        while True:
            if auth and remote is None:
                self._ensure_fresh()
            headers = {"Accept": "text/event-stream" if stream and method == "POST" else "application/json", "User-Agent": self.user_agent}
            if body is not None:
                headers["Content-Type"] = "application/json"
            if auth and remote is not None:
                headers["Authorization"] = f"Bearer {remote.token()}"
            elif auth and self._access_token:
                headers["Authorization"] = f"Bearer {self._access_token}"
            if signed and self._signing_key and remote is None:
                ts, sig = self._fresh_signature(method, signed_path, data)
                headers["X-Timestamp"], headers["X-Signature"] = str(ts), sig
            req = urllib.request.Request(url, data=data if body is not None else None, method=method, headers=headers)
            try:
                return urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as http_err:
                err = _error_from_http(http_err)
            except (urllib.error.URLError, OSError) as net:
                reason = getattr(net, "reason", net)
                if remote is not None and not refreshed and (method == "GET" or isinstance(reason, ConnectionRefusedError)):
                    # The agent may have moved (redeployed): a new exchange says where it is now.
                    # (A POST is retried only when it never reached anyone: a turn must not run twice.)
                    refreshed = True
                    remote.renew()
                    url = remote.base_url + target
                    continue
                raise PanthersError("NETWORK_ERROR", f"{method} {target} failed: {reason}", 0) from None
            if remote is not None and auth and not refreshed and err.code in ("TOKEN_EXPIRED", "UNAUTHORIZED"):
                # Expired or revoked at the agent: exchange again once (the orchestrator says if the session ended).
                refreshed = True
                remote.renew()
                url = remote.base_url + target
                continue
            if err.code == "TOKEN_EXPIRED" and auth and remote is None and not refreshed and (self._refresh_token or self._wallet):
                refreshed = True
                self._refresh_or_sign_in()
                continue
            if err.code == "RATE_LIMITED" and attempt < self.max_retries:
                wait = err.retry_after if err.retry_after is not None else min(8.0, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2)
                self._sleep(min(max(wait, 0.0), self.max_retry_wait))
                attempt += 1
                continue
            raise err

    def _fresh_signature(self, method: str, path: str, data: bytes) -> Tuple[int, str]:
        """A signature never used before: the server accepts each one once, and two identical
        requests in the same second would sign identically, so the second moves a second ahead
        (well inside the server's +-300 s window)."""
        with self._lock:
            now = time.time()
            self._used_signatures = {s: t for s, t in self._used_signatures.items() if t > now - 600}
            ts = int(now)
            for _ in range(60):
                sig = sign_request(self._signing_key or "", method, path, data, ts)
                if sig not in self._used_signatures:
                    self._used_signatures[sig] = now
                    return ts, sig
                ts += 1
            raise PanthersError("RATE_LIMITED", "Too many identical signed requests; retry in a minute", 0)


class _RemoteAgent:
    """A remote agent: its endpoint and an agent-scoped token, exchanged when first needed and
    again shortly before it expires (or when the agent refuses it). Each exchange re-reads
    endpoint_url, so a redeploy elsewhere is followed."""

    def __init__(self, client: PanthersClient, nft_token_id: str) -> None:
        self._client = client
        self._nft = nft_token_id
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self.base_url = ""

    def token(self) -> str:
        with self._lock:
            # Agent tokens live minutes: renew within 30 s of expiry at most.
            if self._token is None or time.time() >= self._expires_at - min(30.0, self._client.refresh_skew):
                self._exchange()
            return self._token or ""

    def renew(self) -> None:
        with self._lock:
            self._exchange()

    def _exchange(self) -> None:
        try:
            t = self._client.agent_token(self._nft)
        except PanthersError as e:
            if e.code == "NOT_FOUND":  # no live deployment any more: look it up again next call
                self._client._forget_agent(self._nft)
            raise
        self._token = t.access_token
        self._expires_at = time.time() + float(t.expires_in)
        self.base_url = t.endpoint_url.rstrip("/")


def _seg(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _chunk(frame: Dict[str, Any]) -> ChatChunk:
    if frame.get("done") and isinstance(frame.get("error"), dict):
        err = PanthersError.from_body({"error": frame["error"]})
        err.details.setdefault("response", frame.get("response", ""))
        err.details.setdefault("conversation_id", frame.get("conversation_id"))
        raise err
    return from_dict(ChatChunk, {k: v for k, v in frame.items() if k != "type"})


def _error_from_http(e: urllib.error.HTTPError) -> PanthersError:
    try:
        raw = e.read()
    except Exception:
        raw = b""
    finally:
        e.close()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    retry_after: Optional[float] = None
    ra = e.headers.get("Retry-After") if e.headers else None
    if ra:
        try:
            retry_after = float(ra)
        except ValueError:
            retry_after = None
    request_id = e.headers.get("X-Request-Id") if e.headers else None
    err = PanthersError.from_body(body, e.code, request_id, retry_after)
    if err.code == "INVALID_RESPONSE":
        err = PanthersError("HTTP_ERROR", f"HTTP {e.code} without an API error body", e.code, {}, request_id, retry_after)
    return err
