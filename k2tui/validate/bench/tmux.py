"""A program in a real terminal: a tmux session of its own, keys sent and the screen read back as text.

The TUI bench and the demo test use it to see the cockpit the way a user does — a real pty, the real
process — rather than through Textual's test pilot.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping

from k2tui.validate.bench.result import BenchError

POLL_S = 0.005


class TmuxSession:
    """`command` running in a detached tmux session of `size`, on a private tmux server socket."""

    def __init__(self, command: list[str], *, size: tuple[int, int], env: Mapping[str, str]) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            raise BenchError("tmux is not installed; install it (apt-get install tmux) to drive the TUI")
        self.name = f"k2tui-{uuid.uuid4().hex[:8]}"
        self._tmux = [tmux, "-L", self.name]
        columns, rows = size
        # The terminal's own size, not one a test runner or a shell left in COLUMNS / LINES.
        exports = [f"{key}={value}" for key, value in env.items()]
        self._run(
            "new-session", "-d", "-s", self.name, "-x", str(columns), "-y", str(rows),
            "env", "-u", "COLUMNS", "-u", "LINES", *exports, *command,
        )  # fmt: skip
        self._run("set-option", "-t", self.name, "remain-on-exit", "on")

    def _run(self, *args: str) -> str:
        done = subprocess.run([*self._tmux, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    @property
    def pid(self) -> int:
        """The program's process id (tmux runs the command as the pane's process)."""
        return int(self._run("display-message", "-p", "-t", self.name, "#{pane_pid}").strip())

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", self.name)

    def send(self, *keys: str) -> None:
        self._run("send-keys", "-t", self.name, *keys)

    def wait_for(self, shows: Callable[[str], bool], within: float, what: str) -> float:
        """Seconds until the screen satisfies `shows`; BenchError with the last screen when it does not."""
        began = time.monotonic()
        while True:
            text = self.screen()
            if shows(text):
                return time.monotonic() - began
            if time.monotonic() - began > within:
                raise BenchError(f"the screen never showed {what} within {within:g} s; it shows:\n{text}")
            time.sleep(POLL_S)

    def close(self) -> None:
        subprocess.run([*self._tmux, "kill-server"], capture_output=True, check=False)
