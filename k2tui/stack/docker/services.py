"""The services of the docker backend: the compose project's containers, and the pipeline's own
processes, which run on this host under the local supervisor exactly as in the local backend."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from k2tui.stack.docker.compose import catalog_database
from k2tui.stack.layout import HOST, REGION, StackLayout
from k2tui.stack.probes import http_ok, kafka_metadata, s3_bucket, sql_catalog
from k2tui.stack.services import (
    ServiceSpec,
    catalog_address,
    catalog_properties,
    local_services,
    prometheus_config,
)

HOST_SERVICES = ("consumer", "api", "simulator", "binance", "kraken")
"""The pipeline's processes; everything else the local backend runs is a container here."""


def pipeline_services(layout: StackLayout) -> list[ServiceSpec]:
    """The pipeline's processes as the local backend runs them."""
    return [s for s in local_services(layout) if s.name in HOST_SERVICES]


def host_services(layout: StackLayout) -> list[ServiceSpec]:
    """The pipeline's processes, waiting only on each other: the containers are ready before they start."""
    specs = pipeline_services(layout)
    names = {s.name for s in specs}
    return [dataclasses.replace(s, after=tuple(a for a in s.after if a in names)) for s in specs]


async def _decided_by_health_check(within: float) -> None:
    """A container with no protocol probe here is ready when its own health check says so."""


def container_services(layout: StackLayout, names: list[str]) -> list[ServiceSpec]:
    """A spec for each compose service: the stack's own names get their protocol probe from this host."""
    settings = layout.settings
    stack = settings.stack
    endpoints = layout.endpoints
    catalog = catalog_database(endpoints.catalog_uri)
    known = {
        "broker": ServiceSpec(
            name="broker",
            role="Apache Kafka in KRaft mode (apache/kafka)",
            command=None,
            probe=kafka_metadata(endpoints.kafka_bootstrap),
            address=endpoints.kafka_bootstrap,
        ),
        "registry": ServiceSpec(
            name="registry",
            role="Confluent Schema Registry (confluentinc/cp-schema-registry)",
            command=None,
            probe=http_ok(f"{endpoints.registry_url}/subjects"),
            address=endpoints.registry_url.removeprefix("http://"),
        ),
        "object-store": ServiceSpec(
            name="object-store",
            role="MinIO, the S3 store holding the Iceberg warehouse",
            command=None,
            probe=s3_bucket(
                endpoints.s3_endpoint,
                stack.s3_access_key,
                stack.s3_secret_key,
                REGION,
                stack.warehouse_bucket,
            ),
            address=endpoints.s3_endpoint.removeprefix("http://"),
        ),
        "catalog": ServiceSpec(
            name="catalog",
            role=f"PostgreSQL holding the Iceberg SQL catalog (database {catalog.database})"
            if catalog
            else "PostgreSQL, unused: the Iceberg SQL catalog is the SQLite file of stack.catalog_uri",
            command=None,
            probe=sql_catalog(endpoints.catalog_name, catalog_properties(layout)),
            address=f"{HOST}:{catalog.port}" if catalog else catalog_address(endpoints.catalog_uri),
        ),
        "prometheus": ServiceSpec(
            name="prometheus",
            role="Prometheus scraping the pipeline's processes on this host each second",
            command=None,
            probe=http_ok(f"{endpoints.prometheus_url}/-/ready"),
            address=endpoints.prometheus_url.removeprefix("http://"),
        ),
        "grafana": ServiceSpec(
            name="grafana",
            role="Grafana with the k2 dashboard provisioned",
            command=None,
            probe=http_ok(f"http://{HOST}:{stack.grafana_port}/api/health"),
            address=f"{HOST}:{stack.grafana_port}",
        ),
    }
    generic = "container of the compose project"
    return [
        known.get(name) or ServiceSpec(name, generic, None, _decided_by_health_check, "") for name in names
    ]


def container_prometheus_config(layout: StackLayout, rules_file: str) -> str:
    """The scrape configuration of the Prometheus container: the host's metrics endpoints, which it
    reaches at 127.0.0.1 from the host's network, and the alert rules at `rules_file` (its path inside
    the container)."""
    return prometheus_config([s for s in host_services(layout) if s.metrics_target], Path(rules_file))
