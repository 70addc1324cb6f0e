"""`health`: the seed's post-deployment checks, observed on the running stack with nothing injected.

Instant checks first (services, scrape targets, lag metric, alert rules and alerts, data freshness),
then the flow is watched for `window` seconds: messages consumed, Iceberg appends, dead letters and log
lines written in that time are what the later checks judge, so an old error in a log or an old dead
letter does not fail a healthy stack, and a fresh one always does.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from k2tui.ingest.dlq import DeadLetter, collect_dead_letters
from k2tui.lake.catalog import open_trades_table
from k2tui.stack import binaries
from k2tui.stack.metrics import MetricsUnavailableError, Prometheus, Scrape, rate, scrape
from k2tui.stack.services import CONSUMER_LAG_ALERT
from k2tui.stack.supervisor import ServiceState
from k2tui.validate.check import CheckResult, CheckStatus, Stage, make_check, verdict
from k2tui.validate.env import ValidationEnv, services_ready
from k2tui.validate.offsets import ends_and_committed
from k2tui.validate.procedure import Procedure, Step, StepContext

LAG_LIMIT = 1_000
"""Messages behind Kafka's log end the seed allows once a deploy has settled."""
THROUGHPUT_MIN = 100.0
"""Messages a second the seed requires when there is traffic."""
FRESHNESS_LIMIT_S = 300.0
"""How old the newest trade the API returns may be."""
FUTURE_ALLOWANCE_S = 60.0
"""Trades stamped this far ahead of now (clock skew) still count as the newest."""
APPENDS_EVERY_FLUSHES = 10
"""While messages flow, at least one Iceberg append is due per this many flush intervals."""
HTTP_TIMEOUT_S = 5.0
KAFKA_TIMEOUT_S = 10.0
EVIDENCE_LINES = 20
CONSUMED = "k2_messages_consumed_total"
TROUBLE = re.compile(r"\b(ERROR|WARNING|WARN|CRITICAL|FATAL|Traceback)\b|level=(error|warn)\b|^[EWF]\d{4} ")
"""A log line reporting a problem: Python logging and uvicorn, Prometheus's logfmt, weed's glog."""
REBALANCE_TROUBLE = re.compile(r"rebalanc.*(error|fail)|(error|fail).*rebalanc", re.IGNORECASE)


@dataclass(frozen=True)
class HealthOptions:
    window: float = 30.0
    """Seconds the flow is watched: throughput, appends, dead letters and log lines are counted over it."""


def health_procedure(env: ValidationEnv, options: HealthOptions) -> Procedure:
    watch = FlowWatch(env)

    async def services(context: StepContext) -> list[CheckResult]:
        names, optional = _service_names(env)
        result = await services_ready(env, names, check_id="health.services", optional=optional)
        await watch.begin()
        return [result]

    async def throughput(context: StepContext) -> list[CheckResult]:
        while (left := watch.started + options.window - time.monotonic()) > 0:
            context.progress(f"watching the flow, {left:.0f} s left", 1 - left / options.window)
            await asyncio.sleep(min(1.0, left))
        context.progress("reading the consumer's metrics, the lag and the snapshots")
        return [(await watch.flow_results())[0]]

    def measured(index: int) -> Callable[[], Awaitable[CheckResult]]:
        async def result() -> CheckResult:
            if watch.flow is None:
                raise RuntimeError("the flow was not measured: the throughput step did not finish")
            return watch.flow[index]

        return result

    def instant(step_id: str, title: str, stage: Stage, check: Callable[[], Awaitable[CheckResult]]) -> Step:
        async def body(context: StepContext) -> list[CheckResult]:
            return [await check()]

        return Step(step_id, title, body, stage=stage)

    prometheus = prometheus_url(env)
    return Procedure(
        "health",
        f"Health: the running stack, watched for {options.window:g} s",
        (
            Step("services", "Services running", services, stage=Stage.STACK, required=True),
            instant("metrics_reporting", "Metrics reporting", Stage.METRICS, lambda: metrics_reporting(env)),
            instant("lag_monitoring", "Lag monitoring", Stage.METRICS, lambda: lag_monitoring(prometheus)),
            instant("alert_rules", "Alert rules", Stage.METRICS, lambda: alert_rules(prometheus)),
            instant("alerts", "Alerts firing", Stage.METRICS, lambda: alerts_firing(prometheus)),
            instant("freshness", "Fresh data through the API", Stage.API, lambda: freshness(env.api_url)),
            Step("throughput", f"Flow over {options.window:g} s", throughput, stage=Stage.CONSUMER),
            instant("consumer_lag", "Consumer lag", Stage.KAFKA, measured(1)),
            instant("snapshots", "Iceberg snapshots", Stage.ICEBERG, measured(2)),
            instant("consumer_group", "Consumer group", Stage.CONSUMER, lambda: consumer_group(env, watch)),
            instant("dlq", "Dead letters", Stage.DLQ, lambda: watch.dlq_result()),
            instant("logs", "Log errors and warnings", Stage.STACK, lambda: watch.log_result()),
        ),
    )


