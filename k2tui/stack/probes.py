"""Protocol-level readiness: a service is ready when it answers its own protocol, not when a port opens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from k2tui.stack.local_http import local_client
from k2tui.stack.s3_signature import signed_headers

Probe = Callable[[float], Awaitable[None]]
"""Awaits readiness once, giving up after `within` seconds; raises NotReady with the reason when not ready."""


class NotReady(Exception):
    """The service did not answer its protocol; the message says what was seen."""


def http_ok(url: str) -> Probe:
    async def probe(within: float) -> None:
        try:
            async with local_client(within) as client:
                response = await client.get(url)
        except httpx.HTTPError as error:
            raise NotReady(f"GET {url}: {type(error).__name__}: {error}".rstrip(": ")) from error
        if response.status_code != 200:
            raise NotReady(f"GET {url} answered {response.status_code}")

    return probe


def kafka_metadata(bootstrap: str) -> Probe:
    """The broker answers a Metadata request and names at least one broker."""

    async def probe(within: float) -> None:
        from aiokafka import AIOKafkaClient
        from aiokafka.errors import KafkaError

        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(within * 1000))
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        try:
            await asyncio.wait_for(client.bootstrap(), within)
            if not client.cluster.brokers():
                raise NotReady(f"Kafka metadata from {bootstrap} lists no broker")
        except (KafkaError, OSError, TimeoutError) as error:
            raise NotReady(f"Kafka metadata from {bootstrap}: {type(error).__name__} {error}") from error
        finally:
            await client.close()

    return probe


def s3_client(endpoint: str, access_key: str, secret_key: str, region: str, timeout: float) -> Any:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1},
            s3={"addressing_style": "path"},
        ),
    )


def s3_bucket(endpoint: str, access_key: str, secret_key: str, region: str, bucket: str) -> Probe:
    """The store answers a signed HEAD of `bucket` with 200 (404: no such bucket yet)."""
    url = f"{endpoint.rstrip('/')}/{bucket}"

    async def probe(within: float) -> None:
        headers = signed_headers("HEAD", url, access_key, secret_key, region)
        try:
            async with local_client(within) as client:
                response = await client.head(url, headers=headers)
        except httpx.HTTPError as error:
            raise NotReady(f"S3 HEAD {url}: {type(error).__name__}: {error}".rstrip(": ")) from error
        if response.status_code == 404:
            raise NotReady(f"S3 at {endpoint} has no bucket {bucket!r} yet")
        if response.status_code != 200:
            raise NotReady(f"S3 HEAD {url} answered {response.status_code}")

    return probe


def sql_catalog(name: str, properties: dict[str, str]) -> Probe:
    """The Iceberg SQL catalog opens and lists its namespaces.

    A SQLite catalog that already holds pyiceberg's tables is read with the standard library: opening
    one through pyiceberg costs its imports (half a second) and an engine per probe, and the cockpit
    asks every second. Any other catalog, or one not created yet, is opened through pyiceberg, which
    creates its tables, as the stack's first `up` expects.
    """
    sqlite_file = _sqlite_file(properties["uri"])

    def check() -> None:
        if sqlite_file is not None and _sqlite_catalog_readable(sqlite_file):
            return
        from pyiceberg.catalog.sql import SqlCatalog
        from sqlalchemy.exc import SQLAlchemyError

        try:
            SqlCatalog(name, **properties).list_namespaces()
        except (SQLAlchemyError, OSError) as error:
            raise NotReady(f"Iceberg catalog {properties['uri']}: {error}") from error

    async def probe(within: float) -> None:
        await asyncio.wait_for(asyncio.to_thread(check), within)

    return probe


def _sqlite_file(uri: str) -> str | None:
    prefix = "sqlite:///"
    return uri.removeprefix(prefix) if uri.startswith(prefix) and uri != prefix else None


def _sqlite_catalog_readable(path: str) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)) as db:
            db.execute("SELECT count(*) FROM iceberg_tables").fetchone()
            db.execute("SELECT count(*) FROM iceberg_namespace_properties").fetchone()
    except sqlite3.Error:
        return False
    return True


async def wait_ready(probe: Probe, *, within: float, alive: Callable[[], bool]) -> None:
    """Probe until ready; NotReady with the last reason after `within` s, or at once if the process died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    reason = "no answer yet"
    while True:
        try:
            await probe(min(2.0, max(0.2, deadline - loop.time())))
            return
        except (NotReady, TimeoutError) as error:
            reason = str(error) or "timed out"
        if not alive():
            raise NotReady(f"the process exited while starting; last probe: {reason}")
        if loop.time() >= deadline:
            raise NotReady(f"not ready after {within:g} s; last probe: {reason}")
        await asyncio.sleep(0.1)
