"""Fault recovery, proven: each fault is injected while trades flow, healed, and then every trade that
went in is looked for in Kafka and in the lake, each exactly once; recovery time is measured.

A scenario runs the simulator through the real producer into the pipeline's own topics, with the
stack's consumer service writing them, so what it proves is what a user's pipeline does. The window
of the proof is the Kafka log between the ends read before the traffic started and after it stopped.
The chaos soak does the same over many rounds of random faults at random moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from aiokafka.structs import TopicPartition
from pyiceberg.table import Table

from k2tui.consume.resilience import BreakerState
from k2tui.consume.writer import committed_offsets
from k2tui.lake.catalog import open_trades_table
from k2tui.stack.metrics import MetricsUnavailableError, Scrape, scrape
from k2tui.stack.process import ExitStatus
from k2tui.stack.proxy import Mode
from k2tui.stack.supervisor import FaultAction
from k2tui.validate.check import CheckResult, CheckStatus, Stage, verdict
from k2tui.validate.consistency import consistency_checks
from k2tui.validate.env import ValidationEnv, services_ready
from k2tui.validate.fault_names import SCENARIOS, SOAK_FAULTS
from k2tui.validate.offsets import group_offsets, log_ends
from k2tui.validate.procedure import Procedure, Step, StepContext
from k2tui.validate.stages import lake_ids, read_kafka, wait_written
from k2tui.validate.traffic import FIRST_ACK_WITHIN_S, Traffic

PIPELINE_SERVICES = ("proxy", "broker", "registry", "object-store", "catalog", "consumer")
WATCH_INTERVAL_S = 0.5
GRACE_MARGIN_S = 3.0
"""Beyond consumer.shutdown_timeout, for the interpreter to exit after the consumer let go."""
SETTLE_S = 1.0
"""After injecting, before judging what moves: a commit already in flight may still land."""
BREAKER_WAIT_S = 45.0
"""How long a fault that must open a breaker is held at most, waiting for it to open."""
STEP_MARGIN_S = 60.0
"""Beyond a step's own waits: injecting, healing, reading Kafka and the lake for the proof."""


@dataclass(frozen=True)
class Fault:
    id: str
    title: str
    inject: Callable[[ValidationEnv], Awaitable[str]]
    heal: Callable[[ValidationEnv], Awaitable[str]]
    holds_writes: bool = False
    """While it lasts, nothing may be written and no offset may move (the lake or its path is away)."""
    opens_breaker: str | None = None
    """The consumer's circuit breaker for this dependency must open while it lasts."""
    fresh_producer: bool = False
    """A second producer starts once the fault is on: it has no schema cached and must wait it out."""
    judge_injection: Callable[[ValidationEnv, float], Awaitable[list[CheckResult]]] | None = None
    """Checks of the injection itself (how a graceful stop went), given the seconds it took."""
    effect: str = ""
    """What injecting it does, in a sentence a person confirms before it happens (the cockpit's menu)."""
    active: str = ""
    """What is wrong while it lasts, in a few words (the cockpit's banner: "registry stopped")."""
    instant: bool = False
    """Over as soon as it is injected: the heal follows at once, and recovery is watched from there."""


async def _act(env: ValidationEnv, service: str, action: FaultAction, **options: object) -> str:
    return await asyncio.to_thread(env.stack.fault, service, action, **options)


async def _restart_broker(env: ValidationEnv) -> str:
    began = time.monotonic()
    await env.restart("broker")
    return f"broker restarted (SIGTERM, then started and ready in {time.monotonic() - began:.1f} s)"


async def nothing_to_heal(env: ValidationEnv) -> str:
    return "nothing to heal"


async def _registry_away(env: ValidationEnv) -> str:
    """Stopping the registry alone changes nothing for clients that cached the schema, so the consumer
    is restarted too: a fresh one has to ask the registry for the schema of every message."""
    stopped = await _act(env, "registry", FaultAction.STOP)
    await _act(env, "consumer", FaultAction.KILL)
    await _act(env, "consumer", FaultAction.START)
    return f"{stopped}; consumer restarted with no schema cached"


