"""The seed's checklists, walked item by item: automated items run checks, manual ones a person confirms.

An item links to checks by id or id prefix (``pipeline.error_handling`` covers that check and every
``pipeline.error_handling.*``); the procedure to run is the link's first dotted part. A walk runs each
procedure once however many items link to it, and an item passes only when every check it links to
passed. Nothing here prints or prompts: the CLI and the TUI render the outcomes and ask the questions.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from k2tui.validate.check import CheckResult, CheckStatus
from k2tui.validate.procedure import ProcedureReport, ProgressEvent, run_procedure
from k2tui.validate.progress import ItemProgress, ItemStatus, Progress, now

if TYPE_CHECKING:
    from k2tui.validate.env import ValidationEnv
    from k2tui.validate.procedures import ProcedureEntry

EVIDENCE_PER_CHECK = 20
"""Evidence lines kept per linked check: enough to chase a verdict, not a whole log."""


class ChecklistError(ValueError):
    """An unknown checklist or item, or a malformed checklist file; one sentence naming the known ones."""


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str
    links: tuple[str, ...] = ()
    """Check ids or id prefixes; empty for a manual item."""
    hint: str = ""
    """For a manual item: how a person verifies it."""

    @property
    def manual(self) -> bool:
        return not self.links

    @property
    def procedures(self) -> list[str]:
        return list(dict.fromkeys(link.split(".", 1)[0] for link in self.links))

    def covers(self, check_id: str) -> bool:
        return any(link_covers(link, check_id) for link in self.links)


def link_covers(link: str, check_id: str) -> bool:
    """A link is a check id, or a prefix standing for every check under it."""
    return check_id == link or check_id.startswith(link + ".")


@dataclass(frozen=True)
class Checklist:
    name: str
    title: str
    when: str
    items: tuple[ChecklistItem, ...]

    def item(self, item_id: str) -> ChecklistItem:
        for item in self.items:
            if item.id == item_id:
                return item
        known = ", ".join(item.id for item in self.items)
        raise ChecklistError(f"{self.name} has no item {item_id!r}; its items are {known}")


def checklist_names() -> list[str]:
    """Names as the CLI spells them (``pre-deployment``), in the seed's order."""
    return ["pre-deployment", "post-deployment", "technical-debt"]


def load_checklist(name: str) -> Checklist:
    if name not in checklist_names():
        raise ChecklistError(f"no checklist {name!r}; the checklists are {', '.join(checklist_names())}")
    source = resources.files("k2tui.validate.checklists") / f"{name.replace('-', '_')}.toml"
    data = tomllib.loads(source.read_text())
    items = []
    for raw in data["items"]:
        links, hint = tuple(raw.get("links", ())), raw.get("hint", "")
        if bool(links) == bool(hint):
            raise ChecklistError(f"{name}: item {raw['id']!r} needs either links or a hint, not both or none")
        items.append(ChecklistItem(raw["id"], raw["text"], links, hint))
    return Checklist(name, data["title"], data["when"], tuple(items))


def load_checklists() -> list[Checklist]:
    return [load_checklist(name) for name in checklist_names()]


def items_to_run(checklist: Checklist, ids: Sequence[str] = ()) -> list[ChecklistItem]:
    """The items named by `ids` in the checklist's order, or every item when none is named."""
    wanted = {checklist.item(item_id).id for item_id in ids}
    return [item for item in checklist.items if not wanted or item.id in wanted]


@dataclass(frozen=True)
class ItemOutcome:
    checklist: str
    item: ChecklistItem
    status: ItemStatus
    detail: str
    checks: tuple[CheckResult, ...] = ()

    def progress(self) -> ItemProgress:
        """The entry to save: the verdict per linked check, and each check's evidence."""
        evidence = []
        for check in self.checks:
            evidence.append(f"{check.id}: {check.status.value.upper()} — {check.detail}")
            evidence.extend(f"  {line}" for line in check.evidence[:EVIDENCE_PER_CHECK])
        return ItemProgress(
            status=self.status,
            when=now(),
            note=self.detail,
            evidence=evidence,
            checks={check.id: check.status.value for check in self.checks},
        )


@dataclass(frozen=True)
class ItemFinished:
    """A walk's event after an automated item was judged (the procedures' own events come before it)."""

    outcome: ItemOutcome


WalkEvent = ProgressEvent | ItemFinished
WalkSink = Callable[[WalkEvent], None]


def _ignore(event: WalkEvent) -> None:
    """The default sink."""


def _procedures() -> Mapping[str, ProcedureEntry]:
    """The procedures, imported when a walk first needs them: they pull in the whole pipeline, which
    whoever only reads checklists (the cockpit at start) should not wait for."""
    from k2tui.validate.procedures import PROCEDURES

    return PROCEDURES


