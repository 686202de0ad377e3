"""A blocking WebSocket connection for the synchronous client, on top of ``websockets``.

``websockets`` is asyncio-based; each connection runs its own event loop in a daemon thread and
hands frames to the caller through a queue, so callers get plain blocking calls and iterators.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from typing import Any, Dict, Optional

from .errors import PanthersError

# The close code the server uses after a TOKEN_EXPIRED frame.
WS_CLOSE_TOKEN_EXPIRED = 4001


class WsClosed(Exception):
    """The connection ended; ``code`` is the WebSocket close code (None when unknown)."""

    def __init__(self, code: Optional[int], reason: str = "") -> None:
        super().__init__(f"websocket closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class WsConnection:
    """One open ``/ws`` connection. ``recv`` returns parsed JSON frames; ``close`` is idempotent."""

    def __init__(self, url: str, open_timeout: float = 10.0) -> None:
        try:
            import websockets  # noqa: F401  (imported here so HTTP-only use needs no websockets)
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise PanthersError("NOT_SUPPORTED", "WebSocket features need the 'websockets' package") from e
        self._url = url
        self._open_timeout = open_timeout
        self._frames: "queue.Queue[tuple[str, Any]]" = queue.Queue()
        self._ready = threading.Event()
        self._open_error: Optional[BaseException] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._ws: Any = None
        self._closed = False
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="panthers-ws", daemon=True)
        self._thread.start()
        if not self._ready.wait(open_timeout + 2):
            raise PanthersError("TIMEOUT", f"WebSocket did not open within {open_timeout} s")
        if self._open_error is not None:
            raise self._open_error

    async def _main(self) -> None:
        import websockets

        self._loop = asyncio.get_running_loop()
        try:
            ws = await websockets.connect(self._url, open_timeout=self._open_timeout, max_size=8 * 1024 * 1024)
        except Exception as e:  # refused upgrade, network error, timeout
            status = getattr(e, "status_code", None) or getattr(getattr(e, "response", None), "status_code", None)
            if status == 401:
                self._open_error = PanthersError("UNAUTHORIZED", "WebSocket upgrade refused: invalid or expired token", 401)
            elif status == 429:
                self._open_error = PanthersError("RATE_LIMITED", "WebSocket upgrade refused: too many connection attempts", 429)
            elif status:
                self._open_error = PanthersError("WEBSOCKET_REFUSED", f"WebSocket upgrade refused with HTTP {status}", int(status))
            else:
                self._open_error = PanthersError("NETWORK_ERROR", f"WebSocket connection failed: {e}", 0)
            self._ready.set()
            return
        self._ws = ws
        self._ready.set()
        try:
            async for raw in ws:
                try:
                    self._frames.put(("frame", json.loads(raw)))
                except ValueError:
                    continue
        except Exception:
            pass
        finally:
            self._frames.put(("closed", (ws.close_code, ws.close_reason or "")))

    def send(self, message: Dict[str, Any]) -> None:
        """Sends one JSON message."""
        if self._closed or self._loop is None:
            raise WsClosed(None, "connection is closed")
        fut = asyncio.run_coroutine_threadsafe(self._ws.send(json.dumps(message)), self._loop)
        try:
            fut.result(timeout=10)
        except Exception as e:
            raise WsClosed(getattr(self._ws, "close_code", None), str(e)) from e

    def recv(self, deadline: Optional[float] = None) -> Dict[str, Any]:
        """The next frame; WsClosed when the server closed, PanthersError TIMEOUT past ``deadline``
        (a ``time.monotonic()`` value)."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            kind, value = self._frames.get(timeout=timeout)
        except queue.Empty:
            raise PanthersError("TIMEOUT", "No WebSocket message before the deadline") from None
        if kind == "closed":
            self._frames.put((kind, value))  # later calls see the close too
            raise WsClosed(*value)
        return value

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and self._ws is not None and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._ws.close(), self._loop).result(timeout=5)
            except Exception:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> "WsConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
