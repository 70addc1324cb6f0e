"""The dead-letter queue: every input the pipeline refused, with its original bytes and the reason.

One JSON document a line in ``<dir>/<source>-<UTC date>.jsonl`` (the directory is ``dlq.directory``,
by default ``<home>/dlq``). Each entry has a stable id, the original bytes as base64 (and as text too
when they are UTF-8, for grep and jq), what could be decoded, the Kafka coordinates when it came from
Kafka, the error type and sentence, and when it failed. ``decoded`` may hold Decimal, datetime, UUID
and bytes: they are written as exact text, ISO 8601 and base64, never through a float.

The files hold market data a user may not want to share, so they are created mode 0600 in a 0700
directory whatever the umask. Each entry is one ``write`` to a file opened with ``O_APPEND``, so
threads and processes appending at once never interleave their lines.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from k2tui.config import Settings

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
REPLAYS = "replayed"
"""Subdirectory holding the replay log, apart from the ``*.jsonl`` entries the seed's `cat` reads."""
_MIN_ID_PREFIX = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dlq_dir(settings: Settings) -> Path:
    """The DLQ directory: the ``dlq.directory`` setting, or ``<home>/dlq`` when it is empty."""
    configured = settings.dlq.directory
    return Path(configured).expanduser() if configured else settings.home / "dlq"


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One refused message as stored. ``reason`` is written as ``error``, the field the seed's jq reads."""

    id: str
    failed_at: datetime
    source: str
    error_type: str = ""
    reason: str = msgspec.field(name="error")
    raw_base64: str
    raw_text: str | None = None
    """The same bytes as text, present only when they are valid UTF-8."""
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key_base64: str | None = None
    kafka_time: datetime | None = None
    trade_time: datetime | None = None
    decoded: Any = None
    context: dict[str, Any] = {}

    def raw_bytes(self) -> bytes:
        return base64.b64decode(self.raw_base64)

    def key_bytes(self) -> bytes | None:
        return None if self.key_base64 is None else base64.b64decode(self.key_base64)

    @property
    def position(self) -> str:
        """Where it came from, in one short phrase: ``topic[partition]@offset``, or its exchange."""
        if self.topic is not None and self.offset is not None:
            return f"{self.topic}[{self.partition}]@{self.offset}"
        return str(self.topic or self.context.get("exchange") or "")


