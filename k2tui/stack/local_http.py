"""HTTP clients for the stack's own endpoints, which the cockpit polls every second.

httpx builds a TLS context for every client it creates — about 25–40 ms of CPU loading the CA bundle
even for a plain http:// URL — and a status refresh creates half a dozen. One context, made once,
serves them all. `warm_up` makes it (and pays httpx's first-client imports) in a thread as the cockpit
starts: made on the event loop instead, it held up the first frame by 0.2 s on a busy machine.
"""

from __future__ import annotations

import functools
import ssl
import threading

import httpx

_making = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The shared context; threads asking at once wait for one to be made rather than each make one."""
    with _making:
        return _made_once()


@functools.cache
def _made_once() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def local_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, verify=tls_context())


def local_get(url: str, timeout: float) -> httpx.Response:
    """A blocking GET with the shared context."""
    return httpx.get(url, timeout=timeout, verify=tls_context())


def warm_up() -> None:
    """Make the shared context and a first client in a daemon thread, off the caller's event loop."""
    threading.Thread(target=lambda: local_client(1.0), name="k2tui-http-warm-up", daemon=True).start()
