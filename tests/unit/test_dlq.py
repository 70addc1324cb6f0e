"""The dead-letter queue's files: what is written, how it reads back, and who may read it."""

import json
import os
import stat
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from k2tui.config import resolve_settings
from k2tui.ingest.dlq import (
    DeadLetterError,
    DeadLetterFilter,
    DeadLetterQueue,
    Landing,
    ReplayRecord,
    UnreadableLine,
    collect_dead_letters,
    describe_payload,
    dlq_dir,
    find_dead_letter,
    read_dead_letters,
)
from k2tui.ingest.replay import ReplayStatus, plan_replay
from k2tui.model.samples import sample_trades

NO_REGISTRY = "http://127.0.0.1:9"  # nothing listens: a test that reaches it fails loudly


def _lines(directory: Path) -> list[dict]:
    """The entries as jq sees them."""
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_bytes_that_are_not_utf8_round_trip_exactly(tmp_path: Path) -> None:
    every_byte = bytes(range(256)) * 3
    DeadLetterQueue(tmp_path, "consumer").put("bad_body: nope", every_byte)
    (letter,) = read_dead_letters(tmp_path)
    assert letter.raw_bytes() == every_byte
    assert letter.raw_text is None
    assert _lines(tmp_path)[0]["raw_base64"]


def test_text_keeps_its_readable_copy_beside_the_base64(tmp_path: Path) -> None:
    raw = '{"e":"trade","s":"BTCUSDT","p":"-1"} — naïve ✓'
    DeadLetterQueue(tmp_path, "stream-binance").put("price must be > 0", raw, stream="binance")
    (line,) = _lines(tmp_path)
    assert line["raw_text"] == raw
    (letter,) = read_dead_letters(tmp_path)
    assert letter.raw_bytes() == raw.encode() and letter.context == {"stream": "binance"}


def test_an_empty_payload_is_kept_as_empty(tmp_path: Path) -> None:
    DeadLetterQueue(tmp_path, "consumer").put("too_short: 0 bytes", b"", topic="t", partition=0, offset=3)
    (letter,) = read_dead_letters(tmp_path)
    assert letter.raw_bytes() == b"" and letter.raw_base64 == ""
    assert describe_payload(letter.raw_bytes()) == "(empty)"


def test_a_large_payload_is_one_line_and_round_trips(tmp_path: Path) -> None:
    large = os.urandom(3 * 1024 * 1024)
    DeadLetterQueue(tmp_path, "consumer").put("bad_body", large)
    (path,) = tmp_path.glob("*.jsonl")
    assert path.read_bytes().count(b"\n") == 1
    (letter,) = read_dead_letters(tmp_path)
    assert letter.raw_bytes() == large


def test_decoded_values_are_written_exactly_not_as_floats_or_reprs(tmp_path: Path) -> None:
    message_id = uuid.uuid4()
    decoded = {
        "price": Decimal("0.000046738028"),
        "quantity": Decimal("1E-18"),
        "at": datetime(2026, 1, 13, 15, 30, 45),
        "at_utc": datetime(2026, 1, 13, 15, 30, 45, 123456, tzinfo=UTC),
        "message_id": message_id,
        "blob": b"\x00\xff",
        "nested": {"levels": [Decimal("86414.17"), {"deep": datetime(2026, 1, 1, tzinfo=UTC)}]},
    }
    DeadLetterQueue(tmp_path, "consumer").put("breaks the v2 rules", b"\x00", decoded=decoded)
    written = _lines(tmp_path)[0]["decoded"]
    assert written == {
        "price": "0.000046738028",
        "quantity": "1E-18",
        "at": "2026-01-13T15:30:45",
        "at_utc": "2026-01-13T15:30:45.123456Z",
        "message_id": str(message_id),
        "blob": "AP8=",
        "nested": {"levels": ["86414.17", {"deep": "2026-01-01T00:00:00Z"}]},
    }
    assert Decimal(written["price"]) == decoded["price"]


def test_a_whole_v2_datum_keeps_every_field(tmp_path: Path) -> None:
    datum = next(sample_trades(1, seed=3)).to_avro() | {"price": Decimal("-86414.17")}
    DeadLetterQueue(tmp_path, "consumer").put("price: must be > 0", b"\x00", decoded=datum)
    (letter,) = read_dead_letters(tmp_path)
    assert letter.decoded == msgspec.to_builtins(datum) and letter.decoded["price"] == "-86414.17"


