"""`k2tui bench stack`: how fast the local stack comes up, its idle memory, how fast the broker recovers.

It runs a throwaway stack in a temporary home on free ports, so the user's own stack is never touched.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from k2tui.config import resolve_settings
from k2tui.lake.catalog import ensure_trades_table, open_catalog
from k2tui.stack.layout import throwaway_overrides
from k2tui.stack.supervisor import FaultAction, LocalStack
from k2tui.validate.bench.result import BenchRow

UP_TARGET_MS = 10_000


async def _round_trip(bootstrap: str, topic: str, deadline: float) -> None:
    """Produce one message with acks=all and read it back, retrying until it works or `deadline`."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import KafkaError

    payload = uuid.uuid4().bytes
    while True:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, request_timeout_ms=2000
        )
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        try:
            await producer.start()
            await producer.send_and_wait(topic, payload)
            await consumer.start()
            async for message in consumer:
                if message.value == payload:
                    return
        except (KafkaError, OSError) as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not recover: {error}") from error
            await asyncio.sleep(0.05)
        finally:
            await producer.stop()
            await consumer.stop()


def _recovery_ms(stack: LocalStack, action: FaultAction) -> float:
    """Time from the fault to the first message produced and consumed again through the broker."""
    bootstrap = stack.layout.endpoints.kafka_bootstrap
    topic = f"bench-recovery-{uuid.uuid4().hex[:8]}"
    asyncio.run(_round_trip(bootstrap, topic, time.monotonic() + 30))
    started = time.monotonic()
    stack.fault("broker", action)
    stack.fault("broker", FaultAction.START)
    asyncio.run(_round_trip(bootstrap, topic, time.monotonic() + 60))
    return (time.monotonic() - started) * 1000


def run_stack_bench(idle_seconds: float = 3.0) -> list[BenchRow]:
    with tempfile.TemporaryDirectory(prefix="k2tui-bench-") as home:
        stack = LocalStack(resolve_settings(throwaway_overrides(Path(home)), env={}).settings)
        try:
            return _measure(stack, idle_seconds)
        finally:
            stack.down(purge=True)


def _up_row(case: str, seconds: float) -> BenchRow:
    return BenchRow(case, seconds * 1000, "ms", UP_TARGET_MS, higher_is_better=False)


def _measure(stack: LocalStack, idle_seconds: float) -> list[BenchRow]:
    rows: list[BenchRow] = []
    cold = stack.up()
    ensure_trades_table(open_catalog(stack.layout))
    rows.append(_up_row("up to all ready, first start", cold.total_s))
    for name, seconds in sorted(cold.ready_after_s.items(), key=lambda item: item[1]):
        rows.append(BenchRow(f"  {name} ready after", seconds * 1000, "ms"))

    time.sleep(idle_seconds)
    for status in stack.status():
        if status.rss_bytes is not None:
            rows.append(BenchRow(f"RSS at idle: {status.name}", status.rss_bytes / 2**20, "MiB"))
    total = sum(s.rss_bytes or 0 for s in stack.status()) / 2**20
    rows.append(BenchRow("RSS at idle: whole stack", total, "MiB"))

    for case, action in (("restart (SIGTERM)", FaultAction.STOP), ("SIGKILL", FaultAction.KILL)):
        rows.append(BenchRow(f"broker {case} to round trip", _recovery_ms(stack, action), "ms"))

    started = time.monotonic()
    stack.down()
    rows.append(BenchRow("down (every process gone)", (time.monotonic() - started) * 1000, "ms"))
    warm = stack.up()
    rows.append(_up_row("up to all ready, data kept", warm.total_s))
    return rows
