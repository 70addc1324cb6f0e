import os
from collections.abc import Iterator

import pytest

from k2tui.lake.catalog import ensure_trades_table, open_catalog
from k2tui.stack.supervisor import LocalStack
from tests.integration.stack_fixture import throwaway_settings

pytest_plugins = ["tests.hang_report"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-rounds",
        type=int,
        default=1,
        help="rounds of random faults in the chaos soak test (CI runs the bounded default; raise it to soak)",
    )
    parser.addoption(
        "--pipeline-containers",
        action="store_true",
        help="build the Dockerfile and run the pipeline as containers on Podman (about a minute); CI checks"
        " the generated compose file with docker-compose config",
    )
    parser.addoption(
        "--full-image-build",
        action="store_true",
        help="with --pipeline-containers: build on a bare Python image, every dependency from the index",
    )


@pytest.fixture
def soak_rounds(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--soak-rounds"))


@pytest.fixture(autouse=True)
def _no_stray_k2_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the K2_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("K2_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """K2_* variables that point a `k2tui` subprocess at the session's stack."""
    return throwaway_settings(tmp_path_factory.mktemp("k2home"))[1]


@pytest.fixture(scope="session")
def stack(stack_env: dict[str, str]) -> Iterator[LocalStack]:
    """The whole local stack, up once for the session, with the trades table created; down at the end."""
    from k2tui.config import resolve_settings

    local = LocalStack(resolve_settings(env=stack_env).settings)
    try:
        local.up()
        ensure_trades_table(open_catalog(local.layout))
        yield local
    finally:
        local.down()


@pytest.fixture
def healed(stack: LocalStack) -> Iterator[None]:
    """Whatever a test breaks is mended before the next test uses the session's stack."""
    from k2tui.stack.supervisor import FaultAction

    yield
    for service in ("object-store", "registry"):
        stack.fault(service, FaultAction.HEAL)