def _service_names(env: ValidationEnv) -> tuple[list[str], list[str]]:
    """Every service of the stack but those run on demand (the streams: stopped is their normal state);
    Prometheus only optional where it is not installed."""
    names = [name for name, spec in env.stack.specs.items() if not spec.unavailable and not spec.on_demand]
    optional = [name for name, spec in env.stack.specs.items() if spec.unavailable]
    return names, optional


def prometheus_url(env: ValidationEnv) -> str | None:
    """Where the stack's Prometheus answers; None when it is not part of the stack (not installed)."""
    spec = env.stack.specs.get("prometheus")
    return None if spec is None or spec.unavailable else env.endpoints.prometheus_url


def _absent() -> str:
    return f"Prometheus is not installed; install it with: {binaries.PROMETHEUS_INSTALL_HINT}"


async def _prometheus_api(url: str, path: str, **params: str) -> Any:
    """The `data` of a Prometheus HTTP API answer; MetricsUnavailableError saying why when there is none."""
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            response = await client.get(f"{url}/api/v1/{path}", params=params)
            response.raise_for_status()
    except httpx.HTTPError as error:
        raise MetricsUnavailableError(
            f"Prometheus at {url} did not answer /api/v1/{path}: {error}"
        ) from error
    return response.json()["data"]


def _check(
    check_id: str,
    title: str,
    status: CheckStatus,
    detail: str,
    stage: Stage,
    measured: dict[str, Any] | None = None,
    evidence: Sequence[str] = (),
) -> CheckResult:
    lines = list(evidence)
    if len(lines) > EVIDENCE_LINES:
        lines = [*lines[:EVIDENCE_LINES], f"… and {len(lines) - EVIDENCE_LINES} more"]
    return make_check(stage, f"health.{check_id}", title, status, detail, measured, lines)


# ---- metrics, rules and alerts ------------------------------------------------------------------


async def metrics_reporting(env: ValidationEnv) -> CheckResult:
    """Every scrape target up in Prometheus; without it, every /metrics endpoint answering (a warning)."""
    title, stage = "Prometheus metrics reporting", Stage.METRICS
    # Services run on demand and stopped now (the streams): their targets are down, and rightly so.
    statuses = await env.statuses()
    resting = {name for name, status in statuses.items() if env.stack.expected_down(status)}
    endpoints = {
        name: spec.metrics_target
        for name, spec in env.stack.specs.items()
        if spec.metrics_target and name not in resting
    }
    url = prometheus_url(env)
    if url is None:
        failed, lines = [], []
        for name, target in endpoints.items():
            try:
                found = await scrape(f"http://{target}/metrics")
                lines.append(f"{name}: /metrics answers ({len(found.samples)} samples)")
            except MetricsUnavailableError as error:
                failed.append(name)
                lines.append(f"{name}: {error}")
        if failed:
            return _check(
                "metrics_reporting",
                title,
                CheckStatus.FAIL,
                f"no metrics from {', '.join(failed)}",
                stage,
                {"down": failed},
                lines,
            )
        detail = f"{_absent()}; the {len(endpoints)} /metrics endpoints answer, but nothing records them"
        return _check("metrics_reporting", title, CheckStatus.WARN, detail, stage, {"down": []}, lines)
    try:
        targets = (await _prometheus_api(url, "targets"))["activeTargets"]
    except MetricsUnavailableError as error:
        return _check("metrics_reporting", title, CheckStatus.FAIL, str(error), stage)
    health = {t["labels"].get("job", t["scrapeUrl"]): t for t in targets}
    health = {job: t for job, t in health.items() if job not in resting}
    lines = [
        f"{job}: {t['health']} at {t['scrapeUrl']} {t.get('lastError') or ''}" for job, t in health.items()
    ]
    down = [job for job, t in health.items() if t["health"] == "down"]
    unscraped = [name for name in endpoints if name not in health]
    unknown = [job for job, t in health.items() if t["health"] not in ("up", "down")]
    measured = {"targets": len(health), "down": down, "not_scraped": unscraped}
    if down or unscraped:
        named = (("down", down), ("not scraped", unscraped))
        detail = "; ".join(f"{label}: {', '.join(names)}" for label, names in named if names)
        return _check("metrics_reporting", title, CheckStatus.FAIL, detail, stage, measured, lines)
    if unknown:
        detail = f"not scraped yet: {', '.join(unknown)}"
        return _check("metrics_reporting", title, CheckStatus.WARN, detail, stage, measured, lines)
    return _check(
        "metrics_reporting",
        title,
        CheckStatus.PASS,
        f"all {len(health)} scrape targets up",
        stage,
        measured,
        lines,
    )


