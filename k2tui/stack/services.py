"""The services of the local stack, each a command, a readiness probe and the ports it claims.

The supervisor knows nothing about Kafka or S3: later pipeline processes (API, consumer, producers)
join the stack by adding a ServiceSpec here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k2tui.config import Settings, setting_label, settings_as_env
from k2tui.stack import binaries
from k2tui.stack.layout import (
    BROKER_BUCKET,
    BROKER_STORE_OFFSET,
    HOST,
    INTERNAL_PORTS_SETTING,
    LAKE_STORE_OFFSET,
    REGION,
    PortClaim,
    StackLayout,
    endpoint_host,
)
from k2tui.stack.probes import Probe, http_ok, kafka_metadata, s3_bucket, sql_catalog


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    role: str
    command: list[str] | None
    """None for a resource with no process of its own (the SQLite catalog): it is only probed."""
    probe: Probe
    address: str
    ports: list[PortClaim] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    """Services that must be ready before this one starts."""
    proxy_route: str | None = None
    """The proxy route clients use to reach it, which a partition fault acts on."""
    metrics_target: str | None = None
    """host:port of a Prometheus /metrics endpoint it serves."""
    health_url: str | None = None
    """A URL answering 200 once it is ready: its probe, and the health check of its container (docker
    backend, `stack.pipeline = "containers"`)."""
    unavailable: str | None = None
    """Why it cannot run here (not installed), with how to fix that; the rest of the stack runs."""
    config_files: dict[Path, str] = field(default_factory=dict)
    """Files written before each start (generated configuration)."""
    on_demand: bool = False
    """`up` leaves it stopped: it runs when someone starts it (`k2tui restart`, a fault start, the TUI)."""


def _weed(
    layout: StackLayout,
    name: str,
    offset: int,
    bucket: str,
    role: str,
    *,
    client_endpoint: str | None = None,
    after: tuple[str, ...] = (),
    proxy_route: str | None = None,
) -> ServiceSpec:
    """An object store; probed at `client_endpoint` when clients reach it through the proxy."""
    stack = layout.settings.stack
    ports = layout.weed_ports(offset)
    data = layout.data_dir / name
    command = [
        binaries.weed(),
        "mini",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        "-admin.ui=false",
        f"-bucket={bucket}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={layout.run_dir / (name + '-filer.sock')}",
        f"-s3.localSocket={layout.run_dir / (name + '-s3.sock')}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    endpoint = f"http://{HOST}:{ports['s3.port']}"
    return ServiceSpec(
        name=name,
        role=role,
        command=command,
        probe=s3_bucket(
            client_endpoint or endpoint, stack.s3_access_key, stack.s3_secret_key, REGION, bucket
        ),
        address=(client_endpoint or endpoint).removeprefix("http://"),
        ports=layout.weed_claims(offset),
        env={"AWS_ACCESS_KEY_ID": stack.s3_access_key, "AWS_SECRET_ACCESS_KEY": stack.s3_secret_key},
        metrics_target=f"{HOST}:{ports['metricsPort']}",
        after=after,
        proxy_route=proxy_route,
    )


def catalog_properties(layout: StackLayout) -> dict[str, str]:
    """The pyiceberg SQL catalog configuration; ``k2tui env`` exports the same as PYICEBERG_ variables."""
    e = layout.endpoints
    return {
        "uri": e.catalog_uri,
        "warehouse": e.warehouse,
        "s3.endpoint": e.s3_endpoint,
        "s3.access-key-id": e.s3_access_key,
        "s3.secret-access-key": e.s3_secret_key,
        "s3.region": e.s3_region,
        # Fail over to a retry rather than hang when the store is paused or partitioned away.
        "s3.connect-timeout": "5",
        "s3.request-timeout": "15",
    }


CONSUMER_LAG_ALERT = 10_000
"""Messages behind from which the consumer's lag pages someone (the seed's pre-deployment item)."""

ALERT_RULES = f"""groups:
  - name: k2-consumer
    rules:
      - alert: K2ConsumerLagHigh
        expr: sum(k2_consumer_lag) > {CONSUMER_LAG_ALERT}
        for: 1m
        labels:
          severity: page
        annotations:
          summary: "the Iceberg consumer is more than {CONSUMER_LAG_ALERT:,} messages behind Kafka"
      - alert: K2ConsumerDown
        expr: up{{job="consumer"}} == 0
        for: 10s
        labels:
          severity: page
        annotations:
          summary: "Prometheus cannot scrape the Iceberg consumer: it is down or hung"
