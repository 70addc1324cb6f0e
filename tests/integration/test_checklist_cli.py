"""`k2tui checklist` against the session's stack: a walk runs the health checks behind the automated
items, records each verdict with its evidence for the environment, and exports it for a deploy ticket."""

import json
import threading
import uuid

from click.testing import CliRunner

from k2tui.cli import cli
from k2tui.stack.supervisor import LocalStack


def test_a_walk_records_each_verdict_and_its_evidence_then_exports_and_resets(
    stack: LocalStack, stack_env: dict[str, str]
) -> None:
    environment = f"test-{uuid.uuid4().hex[:8]}"
    env = stack_env | {"K2_VALIDATE_ENVIRONMENT": environment, "COLUMNS": "200"}
    runner = CliRunner()
    marker = f"ERROR: injected by the checklist test {uuid.uuid4()}"
    walking = threading.Event()

    def write_errors() -> None:  # a service logging an error while the walk watches the logs
        while not walking.wait(0.3):
            with stack.layout.log_file("api").open("a") as log:
                log.write(marker + "\n")

    writer = threading.Thread(target=write_errors)
    writer.start()
    try:
        run = runner.invoke(
            cli,
            ["checklist", "run", "post-deployment", "--no-manual", "--health-window", "2"],
            env=env,
        )
    finally:
        walking.set()
        writer.join()
    assert run.exit_code == 1, run.output
    assert "FAILED Logs show no errors or warnings: health.logs fail: " in run.output
    assert "PENDING Grafana dashboards showing expected behavior" in run.output
    assert f"item(s) passed or confirmed ({environment})." in run.output

    saved = json.loads((stack.layout.home / "checklists" / f"{environment}.json").read_text())
    items = saved["checklists"]["post-deployment"]
    assert "grafana-dashboards" not in items
    assert items["clean-logs"]["status"] == "failed"
    assert items["clean-logs"]["checks"] == {"health.logs": "fail"}
    assert any(marker in line for line in items["clean-logs"]["evidence"])
    assert len(items) == 9 and all(item["checks"] for item in items.values())

    confirmed = runner.invoke(
        cli,
        ["checklist", "confirm", "post-deployment", "grafana-dashboards", "--note", "no Grafana here"],
        env=env,
    )
    assert confirmed.exit_code == 0 and "grafana-dashboards: confirmed" in confirmed.output
    exported = runner.invoke(cli, ["checklist", "export", "post-deployment"], env=env)
    assert exported.exit_code == 0
    assert f"# Validation checklists — {environment}" in exported.output
    assert "- [x] Grafana dashboards showing expected behavior — **confirmed**, " in exported.output
    assert "  - note: no Grafana here" in exported.output
    assert "- [ ] Logs show no errors or warnings — **failed**, " in exported.output
    assert marker in exported.output

    listed = runner.invoke(cli, ["checklist", "list"], env=env)
    assert "1 confirmed" in listed.output and "failed" in listed.output
    reset = runner.invoke(cli, ["checklist", "reset", "post-deployment"], env=env)
    assert reset.exit_code == 0 and f"post-deployment: cleared 10 item(s) for {environment}." in reset.output
    shown = runner.invoke(cli, ["checklist", "show", "post-deployment"], env=env)
    assert shown.output.count("PENDING") == 10