class Walk:
    """One walk through checklist items: runs each procedure the first time an item needs it.

    `options` maps a procedure name to the options it runs with instead of its defaults (a shorter
    health window, say).
    """

    def __init__(self, env: ValidationEnv, options: Mapping[str, Any] | None = None) -> None:
        self._env = env
        self._options = dict(options or {})
        self.reports: dict[str, ProcedureReport] = {}

    def to_run(self, item: ChecklistItem) -> list[str]:
        """The procedures `item` needs that this walk has not run yet (a progress display shows them)."""
        procedures = _procedures()
        return [name for name in item.procedures if name in procedures and name not in self.reports]

    async def run_item(
        self, checklist: Checklist, item: ChecklistItem, on_event: WalkSink = _ignore
    ) -> ItemOutcome:
        if item.manual:
            raise ChecklistError(f"{item.id} is confirmed by a person, not run")
        procedures = _procedures()
        missing = [name for name in item.procedures if name not in procedures]
        if missing:
            outcome = ItemOutcome(
                checklist.name,
                item,
                ItemStatus.SKIPPED,
                f"this k2tui has no {', '.join(missing)} procedure (it has {', '.join(procedures)}); "
                "verify it by hand and confirm it",
            )
        else:
            for name in self.to_run(item):
                entry = procedures[name]
                procedure = entry.build(self._env, self._options.get(name) or entry.options())
                self.reports[name] = await run_procedure(procedure, on_event)
            outcome = judge(checklist.name, item, list(self.reports.values()))
        on_event(ItemFinished(outcome))
        return outcome


def judge(checklist: str, item: ChecklistItem, reports: Sequence[ProcedureReport]) -> ItemOutcome:
    """Passed when every link found checks and every one of them passed; failed otherwise, saying why."""
    checks = [result for report in reports for result in report.results if item.covers(result.id)]
    unmatched = [link for link in item.links if not any(link_covers(link, c.id) for c in checks)]
    short = [c for c in checks if c.status is not CheckStatus.PASS]
    if unmatched:
        detail = f"no check reported for {', '.join(unmatched)}"
    elif short:
        detail = "; ".join(f"{c.id} {c.status.value}: {c.detail}" for c in short)
    elif len(checks) <= 2:
        detail = "; ".join(c.detail for c in checks)
    else:
        detail = f"all {len(checks)} checks passed"
    status = ItemStatus.FAILED if unmatched or short else ItemStatus.PASSED
    return ItemOutcome(checklist, item, status, detail, tuple(checks))


async def run_items(
    env: ValidationEnv,
    checklist: Checklist,
    items: Sequence[ChecklistItem],
    on_event: WalkSink = _ignore,
    options: Mapping[str, Any] | None = None,
) -> list[ItemOutcome]:
    """Run the automated items among `items`, in order; manual ones are left to `confirm`."""
    walk = Walk(env, options)
    return [await walk.run_item(checklist, item, on_event) for item in items if not item.manual]


def record(progress: Progress, outcome: ItemOutcome) -> ItemProgress:
    entry = outcome.progress()
    progress.record(outcome.checklist, outcome.item.id, entry)
    return entry


def confirm(
    progress: Progress, checklist: Checklist, item: ChecklistItem, note: str, accepted: bool = True
) -> ItemProgress:
    """A person's word on an item: confirmed, or refused, with their note (required: it is the evidence)."""
    if not note.strip():
        raise ChecklistError(f"{item.id}: say in a note what was verified (or why it is refused)")
    entry = ItemProgress(
        status=ItemStatus.CONFIRMED if accepted else ItemStatus.REFUSED,
        when=now(),
        note=note.strip(),
        evidence=[f"by hand: {item.hint}"] if item.hint else [],
    )
    progress.record(checklist.name, item.id, entry)
    return entry


def summary(progress: Progress, checklist: Checklist) -> dict[ItemStatus, int]:
    """How many items are in each status, every status listed."""
    counts = dict.fromkeys(ItemStatus, 0)
    for item in checklist.items:
        counts[progress.item(checklist.name, item.id).status] += 1
    return counts


def export_markdown(
    progress: Progress, checklists: Sequence[Checklist], exported: datetime | None = None
) -> str:
    """Per checklist, a `- [x]` / `- [ ]` list with status, date, note and evidence, for a deploy ticket."""
    moment = exported or now()
    lines = [f"# Validation checklists — {progress.environment}", "", f"Exported {_when(moment)}.", ""]
    for checklist in checklists:
        counts = summary(progress, checklist)
        done = counts[ItemStatus.PASSED] + counts[ItemStatus.CONFIRMED]
        tally = f"{checklist.when}: {done} of {len(checklist.items)} done."
        lines += [f"## {checklist.title}", "", tally, ""]
        for item in checklist.items:
            entry = progress.item(checklist.name, item.id)
            box = "x" if entry.status.done else " "
            stamp = f", {_when(entry.when)}" if entry.when else ""
            lines.append(f"- [{box}] {item.text} — **{entry.status.value}**{stamp}")
            if entry.note:
                lines.append(f"  - note: {entry.note}")
            lines.extend(_evidence_line(line) for line in entry.evidence)
        lines.append("")
    return "\n".join(lines)


def _evidence_line(line: str) -> str:
    """A check's verdict one level under its item, that check's evidence one level further."""
    depth = "    " if line.startswith("  ") else "  "
    text = line.strip().replace("`", "'")
    return f"{depth}- `{text}`"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
