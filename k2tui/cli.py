"""The `k2tui` command. Every verb resolves settings the same way and calls the library underneath."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shlex
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from k2tui import __version__
from k2tui.config import Resolution, SettingsError, parse_assignment, resolve_settings
from k2tui.stack.backend import BACKENDS, Stack, open_stack
from k2tui.stack.binaries import MissingBinaryError
from k2tui.stack.layout import StackLayout
from k2tui.stack.ports import PortInUseError, bind_socket
from k2tui.stack.proxy import Mode
from k2tui.stack.supervisor import FaultAction, ServiceState, StackError
from k2tui.validate.fault_names import SCENARIOS as FAULT_SCENARIOS

console = Console()
err_console = Console(stderr=True)


class FriendlyGroup(click.Group):
    """Turns the errors a user can fix into one plain sentence and a non-zero exit, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SettingsError, PortInUseError, StackError, MissingBinaryError) as error:
            raise click.ClickException(str(error)) from error


@dataclass
class CliState:
    config_file: Path | None
    assignments: tuple[str, ...]

    def resolve(self, **flags: tuple[Any, str] | None) -> Resolution:
        """Settings with `--set` and the command's own flags (key → (value, flag label)) on top."""
        overrides: dict[str, tuple[Any, str]] = {}
        for text in self.assignments:
            key, value = parse_assignment(text)
            overrides[key] = (value, f"--set {key}")
        overrides.update({key.replace("__", "."): v for key, v in flags.items() if v is not None})
        return resolve_settings(overrides, config_file=self.config_file)


def flag(value: Any, label: str) -> tuple[Any, str] | None:
    return None if value is None else (value, label)


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="k2tui")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings file (default: $K2_CONFIG, else ./k2tui.toml when present).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one setting, e.g. --set registry.port=18082 (repeatable).",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, assignments: tuple[str, ...]) -> None:
    """k2tui: the K2 crypto market-data pipeline and a terminal cockpit for it."""
    ctx.obj = CliState(config_file, assignments)


@cli.group(cls=FriendlyGroup)
def config() -> None:
    """Inspect the effective settings."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def config_show(state: CliState, as_json: bool) -> None:
    """Print every setting, its effective value and where that value came from."""
    resolution = state.resolve()
    if as_json:
        rows = [
            {"key": e.key, "value": _plain(e.value), "source": e.source, "env": e.env_var}
            for e in resolution.entries
        ]
        click.echo(json.dumps({"config_file": _plain(resolution.config_file), "settings": rows}, indent=2))
        return
    table = Table(title=f"k2tui settings (file: {resolution.config_file or 'none'})")
    for column in ("setting", "value", "source", "environment variable", "meaning"):
        table.add_column(column)
    for e in resolution.entries:
        style = None if e.source == "default" else "bold"
        table.add_row(e.key, str(e.value), e.source, e.env_var, e.help, style=style)
    console.print(table)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


@cli.group(cls=FriendlyGroup)
def registry() -> None:
    """The Confluent-compatible Schema Registry."""


@registry.command("serve")
@click.option("--host", help="Address to listen on (setting registry.host).")
@click.option("--port", type=int, help="Port to listen on (setting registry.port).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where schemas are stored (default: $K2_HOME/data/registry).",
)
@click.pass_obj
def registry_serve(state: CliState, host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Serve the Schema Registry REST API until interrupted."""
    from k2tui.stack.registry.server import serve_registry

    settings = state.resolve(
        registry__host=flag(host, "flag --host"), registry__port=flag(port, "flag --port")
    ).settings
    serve_registry(
        settings.registry.host,
        settings.registry.port,
        data_dir or settings.home / "data" / "registry",
        max_body_bytes=settings.registry.max_body_bytes,
        log_level=settings.log_level,
    )


@cli.group(cls=FriendlyGroup)
def api() -> None:
    """The read-only HTTP query API over the lake."""


@api.command("serve")
@click.option("--host", help="Address to listen on (setting api.host).")
@click.option("--port", type=int, help="Port to listen on (setting api.port).")
@click.pass_obj
def api_serve(state: CliState, host: str | None, port: int | None) -> None:
    """Serve /v1/trades, /v1/trades/count, /v1/bars, /v1/symbols, /v1/snapshots and /health."""
    from k2tui.api.server import serve_api

    settings = state.resolve(api__host=flag(host, "flag --host"), api__port=flag(port, "flag --port"))
    serve_api(settings.settings)


def _stack(state: CliState, backend: str | None = None) -> Stack:
    """The stack of the settings; `backend` is a --backend flag, over the stack.backend setting."""
    return open_stack(state.resolve(stack__backend=flag(backend, "flag --backend")).settings)


backend_option = click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    help=(
        "local processes, Docker containers through Compose, or external services k2tui only reads"
        " (setting stack.backend)."
    ),
)


def _print_progress(service: str, message: str) -> None:
    console.print(f"  [bold]{service}[/]: {message}")


@cli.command()
@backend_option
@click.pass_obj
def up(state: CliState, backend: str | None) -> None:
    """Start the stack (what already runs is left alone) and wait until every service is ready."""
    from k2tui.tui.launch import bring_up

    stack = _stack(state, backend)
    console.print(f"Starting the {stack.backend} stack in {stack.layout.home}")
    report = bring_up(stack, _print_progress)
    console.print(f"Ready in {report.total_s:.1f} s.")
    _render_status(stack, stack.status())


@cli.command()
@click.option("--purge", is_flag=True, help="Also delete the stack's data and logs.")
@click.option("--yes", is_flag=True, help="Do not ask before deleting data.")
@backend_option
@click.pass_obj
def down(state: CliState, purge: bool, yes: bool, backend: str | None) -> None:
    """Stop every process this stack started; data is kept unless --purge."""
    stack = _stack(state, backend)
    if purge and not yes:
        click.confirm(f"Delete all data and logs under {stack.layout.home}?", abort=True)
    stopped = stack.down(purge=purge)
    console.print(f"Stopped {', '.join(stopped) if stopped else 'nothing (no service was running)'}.")
    if purge:
        console.print(f"Deleted the data and logs under {stack.layout.home}.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@backend_option
@click.pass_obj
def status(state: CliState, as_json: bool, backend: str | None) -> None:
    """Show each service's state; exit code 1 when any installed service is not ready."""
    stack = _stack(state, backend)
    statuses = stack.status()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "backend": stack.backend,
                    "home": str(stack.layout.home),
                    "services": [{**asdict(s), "state": s.state.value} for s in statuses],
                },
                indent=2,
            )
        )
    else:
        _render_status(stack, statuses)
    if any(s.state is not ServiceState.READY and not stack.expected_down(s) for s in statuses):
        raise SystemExit(1)


_STATE_STYLE = {
    ServiceState.READY: "green",
    ServiceState.NOT_READY: "yellow",
    ServiceState.PAUSED: "magenta",
    ServiceState.PARTITIONED: "magenta",
    ServiceState.STOPPED: "dim",
    ServiceState.EXITED: "red",
    ServiceState.UNAVAILABLE: "yellow",
}


