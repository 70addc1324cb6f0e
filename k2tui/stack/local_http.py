"""HTTP clients for the stack's own endpoints, which the cockpit polls every second.

httpx builds a TLS context for every client it creates — about 25 ms of CPU loading the CA bundle even
for a plain http:// URL — and a status refresh creates half a dozen. One context, made once, serves
them all.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def local_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, verify=tls_context())


def local_get(url: str, timeout: float) -> httpx.Response:
    """A blocking GET with the shared context."""
    return httpx.get(url, timeout=timeout, verify=tls_context())