async def _judge_graceful_stop(env: ValidationEnv, seconds: float) -> list[CheckResult]:
    """SIGTERM must end the consumer by itself, in time, with its last batch written and committed."""
    group = env.settings.consumer.group
    exit_status = await asyncio.to_thread(env.stack.exit_status, "consumer")
    table = await asyncio.to_thread(open_trades_table, env.layout)
    lake = await asyncio.to_thread(committed_offsets, table, group)
    kafka = await group_offsets(env.endpoints.kafka_bootstrap, group, list(lake))
    limit = env.settings.consumer.shutdown_timeout + GRACE_MARGIN_S
    return [judge_graceful_stop("faults.graceful_shutdown.sigterm", exit_status, seconds, limit, lake, kafka)]


def judge_graceful_stop(
    check_id: str,
    exit_status: ExitStatus | None,
    seconds: float,
    limit: float,
    lake: Mapping[TopicPartition, int],
    kafka: Mapping[TopicPartition, int],
) -> CheckResult:
    problems = []
    if exit_status is None:
        problems.append("no exit status was kept")
    elif exit_status.code != 0:
        problems.append(f"it {exit_status.describe()}")
    if seconds > limit:
        problems.append(f"it took {seconds:.1f} s to go (limit {limit:g} s)")
    behind = [
        f"{tp.topic}[{tp.partition}]: Kafka commit {kafka.get(tp)}, lake {offset}"
        for tp, offset in sorted(lake.items())
        if kafka.get(tp) != offset
    ]
    if behind:
        problems.append(f"{len(behind)} partitions' Kafka commits do not match the lake's offsets")
    return CheckResult(
        check_id,
        "SIGTERM: last batch written, offsets committed, clean exit",
        verdict(not problems),
        "; ".join(problems)
        or f"exited with code 0 {seconds:.1f} s after SIGTERM, every commit matching the lake's offsets",
        {"stop_s": round(seconds, 2), "exit_code": None if exit_status is None else exit_status.code},
        behind,
        stage=Stage.CONSUMER,
    )


FAULTS: dict[str, Fault] = {
    fault.id: fault
    for fault in (
        Fault(
            "broker_restart",
            "Broker restart",
            _restart_broker,
            nothing_to_heal,
            effect="The broker gets SIGTERM and is started again; producers and the consumer reconnect.",
            active="broker restarting",
            instant=True,
        ),
        Fault(
            "registry_unavailable",
            "Schema Registry unavailable",
            _registry_away,
            lambda env: _act(env, "registry", FaultAction.START),
            holds_writes=True,
            opens_breaker="registry",
            fresh_producer=True,
            effect="The Schema Registry is stopped and the consumer restarted with no schema cached: "
            "nothing can be decoded or written until the registry is back.",
            active="registry stopped",
        ),
        Fault(
            "object_store",
            "Object store temporary failure",
            lambda env: _act(env, "object-store", FaultAction.PARTITION, mode=Mode.RESET),
            lambda env: _act(env, "object-store", FaultAction.HEAL),
            holds_writes=True,
            opens_breaker="lake",
            effect="Every connection to the object store is reset by the proxy: the consumer cannot "
            "write to the lake, and its lake breaker opens.",
            active="object store failing",
        ),
        Fault(
            "consumer_crash",
            "Consumer crash (SIGKILL) and restart",
            lambda env: _act(env, "consumer", FaultAction.KILL),
            lambda env: _act(env, "consumer", FaultAction.START),
            effect="The consumer gets SIGKILL mid-batch and is started again: it must resume from the "
            "offsets the lake recorded, losing and doubling nothing.",
            active="consumer killed",
            instant=True,
        ),
        Fault(
            "network_partition",
            "Network partition between the pipeline and the broker",
            lambda env: _act(env, "broker", FaultAction.PARTITION, mode=Mode.BLACKHOLE),
            lambda env: _act(env, "broker", FaultAction.HEAL),
            effect="The proxy swallows all traffic between the pipeline and the broker (a blackhole): "
            "the consumer and the producers wait for it.",
            active="consumer↔broker partitioned",
        ),
        Fault(
            "graceful_shutdown",
            "Graceful shutdown (SIGTERM) and restart",
            lambda env: _act(env, "consumer", FaultAction.STOP),
            lambda env: _act(env, "consumer", FaultAction.START),
            judge_injection=_judge_graceful_stop,
        ),
    )
}


