"""Reading what each pipeline stage holds for one window of Kafka offsets: Kafka, the lake and the API.

A window is bounded by log ends taken before and after the data flowed, so every comparison is scoped
to the messages the run produced, never to table totals that other writers also move. tansu's ListOffsets
"latest" is wrong, so log ends come from what a fetch reports as its high watermark.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow as pa
from aiokafka import TopicPartition
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, And, In
from pyiceberg.table import Table

from k2tui.consume.writer import committed_offsets, snapshot_offsets
from k2tui.ingest.topics import TOPICS
from k2tui.lake.filters import TradeFilter
from k2tui.model.trade import TradeV2
from k2tui.model.validation import validate
from k2tui.model.wire import AvroDecoder, WireFormatError
from k2tui.stack.registry.client import RegistryClient
from k2tui.validate.offsets import FETCH_WAIT_MS, group_less_reader, group_offsets

READ_TIMEOUT = 60.0
POLL_S = 0.25
API_TIMEOUT = 30.0
ID_CHUNK = 5000
"""Message ids per lake scan: an In() filter of this size is evaluated quickly by pyiceberg."""


@dataclass(frozen=True)
class KafkaMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    trade: TradeV2 | None
    """The decoded trade, None when it did not decode or broke a v2 rule."""
    problem: str | None
    """Why the message is not a good v2 trade, in a sentence a person can act on."""

    @property
    def position(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class _Checker:
    """Decodes with the registered schema and holds each message to the v2 rules and the topic layout."""

    def __init__(self, registry_url: str) -> None:
        self.registry = RegistryClient(registry_url)
        self.decoder = AvroDecoder(self.registry)
        self.topics = {topic: exchange for exchange, topic in TOPICS.items()}

    async def check(self, tp: TopicPartition, offset: int, key: bytes | None, raw: bytes) -> KafkaMessage:
        def message(trade: TradeV2 | None, problem: str | None) -> KafkaMessage:
            return KafkaMessage(tp.topic, tp.partition, offset, key, raw, trade, problem)

        try:
            if self.decoder.knows(raw):
                decoded = self.decoder.decode(raw)
            else:
                decoded = await asyncio.to_thread(self.decoder.decode, raw)
        except WireFormatError as error:
            return message(None, f"does not decode ({error.kind.value}): {error.reason}")
        violations = validate(decoded.datum)
        if violations:
            return message(None, "breaks the v2 rules: " + "; ".join(str(v) for v in violations))
        trade = TradeV2.from_avro(decoded.datum)
        expected = self.topics.get(tp.topic)
        if expected is not None and trade.exchange is not expected:
            return message(trade, f"a {trade.exchange.value} trade on the {expected.value} topic {tp.topic}")
        if key != trade.symbol.encode():
            shown = key.decode(errors="replace") if key is not None else "no key"
            return message(trade, f"keyed {shown!r}, not by its symbol {trade.symbol!r}")
        return message(trade, None)


async def read_kafka(
    bootstrap: str,
    registry_url: str,
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    *,
    within: float = READ_TIMEOUT,
) -> list[KafkaMessage]:
    """Every message in [start, end) of each partition, decoded and checked, in offset order per partition."""
    wanted = {tp: (starts.get(tp, 0), end) for tp, end in ends.items() if end > starts.get(tp, 0)}
    if not wanted:
        return []
    checker = _Checker(registry_url)
    consumer = group_less_reader(bootstrap)
    found: list[KafkaMessage] = []
    try:
        await consumer.start()
        consumer.assign(list(wanted))
        for tp, (start, _) in wanted.items():
            consumer.seek(tp, start)
        deadline = time.monotonic() + within
        left = dict(wanted)
        while left:
            if time.monotonic() > deadline:
                behind = ", ".join(
                    f"{tp.topic}[{tp.partition}] before {s}..{e}" for tp, (s, e) in left.items()
                )
                raise TimeoutError(f"could not read the window from Kafka within {within:g} s: {behind}")
            polled = await consumer.getmany(timeout_ms=FETCH_WAIT_MS)
            for tp, records in polled.items():
                if tp not in left:
                    continue
                end = left[tp][1]
                for record in records:
                    if record.offset < end:
                        found.append(await checker.check(tp, record.offset, record.key, record.value or b""))
                if (await consumer.position(tp)) >= end:
                    del left[tp]
                    consumer.pause(tp)
    finally:
        await consumer.stop()
        checker.registry.close()
    return found


async def wait_written(
    table: Table,
    group: str,
    ends: Mapping[TopicPartition, int],
    timeout: float,  # noqa: ASYNC109 - a deadline over many polls, each a short call of its own
    on_progress: Callable[[str, float], None] | None = None,
    *,
    bootstrap: str | None = None,
) -> dict[TopicPartition, int]:
    """Wait until the lake's recorded offsets for `group` reach `ends`; returns what was recorded.

    With `bootstrap`, a partition also counts as written once the group's Kafka commit reaches its end:
    the consumer commits there after every append, and alone after a batch of only dead letters or
    duplicates, which moves no lake offset. TimeoutError names the partitions still behind and by how much.
    """
    due = {tp: end for tp, end in ends.items() if end > 0}
    deadline = time.monotonic() + timeout
    first_behind: int | None = None
    while True:
        recorded = await asyncio.to_thread(_recorded, table, group)
        reached = {tp: recorded.get((tp.topic, tp.partition), 0) for tp in due}
        behind = {tp: end - reached[tp] for tp, end in due.items() if reached[tp] < end}
        if behind and bootstrap is not None:
            kafka = await group_offsets(bootstrap, group, list(behind))
            behind = {tp: gap for tp, gap in behind.items() if kafka.get(tp, -1) < due[tp]}
        if not behind:
            return {TopicPartition(*tp): offset for tp, offset in reached.items()}
        if on_progress is not None:
            left = sum(behind.values())
            first_behind = first_behind or left
            on_progress(f"{left} messages still to be written", 1 - left / first_behind)
        if time.monotonic() > deadline:
            described = ", ".join(
                f"{tp.topic}[{tp.partition}] at {reached[tp]}, {gap} short of {due[tp]}"
                for tp, gap in sorted(behind.items())
            )
            raise TimeoutError(
                f"the lake did not record group {group}'s offsets within {timeout:g} s: {described}"
            )
        await asyncio.sleep(POLL_S)


def _recorded(table: Table, group: str) -> dict[tuple[str, int], int]:
    table.refresh()
    return committed_offsets(table, group)


def commit_times(
    table: Table, group: str, positions: Iterable[tuple[str, int, int]]
) -> dict[tuple[str, int, int], int | None]:
    """When (ms since the epoch) the lake committed each (topic, partition, offset) for `group`.

    That is the time of the first snapshot whose recorded offset for the partition is past the message;
    None where no snapshot still held is (expired history makes a time late, never early).
    """
    table.refresh()
    marks: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for snapshot in sorted(table.snapshots(), key=lambda s: s.timestamp_ms):
        for tp, offset in snapshot_offsets(snapshot, group).items():
            marks[tp].append((offset, snapshot.timestamp_ms))
    recorded = {tp: [offset for offset, _ in history] for tp, history in marks.items()}
    found: dict[tuple[str, int, int], int | None] = {}
    for topic, partition, offset in positions:
        history = marks.get((topic, partition), [])
        index = bisect_right(recorded.get((topic, partition), []), offset)
        found[(topic, partition, offset)] = history[index][1] if index < len(history) else None
    return found


def lake_rows(
    table: Table,
    message_ids: Collection[str],
    columns: Sequence[str] = ("*",),
    *,
    between: tuple[int, int] | None = None,
) -> pa.Table:
    """The rows whose message id is one of `message_ids` (the table is refreshed first).

    `between` (trade times in µs, end exclusive) lets the scan skip every file outside the window by its
    statistics; without it each id is looked for in the whole table.
    """
    table.refresh()
    ids = sorted(set(message_ids))
    window = TradeFilter(start=between[0], end=between[1]).expression() if between else AlwaysTrue()
    chunks = [ids[i : i + ID_CHUNK] for i in range(0, len(ids), ID_CHUNK)]
    filters = [And(window, In("message_id", chunk)) for chunk in chunks] or [AlwaysFalse()]
    return pa.concat_tables(
        table.scan(row_filter=f, selected_fields=tuple(columns)).to_arrow() for f in filters
    )


def lake_ids(
    table: Table, message_ids: Collection[str], *, between: tuple[int, int] | None = None
) -> Counter[str]:
    """How many rows of the lake hold each of `message_ids` (absent ids are simply not counted)."""
    rows = lake_rows(table, message_ids, ("message_id",), between=between)
    return Counter(rows.column("message_id").to_pylist())


class ApiError(RuntimeError):
    """The API did not answer as documented; the message says what it answered."""


async def api_trades(
    api_url: str, start_us: int, end_us: int, *, limit: int = 1000, request_timeout: float = API_TIMEOUT
) -> list[dict[str, Any]]:
    """Every trade the API returns with trade time in [start_us, end_us), latest first.

    A full page may hide more trades of its boundary time, so a full page is not continued from its last
    row: its window is halved and each half asked for again (the later half first, keeping the order).
    """
    async with httpx.AsyncClient(base_url=api_url, timeout=request_timeout) as client:

        async def window(start: int, end: int) -> list[dict[str, Any]]:
            page = await _page(client, start, end, limit)
            if len(page) < limit:
                return page
            if end - start <= 1:
                raise ApiError(f"more than {limit} trades at the single microsecond {start}; raise the limit")
            middle = (start + end) // 2
            return await window(middle, end) + await window(start, middle)

        return await window(start_us, end_us)


async def _page(client: httpx.AsyncClient, start: int, end: int, limit: int) -> list[dict[str, Any]]:
    params = {"start": start, "end": end, "limit": limit, "order": "desc", "order_by": "timestamp"}
    try:
        response = await client.get("/v1/trades", params=params)
    except httpx.HTTPError as error:
        raise ApiError(
            f"the API at {client.base_url} cannot be reached: {type(error).__name__}: {error}"
        ) from error
    if response.status_code != 200:
        raise ApiError(f"GET /v1/trades answered HTTP {response.status_code}: {response.text[:300]}")
    data = response.json().get("data")
    if not isinstance(data, list):
        raise ApiError(f"GET /v1/trades answered without a data list: {response.text[:300]}")
    return data
