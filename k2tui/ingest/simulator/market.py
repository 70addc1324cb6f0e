"""The simulated market: per-symbol trade streams that look like a real exchange's, on its tick and lot grid.

Arrivals are Poisson with a two-state regime (calm, and bursts at several times the intensity) whose long-run
mean is the configured rate, so a client sees quiet spells and floods as on a real venue. Sizes are lognormal
with some dust and a Pareto tail (a few whales), prices a mean-reverting random walk near today's level.
Everything random comes from one ``random.Random(seed)``, so a seed and the same sequence of ``advance``
calls give the same trades; only the trade times come from the caller's clock.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

MIN_RATE = 0.1
MAX_RATE = 10_000.0
HISTORY = 50
"""Trades kept per symbol: what a Kraken v2 snapshot replays."""

CALM_SECONDS = 10.0
BURST_SECONDS = 1.0
BURST_FACTOR = 4.0
PRICE_VOLATILITY = 0.00004
"""Standard deviation of the log-price step per trade (0.4 bp: a few dollars on BTC, as in the fixtures)."""
MEAN_REVERSION = 0.0002
SIZE_SIGMA = 1.0
DUST_PROBABILITY = 0.05
DUST_FACTOR = 0.005
"""Share and relative size of dust trades: Kraken prints many below 0.0001 BTC, in exponent form in v2."""
WHALE_PROBABILITY = 0.02
WHALE_ALPHA = 1.5
MAX_SIZE_FACTOR = 2_000
MARKET_ORDER_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol as the exchange lists it: where its price starts and the grid it trades on."""

    key: str
    price: Decimal
    tick: Decimal
    lot: Decimal
    first_trade_id: int
    median_size: Decimal


@dataclass(slots=True)
class SimTrade:
    """One executed trade; ``side`` is the taker's, ``time_us`` the exchange's trade time (µs since epoch)."""

    symbol_key: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    side: str
    order_type: str
    time_us: int


def _d(text: str) -> Decimal:
    return Decimal(text)


BINANCE_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTCUSDT", _d("86400.00"), _d("0.01"), _d("0.00001"), 5429871000, _d("0.01")),
    Instrument("ETHUSDT", _d("2842.00"), _d("0.01"), _d("0.00001"), 2319004400, _d("0.02")),
    Instrument("SOLUSDT", _d("140.00"), _d("0.01"), _d("0.001"), 1203340000, _d("0.5")),
    Instrument("DOGEUSDT", _d("0.15800"), _d("0.00001"), _d("1"), 1089000000, _d("500")),
)
KRAKEN_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTC/USD", _d("86400.0"), _d("0.1"), _d("0.00000001"), 104622300, _d("0.01")),
    Instrument("ETH/USD", _d("2842.00"), _d("0.01"), _d("0.00000001"), 55012000, _d("0.02")),
    Instrument("SOL/USD", _d("140.00"), _d("0.01"), _d("0.00000001"), 30011000, _d("0.5")),
    Instrument("DOGE/USD", _d("0.15800"), _d("0.00001"), _d("0.00000001"), 21004000, _d("500")),
)


