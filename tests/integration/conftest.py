from collections.abc import Iterator
from pathlib import Path

import pytest

from k2tui.stack.ports import find_free_port
from tests.integration.registry_process import RegistryProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    server = RegistryProcess(find_free_port(), tmp_path / "registry")
    server.start()
    yield server
    server.stop()