def _render_status(stack: Stack, statuses: list[Any]) -> None:
    table = Table(title=f"k2tui stack ({stack.backend} backend, {stack.layout.home})")
    for column, justify in (
        ("service", "left"),
        ("state", "left"),
        ("address", "left"),
        ("pid", "right"),
        ("uptime", "right"),
        ("memory", "right"),
        ("detail", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for s in statuses:
        table.add_row(
            s.name,
            f"[{_STATE_STYLE[s.state]}]{s.state.value}[/]",
            s.address,
            "" if s.pid is None else str(s.pid),
            "" if s.uptime_s is None else _duration(s.uptime_s),
            "" if s.rss_bytes is None else f"{s.rss_bytes / 2**20:,.0f} MiB",
            s.detail,
        )
    console.print(table)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@cli.command()
@click.argument("service")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until interrupted.")
@click.option("-n", "lines", default=50, show_default=True, help="How many of the last lines to print.")
@backend_option
@click.pass_obj
def logs(state: CliState, service: str, follow: bool, lines: int, backend: str | None) -> None:
    """Print a service's log."""
    stack = _stack(state, backend)
    for line in stack.last_log_lines(service, lines):
        click.echo(line)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            for chunk in stack.follow_log(service):
                click.echo(chunk, nl=False)


@cli.command()
@click.argument("service")
@click.option(
    "--source",
    type=click.Choice(["auto", "live", "sim"]),
    help="A stream service (binance, kraken): restart it reading this source.",
)
@backend_option
@click.pass_obj
def restart(state: CliState, service: str, source: str | None, backend: str | None) -> None:
    """Stop one service and start it again, waiting until it is ready."""
    stack = _stack(state, backend)
    if source is not None:
        from k2tui.ingest.control import set_stream_source

        console.print(set_stream_source(stack, service, source))
        return
    stack.restart(service, _print_progress)
    console.print(f"{service} restarted and ready.")


@cli.command()
@click.argument("service")
@click.argument("action", type=click.Choice([a.value for a in FaultAction]))
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode if m is not Mode.PASS]),
    default=Mode.BLACKHOLE.value,
    show_default=True,
    help="How a partition behaves: hang, reset connections, or add latency.",
)
@click.option("--delay-ms", default=500, show_default=True, help="Latency added by --mode delay.")
@backend_option
@click.pass_obj
def fault(state: CliState, service: str, action: str, mode: str, delay_ms: int, backend: str | None) -> None:
    """Inject or heal a fault: stop, start, kill, pause, resume, partition, heal."""
    stack = _stack(state, backend)
    message = stack.fault(
        service, FaultAction(action), mode=Mode(mode), delay_ms=delay_ms, progress=_print_progress
    )
    console.print(message)


@cli.command("env")
@click.pass_obj
def env_command(state: CliState) -> None:
    """Print shell exports pointing Kafka, registry, S3 and pyiceberg tools at the stack.

    Use as: eval "$(k2tui env)"
    """
    from k2tui.stack.services import catalog_properties

    stack = _stack(state)
    e = stack.layout.endpoints
    exports = {
        "K2_HOME": str(stack.layout.home),
        "KAFKA_BOOTSTRAP_SERVERS": e.kafka_bootstrap,
        "SCHEMA_REGISTRY_URL": e.registry_url,
        "AWS_ENDPOINT_URL_S3": e.s3_endpoint,
        "AWS_ACCESS_KEY_ID": e.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": e.s3_secret_key,
        "AWS_REGION": e.s3_region,
        "PROMETHEUS_URL": e.prometheus_url,
        f"PYICEBERG_CATALOG__{e.catalog_name.upper()}__TYPE": "sql",
    }
    for key, value in catalog_properties(stack.layout).items():
        name = key.replace(".", "__").replace("-", "_").upper()
        exports[f"PYICEBERG_CATALOG__{e.catalog_name.upper()}__{name}"] = value
    for name, value in exports.items():
        click.echo(f"export {name}={shlex.quote(value)}")


@cli.command()
@backend_option
@click.pass_obj
def tui(state: CliState, backend: str | None) -> None:
    """Open the cockpit on the stack of the current settings (it does not start the stack)."""
    from k2tui.tui.app import CockpitApp
    from k2tui.tui.data import LiveSources

    stack = _stack(state, backend)
    CockpitApp(LiveSources(stack), theme=stack.layout.settings.tui.theme, settle_heap=True).run()


@cli.command()
@click.option("--tour", is_flag=True, help="Run the fault-recovery tour as soon as the cockpit is open.")
@click.option("--leave-up", is_flag=True, help="After quitting, leave running what the demo started.")
@click.pass_obj
def demo(state: CliState, tour: bool, leave_up: bool) -> None:
    """Bring up the local stack and both streams (live, else the simulator) and open the cockpit on them.

    On quitting, what the demo started is stopped again (a stack already running stays as it was),
    unless --leave-up.
    """
    from k2tui.tui.app import CockpitApp
    from k2tui.tui.data import LiveSources
    from k2tui.tui.launch import start_demo, stop_demo

    stack = _stack(state)
    console.print(f"Starting the demo on the local stack in {stack.layout.home}")
    session = start_demo(stack, _print_progress)
    try:
        CockpitApp(
            LiveSources(stack), theme=stack.layout.settings.tui.theme, tour=tour, settle_heap=True
        ).run()
    finally:
        if leave_up:
            started = ", ".join(session.started) or "nothing new"
            console.print(f"Left running: {started}; `k2tui down` stops the stack.")
        else:
            stopped = stop_demo(stack, session)
            console.print(f"Stopped what the demo started: {', '.join(stopped) or 'nothing'}.")


@cli.command()
@click.option("--port", default=18765, show_default=True, help="Port for both exchanges and /control.")
@click.option("--rate", default=10.0, show_default=True, help="Trades per second per symbol (0.1 to 10,000).")
@click.option("--seed", type=int, help="Seed for a repeatable market.")
def simulate(port: int, rate: float, seed: int | None) -> None:
    """Serve simulated Binance and Kraken (v1 and v2) trade streams on 127.0.0.1 until interrupted."""
    from k2tui.ingest.simulator.server import run_simulator

    run_simulator("127.0.0.1", port, rate, seed)


@cli.command()
@click.option("--exchange", type=click.Choice(["binance", "kraken", "all"]), default="all", show_default=True)
@click.option(
    "--source",
    type=click.Choice(["live", "sim", "auto"]),
    default="live",
    show_default=True,
    help="auto: live, else the simulator (as --fallback).",
)
@click.option("--fallback", is_flag=True, help="If a live endpoint cannot be reached, use the simulator.")
@click.option("--max-trades", type=click.IntRange(min=1), help="Stop after this many trades in all.")
@click.option("--duration", type=click.FloatRange(min=0.1), help="Stop after this many seconds.")
@click.option("--no-kafka", is_flag=True, help="Do not produce to Kafka; print the trades instead.")
@click.option("--rate", default=10.0, show_default=True, help="Simulator trades per second per symbol.")
@click.option("--simulator-url", help="A running simulator (ws://host:port) to read instead of starting one.")
@click.option(
    "--status-port", type=click.IntRange(1024, 32767), help="Serve /metrics and /stats (JSON) here."
)
@click.pass_obj
def stream(
    state: CliState,
    exchange: str,
    source: str,
    fallback: bool,
    max_trades: int | None,
    duration: float | None,
    no_kafka: bool,
    rate: float,
    simulator_url: str | None,
    status_port: int | None,
) -> None:
    """Stream trades from the exchanges (or the simulator) into Kafka as v2 Avro records.

    Runs until stopped (Ctrl-C or SIGTERM), --max-trades or --duration. Exit code 0 only when no
    stream failed and Kafka acknowledged every trade.
    """
    settings = state.resolve().settings
    exchanges = ["binance", "kraken"] if exchange == "all" else [exchange]
    if source == "auto":
        source, fallback = "live", True
    report = asyncio.run(
        _stream(
            settings,
            exchanges,
            source,
            fallback,
            max_trades,
            duration,
            not no_kafka,
            rate,
            simulator_url=simulator_url,
            status_port=status_port,
        )
    )
    _render_stream_report(report)
    produced = report.producer is None or report.producer.acked == report.trades
    if report.errors or not produced:
        raise SystemExit(1)


async def _stream(
    settings: Any,
    exchanges: list[str],
    source: str,
    fallback: bool,
    max_trades: int | None,
    duration: float | None,
    to_kafka: bool,
    rate: float,
    *,
    simulator_url: str | None = None,
    status_port: int | None = None,
) -> Any:
    from k2tui.ingest.dlq import DeadLetterQueue
    from k2tui.ingest.runner import SourceUnreachableError, dlq_dir, plan_sources, producer_for, stream_trades
    from k2tui.ingest.status import StatusServer, StreamFigures
    from k2tui.stack.probes import NotReady, kafka_metadata

    status_socket = (
        None if status_port is None else bind_socket("127.0.0.1", status_port, setting="--status-port")
    )
    try:
        plan = await plan_sources(settings, exchanges, source=source, fallback=fallback)
    except SourceUnreachableError as error:
        raise click.ClickException(str(error)) from error
    for note in plan.notes:
        console.print(f"[yellow]{note}[/]")
    producer = None
    if to_kafka:
        endpoints = StackLayout(settings).endpoints
        try:
            await kafka_metadata(endpoints.kafka_bootstrap)(3.0)
        except NotReady as error:
            raise click.ClickException(
                f"Kafka is not reachable ({error}); start the stack with `k2tui up`, or pass --no-kafka"
            ) from error
        producer = producer_for(settings, dlq=DeadLetterQueue(dlq_dir(settings), "producer"))
    shown = ", ".join(f"{e} ({origin})" for e, origin in plan.sources.items())
    console.print(f"Streaming {shown}{' into Kafka' if to_kafka else ''}; Ctrl-C stops.")
    loop = asyncio.get_running_loop()
    tickers: list[asyncio.Task[None]] = []
    figures = StreamFigures(producer)
    server = None if status_socket is None else await StatusServer(figures).serve(status_socket)
    if status_port is not None:
        console.print(f"Figures at http://127.0.0.1:{status_port}/metrics and /stats.")

    def watch(run: Any) -> None:
        figures.run = run
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, run.stop)
        tickers.append(asyncio.create_task(_report_every(run, producer, 5.0)))

    try:
        return await stream_trades(
            settings,
            plan,
            producer=producer,
            max_trades=max_trades,
            duration=duration,
            sim_rate=rate,
            simulator_url=simulator_url,
            on_trades=None if to_kafka else _print_trades,
            on_event=lambda name, message: _stamped(f"{name}: {message}"),
            on_run=watch,
        )
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for ticker in tickers:
            ticker.cancel()
        if server is not None:
            server.close()


