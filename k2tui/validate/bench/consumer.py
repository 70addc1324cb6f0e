"""`k2tui bench consumer`: Kafka → Iceberg throughput of the real consumer, beside its decode ceiling.

On a throwaway stack, `messages` v2 trades are produced once into a bench topic (Confluent-framed Avro
with a registered schema id, keyed by symbol, one record batch per partition at a time). Then, on the
same messages: the ceiling — raw aiokafka consume plus the consumer's Avro decode, no Iceberg — in
this process, and the real consumer as `k2tui consume` subprocesses, so each one's peak RSS is its
own: (a) the seed's 500-row batches, (b) batching tuned for throughput. Each consumer run writes into
a fresh trades table (the seed's table name, dropped from the catalog before the run), so neither pays
for the other's snapshots, and must account for every message it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
from pyiceberg.exceptions import NoSuchTableError

from k2tui.config import Settings, resolve_settings, settings_as_env
from k2tui.consume.consumer import CHECK_CHUNK, FETCH_MAX_WAIT_MS
from k2tui.ingest.producer import ensure_topics, subject_for
from k2tui.lake.catalog import open_catalog
from k2tui.lake.table import TABLE_IDENTIFIER
from k2tui.model.blocks import V2BlockDecoder
from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.wire import HEADER_SIZE, AvroEncoder
from k2tui.stack.layout import StackLayout, throwaway_overrides
from k2tui.stack.process import service_env
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import FaultAction, LocalStack
from k2tui.validate.bench.result import BenchRow

TOPIC = "bench.crypto.trades"
SEED_BATCH = 500
SEED_FLUSH_INTERVAL = 1.0
SEED_TARGET = 5_000
TUNED_TARGET = 100_000
CEILING_SHARE_TARGET = 50.0
RSS_TARGET_MB = 300
COMMIT_P99_TARGET_MS = 500
RSS_SAMPLE_S = 0.1
UNMEASURED_SERVICES = ("consumer", "api")
"""Stopped once the stack is up (the consumer service is what creates the table the API's health needs):
their CPU and their hold on the trades table would blur the figures."""
PRODUCER_BATCH_BYTES = 512 * 1024
"""The producer's record batch size (what k2tui's own producer uses; tansu takes it)."""
IN_FLIGHT_BATCHES = 32


class BenchError(RuntimeError):
    """A run did not do what the figures would claim (a message lost, a consumer failed)."""


@dataclass(frozen=True)
class Preload:
    messages: int
    partitions: int
    schema_id: int
    encode_s: float
    produce_s: float


@dataclass(frozen=True)
class ConsumeRun:
    """Figures of one `k2tui consume` subprocess, from its statistics block and sampled from outside."""

    messages: int
    batch_size: int
    flush_interval: float
    sustained_rate: float
    commit_p50_ms: float
    commit_p99_ms: float
    snapshots: int
    peak_rss_mb: float


def run_consumer_bench(
    *, messages: int, seed_messages: int, batch_size: int, flush_interval: float
) -> list[BenchRow]:
    """Preload `messages`, then the ceiling, (a) over the first `seed_messages`, (b) over all of them."""
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        settings = resolve_settings(throwaway_overrides(Path(home)), env={}).settings
        stack = LocalStack(settings)
        try:
            stack.up()
            for service in UNMEASURED_SERVICES:
                stack.fault(service, FaultAction.STOP)
            preload = asyncio.run(preload_topic(stack.layout, TOPIC, messages))
            ceiling = asyncio.run(_ceiling(stack.layout, preload))
            seed = _consume(settings, min(seed_messages, messages), SEED_BATCH, SEED_FLUSH_INTERVAL)
            tuned = _consume(settings, messages, batch_size, flush_interval)
        finally:
            stack.down(purge=True)
    return _rows(preload, ceiling, seed, tuned)


def _rows(preload: Preload, ceiling: float, seed: ConsumeRun, tuned: ConsumeRun) -> list[BenchRow]:
    n = preload.messages
    rows = [
        BenchRow(
            f"preload: encode {n:,} v2 trades (Avro, schema id {preload.schema_id})",
            n / preload.encode_s,
            "msg/s",
        ),
        BenchRow(
            f"preload: produce to Kafka, {preload.partitions} partitions, acks=all",
            n / preload.produce_s,
            "msg/s",
            note=f"{n:,} in {preload.produce_s:.1f} s",
        ),
        BenchRow(f"ceiling: aiokafka consume + Avro decode, {n:,} msgs", ceiling, "msg/s", note="no Iceberg"),
    ]
    for label, run, target in (("(a) seed", seed, SEED_TARGET), ("(b) tuned", tuned, TUNED_TARGET)):
        batching = f"{run.batch_size:,} rows or {run.flush_interval:g} s"
        rows += [
            BenchRow(
                f"{label}, {batching}: Kafka → Iceberg, {run.messages:,} msgs",
                run.sustained_rate,
                "msg/s",
                target,
            ),
            BenchRow(f"{label}: commit p50", run.commit_p50_ms, "ms", note=f"{run.snapshots:,} snapshots"),
            BenchRow(
                f"{label}: commit p99", run.commit_p99_ms, "ms", COMMIT_P99_TARGET_MS, higher_is_better=False
            ),
            BenchRow(
                f"{label}: consumer peak RSS", run.peak_rss_mb, "MB", RSS_TARGET_MB, higher_is_better=False
            ),
        ]
    rows.append(
        BenchRow(
            "(b) as a share of the ceiling", 100 * tuned.sustained_rate / ceiling, "%", CEILING_SHARE_TARGET
        )
    )
    return rows


async def preload_topic(layout: StackLayout, topic: str, messages: int) -> Preload:
    """Encode `messages` sample trades into `topic`, then produce them as fast as the broker takes them."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    endpoints = layout.endpoints
    partitions = layout.settings.streams.partitions
    await ensure_topics(endpoints.kafka_bootstrap, [topic], partitions)
    with RegistryClient(endpoints.registry_url) as registry:
        schema_id = registry.register(subject_for(topic), trade_v2_schema_text())
    encoder = AvroEncoder(schema_id, trade_v2_schema())
    partitioner = DefaultPartitioner()
    all_partitions = list(range(partitions))
    by_key: dict[bytes, int] = {}
    queues: list[list[tuple[bytes, bytes]]] = [[] for _ in all_partitions]
    began = time.perf_counter()
    for trade in sample_trades(messages):
        key = trade.symbol.encode()
        partition = by_key.get(key)
        if partition is None:
            partition = by_key[key] = partitioner(key, all_partitions, all_partitions)
        queues[partition].append((key, encoder.encode(trade.to_avro())))
    encoded = time.perf_counter()

    producer = AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap,
        acks="all",
        enable_idempotence=False,  # tansu has no InitProducerId
        max_batch_size=PRODUCER_BATCH_BYTES,
        request_timeout_ms=30_000,
    )
    await producer.start()
    try:
        sent = time.perf_counter()
        pending: list[asyncio.Future[object]] = []
        for partition, queue in enumerate(queues):
            builder = producer.create_batch()
            for key, value in queue:
                if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it
                    pending.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = producer.create_batch()
                    builder.append(key=key, value=value, timestamp=None)
                if len(pending) >= IN_FLIGHT_BATCHES:
                    await asyncio.gather(*pending)
                    pending.clear()
            pending.append(await producer.send_batch(builder, topic, partition=partition))
        await asyncio.gather(*pending)
        produced = time.perf_counter()
    finally:
        await producer.stop()
    return Preload(messages, partitions, schema_id, encoded - began, produced - sent)