def test_values_json_cannot_hold_never_stop_the_write(tmp_path: Path) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque thing>"

    class Unshowable:
        def __repr__(self) -> str:
            raise ValueError("no")

    circular: dict[str, object] = {"price": Decimal("1.5")}
    circular["self"] = circular
    dlq = DeadLetterQueue(tmp_path, "consumer")
    dlq.put("odd values", b"x", decoded={"thing": Opaque(), (1, 2): complex(1, 2)})
    dlq.put("circular", b"y", decoded=circular, exchange="binance")
    dlq.put("unshowable", b"z", decoded=[Unshowable()])
    odd, looped, unshowable = read_dead_letters(tmp_path)
    assert odd.decoded == {"thing": "Opaque: <opaque thing>", "tuple: (1, 2)": "complex: (1+2j)"}
    assert looped.decoded == "{'price': Decimal('1.5'), 'self': {...}}"
    assert looped.context == {"exchange": "'binance'"}
    assert unshowable.decoded == "<list: ValueError while showing it>"
    assert [letter.raw_bytes() for letter in (odd, looped, unshowable)] == [b"x", b"y", b"z"]
    assert dlq.written == 3


def test_kafka_coordinates_and_times_are_kept(tmp_path: Path) -> None:
    DeadLetterQueue(tmp_path, "consumer").put(
        "unknown_schema: schema id 9 is not in the Schema Registry",
        b"\x00\x00\x00\x00\x09",
        error_type="WireFormatError",
        topic="market.crypto.trades.binance",
        partition=2,
        offset=41,
        key=b"BTCUSDT",
        kafka_timestamp_ms=1_795_276_800_156,
        trade_time_us=1_795_276_800_156_123,
    )
    (letter,) = read_dead_letters(tmp_path)
    assert (letter.topic, letter.partition, letter.offset) == ("market.crypto.trades.binance", 2, 41)
    assert letter.position == "market.crypto.trades.binance[2]@41"
    assert letter.key_bytes() == b"BTCUSDT" and letter.error_type == "WireFormatError"
    assert letter.kafka_time == datetime(2026, 11, 21, 16, 0, 0, 156000, tzinfo=UTC)
    assert letter.trade_time == datetime(2026, 11, 21, 16, 0, 0, 156123, tzinfo=UTC)
    assert abs((datetime.now(UTC) - letter.failed_at).total_seconds()) < 60
    # The seed reads the error sentence with `jq '.error'`.
    assert _lines(tmp_path)[0]["error"].startswith("unknown_schema: schema id 9")


def test_an_implausible_time_is_left_out_not_fatal(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, "consumer")
    dlq.put("x", b"x", kafka_timestamp_ms=10**30, trade_time_us=-(10**30))
    dlq.put("no timestamp", b"y", kafka_timestamp_ms=-1, trade_time_us="1795276800156123")  # type: ignore[arg-type]
    for letter in read_dead_letters(tmp_path):
        assert letter.kafka_time is None and letter.trade_time is None


