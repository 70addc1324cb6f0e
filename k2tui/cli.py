"""The `k2tui` command. Every verb resolves settings the same way and calls the library underneath."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from k2tui import __version__
from k2tui.config import Resolution, SettingsError, parse_assignment, resolve_settings
from k2tui.stack.registry.server import PortInUseError

console = Console()


class FriendlyGroup(click.Group):
    """Turns the errors a user can fix into one plain sentence and a non-zero exit, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SettingsError, PortInUseError) as error:
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
    import fastavro

    from k2tui.validate.bench.result import pin_to_one_core
    from k2tui.validate.bench.serde import run_serde_bench

    cpu = pin_to_one_core()
    rows = run_serde_bench(records=records, seconds=seconds, rounds=rounds)
    where = f"one core (CPU {cpu})" if cpu is not None else "one process"
    render_bench(
        rows,
        f"serde: {where}, Python {platform.python_version()}, fastavro {fastavro.__version__}, "
        f"best of {rounds} × {seconds:g} s",
    )


def render_bench(rows: list[Any], title: str) -> None:
    table = Table(title=title)
    for column, justify in (("case", "left"), ("measured", "right"), ("unit", "left"), ("target", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("")
    for row in rows:
        target = "" if row.target is None else f"{'≥' if row.higher_is_better else '≤'} {row.target:,.0f}"
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: row.note}[row.met]
        table.add_row(row.case, f"{row.value:,.0f}", row.unit, target, verdict)
    console.print(table)


def main() -> None:
    cli(prog_name="k2tui")
