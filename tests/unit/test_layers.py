"""The layer rule of DESIGN.md, checked on the code as it is."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "k2tui"


def textual_imports(root: Path) -> list[str]:
    """Modules outside k2tui/tui that import Textual, as 'path:line'."""
    found = []
    for path in root.rglob("*.py"):
        if "tui" in path.relative_to(root).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == "textual" or n.startswith("textual.") for n in names):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_nothing_outside_tui_imports_textual() -> None:
    assert textual_imports(PACKAGE) == []


def test_the_textual_scan_catches_an_offender(tmp_path: Path) -> None:
    (tmp_path / "tui").mkdir()
    (tmp_path / "tui" / "app.py").write_text("import textual\n")
    (tmp_path / "lake.py").write_text("from textual.app import App\n")
    assert textual_imports(tmp_path) == ["lake.py:1"]


def test_layers_import_only_layers_above_them() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=PACKAGE.parent, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout
