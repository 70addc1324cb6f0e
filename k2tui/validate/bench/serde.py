"""`k2tui bench serde`: v2 records through the Confluent Avro wire format, beside a JSON baseline."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema
from k2tui.model.trade import TradeV2
from k2tui.model.wire import AvroDecoder, AvroEncoder, SchemaNotFoundError
from k2tui.validate.bench.result import BenchRow, best_rate

TARGET_MSGS_PER_S = 150_000


class _NoRegistry:
    def schema_text_by_id(self, schema_id: int) -> str:
        raise SchemaNotFoundError(f"schema id {schema_id} was not seeded")


def run_serde_bench(*, records: int = 20_000, seconds: float = 1.0, rounds: int = 3) -> list[BenchRow]:
    trades = list(sample_trades(records))
    data = [t.to_avro() for t in trades]
    encoder = AvroEncoder(1, trade_v2_schema())
    decoder = AvroDecoder(_NoRegistry())
    decoder.add_schema(1, trade_v2_schema())
    frames = [encoder.encode(d) for d in data]
    json_docs = [json.dumps(d).encode() for d in data]

    def rate(items: Sequence[Any], fn: Callable[[Any], object]) -> float:
        def once() -> int:
            for item in items:
                fn(item)
            return len(items)

        return best_rate(once, seconds=seconds, rounds=rounds)

    return [
        BenchRow(
            "avro encode (datum → framed bytes)", rate(data, encoder.encode), "msg/s", TARGET_MSGS_PER_S
        ),
        BenchRow(
            "avro decode (framed bytes → datum)", rate(frames, decoder.decode), "msg/s", TARGET_MSGS_PER_S
        ),
        BenchRow("avro encode from TradeV2", rate(trades, lambda t: encoder.encode(t.to_avro())), "msg/s"),
        BenchRow(
            "avro decode to TradeV2",
            rate(frames, lambda f: TradeV2.from_avro(decoder.decode(f).datum)),
            "msg/s",
        ),
        BenchRow(
            "json encode baseline (datum → bytes)", rate(data, lambda d: json.dumps(d).encode()), "msg/s"
        ),
        BenchRow("json decode baseline (bytes → datum)", rate(json_docs, json.loads), "msg/s"),
        BenchRow("avro framed size", sum(map(len, frames)) / len(frames), "bytes", note="mean per message"),
        BenchRow("json size", sum(map(len, json_docs)) / len(json_docs), "bytes", note="mean per message"),
    ]
