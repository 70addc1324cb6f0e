"""Stacks of their own: `down` leaves nothing behind, and a taken port is a plain error."""

import socket
import subprocess
import sys
from pathlib import Path

import psutil

from k2tui.stack.supervisor import LocalStack, ServiceState
from tests.integration.stack_fixture import k2tui_env, throwaway_settings


def _processes_under(home: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(home) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def test_down_leaves_no_process_behind_and_purge_deletes_data(tmp_path: Path) -> None:
    settings, _ = throwaway_settings(tmp_path / "home")
    stack = LocalStack(settings)
    stack.up()
    pids = [s.pid for s in stack.status() if s.pid]
    assert len(pids) >= 5
    assert _processes_under(stack.layout.home)

    stopped = stack.down(purge=True)

    assert set(stopped) == {
        n for n, s in stack.specs.items() if s.command and not s.unavailable and not s.on_demand
    }
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert _processes_under(stack.layout.home) == []
    assert not stack.layout.data_dir.exists()
    assert all(s.state in (ServiceState.STOPPED, ServiceState.UNAVAILABLE) for s in stack.status() if s.pid)


def test_a_foreign_process_on_a_port_is_a_plain_error(tmp_path: Path) -> None:
    settings, env = throwaway_settings(tmp_path / "home")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", settings.stack.kafka_port))
    squatter.listen()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "k2tui", "up"],
            env=k2tui_env(env),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        squatter.close()
    assert out.returncode == 1
    message = out.stderr.strip()
    assert message.startswith(f"Error: port {settings.stack.kafka_port} (for proxy) is already in use by")
    assert "change the setting stack.kafka_port (K2_STACK_KAFKA_PORT)" in message
    assert "Traceback" not in out.stderr
    assert _processes_under(settings.home) == []
