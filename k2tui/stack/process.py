"""Starting a service process that outlives `k2tui up`, and recognising it again later.

A service runs under a tiny ``sh`` keeper that records the service's pid and, when it ends, its exit
status and time, so `status` can say "exited with code 137 at 12:03:04" even though the process that
started it is long gone. A process is ours only if its pid, start time and command line all match what
was recorded: a recycled pid never receives a signal from k2tui.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

# "$@" is the service's command. The keeper waits for it (not for stops: sh has no job control here),
# then writes "<status> <unix time>"; a status above 128 means the service died of signal status-128.
# The keeper is the leader of the service's own session, so with the kernel's autogroups (on by default
# on desktop kernels) the service's CPU share is set by its autogroup's nice, not the process's: both are
# set, the autogroup for those kernels and nice(1) for the others.
_KEEPER = (
    'pidfile=$1; exitfile=$2; nice=$3; shift 3; if [ "$nice" -gt 0 ]; then '
    '{ echo "$nice" > /proc/$$/autogroup; } 2>/dev/null; '
    'if command -v nice > /dev/null; then set -- nice -n "$nice" "$@"; fi; fi; '
    '"$@" & child=$!; echo "$child" > "$pidfile"; '
    'wait "$child"; code=$?; echo "$code $(date +%s)" > "$exitfile"'
)


@dataclass(frozen=True)
class ProcessRecord:
    """What identifies a process this stack started."""

    pid: int
    create_time: float
    cmdline: tuple[str, ...]

    def find(self) -> psutil.Process | None:
        """The live process if it is still the one we started, else None."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) > 0.05:
                return None
            if tuple(process.cmdline()) != self.cmdline or process.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return process

    def is_alive(self) -> bool:
        return self.find() is not None

    def signal(self, signum: int) -> bool:
        """Send `signum` if the process is still ours; False when it is gone."""
        process = self.find()
        if process is None:
            return False
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signum)
            return True
        return False

    def is_paused(self) -> bool:
        process = self.find()
        return process is not None and process.status() == psutil.STATUS_STOPPED


def rss_bytes(process: psutil.Process) -> int | None:
    with contextlib.suppress(psutil.Error):
        return int(process.memory_info().rss)
    return None


@dataclass(frozen=True)
class ExitStatus:
    code: int
    at: float

    @property
    def signal_name(self) -> str | None:
        if self.code <= 128:
            return None
        with contextlib.suppress(ValueError):
            return signal.Signals(self.code - 128).name
        return None

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.at))
        by = f" ({self.signal_name})" if self.signal_name else ""
        return f"exited with code {self.code}{by} at {when}"


def read_exit_status(path: Path) -> ExitStatus | None:
    try:
        code, at = path.read_text().split()
        return ExitStatus(int(code), float(at))
    except (OSError, ValueError):
        return None


def spawn(
    command: list[str],
    *,
    env: dict[str, str],
    log_file: Path,
    pid_file: Path,
    exit_file: Path,
    cwd: Path,
    nice: int = 0,
) -> ProcessRecord:
    """Start `command` detached from this terminal under the keeper; output goes to `log_file`.

    A `nice` above 0 lowers the service's priority from its first instruction (see `_KEEPER`), with no
    hook in this process between fork and exec.
    """
    for path in (pid_file, exit_file):
        path.unlink(missing_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n=== k2tui started {' '.join(command)} at {time.ctime()} ===\n".encode())
        log.flush()
        subprocess.Popen(
            ["/bin/sh", "-c", _KEEPER, "k2tui-keeper", str(pid_file), str(exit_file), str(nice), *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    pid = _wait_for_pid(pid_file)
    return _record_after_exec(pid, tuple(command))


def _record_after_exec(pid: int, command: tuple[str, ...], timeout: float = 2.0) -> ProcessRecord:
    """The record once the keeper's fork has exec'd the service, so the command line is the service's."""
    deadline = time.monotonic() + timeout
    create_time = 0.0
    while time.monotonic() < deadline:
        try:
            process = psutil.Process(pid)
            create_time = process.create_time()
            if tuple(process.cmdline()) == command:
                break
        except psutil.Error:
            # Gone already: the record matches no live process and the exit file says why.
            break
        time.sleep(0.005)
    return ProcessRecord(pid, create_time, command)


def _wait_for_pid(pid_file: Path, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(pid_file.read_text())
        time.sleep(0.005)
    raise RuntimeError(f"the service keeper did not report a pid in {pid_file} within {timeout:g} s")


def terminate(*records: ProcessRecord, grace: float = 10.0) -> None:
    """SIGTERM all at once (after SIGCONT, so a paused one can act), SIGKILL what is left after `grace`."""
    processes = [p for p in (r.find() for r in records) if p is not None]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


def service_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without k2tui's own settings (they were resolved already), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    env.update(extra)
    return env
