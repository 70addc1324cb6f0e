"""Performance baselines: the figures of a run kept as JSON, and later runs held against them.

A baseline belongs to one environment (`settings.validate.environment`) and one machine; it records
which, so a regression seen on other hardware can be told apart from one in the code. A figure counts
as a regression when it got worse by more than the tolerance (a fraction: 0.25 is 25%) and by more
than its noise: a 0.05 ms latency becoming 0.08 ms is 60% worse and means nothing.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from k2tui import __version__
from k2tui.config import Settings


class Better(StrEnum):
    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True)
class Figure:
    name: str
    """Human and stable (`sustained throughput`): regressions are named by it, baselines keyed by it."""
    value: float
    unit: str
    better: Better
    noise: float = 0.0
    """The smallest change, in `unit`, that can be a regression whatever its percentage (not saved: it
    belongs to how the figure is measured, which the code defines)."""


@dataclass(frozen=True)
class Machine:
    cpus: int
    python: str
    platform: str

    @classmethod
    def this(cls) -> Machine:
        return cls(os.cpu_count() or 0, platform.python_version(), platform.platform(terse=True))

    def describe(self) -> str:
        return f"{self.cpus} CPUs, Python {self.python}, {self.platform}"


@dataclass(frozen=True)
class Baseline:
    figures: tuple[Figure, ...]
    saved_at: datetime
    k2tui_version: str
    machine: Machine

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


class BaselineError(RuntimeError):
    """A baseline file that exists but cannot be used; the message is one sentence naming the file."""


@dataclass(frozen=True)
class Regression:
    figure: Figure
    baseline: Figure
    change: float
    """How much worse, as a fraction of the baseline value (0.31 = 31% worse)."""
    tolerance: float

    def describe(self) -> str:
        direction = "below" if self.figure.better is Better.HIGHER else "above"
        return (
            f"{self.figure.name} {_amount(self.figure)} is {self.change:.0%} {direction} the baseline "
            f"{_amount(self.baseline)} (tolerance {self.tolerance:.0%})"
        )


@dataclass(frozen=True)
class Comparison:
    regressions: tuple[Regression, ...]
    held: tuple[str, ...]
    """One line per figure within the tolerance (or better), saying by how much it moved."""
    unmatched: tuple[str, ...]
    """Figures of this run the baseline does not have (added since it was saved)."""


def default_baseline_path(settings: Settings) -> Path:
    return settings.home / "baselines" / f"{settings.validate.environment}-performance.json"


def new_baseline(figures: list[Figure]) -> Baseline:
    return Baseline(tuple(figures), datetime.now(UTC), __version__, Machine.this())


def save_baseline(baseline: Baseline, path: Path) -> None:
    """Write atomically, so an interrupted save never leaves a corrupt baseline behind."""
    document = {
        "saved_at": baseline.saved_at.isoformat(),
        "k2tui_version": baseline.k2tui_version,
        "machine": asdict(baseline.machine),
        "figures": [
            {"name": f.name, "value": f.value, "unit": f.unit, "better": f.better.value}
            for f in baseline.figures
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


def load_baseline(path: Path) -> Baseline | None:
    """The baseline at `path`, None when there is none yet, or a BaselineError saying what is wrong."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BaselineError(f"cannot read the baseline {path}: {error.strerror or error}") from error
    try:
        document = json.loads(text)
        return Baseline(
            tuple(_figure(item) for item in document["figures"]),
            datetime.fromisoformat(document["saved_at"]),
            str(document["k2tui_version"]),
            Machine(**document["machine"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise BaselineError(
            f"the baseline {path} is not a k2tui performance baseline ({type(error).__name__}: {error}); "
            "delete it or save a new one with --save-baseline"
        ) from error


def _figure(item: dict[str, Any]) -> Figure:
    return Figure(str(item["name"]), float(item["value"]), str(item["unit"]), Better(item["better"]))


def compare(figures: list[Figure], baseline: Baseline, tolerance: float) -> Comparison:
    """Each figure against the baseline's figure of the same name."""
    regressions = []
    held = []
    unmatched = []
    for figure in figures:
        before = baseline.figure(figure.name)
        if before is None:
            unmatched.append(figure.name)
            continue
        worse_by = _worse_by(figure, before)
        change = worse_by / abs(before.value) if before.value else (1.0 if worse_by > 0 else 0.0)
        if change > tolerance and worse_by > figure.noise:
            regressions.append(Regression(figure, before, change, tolerance))
        else:
            moved = "worse" if worse_by > 0 else "better"
            held.append(f"{figure.name}: {_amount(figure)}, {abs(change):.0%} {moved} than {_amount(before)}")
    return Comparison(tuple(regressions), tuple(held), tuple(unmatched))


def _worse_by(figure: Figure, before: Figure) -> float:
    """How far `figure` is on the bad side of `before`, in its unit (negative when it improved)."""
    if figure.better is Better.HIGHER:
        return before.value - figure.value
    return figure.value - before.value


def format_value(value: float) -> str:
    """Three significant figures or so, with thousands separators: 1,180 / 31.4 / 0.06."""
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def _amount(figure: Figure) -> str:
    return f"{format_value(figure.value)} {figure.unit}"
