import subprocess
import sys

from click.testing import CliRunner

from k2tui import __version__
from k2tui.cli import cli


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"k2tui, version {__version__}"


def test_help_lists_the_working_verbs() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for verb in ("config", "registry", "bench", "up", "down", "status", "logs", "restart", "fault", "env"):
        assert f"  {verb} " in result.output


def test_unknown_flag_is_a_plain_error() -> None:
    result = CliRunner().invoke(cli, ["config", "show", "--colour"])
    assert result.exit_code == 2
    assert "Error: No such option '--colour'" in result.output


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "k2tui", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_bench_serde_prints_a_table_of_measured_rates() -> None:
    result = CliRunner().invoke(
        cli,
        ["bench", "serde", "--records", "200", "--seconds", "0.05", "--rounds", "1"],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    assert "avro encode (datum → framed bytes)" in result.output
    assert "json decode baseline" in result.output
    assert "msg/s" in result.output


def test_down_purge_asks_first_and_keeps_data_when_refused(tmp_path) -> None:
    data = tmp_path / "data" / "object-store"
    data.mkdir(parents=True)
    result = CliRunner().invoke(cli, ["--set", f"home={tmp_path}", "down", "--purge"], input="n\n")
    assert result.exit_code == 1
    assert f"Delete all data and logs under {tmp_path}?" in result.output
    assert data.exists()
    result = CliRunner().invoke(cli, ["--set", f"home={tmp_path}", "down", "--purge", "--yes"])
    assert result.exit_code == 0, result.output
    assert not data.exists()


def test_consume_puts_arrow_on_the_system_allocator_before_pyarrow_loads() -> None:
    # Arrow's C++ parts (Parquet, S3) keep the pool chosen at import; a consumer on mimalloc held
    # 100 MB more at peak. Parsing the command's flags must not import pyarrow first.
    probe = (
        "import sys\n"
        "from k2tui.cli import _crash_plan\n"
        "_crash_plan(None, None, 'after-append:2')\n"
        "assert 'pyarrow' not in sys.modules, 'parsing --crash-at imported pyarrow'\n"
        "from k2tui.consume.memory import use_lean_memory\n"
        "use_lean_memory()\n"
        "import pyarrow.parquet, pyarrow as pa\n"
        "print(pa.default_memory_pool().backend_name)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "system"