def test_files_are_0600_in_a_0700_directory_even_under_umask_0(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "dlq"
    previous = os.umask(0)
    try:
        DeadLetterQueue(directory, "consumer").put("x", b"x")
    finally:
        os.umask(previous)
    (path,) = directory.glob("*.jsonl")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_file_made_readable_to_others_is_closed_again(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, "consumer")
    dlq.put("first", b"1")
    (path,) = tmp_path.glob("*.jsonl")
    path.chmod(0o644)
    dlq.put("second", b"2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [letter.reason for letter in read_dead_letters(tmp_path)] == ["first", "second"]


def test_threads_writing_at_once_lose_and_tear_nothing(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, "consumer")
    payload = b"\x00" + os.urandom(20_000)

    def write(worker: int) -> None:
        for n in range(100):
            dlq.put(f"worker {worker} message {n}", payload)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    unreadable: list[UnreadableLine] = []
    letters = list(read_dead_letters(tmp_path, on_unreadable=unreadable.append))
    assert unreadable == [] and len(letters) == 800 == dlq.written
    assert len({letter.reason for letter in letters}) == 800
    assert all(letter.raw_bytes() == payload for letter in letters)


def test_processes_appending_to_one_file_write_whole_lines(tmp_path: Path) -> None:
    """Lines of 300 KB: far past any buffer, so only one O_APPEND write per line keeps them whole."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom k2tui.ingest.dlq import DeadLetterQueue\n"
        "dlq = DeadLetterQueue(Path(sys.argv[1]), 'consumer')\n"
        "for n in range(60):\n    dlq.put(f'{sys.argv[2]} {n}', sys.argv[2].encode() * 300_000)\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), name]) for name in ("a", "b", "c")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    unreadable: list[UnreadableLine] = []
    letters = list(read_dead_letters(tmp_path, on_unreadable=unreadable.append))
    assert unreadable == [] and len(letters) == 180
    assert all(letter.raw_bytes() == letter.reason[0].encode() * 300_000 for letter in letters)


def test_a_kafka_message_keeps_its_id_and_other_entries_never_share_one(tmp_path: Path) -> None:
    where = {"topic": "market.crypto.trades.kraken", "partition": 1, "offset": 77}
    first = DeadLetterQueue(tmp_path / "a", "consumer").put("bad", b"\x00abc", **where)
    again = DeadLetterQueue(tmp_path / "b", "consumer").put("bad after a restart", b"\x00abc", **where)
    elsewhere = DeadLetterQueue(tmp_path / "a", "consumer").put("bad", b"\x00abc", **where | {"offset": 78})
    assert first.id == again.id != elsewhere.id and len(first.id) == 16
    assert [letter.id for letter in read_dead_letters(tmp_path / "a")] == [first.id, elsewhere.id]

    stream = DeadLetterQueue(tmp_path / "s", "stream-binance")
    ids = {stream.put("not valid JSON", "{").id for _ in range(2000)}
    assert len(ids) == 2000


def test_a_message_refused_twice_is_listed_once(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, "consumer")
    for _ in range(2):  # the consumer read it again after a crash before its commit
        dlq.put("bad_magic", b"oops", topic="t", partition=0, offset=5)
    dlq.put("bad_magic", b"oops", topic="t", partition=0, offset=6)
    assert len(list(read_dead_letters(tmp_path))) == 3
    assert [letter.offset for letter in collect_dead_letters(tmp_path)] == [5, 6]


def test_a_corrupt_line_is_reported_and_the_rest_still_read(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, "consumer")
    dlq.put("before", b"1")
    (path,) = tmp_path.glob("*.jsonl")
    with path.open("ab") as out:
        out.write(b'{"id": "torn", "failed_at": "2026-\n')
        out.write(b"\n")
        out.write(b'{"some": "other json"}\n')
    dlq.put("after", b"2")
    unreadable: list[UnreadableLine] = []
    letters = list(read_dead_letters(tmp_path, on_unreadable=unreadable.append))
    assert [letter.reason for letter in letters] == ["before", "after"]
    assert [(u.path, u.line) for u in unreadable] == [(path, 2), (path, 4)]
    assert str(unreadable[0]).startswith(f"{path}:2: ")


def test_filters_by_source_family_reason_and_text(tmp_path: Path) -> None:
    DeadLetterQueue(tmp_path, "consumer").put(
        "bad_magic: first byte is 0x70",
        b"p",
        error_type="WireFormatError",
        topic="t.one",
        partition=0,
        offset=1,
    )
    DeadLetterQueue(tmp_path, "consumer").put(
        "breaks the v2 rules: price",
        b"\x00",
        error_type="ValidationError",
        topic="t.two",
        partition=0,
        offset=1,
    )
    DeadLetterQueue(tmp_path, "stream-binance").put("not valid JSON", "{", exchange="binance")
    DeadLetterQueue(tmp_path, "stream-kraken").put("trade 1 of 2: price", "[]", exchange="kraken")
    DeadLetterQueue(tmp_path, "streamer").put("not ours", "x")

    def sources(wanted: DeadLetterFilter) -> list[str]:
        return sorted(
            letter.source + ":" + letter.reason.split(":")[0]
            for letter in collect_dead_letters(tmp_path, wanted)
        )

    assert sources(DeadLetterFilter(source="stream")) == [
        "stream-binance:not valid JSON",
        "stream-kraken:trade 1 of 2",
    ]
    assert sources(DeadLetterFilter(source="consumer", reason="validationerror")) == [
        "consumer:breaks the v2 rules"
    ]
    assert sources(DeadLetterFilter(reason="PRICE")) == [
        "consumer:breaks the v2 rules",
        "stream-kraken:trade 1 of 2",
    ]
    assert sources(DeadLetterFilter(text="t.one")) == ["consumer:bad_magic"]
    assert list(read_dead_letters(tmp_path, "stream")) == []


def test_an_id_is_found_by_a_unique_prefix_and_refused_plainly_otherwise(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, "consumer")
    # Ids of Kafka messages are hashes, so which of these share a 4-digit prefix is fixed.
    letters = [dlq.put("bad_magic", b"x", topic="t", partition=0, offset=n) for n in range(1000)]
    target = letters[123]
    assert find_dead_letter(letters, target.id[:12].upper(), tmp_path) == target
    with pytest.raises(DeadLetterError, match=r"^no dead letter in .* has the id ffffffffffffffff0"):
        find_dead_letter(letters, "ffffffffffffffff0", tmp_path)
    with pytest.raises(DeadLetterError, match="at least 4 characters"):
        find_dead_letter(letters, "ab", tmp_path)
    shared = next(
        letter.id[:4] for letter in letters if sum(o.id.startswith(letter.id[:4]) for o in letters) > 1
    )
    with pytest.raises(DeadLetterError, match=f"the id {shared} matches [0-9]+ dead letters"):
        find_dead_letter(letters, shared, tmp_path)


def test_payloads_are_shown_as_json_text_or_a_hex_dump() -> None:
    assert describe_payload(b'{"e":"trade","p":"1.5"}') == '{\n  "e": "trade",\n  "p": "1.5"\n}'
    assert describe_payload(b"plain words") == "plain words"
    dump = describe_payload(b"\x00\x00\x00\x00\x07\x02hi\xff")
    assert dump.splitlines() == [
        "Confluent wire format: magic byte 0, schema id 7",
        "00000000  00 00 00 00 07 02 68 69 ff" + " " * 21 + "  |......hi.|",
    ]


def test_the_directory_is_a_setting_defaulting_under_home(tmp_path: Path) -> None:
    home = resolve_settings(env={"K2_HOME": str(tmp_path)}).settings
    assert dlq_dir(home) == tmp_path / "dlq"
    seed = resolve_settings(env={"K2_HOME": str(tmp_path), "K2_DLQ_DIRECTORY": "/tmp/dlq"}).settings
    assert dlq_dir(seed) == Path("/tmp/dlq")


def test_replay_skips_with_a_reason_what_would_fail_again(tmp_path: Path) -> None:
    consumer = DeadLetterQueue(tmp_path, "consumer")
    bad_magic = consumer.put("bad_magic", b"no magic byte", topic="t", partition=0, offset=1)
    stream = DeadLetterQueue(tmp_path, "stream-binance")
    broken = stream.put("not valid JSON", '{"e":"tr', exchange="binance", url="wss://x/ws/btcusdt@trade")
    control = stream.put("odd", '{"result":null,"id":1}', exchange="binance", url="wss://x/ws/btcusdt@trade")
    nowhere = DeadLetterQueue(tmp_path, "elsewhere").put("who knows", b"x")
    replayed = consumer.put("unknown_schema", b"\x00\x00\x00\x00\x05", topic="t", partition=0, offset=2)
    earlier = ReplayRecord(
        id=replayed.id, replayed_at=datetime(2026, 11, 21, 12, tzinfo=UTC), landed=[Landing("t", 0, 9)]
    )

    outcomes = plan_replay(
        [bad_magic, broken, control, nowhere, replayed], {replayed.id: [earlier]}, NO_REGISTRY
    )
    assert [(o.status, o.detail.split(":")[0]) for o in outcomes] == [
        (ReplayStatus.SKIPPED, "still refused"),
        (ReplayStatus.SKIPPED, "still refused"),
        (ReplayStatus.SKIPPED, "it holds no trades now (a control message), so there is nothing to publish"),
        (ReplayStatus.SKIPPED, "it has no Kafka topic and no exchange, so there is nowhere to replay it"),
        (ReplayStatus.DONE_BEFORE, "replayed at 2026-11-21 12"),
    ]
    assert "bad_magic" in outcomes[0].detail and "t[0]@9" in outcomes[4].detail
    assert all(o.records == () for o in outcomes)