@dataclass(frozen=True)
class FaultsOptions:
    scenarios: tuple[str, ...] = SCENARIOS
    rate: float = 20.0
    """Simulated trades per second per symbol while a fault is on (four symbols)."""
    warmup: float = 1.0
    hold: float = 3.0
    """How long each fault lasts (at least: one that must open a breaker lasts until it opens)."""
    settle: float = 1.0
    """Traffic after the heal before it stops."""
    recovery_limit: float = 90.0
    soak_rounds: int = 3
    soak_hold: tuple[float, float] = (1.0, 4.0)
    soak_gap: tuple[float, float] = (1.0, 3.0)
    seed: int | None = None
    """Seed of the soak's random choices; printed with the results so a run can be replayed."""
    extra_faults: Mapping[str, Fault] = field(default_factory=dict)
    """Faults beyond the built-in ones, by id (tests use these to prove the checks can fail)."""

    def fault(self, name: str) -> Fault:
        return {**FAULTS, **self.extra_faults}[name]

    def scenario_limit(self) -> float:
        """The longest a scenario may take: every wait in it at its bound, and a margin for the rest."""
        waits = FIRST_ACK_WITHIN_S + self.warmup + self.hold + BREAKER_WAIT_S + self.settle
        return waits + 2 * self.recovery_limit + STEP_MARGIN_S

    def soak_limit(self) -> float:
        """The longest the soak may take, likewise: each round at its longest, then the proof."""
        round_s = self.soak_gap[1] + self.soak_hold[1] + self.recovery_limit + STEP_MARGIN_S
        return FIRST_ACK_WITHIN_S + self.soak_rounds * round_s + self.recovery_limit + STEP_MARGIN_S


@dataclass
class _Observed:
    """What was seen while a fault was on."""

    breaker_states: Counter[str] = field(default_factory=Counter)
    written_before: float | None = None
    written_after: float | None = None
    committed_before: dict[TopicPartition, int] = field(default_factory=dict)
    committed_after: dict[TopicPartition, int] = field(default_factory=dict)
    injection: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def sample(self, page: Scrape) -> None:
        written = page.total("k2_messages_written_total")
        if self.written_before is None:
            self.written_before = written
        self.written_after = written
        for sample in page.values("k2_circuit_breaker_state"):
            dependency = sample.labels.get("dependency", "")
            self.breaker_states[dependency] = max(self.breaker_states[dependency], int(sample.value))

    def opened(self, dependency: str) -> bool:
        return self.breaker_states.get(dependency, 0) >= BreakerState.OPEN


def faults_procedure(env: ValidationEnv, options: FaultsOptions) -> Procedure:
    unknown = [name for name in options.scenarios if name not in {**FAULTS, **options.extra_faults}]
    if unknown:
        raise ValueError(f"no fault scenario {', '.join(unknown)}; the scenarios are {', '.join(SCENARIOS)}")

    async def ready(context: StepContext) -> list[CheckResult]:
        return [await services_ready(env, PIPELINE_SERVICES, check_id="faults.services")]

    def scenario(name: str) -> Step:
        fault = options.fault(name)

        async def body(context: StepContext) -> list[CheckResult]:
            return await run_scenario(env, fault, options, context)

        return Step(name, fault.title, body, stage=Stage.RECOVERY, limit=options.scenario_limit())

    async def soak(context: StepContext) -> list[CheckResult]:
        return await run_soak(env, options, context)

    async def heal_all(context: StepContext) -> list[CheckResult]:
        return [await heal_everything(env)]

    steps = [Step("services", "Services running", ready, stage=Stage.STACK, required=True)]
    steps += [scenario(name) for name in options.scenarios]
    if options.soak_rounds > 0:
        title = f"Chaos soak: {options.soak_rounds} rounds of random faults"
        steps.append(Step("soak", title, soak, limit=options.soak_limit()))
    steps.append(Step("healed", "Stack healed", heal_all, stage=Stage.STACK, always=True))
    return Procedure("faults", "Fault recovery: nothing lost, nothing doubled", tuple(steps))


