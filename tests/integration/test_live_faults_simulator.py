"""The cockpit's two stream faults against a real simulator: malformed messages reach a Binance
connection verbatim, a sequence gap is taken by the market, and a simulator that is not there is said
to be not running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from k2tui.config import resolve_settings
from k2tui.ingest.simulator.server import ExchangeSimulator
from k2tui.stack.ports import find_free_port
from k2tui.validate.env import ValidationEnv
from k2tui.validate.live_faults import INJECTED_MESSAGES, MALFORMED, SEQUENCE_GAP, SimulatorUnavailableError


def _env(tmp_path: Path, port: int) -> ValidationEnv:
    settings = resolve_settings(
        {"home": (tmp_path, "test"), "streams.simulator_port": (str(port), "test")}, env={}
    ).settings
    return ValidationEnv.local(settings)


def _a_good_trade(frame: str | bytes) -> bool:
    try:
        message = json.loads(frame)
        return message["e"] == "trade" and Decimal(message["p"]) > 0 and isinstance(message["t"], int)
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return False


@pytest.fixture
async def simulator() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(port=find_free_port(), rate=20, seed=5) as running:
        yield running


async def test_malformed_messages_reach_each_binance_connection(
    tmp_path: Path, simulator: ExchangeSimulator
) -> None:
    env = _env(tmp_path, simulator.port)
    assert (
        await MALFORMED.inject(env)
        == "the simulator has no Binance connection: no malformed message was sent"
    )
    async with connect(f"{simulator.url}/ws/btcusdt@trade") as binance:
        await asyncio.wait_for(binance.recv(), 5)  # the stream is flowing: the connection is attached
        said = await MALFORMED.inject(env)
        assert said == f"{INJECTED_MESSAGES} malformed messages sent to the simulator's Binance connections"
        async with asyncio.timeout(5):
            while _a_good_trade(await binance.recv()):
                pass
    assert simulator.snapshot()["knobs"]["malformed_injected"]["binance"] == 2 * INJECTED_MESSAGES


async def test_a_sequence_gap_is_taken_by_the_binance_market(
    tmp_path: Path, simulator: ExchangeSimulator
) -> None:
    said = await SEQUENCE_GAP.inject(_env(tmp_path, simulator.port))
    assert said == f"the simulator skipped {INJECTED_MESSAGES} Binance trade ids per symbol"
    assert simulator.snapshot()["knobs"]["trade_ids_skipped"]["binance"] == INJECTED_MESSAGES


async def test_a_simulator_that_is_not_running_is_said_to_be_so(tmp_path: Path) -> None:
    port = find_free_port()
    with pytest.raises(
        SimulatorUnavailableError,
        match=rf"the simulator is not running \(nothing answers at 127.0.0.1:{port}\)",
    ):
        await MALFORMED.inject(_env(tmp_path, port))
