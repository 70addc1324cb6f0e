"""The pipeline's own processes as containers of the compose project (`stack.pipeline = "containers"`).

Their compose file is generated from the very specs the host supervisor runs (same commands, settings,
ports and health URLs), so the two ways cannot drift apart. Each container runs the image k2tui's
Dockerfile builds, on the host's network: it listens on 127.0.0.1 and reaches the other services at their
published ports exactly as a process on the host does, and Prometheus scrapes it there. It runs as the
user who owns k2tui's home, which is mounted at the same path (the dead-letter files, the SQLite catalog).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from k2tui.stack.layout import StackLayout
from k2tui.stack.services import ServiceSpec

PIPELINE_FILE = "pipeline.compose.json"
"""Beside the generated Prometheus configuration; JSON, which Compose reads as YAML."""
K2TUI = [sys.executable, "-m", "k2tui"]
HEALTH_CHECK = "__import__('urllib.request').request.urlopen(__import__('sys').argv[1],timeout=4)"
"""Run by the image's own Python (the slim base has neither curl nor wget). Without a space: Podman splits
a health check's arguments on spaces."""


def container_command(spec: ServiceSpec) -> list[str]:
    """The host command without the interpreter: the image's entrypoint is `k2tui`."""
    command = spec.command or []
    if command[: len(K2TUI)] != K2TUI:
        raise ValueError(f"{spec.name} does not run k2tui ({' '.join(command)}), so it has no container")
    return command[len(K2TUI) :]


def pipeline_compose(
    layout: StackLayout, specs: Iterable[ServiceSpec], image: str, others: Collection[str]
) -> dict[str, Any]:
    """The compose services of `specs`; `others` are the project's other services, which they may wait on."""
    specs = list(specs)
    names = {spec.name for spec in specs} | set(others)
    home = str(layout.home)
    services = {}
    for spec in specs:
        service: dict[str, Any] = {
            "image": image,
            "network_mode": "host",
            "user": f"{os.getuid()}:{os.getgid()}",
            "command": container_command(spec),
            "environment": spec.env,
            "volumes": [f"{home}:{home}"],
            # The consumer flushes its batch and commits on SIGTERM.
            "stop_grace_period": "20s",
            "depends_on": {name: {"condition": "service_healthy"} for name in spec.after if name in names},
        }
        if spec.health_url:
            service["healthcheck"] = {
                "test": ["CMD", "python", "-c", HEALTH_CHECK, spec.health_url],
                "interval": "2s",
                "timeout": "5s",
                "retries": 30,
            }
        services[spec.name] = service
    return {"services": services}


def write_pipeline_compose(
    path: Path, layout: StackLayout, specs: Iterable[ServiceSpec], image: str, others: Collection[str]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pipeline_compose(layout, specs, image, others), indent=2))