async def run_scenario(
    env: ValidationEnv, fault: Fault, options: FaultsOptions, context: StepContext
) -> list[CheckResult]:
    prefix = f"faults.{fault.id}"
    table = await asyncio.to_thread(open_trades_table, env.layout)
    starts = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
    traffic = [Traffic(env.settings, options.rate)]
    observed = _Observed()
    try:
        context.progress(f"{fault.title}: trades flowing", 0.05)
        await traffic[0].start()
        await asyncio.sleep(options.warmup)
        context.progress(f"{fault.title}: injecting", 0.2)
        began = time.monotonic()
        observed.notes.append(f"injected: {await fault.inject(env)}")
        if fault.judge_injection is not None:
            observed.injection = await fault.judge_injection(env, time.monotonic() - began)
        if fault.fresh_producer:
            traffic.append(Traffic(env.settings, options.rate))
            await traffic[-1].start(wait_for_kafka=False)
        await _watch(env, fault, options.hold, observed)
        context.progress(f"{fault.title}: healing", 0.5)
        healed_at = time.monotonic()
        observed.notes.append(f"healed: {await fault.heal(env)}")
        recovery = await _recovery_time(env, table, traffic, healed_at, options.recovery_limit)
        await asyncio.sleep(options.settle)
        context.progress(f"{fault.title}: stopping the traffic", 0.7)
        reports = [await each.stop() for each in traffic]
    except BaseException:
        for each in traffic:
            await each.abort()
        with contextlib.suppress(Exception):
            await fault.heal(env)
        raise
    for number, (each, report) in enumerate(zip(traffic, reports, strict=True), 1):
        observed.notes.append(
            f"producer {number}: {report.trades} trades taken, {each.producer.acked} acked by Kafka, "
            f"{each.producer.send_failures} failed sends retried"
        )
    context.progress(f"{fault.title}: waiting for the lake to catch up", 0.8)
    return [
        *await prove_exactly_once(env, table, prefix, starts, traffic, options.recovery_limit, context),
        judge_recovery(prefix, fault.title, recovery, options.recovery_limit, observed.notes),
        *judge_while_faulted(prefix, fault, observed),
        *observed.injection,
    ]


async def _watch(env: ValidationEnv, fault: Fault, hold: float, observed: _Observed) -> None:
    """Hold the fault, sampling the consumer's metrics and the group's commits.

    A fault that must open a breaker is held past `hold` until it opens (at most BREAKER_WAIT_S): a
    consumer restarting into the fault needs its group join before it meets the dependency at all.
    """
    url = f"http://127.0.0.1:{env.settings.consumer.metrics_port}/metrics"
    bootstrap = env.endpoints.kafka_bootstrap
    group = env.settings.consumer.group
    partitions = list(await log_ends(bootstrap, env.topics)) if fault.holds_writes else []
    began = time.monotonic()
    await asyncio.sleep(min(SETTLE_S, hold))
    if fault.holds_writes:
        observed.committed_before = await group_offsets(bootstrap, group, partitions)
    while (elapsed := time.monotonic() - began) < hold or (
        fault.opens_breaker and not observed.opened(fault.opens_breaker) and elapsed < BREAKER_WAIT_S
    ):
        with contextlib.suppress(MetricsUnavailableError):
            observed.sample(await scrape(url))
        await asyncio.sleep(WATCH_INTERVAL_S)
    observed.notes.append(f"held for {time.monotonic() - began:.1f} s")
    if fault.holds_writes:
        observed.committed_after = await group_offsets(bootstrap, group, partitions)


async def _recovery_time(
    env: ValidationEnv, table: Table, traffic: Sequence[Traffic], healed_at: float, limit: float
) -> float | None:
    """Seconds from the heal until no producer holds anything back and the lake has all Kafka had then."""
    deadline = healed_at + limit
    while any(each.buffered for each in traffic) and time.monotonic() < deadline:  # noqa: ASYNC110 - the producer sets no event
        await asyncio.sleep(0.1)
    ends = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
    while time.monotonic() < deadline:
        try:
            await wait_written(
                table,
                env.settings.consumer.group,
                ends,
                max(0.1, deadline - time.monotonic()),
                bootstrap=env.endpoints.kafka_bootstrap,
            )
            return time.monotonic() - healed_at
        except TimeoutError:
            return None
        except Exception:  # the lake still finding its feet after the heal: ask again
            await asyncio.sleep(0.5)
    return None


