"""Every procedure k2tui can run, by the name the CLI and the TUI use, with its options and defaults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from k2tui.validate.env import ValidationEnv
from k2tui.validate.procedure import Procedure, ProcedureReport, ProgressSink, run_procedure
from k2tui.validate.streaming import StreamingOptions, streaming_procedure


@dataclass(frozen=True)
class ProcedureEntry:
    name: str
    summary: str
    options: type
    """A frozen dataclass whose defaults are the procedure's defaults."""
    build: Callable[[ValidationEnv, Any], Procedure]


PROCEDURES: dict[str, ProcedureEntry] = {
    entry.name: entry
    for entry in (
        ProcedureEntry(
            "streaming",
            "the seed's quick stream check, both exchanges",
            StreamingOptions,
            streaming_procedure,
        ),
    )
}


async def run_validations(
    env: ValidationEnv, wanted: Sequence[tuple[str, Any]], on_event: ProgressSink
) -> list[ProcedureReport]:
    """Run each (name, options) in order; options None means the procedure's defaults."""
    reports = []
    for name, options in wanted:
        entry = PROCEDURES[name]
        procedure = entry.build(env, options if options is not None else entry.options())
        reports.append(await run_procedure(procedure, on_event))
    return reports