def check_rate(rate: float) -> float:
    """The rate as a float, or ValueError when it is outside what the simulator supports."""
    value = float(rate)
    if not MIN_RATE <= value <= MAX_RATE:
        raise ValueError(
            f"rate must be between {MIN_RATE} and {MAX_RATE:.0f} trades/s per symbol, not {rate}"
        )
    return value


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: exact (Knuth) for small means, normal approximation above 30 where it is close."""
    if mean <= 0:
        return 0
    if mean >= 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass(slots=True)
class _SymbolState:
    instrument: Instrument
    log_price: float
    next_id: int
    history: deque[SimTrade]


ID_ANCHOR_S = 1_795_276_800  # 2026-11-21 16:00 UTC, the time of the fixture samples
ID_CLOCK_PER_S = 20_000  # above MAX_RATE


class Market:
    """Generates the trades of one exchange's symbols for each slice of time it is advanced by."""

    def __init__(
        self, instruments: Sequence[Instrument], rate: float = 10.0, seed: int | None = None
    ) -> None:
        self.rng = random.Random(seed)
        self.rate = check_rate(rate)
        self.bursting = False
        self.trades_generated = 0
        self._repeat = False
        # Unseeded, ids carry on from where a market running since the anchor would be, faster than any
        # rate the simulator allows, so a restarted simulator never hands out an id a second time.
        later = 0 if seed is not None else max(0, int((time.time() - ID_ANCHOR_S) * ID_CLOCK_PER_S))
        self._symbols = {
            i.key: _SymbolState(i, math.log(i.price), i.first_trade_id + later, deque(maxlen=HISTORY))
            for i in instruments
        }

    @property
    def instruments(self) -> dict[str, Instrument]:
        return {key: state.instrument for key, state in self._symbols.items()}

    def set_rate(self, rate: float) -> None:
        self.rate = check_rate(rate)

    def skip_ids(self, count: int) -> None:
        """Leave a gap of `count` ids before each symbol's next trade, as a lost message would."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        for state in self._symbols.values():
            state.next_id += count

    def repeat_last(self) -> None:
        """Emit each symbol's last trade again, same id, at the start of the next advance."""
        self._repeat = True

    def recent(self, key: str) -> list[SimTrade]:
        """The symbol's last trades, oldest first (up to HISTORY)."""
        return list(self._symbols[key].history)

    def prime(self, count: int, now_us: int, span: float = 60.0) -> None:
        """Give every symbol `count` trades spread over the last `span` seconds, so it has a history."""
        for state in self._symbols.values():
            self._append_trades(state, count, now_us - int(span * 1_000_000), int(span * 1_000_000), {})

    def advance(self, elapsed: float, now_us: int) -> dict[str, list[SimTrade]]:
        """Trades per symbol that happened in the `elapsed` seconds up to `now_us`, oldest first."""
        out: dict[str, list[SimTrade]] = {}
        if self._repeat:
            self._repeat = False
            for key, state in self._symbols.items():
                if state.history:
                    out[key] = [state.history[-1]]
        if elapsed <= 0:
            return out
        self._switch_regime(elapsed)
        mean = self._intensity() * elapsed
        span_us = int(elapsed * 1_000_000)
        for state in self._symbols.values():
            count = poisson(self.rng, mean)
            if count:
                self._append_trades(state, count, now_us - span_us, span_us, out)
        return out

    def _switch_regime(self, elapsed: float) -> None:
        """The regime `elapsed` seconds on, by the exact two-state transition law: unbiased at any step."""
        to_burst, to_calm = 1 / CALM_SECONDS, 1 / BURST_SECONDS
        leaving = to_calm if self.bursting else to_burst
        if self.rng.random() < leaving / (to_burst + to_calm) * -math.expm1(-(to_burst + to_calm) * elapsed):
            self.bursting = not self.bursting

    def _intensity(self) -> float:
        """Trades/s now: calm intensity scaled so the long-run mean over both regimes is the rate."""
        burst_share = BURST_SECONDS / (CALM_SECONDS + BURST_SECONDS)
        calm = self.rate / (1 - burst_share + BURST_FACTOR * burst_share)
        return calm * BURST_FACTOR if self.bursting else calm

    def _append_trades(
        self, state: _SymbolState, count: int, start_us: int, span_us: int, out: dict[str, list[SimTrade]]
    ) -> None:
        rng, instrument = self.rng, state.instrument
        tick, lot = float(instrument.tick), float(instrument.lot)
        anchor, median = math.log(instrument.price), float(instrument.median_size)
        offsets = sorted(rng.random() for _ in range(count))
        trades = out.setdefault(instrument.key, [])
        for offset in offsets:
            step = rng.gauss(0.0, PRICE_VOLATILITY)
            state.log_price += step - MEAN_REVERSION * (state.log_price - anchor)
            ticks = max(1, round(math.exp(state.log_price) / tick))
            size = median * math.exp(rng.gauss(0.0, SIZE_SIGMA))
            kind = rng.random()
            if kind < DUST_PROBABILITY:
                size *= DUST_FACTOR
            elif kind < DUST_PROBABILITY + WHALE_PROBABILITY:
                size *= rng.paretovariate(WHALE_ALPHA)
            lots = max(1, round(min(size, median * MAX_SIZE_FACTOR) / lot))
            buy = (step > 0) == (rng.random() < 0.75)
            trade = SimTrade(
                instrument.key,
                state.next_id,
                Decimal(ticks) * instrument.tick,
                Decimal(lots) * instrument.lot,
                "buy" if buy else "sell",
                "market" if rng.random() < MARKET_ORDER_SHARE else "limit",
                start_us + int(offset * span_us),
            )
            state.next_id += 1
            state.history.append(trade)
            trades.append(trade)
        self.trades_generated += count
