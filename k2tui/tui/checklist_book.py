"""The checklists as the cockpit walks them: the tally per checklist the pane shows, and running,
confirming and exporting an item through the functions `k2tui checklist run|confirm|export` use.

Progress is read from and written to the environment's file at each step, so the CLI and the cockpit
can take turns on the same walk-through. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from k2tui.config import Settings
from k2tui.validate.checklist import (
    Checklist,
    ChecklistItem,
    Walk,
    WalkSink,
    confirm,
    export_markdown,
    load_checklists,
    record,
    summary,
)
from k2tui.validate.progress import ItemProgress, ItemStatus, Progress, load_progress, save_progress


@dataclass(frozen=True)
class ChecklistTally:
    name: str
    title: str
    done: int
    """Passed or confirmed."""
    failed: int
    """Failed or refused."""
    pending: int
    """Not walked yet, or skipped (no procedure here to run it)."""

    @property
    def total(self) -> int:
        return self.done + self.failed + self.pending


@dataclass(frozen=True)
class ChecklistsSnapshot:
    environment: str
    tallies: list[ChecklistTally]


def tally(progress: Progress, checklists: list[Checklist]) -> ChecklistsSnapshot:
    tallies = []
    for checklist in checklists:
        counts = summary(progress, checklist)
        done = counts[ItemStatus.PASSED] + counts[ItemStatus.CONFIRMED]
        failed = counts[ItemStatus.FAILED] + counts[ItemStatus.REFUSED]
        tallies.append(
            ChecklistTally(
                checklist.name, checklist.title, done, failed, len(checklist.items) - done - failed
            )
        )
    return ChecklistsSnapshot(progress.environment, tallies)


class ChecklistBook(Protocol):
    """The checklists and their progress in one environment; each method saves what it changed."""

    def checklists(self) -> list[Checklist]: ...
    async def progress(self) -> Progress: ...
    async def run_item(
        self, checklist: Checklist, item: ChecklistItem, on_event: WalkSink
    ) -> ItemProgress: ...
    async def confirm(self, checklist: Checklist, item: ChecklistItem, note: str) -> ItemProgress: ...
    async def export(self, checklist: Checklist) -> Path: ...


class LiveChecklistBook:
    """The settings' environment: its progress file, its stack for the linked checks, and exports next
    to the progress file (``<home>/checklists/<environment>-<checklist>.md``)."""

    def __init__(self, settings: Settings, options: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.options = options
        self._checklists = load_checklists()

    def checklists(self) -> list[Checklist]:
        return self._checklists

    async def progress(self) -> Progress:
        return await asyncio.to_thread(load_progress, self.settings)

    async def run_item(self, checklist: Checklist, item: ChecklistItem, on_event: WalkSink) -> ItemProgress:
        """The item's linked checks, run afresh (a new walk each time) in this event loop, so leaving
        the cockpit cancels them and their clean-up steps still run."""
        from k2tui.validate.env import ValidationEnv  # with the walk, like the procedures it runs

        outcome = await Walk(ValidationEnv.local(self.settings), self.options).run_item(
            checklist, item, on_event
        )
        return await asyncio.to_thread(self._save, lambda progress: record(progress, outcome))

    async def confirm(self, checklist: Checklist, item: ChecklistItem, note: str) -> ItemProgress:
        return await asyncio.to_thread(self._save, lambda progress: confirm(progress, checklist, item, note))

    async def export(self, checklist: Checklist) -> Path:
        return await asyncio.to_thread(self._export, checklist)

    def _save(self, change: Callable[[Progress], ItemProgress]) -> ItemProgress:
        progress = load_progress(self.settings)
        entry = change(progress)
        save_progress(self.settings, progress)
        return entry

    def _export(self, checklist: Checklist) -> Path:
        path = self.settings.home / "checklists" / f"{self.settings.validate.environment}-{checklist.name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(export_markdown(load_progress(self.settings), [checklist]))
        return path
