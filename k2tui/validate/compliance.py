"""v2 schema compliance at each stage, and the same values at each stage as Kafka carried.

Each stage has its own form of the record: Kafka the Confluent-framed Avro of the registered schema, the
lake Iceberg columns (timestamptz, decimal(38, 18), a map), the API JSON (decimals as text, timestamps as
ISO-8601 text plus ``<name>_us``). Each is converted back to the v2 datum and held to the same rules, so a
violation reads the same wherever it was found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pyiceberg.table import Table

from k2tui.lake.table import TRADES_V2_SCHEMA
from k2tui.lake.values import micros_of, plain_decimal
from k2tui.model.trade import TradeV2, decimal_text
from k2tui.model.validation import validate
from k2tui.validate.check import CheckResult, Stage, verdict
from k2tui.validate.consistency import some
from k2tui.validate.stages import KafkaMessage

SHOWN = 10
TIMESTAMPS = ("timestamp", "ingestion_timestamp")
DECIMALS = ("price", "quantity")


def lake_datum(row: Mapping[str, Any]) -> dict[str, Any]:
    """A lake row as read by pyarrow → the v2 datum (timestamps µs, decimals as exact text, a dict map)."""
    out = dict(row)
    for name in TIMESTAMPS:
        if isinstance(out.get(name), datetime):
            out[name] = micros_of(out[name])
    for name in DECIMALS:
        if isinstance(out.get(name), Decimal):
            out[name] = decimal_text(plain_decimal(out[name]))
    if isinstance(out.get("vendor_data"), list):
        out["vendor_data"] = dict(out["vendor_data"])
    return out


def api_datum(item: Mapping[str, Any]) -> dict[str, Any]:
    """An API item → the v2 datum: each timestamp from its ``<name>_us`` integer, which then goes."""
    out = dict(item)
    for name in TIMESTAMPS:
        if f"{name}_us" in out:
            out[name] = out.pop(f"{name}_us")
    return out


def kafka_compliance(prefix: str, messages: Sequence[KafkaMessage]) -> CheckResult:
    """Every message of the window decodes with its registered schema and is a valid v2 trade."""
    bad = [m for m in messages if m.problem is not None]
    schema_ids = sorted({int.from_bytes(m.raw[1:5], "big") for m in messages if len(m.raw) >= 5})
    detail = (
        f"{len(messages)} messages decode with the registered schema and pass every v2 rule"
        if not bad
        else f"{len(bad)} of {len(messages)} messages are not valid v2 trades, first {bad[0].position}: "
        f"{bad[0].problem}"
    )
    return CheckResult(
        f"{prefix}.kafka_schema",
        "Kafka: registered schema, v2 rules",
        verdict(bool(messages) and not bad),
        detail if messages else "no messages in the window",
        {"messages": len(messages), "non_compliant": len(bad), "schema_ids": schema_ids},
        [f"{m.position}: {m.problem}" for m in bad[:SHOWN]],
        stage=Stage.KAFKA,
    )


def iceberg_table_schema(prefix: str, table: Table) -> CheckResult:
    """The columns are the v2 schema's: names, types and nullability in order (ids are the catalog's)."""
    want = [(f.name, str(f.field_type), f.required) for f in TRADES_V2_SCHEMA.fields]
    have = [(f.name, str(f.field_type), f.required) for f in table.schema().fields]
    differences = [
        f"column {i + 1}: expected {_column(w)}, found {_column(h)}"
        for i, (w, h) in enumerate(zip(want, have, strict=False))
        if w != h
    ]
    if len(want) != len(have):
        differences.append(f"{len(have)} columns, the v2 schema has {len(want)}")
    return CheckResult(
        f"{prefix}.iceberg_schema",
        "Iceberg: table schema is v2",
        verdict(not differences),
        f"{table.name()[-1]}: {len(have)} columns as in the v2 schema" if not differences else differences[0],
        {"columns": len(have)},
        differences,
        stage=Stage.ICEBERG,
    )


def _column(spec: tuple[str, str, bool]) -> str:
    name, kind, required = spec
    return f"{name} {kind} {'required' if required else 'optional'}"


def iceberg_rows_compliance(prefix: str, rows: pa.Table) -> CheckResult:
    return _rows_compliance(
        f"{prefix}.iceberg_rows",
        "Iceberg: rows pass the v2 rules",
        Stage.ICEBERG,
        map(lake_datum, rows.to_pylist()),
    )


def api_compliance(prefix: str, items: Sequence[Mapping[str, Any]]) -> CheckResult:
    return _rows_compliance(
        f"{prefix}.api_schema", "API: items pass the v2 rules", Stage.API, map(api_datum, items)
    )


def _rows_compliance(
    check_id: str, title: str, stage: Stage, data: Iterable[Mapping[str, Any]]
) -> CheckResult:
    total = 0
    bad: list[str] = []
    for datum in data:
        total += 1
        violations = validate(datum)
        if violations:
            bad.append(f"{datum.get('message_id')}: " + "; ".join(str(v) for v in violations))
    return CheckResult(
        check_id,
        title,
        verdict(total > 0 and not bad),
        (
            f"{total} records, every one a valid v2 trade"
            if not bad
            else f"{len(bad)} of {total} break the rules: {bad[0]}"
        )
        if total
        else "no records to check",
        {"records": total, "non_compliant": len(bad)},
        bad[:SHOWN],
        stage=stage,
    )


def same_values(
    prefix: str,
    kafka: Sequence[TradeV2],
    lake: Sequence[Mapping[str, Any]],
    api: Sequence[Mapping[str, Any]] | None = None,
) -> CheckResult:
    """Each record the lake and the API hold equals, field by field, the trade Kafka carried."""
    truth = {t.message_id: t for t in kafka}
    differences: list[str] = []
    compared = 0
    first: Stage | None = None
    stages = [(Stage.ICEBERG, lake)] + ([(Stage.API, api)] if api is not None else [])
    for stage, data in stages:
        changed = []
        for datum in data:
            expected = truth.get(datum.get("message_id", ""))
            if expected is None:
                continue
            compared += 1
            fields = [
                name for name, value in expected.to_avro().items() if _differs(name, value, datum.get(name))
            ]
            if fields:
                changed.append(datum["message_id"])
                differences.append(
                    f"{stage.value} {datum['message_id']}: "
                    + ", ".join(f"{n} {expected.to_avro()[n]!r} → {datum.get(n)!r}" for n in fields)
                )
        if changed:
            first = first or stage
            differences.insert(0, f"{stage.value} changed {some(changed)}")
    return CheckResult(
        f"{prefix}.values",
        "Same values at every stage",
        verdict(first is None and compared > 0),
        f"{compared} records of the lake and the API equal to what Kafka carried, field by field"
        if first is None
        else f"{first.value} changed values: {differences[0]}",
        {"compared": compared},
        differences[:SHOWN],
        stage=first or Stage.PIPELINE,
    )


def _differs(name: str, expected: Any, found: Any) -> bool:
    """Equal as v2 values: decimals by value (the lake pads them to scale 18), everything else exactly."""
    if name in DECIMALS and isinstance(found, str):
        try:
            return Decimal(expected) != Decimal(found)
        except ArithmeticError:
            return True
    return bool(expected != found)
