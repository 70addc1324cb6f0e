"""Stream statistics, the dead-letter queue and list settings, without any socket."""

from pathlib import Path

import msgspec
import pytest

from k2tui.config import SettingsError, resolve_settings
from k2tui.ingest.dlq import DeadLetterQueue, read_dead_letters
from k2tui.ingest.stats import RateMeter, StreamStats
from k2tui.model.samples import sample_trades


def test_rate_meter_counts_complete_seconds_only() -> None:
    meter = RateMeter()
    for second in range(100, 110):
        meter.add(20, second + 0.5)
    meter.add(1000, 110.2)  # the current, partial second is left out
    assert meter.rate(1, 110.3) == 20
    assert meter.rate(10, 110.3) == 20
    assert meter.rate(10, 125.0) == 0


def _with_sequence(trade, sequence: int):  # type: ignore[no-untyped-def]
    return msgspec.structs.replace(trade, sequence_number=sequence, trade_id=f"BINANCE-{sequence}")


def test_gaps_and_replays_are_told_apart() -> None:
    stats = StreamStats("binance", "live")
    trade = next(t for t in sample_trades(50, seed=1) if t.exchange == "BINANCE")
    accepted = [stats.accept(_with_sequence(trade, s), 0.0) for s in (10, 11, 15, 15, 12, 16)]
    assert accepted == [True, True, True, False, False, True]
    assert stats.gap_count == 1 and stats.missing_trades == 3 and stats.duplicates == 2
    assert stats.trades == 4


def test_dead_letters_keep_text_as_text_and_bytes_as_base64(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, "stream-binance")
    dlq.put("not valid JSON", '{"e":"tr', stream="binance")
    dlq.put("not UTF-8", b"\x00\xff\xfe garbage")
    text, binary = read_dead_letters(tmp_path)
    assert text.raw_text == '{"e":"tr' and text.context == {"stream": "binance"}
    assert binary.raw_text is None and binary.raw_bytes() == b"\x00\xff\xfe garbage"
    assert [p.name.startswith("stream-binance-") for p in tmp_path.iterdir()] == [True]
    assert dlq.written == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("BTCUSDT, ethusdt", ("BTCUSDT", "ethusdt")), ("SOLUSDT", ("SOLUSDT",))],
)
def test_symbol_lists_come_from_comma_separated_text(raw: str, expected: tuple[str, ...]) -> None:
    settings = resolve_settings(env={"K2_BINANCE_SYMBOLS": raw}).settings
    assert settings.binance.symbols == expected


def test_an_empty_symbol_list_is_an_error_naming_the_form() -> None:
    with pytest.raises(SettingsError, match="expected a list of names"):
        resolve_settings(env={"K2_BINANCE_SYMBOLS": " , "})


def test_reconnect_backoff_doubles_is_capped_and_jittered() -> None:
    from k2tui.config import StreamSettings
    from k2tui.ingest.binance import BinanceProtocol
    from k2tui.ingest.client import StreamClient

    client = StreamClient(
        BinanceProtocol("ws://x", ("BTCUSDT",)),
        StreamSettings(backoff_initial=0.5, backoff_max=4.0),
        lambda trades: None,
    )
    for failures, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 4.0)):
        delays = {client._backoff(failures) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 40, "jittered, so reconnecting clients do not stampede together"