async def _ceiling(layout: StackLayout, preload: Preload) -> float:
    """Messages a second that aiokafka fetches and the consumer's decoder decodes (`V2BlockDecoder`, in
    the consumer's chunks), first to last, no Iceberg. It fetches as the consumer does: tansu holds
    every fetch for its wait, so a ceiling fetching at aiokafka's default would be a lower one."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=layout.endpoints.kafka_bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    decoder = V2BlockDecoder()
    await consumer.start()
    try:
        consumer.assign([TopicPartition(TOPIC, p) for p in range(preload.partitions)])
        await consumer.seek_to_beginning()
        decoded = 0
        first: float | None = None
        deadline = time.monotonic() + 60 + preload.messages / 5_000
        while decoded < preload.messages:
            if time.monotonic() > deadline:
                raise BenchError(f"the ceiling run read {decoded:,} of {preload.messages:,} messages")
            polled = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in polled.values():
                first = first or time.perf_counter()
                for start in range(0, len(records), CHECK_CHUNK):
                    chunk = records[start : start + CHECK_CHUNK]
                    decoder.decode([(record.value or b"")[HEADER_SIZE:] for record in chunk])
                decoded += len(records)
        assert first is not None
        return decoded / (time.perf_counter() - first)
    finally:
        await consumer.stop()


_STATISTIC = re.compile(r"^\s*([A-Z][A-Za-z0-9 -]+): (.*)$")


def _consume(settings: Settings, messages: int, batch_size: int, flush_interval: float) -> ConsumeRun:
    """Run `k2tui consume` over the first `messages` into a fresh trades table, sampling its RSS."""
    layout = StackLayout(settings)
    catalog = open_catalog(layout)
    with contextlib.suppress(NoSuchTableError):
        catalog.drop_table(TABLE_IDENTIFIER)
    command = [
        sys.executable,
        "-m",
        "k2tui",
        "consume",
        f"--max-messages={messages}",
        "--from-beginning",
        f"--group=bench-{uuid.uuid4().hex[:8]}",
        f"--batch-size={batch_size}",
        f"--flush-interval={flush_interval:g}",
        f"--topics={TOPIC}",
    ]
    timeout = 120 + messages / 500
    with tempfile.TemporaryFile("w+") as out:
        began = time.monotonic()
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=service_env(settings_as_env(settings) | {"COLUMNS": "200"}),
        )
        peak = _peak_rss(process, lambda: time.monotonic() - began > timeout)
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        raise BenchError(f"`{' '.join(command[2:])}` exited {process.returncode}:\n{text}")
    stats = dict(m.groups() for line in text.splitlines() if (m := _STATISTIC.match(line)))
    written = int(stats["Messages written"])
    if written != messages:
        raise BenchError(f"the consumer wrote {written:,} of {messages:,} messages:\n{text}")
    table = catalog.load_table(TABLE_IDENTIFIER)
    snapshot = table.current_snapshot()
    in_table = int(snapshot.summary["total-records"]) if snapshot and snapshot.summary else 0
    if in_table != messages:
        raise BenchError(f"the table holds {in_table:,} rows, not the {messages:,} consumed")
    return ConsumeRun(
        messages=messages,
        batch_size=batch_size,
        flush_interval=flush_interval,
        sustained_rate=_number(stats["Sustained throughput"]),
        commit_p50_ms=_number(stats["Commit p50"]),
        commit_p99_ms=_number(stats["Commit p99"]),
        snapshots=int(stats["Snapshots added"]),
        peak_rss_mb=peak / 1e6,
    )


def _number(text: str) -> float:
    """The leading figure of a statistics value such as ``12345.67 msg/sec`` or ``41 ms``."""
    match = re.match(r"[0-9.]+", text)
    if match is None:
        raise BenchError(f"no figure in the consumer's statistic {text!r}")
    return float(match.group())


def _peak_rss(process: subprocess.Popen[str], too_long: Callable[[], bool]) -> int:
    """Highest RSS of `process` and its children, sampled until it exits; killed if `too_long()`."""
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        if too_long():
            process.kill()
            process.wait()
            raise BenchError("the consumer did not finish in time")
        try:
            family = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in family))
        except psutil.NoSuchProcess:
            pass
        time.sleep(RSS_SAMPLE_S)
    return peak
