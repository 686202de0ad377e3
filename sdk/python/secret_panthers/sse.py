"""A minimal text/event-stream reader over a file-like HTTP response (standard library only)."""

from __future__ import annotations

from typing import BinaryIO, Iterator


def iter_sse_data(stream: BinaryIO) -> Iterator[str]:
    """Yields the ``data`` of each event; comment lines (``:``) and other fields are skipped."""
    data: list[str] = []
    for raw in stream:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
    if data:
        yield "\n".join(data)