async def lag_monitoring(prometheus: str | None) -> CheckResult:
    """k2_consumer_lag is recorded by Prometheus, per partition."""
    title, stage = "Consumer lag monitoring", Stage.METRICS
    if prometheus is None:
        return _check("lag_monitoring", title, CheckStatus.FAIL, f"{_absent()}, so no lag is recorded", stage)
    try:
        series = await Prometheus(prometheus).query("k2_consumer_lag")
    except MetricsUnavailableError as error:
        return _check("lag_monitoring", title, CheckStatus.FAIL, str(error), stage)
    lines = [f"{s.labels.get('topic')}[{s.labels.get('partition')}]: {s.value:,.0f}" for s in series]
    if series:
        detail = f"k2_consumer_lag recorded for {len(series)} partition(s)"
        return _check(
            "lag_monitoring", title, CheckStatus.PASS, detail, stage, {"series": len(series)}, lines
        )
    detail = f"k2_consumer_lag is not in Prometheus at {prometheus}: the consumer is not scraped, or idle"
    return _check("lag_monitoring", title, CheckStatus.FAIL, detail, stage, {"series": 0})


_THRESHOLD = re.compile(r">=?\s*([0-9][0-9_.e+]*)")


async def alert_rules(prometheus: str | None) -> CheckResult:
    """Prometheus has loaded an alert on the consumer's lag (at most 10,000) and one on the consumer down."""
    title, stage = "Alerting rules configured", Stage.METRICS
    if prometheus is None:
        return _check("alert_rules", title, CheckStatus.FAIL, f"{_absent()}, so nothing can alert", stage)
    try:
        groups = (await _prometheus_api(prometheus, "rules", type="alert"))["groups"]
    except MetricsUnavailableError as error:
        return _check("alert_rules", title, CheckStatus.FAIL, str(error), stage)
    rules = [rule for group in groups for rule in group["rules"] if rule.get("type") == "alerting"]
    lines = [f"{r['name']}: {r['query']} (for {r.get('duration', 0):g} s, {r.get('health')})" for r in rules]
    lag = [
        r for r in rules if "k2_consumer_lag" in r["query"] and _threshold(r["query"]) <= CONSUMER_LAG_ALERT
    ]
    down = [r for r in rules if re.search(r"\bup\b", r["query"]) and "consumer" in r["query"]]
    broken = [r["name"] for r in (*lag, *down) if r.get("health") not in (None, "ok", "unknown")]
    missing = [
        what
        for what, found in (
            (f"an alert on k2_consumer_lag above at most {CONSUMER_LAG_ALERT:,}", lag),
            ("an alert on the consumer being down", down),
        )
        if not found
    ]
    if missing or broken:
        detail = "; ".join(
            [f"missing {what}" for what in missing] + [f"{name} does not evaluate" for name in broken]
        )
        detail += f" ({len(rules)} alerting rule(s) loaded)"
        return _check("alert_rules", title, CheckStatus.FAIL, detail, stage, {"rules": len(rules)}, lines)
    detail = f"{lag[0]['name']} and {down[0]['name']} loaded ({len(rules)} alerting rule(s))"
    return _check("alert_rules", title, CheckStatus.PASS, detail, stage, {"rules": len(rules)}, lines)


def _threshold(query: str) -> float:
    found = _THRESHOLD.search(query)
    return float(found.group(1).replace("_", "")) if found else math.inf


