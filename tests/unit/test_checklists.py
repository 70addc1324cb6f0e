"""The checklists as data, the walk-through's verdicts, saved progress and the health checks' comparisons."""

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from k2tui.cli import cli
from k2tui.config import resolve_settings
from k2tui.ingest.dlq import DeadLetterQueue, collect_dead_letters
from k2tui.validate import checklist as cl
from k2tui.validate import health
from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.procedure import Procedure, ProcedureReport, Step, StepContext
from k2tui.validate.procedures import PROCEDURES, ProcedureEntry
from k2tui.validate.progress import ItemStatus, Progress, load_progress, progress_file, save_progress

SEED_PRE = [
    "All unit tests passing (80%+ coverage)",
    "All integration tests passing",
    "E2E validation completed successfully (5,000+ messages)",
    "No unhandled errors in logs",
    "DLQ functionality validated (injected error test)",
    "Performance benchmarks meet thresholds",
    "Sequence tracking validated (gap detection working)",
    "Metrics recording correctly to Prometheus",
    "Graceful shutdown tested (SIGTERM handling)",
    "Consumer lag monitoring configured",
    "Alerting rules configured (lag >10,000 messages)",
    "Runbook updated with any new failure modes",
]
KNOWN_PROCEDURES = {"consumer", "streaming", "pipeline", "faults", "performance", "health"}
HEALTH_CHECKS = {
    "services",
    "metrics_reporting",
    "lag_monitoring",
    "alert_rules",
    "alerts",
    "freshness",
    "throughput",
    "consumer_lag",
    "snapshots",
    "consumer_group",
    "dlq",
    "logs",
}


def test_the_seeds_three_checklists_load_with_their_items_in_order() -> None:
    pre, post, debt = cl.load_checklists()
    assert [item.text for item in pre.items] == SEED_PRE
    assert (len(post.items), len(debt.items)) == (10, 9)
    assert post.items[0].text == "Consumer group healthy (no rebalancing errors)"
    assert debt.items[-1].text == "**Validation**: E2E validation completed successfully"
    for found in (pre, post, debt):
        assert len({item.id for item in found.items}) == len(found.items)
        for item in found.items:
            assert item.manual == (not item.links) and (item.hint if item.manual else True)
            assert set(item.procedures) <= KNOWN_PROCEDURES
            for link in item.links:
                if link.startswith("health."):
                    assert link.removeprefix("health.") in HEALTH_CHECKS


def test_unknown_checklists_and_items_are_one_sentence_naming_the_known_ones() -> None:
    with pytest.raises(cl.ChecklistError, match="the checklists are pre-deployment, post-deployment"):
        cl.load_checklist("pre_deploy")
    post = cl.load_checklist("post-deployment")
    with pytest.raises(cl.ChecklistError, match="its items are consumer-group, consumer-lag"):
        cl.items_to_run(post, ["no-such-item"])
    assert [i.id for i in cl.items_to_run(post, ["no-alerts", "throughput"])] == ["throughput", "no-alerts"]


def test_cli_refuses_unknown_names_with_a_non_zero_exit(tmp_path: Path) -> None:
    env = {"K2_HOME": str(tmp_path)}
    shown = CliRunner().invoke(cli, ["checklist", "show", "nope"], env=env)
    assert shown.exit_code == 1
    assert "no checklist 'nope'; the checklists are pre-deployment" in shown.output
    run = CliRunner().invoke(
        cli, ["checklist", "run", "technical-debt", "--item", "x", "--no-manual"], env=env
    )
    assert run.exit_code == 1
    assert "technical-debt has no item 'x'; its items are api-mismatches" in run.output


def test_cli_yes_confirms_manual_items_with_the_note_and_exits_zero(tmp_path: Path) -> None:
    env = {"K2_HOME": str(tmp_path), "K2_VALIDATE_ENVIRONMENT": "staging"}
    items = ["--item", "runbook", "--item", "unit-tests"]
    bare = CliRunner().invoke(cli, ["checklist", "run", "pre-deployment", *items, "--yes"], env=env)
    assert bare.exit_code == 2 and "--yes needs --note" in bare.output
    run = CliRunner().invoke(
        cli, ["checklist", "run", "pre-deployment", *items, "--yes", "--note", "reviewed by ops"], env=env
    )
    assert run.exit_code == 0, run.output
    assert "CONFIRMED All unit tests passing (80%+ coverage): reviewed by ops" in run.output
    assert "2 of 2 item(s) passed or confirmed (staging)." in run.output
    settings = resolve_settings(env=env).settings
    assert load_progress(settings).item("pre-deployment", "runbook").status is ItemStatus.CONFIRMED
    left = CliRunner().invoke(cli, ["checklist", "run", "pre-deployment", *items, "--no-manual"], env=env)
    assert left.exit_code == 0, "a manual item confirmed earlier still counts when left alone"


