"""Running the registry: bind first (so a taken port is a plain error), then serve with uvicorn."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import uvicorn

from k2tui.config import env_var_for
from k2tui.stack.registry.app import create_app
from k2tui.stack.registry.service import SchemaRegistry
from k2tui.stack.registry.store import RegistryStore

STORE_FILE = "registry.sqlite3"


class PortInUseError(RuntimeError):
    """The address is taken by another process."""


def bind_socket(host: str, port: int, *, setting: str) -> socket.socket:
    """A listening socket, or a PortInUseError that names the port and the setting to change it."""
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket reports it, and without it every small response waits ~40 ms on a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use by another process; stop it or choose "
                f"another port with the setting {setting}",
            ) from error
        raise
    sock.listen(128)
    return sock


def serve_registry(host: str, port: int, data_dir: Path, *, max_body_bytes: int, log_level: str) -> None:
    """Serve until interrupted; schemas persist in ``data_dir``."""
    sock = bind_socket(host, port, setting=f"registry.port ({env_var_for('registry.port')} or --port)")
    store = RegistryStore(data_dir / STORE_FILE)
    app = create_app(SchemaRegistry(store), max_body_bytes=max_body_bytes)
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=False, lifespan="off")
    print(f"Schema Registry on http://{host}:{port} (schemas in {data_dir}); Ctrl-C stops it.", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        store.close()
        sock.close()
