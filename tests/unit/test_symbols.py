import pytest

from k2tui.model.symbols import SymbolError, normalise_asset, normalise_symbol, split_symbol


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("XBT/USD", "BTCUSD"),
        ("XDG/USD", "DOGE" + "USD"),
        ("BTC/USD", "BTCUSD"),
        ("btcusdt", "BTCUSDT"),
        ("eth-eur", "ETHEUR"),
        ("XBTUSD", "BTCUSD"),
        ("ETH/XBT", "ETHBTC"),
    ],
)
def test_normalise_symbol(raw: str, expected: str) -> None:
    assert normalise_symbol(raw) == expected


@pytest.mark.parametrize(
    ("raw", "base", "quote"),
    [
        ("BTCUSDT", "BTC", "USDT"),
        ("BTCUSD", "BTC", "USD"),
        ("USDCUSDT", "USDC", "USDT"),
        ("ETHBTC", "ETH", "BTC"),
        ("SOLETH", "SOL", "ETH"),
        ("BTCEUR", "BTC", "EUR"),
        ("DOGEUSDC", "DOGE", "USDC"),
        ("XDG/USD", "DOGE", "USD"),
    ],
)
def test_split_symbol(raw: str, base: str, quote: str) -> None:
    assert split_symbol(raw) == (base, quote)


@pytest.mark.parametrize("raw", ["FOOBAR", "BTC/", "/USD", "USDT", "BTC/USD/EUR"])
def test_unsplittable_symbols_say_why(raw: str) -> None:
    with pytest.raises(SymbolError) as caught:
        split_symbol(raw)
    assert repr(raw) in str(caught.value)


def test_asset_aliases() -> None:
    assert normalise_asset("xbt") == "BTC"
    assert normalise_asset("XDG") == "DOGE"
    assert normalise_asset("eth") == "ETH"