async def _report_every(run: Any, producer: Any, seconds: float) -> None:
    """One line per stream every few seconds, so a long run shows it is alive."""
    from k2tui.ingest.status import delivery_problem

    while True:
        await asyncio.sleep(seconds)
        for client in run.clients:
            s = client.stats.snapshot()
            p99 = "" if s.latency_p99_ms is None else f", p99 {s.latency_p99_ms:.1f} ms"
            _stamped(
                f"{s.name} [{s.source}] {s.state.value}: {s.rate_10s:,.1f} trades/s, {s.trades:,} trades, "
                f"{s.gaps} gaps, {s.reconnects} reconnects{p99}"
            )
        if producer is not None:
            stats = producer.stats
            problem = delivery_problem(stats.kafka_up, stats.registry_up, stats.last_error)
            _stamped(
                f"kafka: {stats.acked:,} acked, {producer.buffered:,} buffered"
                + (f" ({problem})" if problem else "")
            )


def _stamped(message: str) -> None:
    """An event line, prefixed with the local time."""
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")


def _print_trades(trades: Any) -> None:
    for t in trades:
        colour = "green" if t.side == "BUY" else "red"
        stamp = (
            time.strftime("%H:%M:%S", time.gmtime(t.timestamp / 1e6))
            + f".{t.timestamp % 1_000_000 // 1000:03d}"
        )
        console.print(
            f"{stamp} {t.exchange.value:<7} {t.symbol:<9} [{colour}]{t.side.value:<4}[/] "
            f"{t.price:>14} {t.quantity:>16}  {t.trade_id}"
        )


def _render_stream_report(report: Any) -> None:
    table = Table(title=f"streams after {report.seconds:.1f} s: {report.trades:,} trades")
    for column in (
        "stream",
        "source",
        "state",
        "trades",
        "rate 10 s",
        "gaps",
        "dupes",
        "refused",
        "reconnects",
        "latency p50/p99",
        "connect",
        "first trade",
    ):
        table.add_column(column)
    for s in report.streams:
        latency = "" if s.latency_p50_ms is None else f"{s.latency_p50_ms:.1f} / {s.latency_p99_ms:.1f} ms"
        table.add_row(
            s.name,
            s.source,
            s.state.value,
            f"{s.trades:,}",
            f"{s.rate_10s:,.1f}/s",
            f"{s.gaps} ({s.missing_trades} missing)" if s.gaps else "0",
            str(s.duplicates),
            str(s.parse_errors),
            str(s.reconnects),
            latency,
            "" if s.connect_seconds is None else f"{s.connect_seconds * 1000:.0f} ms",
            "" if s.first_trade_seconds is None else f"{s.first_trade_seconds:.2f} s",
        )
    console.print(table)
    if report.producer is not None:
        p = report.producer
        console.print(
            f"Kafka: {p.acked:,} of {report.trades:,} acknowledged; {p.overflowed:,} overflowed and "
            f"{p.abandoned:,} abandoned to the DLQ; {p.send_failures} failed sends"
            + (f"; last error: {p.last_error}" if p.last_error else "")
        )
    for error in report.errors:
        console.print(f"[red]{error}[/]")


