"""A small Schema Registry client for the pipeline: register the v2 schema, fetch schemas by id.

It speaks the Confluent REST API, so it works against k2tui's registry and Confluent's alike.
Unknown ids raise SchemaNotFoundError (permanent); a registry that cannot be reached raises
RegistryUnavailableError (transient: retry later, do not dead-letter).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from k2tui.model.wire import SchemaNotFoundError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailableError(ConnectionError):
    """The registry could not be reached or failed on its side."""


class RegistryRequestError(RuntimeError):
    """The registry refused the request (an invalid or incompatible schema, for example)."""

    def __init__(self, status: int, error_code: int, message: str):
        super().__init__(f"{message} (HTTP {status}, error code {error_code})")
        self.status = status
        self.error_code = error_code


class RegistryClient:
    def __init__(self, url: str, *, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers={"Accept": CONTENT_TYPE})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(self, subject: str, schema_text: str) -> int:
        body = {"schema": schema_text, "schemaType": "AVRO"}
        return int(self._request("POST", f"/subjects/{quote(subject, safe='')}/versions", json=body)["id"])

    def schema_text_by_id(self, schema_id: int) -> str:
        try:
            return str(self._request("GET", f"/schemas/ids/{schema_id}")["schema"])
        except RegistryRequestError as error:
            if error.error_code == 40403:
                raise SchemaNotFoundError(str(error)) from error
            raise

    def subjects(self) -> list[str]:
        return list(self._request("GET", "/subjects"))

    def delete_subject(self, subject: str) -> None:
        """Remove a subject for good: Confluent's soft delete, then the permanent one it requires first."""
        path = f"/subjects/{quote(subject, safe='')}"
        self._request("DELETE", path)
        self._request("DELETE", path, params={"permanent": "true"})

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise RegistryUnavailableError(
                f"Schema Registry at {self.url} is unreachable: {error}"
            ) from error
        if response.status_code >= 500:
            raise RegistryUnavailableError(
                f"Schema Registry at {self.url} failed: HTTP {response.status_code} {response.text[:200]}"
            )
        if response.status_code >= 400:
            try:
                body = response.json()
                code, message = int(body.get("error_code", response.status_code)), str(body.get("message"))
            except (ValueError, AttributeError):
                code, message = response.status_code, response.text[:200]
            raise RegistryRequestError(response.status_code, code, message)
        return response.json()
