"""The consumer procedure's verdicts: measured values in, CheckResults out, nothing read from the stack.

Kept apart from the procedure so every verdict can be fed failing figures cheaply. Each failing verdict
carries the seed's diagnosis ("Common Validation Failures") as evidence: the run's dead letters when
consumed != written, the gaps themselves when the sequence tracker saw some, the commit times when slow.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from k2tui.consume.sequence import SequenceEvent
from k2tui.ingest.stats import percentile
from k2tui.lake.values import micros_of
from k2tui.model.trade import Exchange, Side, TradeV2
from k2tui.model.validation import FIELDS, validate
from k2tui.validate.check import CheckResult, CheckStatus, Stage, make_check, verdict

MIN_SUSTAINED_RATE = 100.0
"""msg/s: the seed's "Throughput: >100 msg/sec sustained (cold start can be slower)". A run of one
batch is all cold start (the seed's 15-30 msg/s), so there a lower rate only warns."""
MAX_WRITE_P99_S = 2.0
MAX_MEMORY_BYTES = 500_000_000
EVIDENCE_LINES = 10

ROW_TYPES: dict[str, tuple[type, ...]] = {
    "message_id": (str,),
    "trade_id": (str,),
    "symbol": (str,),
    "exchange": (Exchange,),
    "asset_class": (str,),
    "timestamp": (datetime,),
    "price": (Decimal,),
    "quantity": (Decimal,),
    "side": (Side,),
    "vendor_data": (dict,),
    "sequence_number": (int, type(None)),
    "ingestion_timestamp": (datetime,),
}
"""What the query engine returns per v2 field (the schema's types; timestamps as UTC datetimes)."""


@dataclass(frozen=True)
class Letter:
    """One dead letter of this run, as the diagnostics show it."""

    id: str
    reason: str
    position: str = ""
    raw_size: int | None = None
    """Bytes of the original message; None when the entry does not hold it (or it does not decode)."""

    def line(self) -> str:
        where = f" {self.position}" if self.position else ""
        return f"DLQ {self.id}{where}: {self.reason or '(no reason)'}"


def judge_backlog(
    caught_up: bool,
    taken: int,
    written: int,
    dead_lettered: int,
    duplicates: int,
    error: str,
    seconds: float,
    evidence: list[str],
) -> CheckResult:
    """Clean state: the group's earlier messages written (or refused) before the known ones are sent."""
    lost = taken - written - dead_lettered - duplicates
    if not caught_up:
        detail = (
            f"still not caught up after {seconds:.0f} s ({taken:,} taken): something keeps producing to the "
            "topics; stop it (e.g. `k2tui stream`) and run again"
        )
    else:
        detail = (
            f"{taken:,} backlog message(s) taken in {seconds:.1f} s ({written:,} written, "
            f"{dead_lettered:,} dead-lettered, {duplicates:,} duplicates)"
            + (f"; {lost:,} unaccounted for" if lost else "")
        )
    return CheckResult(
        "consumer.backlog",
        "Group backlog written before the run",
        verdict(caught_up and lost == 0 and not error),
        detail + (f"; {error}" if error else ""),
        {"backlog": taken, "seconds": round(seconds, 2)},
        evidence,
        stage=Stage.CONSUMER,
    )


def judge_baseline(snapshots: int, records: int | None, evidence: list[str]) -> CheckResult:
    """The table's state before the run: it needs a record count the run's can be compared with."""
    return CheckResult(
        "consumer.baseline",
        "Baseline",
        verdict(records is not None),
        f"{snapshots} snapshots, "
        + (
            "but the current snapshot's summary has no total-records to compare against"
            if records is None
            else f"{records:,} records (the current snapshot's summary total-records)"
        ),
        {"snapshots": snapshots, "records": records},
        evidence,
        stage=Stage.ICEBERG,
    )


def judge_produced(acked: int, expected: int, seconds: float, error: str, evidence: list[str]) -> CheckResult:
    """Every known message acknowledged by Kafka, or the run cannot expect them in the lake."""
    return CheckResult(
        "consumer.produced",
        f"{expected:,} known messages produced",
        verdict(acked == expected),
        f"{acked:,} of {expected:,} acknowledged by Kafka (acks=all) in {seconds:.1f} s"
        + (f"; {error}" if acked != expected and error else ""),
        {"acked": acked, "seconds": round(seconds, 2)},
        evidence,
        stage=Stage.KAFKA,
    )


@dataclass(frozen=True)
class ConsumeFigures:
    """The seed's statistics block of one consumer run, with what k2tui adds to it."""

    expected: int
    consumed: int
    written: int
    dead_lettered: int
    duplicates: int
    errors: int
    seconds: float
    sustained_rate: float | None
    snapshots: int
    commit_seconds: Sequence[float] = ()
    gaps: int = 0
    gap_events: Sequence[SequenceEvent] = ()
    expected_gaps: int = 0
    last_error: str = ""
    retried: int = 0
    letters: Sequence[Letter] = ()
    """Dead letters this run added (the consumer's and anything else's)."""
    cold_start: bool = False
    """The run fits in one batch: nothing in it is sustained."""

    @property
    def throughput(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0

    def statistics(self) -> dict[str, Any]:
        p50, p99 = percentile(self.commit_seconds, 0.5), percentile(self.commit_seconds, 0.99)
        return {
            "messages_consumed": self.consumed,
            "messages_written": self.written,
            "errors": self.errors,
            "sequence_gaps": self.gaps,
            "duration_s": round(self.seconds, 2),
            "throughput_msg_s": round(self.throughput, 2),
            "sustained_msg_s": None if self.sustained_rate is None else round(self.sustained_rate, 2),
            "dead_lettered": self.dead_lettered,
            "duplicates": self.duplicates,
            "snapshots_added": self.snapshots,
            "commit_p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "commit_p99_ms": None if p99 is None else round(p99 * 1000, 1),
        }


def judge_consumption(f: ConsumeFigures) -> list[CheckResult]:
    """The seed's step 2 checks: consumed N, written == consumed, nothing lost, no errors, gaps, speed."""
    unwritten = f.consumed - f.written
    lost = f.consumed - (f.written + f.dead_lettered + f.duplicates)
    error_lines = [f"error: {f.last_error}"] if f.last_error else []
    if f.retried:
        error_lines.append(f"{f.retried} failures of the lake, registry or Kafka were retried")
    stats = f.statistics()
    return [
        _consumer(
            "consumer.consumed",
            "Messages consumed",
            verdict(f.consumed == f.expected),
            f"{f.consumed:,} consumed of the {f.expected:,} produced",
            stats,
            [f"{key}: {value}" for key, value in stats.items()] + error_lines,
        ),
        _consumer(
            "consumer.written",
            "Messages consumed == messages written",
            verdict(unwritten == 0),
            f"{f.written:,} written of {f.consumed:,} consumed" + (f"; {_unwritten(f)}" if unwritten else ""),
            {"consumed": f.consumed, "written": f.written, "dead_lettered": f.dead_lettered},
            ([letter.line() for letter in f.letters[:EVIDENCE_LINES]] + error_lines) if unwritten else [],
        ),
        _consumer(
            "consumer.no_loss",
            "No message lost (consumed = written + dead-lettered + duplicates)",
            verdict(lost == 0),
            f"{f.consumed:,} = {f.written:,} + {f.dead_lettered:,} + {f.duplicates:,}"
            if lost == 0
            else f"{lost:,} of {f.consumed:,} consumed are neither written, dead-lettered nor duplicates",
            {"unaccounted": lost},
            error_lines if lost else [],
        ),
        _consumer(
            "consumer.errors",
            "No unhandled errors",
            verdict(f.errors == 0),
            f"{f.errors} unhandled error(s)" + (f": {f.last_error}" if f.last_error else ""),
            {"errors": f.errors, "retried": f.retried},
            error_lines,
        ),
        _consumer(
            "consumer.sequence_gaps",
            "Sequence gaps tracked",
            verdict(f.gaps == f.expected_gaps),
            f"{f.gaps} gap(s) seen, {f.expected_gaps} expected"
            + (" (the trade ids produced are consecutive per symbol)" if f.expected_gaps == 0 else ""),
            {"gaps": f.gaps, "expected": f.expected_gaps},
            gap_lines(f.gap_events),
        ),
        _consumer(
            "consumer.throughput",
            "Throughput within the expected range",
            verdict(
                f.sustained_rate is not None and f.sustained_rate > MIN_SUSTAINED_RATE,
                otherwise=_slow(f.cold_start),
            ),
            f"{_rate(f.sustained_rate)} sustained (first message to last write; more than "
            f"{MIN_SUSTAINED_RATE:g} expected), {f.throughput:.1f} msg/s over {f.seconds:.2f} s "
            "with start-up",
            {"sustained_msg_s": stats["sustained_msg_s"], "throughput_msg_s": stats["throughput_msg_s"]},
            commit_lines(f.commit_seconds),
        ),
    ]


def _unwritten(f: ConsumeFigures) -> str:
    parts = []
    if f.dead_lettered:
        parts.append(f"{f.dead_lettered:,} went to the DLQ ({len(f.letters)} entries this run, below)")
    if f.duplicates:
        parts.append(f"{f.duplicates:,} were duplicates of a message id already taken")
    rest = f.consumed - f.written - f.dead_lettered - f.duplicates
    if rest:
        parts.append(f"{rest:,} are unaccounted for")
    return "; ".join(parts)


def gap_lines(events: Iterable[SequenceEvent]) -> list[str]:
    """The gaps themselves, as the seed's `grep "sequence gap detected"` would show them."""
    return [
        f"gap on {e.exchange} {e.symbol}: expected {e.expected}, got {e.got} ({e.size} missing)"
        for e in list(events)[:EVIDENCE_LINES]
    ]


def commit_lines(seconds: Sequence[float]) -> list[str]:
    """Iceberg commit times: what the seed's "transaction_duration_ms" grep looks for when slow."""
    if not seconds:
        return ["no Iceberg commit was timed"]
    p50, p99 = percentile(seconds, 0.5), percentile(seconds, 0.99)
    assert p50 is not None and p99 is not None
    return [
        f"Iceberg commits: {len(seconds)}, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"slowest {max(seconds) * 1000:.0f} ms"
    ]


@dataclass(frozen=True)
class SnapshotView:
    snapshot_id: int
    operation: str
    summary: Mapping[str, str]
    by_consumer: bool
    """Written by a consumer append (its summary holds the commit id)."""

    def line(self) -> str:
        added = self.summary.get("added-records", "?")
        files = self.summary.get("added-data-files", "?")
        return (
            f"snapshot {self.snapshot_id} ({self.operation}): added-records {added}, added-data-files {files}"
        )


@dataclass(frozen=True)
class LakeFigures:
    """What the table looked like before and after, and how often each produced message id is in it."""

    expected: int
    batch_size: int
    snapshots_before: int
    snapshots_after: int
    records_before: int | None
    records_after: int | None
    """Summary total-records; None where the summary does not state it."""
    new_snapshots: Sequence[SnapshotView]
    expired: int
    """Snapshots of the baseline no longer in the table (expired by some maintenance meanwhile)."""
    id_counts: Mapping[str, int]
    """Occurrences in the table of each produced message id (0 for a missing one)."""
    flush_interval: float


def predicted_snapshots(messages: int, batch_size: int) -> int:
    """Appends the batch policy makes when the backlog fills every batch: one snapshot each."""
    return math.ceil(messages / batch_size)


def judge_lake(f: LakeFigures) -> list[CheckResult]:
    """The seed's step 3: snapshots as predicted, N more records, summaries, each message id once."""
    predicted = predicted_snapshots(f.expected, f.batch_size)
    added = len(f.new_snapshots)
    others = [s for s in f.new_snapshots if not s.by_consumer]
    appends = added - len(others)
    why = (
        f"{f.expected:,} messages in batches of {f.batch_size:,} → ceil({f.expected:,}/{f.batch_size:,}) = "
        f"{predicted} appends, one snapshot each (the flush interval was {f.flush_interval:g} s, so only "
        "a full batch or the end of the run closes one)"
    )
    accounting = [why, f"{appends} snapshot(s) by consumer appends, {len(others)} by anything else"]
    accounting += [s.line() for s in others[:EVIDENCE_LINES]]
    if f.expired:
        accounting.append(f"{f.expired} snapshot(s) of the baseline were expired meanwhile")
    records = (
        None if f.records_after is None or f.records_before is None else f.records_after - f.records_before
    )
    incomplete = [s for s in f.new_snapshots if not {"added-records", "added-data-files"} <= s.summary.keys()]
    added_records = sum(int(s.summary.get("added-records", 0)) for s in f.new_snapshots)
    missing = sorted(i for i, n in f.id_counts.items() if n == 0)
    doubled = sorted((i for i, n in f.id_counts.items() if n > 1), key=lambda i: -f.id_counts[i])
    once = sum(1 for n in f.id_counts.values() if n == 1)
    return [
        _lake(
            "consumer.snapshots",
            "Snapshot count increased as the batch policy predicts",
            verdict(added == predicted and not others),
            f"{f.snapshots_before} → {f.snapshots_after}: {added} new snapshot(s), {predicted} predicted",
            {
                "before": f.snapshots_before,
                "after": f.snapshots_after,
                "added": added,
                "predicted": predicted,
            },
            accounting,
        ),
        _lake(
            "consumer.records",
            "Total records increased by N",
            verdict(records == f.expected),
            "the current snapshot's summary states no total-records"
            if records is None
            else f"{f.records_before:,} → {f.records_after:,}: {records:+,} records, {f.expected:+,} "
            "expected (the current snapshot's summary total-records)",
            {"before": f.records_before, "after": f.records_after, "added": records},
        ),
        _lake(
            "consumer.snapshot_summaries",
            "Each new snapshot shows added-records and added-data-files",
            verdict(bool(f.new_snapshots) and not incomplete and added_records == f.expected),
            f"{len(f.new_snapshots) - len(incomplete)} of {len(f.new_snapshots)} summaries complete; "
            f"added-records sum to {added_records:,}, {f.expected:,} expected",
            {"added_records": added_records, "incomplete": len(incomplete)},
            [s.line() for s in (incomplete or f.new_snapshots[-3:])][:EVIDENCE_LINES],
        ),
        _lake(
            "consumer.message_ids",
            "Every produced message is in the table exactly once",
            verdict(not missing and not doubled and once == f.expected),
            f"{once:,} of {f.expected:,} ids once; {len(missing):,} missing, {len(doubled):,} doubled",
            {"once": once, "missing": len(missing), "doubled": len(doubled)},
            [f"missing: {i}" for i in missing[:EVIDENCE_LINES]]
            + [f"doubled: {i} ({f.id_counts[i]} times)" for i in doubled[:EVIDENCE_LINES]],
        ),
    ]


def judge_query(
    rows: Sequence[Mapping[str, Any]], expected_ids: Sequence[str], symbol: str, query: str
) -> list[CheckResult]:
    """The seed's step 4: the expected rows, newest first, every v2 field, the schema's types, v2 rules.

    `expected_ids` are the message ids the query must return, in order (the latest produced trades of
    `symbol`).
    """
    got = [str(row.get("message_id")) for row in rows]
    unexpected = [i for i in got if i not in set(expected_ids)]
    absent = [i for i in expected_ids if i not in set(got)]
    times = [row.get("timestamp") for row in rows]
    disorder = [
        f"row {n}: {times[n - 1]} then {times[n]}"
        for n in range(1, len(times))
        if isinstance(times[n], datetime) and isinstance(times[n - 1], datetime) and times[n] > times[n - 1]
    ]
    lacking = [f"row {n}: no {name}" for n, row in enumerate(rows) for name in FIELDS if name not in row]
    mistyped = [
        f"row {n}: {name} is {type(row[name]).__name__}, expected "
        + " or ".join(t.__name__ for t in ROW_TYPES[name])
        for n, row in enumerate(rows)
        for name in FIELDS
        if name in row and not _typed(row[name], ROW_TYPES[name])
    ]
    broken = [f"row {n}: {v}" for n, row in enumerate(rows) for v in _violations(row)]
    latest = str(times[0]) if times else "none"
    return [
        _query(
            "consumer.query_rows",
            "Query returns the expected records",
            verdict(len(rows) == len(expected_ids) and not unexpected and not absent),
            f"{len(rows)} returned, {len(expected_ids)} expected (the latest produced {symbol} trades); "
            f"latest timestamp {latest}",
            {"returned": len(rows), "expected": len(expected_ids)},
            [query]
            + [f"not returned: {i}" for i in absent[:EVIDENCE_LINES]]
            + [f"not expected: {i}" for i in unexpected[:EVIDENCE_LINES]],
        ),
        _query(
            "consumer.query_order",
            "Timestamp ordering correct (newest first)",
            verdict(bool(rows) and not disorder),
            f"{len(rows)} rows in descending timestamp order"
            if not disorder
            else f"{len(disorder)} out of order",
            {"out_of_order": len(disorder)},
            disorder[:EVIDENCE_LINES],
        ),
        _query(
            "consumer.query_fields",
            "All v2 schema fields present",
            verdict(bool(rows) and not lacking),
            f"{len(FIELDS)} fields in each of {len(rows)} rows"
            if not lacking
            else f"{len(lacking)} field(s) missing",
            {"missing": len(lacking)},
            lacking[:EVIDENCE_LINES] or [f"fields: {', '.join(FIELDS)}"],
        ),
        _query(
            "consumer.query_types",
            "Data types match the schema and rows pass the v2 rules",
            verdict(bool(rows) and not mistyped and not broken),
            f"{len(mistyped)} mistyped value(s), {len(broken)} v2 violation(s) in {len(rows)} rows",
            {"mistyped": len(mistyped), "violations": len(broken)},
            (mistyped + broken)[:EVIDENCE_LINES],
        ),
    ]


def _typed(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _violations(row: Mapping[str, Any]) -> list[str]:
    """The v2 rules on a query row (timestamps back to their int64 µs); a row not even a trade says so."""
    try:
        trade = TradeV2(**{k: (micros_of(v) if isinstance(v, datetime) else v) for k, v in row.items()})
    except TypeError as error:
        return [f"not a v2 record: {error}"]
    return [str(v) for v in validate(trade)]


@dataclass(frozen=True)
class MetricsReading:
    """The consumer's figures as its metrics report them, from Prometheus or from /metrics scrapes."""

    source: str
    """Which, and why: e.g. "Prometheus (job consumer)" or "/metrics scrapes (Prometheus not ready)"."""
    throughput: float | None
    write_p99_s: float | None
    memory_bytes: float | None
    batches: float | None
    batched_records: float | None
    queries: Mapping[str, str] = field(default_factory=dict)
    """How each figure was read (throughput, p99, memory, batch): the PromQL, or the scrape arithmetic."""


def judge_metrics(
    r: MetricsReading, batch_size: int, expected_batches: int, messages: int
) -> list[CheckResult]:
    """The seed's step 5 thresholds. A figure the metrics do not give fails: it cannot be shown to hold."""
    mean_batch = r.batched_records / r.batches if r.batches and r.batched_records is not None else None
    predicted_mean = messages / expected_batches if expected_batches else 0.0
    batch_ok = (
        mean_batch is not None
        and mean_batch <= batch_size
        and abs(mean_batch - predicted_mean) <= max(1.0, 0.02 * predicted_mean)
    )

    def evidence(figure: str) -> list[str]:
        return [f"source: {r.source}", *([r.queries[figure]] if figure in r.queries else [])]

    return [
        _metrics(
            "consumer.metrics_throughput",
            "Throughput > 100 msg/s (metrics)",
            verdict(
                r.throughput is not None and r.throughput > MIN_SUSTAINED_RATE,
                otherwise=_slow(expected_batches <= 1),
            ),
            f"{_rate(r.throughput)}, more than {MIN_SUSTAINED_RATE:g} expected",
            {"msg_per_s": _rounded(r.throughput), "source": r.source},
            evidence("throughput"),
        ),
        _metrics(
            "consumer.metrics_write_p99",
            "p99 Iceberg write duration < 2 s",
            verdict(r.write_p99_s is not None and r.write_p99_s < MAX_WRITE_P99_S),
            ("no write observed" if r.write_p99_s is None else f"{r.write_p99_s * 1000:.0f} ms")
            + f", under {MAX_WRITE_P99_S:g} s expected",
            {"p99_s": _rounded(r.write_p99_s, 4), "source": r.source},
            evidence("p99"),
        ),
        _metrics(
            "consumer.metrics_memory",
            "Memory < 500 MB",
            verdict(r.memory_bytes is not None and r.memory_bytes < MAX_MEMORY_BYTES),
            ("not reported" if r.memory_bytes is None else f"{r.memory_bytes / 1e6:.0f} MB resident")
            + f", under {MAX_MEMORY_BYTES / 1e6:.0f} MB expected (the consumer's process)",
            {"rss_mb": None if r.memory_bytes is None else round(r.memory_bytes / 1e6, 1)},
            evidence("memory"),
        ),
        _metrics(
            "consumer.metrics_batch_size",
            "Batch size as configured",
            verdict(batch_ok),
            ("no batch observed" if mean_batch is None else f"{mean_batch:.1f} records a batch on average")
            + f"; {batch_size:,} configured, so {predicted_mean:.1f} predicted "
            f"({messages:,} in {expected_batches} batches)",
            {"mean_batch": _rounded(mean_batch), "configured": batch_size, "batches": _rounded(r.batches)},
            evidence("batch"),
        ),
    ]


def judge_dlq(letters: Sequence[Letter], unreadable: Sequence[str]) -> CheckResult:
    """The seed's step 6: no new entry, or each new one says why and keeps the original message."""
    faulty = [letter for letter in letters if not letter.reason.strip() or not letter.raw_size]
    problems = [
        f"{letter.id}: "
        + " and ".join(
            p
            for p, bad in (
                ("no reason", not letter.reason.strip()),
                ("original message not kept", not letter.raw_size),
            )
            if bad
        )
        for letter in faulty
    ]
    problems += [f"unreadable entry {line}" for line in unreadable]
    if not letters and not unreadable:
        detail = "no new entries (the DLQ holds nothing from this run)"
    elif not problems:
        detail = f"{len(letters)} new entries, each with its reason and original message"
    else:
        detail = (
            f"{len(problems)} of {len(letters) + len(unreadable)} new entries lack a reason or the original"
        )
    return CheckResult(
        "consumer.dlq",
        "Dead-letter queue: empty, or descriptive with originals",
        verdict(not problems),
        detail,
        {"new_entries": len(letters) + len(unreadable), "faulty": len(problems)},
        (problems + [letter.line() for letter in letters if letter not in faulty])[:EVIDENCE_LINES],
        stage=Stage.DLQ,
    )


def _slow(cold_start: bool) -> CheckStatus:
    return CheckStatus.WARN if cold_start else CheckStatus.FAIL


def _rate(value: float | None) -> str:
    return "no rate measured" if value is None else f"{value:,.1f} msg/s"


def _rounded(value: float | None, places: int = 2) -> float | None:
    return None if value is None else round(value, places)


_consumer = partial(make_check, Stage.CONSUMER)
_lake = partial(make_check, Stage.ICEBERG)
_query = partial(make_check, Stage.QUERY)
_metrics = partial(make_check, Stage.METRICS)


def id_counts(known: Iterable[str], found: Iterable[str]) -> dict[str, int]:
    """Occurrences of each known id among `found` (0 for the missing)."""
    seen = Counter(found)
    return {i: seen.get(i, 0) for i in known}
