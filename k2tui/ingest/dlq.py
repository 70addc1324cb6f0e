"""The dead-letter queue: every input the pipeline refused, with its original bytes and the reason.

One JSON document a line in ``<dir>/<source>-<UTC date>.jsonl``. Text that is valid UTF-8 is kept as
text (readable with grep and jq); anything else is kept as base64, so nothing is ever lost or mangled.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    time: str
    source: str
    reason: str
    raw_text: str | None = None
    raw_base64: str | None = None
    context: dict[str, Any] = {}

    def raw_bytes(self) -> bytes:
        if self.raw_text is not None:
            return self.raw_text.encode()
        return base64.b64decode(self.raw_base64 or "")


@dataclass
class DeadLetterQueue:
    directory: Path
    source: str
    written: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def path_for(self, when: float) -> Path:
        return self.directory / f"{self.source}-{time.strftime('%Y%m%d', time.gmtime(when))}.jsonl"

    def put(self, reason: str, raw: str | bytes, **context: Any) -> DeadLetter:
        now = time.time()
        letter = DeadLetter(
            time=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z",
            source=self.source,
            reason=reason,
            context=context,
            **_raw_fields(raw),
        )
        line = msgspec.json.encode(letter) + b"\n"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self.path_for(now).open("ab") as out:
                out.write(line)
            self.written += 1
        return letter


def _raw_fields(raw: str | bytes) -> dict[str, str]:
    if isinstance(raw, str):
        return {"raw_text": raw}
    try:
        return {"raw_text": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode()}


def read_dead_letters(directory: Path, source: str | None = None) -> Iterator[DeadLetter]:
    """Every entry in the DLQ directory (optionally of one source), oldest file first."""
    decoder = msgspec.json.Decoder(DeadLetter)
    pattern = f"{source}-*.jsonl" if source else "*.jsonl"
    for path in sorted(directory.glob(pattern)):
        with path.open("rb") as lines:
            for line in lines:
                if line.strip():
                    yield decoder.decode(line)
