"""The banner across the main screen while a fault is on, and while the pipeline recovers from it."""

from __future__ import annotations

from textual.widgets import Static


class FaultBanner(Static):
    """Hidden until a fault is injected; red while it is active, amber while recovery is watched."""

    def __init__(self) -> None:
        super().__init__("", id="fault-banner")
        self.text = ""
        """What the banner says now ("" when hidden), kept so it can be read back."""

    def active(self, text: str) -> None:
        self._show(text, "-active")

    def recovering(self, text: str) -> None:
        self._show(text, "-recovering")

    def clear(self) -> None:
        self.text = ""
        self.remove_class("-active", "-recovering")
        self.update("")

    def _show(self, text: str, kind: str) -> None:
        self.text = text
        self.remove_class("-active", "-recovering")
        self.add_class(kind)
        self.update(text)