def _crash_plan(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from k2tui.consume.crash import CrashPlan, CrashPoint

    if value is None:
        return None
    point, _, nth = value.partition(":")
    choices = ", ".join(p.value for p in CrashPoint)
    if point not in {p.value for p in CrashPoint} or not (nth == "" or (nth.isdigit() and int(nth) > 0)):
        raise click.BadParameter(f"expected POINT or POINT:N with POINT one of {choices}, got {value!r}")
    return CrashPlan(CrashPoint(point), int(nth or 1))


@cli.command()
@click.option("--max-messages", type=click.IntRange(min=1), help="Stop after this many messages.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Records per append (consumer.batch_size).")
@click.option(
    "--flush-interval",
    type=click.FloatRange(min=0.05),
    help="Seconds before a partial batch is written (consumer.flush_interval).",
)
@click.option("--group", help="Consumer group (consumer.group).")
@click.option(
    "--topics",
    default="market.crypto.trades.binance,market.crypto.trades.kraken",
    show_default=True,
    help="Comma-separated topics.",
)
@click.option(
    "--from-beginning", is_flag=True, help="Where the group has no offset yet, start at the oldest."
)
@click.option("--metrics-port", type=click.IntRange(1024, 32767), help="Serve Prometheus /metrics here.")
@click.option(
    "--crash-at",
    callback=_crash_plan,
    metavar="POINT[:N]",
    help="Fault injection: SIGKILL this process at before-append, after-append (before the Kafka "
    "commit) or after-commit of the Nth batch, to show that a restart loses and doubles nothing.",
)
@click.pass_obj
def consume(
    state: CliState,
    max_messages: int | None,
    batch_size: int | None,
    flush_interval: float | None,
    group: str | None,
    topics: str,
    from_beginning: bool,
    metrics_port: int | None,
    crash_at: Any,
) -> None:
    """Write trades from Kafka into market_data.trades_v2, exactly once.

    Runs until stopped (SIGTERM or Ctrl-C writes the last batch and leaves the group) or until
    --max-messages. Exit code 0 only when every consumed message was written, dead-lettered or dropped
    as a duplicate, and no error stopped it.
    """
    from k2tui.consume.memory import spare_the_collector, use_lean_memory

    use_lean_memory()  # before the imports below bring in pyarrow, which picks its allocator then
    from k2tui.consume.consumer import IcebergConsumer
    from k2tui.ingest.dlq import DeadLetterQueue
    from k2tui.ingest.runner import dlq_dir
    from k2tui.lake.catalog import LakeUnavailableError, open_trades_table
    from k2tui.lake.maintenance import MaintenancePolicy, MaintenanceSchedule

    settings = state.resolve().settings
    options = settings.consumer
    layout = StackLayout(settings)
    if metrics_port is not None:
        bind_socket("127.0.0.1", metrics_port, setting="--metrics-port").close()
    try:
        table = open_trades_table(layout)
    except LakeUnavailableError as error:
        raise click.ClickException(str(error)) from error
    topic_names = [t.strip() for t in topics.split(",") if t.strip()]
    consumer = IcebergConsumer(
        bootstrap=layout.endpoints.kafka_bootstrap,
        registry_url=layout.endpoints.registry_url,
        table=table,
        topics=topic_names,
        dlq=DeadLetterQueue(dlq_dir(settings), "consumer"),
        group=group or options.group,
        batch_size=batch_size or options.batch_size,
        flush_interval=flush_interval or options.flush_interval,
        max_messages=max_messages,
        from_beginning=from_beginning,
        shutdown_timeout=options.shutdown_timeout,
        on_event=_stamped,
        crash=crash_at,
        topic_partitions=settings.streams.partitions,
        large_gap=options.large_gap,
        maintenance=MaintenanceSchedule(MaintenancePolicy.from_settings(settings.lake)),
    )
    if metrics_port is not None:
        consumer.metrics.serve(metrics_port)

    async def run() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await consumer.run(stop)

    spare_the_collector()
    with contextlib.suppress(Exception):  # counted in the statistics and named below them
        asyncio.run(run())
    _render_consumer_stats(consumer.stats)
    if not (consumer.stats.accounted and consumer.stats.errors == 0):
        raise SystemExit(1)


def _render_consumer_stats(stats: Any) -> None:
    """The seed's statistics block, then what k2tui adds to it."""
    seconds = time.monotonic() - stats.started
    p50, p99, sustained = stats.commit_p50(), stats.commit_p99(), stats.sustained_rate()
    complete = stats.accounted and stats.errors == 0
    console.print("✓ Consumption complete!" if complete else "[red]✗ Consumption incomplete[/]")
    console.print(
        "\nStatistics:\n"
        f"  Messages consumed: {stats.consumed}\n"
        f"  Messages written: {stats.written}\n"
        f"  Errors: {stats.errors}\n"
        f"  Sequence gaps: {stats.sequence_gaps}\n"
        f"  Duration: {seconds:.2f} seconds\n"
        f"  Throughput: {stats.consumed / seconds if seconds else 0:.2f} msg/sec\n"
        f"  Sustained throughput: {'n/a' if sustained is None else f'{sustained:.2f} msg/sec'} "
        "(first message to last write)\n"
        f"  Dead-lettered: {stats.dead_lettered}\n"
        f"  Duplicates dropped: {stats.duplicates}\n"
        f"  Retried failures: {stats.transient_errors}\n"
        f"  Snapshots added: {stats.snapshots}\n"
        f"  Commit p50: {'n/a' if p50 is None else f'{p50 * 1000:.0f} ms'}\n"
        f"  Commit p99: {'n/a' if p99 is None else f'{p99 * 1000:.0f} ms'}",
        highlight=False,
    )
    if stats.last_error:
        console.print(f"[red]Stopped by an unhandled error: {stats.last_error}[/]", highlight=False)


@cli.group(cls=FriendlyGroup)
def dlq() -> None:
    """The dead-letter queue: list, inspect and replay the messages the pipeline refused."""


def _dlq_filter_options(command: Any) -> Any:
    """--source, --reason and --filter, shared by the verbs that act on many entries."""
    for option in reversed(
        (
            click.option(
                "--source", help="consumer, producer, stream-binance, stream-kraken, or stream for both."
            ),
            click.option("--reason", metavar="TEXT", help="Only entries whose error type or error has TEXT."),
            click.option(
                "--filter",
                "text",
                metavar="TEXT",
                help="Only entries with TEXT in their id, source, topic, error type or error.",
            ),
        )
    ):
        command = option(command)
    return command


def _load_dead_letters(settings: Any, wanted: Any) -> tuple[Path, list[Any]]:
    """The DLQ directory and its matching entries; each unreadable line is named on stderr and skipped."""
    from k2tui.ingest.dlq import collect_dead_letters, dlq_dir

    directory = dlq_dir(settings)
    letters = collect_dead_letters(
        directory,
        wanted,
        on_unreadable=lambda line: click.echo(f"warning: skipped an unreadable line: {line}", err=True),
    )
    return directory, letters


def _dead_letters(count: int) -> str:
    return f"{count:,} dead letter{'' if count == 1 else 's'}"


def _nothing_found(directory: Path, filtered: bool) -> str:
    return f"No dead letters{' match' if filtered else ''} in {directory}."


@dlq.command("list")
@_dlq_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
def dlq_list(
    state: CliState, source: str | None, reason: str | None, text: str | None, as_json: bool
) -> None:
    """List dead letters, oldest first, then how many there are of each reason."""
    import msgspec
    from rich.text import Text

    from k2tui.ingest.dlq import DeadLetterFilter, read_replays

    directory, letters = _load_dead_letters(state.resolve().settings, DeadLetterFilter(source, reason, text))
    replays = read_replays(directory)
    if as_json:
        entries = [
            msgspec.to_builtins(letter) | {"replays": msgspec.to_builtins(replays.get(letter.id, []))}
            for letter in letters
        ]
        click.echo(json.dumps({"directory": str(directory), "entries": entries}, indent=2))
        return
    if not letters:
        console.print(_nothing_found(directory, any((source, reason, text))), highlight=False)
        return
    table = Table(title=f"{_dead_letters(len(letters))} in {directory}")
    for column in ("id", "failed (UTC)", "source", "from", "error type", "error", "replayed"):
        table.add_column(column, no_wrap=column in ("id", "failed (UTC)"))
    for letter in letters:
        table.add_row(
            letter.id,
            f"{letter.failed_at:%Y-%m-%d %H:%M:%S}",
            letter.source,
            Text(letter.position),
            letter.error_type,
            Text(letter.reason),
            "yes" if letter.id in replays else "",
        )
    console.print(table)
    counts: dict[tuple[str, str], int] = {}
    for letter in letters:
        counts[(letter.source, letter.error_type)] = counts.get((letter.source, letter.error_type), 0) + 1
    by_reason = Table(title="by reason")
    for column in ("source", "error type", "entries"):
        by_reason.add_column(column, justify="right" if column == "entries" else "left")
    for (origin, kind), count in sorted(counts.items(), key=lambda item: -item[1]):
        by_reason.add_row(origin, kind or "(none)", f"{count:,}")
    console.print(by_reason)


@dlq.command("show")
@click.argument("letter_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as stored, as JSON.")
@click.pass_obj
def dlq_show(state: CliState, letter_id: str, as_json: bool) -> None:
    """Everything about one dead letter: the error, where it came from, what decoded, the payload.

    ID may be shortened to any unique prefix of at least 4 characters.
    """
    import msgspec

    from k2tui.ingest.dlq import (
        DeadLetterError,
        describe_decoded,
        describe_payload,
        find_dead_letter,
        letter_facts,
        read_replays,
    )

    directory, letters = _load_dead_letters(state.resolve().settings, None)
    try:
        letter = find_dead_letter(letters, letter_id, directory)
    except DeadLetterError as error:
        raise click.ClickException(str(error)) from error
    replays = read_replays(directory).get(letter.id, [])
    if as_json:
        entry = msgspec.to_builtins(letter) | {"replays": msgspec.to_builtins(replays)}
        click.echo(json.dumps(entry, indent=2))
        return
    facts = letter_facts(letter, replays)
    width = max(len(name) for name in facts)
    for name, value in facts.items():
        click.echo(f"{name:<{width}}  {value}")
    decoded = describe_decoded(letter)
    if decoded is not None:
        click.echo("\ndecoded:")
        click.echo(decoded)
    raw = letter.raw_bytes()
    click.echo(f"\npayload ({len(raw):,} bytes):")
    click.echo(describe_payload(raw))


@dlq.command("replay")
@_dlq_filter_options
@click.option(
    "--id", "ids", multiple=True, metavar="ID", help="Only this entry (repeatable; a prefix will do)."
)
@click.option("--dry-run", is_flag=True, help="Check each entry and say what would happen; send nothing.")
@click.option("--force", is_flag=True, help="Send entries again even though they were replayed before.")
@click.pass_obj
def dlq_replay(
    state: CliState,
    source: str | None,
    reason: str | None,
    text: str | None,
    ids: tuple[str, ...],
    dry_run: bool,
    force: bool,
) -> None:
    """Publish to Kafka again the entries that would go through now, each once, and record it.

    Each entry is checked first with the current registry and code: a Kafka message must now decode
    and meet the v2 rules; a refused exchange message must now normalise; an unsent trade is sent as it
    is. The rest are skipped with the reason. Exit code 1 when Kafka did not take an entry.
    """
    from rich.text import Text

    from k2tui.ingest.dlq import DeadLetterError, DeadLetterFilter, find_dead_letter
    from k2tui.ingest.replay import ReplayStatus, replay_dead_letters

    settings = state.resolve().settings
    directory, letters = _load_dead_letters(settings, DeadLetterFilter(source, reason, text))
    try:
        if ids:
            chosen = (find_dead_letter(letters, wanted, directory) for wanted in ids)
            letters = list({letter.id: letter for letter in chosen}.values())
        if not letters:
            console.print(_nothing_found(directory, any((source, reason, text))), highlight=False)
            return
        endpoints = StackLayout(settings).endpoints
        outcomes = asyncio.run(
            replay_dead_letters(
                directory,
                letters,
                bootstrap=endpoints.kafka_bootstrap,
                registry_url=endpoints.registry_url,
                partitions=settings.streams.partitions,
                dry_run=dry_run,
                force=force,
            )
        )
    except DeadLetterError as error:
        raise click.ClickException(str(error)) from error
    table = Table(
        title=f"replay of {_dead_letters(len(outcomes))} from {directory}{' (dry run)' if dry_run else ''}"
    )
    for column in ("id", "source", "from", "result", "detail"):
        table.add_column(column, no_wrap=column == "id")
    for outcome in outcomes:
        table.add_row(
            outcome.letter.id,
            outcome.letter.source,
            Text(outcome.letter.position),
            outcome.status.value,
            Text(outcome.detail),
        )
    console.print(table)
    counts = {status: sum(o.status is status for o in outcomes) for status in ReplayStatus}
    console.print(
        ", ".join(f"{count} {status.value}" for status, count in counts.items() if count)
        + (" (dry run: nothing was sent)" if dry_run else ""),
        highlight=False,
    )
    if counts[ReplayStatus.FAILED]:
        raise SystemExit(1)


@cli.group(cls=FriendlyGroup)
def lake() -> None:
    """Maintain market_data.trades_v2: statistics, snapshot expiry, small-file compaction."""


def _lake_table(state: CliState) -> Any:
    from k2tui.lake.catalog import LakeUnavailableError, open_trades_table

    try:
        return open_trades_table(StackLayout(state.resolve().settings))
    except LakeUnavailableError as error:
        raise click.ClickException(str(error)) from error


def _render_lake_stats(title: str, before: Any, after: Any | None = None) -> None:
    table = Table(title=title)
    table.add_column("")
    for column in ("before", "after") if after is not None else ("now",):
        table.add_column(column, justify="right")
    for label, name in (
        ("snapshots", "snapshots"),
        ("data files", "data_files"),
        ("records", "records"),
        ("data MiB", "data_bytes"),
        ("manifests (current)", "manifests"),
        ("metadata file KiB", "metadata_bytes"),
    ):
        scale = {"data_bytes": 2**20, "metadata_bytes": 2**10}.get(name, 1)
        values = [getattr(s, name) / scale for s in (before, after) if s is not None]
        table.add_row(label, *(f"{v:,.1f}" if scale > 1 else f"{v:,.0f}" for v in values))
    console.print(table)


@lake.command("stats")
@click.pass_obj
def lake_stats_command(state: CliState) -> None:
    """Snapshots, files, records and sizes of the trades table, from its metadata."""
    from k2tui.lake.maintenance import lake_stats

    trades = _lake_table(state)
    _render_lake_stats(".".join(trades.name()), lake_stats(trades))


@lake.command("expire")
@click.option("--older-than", metavar="DURATION", help="Expire snapshots older than this (90s, 15m, 2h, 7d).")
@click.option("--retain-last", type=click.IntRange(min=1), help="Always keep this many newest snapshots.")
@click.pass_obj
def lake_expire(state: CliState, older_than: str | None, retain_last: int | None) -> None:
    """Expire old snapshots and delete the files only they referenced; safe beside a running consumer.

    Defaults: settings lake.snapshot_max_age and lake.retain_snapshots. Snapshots younger than a
    minute are always kept: an append whose outcome was unknown looks for its commit id among them.
    """
    from datetime import timedelta

    from k2tui.lake.maintenance import UNKNOWN_OUTCOME_WINDOW, expire_snapshots, parse_duration

    settings = state.resolve().settings.lake
    try:
        age = parse_duration(older_than) if older_than else timedelta(seconds=settings.snapshot_max_age)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--older-than") from error
    report = expire_snapshots(
        _lake_table(state), older_than=age, retain_last=retain_last or settings.retain_snapshots
    )
    _render_lake_stats("snapshot expiry", report.before, report.after)
    kept = " (the one-minute floor)" if age < UNKNOWN_OUTCOME_WINDOW else ""
    console.print(
        f"Expired {report.expired:,} snapshots older than {report.cutoff:%Y-%m-%d %H:%M:%S} UTC{kept}; "
        f"deleted {report.data_files_deleted:,} data files, {report.manifests_deleted:,} manifests and "
        f"{report.manifest_lists_deleted:,} manifest lists in {report.seconds:.2f} s.",
        highlight=False,
    )


@lake.command("compact")
@click.option(
    "--min-files",
    type=click.IntRange(min=2),
    help="Small files a partition needs to be rewritten (setting lake.compact_min_files).",
)
@click.option("--partition", "day", type=click.DateTime(["%Y-%m-%d"]), help="Only this UTC day.")
@click.option(
    "--target-rows",
    type=click.IntRange(min=1000),
    help="Rows per rewritten file; files under half of it are small. [default: 100,000]",
)
@click.pass_obj
def lake_compact(state: CliState, min_files: int | None, day: Any, target_rows: int | None) -> None:
    """Rewrite each partition's small files into few large sorted ones; safe beside a running consumer.

    One atomic snapshot carries the consumers' offsets forward; every row is kept exactly once.
    """
    from k2tui.lake.maintenance import TARGET_ROWS, CompactionError, compact

    settings = state.resolve().settings.lake
    try:
        report = compact(
            _lake_table(state),
            min_files=min_files or settings.compact_min_files,
            day=None if day is None else day.date(),
            target_rows=target_rows or TARGET_ROWS,
        )
    except CompactionError as error:
        raise click.ClickException(str(error)) from error
    if report.partitions:
        table = Table(title="partitions rewritten")
        for column in ("partition", "files before", "files after", "rows"):
            table.add_column(column, justify="left" if column == "partition" else "right")
        for p in report.partitions:
            table.add_row(p.partition, f"{p.files_before:,}", f"{p.files_after:,}", f"{p.rows:,}")
        console.print(table)
    _render_lake_stats("compaction", report.before, report.after)
    console.print(
        f"Rewrote {sum(p.files_before for p in report.partitions):,} small files into "
        f"{sum(p.files_after for p in report.partitions):,} ({report.rows:,} rows, every one kept) "
        f"in {report.seconds:.2f} s"
        + (f", committed on attempt {report.attempts}." if report.attempts else "; nothing needed it."),
        highlight=False,
    )


@cli.group(cls=FriendlyGroup)
def validate() -> None:
    """Run the validation procedures; exit code 0 only when every check holds."""


def _report_options(command: Any) -> Any:
    """--json, --junit and --report, shared by every procedure."""
    for option in reversed(
        (
            click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout."),
            click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML."),
            click.option(
                "--report", type=click.Path(path_type=Path, dir_okay=False), help="Write a Markdown report."
            ),
        )
    ):
        command = option(command)
    return command


def _run_validations(state: CliState, wanted: list[tuple[str, Any]], output: dict[str, Any]) -> None:
    """Run the procedures with a progress bar on stderr, print or write the reports, exit 1 on a failure."""
    from k2tui.validate.env import ValidationEnv
    from k2tui.validate.procedures import run_validations
    from k2tui.validate.report import as_json, as_junit, as_markdown

    env = ValidationEnv.local(state.resolve().settings)
    with _ValidationProgress() as progress:
        reports = asyncio.run(run_validations(env, wanted, progress.on_event))
    if output["as_json"]:
        click.echo(as_json(reports))
    else:
        for report in reports:
            render_checks(report.results, f"{report.title} ({report.seconds:.1f} s)")
    for path, render in ((output["junit"], as_junit), (output["report"], as_markdown)):
        if path is not None:
            path.write_text(render(reports))
            err_console.print(f"wrote {path}")
    if not all(report.passed for report in reports):
        raise SystemExit(1)


class _ValidationProgress:
    """A bar per procedure, advancing step by step, with each check's verdict printed as it lands."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} steps"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._titles: dict[str, str] = {}

    def __enter__(self) -> _ValidationProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def on_event(self, event: Any) -> None:
        from k2tui.validate import procedure as p

        if isinstance(event, p.ProcedureStarted):
            self._titles[event.procedure] = event.title
            self._tasks[event.procedure] = self._progress.add_task(event.title, total=len(event.steps))
            return
        if isinstance(event, p.ProcedureFinished):
            return
        task = self._tasks[event.procedure]
        title = self._titles[event.procedure]
        if isinstance(event, p.StepStarted):
            self._progress.update(task, description=f"{title}: {event.title}", completed=event.index)
        elif isinstance(event, p.StepProgress):
            self._progress.update(
                task,
                description=f"{title}: {event.detail}",
                completed=event.index + (event.fraction or 0.0),
            )
        elif isinstance(event, p.StepFinished):
            self._progress.update(task, completed=event.index + 1)
            for result in event.report.results:
                style = _CHECK_STYLE[result.status.value]
                self._progress.console.print(
                    f"[{style}]{result.status.value.upper():>4}[/] {result.title}: {result.detail}"
                )


@validate.command("all")
@_report_options
@click.pass_obj
def validate_all_command(state: CliState, **output: Any) -> None:
    """Every procedure of the suite in turn, each with its defaults: consumer, streaming, pipeline,
    faults, performance. Exit code 0 only when every check of every one holds."""
    from k2tui.validate.procedures import SUITE

    _run_validations(state, [(name, None) for name in SUITE], output)


@validate.command("streaming")
@click.option("--exchange", type=click.Choice(["binance", "kraken", "all"]), default="all", show_default=True)
@click.option("--trades", default=10, show_default=True, type=click.IntRange(min=1), help="Trades to take.")
@click.option(
    "--source",
    type=click.Choice(["live", "sim", "auto"]),
    default="auto",
    show_default=True,
    help="auto: live where the exchange answers, else the simulator (reported as a warning).",
)
@click.option("--time-limit", default=30.0, show_default=True, help="Seconds allowed per exchange.")
@_report_options
@click.pass_obj
def validate_streaming_command(
    state: CliState, exchange: str, trades: int, source: str, time_limit: float, **output: Any
) -> None:
    """The seed's quick stream check: connection, N valid trades, v2 compliance, rate, time to first trade."""
    from k2tui.validate.streaming import EXCHANGES, StreamingOptions

    exchanges = EXCHANGES if exchange == "all" else (exchange,)
    options = StreamingOptions(exchanges, trades, source, time_limit)
    _run_validations(state, [("streaming", options)], output)


@validate.command("pipeline")
@click.option("--duration", default=20.0, show_default=True, help="Seconds of streaming.")
@click.option("--rate", default=10.0, show_default=True, help="Simulated trades/s per symbol.")
@click.option(
    "--source",
    type=click.Choice(["sim", "live", "auto"]),
    default="sim",
    show_default=True,
    help="auto: live where the exchange answers, else the simulator (reported as a warning).",
)
@_report_options
@click.pass_obj
def validate_pipeline_command(
    state: CliState, duration: float, rate: float, source: str, **output: Any
) -> None:
    """The seed's complete pipeline: stream → Kafka → consumer → Iceberg → API, then every stage checked.

    Counts equal at every stage (no duplicate, none missing, by message id and exchange sequence), v2
    schema compliance in each stage's form, timestamps and order, an injected sequence gap detected, and
    malformed input in the dead-letter queue while the rest flows on. Runs on the running stack.
    """
    from k2tui.validate.pipeline import PipelineOptions

    options = PipelineOptions(duration=duration, rate=rate, source=source)
    _run_validations(state, [("pipeline", options)], output)


@validate.command("consumer")
@click.option(
    "--messages", default=5000, show_default=True, type=click.IntRange(min=1), help="Known messages to send."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Records per Iceberg append (default: consumer.batch_size).",
)
@_report_options
@click.pass_obj
def validate_consumer_command(state: CliState, messages: int, batch_size: int | None, **output: Any) -> None:
    """The seed's consumer E2E: N known messages through Kafka, the consumer, Iceberg, a query, metrics, DLQ.

    Stops the stack's consumer service for the run and starts it again at the end.
    """
    from k2tui.validate.consumer import ConsumerOptions

    _run_validations(state, [("consumer", ConsumerOptions(messages, batch_size))], output)


@validate.command("performance")
@click.option("--cold-messages", default=500, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--warm-messages",
    default=5_000,
    show_default=True,
    type=click.IntRange(min=2),
    help="Messages of the cold-start consumer; batches 2 to N are the warm state.",
)
@click.option("--sustained-messages", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--latency-messages", default=1_000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Records per Iceberg append [default: consumer.batch_size].",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Baseline file [default: <home>/baselines/<validate.environment>-performance.json].",
)
@click.option("--save-baseline", is_flag=True, help="Save this run's figures as the baseline (if it holds).")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    help="How much worse than the baseline a figure may get, 0.25 = 25% [default: validate.tolerance].",
)
@_report_options
@click.pass_obj
def validate_performance_command(
    state: CliState,
    cold_messages: int,
    warm_messages: int,
    sustained_messages: int,
    latency_messages: int,
    batch_size: int | None,
    baseline: Path | None,
    save_baseline: bool,
    tolerance: float | None,
    **output: Any,
) -> None:
    """The seed's benchmarks: cold, warm, sustained throughput, Iceberg TX, per-message latency p50/p95/p99.

    Runs the real consumer on a scratch topic and table of its own (removed afterwards), holds each
    figure to the seed's limits, and fails naming any figure worse than the baseline beyond the tolerance.
    """
    from k2tui.validate.performance import PerformanceOptions

    options = PerformanceOptions(
        cold_messages=cold_messages,
        warm_messages=warm_messages,
        sustained_messages=sustained_messages,
        latency_messages=latency_messages,
        batch_size=batch_size,
        baseline=baseline,
        save_baseline=save_baseline,
        tolerance=tolerance,
    )
    _run_validations(state, [("performance", options)], output)


