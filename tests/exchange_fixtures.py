"""The real exchange payload samples in ../shared/fixtures/exchanges, one JSON document a line."""

import json
import os
from pathlib import Path

FIXTURES = Path(
    os.environ.get("K2TUI_FIXTURES_DIR", Path(__file__).resolve().parents[2] / "shared/fixtures/exchanges")
)


def lines(name: str) -> list[str]:
    return [line.rstrip("\n") for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def malformed(*exchanges: str) -> list[tuple[str, str]]:
    """(case, raw) of malformed.jsonl for these exchange names (plus the "any" cases)."""
    cases = [json.loads(line) for line in lines("malformed.jsonl")]
    return [(c["case"], c["raw"]) for c in cases if c["exchange"] in (*exchanges, "any")]