"""


def prometheus_config(specs: list[ServiceSpec], rules_file: Path | None = None) -> str:
    """A scrape config reading every metrics endpoint of the stack once a second, with alert rules."""
    targets = [(s.name, s.metrics_target) for s in specs if s.metrics_target]
    jobs = "".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: ['{target}']\n"
        for name, target in targets
    )
    rules = f"rule_files:\n  - '{rules_file}'\n" if rules_file else ""
    return f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rules}scrape_configs:\n{jobs}"


def local_services(layout: StackLayout) -> list[ServiceSpec]:
    """Every service of the local stack, in start order."""
    settings = layout.settings
    stack = settings.stack
    endpoints = layout.endpoints
    python = [sys.executable, "-m"]
    registry_internal = layout.registry_port
    broker_store = _weed(
        layout, "broker-store", BROKER_STORE_OFFSET, BROKER_BUCKET, "object store holding the broker's log"
    )
    lake_store = _weed(
        layout,
        "object-store",
        LAKE_STORE_OFFSET,
        stack.warehouse_bucket,
        "S3 object store holding the Iceberg warehouse",
        client_endpoint=endpoints.s3_endpoint,
        after=("proxy",),
        proxy_route="object-store",
    )
    routes = {
        "broker": (stack.kafka_port, layout.broker_port, setting_label("stack.kafka_port")),
        "registry": (settings.registry.port, registry_internal, setting_label("registry.port")),
        "object-store": (stack.s3_port, layout.lake_s3_port, setting_label("stack.s3_port")),
    }
    proxy = ServiceSpec(
        name="proxy",
        role="TCP proxy between clients and services; injects partitions",
        command=[
            *python,
            "k2tui.stack.proxy",
            "--control-port",
            str(stack.proxy_control_port),
            *(f"--route={name}={listen}:{target}" for name, (listen, target, _) in routes.items()),
        ],
        probe=http_ok(f"http://{HOST}:{stack.proxy_control_port}/routes"),
        address=f"{HOST}:{stack.proxy_control_port}",
        ports=[
            PortClaim(stack.proxy_control_port, setting_label("stack.proxy_control_port")),
            *(PortClaim(listen, setting) for listen, _, setting in routes.values()),
        ],
    )
    broker = ServiceSpec(
        name="broker",
        role="Kafka-protocol broker (tansu), log kept in its own object store",
        command=[
            binaries.tansu(),
            "broker",
            f"--listener-url=tcp://{HOST}:{layout.broker_port}",
            f"--advertised-listener-url=tcp://{endpoints.kafka_bootstrap}",
            f"--storage-engine=s3://{BROKER_BUCKET}/",
        ],
        probe=kafka_metadata(endpoints.kafka_bootstrap),
        address=endpoints.kafka_bootstrap,
        ports=[PortClaim(layout.broker_port, INTERNAL_PORTS_SETTING)],
        env={
            "AWS_ACCESS_KEY_ID": stack.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": stack.s3_secret_key,
            "AWS_ENDPOINT": f"http://{broker_store.address}",
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        },
        after=("broker-store", "proxy"),
        proxy_route="broker",
    )
    registry = ServiceSpec(
        name="registry",
        role="Confluent-compatible Schema Registry",
        command=[
            *python,
            "k2tui",
            "registry",
            "serve",
            "--host",
            HOST,
            "--port",
            str(registry_internal),
            "--data-dir",
            str(layout.data_dir / "registry"),
        ],
        probe=http_ok(f"{endpoints.registry_url}/subjects"),
        address=endpoints.registry_url.removeprefix("http://"),
        ports=[PortClaim(registry_internal, INTERNAL_PORTS_SETTING)],
        after=("proxy",),
        proxy_route="registry",
    )
    catalog = ServiceSpec(
        name="catalog",
        role="Iceberg SQL catalog",
        command=None,
        probe=sql_catalog(endpoints.catalog_name, catalog_properties(layout)),
        address=catalog_address(endpoints.catalog_uri),
        after=("object-store",),
    )
    specs = [proxy, broker_store, lake_store, registry, broker, catalog]
    if settings.consumer.service:
        specs.append(_consumer(layout))
    specs.append(_api(layout))
    specs.append(_simulator(layout))
    specs.extend(stream_service(layout, exchange) for exchange in STREAM_PORTS)
    specs.append(_prometheus(layout, specs))
    return specs


STREAM_PORTS = {"binance": "streams.binance_status_port", "kraken": "streams.kraken_status_port"}
"""Each exchange's stream service and the setting holding the port of its /metrics and /stats."""
STREAM_SOURCES = ("auto", "live", "sim")


def stream_status_port(settings: Settings, exchange: str) -> int:
    streams = settings.streams
    return {"binance": streams.binance_status_port, "kraken": streams.kraken_status_port}[exchange]


def stats_url(settings: Settings, exchange: str) -> str:
    """Where the exchange's stream service serves /stats, for its probe and for whoever reads it."""
    return f"http://{endpoint_host(settings)}:{stream_status_port(settings, exchange)}/stats"


def _answering(url: str) -> dict[str, Any]:
    """A service served over HTTP is ready when `url` answers 200: its probe and its health URL."""
    return {"probe": http_ok(url), "health_url": url}


