"""Exactly once, stage by stage: what Kafka holds for a window must be in the lake and the API once each.

Kafka defines what must be there: the distinct message ids read from the window (a producer's resent
batch puts the same id in Kafka twice, and the consumer drops the copy). Each later stage is compared
with the stage before it, so a difference names the stage that lost or doubled the ids, and which.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from k2tui.model.trade import TradeV2
from k2tui.validate.check import CheckResult, Stage, verdict

SHOWN = 5
"""Ids quoted in evidence per finding; the count always comes with them."""

SeriesKey = tuple[str, str]
"""(exchange, symbol): the series an exchange's trade sequence numbers run in."""


def some(ids: Iterable[object], shown: int = SHOWN) -> str:
    """`n`: the first few, sorted, then how many more."""
    ordered = sorted(ids, key=str)
    head = ", ".join(str(i) for i in ordered[:shown])
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return f"{len(ordered)}: {head}{more}"


def consistency_checks(
    prefix: str, kafka: Sequence[TradeV2], iceberg: Counter[str], api: Counter[str] | None = None
) -> list[CheckResult]:
    """Counts, duplicates, missing ids and exchange sequences across Kafka → Iceberg (→ API).

    `iceberg` and `api` count how often each message id appears in that stage; ids that are not among
    `kafka`'s are reported as extra (the caller scopes the stages to the window's ids).
    """
    stages: list[tuple[Stage, Counter[str]]] = [(Stage.ICEBERG, iceberg)]
    if api is not None:
        stages.append((Stage.API, api))
    return [
        _counts(prefix, kafka, stages),
        _duplicates(prefix, stages),
        _missing(prefix, kafka, stages),
        _sequences(prefix, kafka, stages),
    ]


def _counts(prefix: str, kafka: Sequence[TradeV2], stages: list[tuple[Stage, Counter[str]]]) -> CheckResult:
    wanted = {t.message_id for t in kafka}
    measured: dict[str, object] = {"kafka_messages": len(kafka), "kafka_count": len(wanted)}
    evidence = []
    if len(kafka) != len(wanted):
        evidence.append(
            f"kafka holds {len(kafka) - len(wanted)} resent copies (same message id), dropped by the consumer"
        )
    for stage, ids in stages:
        measured[f"{stage.value}_count"] = sum(ids.values())
        extra = set(ids) - wanted
        if extra:
            evidence.append(f"{stage.value} has ids that are not in the Kafka window, {some(extra)}")
    counts = [len(wanted), *(sum(ids.values()) for _, ids in stages)]
    names = ["kafka", *(stage.value for stage, _ in stages)]
    shown = " = ".join(f"{name} {count}" for name, count in zip(names, counts, strict=True))
    same = len(set(counts)) == 1
    return CheckResult(
        f"{prefix}.counts",
        "Counts match at every stage",
        verdict(same and bool(wanted)),
        (shown if same else shown.replace(" = ", ", ") + ": counts differ")
        + ("" if wanted else ": no trades"),
        measured,
        evidence,
        stage=Stage.PIPELINE,
    )


def _duplicates(prefix: str, stages: list[tuple[Stage, Counter[str]]]) -> CheckResult:
    evidence = []
    measured: dict[str, object] = {}
    first: Stage | None = None
    for stage, ids in stages:
        doubled = [i for i, n in ids.items() if n > 1]
        measured[f"{stage.value}_duplicated_ids"] = len(doubled)
        if doubled:
            first = first or stage
            extra_rows = sum(ids[i] - 1 for i in doubled)
            evidence.append(f"{stage.value} doubled {some(doubled)} ({extra_rows} extra rows)")
    return CheckResult(
        f"{prefix}.duplicates",
        "No duplicates by message id",
        verdict(first is None),
        "every message id once at each stage"
        if first is None
        else f"{first.value} doubled ids: {evidence[0]}",
        measured,
        evidence,
        stage=first or Stage.PIPELINE,
    )


def _missing(prefix: str, kafka: Sequence[TradeV2], stages: list[tuple[Stage, Counter[str]]]) -> CheckResult:
    """Each stage against the one before it, so an id lost by the lake is not blamed on the API too."""
    evidence = []
    measured: dict[str, object] = {}
    first: Stage | None = None
    before_name, before = "kafka", {t.message_id for t in kafka}
    for stage, ids in stages:
        lost = before - set(ids)
        measured[f"{stage.value}_missing_ids"] = len(lost)
        if lost:
            first = first or stage
            evidence.append(f"{stage.value} lost {some(lost)} that {before_name} had")
        before_name, before = stage.value, before & set(ids)
    return CheckResult(
        f"{prefix}.missing",
        "Nothing missing by message id",
        verdict(first is None),
        "every Kafka message id reached every stage" if first is None else evidence[0],
        measured,
        evidence,
        stage=first or Stage.PIPELINE,
    )


def _sequences(
    prefix: str, kafka: Sequence[TradeV2], stages: list[tuple[Stage, Counter[str]]]
) -> CheckResult:
    """Per exchange and symbol, each exchange trade (sequence number) once at every stage.

    A sequence number under two message ids in Kafka is one exchange trade sent twice by the stream;
    Kafka's distinct sequence numbers are what each later stage must hold once each.
    """
    by_id: dict[str, tuple[SeriesKey, int]] = {}
    in_kafka: dict[SeriesKey, Counter[int]] = defaultdict(Counter)
    for trade in kafka:
        if trade.sequence_number is None or trade.message_id in by_id:
            continue
        key = (trade.exchange.value, trade.symbol)
        by_id[trade.message_id] = (key, trade.sequence_number)
        in_kafka[key][trade.sequence_number] += 1
    evidence = []
    failed: Stage | None = None
    for key, numbers in sorted(in_kafka.items()):
        resent = [n for n, c in numbers.items() if c > 1]
        if resent:
            failed = failed or Stage.KAFKA
            evidence.append(
                f"kafka {' '.join(key)}: one exchange trade under two message ids, {some(resent)}"
            )
    for stage, ids in stages:
        held: dict[SeriesKey, Counter[int]] = defaultdict(Counter)
        for message_id, count in ids.items():
            if message_id in by_id:
                key, number = by_id[message_id]
                held[key][number] += count
        for key, numbers in sorted(in_kafka.items()):
            lacking = set(numbers) - set(held[key])
            doubled = [n for n, c in held[key].items() if c > 1]
            if lacking:
                evidence.append(f"{stage.value} {' '.join(key)} lacks sequence numbers {some(lacking)}")
            if doubled:
                evidence.append(
                    f"{stage.value} {' '.join(key)} holds sequence numbers twice, {some(doubled)}"
                )
            if lacking or doubled:
                failed = failed or stage
    series = len(in_kafka)
    return CheckResult(
        f"{prefix}.sequences",
        "Exchange sequences exact per symbol",
        verdict(failed is None),
        f"{len(by_id)} sequenced trades in {series} series, each once at every stage"
        if failed is None
        else evidence[0],
        {"series": series, "sequenced": len(by_id)},
        evidence,
        stage=failed or Stage.PIPELINE,
    )