@validate.command("faults")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(list(FAULT_SCENARIOS)),
    help="Run only this scenario (repeatable); all of them by default.",
)
@click.option("--rate", default=20.0, show_default=True, help="Simulated trades/s per symbol (4 symbols).")
@click.option("--hold", default=3.0, show_default=True, help="Seconds each fault lasts.")
@click.option(
    "--soak-rounds",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="Rounds of the chaos soak after the scenarios (0: none; a long soak is many rounds).",
)
@click.option("--seed", type=int, help="Seed of the soak's random faults, to replay a run.")
@click.option("--recovery-limit", default=90.0, show_default=True, help="Seconds allowed to recover.")
@_report_options
@click.pass_obj
def validate_faults_command(
    state: CliState,
    scenarios: tuple[str, ...],
    rate: float,
    hold: float,
    soak_rounds: int,
    seed: int | None,
    recovery_limit: float,
    **output: Any,
) -> None:
    """Inject each fault while trades flow, heal it, and prove nothing was lost or written twice.

    Scenarios: broker restart, Schema Registry unavailable, object store failure, consumer SIGKILL,
    network partition to the broker, graceful SIGTERM; then a chaos soak of random faults. Works on the
    running stack's own topics, table and consumer service.
    """
    from k2tui.validate.faults import FaultsOptions

    options = FaultsOptions(
        scenarios=scenarios or FAULT_SCENARIOS,
        rate=rate,
        hold=hold,
        soak_rounds=soak_rounds,
        seed=seed,
        recovery_limit=recovery_limit,
    )
    _run_validations(state, [("faults", options)], output)


