"""`k2tui dlq list|show|replay` on a DLQ directory of the test's own, without services."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from k2tui.cli import cli
from k2tui.ingest.dlq import DeadLetter, DeadLetterQueue
from k2tui.stack.ports import find_free_port


@pytest.fixture
def dlq(tmp_path: Path) -> Path:
    return tmp_path / "somewhere" / "dlq"


def _k2tui(dlq: Path, *args: str) -> Result:
    """The CLI with the DLQ directory set the way a user sets it, by its environment variable."""
    env = {"K2_DLQ_DIRECTORY": str(dlq), "K2_HOME": str(dlq.parent / "home"), "COLUMNS": "250"}
    return CliRunner().invoke(cli, list(args), env=env)


def _fill(dlq: Path) -> dict[str, DeadLetter]:
    consumer = DeadLetterQueue(dlq, "consumer")
    stream = DeadLetterQueue(dlq, "stream-kraken")
    return {
        "magic": consumer.put(
            "bad_magic: first byte is 0x70, not the Confluent magic byte 0x00",
            b"plain text, no magic byte",
            error_type="WireFormatError",
            topic="market.crypto.trades.binance",
            partition=1,
            offset=17,
        ),
        "rules": consumer.put(
            "breaks the v2 rules: price: must be greater than zero",
            b"\x00\x00\x00\x00\x03\x48\x30\xff",
            error_type="ValidationError",
            topic="market.crypto.trades.binance",
            partition=0,
            offset=4,
            key=b"BTCUSDT",
            decoded={"symbol": "BTCUSDT", "price": Decimal("-86414.17"), "vendor_data": {"pair": "BTC/USD"}},
        ),
        "kraken": stream.put(
            "trade 1 of 1: price must be a JSON number in Kraken v2, got str '86390.1'",
            '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":"86390.1",'
            '"qty":0.0015,"ord_type":"limit","trade_id":104622311,"timestamp":"2026-11-21T16:00:01.000000Z"}]}',
            error_type="Rejected",
            exchange="kraken",
            url="wss://ws.kraken.com/v2",
        ),
    }


def test_list_shows_every_entry_and_the_count_of_each_reason(dlq: Path) -> None:
    letters = _fill(dlq)
    result = _k2tui(dlq, "dlq", "list")
    assert result.exit_code == 0, result.output
    assert f"3 dead letters in {dlq}" in result.output
    for letter in letters.values():
        assert letter.id in result.output
    assert "market.crypto.trades.binance[1]@17" in result.output
    assert "bad_magic: first byte is 0x70" in result.output
    by_reason = result.output.split("by reason")[1]
    assert "WireFormatError" in by_reason and "ValidationError" in by_reason and "Rejected" in by_reason


def test_list_filters_by_source_and_reason(dlq: Path) -> None:
    letters = _fill(dlq)
    streams = _k2tui(dlq, "dlq", "list", "--source", "stream")
    assert streams.exit_code == 0, streams.output
    assert letters["kraken"].id in streams.output and letters["magic"].id not in streams.output
    rules = _k2tui(dlq, "dlq", "list", "--reason", "v2 RULES")
    assert letters["rules"].id in rules.output and letters["kraken"].id not in rules.output
    assert "1 dead letter in" in rules.output


def test_list_json_holds_the_entries_as_stored(dlq: Path) -> None:
    letters = _fill(dlq)
    result = _k2tui(dlq, "dlq", "list", "--source", "consumer", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["directory"] == str(dlq)
    assert [e["id"] for e in listed["entries"]] == [letters["magic"].id, letters["rules"].id]
    rules = listed["entries"][1]
    assert rules["decoded"]["price"] == "-86414.17"
    assert (rules["topic"], rules["partition"], rules["offset"]) == ("market.crypto.trades.binance", 0, 4)
    assert rules["error"].startswith("breaks the v2 rules") and rules["replays"] == []


def test_an_empty_or_missing_dlq_is_said_plainly(dlq: Path) -> None:
    result = _k2tui(dlq, "dlq", "list")
    assert result.exit_code == 0
    assert result.output.strip() == f"No dead letters in {dlq}."
    _fill(dlq)
    filtered = _k2tui(dlq, "dlq", "list", "--reason", "nothing like this")
    assert filtered.output.strip() == f"No dead letters match in {dlq}."


def test_a_corrupt_line_is_named_and_the_rest_listed(dlq: Path) -> None:
    letters = _fill(dlq)
    (path,) = dlq.glob("consumer-*.jsonl")
    with path.open("ab") as out:
        out.write(b'{"id": "torn by a full disk", "fail\n')
    result = _k2tui(dlq, "dlq", "list")
    assert result.exit_code == 0
    assert f"warning: skipped an unreadable line: {path}:3: " in result.stderr
    assert all(letter.id in result.stdout for letter in letters.values())


def test_show_prints_the_error_the_coordinates_the_decoded_fields_and_the_payload(dlq: Path) -> None:
    letters = _fill(dlq)
    result = _k2tui(dlq, "dlq", "show", letters["rules"].id[:6])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"id          {letters['rules'].id}" in out
    assert "error       breaks the v2 rules: price: must be greater than zero" in out
    assert "error type  ValidationError" in out
    assert "from        market.crypto.trades.binance[0]@4" in out
    assert "key         BTCUSDT" in out
    assert '"price": "-86414.17"' in out and '"pair": "BTC/USD"' in out
    assert "payload (8 bytes):" in out
    assert "Confluent wire format: magic byte 0, schema id 3" in out
    assert "00000000  00 00 00 00 03 48 30 ff" in out


def test_show_pretty_prints_a_json_payload(dlq: Path) -> None:
    letters = _fill(dlq)
    result = _k2tui(dlq, "dlq", "show", letters["kraken"].id)
    assert result.exit_code == 0, result.output
    assert "url         wss://ws.kraken.com/v2" in result.output
    assert '{\n  "channel": "trade",\n  "type": "update",\n  "data": [' in result.output


def test_show_of_an_unknown_id_is_one_sentence_and_exit_1(dlq: Path) -> None:
    _fill(dlq)
    result = _k2tui(dlq, "dlq", "show", "0000000000000000")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no dead letter in {dlq} has the id 0000000000000000; `k2tui dlq list` shows the ids"
    ]


def test_replay_without_a_registry_is_one_sentence_and_sends_nothing(dlq: Path) -> None:
    letters = _fill(dlq)
    port = find_free_port()
    result = _k2tui(dlq, "--set", f"registry.port={port}", "dlq", "replay", "--id", letters["rules"].id)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: Schema Registry at http://127.0.0.1:{port} is unreachable")
    assert line.endswith("start the stack with `k2tui up` and replay again")
    assert not (dlq / "replayed" / "replays.jsonl").exists()


def test_replay_of_an_unknown_id_is_refused(dlq: Path) -> None:
    _fill(dlq)
    result = _k2tui(dlq, "dlq", "replay", "--dry-run", "--id", "feedfacefeedface")
    assert result.exit_code == 1
    assert "Error: no dead letter in" in result.output and "feedfacefeedface" in result.output


def test_replay_dry_run_says_why_each_entry_is_left_alone(dlq: Path) -> None:
    letters = _fill(dlq)
    result = _k2tui(dlq, "dlq", "replay", "--dry-run", "--source", "stream")
    assert result.exit_code == 0, result.output
    assert letters["kraken"].id in result.output
    assert "still refused: trade 1 of 1: price must be a JSON number" in result.output
    assert "1 skipped (dry run: nothing was sent)" in result.output