async def alerts_firing(prometheus: str | None) -> CheckResult:
    """No alert firing (pending ones are a warning: they fire unless the condition clears)."""
    title, stage = "No alerts firing", Stage.METRICS
    if prometheus is None:
        return _check("alerts", title, CheckStatus.WARN, f"{_absent()}, so no alert is evaluated", stage)
    try:
        alerts = (await _prometheus_api(prometheus, "alerts"))["alerts"]
    except MetricsUnavailableError as error:
        return _check("alerts", title, CheckStatus.FAIL, str(error), stage)
    lines = [
        f"{a['state']}: {a['labels'].get('alertname')} since {a.get('activeAt', '?')}"
        f" — {a.get('annotations', {}).get('summary', '')}"
        for a in alerts
    ]
    firing = [a["labels"].get("alertname") for a in alerts if a["state"] == "firing"]
    pending = [a["labels"].get("alertname") for a in alerts if a["state"] == "pending"]
    measured = {"firing": firing, "pending": pending}
    if firing:
        return _check(
            "alerts", title, CheckStatus.FAIL, f"firing: {', '.join(firing)}", stage, measured, lines
        )
    if pending:
        detail = f"pending (fire if it lasts): {', '.join(pending)}"
        return _check("alerts", title, CheckStatus.WARN, detail, stage, measured, lines)
    return _check("alerts", title, CheckStatus.PASS, "no alert firing or pending", stage, measured)


# ---- the query side ------------------------------------------------------------------------------


async def freshness(api_url: str) -> CheckResult:
    """The newest trade `GET /v1/trades` returns (none stamped beyond clock skew ahead) against now."""
    now = datetime.now(UTC)
    end = now + timedelta(seconds=FUTURE_ALLOWANCE_S)
    query = {"limit": "1", "order_by": "timestamp", "order": "desc", "end": end.isoformat()}
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            response = await client.get(f"{api_url}/v1/trades", params=query)
            response.raise_for_status()
    except httpx.HTTPError as error:
        detail = f"the API at {api_url} did not answer GET /v1/trades: {error.__class__.__name__}: {error}"
        return _check("freshness", "Query engine returning fresh data", CheckStatus.FAIL, detail, Stage.API)
    rows = response.json()["data"]
    newest = rows[0]["timestamp_us"] if rows else None
    return freshness_result(newest, int(now.timestamp() * 1_000_000), f"GET {response.url}")


def freshness_result(newest_us: int | None, now_us: int, source: str) -> CheckResult:
    title = "Query engine returning fresh data"
    if newest_us is None:
        return _check(
            "freshness", title, CheckStatus.FAIL, "the API returns no trade stamped before now", Stage.API
        )
    age = (now_us - newest_us) / 1_000_000
    stamp = datetime.fromtimestamp(newest_us / 1_000_000, UTC).isoformat(timespec="milliseconds")
    detail = f"newest trade {stamp}, {_duration(age)} old (limit {_duration(FRESHNESS_LIMIT_S)})"
    return _check(
        "freshness",
        title,
        verdict(age < FRESHNESS_LIMIT_S),
        detail,
        Stage.API,
        {"age_s": round(age, 1)},
        [source],
    )


def _duration(seconds: float) -> str:
    if abs(seconds) < 120:
        return f"{seconds:.1f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ---- lag ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LagReading:
    source: str
    partitions: dict[str, int]
    """``topic[partition]`` → messages between the consumer's position and the log end."""
    tried: tuple[str, ...] = ()
    """Why the sources before `source` gave nothing."""

    @property
    def total(self) -> int:
        return sum(self.partitions.values())


class LagUnavailableError(RuntimeError):
    """No source could say how far behind the consumer is; the message lists each source's answer."""


async def consumer_lag(env: ValidationEnv) -> LagReading:
    """k2_consumer_lag from Prometheus, else the consumer's /metrics, else Kafka's log end minus the
    group's committed offsets (the only source left when the consumer is down)."""
    tried = []
    url = prometheus_url(env)
    if url is not None:
        try:
            series = await Prometheus(url).query("k2_consumer_lag")
            if series:
                return LagReading("Prometheus", _per_partition(series))
            tried.append("Prometheus: no k2_consumer_lag series")
        except MetricsUnavailableError as error:
            tried.append(str(error))
    target = _consumer_metrics(env)
    if target is not None:
        try:
            series = (await scrape(target)).values("k2_consumer_lag")
            if series:
                return LagReading("the consumer's /metrics", _per_partition(series), tuple(tried))
            tried.append(f"{target}: no k2_consumer_lag series")
        except MetricsUnavailableError as error:
            tried.append(str(error))
    try:
        partitions = await kafka_lag(env.endpoints.kafka_bootstrap, env.settings.consumer.group, env.topics)
    except Exception as error:
        tried.append(f"Kafka: {type(error).__name__}: {error}")
        raise LagUnavailableError("; ".join(tried)) from error
    return LagReading("Kafka log end − committed offsets", partitions, tuple(tried))


