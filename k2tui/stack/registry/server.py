"""Running the registry: bind first (so a taken port is a plain error), then serve with uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from k2tui.config import env_var_for
from k2tui.stack.ports import bind_socket
from k2tui.stack.registry.app import create_app
from k2tui.stack.registry.service import SchemaRegistry
from k2tui.stack.registry.store import RegistryStore

STORE_FILE = "registry.sqlite3"


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
