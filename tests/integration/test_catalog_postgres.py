"""The Iceberg catalog on PostgreSQL (the `stack.catalog_uri` setting), against a real server."""

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from k2tui.lake.catalog import ensure_trades_table, open_catalog
from k2tui.stack.layout import StackLayout
from k2tui.stack.ports import find_free_port
from k2tui.stack.supervisor import LocalStack

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def postgres_uri() -> Iterator[str]:
    """A throwaway PostgreSQL server; it refuses to run as root, so it runs as the postgres user then."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries are not installed (Debian package postgresql)")
    as_user: list[str] = []
    # Not under pytest's private temp dir: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="k2tui-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
        base.chmod(0o777)
    port = find_free_port()
    subprocess.run(
        [*as_user, PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "k2"], check=True, capture_output=True
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data.parent}"
    # With a log file, so the server does not hold our pipes open and run() returns.
    subprocess.run(
        [*as_user, PG_BIN / "pg_ctl", "-D", data, "-l", base / "log", "-o", options, "-w", "start"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql://k2@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, PG_BIN / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True
        )


def test_up_leaves_a_usable_catalog_on_postgresql(stack: LocalStack, postgres_uri: str) -> None:
    stack_settings = dataclasses.replace(stack.layout.settings.stack, catalog_uri=postgres_uri)
    layout = StackLayout(dataclasses.replace(stack.layout.settings, stack=stack_settings))
    _, created = ensure_trades_table(open_catalog(layout))
    assert created
    table = open_catalog(layout).load_table("market_data.trades_v2")
    assert [f.name for f in table.schema().fields][:3] == ["message_id", "trade_id", "symbol"]
    assert ensure_trades_table(open_catalog(layout))[1] is False
