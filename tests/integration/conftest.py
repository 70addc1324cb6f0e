from collections.abc import Iterator
from pathlib import Path

import pytest

from k2tui.lake.catalog import open_catalog
from k2tui.stack.ports import find_free_port
from k2tui.stack.supervisor import LocalStack
from tests.integration.podman_engine import EngineUnavailable, PodmanEngine, start_engine
from tests.integration.registry_process import RegistryProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanEngine]:
    """A Docker Engine API (Podman) for the docker backend's tests; they skip, saying why, without one."""
    try:
        running = start_engine(tmp_path_factory.mktemp("podman"))
    except EngineUnavailable as error:
        pytest.skip(f"the Docker API cannot run here, so the docker backend is not tested: {error}")
    running.run_health_checks()
    yield running
    running.stop()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = RegistryProcess(find_free_port(), tmp_path / "registry")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def table(stack: LocalStack) -> Iterator:  # type: ignore[type-arg]
    """A trades table of the test's own, dropped afterwards."""
    import contextlib
    import uuid

    from pyiceberg.exceptions import NoSuchTableError

    from k2tui.lake.table import (
        TRADES_V2_PARTITIONING,
        TRADES_V2_PROPERTIES,
        TRADES_V2_SCHEMA,
        TRADES_V2_SORT_ORDER,
    )

    catalog = open_catalog(stack.layout)
    name = f"market_data.test_{uuid.uuid4().hex[:8]}"
    yield catalog.create_table(
        name,
        TRADES_V2_SCHEMA,
        partition_spec=TRADES_V2_PARTITIONING,
        sort_order=TRADES_V2_SORT_ORDER,
        properties=TRADES_V2_PROPERTIES,
    )
    with contextlib.suppress(NoSuchTableError):
        catalog.drop_table(name)
