"""Replaying dead letters: publish again, once, what would now go through.

Every entry is checked again with today's registry and code before anything is sent:
- a Kafka message the consumer refused (Confluent Avro) must now decode through the registry and meet
  the v2 rules; its original bytes go back to its topic and partition unchanged;
- an exchange message a stream refused is normalised again by the current protocol code; when every
  trade in it passes now, the trades are produced as the streams produce them (Avro, keyed by symbol);
- a trade the producer could not hand to Kafka is produced as it is.

What would fail again is skipped with the reason. When Kafka has acknowledged an entry, where it landed
is appended to the replay log, and later replays skip it unless forced. A crash between the
acknowledgement and that record can publish an entry twice; the copies share their message_id, which
the consumer de-duplicates on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from k2tui.ingest.binance import BinanceProtocol
from k2tui.ingest.client import ExchangeProtocol
from k2tui.ingest.dlq import (
    DeadLetter,
    DeadLetterError,
    Landing,
    ReplayRecord,
    read_replays,
    record_replay,
    replay_lock,
)
from k2tui.ingest.kraken import KrakenV1Protocol, KrakenV2Protocol
from k2tui.ingest.producer import ensure_topics, subject_for
from k2tui.ingest.topics import TOPICS
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import TradeV2
from k2tui.model.validation import validate
from k2tui.model.wire import AvroDecoder, AvroEncoder, WireFormatError
from k2tui.stack.registry.client import RegistryClient, RegistryRequestError, RegistryUnavailableError

CHUNK = 500
"""Entries in flight at once: one round trip per chunk rather than per entry."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class ReplayStatus(StrEnum):
    READY = "ready"
    """Would be replayed; a dry run stops here."""
    REPLAYED = "replayed"
    SKIPPED = "skipped"
    """Would be refused again, or has nothing to replay it with."""
    DONE_BEFORE = "already replayed"
    FAILED = "failed"
    """Kafka did not take it."""


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    value: bytes
    key: bytes | None
    partition: int | None
    """The original partition of a Kafka message; None lets the key choose, as the streams do."""


@dataclass(frozen=True)
class ReplayOutcome:
    letter: DeadLetter
    status: ReplayStatus
    detail: str
    records: tuple[OutgoingRecord, ...] = ()


class _StillFails(Exception):
    """The entry would be refused again; the message says why."""


async def replay_dead_letters(
    directory: Path,
    letters: Sequence[DeadLetter],
    *,
    bootstrap: str,
    registry_url: str,
    partitions: int,
    dry_run: bool = False,
    force: bool = False,
) -> list[ReplayOutcome]:
    """Check each entry again and publish those that pass; `partitions` is for topics created here.

    Raises DeadLetterError when the registry or Kafka cannot be reached, or another replay is running.
    """
    with contextlib.ExitStack() as held:
        if not dry_run:
            held.enter_context(replay_lock(directory))
        planned = await asyncio.to_thread(
            plan_replay, letters, read_replays(directory), registry_url, force=force
        )
        ready = [o for o in planned if o.status is ReplayStatus.READY]
        if dry_run or not ready:
            return planned
        published = {o.letter.id: o for o in await _publish(ready, directory, bootstrap, partitions)}
        return [published.get(o.letter.id, o) for o in planned]


def plan_replay(
    letters: Sequence[DeadLetter],
    replays: Mapping[str, list[ReplayRecord]],
    registry_url: str,
    *,
    force: bool = False,
) -> list[ReplayOutcome]:
    """What each entry would become now: records ready to send, or the reason it is left alone."""
    outcomes = []
    with RegistryClient(registry_url) as registry:
        rebuild = _Rebuilder(registry)
        for letter in letters:
            earlier = replays.get(letter.id)
            if earlier and not force:
                last = earlier[-1]
                where = ", ".join(str(landing) for landing in last.landed)
                when = f"{last.replayed_at:%Y-%m-%d %H:%M:%S} UTC"
                detail = f"replayed at {when} to {where}; --force sends it again"
                outcomes.append(ReplayOutcome(letter, ReplayStatus.DONE_BEFORE, detail))
                continue
            try:
                records = rebuild(letter)
            except _StillFails as why:
                outcomes.append(ReplayOutcome(letter, ReplayStatus.SKIPPED, str(why)))
                continue
            except RegistryUnavailableError as error:
                raise DeadLetterError(f"{error}; start the stack with `k2tui up` and replay again") from error
            except RegistryRequestError as error:
                raise DeadLetterError(f"the Schema Registry at {registry_url} refused: {error}") from error
            where = ", ".join(sorted({_target(r) for r in records}))
            outcomes.append(ReplayOutcome(letter, ReplayStatus.READY, f"→ {where}", records))
    return outcomes


def _target(record: OutgoingRecord) -> str:
    return record.topic if record.partition is None else f"{record.topic}[{record.partition}]"


