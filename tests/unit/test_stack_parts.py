"""The stack's parts that need no service: layout, process identity, the proxy, stop order."""

import asyncio
import dataclasses
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from k2tui.config import resolve_settings
from k2tui.stack import binaries
from k2tui.stack.layout import StackLayout, throwaway_overrides
from k2tui.stack.process import ExitStatus, read_exit_status, service_env, spawn, terminate
from k2tui.stack.proxy import Mode, ProxyRoute
from k2tui.stack.services import local_services
from k2tui.stack.supervisor import LocalStack, ServiceState


def _layout(tmp_path: Path, **overrides: object) -> StackLayout:
    values = {"home": (tmp_path, "test"), **{k: (v, "test") for k, v in overrides.items()}}
    return StackLayout(resolve_settings(values, env={}).settings)


@pytest.mark.parametrize("throwaway", [False, True])
def test_every_port_of_the_stack_is_distinct_and_below_the_ephemeral_range(
    tmp_path: Path, throwaway: bool
) -> None:
    settings = resolve_settings(throwaway_overrides(tmp_path) if throwaway else {}, env={}).settings
    claims = [c.port for spec in local_services(StackLayout(settings)) for c in spec.ports]
    assert len(claims) == len(set(claims))
    assert all(1024 <= port < 32768 for port in claims)


def test_prometheus_missing_is_reported_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(binaries, "prometheus", lambda: None)
    stack = LocalStack(resolve_settings({"home": (tmp_path, "test")}, env={}).settings)
    prometheus = next(s for s in stack.status() if s.name == "prometheus")
    assert prometheus.state is ServiceState.UNAVAILABLE
    hint = binaries.PROMETHEUS_INSTALL_HINT
    assert prometheus.detail == f"prometheus is not installed; install it with: {hint}"


def test_services_stop_after_what_depends_on_them(tmp_path: Path) -> None:
    stack = LocalStack(resolve_settings({"home": (tmp_path, "test")}, env={}).settings)
    order = {name: i for i, wave in enumerate(stack._stop_waves()) for name in wave}
    assert order["broker"] < order["broker-store"]
    assert order["broker"] < order["proxy"] and order["registry"] < order["proxy"]
    assert sorted(order) == sorted(stack.specs)


def test_exit_status_names_the_signal() -> None:
    assert ExitStatus(137, 0).signal_name == "SIGKILL"
    assert ExitStatus(1, 0).signal_name is None
    assert ExitStatus(143, time.time()).describe().startswith("exited with code 143 (SIGTERM) at ")


def _sleeper(tmp_path: Path, nice: int = 0):
    return spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env=service_env({}),
        log_file=tmp_path / "sleeper.log",
        pid_file=tmp_path / "sleeper.pid",
        exit_file=tmp_path / "sleeper.exit",
        cwd=tmp_path,
        nice=nice,
    )


def test_a_niced_service_yields_as_a_process_and_as_an_autogroup(tmp_path: Path) -> None:
    record = _sleeper(tmp_path, nice=7)
    try:
        assert record.is_alive()  # still the command asked for, not nice(1)
        assert os.getpriority(os.PRIO_PROCESS, record.pid) == 7
        autogroup = Path(f"/proc/{record.pid}/autogroup")
        if autogroup.exists():  # kernels with autogroups: the service leads its own, at that nice
            assert autogroup.read_text().split()[-1] == "7"
            assert autogroup.read_text() != Path("/proc/self/autogroup").read_text()
        assert (tmp_path / "sleeper.log").read_text().count("\n") <= 2  # nothing said about it
    finally:
        terminate(record)


def test_a_process_is_ours_only_when_pid_start_time_and_command_all_match(tmp_path: Path) -> None:
    record = _sleeper(tmp_path)
    try:
        assert record.is_alive()
        impostor = dataclasses.replace(record, create_time=record.create_time - 100)
        assert not impostor.is_alive()
        assert impostor.signal(signal.SIGKILL) is False
        assert record.is_alive()
        assert not dataclasses.replace(record, cmdline=("sleep", "60")).is_alive()
    finally:
        terminate(record)


def test_the_keeper_records_how_a_service_ended(tmp_path: Path) -> None:
    record = _sleeper(tmp_path)
    assert record.signal(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while read_exit_status(tmp_path / "sleeper.exit") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    status = read_exit_status(tmp_path / "sleeper.exit")
    assert status is not None and status.code == 137 and status.signal_name == "SIGKILL"
    assert not record.is_alive()


async def _echo_route() -> tuple[asyncio.Server, asyncio.Server, ProxyRoute]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    route = ProxyRoute("echo", 0, upstream.sockets[0].getsockname()[1])
    front = await asyncio.start_server(route.handle, "127.0.0.1", 0)
    route.listen_port = front.sockets[0].getsockname()[1]
    return upstream, front, route


async def test_proxy_blackhole_holds_bytes_and_heal_delivers_them() -> None:
    upstream, front, route = await _echo_route()
    async with upstream, front:
        reader, writer = await asyncio.open_connection("127.0.0.1", route.listen_port)
        writer.write(b"one")
        assert await asyncio.wait_for(reader.read(3), 2) == b"one"

        route.set_mode(Mode.BLACKHOLE)
        writer.write(b"two")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(3), 0.3)

        route.set_mode(Mode.PASS)
        assert await asyncio.wait_for(reader.read(3), 2) == b"two"
        writer.close()