def _per_partition(series: Sequence[Any]) -> dict[str, int]:
    return {f"{s.labels.get('topic')}[{s.labels.get('partition')}]": int(s.value) for s in series}


def _consumer_metrics(env: ValidationEnv) -> str | None:
    spec = env.stack.specs.get("consumer")
    return None if spec is None or spec.metrics_target is None else f"http://{spec.metrics_target}/metrics"


async def kafka_lag(bootstrap: str, group: str, topics: Sequence[str]) -> dict[str, int]:
    """Per partition: the log end minus the group's committed offset (nothing committed counts from the
    start of the log)."""
    ends, committed = await ends_and_committed(bootstrap, topics, group)
    return {f"{tp.topic}[{tp.partition}]": max(0, end - committed.get(tp, 0)) for tp, end in ends.items()}


def lag_result(reading: LagReading | None, error: str = "") -> CheckResult:
    title, stage = "Consumer lag", Stage.KAFKA
    if reading is None:
        return _check("consumer_lag", title, CheckStatus.FAIL, f"the lag cannot be read: {error}", stage)
    worst = sorted(reading.partitions.items(), key=lambda item: -item[1])
    lines = [f"{partition}: {lag:,}" for partition, lag in worst] + [f"not used: {t}" for t in reading.tried]
    detail = f"{reading.total:,} messages behind (limit {LAG_LIMIT:,}), from {reading.source}"
    return _check(
        "consumer_lag",
        title,
        verdict(reading.total < LAG_LIMIT),
        detail,
        stage,
        {"lag": reading.total, "source": reading.source},
        lines,
    )


# ---- the flow over the window ---------------------------------------------------------------------


def throughput_result(
    consumed: float | None, seconds: float, backlog: int | None, error: str = ""
) -> CheckResult:
    """> 100 msg/s passes; a quiet pipeline (nothing consumed, nothing waiting) or one keeping up with
    less than that warns, as the limit was not measured; a slower consumer with a backlog fails."""
    title, stage = "Throughput", Stage.CONSUMER
    if consumed is None:
        return _check(
            "throughput", title, CheckStatus.FAIL, f"the consumed count cannot be read: {error}", stage
        )
    per_s = consumed / seconds if seconds > 0 else 0.0
    waiting = "unknown" if backlog is None else f"{backlog:,}"
    measured = {"messages_per_s": round(per_s, 1), "consumed": int(consumed), "backlog": backlog}
    figure = f"{per_s:,.1f} msg/s ({consumed:,.0f} consumed in {seconds:.1f} s; {waiting} waiting)"
    if per_s > THROUGHPUT_MIN:
        status, detail = CheckStatus.PASS, f"{figure} > {THROUGHPUT_MIN:g} msg/s"
    elif consumed == 0 and not backlog:
        status = CheckStatus.WARN
        detail = f"no traffic in the window: nothing to measure against {THROUGHPUT_MIN:g} msg/s"
    elif backlog is None or backlog < LAG_LIMIT:
        status = CheckStatus.WARN
        detail = (
            f"{figure}: the consumer kept up with all the traffic offered; {THROUGHPUT_MIN:g} msg/s not shown"
        )
    else:
        status, detail = CheckStatus.FAIL, f"{figure}, below {THROUGHPUT_MIN:g} msg/s while messages wait"
    return _check("throughput", title, status, detail, stage, measured)


@dataclass(frozen=True)
class Append:
    """One Iceberg append seen in the window."""

    snapshot_id: int
    at: datetime
    records: int


