"""The stream verbs as a user runs them: exit codes and plain sentences."""

import subprocess
import sys

from k2tui.stack.ports import find_free_port
from tests.integration.stack_fixture import k2tui_env


def _k2tui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k2tui", *args],
        env=k2tui_env({"COLUMNS": "200", **(env or {})}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_streaming_passes_on_the_simulator(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = _k2tui("validate", "streaming", "--source", "sim", "--trades", "5", env={"K2_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "binance: v2 compliance" in out.stdout and "100.0% of" in out.stdout
    assert "every check holds" in out.stdout


def test_validate_streaming_fails_when_the_exchange_refuses_the_symbol(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"K2_HOME": str(tmp_path), "K2_KRAKEN_SYMBOLS": "BTC/USDX"}
    out = _k2tui("validate", "streaming", "--exchange", "kraken", "--source", "sim", "--trades", "5", env=env)
    assert out.returncode == 1
    assert "Kraken refused the trade subscription for BTC/USDX" in out.stdout


def test_an_unreachable_live_endpoint_is_one_plain_sentence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    closed = f"ws://127.0.0.1:{find_free_port()}"
    env = {"K2_HOME": str(tmp_path), "K2_BINANCE_WS_URL": closed}
    out = _k2tui("stream", "--exchange", "binance", "--no-kafka", "--max-trades", "1", env=env)
    assert out.returncode == 1
    assert out.stderr.startswith(f"Error: cannot reach binance at {closed}/stream?streams=")
    assert "use --source sim (or --fallback to switch automatically)" in out.stderr
    assert "Traceback" not in out.stderr


def test_fallback_switches_to_the_simulator_and_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    closed = f"ws://127.0.0.1:{find_free_port()}"
    env = {"K2_HOME": str(tmp_path), "K2_BINANCE_WS_URL": closed}
    out = _k2tui("stream", "--exchange", "binance", "--fallback", "--no-kafka", "--max-trades", "3", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"binance: cannot reach {closed}" in out.stdout and "using the simulator instead" in out.stdout
    # Printed trades carry their ids; which symbol trades first is up to the (unseeded) simulator.
    assert "SIMULATED" in out.stdout and "BINANCE-" in out.stdout
