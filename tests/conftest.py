import os

import pytest


@pytest.fixture(autouse=True)
def _no_stray_k2_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the K2_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("K2_"):
            monkeypatch.delenv(name)