def snapshots_result(
    appends: Sequence[Append], seconds: float, consumed: float | None, flush_interval: float
) -> CheckResult:
    """While messages are consumed, appends land at least once per APPENDS_EVERY_FLUSHES flushes."""
    title, stage = "Iceberg snapshots increasing", Stage.ICEBERG
    due = max(1, math.floor(seconds / (flush_interval * APPENDS_EVERY_FLUSHES)))
    records = sum(a.records for a in appends)
    per_min = len(appends) / seconds * 60 if seconds > 0 else 0.0
    lines = [
        f"{a.at:%H:%M:%S.%f}"[:-3] + f" snapshot {a.snapshot_id}: +{a.records:,} records" for a in appends
    ]
    measured = {"appends": len(appends), "records": records, "appends_per_min": round(per_min, 1)}
    figure = f"{len(appends)} append(s), {records:,} records in {seconds:.1f} s ({per_min:.1f}/min)"
    if consumed is None:
        status, detail = CheckStatus.WARN, f"{figure}; the consumed count is unreadable, so none can be due"
    elif consumed == 0:
        status, detail = CheckStatus.WARN, f"{figure}; nothing consumed in the window, so none were due"
    elif len(appends) < due or records == 0:
        status = CheckStatus.FAIL
        detail = f"{figure} while {consumed:,.0f} messages were consumed; at least {due} due"
    else:
        status, detail = CheckStatus.PASS, f"{figure} (at least {due} due)"
    return _check("snapshots", title, status, detail, stage, measured, lines)


def dlq_result(letters: Sequence[DeadLetter], since: datetime) -> CheckResult:
    title = "No new DLQ entries"
    lines = [
        f"{letter.failed_at:%H:%M:%S} {letter.id} {letter.source} {letter.position}: "
        f"{letter.error_type}: {letter.reason}"
        for letter in letters
    ]
    detail = (
        f"{len(letters)} dead letter(s) since {since:%H:%M:%S} UTC; look with `k2tui dlq list`"
        if letters
        else f"none since {since:%H:%M:%S} UTC"
    )
    return _check("dlq", title, verdict(not letters), detail, Stage.DLQ, {"entries": len(letters)}, lines)


@dataclass(frozen=True)
class LogLine:
    service: str
    text: str


class LogWatch:
    """The lines appended to the stack's service logs since `begin` (log lines carry no common clock)."""

    def __init__(self, log_dir: Path) -> None:
        self._dir = log_dir
        self._offsets: dict[Path, int] = {}

    def begin(self) -> None:
        self._offsets = {path: path.stat().st_size for path in self._dir.glob("*.log")}

    def lines(self) -> list[LogLine]:
        found = []
        for path in sorted(self._dir.glob("*.log")):
            start = self._offsets.get(path, 0)
            if path.stat().st_size < start:  # truncated or replaced since: read it all
                start = 0
            with path.open("rb") as log:
                log.seek(start)
                text = log.read().decode(errors="replace")
            found.extend(LogLine(path.stem, line) for line in text.splitlines() if line.strip())
        return found


def log_result(lines: Sequence[LogLine], seconds: float) -> CheckResult:
    trouble = [line for line in lines if TROUBLE.search(line.text)]
    services = sorted({line.service for line in trouble})
    evidence = [f"{line.service}: {line.text.strip()[:300]}" for line in trouble]
    detail = (
        f"{len(trouble)} error/warning line(s) in {seconds:.0f} s from {', '.join(services)}"
        if trouble
        else f"no error or warning in the {len(lines):,} line(s) written in {seconds:.0f} s"
    )
    return _check(
        "logs",
        "Logs show no errors or warnings",
        verdict(not trouble),
        detail,
        Stage.STACK,
        {"lines": len(lines), "trouble": len(trouble)},
        evidence,
    )


