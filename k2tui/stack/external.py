"""The external backend: services someone else runs, which k2tui reads but never starts, stops or breaks.

For a pipeline on a test server, another user's `k2tui up`, or a stack of one's own: the settings give
stack.host, the ports and the catalog URI, and the cockpit, `status` and the validations read them as
they read the local stack. Each service's state is what its own protocol answers; there is no process
to show, and every action that would need one says so in a sentence instead of acting.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

from k2tui.config import Settings
from k2tui.stack.events import StackEvent
from k2tui.stack.layout import REGION, StackLayout
from k2tui.stack.probes import Probe, http_ok, kafka_metadata, s3_bucket, sql_catalog
from k2tui.stack.proxy import Mode
from k2tui.stack.services import (
    STREAM_PORTS,
    ServiceSpec,
    catalog_address,
    catalog_properties,
    stats_url,
)
from k2tui.stack.supervisor import (
    FaultAction,
    Progress,
    ServiceState,
    ServiceStatus,
    StackError,
    StartReport,
    _quiet,
    probe_state,
)


def external_settings(settings: Settings) -> Settings:
    """The settings with the external backend chosen, so every endpoint points at stack.host."""
    return dataclasses.replace(settings, stack=dataclasses.replace(settings.stack, backend="external"))


def external_services(layout: StackLayout) -> list[ServiceSpec]:
    """What clients of the pipeline reach, each probed with its own protocol at the configured endpoint."""
    e = layout.endpoints
    stack = layout.settings.stack

    def spec(name: str, role: str, probe: Probe, address: str, *, on_demand: bool = False) -> ServiceSpec:
        return ServiceSpec(name, role, None, probe, address.removeprefix("http://"), on_demand=on_demand)

    lake = s3_bucket(e.s3_endpoint, stack.s3_access_key, stack.s3_secret_key, REGION, stack.warehouse_bucket)
    stats = {exchange: stats_url(layout.settings, exchange) for exchange in STREAM_PORTS}
    streams = [
        spec(exchange, f"{exchange} stream", http_ok(url), url, on_demand=True)
        for exchange, url in stats.items()
    ]
    return [
        spec("broker", "Kafka broker", kafka_metadata(e.kafka_bootstrap), e.kafka_bootstrap),
        spec("registry", "Schema Registry", http_ok(f"{e.registry_url}/subjects"), e.registry_url),
        spec("object-store", "S3 object store holding the Iceberg warehouse", lake, e.s3_endpoint),
        spec(
            "catalog",
            "Iceberg SQL catalog",
            sql_catalog(e.catalog_name, catalog_properties(layout)),
            catalog_address(e.catalog_uri),
        ),
        spec("consumer", "Kafka → Iceberg consumer", http_ok(e.consumer_metrics_url), e.consumer_metrics_url),
        spec("api", "HTTP query API", http_ok(f"{e.api_url}/health"), e.api_url),
        spec("prometheus", "Prometheus", http_ok(f"{e.prometheus_url}/-/ready"), e.prometheus_url),
        *streams,
    ]


class ExternalStack:
    backend = "external"

    def __init__(self, settings: Settings) -> None:
        self.layout = StackLayout(external_settings(settings))
        self.specs = {spec.name: spec for spec in external_services(self.layout)}

    def _refuse(self, what: str) -> StackError:
        host = self.layout.settings.stack.host
        return StackError(
            f"the external backend only reads the services at {host}; {what} where they run "
            "(or choose the local or docker backend, which k2tui runs)"
        )

    def status(self) -> list[ServiceStatus]:
        return asyncio.run(self._statuses())

    async def _statuses(self) -> list[ServiceStatus]:
        return list(await asyncio.gather(*(self._status(spec) for spec in self.specs.values())))

    async def _status(self, spec: ServiceSpec) -> ServiceStatus:
        return ServiceStatus(name=spec.name, role=spec.role, address=spec.address, **await probe_state(spec))

    def expected_down(self, status: ServiceStatus) -> bool:
        """A stream not running is no fault: streams run on demand."""
        spec = self.specs.get(status.name)
        return spec is not None and spec.on_demand and status.state is not ServiceState.READY

    def up(self, progress: Progress = _quiet) -> StartReport:
        raise self._refuse("start them")

    def down(self, *, purge: bool = False) -> list[str]:
        raise self._refuse("stop them")

    def restart(
        self,
        name: str,
        progress: Progress = _quiet,
        *,
        spec: ServiceSpec | None = None,
    ) -> None:
        raise self._refuse(f"restart {name}")

    def fault(
        self,
        name: str,
        action: FaultAction,
        *,
        mode: Mode = Mode.PASS,
        delay_ms: int = 0,
        progress: Progress = _quiet,
    ) -> str:
        raise self._refuse(f"{action.value} {name}")

    def last_log_lines(self, name: str, count: int = 15) -> list[str]:
        raise self._refuse(f"read the log of {name}")

    def follow_log(self, name: str) -> Iterator[str]:
        raise self._refuse(f"follow the log of {name}")

    def events(self, since: float) -> list[StackEvent]:
        return []
