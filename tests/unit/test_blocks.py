"""Decoding many v2 bodies in one call gives what decoding each gives, or refuses the whole call."""

import random
from typing import Any

import pytest

from k2tui.model.blocks import BlockDecodeError, V2BlockDecoder
from k2tui.model.samples import sample_trades
from k2tui.model.schema import trade_v2_schema
from k2tui.model.wire import HEADER_SIZE, AvroDecoder, AvroEncoder, frame_header

pytestmark = pytest.mark.unit

ENCODER = AvroEncoder(1, trade_v2_schema())
AWKWARD_VENDOR_DATA = {
    "quote": 'say "hi"',
    "backslash": "C:\\path\\",
    "lines": "one\ntwo\ttab\r\x00\x1f",
    "unicode": "Zürich 北京 \U0001f680",
    "json": '{"nested": [1, 2]}',
    "": "empty key",
    "long": "x" * 5000,
}


def _body(datum: dict[str, Any]) -> bytes:
    return ENCODER.encode(datum)[HEADER_SIZE:]


def _rows(datums: list[dict[str, Any]]) -> list[dict[str, Any]]:
    block = V2BlockDecoder().decode([_body(d) for d in datums])
    rows = block.table.to_pylist()
    assert [dict(row["vendor_data"]) for row in rows] == block.vendor_data
    return [{**row, "vendor_data": vendor} for row, vendor in zip(rows, block.vendor_data, strict=True)]


def test_a_block_decodes_every_field_as_the_avro_decoder_does() -> None:
    datums = [t.to_avro() for t in sample_trades(3000, seed=3)]
    for datum in datums[::7]:
        datum["sequence_number"] = None  # the union's other branch, as Kraken v1 trades have it
    assert {d["exchange"] for d in datums} == {"BINANCE", "KRAKEN"}
    assert _rows(datums) == datums


def test_map_values_that_json_must_escape_come_back_exactly() -> None:
    datum = next(sample_trades(1, seed=4)).to_avro()
    awkward = {**datum, "vendor_data": AWKWARD_VENDOR_DATA}
    empty = {**datum, "vendor_data": {}}
    assert len(_body(awkward)) > 4096  # a block size past the prefixes made once
    assert _rows([awkward, empty, datum]) == [awkward, empty, datum]


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda body: body + b"\x02", id="a byte left over"),
        pytest.param(lambda body: body[:-1], id="a byte missing"),
        pytest.param(lambda body: b"", id="no body"),
        pytest.param(lambda body: body.replace(b"BTC", b"\xff\xfeC", 1), id="a string that is not UTF-8"),
        pytest.param(lambda body: b"\x7f" + body[1:], id="a string longer than the body"),
    ],
)
def test_one_body_that_does_not_decode_on_its_own_refuses_the_whole_call(broken: Any) -> None:
    bodies = [_body(t.to_avro()) for t in sample_trades(50, seed=6)]
    assert b"BTC" in bodies[20]
    bodies[20] = broken(bodies[20])
    with pytest.raises(BlockDecodeError):
        V2BlockDecoder().decode(bodies)


def test_a_body_short_by_the_bytes_its_neighbour_has_over_is_still_refused() -> None:
    """Concatenated, the two would read as two records; one block each, neither does."""
    first, second = (_body(t.to_avro()) for t in sample_trades(2, seed=7))
    with pytest.raises(BlockDecodeError):
        V2BlockDecoder().decode([first[:-4], first[-4:] + second])


def test_nothing_to_decode_is_refused() -> None:
    with pytest.raises(BlockDecodeError):
        V2BlockDecoder().decode([])


def test_a_corrupted_body_is_never_accepted_unless_the_avro_decoder_accepts_it_as_the_same_record() -> None:
    """Random bytes changed, cut or added: the block either refuses, or agrees with decoding alone."""
    chooser = random.Random(31)
    decoder = AvroDecoder(lookup=None)  # type: ignore[arg-type]
    decoder.add_schema(1, trade_v2_schema())
    good = [_body(t.to_avro()) for t in sample_trades(40, seed=8)]
    accepted = refused = 0
    for _ in range(600):
        bodies = list(good)
        row = chooser.randrange(len(bodies))
        body = bytearray(bodies[row])
        for _ in range(chooser.randint(1, 3)):
            body[chooser.randrange(len(body))] = chooser.randrange(256)
        bodies[row] = bytes(body[: chooser.choice((len(body), chooser.randrange(len(body))))])
        try:
            block = V2BlockDecoder().decode(bodies)
        except BlockDecodeError:
            refused += 1
            continue
        accepted += 1
        alone = decoder.decode(frame_header(1) + bodies[row]).datum  # raises if it refuses the body
        decoded = block.table.slice(row, 1).to_pylist()[0]
        assert {**decoded, "vendor_data": block.vendor_data[row]} == alone
    assert accepted and refused  # both outcomes were exercised
