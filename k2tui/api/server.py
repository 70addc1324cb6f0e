"""Running the API: bind first (so a taken port is a plain error), then serve with uvicorn."""

from __future__ import annotations

import contextlib

import uvicorn

from k2tui.api.app import create_app
from k2tui.config import Settings, setting_label
from k2tui.lake.catalog import LakeUnavailableError, open_trades_table
from k2tui.lake.query import QueryEngine
from k2tui.stack.layout import StackLayout
from k2tui.stack.ports import bind_socket


def serve_api(settings: Settings) -> None:
    """Serve the stack's lake on ``api.host:api.port`` until interrupted."""
    api = settings.api
    sock = bind_socket(api.host, api.port, setting=f"{setting_label('api.port')} or --port")
    layout = StackLayout(settings)
    # Created when missing (empty), as the consumer does: an API started before any consumer is healthy.
    with contextlib.suppress(LakeUnavailableError):  # /health says what is down
        open_trades_table(layout)
    engine = QueryEngine(layout, cache_bytes=api.cache_mb * 2**20)
    app = create_app(engine, max_limit=api.max_limit, warm=True)
    config = uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False)
    print(
        f"k2tui API on http://{api.host}:{api.port} (OpenAPI at /openapi.json); Ctrl-C stops it.", flush=True
    )
    # uvicorn shuts down gracefully on Ctrl-C, then raises it again; that is a normal stop, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            sock.close()
