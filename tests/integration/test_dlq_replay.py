"""`k2tui dlq replay` on the real stack: fixed entries reach Kafka exactly once, and never twice."""

import asyncio
import json
import random
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from k2tui.consume.consumer import IcebergConsumer
from k2tui.ingest.dlq import DeadLetterError, DeadLetterQueue, collect_dead_letters, read_replays
from k2tui.ingest.producer import TradeProducer, ensure_topics
from k2tui.ingest.replay import ReplayStatus, replay_dead_letters
from k2tui.ingest.topics import TOPICS
from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import Exchange, TradeV2
from k2tui.model.wire import AvroDecoder, AvroEncoder, WireFormatError
from k2tui.stack.ports import find_free_port
from k2tui.stack.registry.client import RegistryClient
from k2tui.stack.supervisor import LocalStack
from tests.integration.registry_process import RegistryProcess
from tests.integration.stack_fixture import k2tui_env


def _k2tui(stack_env: dict[str, str], dlq: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = k2tui_env(stack_env | {"K2_DLQ_DIRECTORY": str(dlq)}) | {"COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "k2tui", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def _read_partition(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, bytes]]:
    """(offset, key, value) of every record in partition 0, oldest first."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    records: list[tuple[int, bytes | None, bytes]] = []
    try:
        quiet = 0
        while quiet < 3:  # three empty polls in a row: the end of the log
            batch = (await consumer.getmany(tp, timeout_ms=400)).get(tp, [])
            quiet = 0 if batch else quiet + 1
            records.extend((m.offset, m.key, m.value) for m in batch)
    finally:
        await consumer.stop()
    return records


async def test_replay_republishes_what_the_registry_now_resolves_once_and_records_it(
    stack: LocalStack,
    stack_env: dict[str, str],
    registry: RegistryProcess,
    table,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    endpoints = stack.layout.endpoints
    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    dlq = tmp_path / "dlq"
    await ensure_topics(endpoints.kafka_bootstrap, [topic], 1)
    schema_id = RegistryClient(endpoints.registry_url).register(f"{topic}-value", trade_v2_schema_text())
    encoder = AvroEncoder(schema_id, trade_v2_schema())
    trades = list(sample_trades(20, seed=41))
    framed = [encoder.encode(t.to_avro()) for t in trades]
    producer = AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        for trade, value in zip(trades, framed, strict=True):
            await producer.send_and_wait(topic, value, key=trade.symbol.encode())
        await producer.send_and_wait(topic, b"no magic byte here", key=b"junk")
    finally:
        await producer.stop()

    # The consumer looks the schema up in a registry that lost it (an empty one): every trade is refused.
    group = f"g-{topic}"
    first = IcebergConsumer(
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=registry.url,
        table=table,
        topics=[topic],
        dlq=DeadLetterQueue(dlq, "consumer"),
        group=group,
        from_beginning=True,
        flush_interval=0.5,
        max_messages=21,
    )
    stats = await first.run(asyncio.Event())
    assert (stats.written, stats.dead_lettered) == (0, 21)

    dry = await asyncio.to_thread(_k2tui, stack_env, dlq, "dlq", "replay", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "20 ready, 1 skipped (dry run: nothing was sent)" in dry.stdout
    assert "still refused: bad_magic" in dry.stdout
    assert len(await _read_partition(endpoints.kafka_bootstrap, topic)) == 21

    # With the stack's registry, where the schema id resolves, the 20 trades go back, the junk does not.
    replay = await asyncio.to_thread(_k2tui, stack_env, dlq, "dlq", "replay")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "20 replayed, 1 skipped" in replay.stdout
    log = await _read_partition(endpoints.kafka_bootstrap, topic)
    replayed = [(key, value) for offset, key, value in log if offset >= 21]
    assert len(log) == 41
    assert Counter(value for _, value in replayed) == Counter(framed), "each fixed entry exactly once"
    assert sorted(key for key, _ in replayed) == sorted(t.symbol.encode() for t in trades)

    again = await asyncio.to_thread(_k2tui, stack_env, dlq, "dlq", "replay")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 skipped, 20 already replayed" in again.stdout
    assert len(await _read_partition(endpoints.kafka_bootstrap, topic)) == 41, "nothing sent twice"

    listed = json.loads((await asyncio.to_thread(_k2tui, stack_env, dlq, "dlq", "list", "--json")).stdout)
    landed = sorted(r["landed"][0]["offset"] for e in listed["entries"] for r in e["replays"])
    assert landed == list(range(21, 41))

    # The same group, now with the registry that knows the schema, writes the replayed trades once.
    second = IcebergConsumer(
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=endpoints.registry_url,
        table=table,
        topics=[topic],
        dlq=DeadLetterQueue(dlq, "consumer"),
        group=group,
        flush_interval=0.5,
        max_messages=20,
    )
    assert (await second.run(asyncio.Event())).written == 20
    table.refresh()
    ids = Counter(table.scan(selected_fields=("message_id",)).to_arrow().column("message_id").to_pylist())
    assert ids == Counter(t.message_id for t in trades)


def _fresh(trade: TradeV2, trade_number: int) -> TradeV2:
    """The trade with an id no other test produces to the shared trades topics."""
    prefix = "BINANCE" if trade.exchange is Exchange.BINANCE else "KRAKEN"
    return msgspec.structs.replace(
        trade,
        trade_id=f"{prefix}-{trade_number}",
        sequence_number=trade_number,
        message_id=str(uuid.uuid4()),
    )


async def _trade_ids_in(bootstrap: str, registry_url: str, wanted: set[str]) -> Counter[str]:
    """How often each wanted trade id is in the trades topics (every partition, from the start)."""
    decoder = AvroDecoder(RegistryClient(registry_url))
    consumer = AIOKafkaConsumer(*TOPICS.values(), bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: Counter[str] = Counter()
    try:
        quiet = 0
        while quiet < 4 or not wanted <= set(found):
            batches = await consumer.getmany(timeout_ms=500)
            quiet = 0 if batches else quiet + 1
            for messages in batches.values():
                for message in messages:
                    try:
                        trade_id = decoder.decode(message.value).datum["trade_id"]
                    except WireFormatError:  # other tests put undecodable messages in these topics on purpose
                        continue
                    if trade_id in wanted:
                        found[trade_id] += 1
            if quiet > 40:
                break
    finally:
        await consumer.stop()
    return found


async def test_refused_exchange_messages_and_unsent_trades_are_produced_as_trades_once(
    stack: LocalStack, tmp_path: Path
) -> None:
    endpoints = stack.layout.endpoints
    dlq = tmp_path / "dlq"
    base = random.randrange(10**12, 10**13)
    # Trades the producer could not hand over (its buffer was full) ...
    unsent = [_fresh(t, base + n) for n, t in enumerate(sample_trades(6, seed=42))]
    TradeProducer(
        endpoints.kafka_bootstrap,
        endpoints.registry_url,
        partitions=3,
        buffer_limit=0,
        dlq=DeadLetterQueue(dlq, "producer"),
    ).submit(unsent)
    # ... and exchange messages a stream refused for its size, fine by today's limit.
    kraken_ids = [base + 100, base + 101]
    kraken = json.dumps(
        {
            "channel": "trade",
            "type": "update",
            "data": [
                {
                    "symbol": "BTC/USD",
                    "side": side,
                    "price": 86388.4,
                    "qty": 0.043641601,
                    "ord_type": "market",
                    "trade_id": trade_id,
                    "timestamp": "2026-11-21T16:00:01.642674Z",
                }
                for side, trade_id in zip(("buy", "sell"), kraken_ids, strict=True)
            ],
        }
    )
    binance_id = base + 200
    binance = json.dumps(
        {
            "stream": "btcusdt@trade",
            "data": {
                "e": "trade",
                "E": 1795276800158,
                "s": "BTCUSDT",
                "t": binance_id,
                "p": "86414.17",
                "q": "0.01879000",
                "T": 1795276800156,
                "m": True,
                "M": True,
            },
        }
    )
    for exchange, raw, url in (
        ("kraken", kraken, "wss://ws.kraken.com/v2"),
        ("binance", binance, "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"),
    ):
        DeadLetterQueue(dlq, f"stream-{exchange}").put(
            f"message of {len(raw):,} bytes exceeds the 100-byte limit",
            raw,
            error_type="Rejected",
            exchange=exchange,
            url=url,
        )
    letters = collect_dead_letters(dlq)
    assert len(letters) == 8

    outcomes = await replay_dead_letters(
        dlq,
        letters,
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=endpoints.registry_url,
        partitions=3,
    )
    assert [o.status for o in outcomes] == [ReplayStatus.REPLAYED] * 8, [o.detail for o in outcomes]
    wanted = {t.trade_id for t in unsent} | {f"KRAKEN-{i}" for i in kraken_ids} | {f"BINANCE-{binance_id}"}
    counts = await _trade_ids_in(endpoints.kafka_bootstrap, endpoints.registry_url, wanted)
    assert counts == Counter(dict.fromkeys(wanted, 1))
    assert sum(len(r[0].landed) for r in read_replays(dlq).values()) == 9  # the Kraken message held two

    again = await replay_dead_letters(
        dlq,
        collect_dead_letters(dlq),
        bootstrap=endpoints.kafka_bootstrap,
        registry_url=endpoints.registry_url,
        partitions=3,
    )
    assert {o.status for o in again} == {ReplayStatus.DONE_BEFORE}
    assert await _trade_ids_in(endpoints.kafka_bootstrap, endpoints.registry_url, wanted) == counts


async def test_replay_with_kafka_away_is_one_sentence_and_records_nothing(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    dlq = tmp_path / "dlq"
    TradeProducer(
        "unused", registry.url, partitions=1, buffer_limit=0, dlq=DeadLetterQueue(dlq, "producer")
    ).submit(list(sample_trades(2, seed=43)))
    bootstrap = f"127.0.0.1:{find_free_port()}"
    with pytest.raises(DeadLetterError) as refused:
        await replay_dead_letters(
            dlq, collect_dead_letters(dlq), bootstrap=bootstrap, registry_url=registry.url, partitions=1
        )
    assert str(refused.value).startswith(f"Kafka at {bootstrap} is not reachable (")
    assert str(refused.value).endswith("start the stack with `k2tui up` and replay again")
    assert read_replays(dlq) == {}
