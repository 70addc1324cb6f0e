"""The simulator's market model and its wire formatting, without sockets."""

import json
import random
import statistics
from decimal import Decimal
from pathlib import Path

import pytest

from k2tui.ingest.simulator.binance import BinanceProtocol, trade_event
from k2tui.ingest.simulator.kraken import json_number, rfc3339, v1_row
from k2tui.ingest.simulator.market import (
    BINANCE_INSTRUMENTS,
    HISTORY,
    KRAKEN_INSTRUMENTS,
    Market,
    SimTrade,
    check_rate,
    poisson,
)
from k2tui.ingest.simulator.server import fixtures_dir, load_malformed

NOW_US = 1_795_276_800_000_000


def run(market: Market, seconds: float, step: float = 0.01) -> list[SimTrade]:
    """Advance the market in `step` slices on a simulated clock; all trades, in order per symbol."""
    trades: list[SimTrade] = []
    for i in range(round(seconds / step)):
        for batch in market.advance(step, NOW_US + round((i + 1) * step * 1_000_000)).values():
            trades.extend(batch)
    return trades


def by_symbol(trades: list[SimTrade]) -> dict[str, list[SimTrade]]:
    out: dict[str, list[SimTrade]] = {}
    for trade in trades:
        out.setdefault(trade.symbol_key, []).append(trade)
    return out


def test_a_seed_makes_the_market_deterministic() -> None:
    first = run(Market(BINANCE_INSTRUMENTS, rate=200, seed=7), 5)
    second = run(Market(BINANCE_INSTRUMENTS, rate=200, seed=7), 5)
    other = run(Market(BINANCE_INSTRUMENTS, rate=200, seed=8), 5)
    assert first == second
    assert first != other


@pytest.mark.parametrize("instruments", [BINANCE_INSTRUMENTS, KRAKEN_INSTRUMENTS])
def test_prices_and_sizes_are_positive_and_on_the_exchange_grid(instruments) -> None:
    trades = run(Market(instruments, rate=500, seed=1), 20)
    grid = {i.key: i for i in instruments}
    assert len(trades) > 20_000
    for trade in trades:
        instrument = grid[trade.symbol_key]
        assert trade.price > 0 and trade.quantity > 0
        assert trade.price % instrument.tick == 0
        assert trade.quantity % instrument.lot == 0
        assert trade.side in ("buy", "sell") and trade.order_type in ("market", "limit")


def test_prices_stay_near_the_real_level() -> None:
    trades = by_symbol(run(Market(BINANCE_INSTRUMENTS, rate=1000, seed=3), 20))
    for instrument in BINANCE_INSTRUMENTS:
        prices = [t.price for t in trades[instrument.key]]
        assert instrument.price * Decimal("0.95") < min(prices)
        assert max(prices) < instrument.price * Decimal("1.05")


def test_trade_ids_are_sequential_per_symbol_from_realistic_starts() -> None:
    trades = by_symbol(run(Market(KRAKEN_INSTRUMENTS, rate=100, seed=2), 10))
    for instrument in KRAKEN_INSTRUMENTS:
        ids = [t.trade_id for t in trades[instrument.key]]
        assert ids == list(range(instrument.first_trade_id, instrument.first_trade_id + len(ids)))
    assert trades["BTC/USD"][0].trade_id == 104622300
    assert trades["ETH/USD"][0].trade_id == 55012000


def test_trade_times_are_in_the_advanced_interval_and_ordered() -> None:
    market = Market(BINANCE_INSTRUMENTS[:1], rate=5000, seed=4)
    batch = market.advance(0.01, NOW_US)["BTCUSDT"]
    times = [t.time_us for t in batch]
    assert times == sorted(times)
    assert times[0] >= NOW_US - 10_000 and times[-1] <= NOW_US