@validate.command("health")
@click.option(
    "--window",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to watch the flow: throughput, appends, dead letters and log lines are counted over it.",
)
@_report_options
@click.pass_obj
def validate_health_command(state: CliState, window: float, **output: Any) -> None:
    """The seed's post-deployment checks, observed on the running stack with nothing injected.

    Services, consumer group, lag, throughput, dead letters, Iceberg appends, fresh data through the API,
    scrape targets, the lag metric, alert rules, alerts firing, and errors or warnings in the logs.
    """
    from k2tui.validate.health import HealthOptions

    _run_validations(state, [("health", HealthOptions(window))], output)


_CHECK_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def render_checks(results: list[Any], title: str) -> None:
    table = Table(title=title)
    for column in ("check", "result", "measured"):
        table.add_column(column)
    for r in results:
        table.add_row(r.title, f"[{_CHECK_STYLE[r.status.value]}]{r.status.value.upper()}[/]", r.detail)
        for line in r.evidence:
            table.add_row("", "", f"[dim]{line}[/]")
    console.print(table)
    failed = [r for r in results if r.status.value == "fail"]
    console.print(f"[bold red]{len(failed)} check(s) failed[/]" if failed else "[green]every check holds[/]")


@cli.group(cls=FriendlyGroup)
def bench() -> None:
    """Measure the speed of a part of the pipeline and print a table."""


