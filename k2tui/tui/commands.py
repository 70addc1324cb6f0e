"""The command palette's own commands: every key active where it was opened, read from the bindings
themselves (so a key added to any BINDINGS appears without a second list to keep), and the themes."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.screen import Screen

THEMES = {"dark": "textual-dark", "light": "textual-light"}
"""The `tui.theme` setting's values and the Textual themes they stand for."""


def binding_commands(
    app: App[Any], screen: Screen[Any], taken: Iterable[str] = ()
) -> Iterable[SystemCommand]:
    """A command per described binding of `screen`'s focus chain, the app's included, titled by its
    description; a title already `taken` (Textual's own Quit, say) or seen before is left out."""
    seen = set(taken)
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.description or binding.system or binding.description in seen:
            continue
        seen.add(binding.description)
        yield SystemCommand(
            binding.description,
            f"key {app.get_key_display(binding)}",
            partial(app.run_action, binding.action, active.node),
        )