async def test_proxy_reset_breaks_open_connections_and_refuses_new_ones() -> None:
    upstream, front, route = await _echo_route()
    async with upstream, front:
        reader, writer = await asyncio.open_connection("127.0.0.1", route.listen_port)
        writer.write(b"x")
        await asyncio.wait_for(reader.read(1), 2)
        route.set_mode(Mode.RESET)
        with pytest.raises(ConnectionResetError):
            writer.write(b"y")
            await writer.drain()
            if not await asyncio.wait_for(reader.read(1), 2):
                raise ConnectionResetError("closed")
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", route.listen_port)
        with pytest.raises(ConnectionResetError):
            writer2.write(b"z")
            await writer2.drain()
            if not await asyncio.wait_for(reader2.read(1), 2):
                raise ConnectionResetError("closed")


def test_a_service_that_does_not_come_up_is_named_with_its_last_log_lines(tmp_path: Path) -> None:
    from k2tui.stack.layout import PortClaim
    from k2tui.stack.ports import find_free_port
    from k2tui.stack.probes import http_ok
    from k2tui.stack.services import ServiceSpec
    from k2tui.stack.supervisor import StackError

    port = find_free_port()
    stack = LocalStack(resolve_settings({"home": (tmp_path, "test")}, env={}).settings)
    stack.specs = {
        "failing": ServiceSpec(
            name="failing",
            role="a service that dies at start",
            command=[sys.executable, "-c", "print('boom: no licence file', flush=True); raise SystemExit(3)"],
            probe=http_ok(f"http://127.0.0.1:{port}/"),
            address=f"127.0.0.1:{port}",
            ports=[PortClaim(port, "test.port")],
        )
    }
    with pytest.raises(StackError) as failure:
        stack.up()
    message = str(failure.value)
    assert message.startswith("failing did not come up: the process exited while starting")
    assert "boom: no licence file" in message
    status = stack.status()[0]
    assert status.state is ServiceState.EXITED and status.exit_code == 3


def test_the_catalog_address_never_shows_a_password(tmp_path: Path) -> None:
    layout = _layout(tmp_path, **{"stack.catalog_uri": "postgresql://k2:s3cret@db.internal:5432/lake"})
    catalog = next(s for s in local_services(layout) if s.name == "catalog")
    assert catalog.address == "postgresql://db.internal:5432/lake"
    assert "s3cret" not in catalog.address
    default = next(s for s in local_services(_layout(tmp_path)) if s.name == "catalog")
    assert default.address == str(tmp_path / "data" / "catalog" / "k2-catalog.sqlite3")


async def test_the_catalog_probe_creates_a_missing_sqlite_catalog_then_reads_it_and_names_a_broken_one(
    tmp_path: Path,
) -> None:
    from k2tui.stack.probes import NotReady, sql_catalog

    database = tmp_path / "catalog.sqlite3"
    properties = {"uri": f"sqlite:///{database}", "warehouse": f"file://{tmp_path}"}
    probe = sql_catalog("k2", properties)
    await probe(10)  # no file yet: opened through pyiceberg, which creates its tables
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"iceberg_tables", "iceberg_namespace_properties"} <= tables
    await probe(10)  # now read with the standard library
    database.write_bytes(b"not a database at all" * 100)
    with pytest.raises(NotReady, match=f"Iceberg catalog sqlite:///{database}"):
        await probe(10)


def test_only_the_external_backend_reaches_the_services_on_stack_host(tmp_path: Path) -> None:
    from k2tui.stack.backend import open_stack

    overrides = throwaway_overrides(tmp_path) | {"stack.host": ("10.1.2.3", "test")}
    settings = resolve_settings(overrides, env={}).settings
    local = StackLayout(settings).endpoints
    assert local.kafka_bootstrap.startswith("127.0.0.1:") and local.api_url.startswith("http://127.0.0.1:")
    external = open_stack(settings, "external")
    e = external.layout.endpoints
    assert e.kafka_bootstrap == f"10.1.2.3:{settings.stack.kafka_port}"
    assert e.registry_url == f"http://10.1.2.3:{settings.registry.port}"
    assert e.api_url == f"http://10.1.2.3:{settings.api.port}"
    assert e.consumer_metrics_url == f"http://10.1.2.3:{settings.consumer.metrics_port}/metrics"
    assert external.specs["binance"].address.startswith("10.1.2.3:")
    assert all(spec.command is None for spec in external.specs.values())
