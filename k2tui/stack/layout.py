"""Where everything of one local stack lives: its ports, its directories and the endpoints clients use.

Clients always reach the broker, the registry and the lake's object store through the stack's own TCP
proxy, so a network partition can be injected between the pipeline and any of them. The services
themselves listen on a block of internal ports that starts at ``stack.internal_port_base``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from k2tui.config import Settings, setting_label

HOST = "127.0.0.1"
REGION = "us-east-1"
BROKER_BUCKET = "tansu"
CATALOG_NAME = "k2"

# Offsets from stack.internal_port_base. An object store needs 12 ports of its own (see weed_ports).
BROKER_OFFSET = 0
REGISTRY_OFFSET = 1
LAKE_STORE_OFFSET = 10
BROKER_STORE_OFFSET = 30
WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "webdav.port",
    "admin.port",
    "metricsPort",
)
INTERNAL_PORTS_SETTING = setting_label("stack.internal_port_base")
# weed's maintenance worker always dials the admin gRPC port at admin.port + 10000, whatever is set.
WEED_ADMIN_GRPC_OFFSET = 10000


@dataclass(frozen=True)
class PortClaim:
    """A port a service binds, and the setting a user changes when something else holds it."""

    port: int
    setting: str


def endpoint_host(settings: Settings) -> str:
    """Where clients find the services: stack.host for the external backend, else this machine."""
    return settings.stack.host if settings.stack.backend == "external" else HOST


@dataclass(frozen=True)
class Endpoints:
    """How a client reaches the stack; ``k2tui env`` prints these."""

    kafka_bootstrap: str
    registry_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    warehouse: str
    catalog_name: str
    catalog_uri: str
    prometheus_url: str
    api_url: str
    consumer_metrics_url: str


@dataclass(frozen=True)
class StackLayout:
    settings: Settings

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def state_file(self) -> Path:
        return self.home / "stack" / "state.json"

    @property
    def run_dir(self) -> Path:
        return self.home / "stack" / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def log_file(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def internal(self, offset: int) -> int:
        return self.settings.stack.internal_port_base + offset

    def weed_ports(self, offset: int) -> dict[str, int]:
        """Every port flag of one ``weed mini``, pinned so none lands on a default or above 32767."""
        return {flag: self.internal(offset + i) for i, flag in enumerate(WEED_PORTS)}

    def weed_claims(self, offset: int) -> list[PortClaim]:
        ports = self.weed_ports(offset)
        claims = [PortClaim(port, INTERNAL_PORTS_SETTING) for port in ports.values()]
        claims.append(PortClaim(ports["admin.port"] + WEED_ADMIN_GRPC_OFFSET, INTERNAL_PORTS_SETTING))
        return claims

    @property
    def broker_port(self) -> int:
        return self.internal(BROKER_OFFSET)

    @property
    def registry_port(self) -> int:
        return self.internal(REGISTRY_OFFSET)

    @property
    def lake_s3_port(self) -> int:
        return self.weed_ports(LAKE_STORE_OFFSET)["s3.port"]

    @property
    def catalog_uri(self) -> str:
        configured = self.settings.stack.catalog_uri
        return configured or f"sqlite:///{self.data_dir / 'catalog' / 'k2-catalog.sqlite3'}"

    @property
    def endpoints(self) -> Endpoints:
        stack = self.settings.stack
        host = endpoint_host(self.settings)
        api_host = host if stack.backend == "external" else self.settings.api.host
        return Endpoints(
            kafka_bootstrap=f"{host}:{stack.kafka_port}",
            registry_url=f"http://{host}:{self.settings.registry.port}",
            s3_endpoint=f"http://{host}:{stack.s3_port}",
            s3_access_key=stack.s3_access_key,
            s3_secret_key=stack.s3_secret_key,
            s3_region=REGION,
            warehouse=f"s3://{stack.warehouse_bucket}/",
            catalog_name=CATALOG_NAME,
            catalog_uri=self.catalog_uri,
            prometheus_url=f"http://{host}:{stack.prometheus_port}",
            api_url=f"http://{api_host}:{self.settings.api.port}",
            consumer_metrics_url=f"http://{host}:{self.settings.consumer.metrics_port}/metrics",
        )


INTERNAL_BLOCK = BROKER_STORE_OFFSET + len(WEED_PORTS)
# Offsets 2-9 and 21-29 of the block are unused by the services; a throwaway stack puts its client
# ports there.
_THROWAWAY_CLIENT_PORTS = {
    "stack.kafka_port": 2,
    "stack.s3_port": 3,
    "registry.port": 4,
    "stack.prometheus_port": 5,
    "stack.proxy_control_port": 6,
    "consumer.metrics_port": 7,
    "api.port": 8,
    "streams.simulator_port": 9,
    "streams.binance_status_port": 21,
    "streams.kraken_status_port": 22,
}


def throwaway_overrides(home: Path) -> dict[str, tuple[object, str]]:
    """Settings for a stack of its own in `home` on a free block of ports (tests and benchmarks)."""
    from k2tui.stack.ports import find_free_block

    admin = WEED_PORTS.index("admin.port") + WEED_ADMIN_GRPC_OFFSET
    base = find_free_block(INTERNAL_BLOCK, also=(LAKE_STORE_OFFSET + admin, BROKER_STORE_OFFSET + admin))
    label = "throwaway stack"
    overrides: dict[str, tuple[object, str]] = {
        "home": (home, label),
        "stack.internal_port_base": (base, label),
    }
    overrides.update({key: (base + offset, label) for key, offset in _THROWAWAY_CLIENT_PORTS.items()})
    return overrides