@bench.command("serde")
@click.option(
    "--records", default=20_000, show_default=True, help="Distinct sample records to cycle through."
)
@click.option("--seconds", default=1.0, show_default=True, help="Length of each timed round.")
@click.option("--rounds", default=3, show_default=True, help="Timed rounds per case; the best is reported.")
def bench_serde(records: int, seconds: float, rounds: int) -> None:
    """Encode and decode v2 records in the Confluent Avro wire format, beside a JSON baseline."""
    from importlib.metadata import version

    from k2tui.validate.bench.result import pin_to_one_core
    from k2tui.validate.bench.serde import run_serde_bench

    cpu = pin_to_one_core()
    rows = run_serde_bench(records=records, seconds=seconds, rounds=rounds)
    where = f"one core (CPU {cpu})" if cpu is not None else "one process"
    render_bench(
        rows,
        f"serde: {where}, Python {platform.python_version()}, cavro {version('cavro')}, "
        f"best of {rounds} × {seconds:g} s",
    )


@bench.command("stack")
@click.option("--idle-seconds", default=3.0, show_default=True, help="Idle time before memory is read.")
def bench_stack(idle_seconds: float) -> None:
    """Start a throwaway local stack and time it: up, idle memory, broker recovery, down."""
    from k2tui.validate.bench.stack import run_stack_bench

    rows = run_stack_bench(idle_seconds)
    render_bench(rows, f"stack: local backend, {os.cpu_count()} CPUs, throwaway home and ports")


@bench.command("lake")
@click.option("--rows", default=1_000_000, show_default=True, type=click.IntRange(min=1000))
@click.option("--batch", default=500, show_default=True, help="Rows per append (one snapshot each).")
@click.option("--per-commit", default=25, show_default=True, help="Loading: appends per catalog commit.")
@click.option(
    "--maintain-every", default=250, show_default=True, help="Loading: snapshots between maintenance."
)
@click.option("--growth", default=500, show_default=True, help="Appends to follow commit time over.")
def bench_lake(rows: int, batch: int, per_commit: int, maintain_every: int, growth: int) -> None:
    """Day vs day+exchange partitioning, and commit time with and without maintenance (throwaway stack)."""
    from k2tui.validate.bench.lake import run_lake_bench

    render_bench(
        run_lake_bench(rows, batch, per_commit, maintain_every, growth),
        f"lake: {rows:,} sample trades in {batch}-row snapshots, {os.cpu_count()} CPUs",
    )


@bench.command("streams")
@click.option("--messages", default=6000, show_default=True, help="Distinct sample messages per exchange.")
@click.option("--seconds", default=1.0, show_default=True, help="Length of each timed normaliser round.")
@click.option("--rounds", default=3, show_default=True, help="Normaliser rounds; the best is reported.")
@click.option("--pipeline-seconds", default=8.0, show_default=True, help="Length of each pipeline run.")
@click.option("--no-pipeline", is_flag=True, help="Only the normalisers (no stack, no simulator).")
def bench_streams(
    messages: int, seconds: float, rounds: int, pipeline_seconds: float, no_pipeline: bool
) -> None:
    """Normaliser speed on one core beside a naive baseline; simulator → Kafka rate and latency."""
    from k2tui.validate.bench.result import pin_to_one_core
    from k2tui.validate.bench.streams import run_normaliser_bench, run_pipeline_bench

    rows = [] if no_pipeline else run_pipeline_bench(seconds=pipeline_seconds)
    cpu = pin_to_one_core()
    rows = run_normaliser_bench(messages=messages, seconds=seconds, rounds=rounds) + rows
    render_bench(
        rows,
        f"streams: normalisers on CPU {cpu}, pipeline on a throwaway stack, "
        f"Python {platform.python_version()}",
    )


@bench.command("consumer")
@click.option(
    "--messages",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(min=1000),
    help="Trades to preload.",
)
@click.option(
    "--seed-messages",
    default=200_000,
    show_default=True,
    type=click.IntRange(min=1000),
    help="Of them, how many (a) consumes in the seed's 500-row batches.",
)
@click.option(
    "--batch-size",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="(b)'s records per append; past ~20k the rate stays flat while commit time and RSS grow.",
)
@click.option(
    "--flush-interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="(b)'s seconds before a partial batch is written.",
)
def bench_consumer(messages: int, seed_messages: int, batch_size: int, flush_interval: float) -> None:
    """Kafka → Iceberg through the real consumer, seed vs tuned batching, beside a decode-only ceiling."""
    from k2tui.validate.bench.consumer import run_consumer_bench

    title = _loaded_bench_title(f"consumer: {messages:,} v2 trades on a throwaway stack")
    rows = run_consumer_bench(
        messages=messages, seed_messages=seed_messages, batch_size=batch_size, flush_interval=flush_interval
    )
    render_bench(rows, title)


@bench.command("api")
@click.option(
    "--rows",
    default=10_000_000,
    show_default=True,
    type=click.IntRange(min=10_000),
    help="Trades in the table, appended 100,000 at a time.",
)
@click.option(
    "--requests",
    default=1000,
    show_default=True,
    type=click.IntRange(min=10),
    help="Timed sequential requests of each case.",
)
def bench_api(rows: int, requests: int) -> None:
    """Latest-100 trades of a symbol through the HTTP API service on a table of millions of trades."""
    from k2tui.validate.bench.api import run_api_bench

    title = _loaded_bench_title(f"api: {rows:,} trades, the stack's API service over HTTP")
    render_bench(run_api_bench(rows=rows, requests=requests), title)


