"""A throwaway local stack for tests: its own K2_HOME and a free block of ports."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from k2tui.config import Settings, resolve_settings, setting_specs
from k2tui.stack.layout import throwaway_overrides


def throwaway_settings(home: Path) -> tuple[Settings, dict[str, str]]:
    """The settings, and the same as K2_* variables for a `k2tui` subprocess."""
    overrides = throwaway_overrides(home)
    settings = resolve_settings(overrides, env={}).settings
    env_names = {spec.key: spec.env_var for spec in setting_specs()}
    return settings, {env_names[key]: str(value) for key, (value, _) in overrides.items()}


def k2tui_env(k2_env: dict[str, str]) -> dict[str, str]:
    """This environment minus the caller's K2_* and PYICEBERG_*, plus `k2_env`, our Python first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K2_", "PYICEBERG_"))} | k2_env
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def run_k2tui(
    stack_env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`k2tui ARGS` as a user runs it against the session's stack, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "k2tui", *args],
        env=k2tui_env(stack_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_checks(stdout: str) -> dict[str, dict[str, Any]]:
    """Every check of a one-procedure `k2tui validate ... --json` run, by id."""
    [procedure] = json.loads(stdout)["procedures"]
    return {check["id"]: check for step in procedure["steps"] for check in step["checks"]}