def test_a_link_covers_its_id_and_the_ids_under_it_only() -> None:
    assert cl.link_covers("pipeline.error_handling", "pipeline.error_handling")
    assert cl.link_covers("pipeline.error_handling", "pipeline.error_handling.dlq_context")
    assert not cl.link_covers("pipeline.error_handling", "pipeline.error_handling_x")
    assert cl.link_covers("consumer", "consumer.records_added")


def _result(check_id: str, status: CheckStatus, detail: str = "measured") -> CheckResult:
    return CheckResult(check_id, check_id, status, detail, evidence=[f"evidence of {check_id}"])


@dataclass(frozen=True)
class _Fixed:
    results: tuple[CheckResult, ...] = ()


def _fake_entry(name: str, results: list[CheckResult], builds: list[str]) -> ProcedureEntry:
    def build(env: Any, options: _Fixed) -> Procedure:
        builds.append(name)

        async def body(context: StepContext) -> list[CheckResult]:
            return list(options.results or results)

        return Procedure(name, name, (Step("only", "only", body),))

    return ProcedureEntry(name, "a test procedure", _Fixed, build)


async def test_a_walk_runs_each_procedure_once_and_judges_each_item_by_its_linked_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[str] = []
    results = [
        _result("fake.a", CheckStatus.PASS),
        _result("fake.b.one", CheckStatus.PASS),
        _result("fake.b.two", CheckStatus.WARN, "no traffic"),
    ]
    monkeypatch.setitem(PROCEDURES, "fake", _fake_entry("fake", results, builds))
    checklist = cl.Checklist(
        "test",
        "Test",
        "now",
        (
            cl.ChecklistItem("a", "A holds", ("fake.a",)),
            cl.ChecklistItem("b", "B holds", ("fake.b",)),
            cl.ChecklistItem("c", "C holds", ("fake.c",)),
            cl.ChecklistItem("m", "by hand", hint="look"),
            cl.ChecklistItem("n", "not here", ("pipeline.sequence_gaps", "fake.a")),
        ),
    )
    monkeypatch.delitem(PROCEDURES, "pipeline", raising=False)
    events: list[object] = []
    outcomes = await cl.run_items(None, checklist, checklist.items, events.append)  # type: ignore[arg-type]
    assert builds == ["fake"]
    assert [o.item.id for o in outcomes] == ["a", "b", "c", "n"]
    a, b, c, n = outcomes
    assert a.status is ItemStatus.PASSED
    assert b.status is ItemStatus.FAILED and b.detail == "fake.b.two warn: no traffic"
    assert c.status is ItemStatus.FAILED and c.detail == "no check reported for fake.c"
    assert n.status is ItemStatus.SKIPPED and "no pipeline procedure" in n.detail
    assert sum(isinstance(e, cl.ItemFinished) for e in events) == 4
    saved = b.progress()
    assert saved.checks == {"fake.b.one": "pass", "fake.b.two": "warn"}
    assert "  evidence of fake.b.two" in saved.evidence


async def test_a_walk_uses_the_options_it_is_given_instead_of_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[str] = []
    monkeypatch.setitem(
        PROCEDURES, "fake", _fake_entry("fake", [_result("fake.a", CheckStatus.PASS)], builds)
    )
    item = cl.ChecklistItem("a", "A", ("fake.a",))
    failing = _Fixed((_result("fake.a", CheckStatus.FAIL, "broken"),))
    walk = cl.Walk(None, {"fake": failing})  # type: ignore[arg-type]
    outcome = await walk.run_item(cl.Checklist("t", "T", "now", (item,)), item)
    assert outcome.status is ItemStatus.FAILED and outcome.detail == "fake.a fail: broken"


