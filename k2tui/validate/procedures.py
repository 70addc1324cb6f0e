"""Every procedure k2tui can run, by the name the CLI and the TUI use, with its options and defaults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from k2tui.validate.consumer import ConsumerOptions, consumer_procedure
from k2tui.validate.env import ValidationEnv
from k2tui.validate.faults import FaultsOptions, faults_procedure
from k2tui.validate.health import HealthOptions, health_procedure
from k2tui.validate.performance import PerformanceOptions, performance_procedure
from k2tui.validate.pipeline import PipelineOptions, pipeline_procedure
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
        ProcedureEntry(
            "pipeline",
            "the seed's complete pipeline: stream → Kafka → Iceberg → API, counts, schema, timestamps, DLQ",
            PipelineOptions,
            pipeline_procedure,
        ),
        ProcedureEntry(
            "consumer",
            "the seed's consumer E2E: N known messages through Kafka, the consumer, Iceberg and a query",
            ConsumerOptions,
            consumer_procedure,
        ),
        ProcedureEntry(
            "faults",
            "each fault injected while trades flow, then exact counts and recovery time; a chaos soak",
            FaultsOptions,
            faults_procedure,
        ),
        ProcedureEntry(
            "performance",
            "the seed's cold, warm and sustained throughput and per-message latency, against a baseline",
            PerformanceOptions,
            performance_procedure,
        ),
        ProcedureEntry(
            "health",
            "the seed's post-deployment checks, observed live on the running stack over a window",
            HealthOptions,
            health_procedure,
        ),
    )
}


SUITE = ("consumer", "streaming", "pipeline", "faults", "performance")
"""What `validate all` runs, in this order: the cheap proofs first, the disruptive ones after."""


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
