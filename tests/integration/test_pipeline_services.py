"""The whole stack as `k2tui up` runs it: trades produced to Kafka reach the API through the consumer
service, with no process started by the test."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from k2tui.ingest.topics import TOPICS
from k2tui.model.samples import sample_trades
from k2tui.model.trade import Exchange
from k2tui.stack.supervisor import LocalStack
from tests.integration.pipeline import produce

pytestmark = pytest.mark.e2e


def test_trades_produced_to_kafka_are_served_by_the_api_service(stack: LocalStack) -> None:
    states = {s.name: s.state.value for s in stack.status()}
    assert states["api"] == "ready" and states["consumer"] == "ready"
    trades = [t for t in sample_trades(300, seed=701) if t.exchange is Exchange.KRAKEN]
    symbol = trades[0].symbol
    ours = {t.message_id: t for t in trades if t.symbol == symbol}
    asyncio.run(produce(stack, TOPICS[Exchange.KRAKEN], trades))

    api = f"http://{stack.layout.settings.api.host}:{stack.layout.settings.api.port}"
    params = {
        "table_type": "TRADES",
        "symbol": symbol,
        "exchange": "KRAKEN",
        "start": _iso(min(t.timestamp for t in ours.values())),
        "end": _iso(max(t.timestamp for t in ours.values()) + 1),
        "limit": "1000",
    }
    deadline = time.monotonic() + 60
    served: dict[str, dict] = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        answer = httpx.get(f"{api}/v1/trades", params=params, timeout=10)
        assert answer.status_code == 200, answer.text
        served = {row["message_id"]: row for row in answer.json()["data"]}
        if ours.keys() <= served.keys():
            break
        time.sleep(0.5)
    else:
        raise AssertionError(
            f"{len(ours.keys() - served.keys())} of {len(ours)} trades never reached the API"
        )
    for message_id, trade in ours.items():
        row = served[message_id]
        assert isinstance(row["price"], str) and Decimal(row["price"]) == trade.price
        assert Decimal(row["quantity"]) == trade.quantity and row["side"] == trade.side.value
    health = httpx.get(f"{api}/health", timeout=10).json()
    assert health["status"] == "ok", health


def _iso(micros: int) -> str:
    exact = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)  # no float rounding
    return exact.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
