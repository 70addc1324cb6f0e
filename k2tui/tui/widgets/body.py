"""What a pane draws: lines of text and grids of columns, laid out at the pane's width straight into
strips.

Every pane redraws each second. A Rich Table shown through Textual is rendered twice per redraw (once
to learn its height, once to draw it), several milliseconds a table: with eight panes that was most
of the time a key press waited for the screen. A grid here is laid out with string arithmetic, once
per width, and both Textual (as a Visual) and Rich (to read a pane back as text) draw the same lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.text import Text
from textual._context import active_app
from textual.css.styles import RulesMap
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, Visual

GAP = 1
"""Spaces between two columns at their narrowest; spare width is shared out on top."""


@dataclass(frozen=True)
class Column:
    name: str
    right: bool = False
    """Right-aligned (figures), else left."""
    wrap: bool = False
    """A long value folds onto more lines instead of ending in an ellipsis."""


class Grid:
    """Rows of cells under column names, as wide as the pane: Rich's Table without box, in the subset
    the panes use."""

    def __init__(self, *columns: str | Column, header: bool = True) -> None:
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.header = header
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: str | Text) -> None:
        self.rows.append([cell if isinstance(cell, Text) else Text(cell) for cell in cells])

    def _all_rows(self) -> list[list[Text]]:
        names = [Text(column.name, style="bold") for column in self.columns]
        return [names, *self.rows] if self.header else self.rows

    def natural_width(self) -> int:
        return sum(self._natural_widths()) + GAP * (len(self.columns) - 1)

    def _natural_widths(self, rows: list[list[Text]] | None = None) -> list[int]:
        rows = self._all_rows() if rows is None else rows
        return [max((row[i].cell_len for row in rows), default=0) for i in range(len(self.columns))]

    def widths(self, width: int) -> list[int]:
        """Each column's width: spare room shared in proportion to the natural widths, as Rich expands.
        Short of room, a column's name gives way before its values, then the widest column gives a
        cell at a time."""
        widths = self._natural_widths()
        room = width - GAP * (len(widths) - 1)
        natural = sum(widths)
        spare = room - natural
        if spare > 0 and natural:
            shares = [spare * w // natural for w in widths]
            for i in sorted(range(len(widths)), key=lambda i: -widths[i])[: spare - sum(shares)]:
                shares[i] += 1
            return [w + s for w, s in zip(widths, shares, strict=True)]
        values = self._natural_widths(self.rows)
        for i in range(len(widths)):
            give = min(sum(widths) - room, widths[i] - max(values[i], 1))
            if give > 0:
                widths[i] -= give
        while sum(widths) > room and max(widths, default=0) > 1:
            widths[widths.index(max(widths))] -= 1
        return widths

    def lines(self, width: int, console: Console) -> list[Text]:
        widths = self.widths(width)
        out: list[Text] = []
        for row in self._all_rows():
            cells = [
                self._cell(cell, column, w, console)
                for cell, column, w in zip(row, self.columns, widths, strict=True)
            ]
            for n in range(max((len(c) for c in cells), default=1)):
                line = Text(no_wrap=True, end="")
                for i, (cell_lines, w) in enumerate(zip(cells, widths, strict=True)):
                    if i:
                        line.append(" " * GAP)
                    line.append_text(cell_lines[n] if n < len(cell_lines) else Text(" " * w))
                out.append(line)
        return out

    @staticmethod
    def _cell(cell: Text, column: Column, width: int, console: Console) -> list[Text]:
        if column.wrap and cell.cell_len > width:
            lines = list(cell.wrap(console, width, justify="right" if column.right else "left"))
        else:
            fitted = cell.copy()
            fitted.truncate(width, overflow="ellipsis")
            lines = [fitted]
        for line in lines:
            line.end = ""
            (line.pad_left if column.right else line.pad_right)(width - line.cell_len)
        return lines


Part = Text | Grid


class PaneBody(Visual):
    """A pane's parts, one under another: lines of text (which wrap) and grids."""

    def __init__(self, *parts: Part) -> None:
        self.parts = parts
        self._laid_out: tuple[int, list[Text]] = (-1, [])

    def lines(self, width: int, console: Console | None = None) -> list[Text]:
        """The lines at `width`, laid out once per width."""
        if self._laid_out[0] != width:
            console = console or active_app.get().console
            lines: list[Text] = []
            for part in self.parts:
                if isinstance(part, Grid):
                    lines.extend(part.lines(width, console))
                else:
                    lines.extend(part.wrap(console, width))
            for line in lines:
                line.end = ""
            self._laid_out = (width, lines)
        return self._laid_out[1]

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        widths = [p.natural_width() if isinstance(p, Grid) else _longest_line(p) for p in self.parts]
        return max(widths, default=0)

    def get_height(self, rules: RulesMap, width: int) -> int:
        return len(self.lines(width))

    def render_strips(
        self, width: int, height: int | None, style: Style, options: RenderOptions
    ) -> list[Strip]:
        console = active_app.get().console
        base = style.rich_style
        strips = []
        for line in self.lines(width, console)[:height]:
            segments = Segment.apply_style(line.render(console), base + console.get_style(line.style))
            strips.append(Strip(segments).crop(0, width))
        return strips

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines(options.max_width, console):
            yield line
            yield Segment.line()


def _longest_line(text: Text) -> int:
    return max((line.cell_len for line in text.split("\n")), default=0)
