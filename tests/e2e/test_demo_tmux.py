"""The real `k2tui demo` in a real terminal (tmux) on the session's stack: the panes fill with data from
the streams it starts, q quits, and the demo stops what it started, leaving the stack as it found it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from k2tui.stack.supervisor import LocalStack, ServiceState
from k2tui.validate.bench.tmux import TmuxSession

STREAM_SERVICES = ("simulator", "binance", "kraken")


def _states(stack: LocalStack) -> dict[str, ServiceState]:
    return {s.name: s.state for s in stack.status()}


def test_the_demo_fills_its_panes_and_stops_only_what_it_started(
    stack: LocalStack, stack_env: dict[str, str]
) -> None:
    assert not any(_states(stack)[name] is ServiceState.READY for name in STREAM_SERVICES)
    env = stack_env | {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "TERM": "xterm-256color"}
    demo = TmuxSession([sys.executable, "-m", "k2tui", "demo"], size=(160, 50), env=env)
    try:
        demo.wait_for(lambda s: s.count("SIMULATED") >= 2, 120, "both streams on the simulator")
        demo.wait_for(lambda s: re.search(r"binance/\d\s+[1-9][\d,]*", s) is not None, 60, "a Kafka log end")
        demo.wait_for(
            lambda s: re.search(r"consumed / written\s+[1-9]", s) is not None, 60, "trades consumed"
        )
        screen = demo.screen()
        assert "unavailable" not in screen, screen
        assert re.search(r"(BUY|SELL)", screen), screen  # the trade tape
        demo.send("q")
        closing = demo.wait_for(lambda s: "Stopped what the demo started" in s, 60, "the demo's closing line")
        assert closing < 60
        last = demo.screen()
    finally:
        demo.close()
    stopped = re.search(r"Stopped what the demo started: (.*)\.", last)
    assert stopped is not None, last
    assert set(stopped.group(1).split(", ")) == set(STREAM_SERVICES), last
    states = _states(stack)
    assert not any(states[name] is ServiceState.READY for name in STREAM_SERVICES), states
    assert states["broker"] is ServiceState.READY and states["consumer"] is ServiceState.READY, states