class Landing(msgspec.Struct, frozen=True):
    """Where Kafka stored one replayed record."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class ReplayRecord(msgspec.Struct, frozen=True, kw_only=True):
    """That a dead letter was published to Kafka again, and where its records landed."""

    id: str
    replayed_at: datetime
    landed: list[Landing]


@dataclass(frozen=True)
class UnreadableLine:
    """A line of a DLQ file that is not an entry (a torn write, a hand edit, an older format)."""

    path: Path
    line: int
    error: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.error}"


class DeadLetterError(Exception):
    """A DLQ request that cannot be met; the message is one sentence a user can act on."""


_ENCODER = msgspec.json.Encoder(enc_hook=lambda value: f"{type(value).__name__}: {value!r}")
_LETTER_DECODER = msgspec.json.Decoder(DeadLetter)
_REPLAY_DECODER = msgspec.json.Decoder(ReplayRecord)


@dataclass
class DeadLetterQueue:
    """Where one source (``consumer``, ``producer``, ``stream-<exchange>``) puts what it refuses."""

    directory: Path
    source: str
    written: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def path_for(self, when: datetime) -> Path:
        return self.directory / f"{self.source}-{when:%Y%m%d}.jsonl"

    def put(
        self,
        reason: str,
        raw: str | bytes,
        *,
        error_type: str = "",
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
        kafka_timestamp_ms: int | None = None,
        trade_time_us: int | None = None,
        decoded: Any = None,
        **context: Any,
    ) -> DeadLetter:
        """Append one entry and return it. Never raises for what ``decoded`` or ``context`` hold."""
        now = datetime.now(UTC)
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        letter = DeadLetter(
            id=_letter_id(data, topic, partition, offset),
            failed_at=now,
            source=self.source,
            error_type=error_type,
            reason=reason,
            raw_base64=base64.b64encode(data).decode(),
            raw_text=_utf8(data),
            topic=topic,
            partition=partition,
            offset=offset,
            key_base64=None if key is None else base64.b64encode(key).decode(),
            kafka_time=_moment(kafka_timestamp_ms, 1_000),
            trade_time=_moment(trade_time_us, 1_000_000),
            decoded=decoded,
            context=context,
        )
        line = _encode_line(letter)
        with self._lock:
            append_line(self.path_for(now), line)
            self.written += 1
        return letter


def _letter_id(data: bytes, topic: str | None, partition: int | None, offset: int | None) -> str:
    """16 hex digits. A Kafka message keeps its id when the consumer refuses it again after a restart,
    so it is listed and replayed once; anything else gets a random one."""
    if topic is None or offset is None:
        return secrets.token_hex(8)
    digest = hashlib.blake2b(f"{topic}\0{partition}\0{offset}\0".encode(), digest_size=8)
    digest.update(data)
    return digest.hexdigest()


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _moment(value: int | None, per_second: int) -> datetime | None:
    """An epoch count as a UTC time, or None when it is missing or not a plausible time (Kafka says -1
    for a record without a timestamp)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return None
    try:
        return _EPOCH + timedelta(microseconds=value * 1_000_000 // per_second)
    except OverflowError:
        return None


def _encode_line(letter: DeadLetter) -> bytes:
    """The entry as one JSON line. Values JSON has no form for are written as text; a structure that
    cannot be written at all (circular, or failing on the way) becomes its repr, so the entry is kept."""
    try:
        return _ENCODER.encode(letter) + b"\n"
    except (TypeError, ValueError, RecursionError):
        safe = msgspec.structs.replace(
            letter,
            decoded=None if letter.decoded is None else _repr(letter.decoded),
            context={str(k): _repr(v) for k, v in letter.context.items()},
        )
        return _ENCODER.encode(safe) + b"\n"


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as error:
        return f"<{type(value).__name__}: {type(error).__name__} while showing it>"


def append_line(path: Path, line: bytes) -> None:
    """Append `line` with one O_APPEND write, creating the file 0600 (and its directory 0700)."""
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:  # a file made by hand, or before this rule
            os.fchmod(fd, FILE_MODE)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def read_dead_letters(
    directory: Path,
    source: str | None = None,
    *,
    on_unreadable: Callable[[UnreadableLine], None] | None = None,
) -> Iterator[DeadLetter]:
    """Every entry in the DLQ directory (optionally of one source), oldest file first.

    A line that is not an entry is passed to `on_unreadable` and skipped, so one torn line never hides
    the rest of the queue.
    """
    pattern = f"{source}-*.jsonl" if source else "*.jsonl"
    for path in sorted(directory.glob(pattern)):
        with path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    letter = _LETTER_DECODER.decode(line)
                except msgspec.DecodeError as error:
                    if on_unreadable is not None:
                        on_unreadable(UnreadableLine(path, number, str(error)))
                    continue
                if source is None or letter.source == source:
                    yield letter


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which entries a `dlq` verb acts on; every criterion given must hold."""

    source: str | None = None
    """A source name (``consumer``, ``producer``, ``stream-binance``), or a family (``stream``)."""
    reason: str | None = None
    """Text in the error type or the error sentence, any case."""
    text: str | None = None
    """Text anywhere in the id, source, topic, error type or error sentence, any case."""

    def matches(self, letter: DeadLetter) -> bool:
        if self.source and letter.source != self.source and not letter.source.startswith(self.source + "-"):
            return False
        if self.reason and self.reason.lower() not in f"{letter.error_type}\n{letter.reason}".lower():
            return False
        if self.text:
            fields = (letter.id, letter.source, letter.position, letter.error_type, letter.reason)
            return self.text.lower() in "\n".join(fields).lower()
        return True


def collect_dead_letters(
    directory: Path,
    wanted: DeadLetterFilter | None = None,
    *,
    on_unreadable: Callable[[UnreadableLine], None] | None = None,
) -> list[DeadLetter]:
    """The matching entries, oldest first, each id once (a Kafka message refused twice is one entry)."""
    seen: set[str] = set()
    letters = []
    for letter in read_dead_letters(directory, on_unreadable=on_unreadable):
        if letter.id not in seen and (wanted is None or wanted.matches(letter)):
            seen.add(letter.id)
            letters.append(letter)
    letters.sort(key=lambda letter: letter.failed_at)
    return letters


def find_dead_letter(letters: Iterable[DeadLetter], wanted: str, directory: Path) -> DeadLetter:
    """The entry whose id is `wanted` or starts with it (like git's short hashes)."""
    prefix = wanted.strip().lower()
    if len(prefix) < _MIN_ID_PREFIX:
        raise DeadLetterError(f"give at least {_MIN_ID_PREFIX} characters of the id, not {wanted!r}")
    found = [letter for letter in letters if letter.id.startswith(prefix)]
    if not found:
        raise DeadLetterError(
            f"no dead letter in {directory} has the id {wanted}; `k2tui dlq list` shows the ids"
        )
    if len(found) > 1 and not any(letter.id == prefix for letter in found):
        shown = ", ".join(letter.id for letter in found[:5])
        raise DeadLetterError(f"the id {wanted} matches {len(found)} dead letters ({shown}); give more of it")
    return next((letter for letter in found if letter.id == prefix), found[0])


def replay_log(directory: Path) -> Path:
    return directory / REPLAYS / "replays.jsonl"


def read_replays(directory: Path) -> dict[str, list[ReplayRecord]]:
    """Every replay recorded, by dead-letter id, oldest first; unreadable lines are skipped."""
    records: dict[str, list[ReplayRecord]] = {}
    path = replay_log(directory)
    if not path.exists():
        return records
    with path.open("rb") as lines:
        for line in lines:
            with contextlib.suppress(msgspec.DecodeError):
                record = _REPLAY_DECODER.decode(line)
                records.setdefault(record.id, []).append(record)
    return records


def record_replay(directory: Path, record: ReplayRecord) -> None:
    append_line(replay_log(directory), _ENCODER.encode(record) + b"\n")


@contextlib.contextmanager
def replay_lock(directory: Path) -> Iterator[None]:
    """Held while replaying, so two replays at once cannot both publish the same entry."""
    path = directory / REPLAYS / ".lock"
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeadLetterError(
                f"another `k2tui dlq replay` is running on {directory}; wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


def letter_facts(letter: DeadLetter, replays: Iterable[ReplayRecord] = ()) -> dict[str, str]:
    """What `k2tui dlq show` and the cockpit's entry view list about an entry, name → value, the empty
    ones left out: the error, where it came from, its times, its context and its replays."""
    key = letter.key_bytes()
    facts = {
        "id": letter.id,
        "source": letter.source,
        "failed at": f"{letter.failed_at:%Y-%m-%d %H:%M:%S.%f} UTC",
        "error type": letter.error_type,
        "error": letter.reason,
        "from": letter.position,
        "key": None if key is None else key.decode(errors="backslashreplace"),
        "Kafka time": None if letter.kafka_time is None else f"{letter.kafka_time:%Y-%m-%d %H:%M:%S.%f} UTC",
        "trade time": None if letter.trade_time is None else f"{letter.trade_time:%Y-%m-%d %H:%M:%S.%f} UTC",
        **{name: str(value) for name, value in letter.context.items()},
        "replayed": "; ".join(
            f"{r.replayed_at:%Y-%m-%d %H:%M:%S} UTC → {', '.join(map(str, r.landed))}" for r in replays
        ),
    }
    return {name: value for name, value in facts.items() if value}


def describe_decoded(letter: DeadLetter) -> str | None:
    """The fields that decoded, as indented JSON; None when nothing decoded."""
    if letter.decoded is None:
        return None
    return json.dumps(letter.decoded, indent=2, ensure_ascii=False)


def describe_payload(raw: bytes) -> str:
    """The payload for a person: JSON pretty-printed, other text as is, anything else as a hex dump
    (with the Confluent header named when it has one)."""
    if not raw:
        return "(empty)"
    text = _utf8(raw)
    if text is not None:
        try:
            return msgspec.json.format(text, indent=2)  # numbers kept as written, never through a float
        except msgspec.DecodeError:
            if all(c.isprintable() or c in "\n\r\t" for c in text):
                return text
    header = ""
    if len(raw) >= 5 and raw[0] == 0:
        header = f"Confluent wire format: magic byte 0, schema id {int.from_bytes(raw[1:5], 'big')}\n"
    return header + hexdump(raw)


def hexdump(raw: bytes, width: int = 16) -> str:
    """``offset  hex bytes  |ascii|`` lines, as ``hexdump -C`` prints them."""
    lines = []
    for start in range(0, len(raw), width):
        chunk = raw[start : start + width]
        hex_part = " ".join(f"{b:02x}" for b in chunk)
        ascii_part = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08x}  {hex_part:<{width * 3 - 1}}  |{ascii_part}|")
    return "\n".join(lines)