def test_progress_is_saved_per_environment_survives_a_reload_and_resets(tmp_path: Path) -> None:
    staging = resolve_settings({"home": (tmp_path, "t"), "validate.environment": ("staging", "t")}).settings
    local = resolve_settings({"home": (tmp_path, "t")}).settings
    post = cl.load_checklist("post-deployment")
    progress = load_progress(staging)
    cl.confirm(progress, post, post.item("grafana-dashboards"), "compared with health")
    outcome = cl.judge(
        post.name, post.item("no-alerts"), [_procedure([_result("health.alerts", CheckStatus.FAIL)])]
    )
    cl.record(progress, outcome)
    path = save_progress(staging, progress)
    assert path == tmp_path / "checklists" / "staging.json" == progress_file(staging)
    assert [p.name for p in path.parent.iterdir()] == ["staging.json"]  # no temporary left behind
    again = load_progress(staging)
    assert again.item(post.name, "grafana-dashboards").status is ItemStatus.CONFIRMED
    assert again.item(post.name, "no-alerts").checks == {"health.alerts": "fail"}
    assert load_progress(local).item(post.name, "no-alerts").status is ItemStatus.PENDING
    assert cl.summary(again, post)[ItemStatus.PENDING] == 8
    assert again.reset(post.name) == 2
    save_progress(staging, again)
    assert load_progress(staging).item(post.name, "grafana-dashboards").status is ItemStatus.PENDING


def _procedure(results: list[CheckResult]) -> ProcedureReport:
    from k2tui.validate.procedure import StepReport

    return ProcedureReport(
        "health", "Health", datetime.now(UTC), 0.0, (StepReport("s", "s", 0.0, tuple(results)),)
    )


def test_a_confirmation_needs_a_note_and_a_refusal_is_recorded_as_such() -> None:
    pre = cl.load_checklist("pre-deployment")
    progress = Progress(environment="local")
    with pytest.raises(cl.ChecklistError, match="say in a note"):
        cl.confirm(progress, pre, pre.item("runbook"), "  ")
    entry = cl.confirm(progress, pre, pre.item("runbook"), "runbook lacks the broker failure", accepted=False)
    assert entry.status is ItemStatus.REFUSED and not entry.status.done
    assert entry.evidence == [f"by hand: {pre.item('runbook').hint}"]


