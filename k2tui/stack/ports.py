"""Free TCP ports below the ephemeral range, so a picked port is not handed out again by the kernel."""

from __future__ import annotations

import errno
import random
import socket

EPHEMERAL_START = 32768


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on `port` now; like servers, ignore TIME_WAIT leftovers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def find_free_port(low: int = 20000, high: int = EPHEMERAL_START - 1, host: str = "127.0.0.1") -> int:
    """A port in [low, high] that nothing listens on now; random so parallel runs rarely collide."""
    candidates = list(range(low, high + 1))
    random.shuffle(candidates)
    for port in candidates[:500]:
        if port_is_free(port, host):
            return port
    raise RuntimeError(f"no free TCP port between {low} and {high} on {host}")


def find_free_block(size: int, *, also: tuple[int, ...] = (), low: int = 20000, high: int = 22700) -> int:
    """A base port with `size` consecutive free ports after it, and base + each of `also` free too."""
    bases = list(range(low, high - size, 50))
    random.shuffle(bases)
    for base in bases[:200]:
        if all(port_is_free(base + i) for i in range(size)) and all(port_is_free(base + i) for i in also):
            return base
    raise RuntimeError(f"no block of {size} free TCP ports between {low} and {high}")


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