def test_sizes_are_heavy_tailed() -> None:
    trades = run(Market(BINANCE_INSTRUMENTS[:1], rate=2000, seed=5), 10)
    sizes = [float(t.quantity) for t in trades]
    median = statistics.median(sizes)
    assert max(sizes) / median > 50
    assert statistics.mean(sizes) > median * 1.3


def test_the_long_run_rate_is_the_configured_one() -> None:
    market = Market(BINANCE_INSTRUMENTS[:1], rate=50, seed=6)
    per_second = [sum(len(b) for b in market.advance(1.0, NOW_US).values()) for _ in range(3000)]
    assert statistics.mean(per_second) == pytest.approx(50, rel=0.08)
    assert statistics.variance(per_second) > 2 * statistics.mean(per_second), (
        "bursts make counts overdispersed"
    )


def test_high_rates_are_generated_in_batches() -> None:
    market = Market(BINANCE_INSTRUMENTS[:2], rate=10_000, seed=9)
    counts = [sum(len(b) for b in market.advance(0.005, NOW_US).values()) for _ in range(400)]
    seconds, symbols = 400 * 0.005, 2
    assert sum(counts) / seconds / symbols == pytest.approx(10_000, rel=0.5)
    assert min(counts) > 0


def test_poisson_mean_matches_small_and_large_means() -> None:
    rng = random.Random(0)
    for mean in (0.3, 4.0, 120.0):
        draws = [poisson(rng, mean) for _ in range(20_000)]
        assert statistics.mean(draws) == pytest.approx(mean, rel=0.05)
        assert min(draws) >= 0
    assert poisson(rng, 0.0) == 0


def test_rate_limits_are_enforced() -> None:
    assert check_rate(0.1) == 0.1
    assert check_rate(10_000) == 10_000
    for bad in (0.0, 0.05, 10_001, -1):
        with pytest.raises(ValueError, match="rate must be between"):
            check_rate(bad)
    market = Market(BINANCE_INSTRUMENTS)
    with pytest.raises(ValueError):
        market.set_rate(20_000)
    assert market.rate == 10.0


def test_skip_ids_leaves_a_gap_of_count_ids() -> None:
    market = Market(BINANCE_INSTRUMENTS[:1], rate=1000, seed=10)
    before = market.advance(0.05, NOW_US)["BTCUSDT"]
    market.skip_ids(3)
    after = market.advance(0.05, NOW_US)["BTCUSDT"]
    assert after[0].trade_id == before[-1].trade_id + 4
    assert [t.trade_id for t in after] == list(range(after[0].trade_id, after[0].trade_id + len(after)))
    with pytest.raises(ValueError):
        market.skip_ids(0)


def test_repeat_last_emits_the_same_trade_again_once() -> None:
    market = Market(BINANCE_INSTRUMENTS[:1], rate=1000, seed=11)
    last = market.advance(0.05, NOW_US)["BTCUSDT"][-1]
    market.repeat_last()
    again = market.advance(0.0, NOW_US)["BTCUSDT"]
    assert again == [last]
    following = market.advance(0.05, NOW_US)["BTCUSDT"]
    assert following[0].trade_id == last.trade_id + 1


def test_prime_gives_every_symbol_a_history_in_the_past() -> None:
    market = Market(KRAKEN_INSTRUMENTS, seed=12)
    market.prime(HISTORY, NOW_US)
    for instrument in KRAKEN_INSTRUMENTS:
        history = market.recent(instrument.key)
        assert [t.trade_id for t in history] == list(
            range(instrument.first_trade_id, instrument.first_trade_id + HISTORY)
        )
        assert all(NOW_US - 60_000_000 <= t.time_us <= NOW_US for t in history)
    first_live = market.advance(1.0, NOW_US + 1_000_000)
    assert first_live["BTC/USD"][0].trade_id == 104622300 + HISTORY


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.000046738028", "4.6738028e-05"),
        ("0.00001000", "1e-05"),
        ("0.00000001", "1e-08"),
        ("0.0001", "0.0001"),
        ("0.04364160", "0.0436416"),
        ("86388.4", "86388.4"),
        ("86390.0", "86390.0"),
        ("2842.40", "2842.4"),
        ("12", "12.0"),
    ],
)
def test_json_numbers_carry_exactly_the_decimal_digits(value: str, text: str) -> None:
    assert json_number(Decimal(value)) == text
    assert Decimal(text) == Decimal(value)


