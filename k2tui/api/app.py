"""The HTTP query API as a Starlette app over a :class:`QueryEngine`; every route is a read.

pyiceberg and DuckDB block, so each query runs on a worker thread and the event loop stays free to
answer ``/health`` while a long count runs. Errors are JSON with the same shape everywhere: 422 for a
bad parameter (naming it and the accepted form), 503 when the lake cannot be reached, 404 and 405 for
a wrong path or method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from k2tui.api.openapi import openapi_document
from k2tui.api.params import Endpoint, endpoints, parse_query
from k2tui.api.serialise import json_response, plain, record
from k2tui.lake.catalog import LakeUnavailableError
from k2tui.lake.filters import QueryArgumentError
from k2tui.lake.query import QueryEngine
from k2tui.lake.values import UtcTimestamp

HEALTH_TIMEOUT = 5.0
log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": kind, "message": message, **extra}


def create_app(engine: QueryEngine, *, max_limit: int = 1000, warm: bool = False) -> Starlette:
    """The API over `engine`; with `warm`, it reads the newest files at start so first queries are fast."""
    specs = {e.path: e for e in endpoints(max_limit)}
    document = openapi_document(list(specs.values()))

    def route(endpoint: Endpoint, handler: Handler) -> Route:
        async def run(request: Request) -> Response:
            try:
                result = await handler(parse_query(request.query_params, endpoint))
                return result if isinstance(result, Response) else json_response(result)
            except QueryArgumentError as error:
                return json_response(
                    error_body(
                        "invalid_parameter",
                        str(error),
                        parameter=error.argument,
                        accepted=error.accepted,
                        got=plain(error.got),
                    ),
                    422,
                )
            except LakeUnavailableError as error:
                return json_response(error_body("lake_unavailable", str(error)), 503)
            except Exception as error:
                log.exception("GET %s failed", request.url.path)
                return json_response(error_body("internal", f"{type(error).__name__}: {error}"), 500)

        return Route(endpoint.path, run, methods=["GET"])

    async def trades(values: dict[str, Any]) -> Any:
        began = time.perf_counter()
        filters = _filters(values)
        rows = await asyncio.to_thread(
            engine.query_trades,
            **filters,
            limit=values["limit"],
            order_by=values["order_by"],
            order_direction=values["order"],
        )
        meta = {
            "table_type": values["table_type"],
            "count": len(rows),
            "limit": values["limit"],
            "order_by": values["order_by"],
            "order": values["order"],
            "filters": _echo(filters),
            "took_ms": round((time.perf_counter() - began) * 1000, 1),
        }
        return {"data": [record(row) for row in rows], "meta": meta}

    async def count(values: dict[str, Any]) -> Any:
        filters = _filters(values)
        total = await asyncio.to_thread(engine.count_trades, **filters)
        return {"count": total, "table_type": values["table_type"], "filters": _echo(filters)}

    async def bars(values: dict[str, Any]) -> Any:
        found = await asyncio.to_thread(
            engine.query_bars,
            values["symbol"],
            values["interval"],
            exchange=values["exchange"],
            start=values["start"],
            end=values["end"],
            limit=values["limit"],
        )
        meta = {"symbol": values["symbol"], "interval": values["interval"], "count": len(found)}
        return {"data": plain(found), "meta": meta}

    async def symbols(values: dict[str, Any]) -> Any:
        return {"data": plain(await asyncio.to_thread(engine.symbols))}

    async def snapshots(values: dict[str, Any]) -> Any:
        found = await asyncio.to_thread(engine.snapshots)
        newest = found[::-1][: values["limit"]]
        return {"data": plain(newest), "meta": {"count": len(newest), "total": len(found)}}

    async def health(values: dict[str, Any]) -> Response:
        try:
            states = await asyncio.wait_for(asyncio.to_thread(engine.health), HEALTH_TIMEOUT)
        except TimeoutError:
            message = f"no answer within {HEALTH_TIMEOUT:g} s"
            return json_response(
                {"status": "unavailable", "dependencies": {"lake": {"status": "down", "detail": message}}},
                503,
            )
        up = all(s.up for s in states)
        body = {
            "status": "ok" if up else "unavailable",
            "dependencies": {
                s.name: {"status": "up" if s.up else "down", "detail": s.detail, "latency_ms": s.latency_ms}
                for s in states
            },
        }
        return json_response(body, 200 if up else 503)

    async def openapi(values: dict[str, Any]) -> Any:
        return document

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        kind = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        message = f"{request.method} {request.url.path}: HTTP {status}; see /openapi.json for the API"
        return json_response(error_body(kind, message), status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warming = asyncio.create_task(asyncio.to_thread(engine.warm)) if warm else None
        try:
            yield
        finally:
            if warming is not None:
                warming.cancel()
            engine.close()

    routes = [
        route(specs["/health"], health),
        route(specs["/openapi.json"], openapi),
        route(specs["/v1/trades"], trades),
        route(specs["/v1/trades/count"], count),
        route(specs["/v1/bars"], bars),
        route(specs["/v1/symbols"], symbols),
        route(specs["/v1/snapshots"], snapshots),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)


def _filters(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in ("symbol", "exchange", "start", "end")}


def _echo(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters as understood: symbol normalised, times as ISO-8601 and µs."""
    out = dict(filters)
    for name in ("start", "end"):
        if filters[name] is not None:
            out[name] = UtcTimestamp.from_micros(filters[name])
    return record(out)
