"""Checklist progress, kept per environment so a deploy's walk-through survives restarts and machines.

One JSON file per environment, ``<home>/checklists/<environment>.json``, written whole to a temporary
file and renamed over the old one, so a crash mid-write never leaves half a file behind.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import msgspec

from k2tui.config import Settings


class ItemStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        """The item holds: its checks passed or a person confirmed it."""
        return self in (ItemStatus.PASSED, ItemStatus.CONFIRMED)


class ItemProgress(msgspec.Struct, kw_only=True):
    status: ItemStatus = ItemStatus.PENDING
    when: datetime | None = None
    note: str = ""
    evidence: list[str] = []
    checks: dict[str, str] = {}
    """Linked check id → its verdict (pass, fail, warn, skip) at the last run."""


class Progress(msgspec.Struct, kw_only=True):
    environment: str
    checklists: dict[str, dict[str, ItemProgress]] = {}

    def item(self, checklist: str, item: str) -> ItemProgress:
        """The item's progress; pending when nothing was recorded."""
        return self.checklists.get(checklist, {}).get(item, ItemProgress())

    def record(self, checklist: str, item: str, entry: ItemProgress) -> None:
        self.checklists.setdefault(checklist, {})[item] = entry

    def reset(self, checklist: str) -> int:
        """Forget everything recorded for `checklist`; returns how many items had progress."""
        return len(self.checklists.pop(checklist, {}))


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def progress_file(settings: Settings) -> Path:
    return settings.home / "checklists" / f"{settings.validate.environment}.json"


def load_progress(settings: Settings) -> Progress:
    """The saved progress of the settings' environment, or an empty one when none was saved."""
    path = progress_file(settings)
    if not path.exists():
        return Progress(environment=settings.validate.environment)
    return msgspec.json.decode(path.read_bytes(), type=Progress)


def save_progress(settings: Settings, progress: Progress) -> Path:
    path = progress_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(msgspec.json.format(msgspec.json.encode(progress), indent=2))
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
