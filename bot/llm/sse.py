"""An incremental Server-Sent Events decoder (``docs/m2her-api.md`` §5.1).

It is fed raw bytes exactly as they come off the socket and returns the ``data``
payload of every event completed so far. It follows the SSE rules that matter for
M2-her and is liberal everywhere else:

* a read may end anywhere, even inside a UTF-8 character or between ``\\r`` and ``\\n``;
* lines end in ``\\r\\n``, ``\\n`` or ``\\r``;
* blank lines dispatch an event, ``:`` lines are comments, fields other than ``data``
  (``event``, ``id``, ``retry``) are ignored;
* a final event that is not followed by a blank line is still delivered by :meth:`close`.
"""

from __future__ import annotations

import codecs


class SSEDecoder:
    """Turn a byte stream into the ``data`` payloads of its events."""

    __slots__ = ("_buffer", "_data", "_decoder")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Consume ``chunk`` and return the payloads of the events it completed."""
        text = self._buffer + self._decoder.decode(chunk)
        # A trailing "\r" may be the first half of "\r\n": keep it for the next read.
        held = ""
        if text.endswith("\r"):
            text, held = text[:-1], "\r"
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        *lines, rest = text.split("\n")
        self._buffer = rest + held
        return self._lines(lines)

    def close(self) -> list[str]:
        """End of stream: flush the last line and any event left without a blank line."""
        tail = self._buffer + self._decoder.decode(b"", final=True)
        self._buffer = ""
        lines = tail.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        events = self._lines(lines)
        if self._data:
            events.append("\n".join(self._data))
            self._data = []
        return events

    def _lines(self, lines: list[str]) -> list[str]:
        events: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append("\n".join(data))
                    data.clear()
            elif line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
            # Comments (":") and other fields carry nothing M2-her uses.
        return events
