"""The stack's TCP proxy: clients reach each service through it, so a partition can be injected and healed.

Modes per route:
- ``pass``: bytes flow both ways.
- ``blackhole``: nothing flows; open connections hang and new ones are accepted but never answered,
  like a cable pulled out. Bytes sent meanwhile are held and delivered on heal, as TCP would retransmit.
- ``delay``: every chunk waits ``delay_ms`` first (a slow link).
- ``reset``: every open connection is reset and new ones are refused with a reset.

Run as ``python -m k2tui.stack.proxy --control-port P --route NAME=LISTEN:TARGET ...``; the control API is
``GET /routes`` and ``PUT /routes/{name}`` with ``{"mode": "...", "delay_ms": N}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the web stack loads only in the proxy's own process, not where `Mode` is read
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

HOST = "127.0.0.1"
CHUNK = 256 * 1024


class Mode(StrEnum):
    PASS = "pass"
    BLACKHOLE = "blackhole"
    DELAY = "delay"
    RESET = "reset"


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST rather than a FIN, so the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class ProxyRoute:
    name: str
    listen_port: int
    target_port: int
    mode: Mode = Mode.PASS
    delay_ms: int = 0
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    connections_total: int = 0

    def __post_init__(self) -> None:
        self.flowing.set()

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "listen": self.listen_port,
            "target": self.target_port,
            "mode": self.mode.value,
            "delay_ms": self.delay_ms,
            "open_connections": len(self.writers) // 2,
            "connections_total": self.connections_total,
        }

    def set_mode(self, mode: Mode, delay_ms: int = 0) -> None:
        self.mode, self.delay_ms = mode, delay_ms
        if mode is Mode.BLACKHOLE:
            self.flowing.clear()
        else:
            self.flowing.set()
        if mode is Mode.RESET:
            for writer in list(self.writers):
                _reset(writer)
            self.writers.clear()
        print(f"route {self.name}: mode {mode.value}" + (f" {delay_ms} ms" if delay_ms else ""), flush=True)

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        if self.mode is Mode.RESET:
            _reset(client_writer)
            return
        await self.flowing.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            _reset(client_writer)
            return
        self.writers.update((client_writer, upstream_writer))
        pipes = [
            asyncio.create_task(self._pipe(client_reader, upstream_writer)),
            asyncio.create_task(self._pipe(upstream_reader, client_writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
            for writer in (client_writer, upstream_writer):
                self.writers.discard(writer)
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                await self.flowing.wait()
                if self.mode is Mode.DELAY and self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000)
                if self.mode is Mode.RESET:
                    return
                writer.write(data)
                await writer.drain()


def control_app(routes: dict[str, ProxyRoute]) -> Starlette:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route as HttpRoute

    async def list_routes(_: Request) -> JSONResponse:
        return JSONResponse([route.describe() for route in routes.values()])

    async def put_route(request: Request) -> JSONResponse:
        route = routes.get(request.path_params["name"])
        if route is None:
            return JSONResponse({"error": f"no route {request.path_params['name']!r}"}, status_code=404)
        try:
            body = await request.json()
            mode = Mode(body["mode"])
            delay_ms = int(body.get("delay_ms", 0))
        except (ValueError, KeyError, TypeError):
            modes = ", ".join(m.value for m in Mode)
            return JSONResponse({"error": f"expected {{'mode': one of {modes}}}"}, status_code=400)
        route.set_mode(mode, delay_ms)
        return JSONResponse(route.describe())

    return Starlette(
        routes=[
            HttpRoute("/routes", list_routes, methods=["GET"]),
            HttpRoute("/routes/{name}", put_route, methods=["PUT"]),
        ]
    )


def parse_route(text: str) -> ProxyRoute:
    name, _, ports = text.partition("=")
    listen, _, target = ports.partition(":")
    return ProxyRoute(name, int(listen), int(target))


async def serve(routes: list[ProxyRoute], control_port: int) -> None:
    import uvicorn

    servers = [await asyncio.start_server(r.handle, HOST, r.listen_port) for r in routes]
    for route in routes:
        print(f"route {route.name}: {HOST}:{route.listen_port} -> {HOST}:{route.target_port}", flush=True)
    config = uvicorn.Config(
        control_app({r.name: r for r in routes}),
        host=HOST,
        port=control_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        for server in servers:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m k2tui.stack.proxy", description=__doc__)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--route", action="append", default=[], metavar="NAME=LISTEN:TARGET")
    args = parser.parse_args()
    asyncio.run(serve([parse_route(text) for text in args.route], args.control_port))


if __name__ == "__main__":
    main()