class _Rebuilder:
    """Turns an entry into the Kafka records it stands for, checking them as the pipeline would."""

    def __init__(self, registry: RegistryClient) -> None:
        self._registry = registry
        self._decoder = AvroDecoder(registry)
        self._encoders: dict[str, AvroEncoder] = {}

    def __call__(self, letter: DeadLetter) -> tuple[OutgoingRecord, ...]:
        if letter.topic is not None and letter.offset is not None:
            return (self._kafka_message(letter, letter.topic),)
        if "exchange" in letter.context:
            return self._exchange_message(letter)
        if letter.topic is not None:
            return (self._unsent_trade(letter),)
        raise _StillFails("it has no Kafka topic and no exchange, so there is nowhere to replay it")

    def _kafka_message(self, letter: DeadLetter, topic: str) -> OutgoingRecord:
        raw = letter.raw_bytes()
        try:
            datum = self._decoder.decode(raw).datum
        except WireFormatError as error:
            raise _StillFails(f"still refused: {error.kind.value}: {error.reason}") from None
        violations = validate(datum)
        if violations:
            raise _StillFails("still breaks the v2 rules: " + "; ".join(str(v) for v in violations))
        key = letter.key_bytes()
        if key is None and isinstance(datum.get("symbol"), str):
            key = datum["symbol"].encode()  # the streams key by symbol; older entries kept no key
        return OutgoingRecord(topic, raw, key, letter.partition)

    def _exchange_message(self, letter: DeadLetter) -> tuple[OutgoingRecord, ...]:
        protocol = _protocol_for(str(letter.context["exchange"]), str(letter.context.get("url", "")))
        received_us = (letter.failed_at - _EPOCH) // _MICROSECOND
        parsed = protocol.parse(letter.raw_bytes().decode("utf-8", errors="replace"), received_us)
        if parsed.rejections:
            more = f" (and {len(parsed.rejections) - 1} more)" if len(parsed.rejections) > 1 else ""
            raise _StillFails(f"still refused: {parsed.rejections[0].reason}{more}")
        if not parsed.trades:
            raise _StillFails("it holds no trades now (a control message), so there is nothing to publish")
        return tuple(self._trade_record(trade) for trade in parsed.trades)

    def _unsent_trade(self, letter: DeadLetter) -> OutgoingRecord:
        try:
            trade = msgspec.json.decode(letter.raw_bytes(), type=TradeV2)
        except msgspec.DecodeError as error:
            raise _StillFails(f"it is not a v2 trade in JSON: {error}") from None
        return self._trade_record(trade)

    def _trade_record(self, trade: TradeV2) -> OutgoingRecord:
        violations = validate(trade)
        if violations:
            raise _StillFails(
                f"trade {trade.trade_id} breaks the v2 rules: " + "; ".join(str(v) for v in violations)
            )
        topic = TOPICS[trade.exchange]
        encoder = self._encoders.get(topic)
        if encoder is None:
            schema_id = self._registry.register(subject_for(topic), trade_v2_schema_text())
            encoder = self._encoders[topic] = AvroEncoder(schema_id, trade_v2_schema())
        return OutgoingRecord(topic, encoder.encode(trade.to_avro()), trade.symbol.encode(), None)


def _protocol_for(exchange: str, url: str) -> ExchangeProtocol:
    """The protocol the message arrived on, from the URL recorded with it (its shape depends on it)."""
    if exchange == "binance":
        base, combined, streams = url.partition("/stream?streams=")
        if not combined:
            base, _, streams = url.partition("/ws/")
        symbols = tuple(name.split("@")[0] for name in streams.split("/") if name)
        if not symbols:
            raise _StillFails(f"the Binance URL it came from ({url!r}) names no stream to read it as")
        return BinanceProtocol(base, symbols)
    if exchange == "kraken":
        if url.rstrip("/").endswith("/v2"):
            return KrakenV2Protocol(url.rstrip("/").removesuffix("/v2"), ())
        return KrakenV1Protocol(url, ())
    raise _StillFails(f"k2tui has no protocol for the exchange {exchange!r}")


async def _publish(
    ready: Sequence[ReplayOutcome], directory: Path, bootstrap: str, partitions: int
) -> list[ReplayOutcome]:
    """Send every ready entry; record each one Kafka acknowledged whole."""
    topics = {record.topic for outcome in ready for record in outcome.records}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,  # tansu has no InitProducerId; the replay log prevents repeats
        request_timeout_ms=10_000,
    )
    done: list[ReplayOutcome] = []
    try:
        try:
            await ensure_topics(bootstrap, topics, partitions)
            await producer.start()
        except (KafkaError, OSError) as error:
            raise DeadLetterError(
                f"Kafka at {bootstrap} is not reachable ({type(error).__name__}: {error}); "
                "start the stack with `k2tui up` and replay again"
            ) from error
        for start in range(0, len(ready), CHUNK):
            chunk = ready[start : start + CHUNK]
            in_flight = [await _enqueue(producer, outcome) for outcome in chunk]
            for outcome, futures in zip(chunk, in_flight, strict=True):
                done.append(await _settle(outcome, futures, directory))
    finally:
        await producer.stop()
    return done


async def _enqueue(producer: AIOKafkaProducer, outcome: ReplayOutcome) -> list[asyncio.Future] | KafkaError:
    futures = []
    for record in outcome.records:
        try:
            futures.append(
                await producer.send(record.topic, record.value, key=record.key, partition=record.partition)
            )
        except KafkaError as error:  # too large, unknown partition: refused before sending
            return error
    return futures


async def _settle(
    outcome: ReplayOutcome, futures: list[asyncio.Future] | KafkaError, directory: Path
) -> ReplayOutcome:
    try:
        if isinstance(futures, KafkaError):
            raise futures
        acknowledged = await asyncio.gather(*futures)
    except KafkaError as error:
        detail = f"Kafka did not take it: {type(error).__name__}: {error}".rstrip(": ")
        return replace(outcome, status=ReplayStatus.FAILED, detail=detail)
    landed = [Landing(meta.topic, meta.partition, meta.offset) for meta in acknowledged]
    record_replay(directory, ReplayRecord(id=outcome.letter.id, replayed_at=datetime.now(UTC), landed=landed))
    return replace(outcome, status=ReplayStatus.REPLAYED, detail="→ " + ", ".join(map(str, landed)))
