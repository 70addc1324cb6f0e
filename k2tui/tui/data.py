"""What the cockpit's workers fetch: each source calls the library the CLI uses and returns a dataclass.

The app knows only the `Sources` protocol, so tests hand it deterministic fakes and `LiveSources` reads
the stack the settings describe. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from aiokafka import TopicPartition

from k2tui.ingest.dlq import DeadLetter, dlq_dir
from k2tui.ingest.topics import TOPICS
from k2tui.stack.backend import Stack
from k2tui.stack.events import StackEvent
from k2tui.stack.local_http import warm_up
from k2tui.stack.metrics import Prometheus
from k2tui.stack.supervisor import ServiceStatus
from k2tui.tui.checklist_book import ChecklistBook, ChecklistsSnapshot, LiveChecklistBook, tally
from k2tui.tui.consumer_metrics import ConsumerMetricsReader, ConsumerSnapshot
from k2tui.tui.dead_letters import DeadLetterDesk, DlqReader, LiveDeadLetterDesk
from k2tui.tui.lake_snapshots import SnapshotReader
from k2tui.tui.stream_feed import LiveStreamSwitchboard, StreamsSnapshot, StreamSwitchboard, read_streams
from k2tui.validate.offsets import ends_and_committed

if TYPE_CHECKING:
    from k2tui.lake.snapshots import SnapshotInfo

TREND_POINTS = 5


@dataclass(frozen=True)
class ServicesSnapshot:
    backend: str
    services: list[ServiceStatus]

    @property
    def any_running(self) -> bool:
        """Whether any service process is alive (the catalog, a file, has none and proves nothing)."""
        return any(s.pid is not None for s in self.services)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    log_end: int
    committed: int | None
    """The group's committed offset; None when the group has committed nothing there."""

    @property
    def lag(self) -> int:
        return self.log_end - (self.committed or 0)


@dataclass(frozen=True)
class KafkaSnapshot:
    group: str
    partitions: list[PartitionLag]
    taken: float = 0.0
    """When it was read (monotonic seconds): rates come from two snapshots' offsets and times."""


@dataclass(frozen=True)
class IcebergSnapshot:
    source: str
    """Where the snapshots were read: the API, or the lake itself."""
    table: str
    records: int | None
    data_files: int | None
    snapshot_count: int
    latest: list[SnapshotInfo]
    """Newest first."""


@dataclass(frozen=True)
class DlqSnapshot:
    directory: str
    by_reason: list[tuple[str, int]]
    """(reason, count), most frequent first."""
    letters: tuple[DeadLetter, ...] = ()
    """The entries themselves, oldest first."""

    @property
    def total(self) -> int:
        return sum(count for _, count in self.by_reason)


@dataclass(frozen=True)
class StackEvents:
    """What the engine reported since the last refresh: container events (none for local processes)."""

    backend: str
    events: list[StackEvent]

    def then(self, later: StackEvents) -> StackEvents:
        return StackEvents(later.backend, [*self.events, *later.events])


class Sources(Protocol):
    """Where every pane's data comes from; a method that cannot reach its source raises with the reason."""

    async def services(self) -> ServicesSnapshot: ...
    async def kafka(self) -> KafkaSnapshot: ...
    async def iceberg(self) -> IcebergSnapshot: ...
    async def consumer(self) -> ConsumerSnapshot: ...
    async def dlq(self) -> DlqSnapshot: ...
    async def checklists(self) -> ChecklistsSnapshot: ...
    async def streams(self) -> StreamsSnapshot: ...
    async def stack_events(self) -> StackEvents: ...

    book: ChecklistBook
    """The checklists walked from the cockpit."""
    desk: DeadLetterDesk
    """The DLQ entries opened and replayed from the cockpit."""
    switchboard: StreamSwitchboard
    """The stream services started, stopped and switched from the cockpit."""