async def prove_exactly_once(
    env: ValidationEnv,
    table: Table,
    prefix: str,
    starts: Mapping[TopicPartition, int],
    traffic: Sequence[Traffic],
    limit: float,
    context: StepContext,
) -> list[CheckResult]:
    """Every trade the traffic took reached Kafka (or the DLQ, said so), and Kafka's window the lake, once."""
    bootstrap = env.endpoints.kafka_bootstrap
    context.progress("proof: reading Kafka's log ends")
    ends = await log_ends(bootstrap, env.topics)
    context.progress("proof: waiting for the lake to record those offsets")
    caught_up = f"the lake recorded the group's offsets up to the log end ({sum(ends.values())} across "
    try:
        await wait_written(table, env.settings.consumer.group, ends, limit, bootstrap=bootstrap)
    except Exception as error:  # behind, or the lake unreadable: both are the verdict, not a crash
        caught_up = f"{error}" if isinstance(error, TimeoutError) else f"the lake could not be read: {error}"
        behind = CheckStatus.FAIL
    else:
        caught_up += f"{len(ends)} partitions)"
        behind = CheckStatus.PASS
    context.progress("proof: reading the window from Kafka")
    messages = await read_kafka(bootstrap, env.endpoints.registry_url, starts, ends)
    in_kafka = Counter(m.trade.message_id for m in messages if m.trade is not None)
    trades = list({m.trade.message_id: m.trade for m in messages if m.trade is not None}.values())
    results = [
        judge_ingest(
            prefix,
            {i for each in traffic for i in each.ids},
            set(in_kafka),
            {i for each in traffic for i in each.dead_lettered_ids()},
        ),
        CheckResult(
            f"{prefix}.caught_up",
            "Consumer caught up",
            behind,
            caught_up,
            # A send retried after a lost acknowledgement puts an id in Kafka twice; the lake must not.
            {"kafka_resent": sum(in_kafka.values()) - len(in_kafka)},
            stage=Stage.CONSUMER,
        ),
    ]
    try:
        times = [trade.timestamp for trade in trades] or [0]
        window = (min(times), max(times) + 1)
        context.progress("proof: looking the trades up in the lake")
        in_lake = await asyncio.to_thread(lambda: lake_ids(table, list(in_kafka), between=window))
    except Exception as error:
        unread = f"the lake could not be read to compare: {error.__class__.__name__}: {error}"
        return [*results, CheckResult(f"{prefix}.missing", "Nothing missing", CheckStatus.FAIL, unread)]
    return [*results, *consistency_checks(prefix, trades, in_lake)]


def judge_ingest(prefix: str, taken: set[str], in_kafka: set[str], dead_lettered: set[str]) -> CheckResult:
    """Nothing lost on the way in: each trade the streams took is in Kafka, or in the DLQ with a reason."""
    missing = taken - in_kafka
    unexplained = sorted(missing - dead_lettered)
    measured = {"taken": len(taken), "in_kafka": len(taken & in_kafka), "dead_lettered": len(missing)}
    if unexplained:
        return CheckResult(
            f"{prefix}.ingest",
            "Every trade taken reached Kafka",
            CheckStatus.FAIL,
            f"{len(unexplained)} of {len(taken)} trades the streams took are neither in Kafka nor in the DLQ",
            measured,
            [f"lost: {message_id}" for message_id in unexplained[:10]],
            stage=Stage.KAFKA,
        )
    if missing:
        return CheckResult(
            f"{prefix}.ingest",
            "Every trade taken reached Kafka",
            CheckStatus.WARN,
            f"{len(missing)} of {len(taken)} trades went to the DLQ instead of Kafka (none lost in silence); "
            "`k2tui dlq replay --source producer` sends them",
            measured,
            stage=Stage.KAFKA,
        )
    return CheckResult(
        f"{prefix}.ingest",
        "Every trade taken reached Kafka",
        verdict(bool(taken)),
        f"all {len(taken)} trades the streams took are in Kafka" if taken else "the streams took no trade",
        measured,
        stage=Stage.KAFKA,
    )


def judge_recovery(
    prefix: str, title: str, seconds: float | None, limit: float, notes: Sequence[str]
) -> CheckResult:
    if seconds is None:
        return CheckResult(
            f"{prefix}.recovery",
            f"{title}: recovery",
            CheckStatus.FAIL,
            f"not recovered within {limit:g} s of the heal: the lake is still behind Kafka",
            {"recovery_s": None},
            list(notes),
            stage=Stage.RECOVERY,
        )
    return CheckResult(
        f"{prefix}.recovery",
        f"{title}: recovery",
        CheckStatus.PASS,
        f"recovered {seconds:.1f} s after the heal: all Kafka held then was in the lake (limit {limit:g} s)",
        {"recovery_s": round(seconds, 2)},
        list(notes),
        stage=Stage.RECOVERY,
    )


