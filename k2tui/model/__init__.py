"""The v2 trade record: its Avro schema, Python type, rules, symbols and wire format."""

from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.symbols import normalise_asset, normalise_symbol, split_symbol
from k2tui.model.trade import Exchange, Side, TradeV2, decimal_text
from k2tui.model.validation import Violation, validate

__all__ = [
    "Exchange",
    "Side",
    "TradeV2",
    "Violation",
    "decimal_text",
    "normalise_asset",
    "normalise_symbol",
    "split_symbol",
    "trade_v2_schema",
    "trade_v2_schema_text",
    "validate",
]
