import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema, trade_v2_schema_text
from k2tui.model.trade import Exchange, Side, TradeV2
from k2tui.model.validation import validate
from k2tui.model.wire import (
    AvroDecoder,
    AvroEncoder,
    SchemaNotFoundError,
    WireErrorKind,
    WireFormatError,
    frame_header,
)


class CountingLookup:
    def __init__(self, schemas: dict[int, str]):
        self.schemas = schemas
        self.calls = 0

    def schema_text_by_id(self, schema_id: int) -> str:
        self.calls += 1
        if schema_id not in self.schemas:
            raise SchemaNotFoundError(f"Schema {schema_id} not found")
        return self.schemas[schema_id]


@pytest.fixture
def codec() -> tuple[AvroEncoder, AvroDecoder, CountingLookup]:
    lookup = CountingLookup({42: trade_v2_schema_text()})
    return AvroEncoder(42, trade_v2_schema()), AvroDecoder(lookup), lookup


def test_frame_is_magic_byte_then_big_endian_id(codec) -> None:
    encoder, _, _ = codec
    frame = encoder.encode(next(sample_trades(1)).to_avro())
    assert frame[:5] == b"\x00\x00\x00\x00\x2a" == frame_header(42)


def test_round_trip_and_schema_fetched_once(codec) -> None:
    encoder, decoder, lookup = codec
    trades = list(sample_trades(300))
    for trade in trades:
        decoded = decoder.decode(encoder.encode(trade.to_avro()))
        assert decoded.schema_id == 42
        assert TradeV2.from_avro(decoded.datum) == trade
    assert lookup.calls == 1


def test_wrong_magic_byte_keeps_the_original_bytes(codec) -> None:
    encoder, decoder, _ = codec
    frame = b"\x01" + encoder.encode(next(sample_trades(1)).to_avro())[1:]
    with pytest.raises(WireFormatError) as caught:
        decoder.decode(frame)
    assert caught.value.kind is WireErrorKind.BAD_MAGIC
    assert caught.value.raw == frame
    assert "magic byte" in caught.value.reason


@pytest.mark.parametrize("frame", [b"", b"\x00", b"\x00\x00\x00\x2a"])
def test_too_short(codec, frame: bytes) -> None:
    with pytest.raises(WireFormatError) as caught:
        codec[1].decode(frame)
    assert caught.value.kind is WireErrorKind.TOO_SHORT
    assert caught.value.raw == frame


def test_json_instead_of_avro_is_a_bad_magic_byte(codec) -> None:
    with pytest.raises(WireFormatError) as caught:
        codec[1].decode(b'{"e":"trade"}')
    assert caught.value.kind is WireErrorKind.BAD_MAGIC


def test_unknown_schema_id(codec) -> None:
    encoder, decoder, _ = codec
    frame = frame_header(999) + encoder.encode(next(sample_trades(1)).to_avro())[5:]
    with pytest.raises(WireFormatError) as caught:
        decoder.decode(frame)
    assert caught.value.kind is WireErrorKind.UNKNOWN_SCHEMA
    assert caught.value.schema_id == 999
    assert caught.value.raw == frame


def test_registry_outage_is_not_a_wire_error(codec) -> None:
    class Down:
        def schema_text_by_id(self, schema_id: int) -> str:
            raise ConnectionError("registry unreachable")

    encoder = codec[0]
    with pytest.raises(ConnectionError):
        AvroDecoder(Down()).decode(encoder.encode(next(sample_trades(1)).to_avro()))


def test_truncated_body(codec) -> None:
    encoder, decoder, _ = codec
    frame = encoder.encode(next(sample_trades(1)).to_avro())[:-20]
    with pytest.raises(WireFormatError) as caught:
        decoder.decode(frame)
    assert caught.value.kind is WireErrorKind.BAD_BODY
    assert "schema id 42" in caught.value.reason


def test_trailing_bytes_mean_a_different_writer_schema(codec) -> None:
    encoder, decoder, _ = codec
    frame = encoder.encode(next(sample_trades(1)).to_avro()) + b"\x02\x04"
    with pytest.raises(WireFormatError) as caught:
        decoder.decode(frame)
    assert caught.value.kind is WireErrorKind.BAD_BODY
    assert "2 bytes left over" in caught.value.reason


def test_garbage_body(codec) -> None:
    frame = frame_header(42) + bytes(range(200, 256)) * 3
    with pytest.raises(WireFormatError) as caught:
        codec[1].decode(frame)
    assert caught.value.kind is WireErrorKind.BAD_BODY


# Every positive decimal the lake's decimal(38, 18) holds: up to 20 integer digits, up to 18 places.
positive_decimals = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places),
    st.integers(min_value=1, max_value=10**20 - 1),
    st.integers(min_value=0, max_value=18),
)
exchanges = st.sampled_from(list(Exchange))
trades = st.builds(
    lambda exchange, price, quantity, side, seq, t, lag, extra: TradeV2(
        message_id=str(uuid.uuid4()),
        trade_id=f"{exchange.value}-{seq}",
        symbol="BTCUSDT" if exchange is Exchange.BINANCE else "BTCUSD",
        exchange=exchange,
        asset_class="crypto",
        timestamp=t,
        price=price,
        quantity=quantity,
        side=side,
        vendor_data=extra
        | {
            Exchange.BINANCE: {
                "base_asset": "BTC",
                "quote_asset": "USDT",
                "is_buyer_maker": "true" if side is Side.SELL else "false",
                "event_type": "trade",
            },
            Exchange.KRAKEN: {
                "pair": "BTC/USD",
                "base_asset": "BTC",
                "quote_asset": "USD",
                "order_type": "market",
            },
        }[exchange],
        sequence_number=seq,
        ingestion_timestamp=t + lag,
    ),
    exchanges,
    positive_decimals,
    positive_decimals,
    st.sampled_from(list(Side)),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=1_230_940_800_000_000, max_value=4_000_000_000_000_000),
    st.integers(min_value=0, max_value=10_000_000),
    st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(trades)
def test_round_trip_property_decimals_exact(trade: TradeV2) -> None:
    encoder = AvroEncoder(7, trade_v2_schema())
    decoder = AvroDecoder(CountingLookup({7: trade_v2_schema_text()}))
    assert validate(trade) == []
    back = TradeV2.from_avro(decoder.decode(encoder.encode(trade.to_avro())).datum)
    assert back == trade
    assert format(back.price, "f") == format(trade.price, "f")
    assert format(back.quantity, "f") == format(trade.quantity, "f")


def test_a_registered_schema_the_codec_cannot_read_is_a_wire_error_naming_it() -> None:
    decoder = AvroDecoder(CountingLookup({9: '{"type": "record", "name": "9bad", "fields": []}'}))
    with pytest.raises(WireFormatError) as caught:
        decoder.decode(frame_header(9) + b"\x00")
    assert caught.value.kind is WireErrorKind.BAD_BODY and caught.value.schema_id == 9
    assert "schema id 9 from the Schema Registry cannot be read" in caught.value.reason
