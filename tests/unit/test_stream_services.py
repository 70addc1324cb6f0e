"""The stream services' parts that need no running service: their specs, on-demand status, and the
figures their status server answers."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from k2tui.config import resolve_settings
from k2tui.ingest.runner import SIMULATED, StreamRun, protocol_for
from k2tui.ingest.status import StatsPage, StatusServer, StreamFigures
from k2tui.model.samples import sample_trades
from k2tui.model.trade import Exchange
from k2tui.stack.layout import StackLayout
from k2tui.stack.services import local_services, prometheus_config, stream_service
from k2tui.stack.supervisor import LocalStack, ServiceState, ServiceStatus


def _layout(tmp_path: Path, **overrides: object) -> StackLayout:
    values = {"home": (tmp_path, "test"), **{k: (v, "test") for k, v in overrides.items()}}
    return StackLayout(resolve_settings(values, env={}).settings)


def test_the_streams_and_the_simulator_run_on_demand_unless_autostarted(tmp_path: Path) -> None:
    specs = {s.name: s for s in local_services(_layout(tmp_path))}
    assert [n for n, s in specs.items() if s.on_demand] == ["simulator", "binance", "kraken"]
    autostarted = local_services(_layout(tmp_path, **{"streams.autostart": True}))
    assert not any(s.on_demand for s in autostarted)


def test_a_stream_reads_the_simulator_service_unless_it_is_live(tmp_path: Path) -> None:
    layout = _layout(tmp_path, **{"streams.simulator_port": 20095, "streams.binance_status_port": 20096})
    for source in ("sim", "auto"):
        spec = stream_service(layout, "binance", source)
        assert spec.command is not None and spec.command[-2:] == ["--simulator-url", "ws://127.0.0.1:20095"]
        assert "simulator" in spec.after and f"--source {source} --status-port 20096" in " ".join(
            spec.command
        )
    live = stream_service(layout, "binance", "live")
    assert live.command is not None and "--simulator-url" not in live.command
    assert live.after == ("broker", "registry")


def test_prometheus_scrapes_both_stream_services(tmp_path: Path) -> None:
    config = prometheus_config(local_services(_layout(tmp_path)))
    assert "job_name: binance" in config and "targets: ['127.0.0.1:19096']" in config
    assert "job_name: kraken" in config and "targets: ['127.0.0.1:19097']" in config


def test_a_stopped_on_demand_service_is_no_fault_but_an_exited_one_is(tmp_path: Path) -> None:
    stack = LocalStack(resolve_settings({"home": (tmp_path, "test")}, env={}).settings)
    binance = next(s for s in stack.status() if s.name == "binance")
    assert binance.state is ServiceState.STOPPED
    assert binance.detail == "on demand: `k2tui restart binance` starts it"
    assert stack.expected_down(binance)
    assert not stack.expected_down(ServiceStatus("binance", "", ServiceState.EXITED, "", exit_code=1))
    assert not stack.expected_down(ServiceStatus("consumer", "", ServiceState.STOPPED, ""))


def _figures(tmp_path: Path) -> StreamFigures:
    settings = resolve_settings({"home": (tmp_path, "test")}, env={}).settings
    run = StreamRun(settings, [protocol_for("binance", settings)], sources={"binance": SIMULATED})
    trades = [t for t in sample_trades(200) if t.exchange is Exchange.BINANCE][:60]
    for trade in trades:  # as the client counts what it takes, then hands it to the run
        run.clients[0].stats.accept(trade, time.time())
    run._sink(trades)
    figures = StreamFigures(producer=None)
    figures.run = run
    return figures


def test_stats_answer_the_streams_and_the_newest_50_trades_newest_first(tmp_path: Path) -> None:
    status, kind, body = StatusServer(_figures(tmp_path)).respond("/stats")
    assert (status, kind) == ("200 OK", "application/json")
    page = msgspec.json.decode(body, type=StatsPage)
    [stream] = page.streams
    assert (stream.name, stream.source, stream.state) == ("binance", SIMULATED, "connecting")
    assert len(page.trades) == 50 and page.producer is None
    times = [t.time for t in page.trades]
    assert times == sorted(times, reverse=True) and times[0].endswith("Z")
    assert all(t.side in ("BUY", "SELL") and "." in t.price for t in page.trades)


def test_metrics_answer_prometheus_text_labelled_by_exchange_and_source(tmp_path: Path) -> None:
    server = StatusServer(_figures(tmp_path))
    status, kind, body = server.respond("/metrics")
    assert status == "200 OK" and kind.startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    labels = (("exchange", "binance"), ("source", SIMULATED))
    assert samples[("k2_stream_trades_total", labels)] == 60
    assert samples[("k2_stream_streaming", labels)] == 0
    assert ("k2_stream_reconnects_total", labels) in samples and ("k2_stream_gaps_total", labels) in samples
    assert server.respond("/nothing")[0] == "404 Not Found"
