from pathlib import Path

import pytest
from click.testing import CliRunner

from k2tui.cli import cli
from k2tui.config import SettingsError, resolve_settings, setting_specs


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "k2tui.toml"
    path.write_text(text)
    return path


def source_of(resolution, key: str) -> str:
    return next(e.source for e in resolution.entries if e.key == key)


def test_defaults() -> None:
    resolution = resolve_settings(env={})
    assert resolution.settings.registry.port == 18081
    assert resolution.settings.registry.host == "127.0.0.1"
    assert all(e.source == "default" for e in resolution.entries)


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "log_level = 'debug'\n[registry]\nport = 19000\nhost = '127.0.0.2'\n")
    env = {"K2_REGISTRY_PORT": "19001", "K2_LOG_LEVEL": "warning"}
    resolution = resolve_settings(
        {"registry.port": ("19002", "--set registry.port")}, config_file=path, env=env
    )
    s = resolution.settings
    assert (s.registry.port, s.registry.host, s.log_level) == (19002, "127.0.0.2", "WARNING")
    assert source_of(resolution, "registry.port") == "--set registry.port"
    assert source_of(resolution, "registry.host") == str(path)
    assert source_of(resolution, "log_level") == "env K2_LOG_LEVEL"
    assert source_of(resolution, "registry.max_body_bytes") == "default"


def test_unknown_file_key_names_key_and_file_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "[registry]\nprot = 1\n")
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config_file=path, env={})
    message = str(caught.value)
    assert str(path) in message
    assert "registry.prot" in message
    assert "registry.port" in message


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting 'broker'"):
        resolve_settings(config_file=write(tmp_path, "[broker]\nport = 1\n"), env={})


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[registry]\nport = 'abc'\n", "expected an integer from 1 to 65535, got 'abc'"),
        ("[registry]\nport = 70000\n", "expected an integer from 1 to 65535, got 70000"),
        ("[registry]\nport = true\n", "expected an integer"),
        ("log_level = 'LOUD'\n", "expected one of DEBUG, INFO, WARNING, ERROR"),
        ("[registry]\nhost = 5\n", "expected text"),
    ],
)
def test_bad_file_values_name_key_file_and_form(tmp_path: Path, toml: str, expected: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config_file=path, env={})
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not valid TOML"):
        resolve_settings(config_file=write(tmp_path, "[registry\n"), env={})


def test_env_errors() -> None:
    with pytest.raises(SettingsError, match=r"K2_REGISTRY_PROT is not a k2tui setting.*K2_REGISTRY_PORT"):
        resolve_settings(env={"K2_REGISTRY_PROT": "1"})
    with pytest.raises(SettingsError, match=r"K2_REGISTRY_PORT \(registry.port\): expected an integer"):
        resolve_settings(env={"K2_REGISTRY_PORT": "eighty"})


def test_config_file_from_env_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[registry]\nport = 19005\n")
    assert resolve_settings(env={"K2_CONFIG": str(path)}).settings.registry.port == 19005
    with pytest.raises(SettingsError, match="does not exist"):
        resolve_settings(env={"K2_CONFIG": str(tmp_path / "nope.toml")})


def test_home_expands_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert str(resolve_settings(env={"K2_HOME": "~/k2"}).settings.home) == "/home/someone/k2"


def test_every_setting_has_help_and_an_env_var() -> None:
    for spec in setting_specs():
        assert spec.help, spec.key
        assert spec.env_var.startswith("K2_")


def test_config_show_cli(tmp_path: Path) -> None:
    path = write(tmp_path, "[registry]\nport = 19010\n")
    result = CliRunner().invoke(
        cli,
        ["--config", str(path), "--set", "log_level=error", "config", "show", "--json"],
        env={"K2_REGISTRY_HOST": "127.0.0.3"},
    )
    assert result.exit_code == 0, result.output
    assert '"value": 19010' in result.output
    assert '"source": "env K2_REGISTRY_HOST"' in result.output
    assert '"source": "--set log_level"' in result.output


def test_config_show_table_lists_every_setting() -> None:
    result = CliRunner().invoke(cli, ["config", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for spec in setting_specs():
        assert spec.key in result.output


def test_bad_setting_is_one_sentence_and_non_zero() -> None:
    result = CliRunner().invoke(cli, ["--set", "registry.port=x", "config", "show"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --set registry.port: registry.port: expected an integer from 1 to 65535, got 'x'"
    ]


def test_bad_assignment_form() -> None:
    result = CliRunner().invoke(cli, ["--set", "registry.port", "config", "show"])
    assert result.exit_code == 1
    assert "expected KEY=VALUE" in result.output
