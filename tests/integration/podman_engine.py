"""A real Docker Engine API for the docker backend's tests: `podman system service` on a private socket.

No Docker engine runs on these machines and nothing can be pulled, so the tests serve the Docker API
with Podman (runc, default ulimits: the two settings DESIGN.md names) and build their images locally
from static binaries the project already installs. Podman runs health checks only from systemd
timers, which a container has none of, so a thread here runs `podman healthcheck run` each second,
as the Docker engine would. When the engine cannot start, `start_engine` says why, for a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from k2tui.stack import binaries

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
"""
TOOLS_IMAGE = "localhost/k2test/tools:latest"
"""FROM scratch: the static tansu broker and SeaweedFS binaries, nothing else."""


class EngineUnavailable(RuntimeError):
    """The engine cannot run here; the message says why (the tests skip with it)."""


@dataclass
class PodmanEngine:
    directory: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    """CONTAINERS_CONF and DOCKER_HOST: what the SDK, compose and podman itself are run with."""
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def docker_host(self) -> str:
        return self.env["DOCKER_HOST"]

    def client(self) -> Any:
        """A docker SDK client on this engine."""
        import docker

        return docker.DockerClient(base_url=self.docker_host)

    def podman(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout
        )

    def run_health_checks(self) -> None:
        """Each second, every running container with a health check runs it (Docker's engine does this)."""

        def loop() -> None:
            while not self._stop.wait(1.0):
                listed = self.podman(
                    "ps",
                    "--filter",
                    "health=starting",
                    "--filter",
                    "health=healthy",
                    "--filter",
                    "health=unhealthy",
                    "--format",
                    "{{.ID}}",
                    timeout=20,
                )
                for container in listed.stdout.split():
                    self.podman("healthcheck", "run", container, timeout=20)

        threading.Thread(target=loop, name="podman-healthchecks", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_engine(directory: Path) -> PodmanEngine:
    """Podman serving the Docker API at `directory`/podman.sock; EngineUnavailable with the reason."""
    if shutil.which("podman") is None:
        raise EngineUnavailable("podman is not installed (Debian: apt-get install podman runc)")
    if shutil.which("runc") is None:
        raise EngineUnavailable("runc is not installed (Debian: apt-get install runc)")
    conf = directory / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    socket = directory / "podman.sock"
    env = {"CONTAINERS_CONF": str(conf), "DOCKER_HOST": f"unix://{socket}"}
    log = (directory / "podman-service.log").open("wb")
    process = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    engine = PodmanEngine(directory, process, env)
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            said = (directory / "podman-service.log").read_text(errors="replace").strip()[-400:]
            raise EngineUnavailable(f"podman system service exited with {process.returncode}: {said}")
        with contextlib.suppress(Exception):
            if engine.client().ping():
                break
        if time.monotonic() > deadline:
            engine.stop()
            raise EngineUnavailable("podman system service did not answer /_ping within 20 s")
        time.sleep(0.1)
    return engine


def build_tools_image(engine: PodmanEngine, directory: Path) -> str:
    """The tests' image, FROM scratch with the static broker and object-store binaries."""
    context = directory / "tools-image"
    context.mkdir(exist_ok=True)
    shutil.copy(binaries.tansu(), context / "tansu")
    shutil.copy(binaries.weed(), context / "weed")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY tansu weed /\n")
    engine.client().images.build(path=str(context), tag=TOOLS_IMAGE, rm=True)
    return TOOLS_IMAGE


PROMETHEUS_IMAGE = "localhost/k2test/prometheus:latest"
"""FROM scratch: this host's Prometheus binary and the shared libraries it loads."""


def build_prometheus_image(engine: PodmanEngine, directory: Path) -> str | None:
    """The host's own Prometheus in an image (None when it is not installed): the upstream image cannot be
    pulled here, and this runs the same program."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        return None
    context = directory / "prometheus-image"
    context.mkdir(exist_ok=True)
    loads = subprocess.run(["ldd", prometheus], capture_output=True, text=True, check=True).stdout
    libraries = [part for part in loads.split() if part.startswith("/")]
    files = [Path(prometheus).resolve(), *(Path(library) for library in libraries)]
    copies = []
    for n, source in enumerate(files):
        shutil.copy(source, context / f"f{n}")
        target = "/usr/bin/prometheus" if n == 0 else str(source)
        copies.append(f"COPY f{n} {target}")
    (context / "Dockerfile").write_text("FROM scratch\n" + "\n".join(copies) + "\n")
    engine.client().images.build(path=str(context), tag=PROMETHEUS_IMAGE, rm=True)
    return PROMETHEUS_IMAGE


PYTHON_IMAGE = "localhost/k2test/python:3.11"
"""A stand-in for python:3.11-slim-bookworm, which cannot be pulled here: this host's Python 3.11 with
pip, and the Debian packages the slim image carries, from this host's own Debian."""
PYTHON_DEPS_IMAGE = "localhost/k2test/python-deps:3.11"
"""The stand-in with k2tui's dependencies installed already, so that building the Dockerfile on it
installs only k2tui itself: the bounded build the suite runs (the full one resolves everything from PyPI)."""
SLIM_PACKAGES = [
    "libc6",
    "libgcc-s1",
    "libstdc++6",
    "zlib1g",
    "libssl3",
    "libffi8",
    "libsqlite3-0",
    "liblzma5",
    "libbz2-1.0",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
    "libuuid1",
    "libexpat1",
    "dash",
    "coreutils",
    "libacl1",
    "libattr1",
    "libgmp10",
    "libselinux1",
    "libpcre2-8-0",
]
_NOT_IN_SLIM = ("/site-packages/", "/test/", "/idlelib/", "/tkinter/", "/config-3.11", "__pycache__")


def build_python_image(engine: PodmanEngine, directory: Path, *, with_dependencies: bool = False) -> str:
    """The stand-in base image (`with_dependencies`: and k2tui's), imported from a root filesystem archive."""
    prefix = Path(sys.base_prefix)
    python = prefix / "bin" / f"python{sysconfig.get_python_version()}"
    links = {"usr/local/bin/python": python, "usr/local/bin/python3": python, "bin/sh": "dash"}
    site = f"{python.relative_to('/').parent.parent}/lib/python{sysconfig.get_python_version()}/site-packages"
    # name in the image → file on this host; dpkg lists some files twice (/lib and /usr/lib)
    found = [*_slim_libraries(), *_stdlib(prefix)]
    members = {_name(path): path for path in found if _name(path) not in links}
    for project in ["pip", *(_dependencies("k2tui") if with_dependencies else ())]:
        dist = metadata.distribution(project)
        for file in dist.files or ():
            if ".." not in file.parts and "__pycache__" not in file.parts:
                members[f"{site}/{file}"] = Path(str(dist.locate_file(file)))
    # Every folder readable by any user (the image runs as one), which a folder left implicit is not.
    parents = {str(parent) for name in [*members, *links] for parent in Path(name).parents} - {"."}
    folders = {"tmp": 0o1777} | dict.fromkeys(sorted(parents), 0o755)
    archive = directory / "python-rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        for name, mode in folders.items():
            tar.addfile(_entry(name, tarfile.DIRTYPE, mode=mode))
        for name, path in members.items():
            tar.add(path, arcname=name, recursive=False)
        for name, target in links.items():
            tar.addfile(_entry(name, tarfile.SYMTYPE, linkname=str(target)))
    tag = PYTHON_DEPS_IMAGE if with_dependencies else PYTHON_IMAGE
    # pip puts console scripts beside the interpreter, as the slim image's does in /usr/local/bin.
    path = f"ENV PATH={python.parent}:/usr/local/bin:/usr/bin:/bin"
    done = engine.podman("import", "--change", path, str(archive), tag)
    if done.returncode != 0:
        raise RuntimeError(f"podman import failed: {done.stderr.strip()}")
    return tag


PROJECT_ROOT = Path(__file__).resolve().parents[2]
PIP_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
"""This host's pip index settings, handed to the image's build when set."""


def build_pipeline_image(engine: PodmanEngine, base: str, tag: str) -> str:
    """k2tui's own Dockerfile built on `base`, pip reaching its index as it does on this host (through the
    host's network, trusting the host's certificate authorities)."""
    certificates = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
    built = engine.podman(
        *("build", "--network", "host", "--volume", "/etc/ssl/certs:/etc/ssl/certs:ro"),
        *("--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", f"PIP_CERT={certificates}"),
        *(f"--build-arg={name}={os.environ[name]}" for name in PIP_VARIABLES if name in os.environ),
        *("--tag", tag, str(PROJECT_ROOT)),
        timeout=900,
    )
    if built.returncode != 0:
        raise RuntimeError(f"building the Dockerfile failed: {built.stderr.strip()[-2000:]}")
    return tag


def _name(path: Path) -> str:
    return str(path).lstrip("/")


def _slim_libraries() -> list[Path]:
    listed = subprocess.run(["dpkg", "-L", *SLIM_PACKAGES], capture_output=True, text=True, check=True)
    return [
        Path(line)
        for line in listed.stdout.splitlines()
        if not line.startswith("/usr/share/") and os.path.lexists(line) and not Path(line).is_dir()
    ]


def _stdlib(prefix: Path) -> list[Path]:
    return [
        path
        for path in prefix.rglob("*")
        if not path.is_dir() and not any(part in str(path) for part in _NOT_IN_SLIM)
    ]


def _dependencies(project: str) -> set[str]:
    """Every distribution `project` needs at run time, through its dependencies' own (extras included)."""
    needed: set[str] = set()
    wanted = [(project, frozenset[str]())]
    while wanted:
        name, extras = wanted.pop()
        for line in metadata.distribution(name).requires or ():
            requirement = Requirement(line)
            marker = requirement.marker
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if marker is not None and not any(marker.evaluate(env) for env in environments):
                continue
            key = canonicalize_name(requirement.name)
            if key not in needed or requirement.extras:
                needed.add(key)
                wanted.append((key, frozenset(requirement.extras)))
    return needed


def _entry(name: str, kind: bytes, **fields: object) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type = kind
    for field_name, value in fields.items():
        setattr(entry, field_name, value)
    return entry


def two_service_compose(image: str) -> str:
    """A two-service project on the tools image: a Kafka-protocol broker keeping its log in an S3 store.

    The broker is published at the stack's Kafka port and checked by its own health check, as the
    upstream compose file's broker is; the store has no health check (running counts as ready).
    """
    return f"""services:
  broker-store:
    image: {image}
    entrypoint: ["/weed", "mini", "-dir=/data", "-ip=broker-store", "-ip.bind=0.0.0.0",
                 "-master.telemetry=false", "-admin.ui=false", "-bucket=tansu",
                 "-s3.port.iceberg=0", "-s3.port.lance=0"]
    tmpfs: [/tmp]
    stop_grace_period: 2s
    environment:
      AWS_ACCESS_KEY_ID: k2test
      AWS_SECRET_ACCESS_KEY: k2test-secret
  broker:
    image: {image}
    entrypoint: ["/tansu", "broker", "--listener-url=tcp://0.0.0.0:9092",
                 "--advertised-listener-url=tcp://127.0.0.1:${{KAFKA_PORT}}", "--storage-engine=s3://tansu/"]
    environment:
      AWS_ACCESS_KEY_ID: k2test
      AWS_SECRET_ACCESS_KEY: k2test-secret
      AWS_ENDPOINT: http://broker-store:8333
      AWS_REGION: us-east-1
      AWS_ALLOW_HTTP: "true"
    ports: ["127.0.0.1:${{KAFKA_PORT}}:9092"]
    depends_on: [broker-store]
    stop_grace_period: 2s
    healthcheck:
      test: ["CMD", "/tansu", "topic", "list", "--broker", "tcp://localhost:9092"]
      interval: 1s
      timeout: 5s
      retries: 60
"""