async def consumer_group(env: ValidationEnv, watch: FlowWatch | None = None) -> CheckResult:
    """Members in the group, the group stable, the stack's consumer service (the member) alive, and no
    rebalance error in the consumer's log meanwhile. Kafka alone is not enough: tansu keeps listing a
    stopped consumer as a member of a Stable group."""
    title, stage, group = "Consumer group healthy", Stage.CONSUMER, env.settings.consumer.group
    admin = AIOKafkaAdminClient(
        bootstrap_servers=env.endpoints.kafka_bootstrap, request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000)
    )
    try:
        await admin.start()
        [response] = await admin.describe_consumer_groups([group])
    except Exception as error:
        detail = f"Kafka at {env.endpoints.kafka_bootstrap} did not describe {group}: {type(error).__name__}"
        return _check("consumer_group", title, CheckStatus.FAIL, f"{detail}: {error}", stage)
    finally:
        await admin.close()
    [(error_code, _, state, _, _, members)] = response.groups
    if error_code:
        detail = f"Kafka answered error code {error_code} describing {group}"
        return _check("consumer_group", title, CheckStatus.FAIL, detail, stage)
    logged = watch.logs.lines() if watch else []
    rebalance = [
        line for line in logged if line.service == "consumer" and REBALANCE_TROUBLE.search(line.text)
    ]
    lines = [f"member {member[0]} {member[1]} {member[2]}".rstrip() for member in members]
    lines += [f"consumer log: {line.text.strip()}" for line in rebalance]
    measured = {"state": state, "members": len(members), "rebalance_errors": len(rebalance)}
    service = (await env.statuses()).get("consumer")
    if service is not None:
        lines.append(f"consumer service: {service.state.value}")
    if not members:
        detail = f"{group} has no member (state {state}): no consumer is running in it"
    elif state != "Stable":
        detail = f"{group} is {state} with {len(members)} member(s), not Stable"
    elif service is not None and service.state is not ServiceState.READY:
        detail = f"{group} lists {len(members)} member(s), but the consumer service is {service.state.value}"
    elif rebalance:
        detail = f"{len(rebalance)} rebalance error(s) in the consumer's log"
    else:
        detail = f"{group}: Stable, {len(members)} member(s), no rebalance error"
        return _check("consumer_group", title, CheckStatus.PASS, detail, stage, measured, lines)
    return _check("consumer_group", title, CheckStatus.FAIL, detail, stage, measured, lines)


@dataclass
class FlowWatch:
    """What the stack looked like when the window opened, and the checks that compare against it."""

    env: ValidationEnv
    started: float = 0.0
    opened: datetime = field(default_factory=lambda: datetime.now(UTC))
    before: Scrape | None = None
    scrape_error: str = ""
    flow: list[CheckResult] | None = None
    """Throughput, lag and snapshots, once `flow_results` has measured them."""

    def __post_init__(self) -> None:
        self.logs = LogWatch(self.env.layout.log_dir)

    async def begin(self) -> None:
        self.logs.begin()
        self.before, self.scrape_error = await self._consumed()
        self.started, self.opened = time.monotonic(), datetime.now(UTC)

    async def _consumed(self) -> tuple[Scrape | None, str]:
        target = _consumer_metrics(self.env)
        if target is None:
            return None, "the stack has no consumer service"
        try:
            return await scrape(target), ""
        except MetricsUnavailableError as error:
            return None, str(error)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    async def flow_results(self) -> list[CheckResult]:
        """Throughput, lag and appends over the window, now that it has passed."""
        after, error = await self._consumed()
        consumed, seconds = None, self.seconds
        if self.before is not None and after is not None:
            seconds = after.taken - self.before.taken
            per_s = rate(self.before, after, CONSUMED)
            consumed = None if per_s is None else per_s * seconds
            error = "" if per_s is not None else f"{CONSUMED} is missing or went backwards (a restart)"
        try:
            reading: LagReading | None = await consumer_lag(self.env)
            lag = lag_result(reading)
        except LagUnavailableError as problem:
            reading, lag = None, lag_result(None, str(problem))
        appends = await asyncio.to_thread(_appends_since, self.env, self.opened)
        backlog = None if reading is None else reading.total
        self.flow = [
            throughput_result(consumed, seconds, backlog, self.scrape_error or error),
            lag,
            snapshots_result(appends, self.seconds, consumed, self.env.settings.consumer.flush_interval),
        ]
        return self.flow

    async def dlq_result(self) -> CheckResult:
        letters = await asyncio.to_thread(collect_dead_letters, self.env.dlq_directory)
        return dlq_result([letter for letter in letters if letter.failed_at >= self.opened], self.opened)

    async def log_result(self) -> CheckResult:
        return log_result(self.logs.lines(), self.seconds)


def _appends_since(env: ValidationEnv, since: datetime) -> list[Append]:
    table = open_trades_table(env.layout)
    since_ms = since.timestamp() * 1000
    appends = []
    for snapshot in table.metadata.snapshots:
        summary = snapshot.summary
        if snapshot.timestamp_ms < since_ms or summary is None or summary.operation.value != "append":
            continue
        added = int(summary.additional_properties.get("added-records", 0))
        appends.append(
            Append(snapshot.snapshot_id, datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC), added)
        )
    return appends