def judge_while_faulted(prefix: str, fault: Fault, observed: _Observed) -> list[CheckResult]:
    """What must hold during the fault: the breaker opened, nothing written, no offset moved."""
    results = []
    if fault.opens_breaker:
        dependency = fault.opens_breaker
        worst = observed.breaker_states.get(dependency)
        opened = observed.opened(dependency)
        results.append(
            CheckResult(
                f"{prefix}.breaker",
                f"{dependency} circuit breaker opened",
                verdict(opened),
                f"the consumer's {dependency} breaker "
                + (
                    "opened while the fault lasted"
                    if opened
                    else f"never opened in {BREAKER_WAIT_S:g} s"
                    + (" (its metrics were not readable)" if worst is None else "")
                ),
                {"breaker_state_max": worst},
                stage=Stage.CONSUMER,
            )
        )
    if fault.holds_writes:
        moved = {
            f"{tp.topic}[{tp.partition}]: {observed.committed_before.get(tp)} → {offset}"
            for tp, offset in observed.committed_after.items()
            if observed.committed_before.get(tp) != offset
        }
        written = (observed.written_after or 0) - (observed.written_before or 0)
        held = not moved and written == 0
        results.append(
            CheckResult(
                f"{prefix}.held",
                "Nothing written and no offset moved while away",
                verdict(held),
                "no record written and no Kafka commit while the fault lasted"
                if held
                else f"{written:.0f} records written and {len(moved)} commits moved while the fault lasted",
                {"written_while_away": written, "commits_moved": len(moved)},
                sorted(moved),
                stage=Stage.CONSUMER,
            )
        )
    return results


async def run_soak(env: ValidationEnv, options: FaultsOptions, context: StepContext) -> list[CheckResult]:
    """Rounds of random faults at random moments under one stream of traffic; exact counts at the end."""
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    chooser = random.Random(seed)
    table = await asyncio.to_thread(open_trades_table, env.layout)
    starts = await log_ends(env.endpoints.kafka_bootstrap, env.topics)
    traffic = Traffic(env.settings, options.rate)
    rounds: list[str] = []
    recoveries: list[float] = []
    failed: list[str] = []
    try:
        await traffic.start()
        for number in range(1, options.soak_rounds + 1):
            fault = FAULTS[chooser.choice(SOAK_FAULTS)]
            hold, gap = chooser.uniform(*options.soak_hold), chooser.uniform(*options.soak_gap)
            context.progress(f"round {number}: {fault.title}", (number - 1) / options.soak_rounds)
            await asyncio.sleep(gap)
            await fault.inject(env)
            await asyncio.sleep(hold)
            healed_at = time.monotonic()
            await fault.heal(env)
            seconds = await _recovery_time(env, table, [traffic], healed_at, options.recovery_limit)
            if seconds is None:
                failed.append(fault.title)
                rounds.append(f"round {number}: {fault.title} for {hold:.1f} s, not recovered")
            else:
                recoveries.append(seconds)
                rounds.append(f"round {number}: {fault.title} for {hold:.1f} s, recovered in {seconds:.1f} s")
        await traffic.stop()
    except BaseException:
        await traffic.abort()
        raise
    context.progress("soak: proving the counts", 0.9)
    limit = options.recovery_limit
    proof = await prove_exactly_once(env, table, "faults.soak", starts, [traffic], limit, context)
    recovery = CheckResult(
        "faults.soak.recovery",
        "Chaos soak: every round recovered",
        verdict(not failed),
        (
            f"{len(failed)} of {options.soak_rounds} rounds did not recover: {', '.join(failed)}"
            if failed
            else f"{options.soak_rounds} rounds, recovery median {_median(recoveries):.1f} s, "
            f"worst {max(recoveries):.1f} s"
        ),
        {"seed": seed, "rounds": options.soak_rounds, "recovery_worst_s": max(recoveries, default=None)},
        [f"seed {seed} (replay with --seed {seed})", *rounds],
        stage=Stage.RECOVERY,
    )
    return [recovery, *proof]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


async def heal_everything(env: ValidationEnv) -> CheckResult:
    """Undo whatever a scenario may have left: resume, reconnect and start every pipeline service."""
    done = []
    for service in ("object-store", "registry", "broker", "consumer"):
        if env.service_configured(service):
            with contextlib.suppress(Exception):
                done.append(await _act(env, service, FaultAction.HEAL))
    ready = await services_ready(env, PIPELINE_SERVICES, check_id="faults.healed")
    return replace(ready, title="Stack healed after the faults", evidence=[*done, *ready.evidence])