def test_binance_and_kraken_v1_text_fields_have_fixed_decimals() -> None:
    trade = SimTrade(
        "BTCUSDT", 5429871000, Decimal("86414.10"), Decimal("0.01879"), "sell", "market", NOW_US + 156_000
    )
    assert trade_event(trade, 1795276800158) == (
        '{"e":"trade","E":1795276800158,"s":"BTCUSDT","t":5429871000,"p":"86414.10","q":"0.01879000",'
        '"T":1795276800156,"m":true,"M":true}'
    )
    kraken = SimTrade(
        "BTC/USD", 1, Decimal("86393.4"), Decimal("0.01569313"), "buy", "limit", NOW_US + 156_000
    )
    assert v1_row(kraken) == '["86393.40000","0.01569313","1795276800.156000","b","l",""]'
    assert rfc3339(NOW_US + 642_674) == "2026-11-21T16:00:00.642674Z"


def test_binance_url_streams_ignore_unknown_symbols() -> None:
    combined = BinanceProtocol("/stream?streams=btcusdt@trade/foousdt@trade/ethusdt@kline_1m", ["BTCUSDT"])
    assert combined.combined and list(combined.subscriptions) == ["btcusdt@trade"]
    raw = BinanceProtocol("/ws/btcusdt@trade/ethusdt@trade", ["BTCUSDT", "ETHUSDT"])
    assert not raw.combined and list(raw.subscriptions) == ["btcusdt@trade", "ethusdt@trade"]
    assert BinanceProtocol("/ws", ["BTCUSDT"]).subscriptions == {}


def test_malformed_cases_come_from_the_fixture_file_or_a_builtin_stand_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = load_malformed(tmp_path)
    assert set(builtin) == {"binance", "kraken_v1", "kraken_v2"}
    assert all(len(cases) >= 3 for cases in builtin.values())
    assert all(len(cases[-1]) > 1_048_576 for cases in builtin.values()), "an oversized frame for every kind"
    rows = [
        {"exchange": "binance", "case": "a", "raw": '{"e":"kline"}'},
        {"exchange": "kraken_v2", "case": "b", "raw": '{"channel":"trade","type":"update","data":[]}'},
        {"exchange": "any", "case": "c", "raw": "not json"},
    ]
    (tmp_path / "malformed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_malformed(tmp_path) == {
        "binance": ['{"e":"kline"}', "not json"],
        "kraken_v1": ["not json"],
        "kraken_v2": ['{"channel":"trade","type":"update","data":[]}', "not json"],
    }
    monkeypatch.setenv("K2TUI_FIXTURES_DIR", str(tmp_path))
    assert fixtures_dir() == tmp_path


def test_an_unseeded_market_started_later_never_reuses_trade_ids() -> None:
    import time

    from k2tui.ingest.simulator.market import BINANCE_INSTRUMENTS, Market

    first = Market(BINANCE_INSTRUMENTS, rate=10_000)
    handed_out = {key: max(t.trade_id for t in ts) for key, ts in first.advance(0.02, 1).items() if ts}
    time.sleep(0.05)  # less simulated time than real time, as when a simulator runs and is restarted
    later = Market(BINANCE_INSTRUMENTS, rate=10_000)
    compared = 0
    for key, trades in later.advance(0.02, 2).items():
        if trades and key in handed_out:
            assert min(t.trade_id for t in trades) > handed_out[key]
            compared += 1
    assert compared >= 2, "the markets must have traded the same symbols for the check to mean anything"