class LiveSources:
    """The stack of the given settings, read through the same functions `k2tui status`, `validate` and
    `dlq` use; blocking calls go to a thread so the app's event loop never waits on them."""

    def __init__(self, stack: Stack) -> None:
        warm_up()
        self.stack = stack
        self.settings = stack.layout.settings
        self.snapshots = SnapshotReader(stack.layout)
        self.events_since = time.time()
        self.dlq_reader = DlqReader(dlq_dir(self.settings))
        self.book = LiveChecklistBook(self.settings)
        self.switchboard = LiveStreamSwitchboard(stack)
        self.desk = LiveDeadLetterDesk(
            self.dlq_reader,
            bootstrap=stack.layout.endpoints.kafka_bootstrap,
            registry_url=stack.layout.endpoints.registry_url,
            partitions=self.settings.streams.partitions,
        )
        self.consumer_metrics = ConsumerMetricsReader(
            stack.layout.endpoints.consumer_metrics_url,
            Prometheus(stack.layout.endpoints.prometheus_url, retries=0),
        )

    async def services(self) -> ServicesSnapshot:
        return ServicesSnapshot(self.stack.backend, await asyncio.to_thread(self.stack.status))

    async def stack_events(self) -> StackEvents:
        """What the engine reported since the last call (from when the cockpit opened, at first)."""
        events = await asyncio.to_thread(self.stack.events, self.events_since)
        if events:
            self.events_since = max(event.time for event in events)
        return StackEvents(self.stack.backend, events)

    async def kafka(self) -> KafkaSnapshot:
        bootstrap = self.stack.layout.endpoints.kafka_bootstrap
        group = self.settings.consumer.group
        ends, committed = await ends_and_committed(bootstrap, list(TOPICS.values()), group)
        return KafkaSnapshot(group, kafka_lags(ends, committed), time.monotonic())

    async def iceberg(self) -> IcebergSnapshot:
        return iceberg_summary(*await self.snapshots.read())

    async def consumer(self) -> ConsumerSnapshot:
        return await self.consumer_metrics.read()

    async def dlq(self) -> DlqSnapshot:
        letters = await asyncio.to_thread(self.dlq_reader.letters)
        counts = Counter(letter.reason for letter in letters)
        return DlqSnapshot(str(self.dlq_reader.directory), counts.most_common(), tuple(letters))

    async def checklists(self) -> ChecklistsSnapshot:
        return tally(await self.book.progress(), self.book.checklists())

    async def streams(self) -> StreamsSnapshot:
        return await read_streams(self.settings)


def kafka_lags(ends: dict[TopicPartition, int], committed: dict[TopicPartition, int]) -> list[PartitionLag]:
    return [
        PartitionLag(tp.topic, tp.partition, end, committed.get(tp))
        for tp, end in sorted(ends.items(), key=lambda item: (item[0].topic, item[0].partition))
    ]


def iceberg_summary(
    source: str, newest: list[SnapshotInfo], count: int, table: str = "market_data.trades_v2"
) -> IcebergSnapshot:
    """Totals from the current snapshot's summary (what the last commit recorded)."""
    current = next((s for s in newest if s.current), None)
    totals = {} if current is None else current.summary

    def total(key: str) -> int | None:
        value = totals.get(key)
        return int(value) if value is not None else (0 if not count else None)

    return IcebergSnapshot(source, table, total("total-records"), total("total-data-files"), count, newest)


@dataclass
class LagTrends:
    """Each partition over the last few refreshes: which way its lag is going, and how fast messages
    are produced to it (its log end moving) and consumed from it (the group's commit moving)."""

    points: int = TREND_POINTS
    history: dict[tuple[str, int], deque[tuple[float, PartitionLag]]] = field(default_factory=dict)

    def record(self, snapshot: KafkaSnapshot) -> None:
        for p in snapshot.partitions:
            seen = self.history.setdefault((p.topic, p.partition), deque(maxlen=self.points))
            seen.append((snapshot.taken, p))

    def trend(self, topic: str, partition: int) -> str:
        seen = [p.lag for _, p in self.history.get((topic, partition), ())]
        if len(seen) < 2:
            return "…"
        if seen[-1] < seen[0]:
            return "draining"
        if seen[-1] > seen[0]:
            return "growing"
        return "stalled" if seen[-1] > 0 else "caught up"

    def rates(self, topic: str, partition: int) -> tuple[float, float] | None:
        """(produced, consumed) messages a second over the refreshes kept; None before two of them."""
        seen = self.history.get((topic, partition), ())
        if len(seen) < 2 or seen[-1][0] <= seen[0][0]:
            return None
        (began, first), (ended, last) = seen[0], seen[-1]
        seconds = ended - began
        consumed = (last.committed or 0) - (first.committed or 0)
        return (last.log_end - first.log_end) / seconds, consumed / seconds