@bench.command("freshness")
@click.option(
    "--duration", default=60.0, show_default=True, type=click.FloatRange(min=5), help="Seconds of trades."
)
@click.option(
    "--rate",
    default=1000.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Trades per second across all symbols (the simulator's mean; it is bursty).",
)
@click.option(
    "--warmup",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds of trades at the start left out of the percentiles (still checked for being seen).",
)
@click.option(
    "--poll-interval",
    default=0.1,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between the starts of poll rounds: the resolution of the figures.",
)
def bench_freshness(duration: float, rate: float, warmup: float, poll_interval: float) -> None:
    """Time from a trade's receipt by the stream client to its appearance in GET /v1/trades."""
    from k2tui.validate.bench.freshness import run_freshness_bench

    settings = resolve_settings({}, env={}).settings  # the defaults the throwaway stack runs with
    title = _loaded_bench_title(
        f"freshness: simulator → Kafka → consumer service (default batch {settings.consumer.batch_size} "
        f"or {settings.consumer.flush_interval:g} s) → API service"
    )
    rows = run_freshness_bench(duration=duration, rate=rate, warmup=warmup, poll_interval=poll_interval)
    render_bench(rows, title)


@bench.command("tui")
@click.option("--fast-rate", default=10_000.0, show_default=True, help="Trades/s offered, keys timed.")
@click.option("--slow-rate", default=1_000.0, show_default=True, help="Trades/s offered, CPU measured.")
@click.option("--presses", default=60, show_default=True, type=click.IntRange(min=2), help="Keys to time.")
@click.option("--launches", default=3, show_default=True, type=click.IntRange(min=1), help="Launches timed.")
@click.option("--cpu-seconds", default=20.0, show_default=True, help="Length of each CPU window.")
def bench_tui(fast_rate: float, slow_rate: float, presses: int, launches: int, cpu_seconds: float) -> None:
    """The cockpit in tmux on a throwaway stack: first frame, key latency, CPU with trades flowing."""
    from k2tui.tui.bench import TuiBenchRun, run_tui_bench
    from k2tui.validate.bench.result import BenchError

    run = TuiBenchRun(fast_rate, slow_rate, presses, launches, cpu_seconds)
    try:
        rows = run_tui_bench(run)
    except BenchError as error:
        raise click.ClickException(str(error)) from error
    render_bench(rows, _loaded_bench_title("tui: k2tui tui in tmux (160x50), both streams on the simulator"))


def _loaded_bench_title(subject: str) -> str:
    """The subject, the machine and its load now: the figures are only as quiet as the machine."""
    return (
        f"{subject}, {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f} at the start), "
        f"Python {platform.python_version()}"
    )


def render_bench(rows: list[Any], title: str) -> None:
    table = Table(title=title)
    for column, justify in (("case", "left"), ("measured", "right"), ("unit", "left"), ("target", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("")

    def figure(value: float) -> str:
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"

    for row in rows:
        target = "" if row.target is None else f"{'≥' if row.higher_is_better else '≤'} {figure(row.target)}"
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: row.note}[row.met]
        table.add_row(row.case, figure(row.value), row.unit, target, verdict)
    console.print(table)


@cli.group(cls=FriendlyGroup)
def checklist() -> None:
    """Walk the seed's validation checklists; progress is kept per environment (validate.environment)."""


def _checklist(name: str) -> Any:
    from k2tui.validate.checklist import ChecklistError, load_checklist

    try:
        return load_checklist(name)
    except ChecklistError as error:
        raise click.ClickException(str(error)) from error


_ITEM_STYLE = {
    "passed": "green",
    "confirmed": "green",
    "failed": "bold red",
    "refused": "bold red",
    "skipped": "yellow",
    "pending": "dim",
}


@checklist.command("list")
@click.pass_obj
def checklist_list(state: CliState) -> None:
    """Each checklist with its item count and the environment's progress."""
    from k2tui.validate.checklist import load_checklists, summary
    from k2tui.validate.progress import load_progress

    settings = state.resolve().settings
    progress = load_progress(settings)
    table = Table(title=f"checklists ({settings.validate.environment})")
    for column in ("name", "title", "items", "progress"):
        table.add_column(column)
    for found in load_checklists():
        counts = summary(progress, found)
        manual = sum(1 for item in found.items if item.manual)
        shown = ", ".join(f"[{_ITEM_STYLE[s.value]}]{n} {s.value}[/]" for s, n in counts.items() if n)
        items = f"{len(found.items)} ({len(found.items) - manual} automated, {manual} manual)"
        table.add_row(found.name, found.title, items, shown)
    console.print(table)


@checklist.command("show")
@click.argument("name")
@click.pass_obj
def checklist_show(state: CliState, name: str) -> None:
    """The items of NAME: kind, links, status, note and the last evidence."""
    from rich.markup import escape

    from k2tui.validate.progress import load_progress

    found = _checklist(name)
    settings = state.resolve().settings
    progress = load_progress(settings)
    console.print(f"[bold]{found.title}[/] ({settings.validate.environment}): {found.when}", highlight=False)
    for item in found.items:
        entry = progress.item(found.name, item.id)
        when = f" {entry.when:%Y-%m-%d %H:%M} UTC" if entry.when else ""
        style = _ITEM_STYLE[entry.status.value]
        console.print(f"\n[{style}]{entry.status.value.upper()}[/]{when}  [bold]{item.id}[/]: {item.text}")
        kind = f"manual: {item.hint}" if item.manual else f"checks: {', '.join(item.links)}"
        console.print(f"  {kind}", highlight=False)
        if entry.note:
            console.print(f"  note: {escape(entry.note)}", highlight=False)
        for line in entry.evidence:
            console.print(f"  [dim]{escape(line)}[/]", highlight=False)


@checklist.command("run")
@click.argument("name")
@click.option("--item", "items", multiple=True, metavar="ID", help="Walk only this item (repeatable).")
@click.option("--yes", is_flag=True, help="Confirm every manual item walked, with --note, without asking.")
@click.option("--no-manual", is_flag=True, help="Leave manual items pending; run only the automated ones.")
@click.option("--note", help="The note recorded with each manual item --yes confirms.")
@click.option(
    "--health-window",
    type=click.FloatRange(min=0),
    help="Seconds the health checks watch the flow (default: as `validate health`).",
)
@click.pass_obj
def checklist_run(
    state: CliState,
    name: str,
    items: tuple[str, ...],
    yes: bool,
    no_manual: bool,
    note: str | None,
    health_window: float | None,
) -> None:
    """Walk NAME's items in order: automated items run their checks, manual ones ask for your word.

    Exit code 0 only when every item walked passed or was confirmed.
    """
    import sys

    from k2tui.validate.checklist import ChecklistError, Walk, items_to_run
    from k2tui.validate.env import ValidationEnv
    from k2tui.validate.health import HealthOptions
    from k2tui.validate.progress import load_progress, save_progress

    if yes and no_manual:
        raise click.UsageError("--yes confirms manual items and --no-manual skips them: give one")
    if yes and not (note or "").strip():
        raise click.UsageError("--yes needs --note saying what was verified")
    found = _checklist(name)
    try:
        walked = items_to_run(found, items)
    except ChecklistError as error:
        raise click.ClickException(str(error)) from error
    settings = state.resolve().settings
    progress = load_progress(settings)
    options = {} if health_window is None else {"health": HealthOptions(health_window)}
    walk = Walk(ValidationEnv.local(settings), options)
    manual = "yes" if yes else "ask" if not no_manual and sys.stdin.isatty() else "leave"
    statuses = []
    for item in walked:
        entry = _walk_item(walk, progress, found, item, manual, note or "")
        statuses.append(entry.status)
        style = _ITEM_STYLE[entry.status.value]
        console.print(f"[{style}]{entry.status.value.upper()}[/] {item.text}: {entry.note}", highlight=False)
        save_progress(settings, progress)
    done = sum(1 for status in statuses if status.done)
    console.print(f"{done} of {len(statuses)} item(s) passed or confirmed ({settings.validate.environment}).")
    if done < len(statuses):
        raise SystemExit(1)


def _walk_item(walk: Any, progress: Any, found: Any, item: Any, manual: str, note: str) -> Any:
    """One item's new progress: its checks run under a progress bar, or a person's word (`manual` says
    whether to take --note, ask on the terminal, or leave the item pending)."""
    from k2tui.validate.checklist import ItemFinished, confirm, record
    from k2tui.validate.progress import ItemProgress

    if item.manual:
        if manual == "yes":
            return confirm(progress, found, item, note)
        if manual == "leave":  # as it was: a manual item confirmed earlier still counts
            earlier = progress.item(found.name, item.id)
            return earlier if earlier.when else ItemProgress(note="manual: `k2tui checklist confirm` it")
        console.print(f"\n[bold]{item.text}[/]\n[dim]{item.hint}[/]")
        accepted = click.confirm("Verified?", default=False)
        return confirm(progress, found, item, click.prompt("Note (what you checked)"), accepted)
    if not walk.to_run(item):
        return record(progress, asyncio.run(walk.run_item(found, item)))
    with _ValidationProgress() as bar:

        def on_event(event: Any) -> None:
            if not isinstance(event, ItemFinished):
                bar.on_event(event)

        return record(progress, asyncio.run(walk.run_item(found, item, on_event)))


@checklist.command("confirm")
@click.argument("name")
@click.argument("item")
@click.option("--note", required=True, help="What was verified (or why it is refused).")
@click.option("--refuse", is_flag=True, help="Record the item as refused instead of confirmed.")
@click.pass_obj
def checklist_confirm(state: CliState, name: str, item: str, note: str, refuse: bool) -> None:
    """Record a person's word on ITEM of NAME, with a note."""
    from k2tui.validate.checklist import ChecklistError, confirm
    from k2tui.validate.progress import load_progress, save_progress

    found = _checklist(name)
    settings = state.resolve().settings
    progress = load_progress(settings)
    try:
        entry = confirm(progress, found, found.item(item), note, accepted=not refuse)
    except ChecklistError as error:
        raise click.ClickException(str(error)) from error
    path = save_progress(settings, progress)
    console.print(f"{found.name} {item}: {entry.status.value} (saved in {path})", highlight=False)


@checklist.command("export")
@click.argument("name")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE.md.")
@click.pass_obj
def checklist_export(state: CliState, name: str, output: Path | None) -> None:
    """NAME's progress as a Markdown task list, for a deploy ticket."""
    from k2tui.validate.checklist import export_markdown
    from k2tui.validate.progress import load_progress

    found = _checklist(name)
    text = export_markdown(load_progress(state.resolve().settings), [found])
    if output is None:
        click.echo(text)
    else:
        output.write_text(text)
        err_console.print(f"wrote {output}")


@checklist.command("reset")
@click.argument("name")
@click.pass_obj
def checklist_reset(state: CliState, name: str) -> None:
    """Forget NAME's progress in the environment."""
    from k2tui.validate.progress import load_progress, save_progress

    found = _checklist(name)
    settings = state.resolve().settings
    progress = load_progress(settings)
    cleared = progress.reset(found.name)
    save_progress(settings, progress)
    console.print(f"{found.name}: cleared {cleared} item(s) for {settings.validate.environment}.")


def main() -> None:
    cli(prog_name="k2tui")
