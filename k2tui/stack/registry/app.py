"""The Confluent Schema Registry REST API over :class:`SchemaRegistry`, as a Starlette app."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from k2tui.stack.registry.service import (
    SUPPORTED_TYPES,
    RegistryError,
    SchemaRegistry,
    parse_candidate,
    parse_level,
    version_view,
)
from k2tui.stack.registry.store import GLOBAL

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
log = logging.getLogger(__name__)


def reply(content: Any, status: int = 200) -> Response:
    return Response(json.dumps(content), status_code=status, media_type=CONTENT_TYPE)


def error_reply(status: int, error_code: int, message: str) -> Response:
    return reply({"error_code": error_code, "message": message}, status)


def flag(request: Request, name: str) -> bool:
    """Query flags as Confluent's clients send them: ``true``, ``True``, ``false``, ``False``."""
    return request.query_params.get(name, "false").strip().lower() == "true"


Handler = Callable[[Request], Awaitable[Any]]


def create_app(registry: SchemaRegistry, *, max_body_bytes: int) -> Starlette:
    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            raise RegistryError(
                413, 413, f"request body of {declared} bytes exceeds the limit of {max_body_bytes}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise RegistryError(413, 413, f"request body exceeds the limit of {max_body_bytes} bytes")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
            raise RegistryError(400, 400, f"request body is not JSON: {error}") from error

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                result = await handler(request)
            except RegistryError as error:
                return error_reply(error.status, error.error_code, error.message)
            except Exception as error:
                log.exception("registry request %s %s failed", request.method, request.url.path)
                return error_reply(500, 50001, f"Error in the backend data store: {error}")
            return result if isinstance(result, Response) else reply(result)

        return run

    async def root(request: Request) -> Any:
        return {}

    async def list_subjects(request: Request) -> Any:
        return registry.subjects(deleted=flag(request, "deleted"))

    async def register(request: Request) -> Any:
        candidate = parse_candidate(await read_json(request))
        return {"id": registry.register(request.path_params["subject"], candidate)}

    async def lookup(request: Request) -> Any:
        candidate = parse_candidate(await read_json(request))
        return registry.lookup(request.path_params["subject"], candidate, deleted=flag(request, "deleted"))

    async def delete_subject(request: Request) -> Any:
        return registry.delete_subject(request.path_params["subject"], permanent=flag(request, "permanent"))

    async def list_versions(request: Request) -> Any:
        return registry.versions(request.path_params["subject"], deleted=flag(request, "deleted"))

    async def get_version(request: Request) -> Any:
        p = request.path_params
        return version_view(registry.version(p["subject"], p["version"], deleted=flag(request, "deleted")))

    async def get_version_schema(request: Request) -> Any:
        p = request.path_params
        entry = registry.version(p["subject"], p["version"], deleted=flag(request, "deleted"))
        return Response(entry.text, media_type=CONTENT_TYPE)

    async def referenced_by(request: Request) -> Any:
        p = request.path_params
        registry.version(p["subject"], p["version"])
        return []

    async def delete_version(request: Request) -> Any:
        p = request.path_params
        return registry.delete_version(p["subject"], p["version"], permanent=flag(request, "permanent"))

    async def schema_by_id(request: Request) -> Any:
        schema_type, text = registry.schema(request.path_params["id"])
        return {"schema": text} if schema_type == "AVRO" else {"schemaType": schema_type, "schema": text}

    async def schema_text_by_id(request: Request) -> Any:
        return Response(registry.schema(request.path_params["id"])[1], media_type=CONTENT_TYPE)

    async def schema_subjects(request: Request) -> Any:
        return sorted({s for s, _ in registry.schema_usage(request.path_params["id"])})

    async def schema_versions(request: Request) -> Any:
        return [{"subject": s, "version": v} for s, v in registry.schema_usage(request.path_params["id"])]

    async def schema_types(request: Request) -> Any:
        return list(SUPPORTED_TYPES)

    async def compatibility(request: Request) -> Any:
        p = request.path_params
        candidate = parse_candidate(await read_json(request))
        problems = registry.check_compatibility(p["subject"], candidate, p.get("version"))
        result: dict[str, Any] = {"is_compatible": not problems}
        if flag(request, "verbose"):
            result["messages"] = problems
        return result

    async def get_global_config(request: Request) -> Any:
        return {"compatibilityLevel": registry.level_for(GLOBAL).value}

    async def put_config(request: Request) -> Any:
        body = await read_json(request)
        level = parse_level(body.get("compatibility") if isinstance(body, dict) else None)
        registry.set_level(request.path_params.get("subject", GLOBAL), level)
        return {"compatibility": level.value}

    async def get_subject_config(request: Request) -> Any:
        level = registry.subject_level(
            request.path_params["subject"], default_to_global=flag(request, "defaultToGlobal")
        )
        return {"compatibilityLevel": level.value}

    async def delete_subject_config(request: Request) -> Any:
        return {"compatibilityLevel": registry.delete_subject_level(request.path_params["subject"]).value}

    async def get_mode(request: Request) -> Any:
        return {"mode": "READWRITE"}

    # Subjects may contain "/" (sent as %2F, decoded before routing), so they match as paths and
    # the most specific routes come first.
    subject = "/subjects/{subject:path}"
    version = subject + "/versions/{version:str}"
    schema_id = "/schemas/ids/{id:int}"
    routes = [
        Route("/", endpoint(root), methods=["GET"]),
        Route("/subjects", endpoint(list_subjects), methods=["GET"]),
        Route(version + "/schema", endpoint(get_version_schema), methods=["GET"]),
        Route(version + "/referencedby", endpoint(referenced_by), methods=["GET"]),
        Route(version, endpoint(get_version), methods=["GET"]),
        Route(version, endpoint(delete_version), methods=["DELETE"]),
        Route(subject + "/versions", endpoint(list_versions), methods=["GET"]),
        Route(subject + "/versions", endpoint(register), methods=["POST"]),
        Route(subject, endpoint(lookup), methods=["POST"]),
        Route(subject, endpoint(delete_subject), methods=["DELETE"]),
        Route(schema_id + "/schema", endpoint(schema_text_by_id), methods=["GET"]),
        Route(schema_id + "/subjects", endpoint(schema_subjects), methods=["GET"]),
        Route(schema_id + "/versions", endpoint(schema_versions), methods=["GET"]),
        Route(schema_id, endpoint(schema_by_id), methods=["GET"]),
        Route("/schemas/types", endpoint(schema_types), methods=["GET"]),
        Route("/compatibility" + version, endpoint(compatibility), methods=["POST"]),
        Route("/compatibility" + subject + "/versions", endpoint(compatibility), methods=["POST"]),
        Route("/config", endpoint(get_global_config), methods=["GET"]),
        Route("/config", endpoint(put_config), methods=["PUT"]),
        Route("/config/{subject:path}", endpoint(get_subject_config), methods=["GET"]),
        Route("/config/{subject:path}", endpoint(put_config), methods=["PUT"]),
        Route("/config/{subject:path}", endpoint(delete_subject_config), methods=["DELETE"]),
        Route("/mode", endpoint(get_mode), methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return error_reply(status, status, f"HTTP {status} {detail}")

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
