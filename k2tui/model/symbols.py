"""Symbol normalisation: one spelling per instrument, whatever the exchange calls it.

Kraken names bitcoin ``XBT`` and dogecoin ``XDG`` and separates pairs with ``/``; Binance writes
``btcusdt``. The v2 record wants ``BTCUSD`` / ``BTCUSDT``: upper case, no separator, common names.
"""

from __future__ import annotations

ASSET_ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}

# Longest first, so BTCUSDT splits as BTC/USDT and not BTCUSD/T. TUSD is left out on purpose:
# XBTUSD would split as XB/TUSD.
KNOWN_QUOTES: tuple[str, ...] = tuple(
    sorted(
        ("USDT", "USDC", "FDUSD", "DAI", "USD", "EUR", "GBP", "JPY", "TRY", "BTC", "ETH", "BNB"),
        key=len,
        reverse=True,
    )
)

SEPARATORS = ("/", "-", "_", ":")


class SymbolError(ValueError):
    """A symbol that cannot be split into base and quote."""


def normalise_asset(asset: str) -> str:
    """``xbt`` → ``BTC``; ``XDG`` → ``DOGE``; anything else upper-cased."""
    upper = asset.strip().upper()
    return ASSET_ALIASES.get(upper, upper)


def split_symbol(raw: str) -> tuple[str, str]:
    """Base and quote of a pair, normalised: ``XBT/USD`` → (BTC, USD), ``btcusdt`` → (BTC, USDT)."""
    text = raw.strip().upper()
    for separator in SEPARATORS:
        if separator in text:
            base, _, quote = text.partition(separator)
            if not base or not quote or any(s in quote for s in SEPARATORS):
                raise SymbolError(f"symbol {raw!r} is not of the form BASE{separator}QUOTE")
            return normalise_asset(base), normalise_asset(quote)
    for quote in KNOWN_QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return normalise_asset(text[: -len(quote)]), quote
    raise SymbolError(
        f"symbol {raw!r} has no separator and does not end in a known quote asset "
        f"({', '.join(sorted(KNOWN_QUOTES))})"
    )


def normalise_symbol(raw: str) -> str:
    """``BTC/USD`` → ``BTCUSD``; ``XBT/USD`` → ``BTCUSD``; ``btcusdt`` → ``BTCUSDT``."""
    base, quote = split_symbol(raw)
    return base + quote