def _simulator(layout: StackLayout) -> ServiceSpec:
    """`k2tui simulate`: both exchanges' protocols for the stream services whose source is the simulator."""
    streams = layout.settings.streams
    port = streams.simulator_port
    return ServiceSpec(
        name="simulator",
        role=f"exchange simulator, Binance and Kraken at {streams.sim_rate:g} trades/s per symbol",
        command=[
            *(sys.executable, "-m", "k2tui", "simulate"),
            *("--port", str(port), "--rate", str(streams.sim_rate)),
        ],
        **_answering(f"http://{HOST}:{port}/control"),
        address=f"{HOST}:{port}",
        ports=[PortClaim(port, setting_label("streams.simulator_port"))],
        on_demand=not streams.autostart,
    )


def stream_service(layout: StackLayout, exchange: str, source: str | None = None) -> ServiceSpec:
    """`k2tui stream` of one exchange into Kafka, serving /metrics and /stats; `source` (auto, live or
    sim) defaults to the streams.source setting. Auto and sim read the simulator service when they need it."""
    settings = layout.settings
    source = source or settings.streams.source
    if source not in STREAM_SOURCES:
        raise ValueError(f"unknown stream source {source!r}; expected one of {', '.join(STREAM_SOURCES)}")
    port = stream_status_port(settings, exchange)
    simulator = (
        [] if source == "live" else ["--simulator-url", f"ws://{HOST}:{settings.streams.simulator_port}"]
    )
    return ServiceSpec(
        name=exchange,
        role=f"{exchange.capitalize()} trades into Kafka (source {source})",
        command=[
            *(sys.executable, "-m", "k2tui", "stream", "--exchange", exchange),
            *("--source", source, "--status-port", str(port), *simulator),
        ],
        **_answering(stats_url(settings, exchange)),
        address=f"{HOST}:{port}",
        ports=[PortClaim(port, setting_label(STREAM_PORTS[exchange]))],
        env=settings_as_env(settings),
        after=("broker", "registry") + (() if source == "live" else ("simulator",)),
        metrics_target=f"{HOST}:{port}",
        on_demand=not settings.streams.autostart,
    )


def _consumer(layout: StackLayout) -> ServiceSpec:
    """`k2tui consume` as a service: runs until stopped, serves /metrics, resolves the same settings."""
    settings = layout.settings
    port = settings.consumer.metrics_port
    return ServiceSpec(
        name="consumer",
        role=f"Kafka → Iceberg writer, exactly once (group {settings.consumer.group})",
        # A new group starts at the oldest message: the pipeline's writer never skips what is in Kafka.
        command=[sys.executable, "-m", "k2tui", "consume", "--from-beginning", "--metrics-port", str(port)],
        **_answering(f"http://{HOST}:{port}/metrics"),
        address=f"{HOST}:{port}",
        ports=[PortClaim(port, setting_label("consumer.metrics_port"))],
        env=settings_as_env(settings),
        after=("broker", "registry", "catalog"),
        metrics_target=f"{HOST}:{port}",
    )


def _api(layout: StackLayout) -> ServiceSpec:
    """`k2tui api serve`: the read-only HTTP query API over the lake."""
    api = layout.settings.api
    return ServiceSpec(
        name="api",
        role="HTTP query API over market_data.trades_v2 (read-only)",
        command=[sys.executable, "-m", "k2tui", "api", "serve"],
        **_answering(f"http://{api.host}:{api.port}/health"),
        address=f"{api.host}:{api.port}",
        ports=[PortClaim(api.port, setting_label("api.port"))],
        env=settings_as_env(layout.settings),
        after=("catalog",),
    )


def catalog_address(uri: str) -> str:
    """Where the catalog lives, without any password in a PostgreSQL URI."""
    if uri.startswith("sqlite:///"):
        return uri.removeprefix("sqlite:///")
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _prometheus(layout: StackLayout, specs: list[ServiceSpec]) -> ServiceSpec:
    port = layout.settings.stack.prometheus_port
    program = binaries.prometheus()
    config_file = layout.home / "stack" / "prometheus.yml"
    rules_file = layout.home / "stack" / "prometheus-rules.yml"
    return ServiceSpec(
        name="prometheus",
        role="Prometheus scraping every metrics endpoint each second",
        command=None
        if program is None
        else [
            program,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={layout.data_dir / 'prometheus'}",
            f"--web.listen-address={HOST}:{port}",
            "--web.enable-lifecycle",
        ],
        probe=http_ok(f"http://{HOST}:{port}/-/ready"),
        address=f"{HOST}:{port}",
        ports=[PortClaim(port, setting_label("stack.prometheus_port"))],
        unavailable=None
        if program is not None
        else f"prometheus is not installed; install it with: {binaries.PROMETHEUS_INSTALL_HINT}",
        config_files={config_file: prometheus_config(specs, rules_file), rules_file: ALERT_RULES},
    )