def test_markdown_export_ticks_what_holds_with_status_date_note_and_evidence() -> None:
    post = cl.load_checklist("post-deployment")
    progress = Progress(environment="prod")
    cl.confirm(progress, post, post.item("grafana-dashboards"), "dashboard K2 consumer looks right")
    failed = cl.judge(
        post.name,
        post.item("consumer-lag"),
        [
            _procedure(
                [_result("health.consumer_lag", CheckStatus.FAIL, "1,432 messages behind (limit 1,000)")]
            )
        ],
    )
    cl.record(progress, failed)
    text = cl.export_markdown(progress, [post], datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    lines = text.splitlines()
    assert lines[0] == "# Validation checklists — prod"
    assert "## Post-Deployment Checklist" in lines
    assert "After deploying to production: 1 of 10 done." in lines
    grafana = next(i for i, line in enumerate(lines) if "Grafana" in line)
    assert lines[grafana].startswith("- [x] Grafana dashboards showing expected behavior — **confirmed**, 20")
    assert lines[grafana + 1] == "  - note: dashboard K2 consumer looks right"
    lag = next(i for i, line in enumerate(lines) if line.startswith("- [ ] Consumer lag"))
    assert "**failed**" in lines[lag]
    assert lines[lag + 2] == "  - `health.consumer_lag: FAIL — 1,432 messages behind (limit 1,000)`"
    assert lines[lag + 3] == "    - `evidence of health.consumer_lag`"
    assert "- [ ] No alerts firing — **pending**" in lines


# ---- the health checks' comparisons, on hand-made figures ------------------------------------------


def test_freshness_fails_when_the_newest_trade_is_older_than_five_minutes() -> None:
    now = 1_800_000_000_000_000
    stale = health.freshness_result(now - 301_000_000, now, "GET /v1/trades")
    assert stale.status is CheckStatus.FAIL and "5.0 min old (limit 5.0 min)" in stale.detail
    assert health.freshness_result(now - 2_000_000, now, "q").status is CheckStatus.PASS
    empty = health.freshness_result(None, now, "q")
    assert empty.status is CheckStatus.FAIL and empty.detail == "the API returns no trade stamped before now"


def test_throughput_passes_above_100_warns_without_traffic_and_fails_slow_with_a_backlog() -> None:
    assert health.throughput_result(3_100, 30.0, 0).status is CheckStatus.PASS
    quiet = health.throughput_result(0, 30.0, 0)
    assert quiet.status is CheckStatus.WARN and "no traffic in the window" in quiet.detail
    keeping_up = health.throughput_result(600, 30.0, 12)
    assert keeping_up.status is CheckStatus.WARN and "kept up" in keeping_up.detail
    slow = health.throughput_result(900, 30.0, 25_000)
    assert slow.status is CheckStatus.FAIL
    assert (
        slow.detail
        == "30.0 msg/s (900 consumed in 30.0 s; 25,000 waiting), below 100 msg/s while messages wait"
    )
    stuck = health.throughput_result(0, 30.0, 5_000)
    assert stuck.status is CheckStatus.FAIL
    unreadable = health.throughput_result(None, 30.0, None, "cannot read http://x/metrics")
    assert unreadable.status is CheckStatus.FAIL and "cannot read http://x/metrics" in unreadable.detail


def test_lag_fails_at_the_limit_and_names_the_partitions() -> None:
    behind = health.LagReading("Kafka", {"market.crypto.trades.binance[0]": 900, "t[1]": 100})
    result = health.lag_result(behind)
    assert result.status is CheckStatus.FAIL and result.detail.startswith(
        "1,000 messages behind (limit 1,000)"
    )
    assert result.evidence[0] == "market.crypto.trades.binance[0]: 900"
    assert health.lag_result(health.LagReading("Kafka", {"t[0]": 999})).status is CheckStatus.PASS
    assert health.lag_result(None, "Kafka down").status is CheckStatus.FAIL


def test_snapshots_fail_when_messages_are_consumed_but_nothing_is_appended() -> None:
    now = datetime.now(UTC)
    none = health.snapshots_result([], 30.0, 4_000, 1.0)
    assert (
        none.status is CheckStatus.FAIL
        and "while 4,000 messages were consumed; at least 3 due" in none.detail
    )
    few = [health.Append(1, now, 500), health.Append(2, now, 500)]
    assert health.snapshots_result(few, 30.0, 4_000, 1.0).status is CheckStatus.FAIL
    many = [*few, health.Append(3, now, 100)]
    assert health.snapshots_result(many, 30.0, 1_100, 1.0).status is CheckStatus.PASS
    assert health.snapshots_result([], 30.0, 0, 1.0).status is CheckStatus.WARN


def test_a_dead_letter_in_the_window_fails_and_is_listed(tmp_path: Path) -> None:
    since = datetime.now(UTC)
    DeadLetterQueue(tmp_path, "consumer").put("schema id 99 is not registered", b"\x00junk", topic="t")
    letters = collect_dead_letters(tmp_path)
    result = health.dlq_result(letters, since)
    assert result.status is CheckStatus.FAIL and result.detail.startswith("1 dead letter(s) since")
    assert "schema id 99 is not registered" in result.evidence[0]
    assert health.dlq_result([], since).status is CheckStatus.PASS


@pytest.mark.parametrize(
    "line",
    [
        "ERROR:    Exception in ASGI application",
        "Traceback (most recent call last):",
        "WARNING:k2tui.consume.consumer:sequence gap BTCUSDT",
        'ts=2026-11-22T03:46:27Z caller=main.go:1 level=error msg="opening storage failed"',
        "E1122 03:46:27.917000 volume.go:12 cannot reach master",
    ],
)
def test_any_error_or_warning_line_fails_the_log_check(line: str) -> None:
    lines = [health.LogLine("api", "INFO: started"), health.LogLine("api", line)]
    result = health.log_result(lines, 30.0)
    assert result.status is CheckStatus.FAIL
    assert result.detail == "1 error/warning line(s) in 30 s from api"
    assert result.evidence == [f"api: {line}"]


def test_ordinary_lines_pass_the_log_check() -> None:
    lines = [
        health.LogLine("broker", "ready in 9ms"),
        health.LogLine("object-store", "I1122 03:46:27.917 master.go:1 started"),
        health.LogLine("consumer", "03:53:28 circuit breaker for the lake is closed"),
    ]
    assert health.log_result(lines, 30.0).status is CheckStatus.PASS


def test_the_stacks_prometheus_loads_an_alert_on_lag_above_10000_and_one_on_the_consumer_down(
    tmp_path: Path,
) -> None:
    from k2tui.stack.layout import StackLayout
    from k2tui.stack.services import local_services

    settings = resolve_settings({"home": (tmp_path, "t")}).settings
    [prometheus] = [s for s in local_services(StackLayout(settings)) if s.name == "prometheus"]
    files = {path.name: (path, text) for path, text in prometheus.config_files.items()}
    config_path, config = files["prometheus.yml"]
    rules_path, rules = files["prometheus-rules.yml"]
    assert f"rule_files:\n  - '{rules_path}'\n" in config
    assert "expr: sum(k2_consumer_lag) > 10000\n        for: 1m" in rules
    assert 'expr: up{job="consumer"} == 0' in rules
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed")
    for path, text in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    checked = subprocess.run([promtool, "check", "config", str(config_path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 2 rules found" in checked.stdout
